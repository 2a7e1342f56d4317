//! Runs: the messages of one source stream waiting behind the one being handled reach
//! the handler together, and the stream's position moves once for them.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tessera_core::{
    BoxError, EventAppender, EventReader, ExpectedVersion, MemoryStore, NewEvent, Position,
    ReadStream, StreamId,
};
use tessera_projections::integration::{
    BatchFailed, ConsumerSpec, Inbox, InboxConfig, InboxHandler, Message,
};
use tessera_projections::{CheckpointStore, MemoryCheckpoints};

use super::effect::nth;
use crate::support::{fast_inbox, unique, wait_until, wait_until_async};
use crate::BusFactory;

/// Messages published on stream `acct-1`.
const COUNT: u64 = 30;

/// Records every message handled and every run handed to
/// [`InboxHandler::handle_batch`]; holds message 0 until the gate opens, and fails
/// message `fail_at` the first time a run reaches it (after handling the ones before
/// it in the run).
#[derive(Clone)]
struct Runs {
    handled: Arc<Mutex<Vec<u64>>>,
    runs: Arc<Mutex<Vec<Vec<u64>>>>,
    gate: tokio::sync::watch::Receiver<bool>,
    fail_at: u64,
    failed: Arc<AtomicBool>,
    /// Messages handled alone, and runs that handled at least one message: each is
    /// owed exactly one move of the stream's position.
    progress: Arc<AtomicUsize>,
}

/// Positions that count the moves asked of them.
#[derive(Clone, Default)]
struct Counting {
    inner: MemoryCheckpoints,
    moves: Arc<AtomicUsize>,
}

impl CheckpointStore for Counting {
    async fn load(&self, name: &str) -> Result<Position, BoxError> {
        self.inner.load(name).await
    }

