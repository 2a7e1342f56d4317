//! How far readers trail the writers, and why.

use std::time::Duration;

use tessera_core::{ReaderLag, StoreError};

use crate::codec::{self, get, Xid8};
use crate::read::NO_JIT;
use crate::store::Inner;

/// Measures the [`ReaderLag`] now, for
/// [`PostgresStore::reader_lag`](crate::PostgresStore::reader_lag).
pub(crate) async fn measure(inner: &Inner) -> Result<ReaderLag, StoreError> {
    let rows = inner
        .query_with("measuring reader lag", NO_JIT, &inner.sql.lag, &[])
        .await?;
    let decode = || -> Result<ReaderLag, String> {
        let row = rows.first().ok_or("no row")?;
        let newest_committed = match get::<Option<Xid8>>(row, "tx_id")? {
            Some(tx) => Some(codec::position(tx, get(row, "position")?)?),
            None => None,
        };
        let age = get::<Option<f64>>(row, "holder_age")?;
        Ok(ReaderLag {
            events_behind: codec::unsigned(get(row, "events")?, "count")?,
            newest_committed,
            oldest_open_transaction: age.and_then(|s| Duration::try_from_secs_f64(s.max(0.0)).ok()),
        })
    };
    decode().map_err(|e| StoreError::backend("measuring reader lag", e))
}
