//! Appending a command's events: encoding them, sending them (again, when the outcome
//! is unknown), and what a failed append leaves to do.

use std::time::Duration;

use crate::idempotency::{command_event_id, FINGERPRINT_HEADER};
use crate::{
    AppendOutcome, CommandError, DomainEvent, EventAppender, EventId, ExpectedVersion, Fingerprint,
    Landing, Metadata, NewEvent, RetryPolicy, StoreError, StreamId,
};

/// Encodes a command's `events`. Keyed, they get ids derived from the key, and the first
/// records the request's `fingerprint` (if any) in its metadata.
pub(super) fn encode<E: DomainEvent, X: std::error::Error + Send + Sync + 'static>(
    stream: &StreamId,
    events: &[E],
    key: Option<&str>,
    fingerprint: Option<Fingerprint>,
    metadata: &Metadata,
) -> Result<Vec<NewEvent>, CommandError<X>> {
    events
        .iter()
        .enumerate()
        .map(|(i, event)| {
            let (event_type, data) = event.encode()?;
            let (id, metadata) = match (key, fingerprint) {
                (Some(k), Some(f)) if i == 0 => (
                    command_event_id(stream, k, i),
                    metadata
                        .clone()
                        .with_header(FINGERPRINT_HEADER, f.to_string()),
                ),
                (Some(k), _) => (command_event_id(stream, k, i), metadata.clone()),
                (None, _) => (EventId::random(), metadata.clone()),
            };
            Ok(NewEvent {
                id,
                event_type: event_type.to_owned(),
                schema_version: E::schema_version(event_type),
                data,
                metadata,
            })
        })
        .collect()
}

/// Appends; when the outcome is unknown (connection lost) sends the very same batch
/// again, which the store's idempotency rules land exactly once. Says how it landed.
pub(super) async fn append_retrying_unknown<S: EventAppender>(
    store: &S,
    retry: &RetryPolicy,
    stream: &StreamId,
    expected: ExpectedVersion,
    events: Vec<NewEvent>,
) -> Result<(AppendOutcome, Landing), StoreError> {
    let mut tries = 1;
    loop {
        match store.append_landing(stream, expected, events.clone()).await {
            Err(e) if e.is_transient() && tries < retry.max_attempts => {
                tracing::warn!(error = %e, tries, "append outcome unknown; retrying the same events");
                tokio::time::sleep(retry.delay(tries)).await;
                tries += 1;
            }
            other => return other,
        }
    }
}

/// What the command handler does after an append failed.
pub(super) enum Next<E: std::error::Error + Send + Sync + 'static> {
    /// Load again and decide again, after this wait.
    Reload(Duration),
    /// Give up with this error.
    Fail(CommandError<E>),
}

/// The attempts of one command, and how the next one goes after a failed append.
pub(super) struct Attempts {
    /// Attempts counted against the retry policy (1-based).
    pub(super) attempt: u32,
    /// Reloads after colliding with another run of the same keyed command.
    replays: u32,
}

impl Attempts {
    pub(super) fn new() -> Self {
        Self {
            attempt: 1,
            replays: 0,
        }
    }

    /// Whether an append found the command's ids taken (an earlier run of its key
    /// landed): the next attempt looks for that run before deciding.
    pub(super) fn found_taken_ids(&self) -> bool {
        self.replays > 0
    }

    /// After `error` from an append of a command (`keyed` or not) decided on a state
    /// taken `from_cache` or loaded.
    pub(super) fn after<E: std::error::Error + Send + Sync + 'static>(
        &mut self,
        error: StoreError,
        stream: &StreamId,
        keyed: bool,
        from_cache: bool,
        retry: &RetryPolicy,
    ) -> Next<E> {
        match error {
            // Another run of the same idempotent command landed first: reload to find it
            // (bounded: ids that collide without a findable first event would loop).
            StoreError::DuplicateEventId { .. } if keyed && self.replays < 3 => {
                self.replays += 1;
                self.attempt += 1;
                Next::Reload(Duration::ZERO)
            }
            // The cached state was stale (another process appended): reload at once;
            // this is not contention, so it neither waits nor counts as an attempt.
            e if e.is_conflict() && from_cache => {
                tracing::debug!(error = %e, "cached state was stale; reloading");
                Next::Reload(Duration::ZERO)
            }
            e if e.is_conflict() && self.attempt < retry.max_attempts => {
                tracing::debug!(attempt = self.attempt, error = %e, "version conflict; reloading");
                let wait = retry.delay(self.attempt);
                self.attempt += 1;
                Next::Reload(wait)
            }
            e if e.is_conflict() => Next::Fail(CommandError::Conflict {
                stream: stream.clone(),
                attempts: self.attempt,
                source: e,
            }),
            e => Next::Fail(e.into()),
        }
    }
}
