//! Shared test setup: one schema per test, dropped at the end, and event helpers.

use std::time::Duration;

use tessera_core::{NewEvent, RecordedEvent, StoreError, Subscription, SubscriptionConfig};
use tessera_postgres::{PostgresStore, SchemaName};
use tokio_postgres::{Client, NoTls};

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// `DATABASE_URL`, or the local test database.
pub fn database_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

/// A raw connection to the test database; fails the test, saying how to start
/// PostgreSQL, when it cannot be reached.
pub async fn raw_client() -> Client {
    let url = database_url();
    let connect = tokio_postgres::connect(&url, NoTls);
    let (client, connection) = match tokio::time::timeout(Duration::from_secs(10), connect).await {
        Ok(Ok(pair)) => pair,
        Ok(Err(e)) => {
            let detail =
                std::error::Error::source(&e).map_or_else(String::new, |s| format!(": {s}"));
            panic!("{}", unreachable_message(&url, &format!("{e}{detail}")))
        }
        Err(_) => panic!("{}", unreachable_message(&url, "timed out after 10 s")),
    };
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

fn unreachable_message(url: &str, error: &str) -> String {
    format!(
        "PostgreSQL is not reachable at {url} ({error}). These tests need a real server: \
         run them through `bash scripts/test.sh` (finds, starts or installs PostgreSQL), or \
         start it yourself (e.g. `pg_ctlcluster 15 main start` or `service postgresql start`) \
         with a `test` database the `postgres` user can use without a password, or set \
         DATABASE_URL to a server that is running."
    )
}

/// A schema of its own for one test; dropped when this is dropped.
pub struct TestDb {
    pub schema: SchemaName,
    /// `application_name` of the store's connections, to find them in pg_stat_activity.
    pub app: String,
}

impl TestDb {
    pub async fn new(test: &str) -> Self {
        let _ = raw_client().await; // Fails early, with instructions, without a server.
        let suffix: String = (0..10)
            .map(|_| fastrand::alphanumeric().to_ascii_lowercase())
            .collect();
        let name = format!("tt_{}_{suffix}", &test[..test.len().min(30)]);
        Self {
            schema: SchemaName::new(&name).expect("valid test schema name"),
            app: format!("tessera-test-{suffix}"),
        }
    }

    /// A store on this schema with short poll intervals.
    pub async fn store(&self) -> PostgresStore {
        self.builder().build().await.expect("store builds")
    }

    pub fn builder(&self) -> tessera_postgres::Builder {
        PostgresStore::builder(database_url())
            .schema(self.schema.clone())
            .application_name(&self.app)
            .pool_size(8)
            .subscription_config(SubscriptionConfig {
                batch_size: 100,
                buffer: 256,
                poll_interval: Duration::from_millis(100),
                retry_delay: Duration::from_millis(20),
            })
    }

    /// A second store on this schema whose connections carry another application name,
    /// so [`TestDb::terminate_connections`] and lookups by [`TestDb::app`] leave it out.
    pub async fn writer_store(&self) -> PostgresStore {
        self.builder()
            .application_name(format!("{}-writer", self.app))
            .build()
            .await
            .expect("writer store builds")
    }

    /// Terminates every server connection of this test's stores.
    pub async fn terminate_connections(&self, raw: &Client) -> i64 {
        let row = raw
            .query_one(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                 WHERE application_name = $1 AND pid <> pg_backend_pid()",
                &[&self.app],
            )
            .await
            .expect("terminate");
        row.get(0)
    }

    pub fn table(&self, name: &str) -> String {
        format!("\"{}\".{name}", self.schema.as_str())
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let sql = format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.schema.as_str());
        if !run_detached(sql) {
            eprintln!("could not drop test schema {}", self.schema);
        }
    }
}

