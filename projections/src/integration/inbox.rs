//! The inbox: a durable consumer that hands each integration message to a handler, in
//! version order per source stream, and acknowledges only after the handler's write.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tessera_core::BoxError;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use self::metered::InboxMetrics;
use super::{Bus, ConsumerSpec, Message};
use crate::checkpoint::CheckpointStore;

mod deliver;
mod metered;
mod positions;
mod run;

/// What an inbox does with each message: write to the local store (with ids or
/// idempotency keys derived from the message, see [`Message::derived_event_id`]) or
/// hand it to a process manager. It must be idempotent: a message is delivered again
/// when a crash comes between the write and the acknowledgement.
pub trait InboxHandler: Send + Sync + 'static {
    /// Handles one message; an error has it delivered again after a backoff.
    fn handle(&self, message: &Message) -> impl Future<Output = Result<(), BoxError>> + Send;

    /// Handles consecutive messages of one source stream, in version order (at most
    /// [`InboxConfig::batch`] of them, none carrying a trace context: a traced message
    /// is handed to [`handle`](Self::handle) alone, under its own span). On an error,
    /// [`BatchFailed::handled`] says how many messages from the first were handled;
    /// the inbox records those, treats the next as a failed delivery and hands the
    /// rest again later. Messages after the failed one may have been handled too: the
    /// handler is idempotent, so handling them again leaves their effect once.
    ///
    /// The default handles them one after the other with [`handle`](Self::handle).
    /// Override it to write a run at once: the messages of one source stream often go
    /// to different destinations (one stream per order, say), whose writes need not
    /// wait for each other; writes to one destination must keep the messages' order.
    ///
    /// ```
    /// use tessera_core::BoxError;
    /// use tessera_projections::integration::{BatchFailed, InboxHandler, Message};
    ///
    /// struct Count(std::sync::atomic::AtomicUsize);
    ///
    /// impl InboxHandler for Count {
    ///     async fn handle(&self, _: &Message) -> Result<(), BoxError> {
    ///         self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    ///         Ok(())
    ///     }
    ///
    ///     // One write for the whole run (here, one counter update).
    ///     async fn handle_batch(&self, messages: &[Message]) -> Result<(), BatchFailed> {
    ///         self.0.fetch_add(messages.len(), std::sync::atomic::Ordering::Relaxed);
    ///         Ok(())
    ///     }
    /// }
    /// ```
    fn handle_batch(
        &self,
        messages: &[Message],
    ) -> impl Future<Output = Result<(), BatchFailed>> + Send {
        async move {
            for (handled, message) in messages.iter().enumerate() {
                if let Err(error) = self.handle(message).await {
                    return Err(BatchFailed { handled, error });
                }
            }
            Ok(())
        }
    }
}

/// Why [`InboxHandler::handle_batch`] stopped: the messages before `handled` are
/// handled, the one at `handled` failed with `error`.
#[derive(Debug)]
pub struct BatchFailed {
    /// How many messages, from the first, were handled.
    pub handled: usize,
    /// Why the next one was not.
    pub error: BoxError,
}

/// How an inbox consumes and what it does with failures.
#[derive(Debug, Clone)]
pub struct InboxConfig {
    /// The durable consumer it reads.
    pub consumer: ConsumerSpec,
    /// Deliveries of one message the handler may fail before it is poison.
    pub max_attempts: u32,
    /// Delay before the first retry of a failed message (doubling, capped).
    pub min_backoff: Duration,
    /// Cap of the retry delay, and of the wait before reconnecting to the broker.
    pub max_backoff: Duration,
    /// Delay before a message held back for a missing predecessor is asked for again.
    pub hold_back: Duration,
    /// Park poison messages in the dead-letter destination and go on (`true`), or stop
    /// the inbox naming the message (`false`, the default).
    pub dead_letter: bool,
    /// Source streams handled at once (at least 1; at most the consumer's
    /// `max_in_flight` deliveries are held). The messages of one stream are always
    /// handled one after the other, in version order.
    pub concurrency: usize,
    /// Most consecutive messages of one source stream handed to
    /// [`InboxHandler::handle_batch`] at once (at least 1). While a stream's messages
    /// are being handled, the next ones wait; they then go to the handler together and
    /// the stream's position moves once for them. Up to `concurrency × batch`
    /// deliveries are held, within the consumer's `max_in_flight`.
    pub batch: usize,
}

impl InboxConfig {
    /// Defaults for `consumer`: 5 attempts, 50 ms to 5 s backoff, 20 ms hold-back, stop
    /// on poison, 16 streams at once, up to 64 messages of a stream at once.
    pub fn new(consumer: ConsumerSpec) -> Self {
        Self {
            consumer,
            max_attempts: 5,
            min_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(5),
            hold_back: Duration::from_millis(20),
            dead_letter: false,
            concurrency: 16,
            batch: 64,
        }
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let doubled = self
            .min_backoff
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
        doubled.min(self.max_backoff)
    }
}

