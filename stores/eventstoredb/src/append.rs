//! Appends with the contract's idempotency, on top of EventStoreDB's.
//!
//! EventStoreDB appends a batch whose expectation is met even when some of its ids are
//! already stored in the stream (with `Exact(current)`, or with `Any` when the first id
//! is new), and accepts some reordered repeats as idempotent. The contract refuses the
//! first with `DuplicateEventId` and wants repeats only where the expectation puts
//! them. So an append first reads the stream's ids (EventStoreDB has no index by event
//! id), decides as the contract says, and writes at exactly the revision it read: a
//! writer that slipped in between makes the server refuse, and the append decides again.

use eventstore::{AppendToStreamOptions, ExpectedRevision, ReadStreamOptions, StreamPosition};
use tessera_core::{
    AppendOutcome, EventId, ExpectedVersion, NewEvent, Position, StoreError, StreamId, Version,
};

use crate::{map, EventStoreDbStore};

/// Decisions an append makes before giving up under contention.
const ATTEMPTS: usize = 64;

/// One stored event, as far as idempotency needs it.
struct Entry {
    id: EventId,
    version: Version,
    position: Position,
}

impl EventStoreDbStore {
    pub(crate) async fn append_checked(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, StoreError> {
        let data = events
            .iter()
            .map(map::event_data)
            .collect::<Result<Vec<_>, _>>()?;
        let n = events.len() as u64;
        for _ in 0..ATTEMPTS {
            let stored = self.entries(stream).await?;
            // Revisions, not counts: a truncated stream does not start at 0.
            let current = stored.last().map(|s| s.version);
            if let Some(outcome) = repeat_of_stored(&stored, expected, current, &events) {
                return Ok(outcome);
            }
            if !expected.is_met_by(current) {
                return Err(StoreError::WrongExpectedVersion {
                    stream: stream.clone(),
                    expected,
                    actual: current,
                });
            }
            if let Some((event_id, version)) = events.iter().find_map(|e| {
                let at = stored.iter().find(|s| s.id == e.id)?;
                Some((e.id, at.version))
            }) {
                return Err(StoreError::DuplicateEventId {
                    stream: stream.clone(),
                    event_id,
                    version,
                });
            }
            let revision =
                current.map_or(ExpectedRevision::NoStream, |v| ExpectedRevision::Exact(v.0));
            let options = AppendToStreamOptions::default().expected_revision(revision);
            match self
                .client()
                .append_to_stream(self.name(stream), &options, data.clone())
                .await
            {
                Ok(written) => {
                    let last = written.next_expected_version;
                    return Ok(AppendOutcome {
                        first_version: Version((last + 1).saturating_sub(n)),
                        version: Version(last),
                        position: map::position(written.position),
                    });
                }
                // The stream moved since the read: decide again on what it holds now.
                Err(eventstore::Error::WrongExpectedVersion { .. }) => continue,
                Err(e) => return Err(map::error(e, Some((stream, expected)))),
            }
        }
        Err(StoreError::unavailable(
            "EventStoreDB stream kept moving under this append",
            std::io::Error::other(format!("{ATTEMPTS} attempts on {stream}")),
        ))
    }

    /// Every event of the stream, oldest first (empty when there is no stream).
    async fn entries(&self, stream: &StreamId) -> Result<Vec<Entry>, StoreError> {
        let options = ReadStreamOptions::default()
            .forwards()
            .position(StreamPosition::Start);
        let mut out = Vec::new();
        let mut events = match self.client().read_stream(self.name(stream), &options).await {
            Ok(events) => events,
            Err(eventstore::Error::ResourceNotFound) => return Ok(out),
            Err(e) => return Err(map::error(e, None)),
        };
        loop {
            match events.next().await {
                Ok(Some(e)) => {
                    let e = e.get_original_event();
                    out.push(Entry {
                        id: EventId(e.id),
                        version: Version(e.revision),
                        position: map::position(e.position),
                    });
                }
                Ok(None) | Err(eventstore::Error::ResourceNotFound) => return Ok(out),
                Err(e) => return Err(map::error(e, None)),
            }
        }
    }
}

/// The original outcome when `events` are exactly events already stored where the
/// expectation puts them (anywhere, for `Any` and `StreamExists`).
fn repeat_of_stored(
    stored: &[Entry],
    expected: ExpectedVersion,
    current: Option<Version>,
    events: &[NewEvent],
) -> Option<AppendOutcome> {
    let start = match expected.first_version() {
        Some(v) if current.is_some_and(|c| v <= c) => v,
        Some(_) => return None,
        None => stored.iter().find(|s| s.id == events[0].id)?.version,
    };
    let first = stored.iter().position(|s| s.version == start)?;
    let span = stored.get(first..first.checked_add(events.len())?)?;
    if span.iter().zip(events).any(|(s, e)| s.id != e.id) {
        return None;
    }
    Some(AppendOutcome {
        first_version: start,
        version: Version(start.0 + events.len() as u64 - 1),
        position: span.last()?.position,
    })
}
