//! The outbox relay: a checkpointed reader of the service's own log that publishes its
//! public events and moves its checkpoint only after the broker confirmed them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tessera_core::{BoxError, EventFilter, EventReader, Position, ReadAll, RecordedEvent, Version};

use super::{Bus, Confirmation, Message, PublicEvents};
use crate::checkpoint::CheckpointStore;
use crate::{ApplyError, Subscriber};

mod pipeline;

use pipeline::Pipeline;

/// Streams whose last public version a relay remembers before it starts afresh (it then
/// looks them up in the log again).
const REMEMBERED_STREAMS: usize = 100_000;

/// The outbox relay of one context to one broker: run it with a
/// [`Runner`](crate::Runner), which gives it batches of the log in order, retries a
/// failed publish with backoff and reports its status and lag.
///
/// Each message carries `previous`, the version of the stream's last public event
/// before it, so that an inbox can tell a gap from a private event. The relay remembers
/// it per stream and, for the streams of a batch it has not seen since it started, looks
/// it up in the log, all of them at once ([`EventReader::last_of_types`]).
///
/// # One batch ahead
///
/// On a broker whose [`Bus::send`] hands back a confirmation still to come (NATS
/// JetStream), the relay sends a batch before the previous one is confirmed, so that
/// the broker always has publishes to acknowledge, as a client publishing without pause
/// does. `apply` of batch N+1:
///
/// 1. Fence: the stored checkpoint is still where this relay left it (else
///    [`ApplyError::Fenced`], and nothing more is published); meanwhile the batch's
///    messages are built.
/// 2. Send batch N+1 (meanwhile, look up whether the log holds more to publish).
/// 3. Wait until batch N is settled: a task of its own awaits its confirmation and
///    moves the stored checkpoint from N's start to its end (compare-and-set) as soon as
///    it arrives, whether or not a batch follows (no timer).
/// 4. Leave batch N+1 to a task of its own, and return.
///
/// So the stored checkpoint moves only past confirmed messages, in order, and trails
/// the runner's position by at most one batch. When nothing more to publish follows a
/// batch in the log (the relay caught up), `apply` awaits the batch's own confirmation
/// and moves the checkpoint before it returns, so that a runner's checkpoint and status
/// are true once caught up. If batch N is not confirmed (or its checkpoint move fails),
/// the relay drops what is outstanding and `apply` returns [`ApplyError::Rewind`]: the
/// runner backs off, re-reads the stored checkpoint ([`Subscriber::checkpoint`] first
/// waits for an outstanding batch to be settled) and publishes again from there, the
/// first batch synchronously, so that an outage is retried with the runner's growing
/// backoff for as long as it lasts. What was published twice is dropped by the
/// broker's message-id window or absorbed by the inbox, and `previous` keeps each
/// stream in order at the inbox. A relay that lost its checkpoint to another publishes
/// nothing after its fence or compare-and-set found out.
///
/// On a broker whose confirmation comes with the publish (the default [`Bus::send`]:
/// memory, RabbitMQ), each batch is published, confirmed and checkpointed before
/// `apply` returns.
pub struct Relay<S, C> {
    name: String,
    public: PublicEvents,
    store: S,
    bus: Arc<dyn Bus>,
    pipeline: Pipeline<C>,
    /// Each stream's last public version this relay published, in batches without a
    /// gap up to `Remembered::to`.
    last_public: Arc<Mutex<Remembered>>,
    /// The bus's last confirmation was known when its send returned (nothing to
    /// pipeline, so no look-up of what follows).
    confirms_on_send: AtomicBool,
    /// `tessera_relay_published_total{relay}`.
    published: metrics::Key,
    /// The bus's `messaging.system`, for the publish spans (read once, not per batch).
    system: &'static str,
}

