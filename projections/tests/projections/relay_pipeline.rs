//! The relay one batch ahead of its confirmations, on a bus whose confirmations come
//! after the send: the stored checkpoint never passes a message the broker has not
//! confirmed, a batch that goes unconfirmed behind the next one is published again (and
//! an outage is ridden out, never counted as a failing event), an outstanding batch is
//! checkpointed without a further batch, and the fence holds.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tessera_core::{
    BoxError, EventAppender, EventReader, ExpectedVersion, MemoryStore, NewEvent, Position,
    ReadAll, RecordedEvent, StreamId,
};
use tessera_projections::integration::{
    Bus, BusError, Confirmation, Consumer, ConsumerSpec, Inbox, InboxConfig, InboxHandle,
    InboxHandler, MemoryBus, Message, PublicEvents, Relay,
};
use tessera_projections::{
    ApplyError, CheckpointStore, MemoryCheckpoints, Runner, RunnerConfig, RunnerHandle, State,
    Subscriber,
};
use tokio::sync::watch;
use uuid::Uuid;

use crate::support::WAIT;

const CONTEXT: &str = "bank";

fn public() -> PublicEvents {
    PublicEvents::new(CONTEXT).map("acct", "Deposited", "Deposited", 1, |e| {
        Ok(e.data.to_value()?)
    })
}

/// `count` public deposits round-robin over `streams` streams, a private `Noted` after
/// every third; the head.
async fn fill(store: &MemoryStore, streams: usize, count: usize) -> Position {
    let mut head = Position::START;
    for i in 0..count {
        let stream = StreamId::new(format!("acct-{}", i % streams)).expect("id");
        let mut events =
            vec![NewEvent::json("Deposited", &serde_json::json!({ "n": i })).expect("json")];
        if i % 3 == 0 {
            events.push(NewEvent::json("Noted", &serde_json::json!({})).expect("json"));
        }
        head = store
            .append(&stream, ExpectedVersion::Any, events)
            .await
            .expect("append")
            .position;
    }
    head
}

async fn public_events(store: &MemoryStore) -> Vec<RecordedEvent> {
    store
        .read_all(ReadAll::after(Position::START, usize::MAX))
        .await
        .expect("read log")
        .into_iter()
        .filter(|e| e.event_type == "Deposited")
        .collect()
}

/// What a [`Later`] bus and its observers share.
#[derive(Default)]
struct Broker {
    /// Message ids the broker confirmed.
    confirmed: Mutex<HashSet<Uuid>>,
    /// Sends so far.
    sends: AtomicUsize,
    /// Sends whose confirmation has not resolved yet, and the most there were at once.
    outstanding: AtomicUsize,
    max_outstanding: AtomicUsize,
}

/// A broker whose confirmations come `delay` after the send, once `gate` is open. Each
/// send stores its messages at once (in a [`MemoryBus`], which drops repeated ids);
/// the sends numbered (from 1) in `fail` store only the first half and report the
/// batch unconfirmed.
struct Later {
    inner: MemoryBus,
    delay: Duration,
    fail: HashSet<usize>,
    gate: watch::Sender<bool>,
    broker: Arc<Broker>,
}

impl Later {
    fn new(delay: Duration, fail: impl IntoIterator<Item = usize>) -> Arc<Self> {
        Arc::new(Self {
            inner: MemoryBus::new(),
            delay,
            fail: fail.into_iter().collect(),
            gate: watch::Sender::new(true),
            broker: Arc::default(),
        })
    }

    fn sends(&self) -> usize {
        self.broker.sends.load(Ordering::SeqCst)
    }

    fn stored(&self) -> Vec<Message> {
        self.inner
            .messages(CONTEXT)
            .into_iter()
            .map(|m| m.expect("an integration message"))
            .collect()
    }
}

/// Counts a confirmation as outstanding until it resolves or is dropped.
struct Outstanding(Arc<Broker>);

impl Outstanding {
    fn new(broker: &Arc<Broker>) -> Self {
        let now = broker.outstanding.fetch_add(1, Ordering::SeqCst) + 1;
        broker.max_outstanding.fetch_max(now, Ordering::SeqCst);
        Self(Arc::clone(broker))
    }
}

impl Drop for Outstanding {
    fn drop(&mut self) {
        self.0.outstanding.fetch_sub(1, Ordering::SeqCst);
    }
}

