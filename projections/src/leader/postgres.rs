//! Leases as PostgreSQL session advisory locks.

use std::time::Duration;

use deadpool_postgres::Pool;
use tessera_core::BoxError;
use tokio::sync::watch;

use super::{Leadership, Lease};

/// Leases held as session advisory locks on a connection taken out of `pool` for the
/// lease's life: a crashed holder's session ends and the lock with it.
#[derive(Clone)]
pub struct PgLeadership {
    pool: Pool,
    retry: Duration,
    check: Duration,
}

impl PgLeadership {
    /// Leases on `pool`'s database: a waiting instance tries every 500 ms, a holder
    /// checks its connection every second.
    pub fn new(pool: Pool) -> Self {
        Self {
            pool,
            retry: Duration::from_millis(500),
            check: Duration::from_secs(1),
        }
    }

    /// Sets how often a waiting instance tries and a holder checks its connection.
    #[must_use]
    pub fn with_intervals(mut self, retry: Duration, check: Duration) -> Self {
        self.retry = retry;
        self.check = check;
        self
    }
}

struct PgHold {
    watcher: tokio::task::JoinHandle<()>,
}

impl Drop for PgHold {
    fn drop(&mut self) {
        // The watcher owns the connection: ending it closes the session and frees the lock.
        self.watcher.abort();
    }
}

impl Leadership for PgLeadership {
    async fn acquire(&self, name: &str) -> Result<Lease, BoxError> {
        let key = format!("tessera_lease {name}");
        let client = deadpool_postgres::Object::take(self.pool.get().await?);
        loop {
            let row = client
                .query_one("SELECT pg_try_advisory_lock(hashtext($1))", &[&key])
                .await?;
            if row.try_get::<_, bool>(0)? {
                break;
            }
            tokio::time::sleep(self.retry).await;
        }
        let (lost, rx) = watch::channel(false);
        let check = self.check;
        let watcher = tokio::spawn(async move {
            loop {
                tokio::time::sleep(check).await;
                if client.simple_query("SELECT 1").await.is_err() {
                    let _ = lost.send(true);
                    return;
                }
            }
        });
        Ok(Lease::new(rx, Box::new(PgHold { watcher })))
    }
}
