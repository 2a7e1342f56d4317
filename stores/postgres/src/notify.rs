//! Wake-up hints for other processes: `NOTIFY` after appends commit, coalesced.
//!
//! `NOTIFY` inside an appending transaction holds the server's notification lock across
//! the commit's WAL flush, which serializes every commit; as a transaction of its own it
//! needs a commit of its own. So one task sends it, off the append path: each committed
//! group marks the log changed, and the task sends one `NOTIFY` per change it sees, so
//! any number of commits during one `NOTIFY` cost a single next one. The last commit is
//! always followed by a notification (unless the database is unreachable: polling
//! covers that).

use std::time::Duration;

use deadpool_postgres::Pool;
use tokio::sync::watch;

use crate::error::describe;

/// Sends `notify` after each change of `committed` until every sender is gone.
pub(crate) async fn run(pool: Pool, notify: String, mut committed: watch::Receiver<u64>) {
    while committed.changed().await.is_ok() {
        committed.borrow_and_update();
        let sent = match pool.get().await {
            Ok(client) => client
                .batch_execute(&notify)
                .await
                .map_err(|e| describe(&e)),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = sent {
            tracing::debug!(error = %e, "NOTIFY failed; subscribers elsewhere fall back to polling");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