impl<S: EventReader, C: CheckpointStore> Relay<S, C> {
    /// A relay named `name` (its checkpoint's name) publishing `public` events of
    /// `store`'s log to `bus`, its checkpoint in `checkpoints`.
    pub fn new(
        name: impl Into<String>,
        public: PublicEvents,
        store: S,
        bus: Arc<dyn Bus>,
        checkpoints: C,
    ) -> Self {
        let name = name.into();
        Self {
            published: tessera_core::telemetry::key(
                "tessera_relay_published_total",
                &[("relay", &name)],
            ),
            pipeline: Pipeline::new(&name, checkpoints),
            name,
            public,
            store,
            system: crate::traced::messaging_system(&bus.describe()),
            bus,
            last_public: Arc::default(),
            confirms_on_send: AtomicBool::new(false),
        }
    }
}

/// What a relay remembers of the streams it published.
#[derive(Default)]
struct Remembered {
    /// Where its last batch ended.
    to: Position,
    /// Each stream's last public version published.
    last: HashMap<String, u64>,
}

impl<S: EventReader, C: CheckpointStore> Relay<S, C> {
    /// The version of the last public event of `event`'s stream before it: from the
    /// batch so far, what this relay remembers, or `looked` (the batch's look-backs).
    async fn previous(
        &self,
        event: &RecordedEvent,
        batch: &HashMap<String, u64>,
        looked: &HashMap<(String, u64), Option<u64>>,
    ) -> Result<Option<u64>, BoxError> {
        let stream = event.stream_id.as_str();
        if let Some(v) = batch.get(stream) {
            return Ok(Some(*v));
        }
        if let Some(v) = self.remembered(event) {
            return Ok(Some(v));
        }
        if event.version.0 == 0 {
            return Ok(None);
        }
        if let Some(found) = looked.get(&(stream.to_owned(), event.version.0)) {
            return Ok(*found);
        }
        // Not looked up with the batch (an event after one that made no message).
        let types = self.public.types_of(event.stream_id.category());
        let found = self
            .store
            .last_of_types(&[(event.stream_id.clone(), event.version)], &types)
            .await?;
        Ok(found.first().copied().flatten().map(|v| v.0))
    }

    /// What this relay remembers of `event`'s stream's last public version, if it is
    /// before `event`.
    fn remembered(&self, event: &RecordedEvent) -> Option<u64> {
        self.last_public
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .last
            .get(event.stream_id.as_str())
            .copied()
            .filter(|v| *v < event.version.0)
    }

    /// The previous public version of each stream whose first public event in `events`
    /// neither the relay remembers nor starts its stream: looked up together, one call
    /// per category ([`EventReader::last_of_types`]: one statement on PostgreSQL).
    async fn look_back(
        &self,
        events: &[RecordedEvent],
        batch: &HashMap<String, u64>,
    ) -> Result<HashMap<(String, u64), Option<u64>>, BoxError> {
        let mut first = std::collections::HashSet::new();
        let mut wanted: HashMap<&str, Vec<(tessera_core::StreamId, Version)>> = HashMap::new();
        for event in events.iter().filter(|e| self.public.publishes(e)) {
            let stream = event.stream_id.as_str();
            if !first.insert(stream)
                || batch.contains_key(stream)
                || event.version.0 == 0
                || self.remembered(event).is_some()
            {
                continue;
            }
            wanted
                .entry(event.stream_id.category())
                .or_default()
                .push((event.stream_id.clone(), event.version));
        }
        let mut looked = HashMap::new();
        for (category, queries) in wanted {
            let types = self.public.types_of(category);
            let found = self.store.last_of_types(&queries, &types).await?;
            for ((stream, version), found) in queries.into_iter().zip(found) {
                looked.insert((stream.as_str().to_owned(), version.0), found.map(|v| v.0));
            }
        }
        Ok(looked)
    }

    /// The messages of `events`' public events; `last_in_batch` holds each stream's last
    /// public version in the batch so far, and is updated.
    async fn messages(
        &self,
        events: &[RecordedEvent],
        last_in_batch: &mut HashMap<String, u64>,
    ) -> Result<Vec<Message>, BoxError> {
        let looked = self.look_back(events, last_in_batch).await?;
        let mut messages = Vec::new();
        for event in events.iter().filter(|e| self.public.publishes(e)) {
            let previous = self.previous(event, last_in_batch, &looked).await?;
            if let Some(m) = self.public.message(event, previous)? {
                messages.push(m);
                last_in_batch.insert(event.stream_id.as_str().to_owned(), event.version.0);
            }
        }
        Ok(messages)
    }
}

