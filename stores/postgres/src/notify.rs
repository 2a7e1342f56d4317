//! Wake-up hints for other processes: `NOTIFY` after appends commit, coalesced.
//!
//! `NOTIFY` inside an appending transaction holds the server's notification lock across
//! the commit's WAL flush, which serializes every commit; as a transaction of its own it
//! needs a commit of its own. So one task sends it, off the append path: each committed
//! group leaves a hint (its store's channel and token), and the task sends the hints it
//! finds in one statement, so any number of commits during one `NOTIFY` cost a single
//! next one, and at most one is sent per [`MIN_INTERVAL`]: under load every `NOTIFY` is
//! a transaction the server runs beside the appends, and a hint does not need to come
//! more often. The last commit is always followed by a notification: a failed one is
//! sent again after a pause (while the database is unreachable, polling covers the
//! wait), and once the stores are dropped it gets one last try. Hints taken by a send
//! that its runtime's shutdown cancels are lost (polling covers them too).
//!
//! Stores of one database built with [`Builder::listen_with`](crate::Builder::listen_with)
//! share their LISTEN connection's notifier: the hints of all of them go out in one
//! statement (one `pg_notify` per channel), so three stores of a process cost one
//! notifying transaction per interval, not three. Its task runs on the pool and runtime
//! of the store that started it; a commit of any of them starts it again, on that
//! store's pool, if it ended with its runtime.
//!
//! Subscribers of the same store object do not wait for it: the writers wake them
//! directly, and its payload is the store's token (a random id per
//! [`PostgresStore`](crate::PostgresStore) built), so its own listener ignores it
//! instead of waking them a second time for the same commits.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use deadpool_postgres::Pool;
use tokio::sync::Notify;

use crate::error::describe;

/// The least time between two `NOTIFY`s: the most a subscriber in another process
/// waits beyond the commit for its wake-up.
pub(crate) const MIN_INTERVAL: Duration = Duration::from_millis(10);

/// How long the task waits after a `NOTIFY` failed.
const FAILED_PAUSE: Duration = Duration::from_millis(100);

/// Every pending hint in one statement, committed asynchronously: `NOTIFY` needs a
/// transaction id, and a hint is not worth waiting for a WAL flush. `$1`: channels,
/// `$2`: the sending stores' tokens.
const NOTIFY: &str = "SELECT set_config('synchronous_commit', 'off', true), \
     count(pg_notify(h.channel, h.token)) FROM unnest($1::text[], $2::text[]) AS h(channel, token)";

/// A random token naming one store object in `NOTIFY` payloads.
pub(crate) fn token() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// One store's hint: its channel and its token.
pub(crate) type Hint = (String, String);

/// The notifier of one store, or of the stores sharing a LISTEN connection. Its task
/// ends once the notifier is dropped (with the last store), after sending what is
/// pending.
pub(crate) struct Notifier {
    shared: Arc<Shared>,
}

struct Shared {
    pending: Mutex<Pending>,
    wake: Notify,
    /// The task runs (cleared when it ends, by returning or with its runtime): a
    /// commit checks this, not the task's handle, so the append path takes no lock.
    running: AtomicBool,
}

/// Clears [`Shared::running`] when the task ends, however it ends.
struct Running(Arc<Shared>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.running.store(false, Ordering::Release);
    }
}

#[derive(Default)]
struct Pending {
    hints: Vec<Hint>,
    closed: bool,
}

impl Shared {
    fn pending(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `hints` (each once) and wakes the task.
    fn add(&self, hints: impl IntoIterator<Item = Hint>) {
        let mut pending = self.pending();
        for hint in hints {
            if !pending.hints.contains(&hint) {
                pending.hints.push(hint);
            }
        }
        drop(pending);
        self.wake.notify_one();
    }
}

impl Notifier {
    /// A notifier whose task starts with [`Self::start`].
    pub(crate) fn new() -> Self {
        Self {
            shared: Arc::new(Shared {
                pending: Mutex::default(),
                wake: Notify::new(),
                running: AtomicBool::new(false),
            }),
        }
    }