/// Runs `sql` on a connection of its own, in a thread of its own (a `Drop` may run
/// inside or after the test's runtime); whether it succeeded.
pub fn run_detached(sql: String) -> bool {
    let url = database_url();
    let done = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(async {
            let (client, connection) = tokio_postgres::connect(&url, NoTls).await?;
            tokio::spawn(connection);
            client.batch_execute(&sql).await
        })
        .map_err(std::io::Error::other)
    })
    .join();
    matches!(done, Ok(Ok(())))
}

/// Opens a foreign transaction holding `stream`'s row lock, so appends to it block
/// (end it with `ROLLBACK`).
pub async fn lock_stream_row(db: &TestDb, stream: &str) -> Client {
    let raw = raw_client().await;
    raw.batch_execute(&format!(
        "BEGIN; SELECT version FROM {} WHERE stream_id = '{stream}' FOR UPDATE",
        db.table("streams")
    ))
    .await
    .unwrap();
    raw
}

/// Waits until a connection named `app` waits for a lock (an append blocked on a
/// stream row that [`lock_stream_row`] holds).
pub async fn wait_for_lock_wait(raw: &Client, app: &str) {
    wait_for_activity(raw, app, "wait_event_type = 'Lock'", "waited for a lock").await;
}

/// Waits (up to about 5 s) until a connection named `app` shows `condition` in
/// `pg_stat_activity`; panics saying it never `what`.
pub async fn wait_for_activity(raw: &Client, app: &str, condition: &str, what: &str) {
    let sql = format!(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND {condition}"
    );
    for _ in 0..500 {
        let row = raw.query_one(&sql, &[&app]).await.unwrap();
        if row.get::<_, i64>(0) > 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no connection of {app} ever {what}");
}

/// Rows of this test's `events` table for `stream`, counted by SQL (not by the store).
pub async fn count_rows(raw: &Client, db: &TestDb, stream: &str) -> i64 {
    raw.query_one(
        &format!(
            "SELECT count(*) FROM {} WHERE stream_id = $1",
            db.table("events")
        ),
        &[&stream],
    )
    .await
    .unwrap()
    .get(0)
}

/// A small JSON event of type `ty`.
pub fn event(ty: &str) -> NewEvent {
    NewEvent::json(ty, &serde_json::json!({ "n": fastrand::u32(..) })).expect("json")
}

/// Takes `n` events from `sub`, failing after `timeout` of silence.
pub async fn take(sub: &mut Subscription, n: usize, timeout: Duration) -> Vec<RecordedEvent> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        match tokio::time::timeout(timeout, sub.next()).await {
            Ok(Some(Ok(e))) => out.push(e),
            Ok(Some(Err(e))) => panic!("subscription failed: {e}"),
            Ok(None) => panic!("subscription ended after {} of {n} events", out.len()),
            Err(_) => panic!(
                "subscription delivered {} of {n} events, then nothing for {timeout:?}",
                out.len()
            ),
        }
    }
    out
}

/// Whether nothing arrives on `sub` for `wait`.
pub async fn quiet(sub: &mut Subscription, wait: Duration) -> Result<(), RecordedEvent> {
    match tokio::time::timeout(wait, sub.next()).await {
        Err(_) => Ok(()),
        Ok(Some(Ok(e))) => Err(e),
        Ok(other) => panic!("subscription ended or failed: {other:?}"),
    }
}

/// Whether `e` is the typed error for an unavailable store.
pub fn is_unavailable(e: &StoreError) -> bool {
    matches!(e, StoreError::Unavailable { .. })
}

/// Waits until readers can see `position` (another test's open transaction anywhere on
/// the server holds visibility back for a while).
pub async fn wait_visible(
    store: &tessera_postgres::PostgresStore,
    position: tessera_core::Position,
) {
    use tessera_core::EventReader;
    for _ in 0..1500 {
        if store.head().await.unwrap().is_some_and(|h| h >= position) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("position {position} never became visible");
}

/// Waits until no committed event of this store's schema is hidden from readers.
pub async fn wait_settled(store: &tessera_postgres::PostgresStore) {
    for _ in 0..1500 {
        if store.reader_lag().await.unwrap().events_behind == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("committed events stayed hidden from readers");
}