impl<S: EventReader, C: CheckpointStore> Relay<S, C> {
    /// Remembers each stream's last public version published, in the batch up to `to`.
    fn remember(&self, to: Position, published: HashMap<String, u64>) {
        let mut remembered = self
            .last_public
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if remembered.last.len() + published.len() > REMEMBERED_STREAMS {
            remembered.last.clear();
        }
        remembered.last.extend(published);
        remembered.to = to;
    }

    /// Forgets what it remembers unless its batches reach up to `from`, where the batch
    /// now starts. Where they do not (another relay published past this one's last
    /// batch and moved the checkpoint, or this batch is sent again after a failure), a
    /// stream's public events may have been published since without this relay: its
    /// memory of their last version could be older than the true one, and a message
    /// whose `previous` is too old lets an inbox that gets it before its predecessor
    /// (a broker's redelivery reorders) hand it over first and drop the predecessor as
    /// a duplicate.
    fn forget_unless_at(&self, from: Position) {
        let mut remembered = self
            .last_public
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if remembered.to != from {
            remembered.last.clear();
            remembered.to = from;
        }
    }

    /// Whether the log holds an event to publish after `to` (a failed read says no: the
    /// batch is then confirmed before `apply` returns, which is always safe).
    async fn more_after(&self, to: Position) -> bool {
        let probe = ReadAll::after(to, 1).filter(self.public.filter());
        self.store
            .read_all(probe)
            .await
            .is_ok_and(|next| !next.is_empty())
    }
}

impl<S: EventReader, C: CheckpointStore> Subscriber for Relay<S, C> {
    fn name(&self) -> &str {
        &self.name
    }

    fn filter(&self) -> EventFilter {
        self.public.filter()
    }

    async fn checkpoint(&self) -> Result<Position, BoxError> {
        self.pipeline.checkpoint().await
    }

    async fn apply(&self, from: Position, batch: &[RecordedEvent]) -> Result<(), ApplyError> {
        let failed = |error| ApplyError::Failed { applied: 0, error };
        let mut turn = self.pipeline.begin(from).await?;
        let mut last_in_batch = HashMap::new();
        self.forget_unless_at(from);
        // Fenced before publishing: a second relay that lost the race publishes nothing.
        let (stored, built) = tokio::join!(turn.load(), self.messages(batch, &mut last_in_batch));
        turn.fence(stored.map_err(failed)?).await?;
        let mut messages = built.map_err(failed)?;
        let publishing = crate::traced::publishing(self.system, &mut messages);
        let to = batch.last().map_or(from, |e| e.position);
        let (sent, more) = if messages.is_empty() {
            (Ok(Confirmation::confirmed()), false)
        } else if turn.careful() || self.confirms_on_send.load(Ordering::Relaxed) {
            (self.bus.send(&messages).await, false)
        } else {
            // Whether to leave this batch outstanding depends on what follows it in the
            // log: looked up while the batch goes out.
            tokio::join!(self.bus.send(&messages), self.more_after(to))
        };
        drop(publishing);
        let confirmation = match sent {
            Ok(confirmation) => confirmation,
            Err(e) => return Err(turn.not_sent(e).await),
        };
        if !messages.is_empty() {
            tessera_core::telemetry::increment(&self.published, messages.len() as u64);
            // A broker that confirms as it publishes needs no look-up.
            self.confirms_on_send
                .store(confirmation.is_settled(), Ordering::Relaxed);
        }
        // Remembered once sent: the next batch's `previous` follows this one. If this
        // one is published again after a failure, a remembered version at or after an
        // event is not used for it (the stream is looked up again).
        self.remember(to, last_in_batch);
        turn.sent(to, confirmation, more).await
    }
}
