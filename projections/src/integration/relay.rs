//! The outbox relay: a checkpointed reader of the service's own log that publishes its
//! public events and moves its checkpoint only after the broker confirmed them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tessera_core::{
    BoxError, EventFilter, EventReader, Position, ReadStream, RecordedEvent, Version,
};

use super::{Bus, Message, PublicEvents};
use crate::checkpoint::{expect_at, CheckpointStore};
use crate::{ApplyError, Subscriber};

/// Streams whose last public version a relay remembers before it starts afresh (it then
/// looks them up in the log again).
const REMEMBERED_STREAMS: usize = 100_000;
/// Events read per page when looking back for a stream's previous public event.
const LOOK_BACK_PAGE: usize = 64;

/// The outbox relay of one context to one broker: run it with a
/// [`Runner`](crate::Runner), which gives it batches of the log in order, retries a
/// failed publish with backoff and reports its status and lag.
///
/// Each message carries `previous`, the version of the stream's last public event
/// before it, so that an inbox can tell a gap from a private event. The relay remembers
/// it per stream and, for a stream it has not seen since it started, reads the stream
/// backwards to find it.
pub struct Relay<S, C> {
    name: String,
    public: PublicEvents,
    store: S,
    bus: Arc<dyn Bus>,
    checkpoints: C,
    last_public: Arc<Mutex<HashMap<String, u64>>>,
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
        Self {
            name: name.into(),
            public,
            store,
            bus,
            checkpoints,
            last_public: Arc::default(),
        }
    }

    /// The version of the last public event of `event`'s stream before it.
    async fn previous(
        &self,
        event: &RecordedEvent,
        batch: &HashMap<String, u64>,
    ) -> Result<Option<u64>, BoxError> {
        let stream = event.stream_id.as_str();
        if let Some(v) = batch.get(stream) {
            return Ok(Some(*v));
        }
        let remembered = self
            .last_public
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(stream)
            .copied();
        if let Some(v) = remembered.filter(|v| *v < event.version.0) {
            return Ok(Some(v));
        }
        let mut before = event.version.0;
        while before > 0 {
            let read = ReadStream::backward()
                .from(Version(before - 1))
                .limit(LOOK_BACK_PAGE);
            let page = self.store.read_stream(&event.stream_id, read).await?;
            if let Some(found) = page.iter().find(|e| self.public.publishes(e)) {
                return Ok(Some(found.version.0));
            }
            match page.last() {
                Some(oldest) => before = oldest.version.0,
                None => break,
            }
        }
        Ok(None)
    }

    async fn messages(
        &self,
        batch: &[RecordedEvent],
    ) -> Result<(Vec<Message>, HashMap<String, u64>), BoxError> {
        let mut last_in_batch: HashMap<String, u64> = HashMap::new();
        let mut messages = Vec::new();
        for event in batch.iter().filter(|e| self.public.publishes(e)) {
            let previous = self.previous(event, &last_in_batch).await?;
            if let Some(m) = self.public.message(event, previous)? {
                messages.push(m);
                last_in_batch.insert(event.stream_id.as_str().to_owned(), event.version.0);
            }
        }
        Ok((messages, last_in_batch))
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
        self.checkpoints.load(&self.name).await
    }

    async fn apply(&self, from: Position, batch: &[RecordedEvent]) -> Result<(), ApplyError> {
        let failed = |error| ApplyError::Failed { applied: 0, error };
        // Fenced before publishing: a second relay that lost the race publishes nothing.
        let stored = self.checkpoints.load(&self.name).await.map_err(failed)?;
        expect_at(stored, from)?;
        let (messages, published) = self.messages(batch).await.map_err(failed)?;
        if !messages.is_empty() {
            self.bus.publish(&messages).await.map_err(|e| {
                if e.is_transient() {
                    // A broker outage or a lost confirmation: retried for as long as it
                    // takes, not counted as a failing event.
                    ApplyError::Unavailable { error: e.into() }
                } else {
                    failed(e.into())
                }
            })?;
        }
        let to = batch.last().map_or(from, |e| e.position);
        if !self
            .checkpoints
            .advance(&self.name, from, to)
            .await
            .map_err(failed)?
        {
            return Err(ApplyError::Fenced { expected: from });
        }
        let mut last = self
            .last_public
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if last.len() + published.len() > REMEMBERED_STREAMS {
            last.clear();
        }
        last.extend(published);
        Ok(())
    }
}
