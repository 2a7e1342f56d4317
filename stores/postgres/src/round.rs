//! Several appends to distinct streams as the parameters of one group statement.

use std::collections::HashMap;

use postgres_types::ToSql;
use tessera_core::{ExpectedVersion, StoreError};
use tokio_postgres::Row;
use uuid::Uuid;

use crate::append::{Append, Applied};
use crate::codec::Jsonb;

/// One statement's arrays: per append, then per event.
pub(crate) struct Round<'a> {
    streams: Vec<&'a str>,
    kinds: Vec<i32>,
    expected: Vec<Option<i64>>,
    counts: Vec<i64>,
    owners: Vec<i64>,
    places: Vec<i64>,
    ids: Vec<Uuid>,
    types: Vec<&'a str>,
    schema_versions: Vec<i64>,
    data: Vec<Jsonb>,
    metadata: Vec<Jsonb>,
}

impl<'a> Round<'a> {
    pub(crate) fn new(appends: impl IntoIterator<Item = &'a Append>) -> Self {
        let mut r = Round {
            streams: Vec::new(),
            kinds: Vec::new(),
            expected: Vec::new(),
            counts: Vec::new(),
            owners: Vec::new(),
            places: Vec::new(),
            ids: Vec::new(),
            types: Vec::new(),
            schema_versions: Vec::new(),
            data: Vec::new(),
            metadata: Vec::new(),
        };
        for (owner, a) in (1_i64..).zip(appends) {
            r.streams.push(&a.name);
            r.kinds.push(match a.expected {
                ExpectedVersion::NoStream => 0,
                ExpectedVersion::Exact(_) => 1,
                ExpectedVersion::StreamExists => 2,
                ExpectedVersion::Any => 3,
            });
            r.expected.push(a.exact);
            r.counts
                .push(i64::try_from(a.ids.len()).unwrap_or(i64::MAX));
            r.owners.extend(std::iter::repeat_n(owner, a.ids.len()));
            r.places.extend((1_i64..).take(a.ids.len()));
            r.ids.extend_from_slice(&a.ids);
            r.types.extend(a.types.iter().map(String::as_str));
            r.schema_versions.extend_from_slice(&a.schema_versions);
            r.data.extend_from_slice(&a.data);
            r.metadata.extend_from_slice(&a.metadata);
        }
        r
    }

    /// The statement's parameters, in `$n` order.
    pub(crate) fn params(&self) -> [&(dyn ToSql + Sync); 11] {
        [
            &self.streams,
            &self.kinds,
            &self.expected,
            &self.counts,
            &self.owners,
            &self.places,
            &self.ids,
            &self.types,
            &self.schema_versions,
            &self.data,
            &self.metadata,
        ]
    }
}

/// Reads the statement's rows (one per event written, each naming its stream) as each
/// append's result: an append to a stream no row names was refused.
pub(crate) fn applied(appends: &[&Append], rows: &[Row]) -> Vec<Result<Applied, StoreError>> {
    if let [one] = appends {
        return vec![one.applied(rows.iter())];
    }
    let mut by_stream: HashMap<&str, Vec<&Row>> = HashMap::with_capacity(appends.len());
    for row in rows {
        match row.try_get::<_, &str>("stream_id") {
            Ok(stream) => by_stream.entry(stream).or_default().push(row),
            Err(e) => {
                // Committed, with results that cannot be read: each outcome is unknown,
                // and a retry with the same event ids settles it.
                let message = format!(
                    "group append committed but returned an unreadable row ({e}); retry with the same event ids"
                );
                return appends
                    .iter()
                    .map(|_| {
                        Err(StoreError::Unavailable {
                            message: message.clone(),
                            source: None,
                        })
                    })
                    .collect();
            }
        }
    }
    appends
        .iter()
        .map(|a| {
            let rows = by_stream
                .get(a.name.as_str())
                .map_or(&[][..], Vec::as_slice);
            a.applied(rows.iter().copied())
        })
        .collect()
}
