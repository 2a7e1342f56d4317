//! Why an append was refused, decided with the idempotency rules of the contract.

use std::collections::HashMap;

use tessera_core::{AppendOutcome, EventId, ExpectedVersion, Position, StoreError, Version};
use tokio_postgres::Row;
use uuid::Uuid;

use super::encode::Append;
use crate::codec::{self, get, Xid8};

/// The verdict on a refused append.
#[derive(Debug)]
pub(super) enum Verdict {
    /// The batch is already stored where the expectation puts it: its original outcome.
    Repeat(AppendOutcome),
    /// A conflict to report.
    Refused(StoreError),
    /// The stream moved on since and now meets the expectation: run it again.
    Retry,
}

/// What the conflict query found: the stream's version and where the batch's ids are.
struct Found {
    current: Option<Version>,
    stored: HashMap<Uuid, (Version, Position)>,
}

/// Decides on `append` from the rows of `sql/conflict.sql`.
pub(super) fn verdict(append: &Append, rows: &[Row]) -> Verdict {
    match found(rows) {
        Ok(found) => decide(append, &found),
        Err(reason) => Verdict::Refused(StoreError::Corrupt {
            stream: append.stream.to_string(),
            version: 0,
            reason: format!("while checking a refused append: {reason}"),
        }),
    }
}

fn found(rows: &[Row]) -> Result<Found, String> {
    let mut current = None;
    let mut stored = HashMap::new();
    for row in rows {
        if let Some(v) = get::<Option<i64>>(row, "current")? {
            current = Some(Version(codec::unsigned(v, "streams.version")?));
        }
        if let Some(id) = get::<Option<Uuid>>(row, "event_id")? {
            let version = Version(codec::unsigned(get(row, "version")?, "version")?);
            let position =
                codec::position(get::<Xid8>(row, "tx_id")?, get(row, "global_position")?)?;
            stored.insert(id, (version, position));
        }
    }
    Ok(Found { current, stored })
}

fn decide(append: &Append, found: &Found) -> Verdict {
    let expected = append.expected;
    if found.current.is_some() {
        if let Some(outcome) = repeat_of_stored(append, found) {
            return Verdict::Repeat(outcome);
        }
        if expected.is_met_by(found.current) {
            if let Some((id, (version, _))) = append
                .ids
                .iter()
                .find_map(|id| found.stored.get(id).map(|at| (id, at)))
            {
                return Verdict::Refused(StoreError::DuplicateEventId {
                    stream: append.stream.clone(),
                    event_id: EventId(*id),
                    version: *version,
                });
            }
        }
    }
    if expected.is_met_by(found.current) {
        Verdict::Retry
    } else {
        Verdict::Refused(StoreError::WrongExpectedVersion {
            stream: append.stream.clone(),
            expected,
            actual: found.current,
        })
    }
}

/// The original outcome when the batch is exactly events already stored where the
/// expectation puts them (anywhere, for `Any` and `StreamExists`).
fn repeat_of_stored(append: &Append, found: &Found) -> Option<AppendOutcome> {
    // Where the expectation puts the batch (`ExpectedVersion::first_version` without
    // its overflow on `Exact(u64::MAX)`).
    let start = match append.expected {
        ExpectedVersion::NoStream => Version::FIRST,
        ExpectedVersion::Exact(v) => Version(v.0.checked_add(1)?),
        ExpectedVersion::Any | ExpectedVersion::StreamExists => {
            found.stored.get(append.ids.first()?)?.0
        }
    };
    if matches!(
        append.expected,
        ExpectedVersion::NoStream | ExpectedVersion::Exact(_)
    ) && found.current.is_none_or(|c| start > c)
    {
        return None;
    }
    let mut position = None;
    let mut version = start;
    for (i, id) in append.ids.iter().enumerate() {
        version = Version(start.0.checked_add(u64::try_from(i).ok()?)?);
        let (at, pos) = found.stored.get(id)?;
        if *at != version {
            return None;
        }
        position = Some(*pos);
    }
    Some(AppendOutcome {
        first_version: start,
        version,
        position: position?,
    })
}
