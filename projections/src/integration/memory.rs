//! The in-memory bus: the broker semantics Tessera relies on, in one process, for tests
//! and for the embedded all-in-one mode.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;
use tokio::time::Instant;

use bytes::Bytes;

use super::bus::subject_matches;
use super::{wire, Acker, Bus, BusError, Consumer, ConsumerSpec, Delivery, Message, MessageError};

/// A broker in process memory. Clones share it.
///
/// Per context it keeps every message published, in order, as headers and body in the
/// one wire format, decoded from them once when published, outside the bus's lock (so
/// a delivery reads as it would from a real broker), and drops a
/// repeat of a message id it already holds (as JetStream's duplicate window does, without the
/// window). Durable consumers keep their position and unacknowledged messages across
/// re-opening; a delivery dropped unsettled or retried is delivered again, before newer
/// messages once its delay has passed.
#[derive(Clone, Default)]
pub struct MemoryBus {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    contexts: HashMap<String, ContextLog>,
    consumers: HashMap<String, Cursor>,
}

impl State {
    /// The wake-ups of the consumers of `context`, to call once the lock is let go: it
    /// holds new messages. The others sleep on: a publish to one context, or a
    /// settlement on one consumer, wakes nobody else.
    fn wakes(&self, context: &str) -> Vec<Arc<Notify>> {
        self.consumers
            .values()
            .filter(|cursor| cursor.spec.context == context)
            .map(|cursor| Arc::clone(&cursor.wake))
            .collect()
    }
}

fn wake_all(wakes: Vec<Arc<Notify>>) {
    for wake in wakes {
        wake.notify_waiters();
    }
}

#[derive(Default)]
struct ContextLog {
    messages: Vec<Arc<Stored>>,
    ids: HashSet<uuid::Uuid>,
    dead: Vec<(Arc<Stored>, String)>,
}

/// A message as a broker holds it: its subject, and what its headers and body decode
/// to (decoded once, when published). Shared by the log, its deliveries and the
/// dead-letter destination.
struct Stored {
    subject: String,
    decoded: Result<Message, MessageError>,
}

impl Stored {
    fn new(subject: String, headers: &[(String, String)], body: Bytes) -> Arc<Self> {
        let headers = headers.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        Arc::new(Self {
            subject,
            decoded: wire::from_headers(headers, body),
        })
    }

    fn decode(&self) -> Result<Message, MessageError> {
        self.decoded.clone()
    }
}

struct Cursor {
    spec: ConsumerSpec,
    /// Index of the next message not yet delivered.
    next: usize,
    /// Delivered, not acknowledged: index → (deliveries so far, due again at; `None`
    /// while a delivery is out).
    pending: BTreeMap<usize, (u32, Option<Instant>)>,
    /// Wakes the consumers that read through it: a message for its context, a
    /// settlement of one of its deliveries.
    wake: Arc<Notify>,
}

impl MemoryBus {
    /// An empty bus.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Every message stored for `context`, in order, decoded.
    pub fn messages(&self, context: &str) -> Vec<Result<Message, MessageError>> {
        self.lock()
            .contexts
            .get(context)
            .map(|c| c.messages.iter().map(|m| m.decode()).collect())
            .unwrap_or_default()
    }