    async fn advance(&self, name: &str, from: Position, to: Position) -> Result<bool, BoxError> {
        self.moves.fetch_add(1, Ordering::SeqCst);
        self.inner.advance(name, from, to).await
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl InboxHandler for Runs {
    async fn handle(&self, m: &Message) -> Result<(), BoxError> {
        if m.version == 0 {
            self.gate.clone().wait_for(|open| *open).await?;
        }
        // Alone too (a broker slow to hand over the rest may deliver it alone).
        if m.version == self.fail_at && !self.failed.swap(true, Ordering::SeqCst) {
            return Err(format!("refusing {} once", m.version).into());
        }
        lock(&self.handled).push(m.version);
        self.progress.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    async fn handle_batch(&self, messages: &[Message]) -> Result<(), BatchFailed> {
        lock(&self.runs).push(messages.iter().map(|m| m.version).collect());
        for (i, m) in messages.iter().enumerate() {
            if m.version == self.fail_at && !self.failed.swap(true, Ordering::SeqCst) {
                if i > 0 {
                    self.progress.fetch_add(1, Ordering::SeqCst);
                }
                return Err(BatchFailed {
                    handled: i,
                    error: format!("refusing {} once", m.version).into(),
                });
            }
            lock(&self.handled).push(m.version);
        }
        if !messages.is_empty() {
            self.progress.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    }
}

/// The stored position of `stream` for the inbox named `consumer`.
async fn position(positions: &impl CheckpointStore, consumer: &str, stream: &str) -> Position {
    positions
        .load(&format!("{consumer}:{stream}"))
        .await
        .expect("load a position")
}

/// While message 0 of a stream is held in the handler, the stream's next messages
/// wait; released, they reach the handler as runs of consecutive versions. A run that
/// fails midway records the messages before the failure, the failed one is delivered
/// again, and the ones after it wait for it: every message is handled once, in order,
/// and the stream's position ends on the last, moved once per run (and once per message
/// handled alone), not once per message.
pub async fn a_streams_waiting_messages_reach_the_handler_together(factory: &impl BusFactory) {
    let context = unique("rn");
    let bus = factory.connect().await;
    let (open, gate) = tokio::sync::watch::channel(false);
    let handler = Runs {
        handled: Arc::default(),
        runs: Arc::default(),
        gate,
        fail_at: 12,
        failed: Arc::default(),
        progress: Arc::default(),
    };
    let positions = Counting::default();
    let spec = ConsumerSpec::new(unique("c"), &context, format!("{context}.>"));
    let consumer = spec.name.clone();
    let inbox = Inbox::new(bus, handler.clone(), positions.clone(), fast_inbox(spec)).spawn();
    let publisher = factory.connect().await;
    let messages: Vec<Message> = (0..COUNT).map(|v| nth(&context, v)).collect();
    publisher.publish(&messages).await.expect("publish");
    // Time for the broker to hand over what the inbox may hold while message 0 is held.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        lock(&handler.handled).is_empty(),
        "message 0 holds its stream"
    );
    open.send_replace(true);
    wait_until("every message handled", || {
        lock(&handler.handled).len() as u64 >= COUNT
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let handled = lock(&handler.handled).clone();
    assert_eq!(
        handled,
        (0..COUNT).collect::<Vec<_>>(),
        "each message once, in order"
    );
    let runs = lock(&handler.runs).clone();
    assert!(
        runs.iter().any(|r| r.len() >= 2),
        "the waiting messages reach the handler together: {runs:?}"
    );
    for run in &runs {
        assert!(
            run.windows(2).all(|w| w[1] == w[0] + 1),
            "a run is consecutive versions: {runs:?}"
        );
    }
    assert!(
        handler.failed.load(Ordering::SeqCst),
        "the failure happened"
    );
    let status = inbox.stop().await;
    assert_eq!(status.handled, COUNT, "{status:?}");
    assert!(status.last_error.is_some(), "{status:?}");
    assert_eq!(
        position(&positions, &consumer, "acct-1").await,
        Position::new(COUNT, 0),
        "the position ends on the last message"
    );
    let (moves, progress) = (
        positions.moves.load(Ordering::SeqCst),
        handler.progress.load(Ordering::SeqCst),
    );
    assert_eq!(
        moves, progress,
        "one move per run and per message handled alone: {runs:?}"
    );
    assert!((moves as u64) < COUNT, "{moves} moves for {COUNT} messages");
    factory.cleanup(vec![context]).await;
}

/// Writes one event per message (its id derived from the message) to stream `effect`
/// of its own store, a run's writes all at once; dies (hangs, as a killed process
/// would) after the writes of its first run of two or more and before answering.
#[derive(Clone)]
struct RunEffect {
    store: MemoryStore,
    hung: Arc<AtomicUsize>,
    gate: tokio::sync::watch::Receiver<bool>,
    /// Every version handed to it, in order, across both inboxes.
    handed: Arc<Mutex<Vec<u64>>>,
}

impl RunEffect {
    async fn write(&self, m: &Message) -> Result<(), BoxError> {
        lock(&self.handed).push(m.version);
        let event = NewEvent::json("Applied", &serde_json::json!({ "version": m.version }))?
            .with_id(m.derived_event_id(0));
        self.store
            .append(&StreamId::new("effect")?, ExpectedVersion::Any, vec![event])
            .await?;
        Ok(())
    }
}

impl InboxHandler for RunEffect {
    async fn handle(&self, m: &Message) -> Result<(), BoxError> {
        if m.version == 0 {
            self.gate.clone().wait_for(|open| *open).await?;
        }
        self.write(m).await
    }

    async fn handle_batch(&self, messages: &[Message]) -> Result<(), BatchFailed> {
        for (handled, m) in messages.iter().enumerate() {
            if let Err(error) = self.write(m).await {
                return Err(BatchFailed { handled, error });
            }
        }
        if messages.len() >= 2 && self.hung.fetch_add(1, Ordering::SeqCst) == 0 {
            std::future::pending::<()>().await;
        }
        Ok(())
    }
}

/// An inbox that dies between a run's writes and the move of the stream's position:
/// the next inbox is handed the run again, and each message's effect is there once, in
/// order.
pub async fn an_inbox_dying_between_a_runs_writes_and_its_position_has_one_effect_each(
    factory: &impl BusFactory,
) {
    let context = unique("rd");
    let store = MemoryStore::new();
    let positions = MemoryCheckpoints::new();
    let hung = Arc::new(AtomicUsize::new(0));
    let (open, gate) = tokio::sync::watch::channel(false);
    let handler = RunEffect {
        store: store.clone(),
        hung: Arc::clone(&hung),
        gate,
        handed: Arc::default(),
    };
    let handed = Arc::clone(&handler.handed);
    let spec = ConsumerSpec::new(unique("c"), &context, format!("{context}.>"));
    let consumer = spec.name.clone();
    let config = |spec: ConsumerSpec| InboxConfig {
        batch: 64,
        ..fast_inbox(spec)
    };
    let first = Inbox::new(
        factory.connect().await,
        handler.clone(),
        positions.clone(),
        config(spec.clone()),
    )
    .spawn();
    let messages: Vec<Message> = (0..COUNT).map(|v| nth(&context, v)).collect();
    factory
        .connect()
        .await
        .publish(&messages)
        .await
        .expect("publish");
    tokio::time::sleep(Duration::from_millis(500)).await;
    open.send_replace(true);
    wait_until("a run written and the inbox hung", || {
        hung.load(Ordering::SeqCst) == 1
    })
    .await;
    first.abort();
    drop(first);
    let moved = position(&positions, &consumer, "acct-1").await;
    // The first message not recorded as handled: its run was written, not recorded.
    let unrecorded = moved.commit;
    let written_before = lock(&handed).len();
    assert!(
        lock(&handed).contains(&unrecorded) && unrecorded < COUNT,
        "the hung run was written past the position {moved:?}: {:?}",
        lock(&handed)
    );
    let second = Inbox::new(
        factory.connect().await,
        handler,
        positions.clone(),
        config(spec),
    )
    .spawn();
    let effect = StreamId::new("effect").expect("stream id");
    let versions = || async {
        store
            .read_stream(&effect, ReadStream::forward())
            .await
            .unwrap_or_default()
            .iter()
            .map(|e| {
                e.data.to_value().expect("json")["version"]
                    .as_u64()
                    .expect("version")
            })
            .collect::<Vec<u64>>()
    };
    wait_until_async("the position at the last message", || async {
        position(&positions, &consumer, "acct-1").await == Position::new(COUNT, 0)
    })
    .await;
    assert_eq!(
        versions().await,
        (0..COUNT).collect::<Vec<_>>(),
        "each effect once, in order"
    );
    assert!(
        lock(&handed)[written_before..].contains(&unrecorded),
        "the next inbox was handed the unrecorded run again: {:?}",
        lock(&handed)
    );
    second.stop().await;
    factory.cleanup(vec![context]).await;
}