#[tessera_projections::async_trait::async_trait]
impl Bus for Later {
    async fn publish(&self, messages: &[Message]) -> Result<(), BusError> {
        self.send(messages).await?.await
    }

    async fn send(&self, messages: &[Message]) -> Result<Confirmation, BusError> {
        let call = self.broker.sends.fetch_add(1, Ordering::SeqCst) + 1;
        let fails = self.fail.contains(&call);
        let stored = if fails {
            &messages[..messages.len() / 2]
        } else {
            messages
        };
        self.inner.publish(stored).await?;
        let ids: Vec<Uuid> = messages.iter().map(|m| m.id).collect();
        let outstanding = Outstanding::new(&self.broker);
        let broker = Arc::clone(&self.broker);
        let mut gate = self.gate.subscribe();
        let delay = self.delay;
        Ok(Confirmation::pending(async move {
            let _outstanding = outstanding;
            let _open: bool = gate.wait_for(|open| *open).await.is_ok();
            tokio::time::sleep(delay).await;
            if fails {
                return Err(BusError::NotConfirmed(format!(
                    "send {call} lost on purpose"
                )));
            }
            broker
                .confirmed
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .extend(ids);
            Ok(())
        }))
    }

    async fn consume(&self, spec: &ConsumerSpec) -> Result<Box<dyn Consumer>, BusError> {
        self.inner.consume(spec).await
    }

    fn describe(&self) -> String {
        "later".into()
    }
}

/// Checkpoints that check, at each move, that the broker confirmed every public event
/// up to the new position, and note each move that does not hold.
#[derive(Clone)]
struct Guarded {
    inner: MemoryCheckpoints,
    broker: Arc<Broker>,
    /// The log's public events: position → id.
    public: Arc<BTreeMap<Position, Uuid>>,
    breaches: Arc<Mutex<Vec<String>>>,
    moves: Arc<AtomicUsize>,
}

impl Guarded {
    async fn new(store: &MemoryStore, bus: &Later) -> Self {
        let public = public_events(store)
            .await
            .into_iter()
            .map(|e| (e.position, e.id.0))
            .collect();
        Self {
            inner: MemoryCheckpoints::new(),
            broker: Arc::clone(&bus.broker),
            public: Arc::new(public),
            breaches: Arc::default(),
            moves: Arc::default(),
        }
    }

