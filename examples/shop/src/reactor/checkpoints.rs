//! Reactor checkpoints: in memory, or in a PostgreSQL table.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use deadpool_postgres::Pool;
use tessera_core::{BoxError, Position};

/// Where reactors keep their checkpoints.
#[derive(Clone)]
pub enum Checkpoints {
    /// In process memory (lost on exit, like the memory store).
    Memory(Arc<Mutex<HashMap<String, Position>>>),
    /// In `{schema}.checkpoints`.
    Pg {
        /// The pool.
        pool: Pool,
        /// The quoted, qualified table.
        table: String,
    },
}

impl Checkpoints {
    /// Checkpoints in memory.
    pub fn memory() -> Self {
        Checkpoints::Memory(Arc::default())
    }

    /// Checkpoints in `schema` (created if missing; `schema` is a checked identifier).
    pub async fn postgres(pool: Pool, schema: &str) -> Result<Self, BoxError> {
        let mut client = pool.get().await?;
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&schema])
            .await?;
        tx.batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS \"{schema}\";
             CREATE TABLE IF NOT EXISTS \"{schema}\".checkpoints (
                 name text PRIMARY KEY,
                 commit_pos bigint NOT NULL DEFAULT 0,
                 prepare_pos bigint NOT NULL DEFAULT 0,
                 updated_at timestamptz NOT NULL DEFAULT now());"
        ))
        .await?;
        tx.commit().await?;
        Ok(Checkpoints::Pg {
            pool,
            table: format!("\"{schema}\".checkpoints"),
        })
    }

    fn lock(
        map: &Mutex<HashMap<String, Position>>,
    ) -> std::sync::MutexGuard<'_, HashMap<String, Position>> {
        map.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The checkpoint of `name` ([`Position::START`] for none).
    pub async fn load(&self, name: &str) -> Result<Position, BoxError> {
        match self {
            Checkpoints::Memory(map) => Ok(Self::lock(map).get(name).copied().unwrap_or_default()),
            Checkpoints::Pg { pool, table } => {
                let client = pool.get().await?;
                client
                    .execute(
                        &format!("INSERT INTO {table} (name) VALUES ($1) ON CONFLICT DO NOTHING"),
                        &[&name],
                    )
                    .await?;
                let row = client
                    .query_one(
                        &format!("SELECT commit_pos, prepare_pos FROM {table} WHERE name = $1"),
                        &[&name],
                    )
                    .await?;
                Ok(Position::new(
                    u64::try_from(row.try_get::<_, i64>(0)?)?,
                    u64::try_from(row.try_get::<_, i64>(1)?)?,
                ))
            }
        }
    }

    /// Moves `name` from `from` to `to`; `false` when it was not at `from`.
    pub async fn advance(
        &self,
        name: &str,
        from: Position,
        to: Position,
    ) -> Result<bool, BoxError> {
        match self {
            Checkpoints::Memory(map) => {
                let mut map = Self::lock(map);
                let at = map.entry(name.to_owned()).or_default();
                if *at != from {
                    return Ok(false);
                }
                *at = to;
                Ok(true)
            }
            Checkpoints::Pg { pool, table } => {
                let client = pool.get().await?;
                let [fc, fp, tc, tp] =
                    [from.commit, from.prepare, to.commit, to.prepare].map(i64::try_from);
                let n = client
                    .execute(
                        &format!(
                            "UPDATE {table} SET commit_pos = $4, prepare_pos = $5, updated_at = now()
                              WHERE name = $1 AND commit_pos = $2 AND prepare_pos = $3"
                        ),
                        &[&name, &fc?, &fp?, &tc?, &tp?],
                    )
                    .await?;
                Ok(n == 1)
            }
        }
    }
}
