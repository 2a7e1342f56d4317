//! A caller's append encoded once ([`Append`]) into the parameters the append
//! statements take, and the rows a statement returns for it read back as what it did
//! ([`Applied`]).

use postgres_types::ToSql;
use tessera_core::{AppendOutcome, ExpectedVersion, NewEvent, StoreError, StreamId, Version};
use tokio_postgres::Row;
use uuid::Uuid;

use crate::codec::{self, get, Jsonb, Xid8};

/// An append, encoded once into the arrays the append statement unnests.
#[derive(Debug)]
pub(crate) struct Append {
    pub(super) stream: StreamId,
    pub(super) expected: ExpectedVersion,
    pub(super) ids: Vec<Uuid>,
    /// The stream id as the `text` parameter.
    pub(super) name: String,
    pub(super) types: Vec<String>,
    pub(super) schema_versions: Vec<i64>,
    pub(super) data: Vec<Jsonb>,
    pub(super) metadata: Vec<Jsonb>,
    /// `Exact(v)` as a `bigint`; `None` when `v` does not fit (no stream can be there).
    pub(super) exact: Option<i64>,
}

/// What the append statement did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Applied {
    /// The events went in (pending the transaction's commit).
    Inserted(AppendOutcome),
    /// The expectation did not hold or an id was already stored: nothing written.
    Refused,
}

impl Append {
    /// Encodes `events` (already checked non-empty and free of repeated ids).
    pub(crate) fn new(
        stream: StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<Self, StoreError> {
        let n = events.len();
        let mut this = Self {
            name: stream.as_str().to_owned(),
            stream,
            expected,
            ids: Vec::with_capacity(n),
            types: Vec::with_capacity(n),
            schema_versions: Vec::with_capacity(n),
            data: Vec::with_capacity(n),
            metadata: Vec::with_capacity(n),
            exact: match expected {
                ExpectedVersion::Exact(v) => i64::try_from(v.0).ok(),
                _ => None,
            },
        };
        for e in events {
            let metadata = serde_json::to_vec(&e.metadata).map_err(|err| {
                StoreError::InvalidInput(format!("event {} metadata: {err}", e.id))
            })?;
            this.ids.push(e.id.0);
            this.types.push(e.event_type);
            this.schema_versions.push(i64::from(e.schema_version));
            this.data.push(Jsonb(e.data.bytes().clone()));
            this.metadata.push(Jsonb(metadata.into()));
        }
        Ok(this)
    }

    /// Whether the statement can be skipped: an `Exact` version no stream can have.
    pub(super) fn cannot_apply(&self) -> bool {
        matches!(self.expected, ExpectedVersion::Exact(_)) && self.exact.is_none()
    }

    /// The statement's parameters, in `$n` order: scalars for a single event (see
    /// `sql/append_insert_one.sql`), arrays otherwise.
    pub(super) fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        let mut params: Vec<&(dyn ToSql + Sync)> = match (
            &self.ids[..],
            &self.types[..],
            &self.schema_versions[..],
            &self.data[..],
            &self.metadata[..],
        ) {
            ([id], [ty], [sv], [data], [meta]) => vec![&self.name, id, ty, sv, data, meta],
            _ => vec![
                &self.name,
                &self.ids,
                &self.types,
                &self.schema_versions,
                &self.data,
                &self.metadata,
            ],
        };
        if let Some(v) = &self.exact {
            params.push(v);
        }
        params
    }

    /// Reads the rows the statement returned for this append (one per event written;
    /// none when the append was refused).
    pub(super) fn applied<'r>(
        &self,
        rows: impl Iterator<Item = &'r Row>,
    ) -> Result<Applied, StoreError> {
        let decode = || -> Result<Applied, String> {
            let mut written = 0usize;
            let (mut first, mut last) = (i64::MAX, i64::MIN);
            let mut newest: Option<(Xid8, i64)> = None;
            for row in rows {
                written += 1;
                let version: i64 = get(row, "version")?;
                first = first.min(version);
                last = last.max(version);
                let tx_id: Xid8 = get(row, "tx_id")?;
                let position: i64 = get(row, "global_position")?;
                if newest.is_none_or(|(_, p)| position > p) {
                    newest = Some((tx_id, position));
                }
            }
            let Some((tx_id, position)) = newest else {
                return Ok(Applied::Refused);
            };
            if written != self.ids.len() {
                return Err(format!("{written} of {} events written", self.ids.len()));
            }
            Ok(Applied::Inserted(AppendOutcome {
                first_version: Version(codec::unsigned(first, "first_version")?),
                version: Version(codec::unsigned(last, "last_version")?),
                position: codec::position(tx_id, position)?,
            }))
        };
        // The events may be stored: the outcome is unknown, and a retry with the same
        // event ids settles it (lands once, or finds them stored).
        decode().map_err(|reason| StoreError::Unavailable {
            message: format!(
                "append to stream {} committed but its result could not be read ({reason}); retry with the same event ids",
                self.stream
            ),
            source: None,
        })
    }
}
