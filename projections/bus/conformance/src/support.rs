//! What the cases share: names, a log to relay, a recording handler, a bus that loses
//! confirmations, and bounded waits.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use tessera_core::{
    BoxError, EventAppender, ExpectedVersion, MemoryStore, NewEvent, Position, StreamId,
};
use tessera_projections::integration::{
    Bus, BusError, Consumer, ConsumerSpec, InboxConfig, InboxHandler, Message, PublicEvents,
};
use tessera_projections::RunnerConfig;

use crate::WAIT;

/// A fresh lower-case name: `{prefix}{8 hex digits}`.
pub(crate) fn unique(prefix: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}{}", &id[..8])
}

/// The public events of `context`: `Deposited` of category `acct` (as `Deposited`,
/// version 1); `Noted` stays private.
pub(crate) fn public(context: &str) -> PublicEvents {
    PublicEvents::new(context).map("acct", "Deposited", "Deposited", 1, |e| {
        Ok(e.data.to_value()?)
    })
}

/// Appends to `stream` a public `Deposited` of `amount`, and a private `Noted` every
/// third event.
pub(crate) async fn deposit(store: &MemoryStore, stream: &str, amount: i64) -> Position {
    let id = StreamId::new(stream).expect("stream id");
    let mut events =
        vec![NewEvent::json("Deposited", &serde_json::json!({ "amount": amount })).expect("json")];
    if amount % 3 == 0 {
        events.push(
            NewEvent::json("Noted", &serde_json::json!({ "note": "private" })).expect("json"),
        );
    }
    store
        .append(&id, ExpectedVersion::Any, events)
        .await
        .expect("append")
        .position
}

/// `count` deposits spread round-robin over `streams` streams `acct-{i}`; the head.
pub(crate) async fn deposits(store: &MemoryStore, streams: usize, count: usize) -> Position {
    let mut head = Position::START;
    for i in 0..count {
        let amount = i64::try_from(i).expect("a count that fits");
        head = deposit(store, &format!("acct-{}", i % streams), amount).await;
    }
    head
}

/// A runner that retries quickly.
pub(crate) fn fast_runner() -> RunnerConfig {
    RunnerConfig {
        batch_size: 50,
        max_attempts: 1_000,
        base_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(50),
        ..RunnerConfig::default()
    }
}

/// An inbox configuration that retries quickly.
pub(crate) fn fast_inbox(spec: ConsumerSpec) -> InboxConfig {
    InboxConfig {
        min_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(100),
        hold_back: Duration::from_millis(10),
        ..InboxConfig::new(spec)
    }
}

/// What a [`Recorder`] saw.
#[derive(Default)]
pub(crate) struct Seen {
    /// Every message handed to the handler, in order.
    pub(crate) messages: Vec<Message>,
}

/// An inbox handler that records what it is handed. It fails on messages whose
/// `amount` is `fail_on`, and hangs (as a process dying would) on the first delivery of
/// the message `hang_on` (by payload amount).
#[derive(Clone, Default)]
pub(crate) struct Recorder {
    pub(crate) seen: Arc<Mutex<Seen>>,
    pub(crate) fail_on: Option<i64>,
    pub(crate) hang_on: Option<i64>,
    pub(crate) hung: Arc<AtomicUsize>,
}

impl Recorder {
    pub(crate) fn messages(&self) -> Vec<Message> {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .messages
            .clone()
    }

    /// Waits until the handler has seen `count` messages.
    pub(crate) async fn wait_for(&self, count: usize, what: &str) {
        wait_until(what, || self.messages().len() >= count).await;
    }
}

impl Recorder {
    /// Waits until the handler has seen `count` distinct messages.
    pub(crate) async fn wait_for_distinct(&self, count: usize, what: &str) {
        wait_until(what, || {
            let ids: HashSet<_> = self.messages().iter().map(|m| m.id).collect();
            ids.len() >= count
        })
        .await;
    }
}

