//! Durable payment deadlines: stored when a payment is requested, cancelled when it is
//! answered, fired once by the ticker when due.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use deadpool_postgres::Pool;
use tessera_core::BoxError;
use uuid::Uuid;

/// Where deadlines are kept.
#[derive(Clone)]
pub enum Deadlines {
    /// In process memory.
    Memory(Arc<Mutex<HashMap<Uuid, SystemTime>>>),
    /// In `{schema}.deadlines`.
    Pg {
        /// The pool.
        pool: Pool,
        /// The quoted, qualified table.
        table: String,
    },
}

impl Deadlines {
    /// Deadlines in memory.
    pub fn memory() -> Self {
        Deadlines::Memory(Arc::default())
    }

    /// Deadlines in `schema` (created if missing; a checked identifier).
    pub async fn postgres(pool: Pool, schema: &str) -> Result<Self, BoxError> {
        let mut client = pool.get().await?;
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&schema])
            .await?;
        tx.batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS \"{schema}\";
             CREATE TABLE IF NOT EXISTS \"{schema}\".deadlines (
                 order_id uuid PRIMARY KEY,
                 due_at timestamptz NOT NULL);
             CREATE INDEX IF NOT EXISTS deadlines_due ON \"{schema}\".deadlines (due_at);"
        ))
        .await?;
        tx.commit().await?;
        Ok(Deadlines::Pg {
            pool,
            table: format!("\"{schema}\".deadlines"),
        })
    }

    fn lock(
        map: &Mutex<HashMap<Uuid, SystemTime>>,
    ) -> std::sync::MutexGuard<'_, HashMap<Uuid, SystemTime>> {
        map.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Stores the deadline of `order_id` unless one is stored.
    pub async fn schedule(&self, order_id: Uuid, due: SystemTime) -> Result<(), BoxError> {
        match self {
            Deadlines::Memory(map) => {
                Self::lock(map).entry(order_id).or_insert(due);
            }
            Deadlines::Pg { pool, table } => {
                pool.get()
                    .await?
                    .execute(
                        &format!("INSERT INTO {table} (order_id, due_at) VALUES ($1, $2) ON CONFLICT DO NOTHING"),
                        &[&order_id, &due],
                    )
                    .await?;
            }
        }
        Ok(())
    }

    /// Removes the deadline of `order_id` (answered, or fired).
    pub async fn cancel(&self, order_id: Uuid) -> Result<(), BoxError> {
        match self {
            Deadlines::Memory(map) => {
                Self::lock(map).remove(&order_id);
            }
            Deadlines::Pg { pool, table } => {
                pool.get()
                    .await?
                    .execute(
                        &format!("DELETE FROM {table} WHERE order_id = $1"),
                        &[&order_id],
                    )
                    .await?;
            }
        }
        Ok(())
    }

    /// Up to `limit` orders whose deadline is at or before `now`.
    pub async fn due(&self, now: SystemTime, limit: usize) -> Result<Vec<Uuid>, BoxError> {
        match self {
            Deadlines::Memory(map) => Ok(Self::lock(map)
                .iter()
                .filter(|(_, due)| **due <= now)
                .map(|(id, _)| *id)
                .take(limit)
                .collect()),
            Deadlines::Pg { pool, table } => {
                let limit = i64::try_from(limit)?;
                let rows = pool
                    .get()
                    .await?
                    .query(
                        &format!("SELECT order_id FROM {table} WHERE due_at <= $1 ORDER BY due_at LIMIT $2"),
                        &[&now, &limit],
                    )
                    .await?;
                rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
            }
        }
    }
}
