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
/// one wire format (so a delivery decodes as it would from a real broker), and drops a
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
    wake: Notify,
}

#[derive(Default)]
struct State {
    contexts: HashMap<String, ContextLog>,
    consumers: HashMap<String, Cursor>,
}

#[derive(Default)]
struct ContextLog {
    messages: Vec<Stored>,
    ids: HashSet<uuid::Uuid>,
    dead: Vec<(Stored, String)>,
}

/// A message as a broker holds it.
#[derive(Clone)]
struct Stored {
    subject: String,
    headers: Vec<(String, String)>,
    body: Bytes,
}

impl Stored {
    fn decode(&self) -> Result<Message, MessageError> {
        let headers = self.headers.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        wire::from_headers(headers, self.body.clone())
    }
}

struct Cursor {
    spec: ConsumerSpec,
    /// Index of the next message not yet delivered.
    next: usize,
    /// Delivered, not acknowledged: index → (deliveries so far, due again at; `None`
    /// while a delivery is out).
    pending: BTreeMap<usize, (u32, Option<Instant>)>,
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
            .map(|c| c.messages.iter().map(Stored::decode).collect())
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
        let stored = Stored {
            subject: subject.to_owned(),
            headers,
            body,
        };
        self.lock()
            .contexts
            .entry(context.to_owned())
            .or_default()
            .messages
            .push(stored);
        self.inner.wake.notify_waiters();
    }
}

#[async_trait]
impl Bus for MemoryBus {
    async fn publish(&self, messages: &[Message]) -> Result<(), BusError> {
        {
            let mut state = self.lock();
            for m in messages {
                let log = state.contexts.entry(context_of(m)).or_default();
                if log.ids.insert(m.id) {
                    log.messages.push(Stored {
                        subject: m.subject.clone(),
                        headers: wire::to_headers(m),
                        body: m.payload.clone(),
                    });
                }
            }
        }
        self.inner.wake.notify_waiters();
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
            });
        if cursor.spec.context != spec.context || cursor.spec.filter != spec.filter {
            return Err(BusError::Refused(format!(
                "consumer {} exists for {}/{}",
                spec.name, cursor.spec.context, cursor.spec.filter
            )));
        }
        cursor.spec = spec.clone();
        // A re-opened consumer gets its unsettled deliveries again.
        for (_, due) in cursor.pending.values_mut() {
            due.get_or_insert_with(Instant::now);
        }
        Ok(Box::new(MemoryConsumer {
            bus: self.clone(),
            name: spec.name.clone(),
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
}

impl MemoryConsumer {
    /// The next message to deliver now, if any, marked as out.
    fn take(&self) -> Option<(Result<Message, MessageError>, u32, usize)> {
        let mut state = self.bus.lock();
        let State {
            contexts,
            consumers,
        } = &mut *state;
        let cursor = consumers.get_mut(&self.name)?;
        let log = contexts.get(&cursor.spec.context)?;
        let now = Instant::now();
        // Redeliveries first, oldest first, once due.
        let due = cursor
            .pending
            .iter()
            .find(|(_, (_, at))| at.is_some_and(|at| at <= now))
            .map(|(i, _)| *i);
        if let Some(i) = due {
            let entry = cursor.pending.get_mut(&i)?;
            if entry.0 >= cursor.spec.max_deliveries {
                return None;
            }
            entry.0 += 1;
            entry.1 = None;
            return Some((log.messages[i].decode(), entry.0, i));
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
                return Some((log.messages[i].decode(), 1, i));
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
            let notified = self.bus.inner.wake.notified();
            if let Some((message, attempt, index)) = self.take() {
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
        {
            let mut state = self.bus.lock();
            let Some(mut cursor) = state.consumers.remove(&self.name) else {
                return;
            };
            how(&mut state, &mut cursor);
            state.consumers.insert(self.name.clone(), cursor);
        }
        self.bus.inner.wake.notify_waiters();
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
                let message = log.messages[index].clone();
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