impl InboxHandler for Recorder {
    async fn handle(&self, message: &Message) -> Result<(), BoxError> {
        let amount = message
            .decode::<serde_json::Value>()
            .ok()
            .and_then(|v| v["amount"].as_i64());
        if amount.is_some() && amount == self.fail_on {
            return Err(format!("refusing amount {amount:?}").into());
        }
        if amount.is_some()
            && amount == self.hang_on
            && self.hung.fetch_add(1, Ordering::SeqCst) == 0
        {
            self.seen
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .messages
                .push(message.clone());
            std::future::pending::<()>().await;
        }
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .messages
            .push(message.clone());
        Ok(())
    }
}

/// Waits until `done` holds, failing the case after [`WAIT`].
pub(crate) async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {WAIT:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until `done` answers `true`, failing the case after [`WAIT`].
pub(crate) async fn wait_until_async<F: std::future::Future<Output = bool>>(
    what: &str,
    mut done: impl FnMut() -> F,
) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !done().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {WAIT:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Asserts that `messages` hold each public event of `store`'s log exactly once in
/// effect (distinct ids), nothing else, and each stream's events in version order.
pub(crate) async fn assert_once_in_order(store: &MemoryStore, messages: &[Message]) {
    use tessera_core::{EventReader, ReadAll};
    let log = store
        .read_all(ReadAll::after(Position::START, usize::MAX))
        .await
        .expect("read log");
    let public: BTreeMap<uuid::Uuid, (String, u64)> = log
        .iter()
        .filter(|e| e.event_type == "Deposited")
        .map(|e| (e.id.0, (e.stream_id.as_str().to_owned(), e.version.0)))
        .collect();
    let mut first_seen = HashSet::new();
    let mut last_version: BTreeMap<&str, u64> = BTreeMap::new();
    for m in messages {
        let Some((stream, version)) = public.get(&m.id) else {
            panic!(
                "a message that is no public event arrived: {} {}",
                m.name, m.id
            );
        };
        assert_eq!(
            (&m.stream, m.version),
            (stream, *version),
            "headers of {}",
            m.id
        );
        if !first_seen.insert(m.id) {
            continue; // a repeat the handler saw: its effect is idempotent
        }
        if let Some(before) = last_version.insert(stream.as_str(), *version) {
            assert!(
                before < *version,
                "{stream}: version {version} after {before}"
            );
        }
    }
    assert_eq!(first_seen.len(), public.len(), "every public event arrives");
}

/// A bus that loses confirmations: every `partial`-th publish stores only the first
/// half of its messages and reports them unconfirmed; every `lost`-th stores all and
/// reports them unconfirmed.
pub(crate) struct LosingBus {
    pub(crate) inner: Arc<dyn Bus>,
    pub(crate) calls: AtomicUsize,
    pub(crate) partial: usize,
    pub(crate) lost: usize,
    /// Messages handed to the broker so far.
    pub(crate) published: AtomicUsize,
}

impl LosingBus {
    /// A bus over `inner` losing as described; `usize::MAX` for "never".
    pub(crate) fn new(inner: Arc<dyn Bus>, partial: usize, lost: usize) -> Arc<Self> {
        Arc::new(Self {
            inner,
            calls: AtomicUsize::new(0),
            partial,
            lost,
            published: AtomicUsize::new(0),
        })
    }
}

#[async_trait]
impl Bus for LosingBus {
    async fn publish(&self, messages: &[Message]) -> Result<(), BusError> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if call % self.partial == 0 {
            let half = &messages[..messages.len() / 2];
            self.published.fetch_add(half.len(), Ordering::SeqCst);
            self.inner.publish(half).await?;
            return Err(BusError::NotConfirmed("lost on purpose (partial)".into()));
        }
        self.published.fetch_add(messages.len(), Ordering::SeqCst);
        self.inner.publish(messages).await?;
        if call % self.lost == 0 {
            return Err(BusError::NotConfirmed("lost on purpose".into()));
        }
        Ok(())
    }

    async fn consume(&self, spec: &ConsumerSpec) -> Result<Box<dyn Consumer>, BusError> {
        self.inner.consume(spec).await
    }

    fn describe(&self) -> String {
        format!("losing({})", self.inner.describe())
    }
}
