//! The fake's storage: one in-memory transaction log (`$all`), an index per stream, and
//! EventStoreDB's commit decision for appends (expected revision and idempotency).

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use uuid::Uuid;

use super::messages::Position;

/// Bytes a record takes in the fake log besides its payloads, so that positions are
/// byte offsets with gaps (as on a real server), never consecutive integers.
const RECORD_OVERHEAD: u64 = 97;

/// One stored event.
#[derive(Clone, Debug)]
pub struct Stored {
    pub stream: Bytes,
    pub revision: u64,
    pub id: Uuid,
    pub event_type: String,
    pub content_type: String,
    /// 100 ns ticks since the Unix epoch, as EventStoreDB reports `created`.
    pub created_ticks: u64,
    pub data: Bytes,
    pub custom_metadata: Bytes,
    pub position: Position,
}

/// An event of an append request.
#[derive(Clone, Debug)]
pub struct Proposed {
    pub id: Uuid,
    pub event_type: String,
    pub content_type: String,
    pub data: Bytes,
    pub custom_metadata: Bytes,
}

/// The expected revision of an append request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expected {
    Any,
    NoStream,
    StreamExists,
    Exact(u64),
}

/// What an append did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Written (`Written`) or found already written (`Idempotent`): last revision and
    /// the position of the last event.
    Written {
        last: u64,
        position: Position,
    },
    Idempotent {
        last: u64,
        position: Position,
    },
    /// Refused; the stream's current revision (`None`: no stream).
    WrongExpectedVersion {
        current: Option<u64>,
    },
}

/// The log and its indexes.
#[derive(Debug, Default)]
pub struct Log {
    events: Vec<Stored>,
    streams: HashMap<Bytes, Vec<usize>>,
    /// Event id → (stream, revision): EventStoreDB's committed-events cache, here
    /// unbounded (the server's is bounded; see the module documentation).
    ids: HashMap<Uuid, (Bytes, u64)>,
    end: u64,
}

impl Log {
    /// Number of events in `$all`.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// The stream's current revision.
    pub fn current(&self, stream: &[u8]) -> Option<u64> {
        self.streams.get(stream).map(|s| s.len() as u64 - 1)
    }

    fn at(&self, stream: &[u8], revision: u64) -> Option<&Stored> {
        let index = usize::try_from(revision).ok()?;
        let i = *self.streams.get(stream)?.get(index)?;
        Some(&self.events[i])
    }

    /// Decides and, when the decision is to write, writes (EventStoreDB's
    /// `IndexWriter.CheckCommit` rules, for a stream that was never deleted).
    pub fn append(
        &mut self,
        stream: &Bytes,
        expected: Expected,
        events: Vec<Proposed>,
    ) -> Decision {
        let current = self.current(stream);
        let wrong = Decision::WrongExpectedVersion { current };
        if expected == Expected::StreamExists && current.is_none() {
            return wrong;
        }
        // With Any / StreamExists: idempotent when every id is stored in this stream,
        // a plain append when the first id is not, refused when only some are.
        if matches!(expected, Expected::Any | Expected::StreamExists) {
            let mut span = None;
            for (n, e) in events.iter().enumerate() {
                match self.ids.get(&e.id) {
                    Some((s, revision)) if s == stream => {
                        span = Some((span.map_or(*revision, |(first, _)| first), *revision));
                    }
                    _ if n == 0 => return self.write(stream, current, events),
                    _ => return wrong, // "corrupted idempotency" is answered as this
                }
            }
            let Some((_, last)) = span else { return wrong };
            return self.idempotent(stream, last);
        }
        let expected_rev = match expected {
            Expected::NoStream => None,
            Expected::Exact(r) => Some(r),
            Expected::Any | Expected::StreamExists => unreachable!("handled above"),
        };
        let behind = match (expected_rev, current) {
            (_, None) => false,
            (None, Some(_)) => true,
            (Some(e), Some(c)) => e < c,
        };
        if behind {
            // Idempotent only when the batch is exactly what follows `expected`.
            let mut next = expected_rev.map_or(0, |r| r + 1);
            for e in &events {
                match self.at(stream, next) {
                    Some(stored) if stored.id == e.id => next += 1,
                    _ => return wrong,
                }
            }
            return self.idempotent(stream, next - 1);
        }
        if expected_rev != current {
            return wrong;
        }
        self.write(stream, current, events)
    }

    fn idempotent(&self, stream: &[u8], last: u64) -> Decision {
        let position = self
            .at(stream, last)
            .map(|e| e.position)
            .unwrap_or_default();
        Decision::Idempotent { last, position }
    }

    fn write(&mut self, stream: &Bytes, current: Option<u64>, events: Vec<Proposed>) -> Decision {
        let mut revision = current.map_or(0, |c| c + 1);
        let mut position = Position::default();
        let created_ticks = ticks_now();
        for e in events {
            position = Position {
                commit_position: self.end,
                prepare_position: self.end,
            };
            let size = RECORD_OVERHEAD
                + e.data.len() as u64
                + e.custom_metadata.len() as u64
                + e.event_type.len() as u64;
            self.end += size;
            self.ids.insert(e.id, (stream.clone(), revision));
            self.streams
                .entry(stream.clone())
                .or_default()
                .push(self.events.len());
            self.events.push(Stored {
                stream: stream.clone(),
                revision,
                id: e.id,
                event_type: e.event_type,
                content_type: e.content_type,
                created_ticks,
                data: e.data,
                custom_metadata: e.custom_metadata,
                position,
            });
            revision += 1;
        }
        Decision::Written {
            last: revision - 1,
            position,
        }
    }

    /// A stream read: `None` when the stream does not exist.
    pub fn read_stream(
        &self,
        stream: &[u8],
        from: Option<u64>,
        forwards: bool,
        count: u64,
    ) -> Option<Vec<Stored>> {
        let indexes = self.streams.get(stream)?;
        let take = usize::try_from(count).unwrap_or(usize::MAX);
        let pick = |i: &usize| self.events[*i].clone();
        Some(if forwards {
            let from = from.map_or(0, |r| usize::try_from(r).unwrap_or(usize::MAX));
            indexes.iter().skip(from).take(take).map(pick).collect()
        } else {
            let last = indexes.len() - 1;
            let from = from.map_or(last, |r| usize::try_from(r).map_or(last, |r| r.min(last)));
            indexes[..=from].iter().rev().take(take).map(pick).collect()
        })
    }

    /// A `$all` read. Forwards from `from` inclusive (`None`: the start); backwards from
    /// before `from` (`None`: the end).
    pub fn read_all(&self, from: Option<Position>, forwards: bool, count: u64) -> Vec<Stored> {
        let take = usize::try_from(count).unwrap_or(usize::MAX);
        if forwards {
            let start = from.map_or(0, |p| self.events.partition_point(|e| e.position < p));
            self.events[start..].iter().take(take).cloned().collect()
        } else {
            let end = from.map_or(self.events.len(), |p| {
                self.events.partition_point(|e| e.position < p)
            });
            self.events[..end]
                .iter()
                .rev()
                .take(take)
                .cloned()
                .collect()
        }
    }

    /// Events from index `from` of `$all` on (for subscriptions).
    pub fn since(&self, from: usize) -> &[Stored] {
        self.events.get(from..).unwrap_or_default()
    }

    /// Index in `$all` of the first event after `p`.
    pub fn index_after(&self, p: Position) -> usize {
        self.events.partition_point(|e| e.position <= p)
    }
}

fn ticks_now() -> u64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(since.as_nanos() / 100).unwrap_or(u64::MAX)
}
