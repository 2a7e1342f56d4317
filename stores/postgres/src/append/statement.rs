//! One statement holding the appends of a group, in its implicit transaction: one
//! round trip, one commit. A lone append runs the single-append statement
//! (`sql/append_cas_*.sql` then `sql/append_insert*.sql`), several the group statement
//! (`sql/append_group.sql`), whose arrays [`Round`] builds; the rows returned are read
//! back as each append's result.

use std::collections::HashMap;

use deadpool_postgres::ClientWrapper;
use postgres_types::ToSql;
use tessera_core::{ExpectedVersion, StoreError};
use tokio_postgres::{Error, Row};
use uuid::Uuid;

use super::encode::{Append, Applied};
use crate::codec::Jsonb;
use crate::error::is_connection_error;
use crate::sql::Sql;

/// How a group's transaction ended.
pub(super) enum GroupResult {
    /// Committed; per append, what it did.
    Committed(Vec<Result<Applied, StoreError>>),
    /// The connection failed: every append's outcome is unknown.
    Lost(Error),
    /// The server rolled the transaction back because of `error`.
    Aborted(Error),
}

/// Runs the appends as one statement, in its implicit transaction: the single-append
/// statement for a lone append, the group statement for several (each to a different
/// stream). One round trip and one commit either way.
pub(super) async fn run(client: &ClientWrapper, sql: &Sql, appends: &[&Append]) -> GroupResult {
    let text = match appends {
        [one] => sql.append(one.expected, one.ids.len()),
        _ => &sql.append_group,
    };
    let statement = match client.prepare_cached(text).await {
        Ok(s) => s,
        Err(e) if is_connection_error(&e) => return GroupResult::Lost(e),
        Err(e) => return GroupResult::Aborted(e),
    };
    let rows = match appends {
        [one] => client.query(&statement, &one.params()).await,
        _ => {
            let round = Round::new(appends.iter().copied());
            client.query(&statement, &round.params()).await
        }
    };
    match rows {
        Ok(rows) => GroupResult::Committed(applied(appends, &rows)),
        Err(e) if is_connection_error(&e) => GroupResult::Lost(e),
        Err(e) => GroupResult::Aborted(e),
    }
}

/// The group statement's arrays: per append, then per event.
struct Round<'a> {
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
    fn new(appends: impl IntoIterator<Item = &'a Append>) -> Self {
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
    fn params(&self) -> [&(dyn ToSql + Sync); 11] {
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
fn applied(appends: &[&Append], rows: &[Row]) -> Vec<Result<Applied, StoreError>> {
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
