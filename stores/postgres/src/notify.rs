//! Wake-up hints for other processes: `NOTIFY` after appends commit, coalesced.
//!
//! `NOTIFY` inside an appending transaction holds the server's notification lock across
//! the commit's WAL flush, which serializes every commit; as a transaction of its own it
//! needs a commit of its own. So one task sends it, off the append path: each committed
//! group marks the log changed, and the task sends one `NOTIFY` per change it sees, so
//! any number of commits during one `NOTIFY` cost a single next one, and at most one
//! is sent per [`MIN_INTERVAL`]: under load every `NOTIFY` is a transaction the server
//! runs beside the appends, and a hint does not need to come more often. The last
//! commit is always followed by a notification (unless the database is unreachable:
//! polling covers that). Subscribers of the same store object do not wait for it: the
//! writers wake them directly, and its payload is the store's token (a random id per
//! [`PostgresStore`](crate::PostgresStore) built), so its own listener ignores it
//! instead of waking them a second time for the same commits.

use std::time::Duration;

use deadpool_postgres::Pool;
use tokio::sync::watch;

use crate::error::describe;

/// The least time between two `NOTIFY`s: the most a subscriber in another process
/// waits beyond the commit for its wake-up.
pub(crate) const MIN_INTERVAL: Duration = Duration::from_millis(10);

/// A random token naming one store object in `NOTIFY` payloads.
pub(crate) fn token() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Sends `notify` (with `token` as its payload) after each change of `committed` until
/// every sender is gone.
pub(crate) async fn run(
    pool: Pool,
    (notify, token): (String, String),
    mut committed: watch::Receiver<u64>,
) {
    while committed.changed().await.is_ok() {
        committed.borrow_and_update();
        let sent = match pool.get().await {
            Ok(client) => match client.prepare_cached(&notify).await {
                Ok(statement) => client
                    .execute(&statement, &[&token])
                    .await
                    .map(drop)
                    .map_err(|e| describe(&e)),
                Err(e) => Err(describe(&e)),
            },
            Err(e) => Err(e.to_string()),
        };
        match sent {
            Ok(()) => tokio::time::sleep(MIN_INTERVAL).await,
            Err(e) => {
                tracing::debug!(error = %e, "NOTIFY failed; subscribers elsewhere fall back to polling");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}
