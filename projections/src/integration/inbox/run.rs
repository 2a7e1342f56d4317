//! The consuming loop: a reader task pulls deliveries from the broker, and lanes hand
//! them to the handler, each source stream's one run after the other (up to
//! [`InboxConfig::batch`](super::InboxConfig::batch) deliveries a run) and up to
//! [`InboxConfig::concurrency`](super::InboxConfig::concurrency) streams at once.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::{Id, JoinHandle, JoinSet};
use tokio::time::Instant;

use super::deliver::Next;
use super::{InboxHandler, InboxState, Poison, Shared};
use crate::checkpoint::CheckpointStore;
use crate::integration::{BusError, Consumer, Delivery, MessageKind};

/// How often an inbox asks the broker for its lag.
const LAG_REFRESH: Duration = Duration::from_secs(1);
/// How long the reader waits for a delivery before it looks at the lag again.
const POLL: Duration = Duration::from_millis(250);

/// Why one consumer's loop ended.
enum Ended {
    Stopped,
    Lost(String),
    Poisoned(Poison),
}

/// Opens the consumer and consumes until stopped or poisoned, opening it again (with
/// backoff) when the broker is lost.
pub(super) async fn run<H: InboxHandler, C: CheckpointStore>(
    shared: Arc<Shared<H, C>>,
    mut stopped: watch::Receiver<bool>,
) {
    let name = shared.config.consumer.name.clone();
    let mut failures = 0u32;
    while !*stopped.borrow() {
        let consumer = match shared.bus.consume(&shared.config.consumer).await {
            Ok(c) => c,
            Err(e) => {
                failures += 1;
                tracing::warn!(inbox = %name, error = %e, "cannot open consumer");
                shared.update(|s| {
                    s.state = InboxState::Reconnecting;
                    s.last_error = Some(e.to_string());
                });
                let wait = shared.config.backoff(failures);
                let _ = tokio::time::timeout(wait, stop_requested(&mut stopped)).await;
                continue;
            }
        };
        shared.update(|s| s.state = InboxState::Running);
        failures = 0;
        match consume(&shared, consumer, &mut stopped).await {
            Ended::Stopped => return,
            Ended::Lost(error) => shared.update(|s| {
                s.state = InboxState::Reconnecting;
                s.last_error = Some(error);
            }),
            Ended::Poisoned(poison) => {
                tracing::error!(inbox = %name, stream = %poison.stream, version = poison.version, error = %poison.error, "inbox stopped on a poison message");
                shared.update(|s| {
                    s.state = InboxState::Failed;
                    s.last_error = Some(poison.error.clone());
                    s.poison = Some(poison);
                });
                return;
            }
        }
    }
}