    /// The messages parked in `context`'s dead-letter destination, with their reasons.
    pub fn dead_letters(&self, context: &str) -> Vec<(Result<Message, MessageError>, String)> {
        self.lock()
            .contexts
            .get(context)
            .map(|c| {
                c.dead
                    .iter()
                    .map(|(m, r)| (m.decode(), r.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Stores a message that no Tessera relay wrote (any headers and body) in
    /// `context` under `subject`, as another producer on the broker might.
    pub fn publish_raw(
        &self,
        context: &str,
        subject: &str,
        headers: Vec<(String, String)>,
        body: Bytes,
    ) {
        let stored = Stored::new(subject.to_owned(), &headers, body);
        let wakes = {
            let mut state = self.lock();
            state
                .contexts
                .entry(context.to_owned())
                .or_default()
                .messages
                .push(stored);
            state.wakes(context)
        };
        wake_all(wakes);
    }
}

#[async_trait]
impl Bus for MemoryBus {
    async fn publish(&self, messages: &[Message]) -> Result<(), BusError> {
        // Encoded and decoded before the lock is taken: other consumers go on meanwhile.
        let stored: Vec<_> = messages
            .iter()
            .map(|m| {
                let headers = wire::to_headers(m);
                (
                    m,
                    Stored::new(m.subject.clone(), &headers, m.payload.clone()),
                )
            })
            .collect();
        let wakes: Vec<_> = {
            let mut state = self.lock();
            let mut grown: Vec<String> = Vec::new();
            for (m, stored) in stored {
                let context = context_of(m);
                let log = state.contexts.entry(context.clone()).or_default();
                if log.ids.insert(m.id) {
                    log.messages.push(stored);
                    if !grown.contains(&context) {
                        grown.push(context);
                    }
                }
            }
            grown.iter().flat_map(|c| state.wakes(c)).collect()
        };
        wake_all(wakes);
        Ok(())
    }

    async fn consume(&self, spec: &ConsumerSpec) -> Result<Box<dyn Consumer>, BusError> {
        let mut state = self.lock();
        let cursor = state
            .consumers
            .entry(spec.name.clone())
            .or_insert_with(|| Cursor {
                spec: spec.clone(),
                next: 0,
                pending: BTreeMap::new(),
                wake: Arc::default(),
            });
        if cursor.spec.context != spec.context || cursor.spec.filter != spec.filter {
            return Err(BusError::Refused(format!(
                "consumer {} exists for {}/{}",
                spec.name, cursor.spec.context, cursor.spec.filter
            )));
        }
        cursor.spec = spec.clone();
        // A re-opened consumer gets its unsettled deliveries again (a handle already
        // waiting on the cursor is woken for them).
        for (_, due) in cursor.pending.values_mut() {
            due.get_or_insert_with(Instant::now);
        }
        cursor.wake.notify_waiters();
        Ok(Box::new(MemoryConsumer {
            bus: self.clone(),
            name: spec.name.clone(),
            wake: Arc::clone(&cursor.wake),
        }))
    }

    fn describe(&self) -> String {
        "memory".to_owned()
    }
}

/// Where a message is stored: its source context for events, the target (the
/// subject's first token) for commands.
fn context_of(m: &Message) -> String {
    match m.kind {
        super::MessageKind::Event => m.source.clone(),
        super::MessageKind::Command => m.subject.split('.').next().unwrap_or_default().to_owned(),
    }
}

struct MemoryConsumer {
    bus: MemoryBus,
    name: String,
    /// Its cursor's wake-up.
    wake: Arc<Notify>,
}

impl MemoryConsumer {
    /// The next message to deliver now, if any, marked as out: the message, its
    /// delivery attempt and its index in the log.
    fn take(&self) -> Option<(Arc<Stored>, u32, usize)> {
        let mut state = self.bus.lock();
        let State {
            contexts,
            consumers,
        } = &mut *state;
        let cursor = consumers.get_mut(&self.name)?;
        let log = contexts.get(&cursor.spec.context)?;
        let now = Instant::now();
        // Redeliveries first, oldest first, once due. One delivered `max_deliveries`
        // times is offered no more and leaves the window; the others go on.
        loop {
            let due = cursor
                .pending
                .iter()
                .find(|(_, (_, at))| at.is_some_and(|at| at <= now))
                .map(|(i, (n, _))| (*i, *n));
            let Some((i, deliveries)) = due else { break };
            if deliveries >= cursor.spec.max_deliveries {
                cursor.pending.remove(&i);
                continue;
            }
            let entry = cursor.pending.get_mut(&i)?;
            entry.0 += 1;
            entry.1 = None;
            return Some((Arc::clone(&log.messages[i]), entry.0, i));
        }
        // Unacknowledged messages, out or waiting to be redelivered, fill the window.
        if cursor.pending.len() >= cursor.spec.max_in_flight.max(1) {
            return None;
        }
        while cursor.next < log.messages.len() {
            let i = cursor.next;
            cursor.next += 1;
            if subject_matches(&cursor.spec.filter, &log.messages[i].subject) {
                cursor.pending.insert(i, (1, None));
                return Some((Arc::clone(&log.messages[i]), 1, i));
            }
        }
        None
    }
}

#[async_trait]
impl Consumer for MemoryConsumer {
    async fn lag(&mut self) -> Result<Option<u64>, BusError> {
        let state = self.bus.lock();
        let Some(cursor) = state.consumers.get(&self.name) else {
            return Ok(None);
        };
        let waiting = state.contexts.get(&cursor.spec.context).map_or(0, |log| {
            log.messages[cursor.next.min(log.messages.len())..]
                .iter()
                .filter(|m| subject_matches(&cursor.spec.filter, &m.subject))
                .count()
        });
        Ok(Some((waiting + cursor.pending.len()) as u64))
    }

    async fn next(&mut self, wait: Duration) -> Result<Option<Delivery>, BusError> {
        let deadline = Instant::now() + wait;
        loop {
            let notified = self.wake.notified();
            if let Some((stored, attempt, index)) = self.take() {
                let message = stored.decode();
                let acker = MemoryAcker {
                    bus: self.bus.clone(),
                    name: self.name.clone(),
                    index,
                    settled: false,
                };
                return Ok(Some(Delivery::new(message, attempt, Box::new(acker))));
            }
            // Wake for a publish or a settlement, or to look at retry delays again.
            let tick = Instant::now() + Duration::from_millis(5);
            if tokio::time::timeout_at(deadline.min(tick), notified)
                .await
                .is_err()
                && Instant::now() >= deadline
            {
                return Ok(None);
            }
        }
    }
}

struct MemoryAcker {
    bus: MemoryBus,
    name: String,
    index: usize,
    settled: bool,
}

impl MemoryAcker {
    fn settle(&mut self, how: impl FnOnce(&mut State, &mut Cursor)) {
        self.settled = true;
        let wake = {
            let mut state = self.bus.lock();
            let Some(mut cursor) = state.consumers.remove(&self.name) else {
                return;
            };
            how(&mut state, &mut cursor);
            let wake = Arc::clone(&cursor.wake);
            state.consumers.insert(self.name.clone(), cursor);
            wake
        };
        // Its own consumer: the window has room again, or a redelivery is due.
        wake.notify_waiters();
    }
}

#[async_trait]
impl Acker for MemoryAcker {
    async fn ack(mut self: Box<Self>) -> Result<(), BusError> {
        let index = self.index;
        self.settle(|_, cursor| {
            cursor.pending.remove(&index);
        });
        Ok(())
    }

    async fn retry(mut self: Box<Self>, delay: Duration) -> Result<(), BusError> {
        let index = self.index;
        self.settle(|_, cursor| {
            if let Some(entry) = cursor.pending.get_mut(&index) {
                entry.1 = Some(Instant::now() + delay);
            }
        });
        Ok(())
    }

    async fn dead_letter(mut self: Box<Self>, reason: &str) -> Result<(), BusError> {
        let index = self.index;
        self.settle(|state, cursor| {
            cursor.pending.remove(&index);
            if let Some(log) = state.contexts.get_mut(&cursor.spec.context) {
                let message = Arc::clone(&log.messages[index]);
                log.dead.push((message, reason.to_owned()));
            }
        });
        Ok(())
    }
}

impl Drop for MemoryAcker {
    fn drop(&mut self) {
        if !self.settled {
            let index = self.index;
            self.settle(|_, cursor| {
                if let Some(entry) = cursor.pending.get_mut(&index) {
                    entry.1 = Some(Instant::now());
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use bytes::Bytes;
    use tessera_core::Position;
    use tokio::time::Instant;
    use uuid::Uuid;

    use super::super::{Bus, ConsumerSpec, Message, MessageKind};
    use super::MemoryBus;

    fn event(source: &str, n: u64) -> Message {
        Message {
            id: Uuid::from_u64_pair(0, n),
            kind: MessageKind::Event,
            name: "Happened".to_owned(),
            schema_version: 1,
            source: source.to_owned(),
            subject: format!("{source}.thing.Happened"),
            stream: "thing-1".to_owned(),
            version: n,
            previous: n.checked_sub(1),
            position: Position::new(n, n),
            correlation_id: None,
            causation_id: None,
            idempotency_key: None,
            headers: BTreeMap::new(),
            content_type: super::super::JSON.to_owned(),
            payload: Bytes::from_static(b"{}"),
        }
    }

    /// Time is paused: while every task waits, the clock jumps to the next timer. A
    /// consumer that missed its wake-up would sleep until its 5 ms re-look and see the
    /// clock moved; woken, it delivers at the instant of the publish or the ack.
    #[tokio::test(start_paused = true)]
    async fn a_waiting_consumer_is_woken_by_a_publish_to_its_context_and_by_its_own_acks() {
        let bus = MemoryBus::new();
        let mut spec = ConsumerSpec::new("c", "ordering", "ordering.>");
        spec.max_in_flight = 1;
        let mut consumer = bus.consume(&spec).await.expect("consume");
        let mut other = bus
            .consume(&ConsumerSpec::new("o", "payment", "payment.>"))
            .await
            .expect("consume");

        let start = Instant::now();
        let publisher = bus.clone();
        let published = tokio::spawn(async move {
            tokio::task::yield_now().await;
            publisher
                .publish(&[event("ordering", 1), event("ordering", 2)])
                .await
        });
        let first = consumer
            .next(Duration::from_secs(1))
            .await
            .expect("next")
            .expect("the first message");
        assert_eq!(start.elapsed(), Duration::ZERO, "woken by the publish");
        assert_eq!(first.message.as_ref().expect("decodes").version, 1);
        published.await.expect("task").expect("publish");

        // One in flight: the second waits for the first's ack, which wakes it.
        let start = Instant::now();
        tokio::spawn(async move {
            tokio::task::yield_now().await;
            first.ack().await
        });
        let second = consumer
            .next(Duration::from_secs(1))
            .await
            .expect("next")
            .expect("the second message");
        assert_eq!(start.elapsed(), Duration::ZERO, "woken by the ack");
        assert_eq!(second.message.as_ref().expect("decodes").version, 2);

        // A consumer of another context is not handed a publish to this one: it waits
        // out its time.
        let start = Instant::now();
        let publisher = bus.clone();
        tokio::spawn(async move {
            tokio::task::yield_now().await;
            publisher.publish(&[event("ordering", 3)]).await
        });
        assert!(other
            .next(Duration::from_millis(20))
            .await
            .expect("next")
            .is_none());
        assert!(start.elapsed() >= Duration::from_millis(20));
    }

    /// A message delivered `max_deliveries` times is offered no more, and the consumer
    /// goes on with the next (it used to stop for good at the spent message).
    #[tokio::test(start_paused = true)]
    async fn a_message_out_of_deliveries_does_not_hold_back_the_next() {
        let bus = MemoryBus::new();
        let mut spec = ConsumerSpec::new("c", "ordering", "ordering.>");
        spec.max_in_flight = 1;
        spec.max_deliveries = 2;
        let mut consumer = bus.consume(&spec).await.expect("consume");
        bus.publish(&[event("ordering", 1), event("ordering", 2)])
            .await
            .expect("publish");
        for attempt in 1..=2 {
            let d = consumer
                .next(Duration::from_secs(1))
                .await
                .expect("next")
                .expect("the first message again");
            assert_eq!(
                (d.attempt, d.message.as_ref().expect("decodes").version),
                (attempt, 1)
            );
            d.retry(Duration::ZERO).await.expect("retry");
        }
        let next = consumer
            .next(Duration::from_secs(1))
            .await
            .expect("next")
            .expect("the second message, past the spent first");
        assert_eq!(next.message.as_ref().expect("decodes").version, 2);
        assert_eq!(next.attempt, 1);
    }
}
