//! What PostgreSQL committed during a load: transactions of the shop's database
//! (`pg_stat_database.xact_commit`, read-only ones included) and transactions that
//! wrote (transaction ids assigned, cluster-wide).

use std::time::Duration;

use tessera_core::BoxError;
use tokio::time::Instant;

/// The counters at one instant.
#[derive(Debug, Clone, Copy)]
pub struct Counters {
    /// `xact_commit` of the current database.
    pub commits: i64,
    /// The next transaction id to be assigned (cluster-wide).
    pub next_xid: i64,
    /// When they were read.
    pub at: Instant,
}

/// Transactions between two readings.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Committed {
    /// Transactions committed in the database, read-only ones included.
    pub commits: u64,
    /// Transactions that were assigned an id: those that wrote (in any database of the
    /// cluster).
    pub writes: u64,
    /// Time between the two readings.
    pub window: Duration,
}

/// A connection for reading the counters.
pub struct Stats {
    client: tokio_postgres::Client,
    connection: tokio::task::JoinHandle<()>,
}

impl Stats {
    /// Connects to `url`.
    pub async fn connect(url: &str) -> Result<Self, BoxError> {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .map_err(|e| format!("--database-url: {e}"))?;
        let connection = tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Self { client, connection })
    }

    /// The counters now. `xact_commit` is what backends have published: PostgreSQL 15
    /// publishes a backend's counts when it goes idle, at most once a second, and an
    /// idle backend's within 10 s; read after waiting that long. A backend that only
    /// `LISTEN`s runs a transaction for each notification it takes in but publishes
    /// them only when it next runs a statement or exits: while the shop runs they are
    /// missing (about three per `NOTIFY`, one per listening store, seen in `shop seed`,
    /// whose process exits), so the count is a lower bound. (Each reading is a
    /// transaction of its own, so its statistics snapshot is fresh.)
    pub async fn read(&self) -> Result<Counters, BoxError> {
        let row = self
            .client
            .query_one(
                "SELECT xact_commit, txid_snapshot_xmax(txid_current_snapshot()) \
                   FROM pg_stat_database WHERE datname = current_database()",
                &[],
            )
            .await?;
        Ok(Counters {
            commits: row.try_get(0)?,
            next_xid: row.try_get(1)?,
            at: Instant::now(),
        })
    }
}

impl Drop for Stats {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

impl Counters {
    /// What was committed from `self` to `later`.
    pub fn until(&self, later: &Counters) -> Committed {
        let delta = |a: i64, b: i64| u64::try_from(b.saturating_sub(a)).unwrap_or(0);
        Committed {
            commits: delta(self.commits, later.commits),
            writes: delta(self.next_xid, later.next_xid),
            window: later.at.saturating_duration_since(self.at),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::time::Instant;

    use super::{Committed, Counters};

    #[test]
    fn committed_is_the_difference() {
        let at = Instant::now();
        let a = Counters {
            commits: 100,
            next_xid: 50,
            at,
        };
        let b = Counters {
            commits: 160,
            next_xid: 70,
            at: at + Duration::from_secs(3),
        };
        assert_eq!(
            a.until(&b),
            Committed {
                commits: 60,
                writes: 20,
                window: Duration::from_secs(3)
            }
        );
        assert_eq!(b.until(&a).commits, 0, "never negative");
    }
}