    /// Starts the task sending on `pool`, unless it runs (a store sharing the notifier
    /// started it on its own pool, of the same database).
    pub(crate) fn start(&self, pool: &Pool) {
        if self.shared.running.swap(true, Ordering::AcqRel) {
            return;
        }
        // Moved into the task, so it clears `running` even if the task is dropped
        // before its first poll.
        let running = Running(Arc::clone(&self.shared));
        let pool = pool.clone();
        let sending = run(Arc::clone(&self.shared), move |hints| {
            send(pool.clone(), hints)
        });
        tokio::spawn(async move {
            let _running = running;
            sending.await;
        });
    }

    /// Appends of the store named by `hint` committed (on `pool`, which starts the task
    /// again if it ended with the runtime of the store that started it).
    pub(crate) fn committed(&self, hint: &Hint, pool: &Pool) {
        self.shared.add(std::iter::once(hint.clone()));
        if !self.shared.running.load(Ordering::Acquire) {
            self.start(pool);
        }
    }
}

impl Drop for Notifier {
    fn drop(&mut self) {
        self.shared.pending().closed = true;
        self.shared.wake.notify_one();
    }
}

/// Sends `hints` in one statement.
async fn send(pool: Pool, hints: Vec<Hint>) -> Result<(), String> {
    let client = pool.get().await.map_err(|e| e.to_string())?;
    let statement = client
        .prepare_cached(NOTIFY)
        .await
        .map_err(|e| describe(&e))?;
    let (channels, tokens): (Vec<String>, Vec<String>) = hints.into_iter().unzip();
    client
        .execute(&statement, &[&channels, &tokens])
        .await
        .map(drop)
        .map_err(|e| describe(&e))
}

/// Sends the pending hints through `send` whenever there are some, at most once per
/// [`MIN_INTERVAL`], until the notifier is dropped and nothing is pending.
async fn run<F, Fut>(shared: Arc<Shared>, mut send: F)
where
    F: FnMut(Vec<Hint>) -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    loop {
        let (hints, closed) = {
            let mut pending = shared.pending();
            (std::mem::take(&mut pending.hints), pending.closed)
        };
        if hints.is_empty() {
            if closed {
                return;
            }
            shared.wake.notified().await;
            continue;
        }
        match send(hints.clone()).await {
            Ok(()) => tokio::time::sleep(MIN_INTERVAL).await,
            Err(e) => {
                // Sent again after the pause (with whatever came meanwhile): a killed
                // connection must not cost the commits their hint.
                tracing::debug!(error = %e, "NOTIFY failed; retrying, subscribers elsewhere poll meanwhile");
                tokio::time::sleep(FAILED_PAUSE).await;
                // Once the notifier is dropped, one last try for everything pending,
                // then the task ends (so an unreachable database does not keep it).
                let closed = shared.pending().closed;
                shared.add(hints);
                if closed {
                    let last = std::mem::take(&mut shared.pending().hints);
                    if let Err(e) = send(last).await {
                        tracing::debug!(error = %e, "last NOTIFY failed; subscribers elsewhere poll");
                    }
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use tokio::task::JoinHandle;

    use super::{run, Hint, Notifier, FAILED_PAUSE, MIN_INTERVAL};

    type Sent = Arc<Mutex<Vec<Vec<Hint>>>>;

    /// A notifier whose task records what it sends, failing the first `failures` sends.
    fn recording(failures: usize) -> (Notifier, Sent, JoinHandle<()>) {
        let notifier = Notifier::new();
        let sent: Sent = Arc::default();
        let log = Arc::clone(&sent);
        let mut left = failures;
        let task = tokio::spawn(run(Arc::clone(&notifier.shared), move |hints| {
            let failed = left > 0;
            left = left.saturating_sub(1);
            if !failed {
                log.lock().unwrap().push(hints);
            }
            async move {
                if failed {
                    Err("connection killed".to_owned())
                } else {
                    Ok(())
                }
            }
        }));
        (notifier, sent, task)
    }

    fn hint(store: &str) -> Hint {
        (format!("tessera_{store}"), format!("token-{store}"))
    }

    fn commit(notifier: &Notifier, store: &str) {
        notifier.shared.add([hint(store)]);
    }

    /// Commits of stores sharing a notifier within one interval go out in one
    /// statement, each store's hint once however many commits it made, and not before
    /// the interval since the last statement ends; the last hints go out when the
    /// notifier is dropped, and then the task ends.
    #[tokio::test(start_paused = true)]
    async fn hints_of_one_interval_go_out_together_once_each() {
        let (notifier, sent, task) = recording(0);
        commit(&notifier, "ordering");
        tokio::task::yield_now().await;
        assert_eq!(*sent.lock().unwrap(), vec![vec![hint("ordering")]]);
        for store in ["payment", "inventory", "payment", "ordering"] {
            commit(&notifier, store);
            tokio::task::yield_now().await;
        }
        tokio::time::sleep(MIN_INTERVAL - Duration::from_millis(1)).await;
        assert_eq!(sent.lock().unwrap().len(), 1, "sent within the interval");
        tokio::time::sleep(Duration::from_millis(2)).await;
        assert_eq!(
            sent.lock().unwrap()[1],
            vec![hint("payment"), hint("inventory"), hint("ordering")]
        );
        tokio::time::sleep(MIN_INTERVAL * 5).await;
        commit(&notifier, "payment");
        drop(notifier);
        tokio::time::timeout(MIN_INTERVAL * 2, task)
            .await
            .expect("the task ends once the notifier is dropped")
            .expect("the task");
        let sent = sent.lock().unwrap();
        assert_eq!(sent.len(), 3, "{sent:?}");
        assert_eq!(sent[2], vec![hint("payment")]);
    }

    /// Hints whose `NOTIFY` failed just before the stores were dropped get one last
    /// try, with those that came meanwhile, and then the task ends.
    #[tokio::test(start_paused = true)]
    async fn a_dropped_notifier_gives_a_failed_notify_one_last_try() {
        let (notifier, sent, task) = recording(1);
        commit(&notifier, "ordering");
        tokio::task::yield_now().await;
        commit(&notifier, "payment");
        drop(notifier);
        tokio::time::timeout(FAILED_PAUSE * 2, task)
            .await
            .expect("the task ends")
            .expect("the task");
        assert_eq!(
            *sent.lock().unwrap(),
            vec![vec![hint("payment"), hint("ordering")]]
        );
    }

    /// The task ends with the runtime it was started on (here before it ever ran); a
    /// commit made from another runtime starts it again there.
    #[test]
    fn a_commit_restarts_a_task_that_ended_with_its_runtime() {
        let config: tokio_postgres::Config = "host=127.0.0.1 port=1 user=nobody".parse().unwrap();
        let manager = deadpool_postgres::Manager::new(config, tokio_postgres::NoTls);
        let pool = deadpool_postgres::Pool::builder(manager)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .unwrap();
        let notifier = Notifier::new();
        let first = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        first.block_on(async { notifier.start(&pool) });
        assert!(notifier
            .shared
            .running
            .load(std::sync::atomic::Ordering::Acquire));
        drop(first);
        assert!(
            !notifier
                .shared
                .running
                .load(std::sync::atomic::Ordering::Acquire),
            "the task ended with its runtime"
        );
        let second = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        second.block_on(async { notifier.committed(&hint("ordering"), &pool) });
        assert!(
            notifier
                .shared
                .running
                .load(std::sync::atomic::Ordering::Acquire),
            "the commit started it again"
        );
    }

    /// A failed `NOTIFY` (its connection killed) is sent again after a pause, with the
    /// hints that came meanwhile.
    #[tokio::test(start_paused = true)]
    async fn a_failed_notify_is_sent_again() {
        let (notifier, sent, _task) = recording(1);
        commit(&notifier, "ordering");
        tokio::task::yield_now().await;
        commit(&notifier, "payment");
        tokio::time::sleep(FAILED_PAUSE + Duration::from_millis(1)).await;
        assert_eq!(
            *sent.lock().unwrap(),
            vec![vec![hint("payment"), hint("ordering")]]
        );
    }
}