/// Where an inbox is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboxState {
    /// Opening its consumer.
    Starting,
    /// Consuming.
    Running,
    /// The broker is unreachable: backing off, then opening the consumer again.
    Reconnecting,
    /// Stopped on request.
    Stopped,
    /// Stopped on a poison message (see [`InboxStatus::poison`]).
    Failed,
}

impl InboxState {
    /// Lower-case name (`"starting"`, `"running"`, `"reconnecting"`, `"stopped"`,
    /// `"failed"`), for status pages and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            InboxState::Starting => "starting",
            InboxState::Running => "running",
            InboxState::Reconnecting => "reconnecting",
            InboxState::Stopped => "stopped",
            InboxState::Failed => "failed",
        }
    }
}

/// The message an inbox stopped on, or parked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Poison {
    /// The source stream (empty for a command or an unreadable message).
    pub stream: String,
    /// The source version.
    pub version: u64,
    /// The integration name (empty for an unreadable message).
    pub name: String,
    /// The message id, when it could be read.
    pub id: Option<uuid::Uuid>,
    /// The last error.
    pub error: String,
}

/// An inbox's figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxStatus {
    /// The consumer's name.
    pub name: String,
    /// Where it is.
    pub state: InboxState,
    /// Messages handled.
    pub handled: u64,
    /// Repeats acknowledged without effect.
    pub duplicates: u64,
    /// Deliveries held back because a predecessor had not been handled yet.
    pub held_back: u64,
    /// Messages parked in the dead-letter destination.
    pub dead_lettered: u64,
    /// Deliveries that were not integration messages.
    pub rejected: u64,
    /// Messages the broker holds for the consumer, not acknowledged yet (refreshed
    /// about every second; `None` if the broker cannot tell).
    pub lag: Option<u64>,
    /// The last error (handler, broker or message).
    pub last_error: Option<String>,
    /// The message it stopped on (state `Failed`), or the last one it parked.
    pub poison: Option<Poison>,
}

/// A durable consumer feeding an [`InboxHandler`]. See the [module](super) docs.
///
/// It handles up to [`InboxConfig::concurrency`] source streams at once, each stream's
/// messages one after the other: a slow handler on one stream does not hold the others
/// back, and an inbox keeping its positions in PostgreSQL is not bound to one round
/// trip at a time: the lanes' reads and moves of positions go to the store together,
/// one round trip for whatever queued while the previous one was under way.
pub struct Inbox<H, C> {
    shared: Arc<Shared<H, C>>,
}

/// What every delivery of an inbox needs, shared with the tasks handling them.
struct Shared<H, C> {
    bus: Arc<dyn Bus>,
    handler: H,
    /// The source streams' positions, read and moved for many lanes at once.
    positions: Arc<positions::Positions<C>>,
    config: InboxConfig,
    status: Arc<Mutex<InboxStatus>>,
    metrics: InboxMetrics,
    /// Positions as this inbox last stored or read them, by key.
    known: Mutex<std::collections::HashMap<String, tessera_core::Position>>,
    /// The bus's `messaging.system`, for the spans continuing a message's trace.
    system: &'static str,
}

impl<H, C> Shared<H, C> {
    fn update(&self, f: impl FnOnce(&mut InboxStatus)) {
        f(&mut self.status.lock().unwrap_or_else(PoisonError::into_inner));
    }
}

/// A running inbox.
pub struct InboxHandle {
    status: Arc<Mutex<InboxStatus>>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl InboxHandle {
    /// Its figures now.
    pub fn status(&self) -> InboxStatus {
        self.status
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Stops it after the message in hand; returns its last status.
    pub async fn stop(self) -> InboxStatus {
        let _ = self.stop.send(true);
        let status = Arc::clone(&self.status);
        let _ = self.task.await;
        let mut status = status
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if status.state != InboxState::Failed {
            status.state = InboxState::Stopped;
        }
        status
    }

    /// Ends it at once, as a crash would: the message in hand is neither handled to
    /// the end nor acknowledged.
    pub fn abort(&self) {
        self.task.abort();
    }
}

impl<H: InboxHandler, C: CheckpointStore> Inbox<H, C> {
    /// An inbox reading `config.consumer` from `bus` into `handler`, keeping the version
    /// handled last per source stream in `positions` (named `{consumer}:{stream}`).
    pub fn new(bus: Arc<dyn Bus>, handler: H, positions: C, config: InboxConfig) -> Self {
        let status = Arc::new(Mutex::new(InboxStatus {
            name: config.consumer.name.clone(),
            state: InboxState::Starting,
            handled: 0,
            duplicates: 0,
            held_back: 0,
            dead_lettered: 0,
            rejected: 0,
            lag: None,
            last_error: None,
            poison: None,
        }));
        Self {
            shared: Arc::new(Shared {
                metrics: InboxMetrics::new(&config.consumer.name),
                system: crate::traced::messaging_system(&bus.describe()),
                bus,
                handler,
                positions: positions::Positions::new(positions),
                config,
                status,
                known: Mutex::default(),
            }),
        }
    }

    /// Starts consuming.
    pub fn spawn(self) -> InboxHandle {
        let status = Arc::clone(&self.shared.status);
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(run::run(self.shared, stopped));
        InboxHandle { status, stop, task }
    }
}
