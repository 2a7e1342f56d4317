//! What every PostgreSQL part of the read side shares: statements loaded from `.sql`
//! files with their schema filled in from a checked [`SchemaName`], and positions stored
//! as two `bigint` columns.

use tessera_core::Position;
use tessera_postgres::SchemaName;
use tokio_postgres::Row;

use crate::PgError;

/// `text` (a statement from a `.sql` file) with `{schema}` replaced by `schema`, quoted.
/// The schema is the only thing ever put into a statement's text; values are bound.
pub(crate) fn in_schema(text: &str, schema: &SchemaName) -> String {
    fill(text, &schema.quoted())
}

/// `text` with `{schema}` replaced by `quoted`: a schema a [`PgHandler`](crate::PgHandler)
/// was handed, already checked and quoted.
pub(crate) fn fill(text: &str, quoted: &str) -> String {
    text.replace("{schema}", quoted)
}

/// A position as the two `bigint` parameters it is stored in.
pub(crate) fn to_columns(p: Position) -> Result<(i64, i64), PgError> {
    let too_big = |_| PgError::Corrupt {
        name: "position".to_owned(),
        reason: format!("position {p} does not fit in bigint columns"),
    };
    Ok((
        i64::try_from(p.commit).map_err(too_big)?,
        i64::try_from(p.prepare).map_err(too_big)?,
    ))
}

/// The position stored in columns `commit` and `commit + 1` of `row`, owned by `owner`.
pub(crate) fn from_columns(row: &Row, commit: usize, owner: &str) -> Result<Position, PgError> {
    let (c, p): (i64, i64) = (row.try_get(commit)?, row.try_get(commit + 1)?);
    let corrupt = || PgError::Corrupt {
        name: owner.to_owned(),
        reason: format!("negative position {c}.{p}"),
    };
    Ok(Position::new(
        u64::try_from(c).map_err(|_| corrupt())?,
        u64::try_from(p).map_err(|_| corrupt())?,
    ))
}
