use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Pool, Transaction};
use tessera_core::{BoxError, EventFilter, RecordedEvent};
use tessera_projections::PgHandler;

pub fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A pool on DATABASE_URL; fails loudly when PostgreSQL is not there.
pub async fn pool() -> Pool {
    let mut cfg = deadpool_postgres::Config::new();
    cfg.url = Some(database_url());
    let pool = cfg
        .create_pool(
            Some(deadpool_postgres::Runtime::Tokio1),
            tokio_postgres::NoTls,
        )
        .expect("pool config");
    if let Err(e) = pool.get().await {
        panic!(
            "PostgreSQL is not reachable at {} ({e}). Start it (e.g. `bash scripts/test.sh` \
             starts or installs it, or `pg_ctlcluster --skip-systemctl-redirect 15 main start`) \
             or set DATABASE_URL.",
            database_url()
        );
    }
    pool
}

/// A pool of at most `size` connections on DATABASE_URL.
pub async fn small_pool(size: usize) -> Pool {
    let mut cfg = deadpool_postgres::Config::new();
    cfg.url = Some(database_url());
    cfg.pool = Some(deadpool_postgres::PoolConfig::new(size));
    let _ = pool().await; // Fails loudly, with instructions, without a server.
    cfg.create_pool(
        Some(deadpool_postgres::Runtime::Tokio1),
        tokio_postgres::NoTls,
    )
    .expect("pool config")
}

/// A pool whose connections carry `application_name`, so a test can find its own in
/// `pg_stat_activity` among those of the tests running beside it.
pub async fn named_pool(application_name: &str) -> Pool {
    let mut cfg = deadpool_postgres::Config::new();
    cfg.url = Some(database_url());
    cfg.application_name = Some(application_name.to_owned());
    let _ = pool().await; // Fails loudly, with instructions, without a server.
    cfg.create_pool(
        Some(deadpool_postgres::Runtime::Tokio1),
        tokio_postgres::NoTls,
    )
    .expect("pool config")
}

/// A unique lower-case suffix for names.
pub fn unique() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..10].to_owned()
}

/// Drops every schema a test made: the control schema and each version's.
pub async fn cleanup(pool: &Pool, control: &str, name: &str) {
    let client = pool.get().await.expect("connection");
    let rows = client
        .query(
            "SELECT nspname FROM pg_namespace WHERE nspname = $1 OR nspname LIKE $2",
            &[&control, &format!("{name}_v%")],
        )
        .await
        .expect("list schemas");
    for row in rows {
        let schema: String = row.get(0);
        client
            .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
            .await
            .expect("drop schema");
    }
}

/// Sums `amount` per stream of category `acct`, and counts applications per event id.
pub struct PgSums {
    pub name: String,
    pub strict: Arc<AtomicBool>,
    /// Milliseconds to sleep after writing and before returning (a window to kill in).
    pub pause_ms: Arc<AtomicU64>,
}

impl PgSums {
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            strict: Arc::new(AtomicBool::new(true)),
            pause_ms: Arc::new(AtomicU64::new(0)),
        }
    }
}

impl PgHandler for PgSums {
    fn name(&self) -> &str {
        &self.name
    }

    fn filter(&self) -> EventFilter {
        EventFilter::category("acct")
    }

    async fn setup(&self, tx: &Transaction<'_>, schema: &str) -> Result<(), BoxError> {
        tx.batch_execute(&format!(
            "CREATE TABLE {schema}.sums (stream text PRIMARY KEY, total bigint NOT NULL);
             CREATE TABLE {schema}.applied (event_id uuid PRIMARY KEY, n int NOT NULL);"
        ))
        .await?;
        Ok(())
    }

    async fn handle(
        &self,
        tx: &Transaction<'_>,
        schema: &str,
        events: &[RecordedEvent],
    ) -> Result<(), BoxError> {
        for e in events {
            let amount = e.data.to_value()?["amount"]
                .as_i64()
                .ok_or("amount missing")?;
            if amount < 0 && self.strict.load(Ordering::SeqCst) {
                return Err(format!("negative amount {amount}").into());
            }
            // Cached, as real handlers do: a rebuild must not leave it prepared.
            let upsert = tx
                .prepare_cached(&format!("INSERT INTO {schema}.sums VALUES ($1, $2) ON CONFLICT (stream) DO UPDATE SET total = sums.total + EXCLUDED.total"))
                .await?;
            tx.execute(&upsert, &[&e.stream_id.as_str(), &amount])
                .await?;
            tx.execute(
                &format!("INSERT INTO {schema}.applied VALUES ($1, 1) ON CONFLICT (event_id) DO UPDATE SET n = applied.n + 1"),
                &[&e.id.0],
            )
            .await?;
        }
        let pause = self.pause_ms.load(Ordering::SeqCst);
        if pause > 0 {
            tokio::time::sleep(Duration::from_millis(pause)).await;
        }
        Ok(())
    }
}

/// (stream, total) rows, and the number of applications per event, from `schema`.
pub async fn model(pool: &Pool, schema: &str) -> (Vec<(String, i64)>, Vec<i32>) {
    let client = pool.get().await.expect("connection");
    let sums = client
        .query(
            &format!("SELECT stream, total FROM {schema}.sums ORDER BY stream"),
            &[],
        )
        .await
        .expect("sums")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let applied = client
        .query(&format!("SELECT n FROM {schema}.applied"), &[])
        .await
        .expect("applied")
        .iter()
        .map(|r| r.get(0))
        .collect();
    (sums, applied)
}
