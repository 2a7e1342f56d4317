//! The reader a subscription polls: the store, with every read traced under the
//! subscription's span (the polling loop runs in a task of its own), and a prompt
//! re-read when committed events are still hidden behind an older open transaction.
//!
//! A notification can arrive while the events it announces are not yet visible to
//! readers (an older transaction is still running). Without the re-check the next read
//! would wait for the poll interval; with it, the subscription is woken again shortly,
//! backing off up to half a second (or the poll interval, if shorter) while the older
//! transaction stays open.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tessera_core::{
    EventFilter, EventId, EventReader, Position, ReadAll, ReadStream, RecordedEvent, StoreError,
    StreamId, Subscription, Version,
};
use tracing::{Instrument, Span};

use crate::codec::get;
use crate::PostgresStore;

const FIRST_RECHECK_MS: u64 = 10;
const MAX_RECHECK_MS: u64 = 500;

#[derive(Clone, Debug)]
pub(crate) struct Traced {
    store: PostgresStore,
    span: Span,
    /// The next re-check delay, in milliseconds.
    recheck_ms: Arc<AtomicU64>,
}

impl Traced {
    pub(crate) fn new(store: PostgresStore, span: Span) -> Self {
        Self {
            store,
            span,
            recheck_ms: Arc::new(AtomicU64::new(FIRST_RECHECK_MS)),
        }
    }

    /// After a short read: if committed events are hidden, wake the subscription again
    /// after a delay that doubles while they stay hidden.
    async fn recheck_if_hidden(&self) {
        let inner = self.store.inner();
        let hidden = match inner
            .query("checking for hidden events", &inner.sql.hidden, &[])
            .await
        {
            Ok(rows) => rows
                .first()
                .is_some_and(|r| get::<bool>(r, "hidden").unwrap_or(false)),
            // Unknown (a connection the server just dropped, say): check again shortly
            // instead of leaving hidden events to the next poll, which may be far off.
            Err(_) => true,
        };
        if !hidden {
            self.recheck_ms.store(FIRST_RECHECK_MS, Ordering::Relaxed);
            return;
        }
        let poll = u64::try_from(inner.subscription.poll_interval.as_millis()).unwrap_or(u64::MAX);
        let cap = poll.min(MAX_RECHECK_MS);
        let delay = self.recheck_ms.load(Ordering::Relaxed).min(cap);
        self.recheck_ms
            .store(delay.saturating_mul(2), Ordering::Relaxed);
        let appended = inner.appended.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(delay)).await;
            appended.send_modify(|v| *v = v.wrapping_add(1));
        });
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
            Ok(events) => {
                tracing::trace!(parent: &span, events = events.len(), "read");
                if events.len() < read.limit {
                    self.recheck_if_hidden().instrument(span).await;
                }
            }
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
