//! LISTEN for appends, as a wake-up hint for subscriptions: a connection per store, or
//! one shared by the stores of a database built with
//! [`Builder::listen_with`](crate::Builder::listen_with).
//!
//! The hint only shortens the wait between polls: a missed notification costs one poll
//! interval, never an event. The connection is reopened with backoff whenever it ends,
//! and subscribers are woken after each reconnect in case something was missed.
//!
//! Why shared: the server signals every listening connection of a database on every
//! `NOTIFY` in it, whatever the channel, and each signalled connection reads the
//! notification queue in a transaction of its own: three stores of one process in one
//! database, each listening on its own connection, cost three such transactions per
//! `NOTIFY` (issue 22 counted about three per order); one connection listening on their
//! three channels costs one.

use std::future::poll_fn;
use std::pin::pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::Poll;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;
use tokio_postgres::{AsyncMessage, Config, Connection, Socket};

use crate::error::describe;
use crate::tls::Connector;

const FIRST_DELAY: Duration = Duration::from_millis(50);
const MAX_DELAY: Duration = Duration::from_secs(5);

/// One store's interest: wake `appended` on a notification of `channel`, unless its
/// payload is `own` (the store's own hint: its writers woke its subscribers already).
struct Interest {
    id: u64,
    channel: String,
    own: String,
    appended: watch::Sender<u64>,
}

/// A LISTEN connection's settings and the stores registered on it. Stores built with
/// [`Builder::listen_with`](crate::Builder::listen_with) share their first store's.
pub(crate) struct Listener {
    config: Config,
    tls: Connector,
    interests: Mutex<Interests>,
    /// A store registered: LISTEN on its channel.
    registered: Notify,
    /// The `NOTIFY` side of the stores sharing this connection (one database).
    notifier: Arc<crate::notify::Notifier>,
}

#[derive(Default)]
struct Interests {
    list: Vec<Interest>,
    next_id: u64,
    /// The connection's task, while a store is registered.
    task: Option<JoinHandle<()>>,
}

/// Its channels (never its settings: they may hold a password).
impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listener")
            .field("channels", &self.channels())
            .finish_non_exhaustive()
    }
}

impl Listener {
    /// A listener connecting with `config` and `tls` once a store registers.
    pub(crate) fn new(config: Config, tls: Connector) -> Arc<Self> {
        Arc::new(Self {
            config,
            tls,
            interests: Mutex::default(),
            registered: Notify::new(),
            notifier: Arc::new(crate::notify::Notifier::new()),
        })
    }

    /// The notifier of the stores listening here.
    pub(crate) fn notifier(&self) -> Arc<crate::notify::Notifier> {
        Arc::clone(&self.notifier)
    }

    fn interests(&self) -> MutexGuard<'_, Interests> {
        self.interests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a store: `appended` is bumped on each notification of `channel`
    /// whose payload is not `own`. Starts the connection's task (on the caller's
    /// runtime) if none is running.
    pub(crate) fn register(
        self: &Arc<Self>,
        (channel, own): (String, String),
        appended: watch::Sender<u64>,
    ) -> Registration {
        let mut interests = self.interests();
        interests.next_id += 1;
        let id = interests.next_id;
        interests.list.push(Interest {
            id,
            channel,
            own,
            appended,
        });
        if interests.task.as_ref().is_none_or(JoinHandle::is_finished) {
            interests.task = Some(tokio::spawn(run(Arc::clone(self))));
        }
        drop(interests);
        self.registered.notify_one();
        Registration {
            listener: Arc::clone(self),
            id,
        }
    }

    /// Wakes the stores interested in `channel` (all of them: `None`), except the one
    /// whose token is `payload`.
    fn wake(&self, channel: Option<&str>, payload: &str) {
        for i in &self.interests().list {
            if channel.is_none_or(|c| c == i.channel) && i.own != payload {
                bump(&i.appended);
            }
        }
    }

    /// The channels registered, each once.
    fn channels(&self) -> Vec<String> {
        let mut channels: Vec<String> = self
            .interests()
            .list
            .iter()
            .map(|i| i.channel.clone())
            .collect();
        channels.sort_unstable();
        channels.dedup();
        channels
    }
}

/// A store's place on a listener; dropping it (with the store) stops the connection
/// when no store is left on it.
pub(crate) struct Registration {
    listener: Arc<Listener>,
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut interests = self.listener.interests();
        interests.list.retain(|i| i.id != self.id);
        if interests.list.is_empty() {
            if let Some(task) = interests.task.take() {
                task.abort();
            }
        }
    }
}

/// Listens until aborted (when the last store leaves), reconnecting with backoff.
async fn run(listener: Arc<Listener>) {
    let mut delay = FIRST_DELAY;
    loop {
        let started = Instant::now();
        match listen_once(&listener).await {
            Ok(()) => tracing::warn!("LISTEN connection closed; reconnecting"),
            Err(e) => {
                tracing::warn!(error = %describe(&e), "LISTEN connection failed; reconnecting")
            }
        }
        listener.wake(None, "");
        if started.elapsed() > MAX_DELAY {
            delay = FIRST_DELAY;
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(MAX_DELAY);
    }
}

async fn listen_once(listener: &Listener) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = listener.config.connect(listener.tls.clone()).await?;
    let mut messages = pin!(forward(&mut connection, listener));
    let mut listening: Vec<String> = Vec::new();
    loop {
        let registered = listener.registered.notified();
        let mut wanted = listener.channels();
        wanted.retain(|c| !listening.contains(c));
        if wanted.is_empty() {
            tokio::select! {
                () = registered => continue,
                r = &mut messages => return r,
            }
        }
        let listen: String = wanted.iter().map(|c| format!("LISTEN \"{c}\";")).collect();
        tokio::select! {
            r = client.batch_execute(&listen) => r?,
            r = &mut messages => return r,
        }
        tracing::debug!(channels = ?wanted, "listening for appends");
        // Appends made before LISTEN took effect sent no notification we will see.
        for channel in &wanted {
            listener.wake(Some(channel), "");
        }
        listening.extend(wanted);
    }
}

/// Drives the connection, turning notifications into wake-ups, until it ends.
async fn forward<T: AsyncRead + AsyncWrite + Unpin>(
    connection: &mut Connection<Socket, T>,
    listener: &Listener,
) -> Result<(), tokio_postgres::Error> {
    poll_fn(|cx| loop {
        match connection.poll_message(cx) {
            Poll::Ready(Some(Ok(AsyncMessage::Notification(n)))) => {
                listener.wake(Some(n.channel()), n.payload());
            }
            Poll::Ready(Some(Ok(_))) => {}
            Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(e)),
            Poll::Ready(None) => return Poll::Ready(Ok(())),
            Poll::Pending => return Poll::Pending,
        }
    })
    .await
}

fn bump(appended: &watch::Sender<u64>) {
    appended.send_modify(|v| *v = v.wrapping_add(1));
}