/// Resolves when a stop is asked for; never when the handle was dropped without one
/// (the inbox then runs on, detached).
async fn stop_requested(stopped: &mut watch::Receiver<bool>) {
    if stopped.changed().await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Consumes from one open consumer. Deliveries in hand are handled to the end before
/// it returns; those received but not started are dropped unsettled, for the broker to
/// deliver again.
async fn consume<H: InboxHandler, C: CheckpointStore>(
    shared: &Arc<Shared<H, C>>,
    consumer: Box<dyn Consumer>,
    stopped: &mut watch::Receiver<bool>,
) -> Ended {
    let (tx, mut rx) = mpsc::channel(1);
    let reader = AbortOnDrop(tokio::spawn(read(Arc::clone(shared), consumer, tx)));
    let mut lanes = Lanes::new(shared.config.concurrency, shared.config.batch);
    let mut unsettled = Vec::new();
    let ended = loop {
        tokio::select! {
            () = stop_requested(stopped) => break Ended::Stopped,
            Some(done) = lanes.tasks.join_next_with_id(), if !lanes.tasks.is_empty() => {
                match lanes.finished(shared, done) {
                    Next::Continue => {}
                    Next::Stop(poison, deliveries) => {
                        unsettled = deliveries;
                        break Ended::Poisoned(poison);
                    }
                }
            }
            received = rx.recv(), if lanes.has_room() => match received {
                Some(Ok(d)) => lanes.start(shared, d),
                Some(Err(e)) => break Ended::Lost(e.to_string()),
                None => break Ended::Lost("the consumer ended".to_owned()),
            },
        }
    };
    drop(reader);
    lanes.drain().await;
    drop(unsettled); // for the broker to deliver again, to whoever reads next
    ended
}

/// Pulls deliveries and hands them on one at a time; refreshes the lag about every
/// [`LAG_REFRESH`].
async fn read<H: InboxHandler, C: CheckpointStore>(
    shared: Arc<Shared<H, C>>,
    mut consumer: Box<dyn Consumer>,
    tx: mpsc::Sender<Result<Delivery, BusError>>,
) {
    let mut measured: Option<Instant> = None;
    loop {
        if measured.is_none_or(|at| at.elapsed() >= LAG_REFRESH) {
            measured = Some(Instant::now());
            if let Ok(lag) = consumer.lag().await {
                if let Some(lag) = lag {
                    shared.metrics.lag(lag);
                }
                shared.update(|s| s.lag = lag);
            }
        }
        match consumer.next(POLL).await {
            Ok(None) => {}
            Ok(Some(d)) => {
                if tx.send(Ok(d)).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                let _ = tx.send(Err(e)).await;
                return;
            }
        }
    }
}

/// Aborts the task when dropped (an aborted inbox takes its reader with it).
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Deliveries in hand: one task per source stream being handled (up to `concurrency`
/// at once), the stream's later deliveries waiting behind it, and streams waiting for a
/// task.
struct Lanes {
    tasks: JoinSet<Next>,
    /// The lane each task serves, and how many deliveries it took.
    lane_of: HashMap<Id, (String, usize)>,
    /// Lanes holding deliveries (running or ready), and what waits in each.
    waiting: HashMap<String, VecDeque<Delivery>>,
    /// Lanes with deliveries waiting and no task, in the order they became ready.
    ready: VecDeque<String>,
    /// Deliveries running or waiting.
    held: usize,
    /// Most deliveries held.
    limit: usize,
    /// Most tasks at once.
    concurrency: usize,
    /// Most deliveries one task takes.
    batch: usize,
    /// Names lanes of deliveries that need no order (commands, unreadable messages).
    unordered: u64,
}

impl Lanes {
    fn new(concurrency: usize, batch: usize) -> Self {
        let (concurrency, batch) = (concurrency.max(1), batch.max(1));
        Self {
            tasks: JoinSet::new(),
            lane_of: HashMap::new(),
            waiting: HashMap::new(),
            ready: VecDeque::new(),
            held: 0,
            limit: concurrency.saturating_mul(batch),
            concurrency,
            batch,
            unordered: 0,
        }
    }

    fn has_room(&self) -> bool {
        self.held < self.limit
    }

    /// The lane of `d`: its source stream for an event, one of its own otherwise.
    fn lane(&mut self, d: &Delivery) -> String {
        match &d.message {
            Ok(m) if m.kind == MessageKind::Event => m.stream.clone(),
            _ => {
                self.unordered += 1;
                // A NUL cannot start a stream id: never a stream's lane.
                format!("\0{}", self.unordered)
            }
        }
    }

    fn start<H: InboxHandler, C: CheckpointStore>(
        &mut self,
        shared: &Arc<Shared<H, C>>,
        d: Delivery,
    ) {
        self.held += 1;
        let lane = self.lane(&d);
        if let Some(queue) = self.waiting.get_mut(&lane) {
            queue.push_back(d);
            return;
        }
        self.waiting.insert(lane.clone(), VecDeque::from([d]));
        self.ready.push_back(lane);
        self.run_ready(shared);
    }

    /// Gives ready lanes tasks while fewer than `concurrency` run: each takes up to
    /// `batch` of its lane's deliveries.
    fn run_ready<H: InboxHandler, C: CheckpointStore>(&mut self, shared: &Arc<Shared<H, C>>) {
        while self.tasks.len() < self.concurrency {
            let Some(lane) = self.ready.pop_front() else {
                return;
            };
            let Some(queue) = self.waiting.get_mut(&lane) else {
                continue;
            };
            let take = queue.len().min(self.batch);
            let batch: Vec<Delivery> = queue.drain(..take).collect();
            let shared = Arc::clone(shared);
            let task = self
                .tasks
                .spawn(async move { shared.deliver_batch(batch).await });
            self.lane_of.insert(task.id(), (lane, take));
        }
    }

    /// A task ended: its lane waits for a task again if deliveries queued behind it,
    /// and says what it came to (a handler that panicked stops the inbox, naming the
    /// stream).
    fn finished<H: InboxHandler, C: CheckpointStore>(
        &mut self,
        shared: &Arc<Shared<H, C>>,
        done: Result<(Id, Next), tokio::task::JoinError>,
    ) -> Next {
        let id = match &done {
            Ok((id, _)) => *id,
            Err(e) => e.id(),
        };
        let (lane, took) = self.lane_of.remove(&id).unwrap_or_default();
        self.held -= took;
        let next = match done {
            Ok((_, next)) => next,
            Err(e) => {
                return Next::Stop(
                    Poison {
                        stream: lane,
                        version: 0,
                        name: String::new(),
                        id: None,
                        error: format!("the handler panicked: {e}"),
                    },
                    Vec::new(),
                );
            }
        };
        if self.waiting.get(&lane).is_some_and(|q| !q.is_empty()) {
            self.ready.push_back(lane);
        } else {
            self.waiting.remove(&lane);
        }
        self.run_ready(shared);
        next
    }

    /// Lets the running deliveries end; drops the waiting ones unsettled.
    async fn drain(mut self) {
        self.waiting.clear();
        self.ready.clear();
        while self.tasks.join_next().await.is_some() {}
    }
}
