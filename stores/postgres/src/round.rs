//! Several appends to distinct streams as the parameters of one group statement.

use postgres_types::ToSql;
use tessera_core::{ExpectedVersion, StoreError};
use tokio_postgres::Row;
use uuid::Uuid;

use crate::append::{Append, Applied};
use crate::codec::{get, Jsonb};

/// The appends of a group, split so that no statement touches a stream twice: round
/// `r` holds the `r`-th append to each stream, so later rounds see earlier ones.
pub(crate) fn rounds(appends: &[&Append]) -> Vec<Vec<usize>> {
    let mut rounds: Vec<Vec<usize>> = Vec::new();
    for (i, a) in appends.iter().enumerate() {
        let earlier = appends[..i].iter().filter(|b| b.stream == a.stream).count();
        match rounds.get_mut(earlier) {
            Some(round) => round.push(i),
            None => rounds.push(vec![i]),
        }
    }
    rounds
}

/// One statement's arrays: per append, then per event.
pub(crate) struct Round<'a> {
    streams: Vec<&'a str>,
    kinds: Vec<i32>,
    expected: Vec<Option<i64>>,
    counts: Vec<i64>,
    owners: Vec<i64>,
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
            r.ids.extend_from_slice(&a.ids);
            r.types.extend(a.types.iter().map(String::as_str));
            r.schema_versions.extend_from_slice(&a.schema_versions);
            r.data.extend_from_slice(&a.data);
            r.metadata.extend_from_slice(&a.metadata);
        }
        r
    }

    /// The statement's parameters, in `$n` order.
    pub(crate) fn params(&self) -> [&(dyn ToSql + Sync); 10] {
        [
            &self.streams,
            &self.kinds,
            &self.expected,
            &self.counts,
            &self.owners,
            &self.ids,
            &self.types,
            &self.schema_versions,
            &self.data,
            &self.metadata,
        ]
    }
}

/// Reads the statement's rows (one per append, in order) as each append's result.
pub(crate) fn applied(appends: &[&Append], rows: &[Row]) -> Vec<Result<Applied, StoreError>> {
    appends
        .iter()
        .zip(1_i64..)
        .map(|(a, ord)| {
            let row = rows
                .iter()
                .find(|r| get::<i64>(r, "ord").is_ok_and(|o| o == ord));
            match row {
                Some(row) => a.applied(row),
                None => Err(StoreError::Backend {
                    message: format!("group append returned no row for stream {}", a.stream),
                    source: None,
                }),
            }
        })
        .collect()
}
