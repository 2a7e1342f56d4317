//! The reader a subscription polls: the store, with every read traced under the
//! subscription's span (the polling loop runs in a task of its own).

use tessera_core::{
    EventFilter, EventId, EventReader, Position, ReadAll, ReadStream, RecordedEvent, StoreError,
    StreamId, Subscription, Version,
};
use tracing::{Instrument, Span};

use crate::PostgresStore;

#[derive(Clone, Debug)]
pub(crate) struct Traced {
    store: PostgresStore,
    span: Span,
}

impl Traced {
    pub(crate) fn new(store: PostgresStore, span: Span) -> Self {
        Self { store, span }
    }
}

impl EventReader for Traced {
    async fn read_stream(
        &self,
        stream: &StreamId,
        read: ReadStream,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.store
            .read_stream(stream, read)
            .instrument(self.span.clone())
            .await
    }

    async fn read_all(&self, read: ReadAll) -> Result<Vec<RecordedEvent>, StoreError> {
        let span = tracing::debug_span!(parent: &self.span, "read_all", after = %read.after, batch = read.limit);
        let result = self
            .store
            .inner()
            .read_all(&read)
            .instrument(span.clone())
            .await;
        match &result {
            Ok(events) => tracing::trace!(parent: &span, events = events.len(), "read"),
            Err(e) => tracing::debug!(parent: &span, error = %e, "read failed"),
        }
        result
    }

    async fn stream_version(&self, stream: &StreamId) -> Result<Option<Version>, StoreError> {
        self.store.stream_version(stream).await
    }

    async fn head(&self) -> Result<Option<Position>, StoreError> {
        self.store.head().await
    }

    async fn find_event(
        &self,
        stream: &StreamId,
        id: EventId,
    ) -> Result<Option<RecordedEvent>, StoreError> {
        self.store.find_event(stream, id).await
    }

    fn subscribe(&self, after: Position, filter: EventFilter) -> Subscription {
        self.store.subscribe(after, filter)
    }
}
