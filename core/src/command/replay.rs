//! Finding an earlier run of a keyed command, and answering with its outcome.
//!
//! A keyed command's events have ids derived from (stream, key, index). Its first run is
//! found either among the events a load reads anyway ([`KeyScan`]: no extra read), or,
//! when the load did not read the whole stream (a snapshot, a cached state), by the id of
//! its first event ([`find`]) and the events after it. A cached state also remembers the
//! last keyed runs this process saw land on it ([`KeyedRuns`]): their retries read
//! nothing.

use crate::idempotency::{command_event_id, FINGERPRINT_HEADER};
use crate::{
    AppendOutcome, CommandError, CommandOutcome, EventId, EventReader, Fingerprint, Position,
    ReadStream, RecordedEvent, StoreError, StreamId, Version,
};

/// What the first run of a key wrote.
#[derive(Debug, Clone)]
pub(crate) struct FirstRun {
    /// The fingerprint its first event recorded, as stored.
    fingerprint: Option<String>,
    version: Version,
    position: Position,
    events: usize,
}

impl FirstRun {
    /// The run that just wrote `events` events with `fingerprint`, landing as `written`.
    pub(super) fn written(
        fingerprint: Option<Fingerprint>,
        written: &AppendOutcome,
        events: usize,
    ) -> Self {
        Self {
            fingerprint: fingerprint.map(|f| f.to_string()),
            version: written.version,
            position: written.position,
            events,
        }
    }

    /// The answer to a run of the key with `fingerprint`: the first run's outcome, or
    /// [`CommandError::KeyReused`] when both runs have a fingerprint and they differ.
    pub(super) fn answer<E: std::error::Error + Send + Sync + 'static>(
        self,
        stream: StreamId,
        fingerprint: Option<Fingerprint>,
    ) -> Result<CommandOutcome, CommandError<E>> {
        let first = CommandOutcome {
            stream_id: stream,
            version: Some(self.version),
            position: Some(self.position),
            events: self.events,
            replayed: true,
        };
        match (fingerprint, self.fingerprint) {
            (Some(now), Some(then)) if now.to_string() != then => {
                Err(CommandError::KeyReused { first })
            }
            _ => Ok(first),
        }
    }
}

/// The last few keyed runs that landed on a cached state, oldest first: enough for a
/// command and the process-manager commands that follow it.
#[derive(Debug, Clone, Default)]
pub(crate) struct KeyedRuns(Vec<(String, FirstRun)>);

impl KeyedRuns {
    /// How many runs are remembered.
    const KEPT: usize = 4;

    /// The first run of `key`, if remembered.
    pub(super) fn of(&self, key: &str) -> Option<FirstRun> {
        let found = self.0.iter().find(|(k, _)| k == key);
        found.map(|(_, run)| run.clone())
    }

    /// These runs and `key`'s, the oldest forgotten beyond [`Self::KEPT`].
    pub(super) fn with(mut self, key: &str, run: FirstRun) -> Self {
        self.0.retain(|(k, _)| k != key);
        self.0.push((key.to_owned(), run));
        if self.0.len() > Self::KEPT {
            self.0.remove(0);
        }
        self
    }
}

/// Follows the events of a stream, in order, for the run of one key.
pub(super) struct KeyScan<'a> {
    stream: &'a StreamId,
    key: &'a str,
    /// The id the run's next event would have.
    next_id: EventId,
    run: Option<FirstRun>,
    /// The run was found and an event of another origin followed it.
    ended: bool,
}

impl<'a> KeyScan<'a> {
    pub(super) fn new(stream: &'a StreamId, key: &'a str) -> Self {
        Self {
            stream,
            key,
            next_id: command_event_id(stream, key, 0),
            run: None,
            ended: false,
        }
    }

    /// Looks at the next event of the stream.
    pub(super) fn see(&mut self, event: &RecordedEvent) {
        if self.ended {
            return;
        }
        if event.id != self.next_id {
            self.ended = self.run.is_some();
            return;
        }
        let run = self.run.get_or_insert_with(|| FirstRun {
            fingerprint: event.metadata.headers.get(FINGERPRINT_HEADER).cloned(),
            version: event.version,
            position: event.position,
            events: 0,
        });
        run.version = event.version;
        run.position = event.position;
        run.events += 1;
        self.next_id = command_event_id(self.stream, self.key, run.events);
    }

    /// The run, if its first event was among those seen.
    pub(super) fn found(self) -> Option<FirstRun> {
        self.run
    }
}

/// The first run of `key` on `stream`, looked up by its first event's id.
pub(super) async fn find<S: EventReader>(
    store: &S,
    stream: &StreamId,
    key: &str,
) -> Result<Option<FirstRun>, StoreError> {
    const PAGE: usize = 256;
    let mut scan = KeyScan::new(stream, key);
    let Some(first) = store.find_event(stream, scan.next_id).await? else {
        return Ok(None);
    };
    scan.see(&first);
    let mut from = first.version.next();
    while !scan.ended {
        let page = store
            .read_stream(stream, ReadStream::forward().from(from).limit(PAGE))
            .await?;
        for event in &page {
            scan.see(event);
        }
        match page.last() {
            Some(last) if page.len() == PAGE => from = last.version.next(),
            _ => break,
        }
    }
    Ok(scan.found())
}