    fn breaches(&self) -> Vec<String> {
        self.breaches
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl CheckpointStore for Guarded {
    async fn load(&self, name: &str) -> Result<Position, BoxError> {
        self.inner.load(name).await
    }

    async fn advance(&self, name: &str, from: Position, to: Position) -> Result<bool, BoxError> {
        let unconfirmed: Vec<Position> = {
            let confirmed = self
                .broker
                .confirmed
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            self.public
                .range(..=to)
                .filter(|(_, id)| !confirmed.contains(id))
                .map(|(p, _)| *p)
                .collect()
        };
        let moved = self.inner.advance(name, from, to).await?;
        if moved {
            self.moves.fetch_add(1, Ordering::SeqCst);
            if let Some(first) = unconfirmed.first() {
                self.breaches
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(format!(
                        "moved to {to} with {} events unconfirmed, the first at {first}",
                        unconfirmed.len()
                    ));
            }
        }
        Ok(moved)
    }
}

/// An inbox handler that records what it is handed.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Message>>>);

impl Recorder {
    fn messages(&self) -> Vec<Message> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    async fn wait_for_distinct(&self, count: usize) {
        let deadline = Instant::now() + WAIT;
        loop {
            let distinct: HashSet<Uuid> = self.messages().iter().map(|m| m.id).collect();
            if distinct.len() >= count {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the inbox handled {} of {count} messages",
                distinct.len()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl InboxHandler for Recorder {
    async fn handle(&self, message: &Message) -> Result<(), BoxError> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(message.clone());
        Ok(())
    }
}

fn inbox(bus: &Arc<Later>, recorder: &Recorder) -> InboxHandle {
    let spec = ConsumerSpec::new("inbox", CONTEXT, format!("{CONTEXT}.>"));
    let config = InboxConfig {
        min_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(50),
        hold_back: Duration::from_millis(5),
        ..InboxConfig::new(spec)
    };
    Inbox::new(
        Arc::clone(bus) as Arc<dyn Bus>,
        recorder.clone(),
        MemoryCheckpoints::new(),
        config,
    )
    .spawn()
}

/// Asserts that the inbox handled every public event of `store`, each stream in version
/// order, a repeat only after its first handling.
async fn assert_every_event_once_in_order(store: &MemoryStore, handled: &[Message]) {
    let public = public_events(store).await;
    let mut first = HashSet::new();
    let mut last: BTreeMap<String, u64> = BTreeMap::new();
    for m in handled {
        if !first.insert(m.id) {
            continue;
        }
        if let Some(before) = last.insert(m.stream.clone(), m.version) {
            assert!(
                before < m.version,
                "{}: {} after {before}",
                m.stream,
                m.version
            );
        }
    }
    let expected: HashSet<Uuid> = public.iter().map(|e| e.id.0).collect();
    assert_eq!(first, expected, "every public event handled, nothing else");
}

/// A runner that retries quickly and would stop on an event failing twice.
fn config(batch_size: usize) -> RunnerConfig {
    RunnerConfig {
        batch_size,
        max_attempts: 2,
        base_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(10),
        ..RunnerConfig::default()
    }
}

/// Every error a runner reports, as they come.
fn errors_of(runner: &RunnerHandle<MemoryStore>) -> Arc<Mutex<Vec<String>>> {
    let errors = Arc::new(Mutex::new(Vec::new()));
    let mut status = runner.watch();
    let seen = Arc::clone(&errors);
    tokio::spawn(async move {
        while status.changed().await.is_ok() {
            let error = status.borrow_and_update().last_error.clone();
            let mut seen = seen.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(e) = error {
                if seen.last() != Some(&e) {
                    seen.push(e);
                }
            }
        }
    });
    errors
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_unconfirmed_behind_the_next_is_published_again_and_never_checkpointed() {
    let store = MemoryStore::new();
    let head = fill(&store, 10, 1_000).await;
    // Send 3 goes unconfirmed after send 4 went out (a rewind); the synchronous retries
    // 5 to 8 go unconfirmed too (an outage longer than `max_attempts`); then a second
    // rewind at send 15.
    let bus = Later::new(Duration::from_millis(2), [3, 5, 6, 7, 8, 15]);
    let checkpoints = Guarded::new(&store, &bus).await;
    let recorder = Recorder::default();
    let inbox = inbox(&bus, &recorder);
    let relay = Relay::new(
        "relay",
        public(),
        store.clone(),
        Arc::clone(&bus) as Arc<dyn Bus>,
        checkpoints.clone(),
    );
    // Backoffs long enough for every error to be seen in the status before it clears.
    let slower = RunnerConfig {
        base_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(40),
        ..config(50)
    };
    let runner = Runner::new(store.clone(), relay, slower).spawn();
    let errors = errors_of(&runner);
    runner
        .wait_for(head, WAIT)
        .await
        .expect("the relay reaches the head");
    let public = public_events(&store).await;
    assert_eq!(
        checkpoints.load("relay").await.expect("load"),
        public.last().expect("events").position,
        "caught up, the checkpoint is at the last public event"
    );
    let status = runner.stop().await;
    assert_ne!(status.state, State::Failed, "{status:?}");
    assert!(status.failure.is_none(), "{status:?}");
    assert_eq!(checkpoints.breaches(), Vec::<String>::new());
    assert!(
        bus.broker.max_outstanding.load(Ordering::SeqCst) >= 2,
        "a batch was sent before the one before it was confirmed"
    );
    assert_eq!(
        bus.stored().len(),
        public.len(),
        "every public event stored"
    );
    assert!(
        bus.sends() >= 1_000 / 50 + 6,
        "batches were sent again ({} sends)",
        bus.sends()
    );
    recorder.wait_for_distinct(public.len()).await;
    inbox.stop().await;
    assert_every_event_once_in_order(&store, &recorder.messages()).await;
    let errors = errors
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    assert!(
        errors
            .iter()
            .any(|e| e.contains("was not confirmed") && e.contains("send 3 lost on purpose")),
        "the batch sent behind is reported unconfirmed: {errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains("unavailable") || e.contains("not confirmed")),
        "{errors:?}"
    );
    assert!(
        !errors.iter().any(|e| e.contains("another runner")),
        "nothing claims fencing: {errors:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outstanding_batch_is_checkpointed_once_confirmed_without_another_batch() {
    let store = MemoryStore::new();
    fill(&store, 2, 2).await;
    let events = public_events(&store).await;
    let bus = Later::new(Duration::ZERO, []);
    let checkpoints = Guarded::new(&store, &bus).await;
    let relay = Relay::new(
        "relay",
        public(),
        store.clone(),
        Arc::clone(&bus) as Arc<dyn Bus>,
        checkpoints.clone(),
    );
    assert_eq!(
        relay.checkpoint().await.expect("checkpoint"),
        Position::START
    );
    bus.gate.send_replace(false);
    relay
        .apply(Position::START, &events[..1])
        .await
        .expect("sent, the next event still to come");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        checkpoints.load("relay").await.expect("load"),
        Position::START,
        "not moved before the broker confirmed"
    );
    let opened = Instant::now();
    bus.gate.send_replace(true);
    loop {
        if checkpoints.load("relay").await.expect("load") == events[0].position {
            break;
        }
        assert!(opened.elapsed() < WAIT, "the checkpoint never moved");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let took = opened.elapsed();
    assert!(
        took < Duration::from_millis(500),
        "moved {took:?} after the confirmation"
    );
    assert_eq!(checkpoints.breaches(), Vec::<String>::new());
    // The relay goes on from there.
    assert_eq!(
        relay.checkpoint().await.expect("checkpoint"),
        events[0].position
    );
    relay
        .apply(events[0].position, &events[1..])
        .await
        .expect("the last event, caught up");
    assert_eq!(
        checkpoints.load("relay").await.expect("load"),
        events[1].position
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_event_is_checkpointed_without_further_appends() {
    let store = MemoryStore::new();
    let bus = Later::new(Duration::from_millis(5), []);
    let checkpoints = MemoryCheckpoints::new();
    let relay = Relay::new(
        "relay",
        public(),
        store.clone(),
        Arc::clone(&bus) as Arc<dyn Bus>,
        checkpoints.clone(),
    );
    let runner = Runner::new(store.clone(), relay, config(500)).spawn();
    fill(&store, 1, 1).await;
    let appended = Instant::now();
    let position = public_events(&store).await[0].position;
    loop {
        if checkpoints.load("relay").await.expect("load") == position {
            break;
        }
        assert!(appended.elapsed() < WAIT, "the checkpoint never moved");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    eprintln!("checkpointed {:?} after the append", appended.elapsed());
    assert_eq!(bus.stored().len(), 1);
    runner.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_batch_that_goes_unconfirmed_rewinds_the_next_apply() {
    let store = MemoryStore::new();
    fill(&store, 2, 2).await;
    let events = public_events(&store).await;
    let bus = Later::new(Duration::ZERO, [1]);
    let checkpoints = Guarded::new(&store, &bus).await;
    let relay = Relay::new(
        "relay",
        public(),
        store.clone(),
        Arc::clone(&bus) as Arc<dyn Bus>,
        checkpoints.clone(),
    );
    assert_eq!(
        relay.checkpoint().await.expect("checkpoint"),
        Position::START
    );
    relay
        .apply(Position::START, &events[..1])
        .await
        .expect("sent, the next event still to come");
    // Its confirmation fails while nothing is applied.
    tokio::time::sleep(Duration::from_millis(50)).await;
    match relay.apply(events[0].position, &events[1..]).await {
        Err(ApplyError::Rewind { error }) => {
            assert!(error.to_string().contains("send 1 lost"), "{error}");
        }
        other => panic!("expected a rewind, got {other:?}"),
    }
    assert_eq!(bus.sends(), 1, "nothing more published");
    assert_eq!(
        relay.checkpoint().await.expect("checkpoint"),
        Position::START
    );
    relay
        .apply(Position::START, &events)
        .await
        .expect("published again");
    assert_eq!(
        checkpoints.load("relay").await.expect("load"),
        events[1].position
    );
    assert_eq!(checkpoints.breaches(), Vec::<String>::new());
    assert_eq!(bus.stored().len(), 2);
}

/// Relay A's bus, whose confirmations are held back, and a log of three public events.
async fn a_behind_b() -> (
    MemoryStore,
    Vec<RecordedEvent>,
    MemoryCheckpoints,
    Arc<Later>,
) {
    let store = MemoryStore::new();
    fill(&store, 2, 3).await;
    let events = public_events(&store).await;
    let slow = Later::new(Duration::ZERO, []);
    slow.gate.send_replace(false);
    (store, events, MemoryCheckpoints::new(), slow)
}

fn relay(
    store: &MemoryStore,
    bus: Arc<dyn Bus>,
    checkpoints: &MemoryCheckpoints,
) -> Relay<MemoryStore, MemoryCheckpoints> {
    Relay::new("relay", public(), store.clone(), bus, checkpoints.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_whose_checkpoint_moved_past_its_outstanding_batch_is_fenced() {
    let (store, events, checkpoints, slow) = a_behind_b().await;
    let a = relay(&store, Arc::clone(&slow) as Arc<dyn Bus>, &checkpoints);
    let other = MemoryBus::new();
    let b = relay(&store, Arc::new(other.clone()), &checkpoints);
    assert_eq!(a.checkpoint().await.expect("a"), Position::START);
    a.apply(Position::START, &events[..1])
        .await
        .expect("a sent the first event");
    // B, which took over, publishes two (confirmed at once) and moves the checkpoint.
    assert_eq!(b.checkpoint().await.expect("b"), Position::START);
    b.apply(Position::START, &events[..2]).await.expect("b");
    match a.apply(events[0].position, &events[1..2]).await {
        Err(ApplyError::Fenced { .. }) => {}
        other => panic!("expected a fenced, got {other:?}"),
    }
    assert_eq!(slow.sends(), 1, "the fenced relay published nothing more");
    // Its late confirmation moves nothing.
    slow.gate.send_replace(true);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        checkpoints.load("relay").await.expect("load"),
        events[1].position
    );
    // Re-reading, A finds where B is, and goes on from there.
    assert_eq!(a.checkpoint().await.expect("a"), events[1].position);
    a.apply(events[1].position, &events[2..]).await.expect("a");
    assert_eq!(
        checkpoints.load("relay").await.expect("load"),
        events[2].position
    );
    assert_eq!(other.messages(CONTEXT).len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_whose_checkpoint_was_moved_to_the_end_of_its_outstanding_batch_is_fenced() {
    let (store, events, checkpoints, slow) = a_behind_b().await;
    let a = relay(&store, Arc::clone(&slow) as Arc<dyn Bus>, &checkpoints);
    let b = relay(&store, Arc::new(MemoryBus::new()), &checkpoints);
    assert_eq!(a.checkpoint().await.expect("a"), Position::START);
    a.apply(Position::START, &events[..1])
        .await
        .expect("a sent the first event");
    // B moves the checkpoint to exactly where A's outstanding batch ends.
    assert_eq!(b.checkpoint().await.expect("b"), Position::START);
    b.apply(Position::START, &events[..1]).await.expect("b");
    // A's confirmation arrives while its next batch waits at the fence: its
    // compare-and-set, from before B's move, fails.
    let gate = slow.gate.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        gate.send_replace(true);
    });
    match a.apply(events[0].position, &events[1..2]).await {
        Err(ApplyError::Fenced { .. }) => {}
        other => panic!("expected a fenced, got {other:?}"),
    }
    assert_eq!(slow.sends(), 1, "the fenced relay published nothing more");
    assert_eq!(a.checkpoint().await.expect("a"), events[0].position);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_pipelined_relays_on_one_checkpoint_publish_each_event_once_in_order() {
    let store = MemoryStore::new();
    let bus = Later::new(Duration::from_millis(1), []);
    let checkpoints = MemoryCheckpoints::new();
    let recorder = Recorder::default();
    let inbox = inbox(&bus, &recorder);
    let runners: Vec<_> = (0..2)
        .map(|_| {
            let relay = Relay::new(
                "relay",
                public(),
                store.clone(),
                Arc::clone(&bus) as Arc<dyn Bus>,
                checkpoints.clone(),
            );
            Runner::new(store.clone(), relay, config(20)).spawn()
        })
        .collect();
    let mut head = Position::START;
    for _ in 0..10 {
        head = fill(&store, 7, 60).await;
        tokio::task::yield_now().await;
    }
    for r in &runners {
        r.wait_for(head, WAIT).await.expect("caught up");
    }
    assert_eq!(checkpoints.load("relay").await.expect("load"), head);
    let public = public_events(&store).await;
    recorder.wait_for_distinct(public.len()).await;
    for r in runners {
        let status = r.stop().await;
        assert_ne!(status.state, State::Failed, "{status:?}");
    }
    inbox.stop().await;
    assert_every_event_once_in_order(&store, &recorder.messages()).await;
}
