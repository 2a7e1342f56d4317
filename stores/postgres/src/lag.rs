//! How far readers trail the writers, and why.

use std::time::Duration;

use tessera_core::{ReaderLag, StoreError};

use crate::codec::{self, get, Xid8};
use crate::read::NO_JIT;
use crate::PostgresStore;
#[cfg(doc)]
use tessera_core::EventReader;

impl PostgresStore {
    /// Measures the [`ReaderLag`] now (the store's [`EventReader::reader_lag`] runs
    /// this, so a projection runner reports the delay in its status): one round trip,
    /// in a read-only transaction of its own with JIT off (its count's estimate would
    /// otherwise JIT-compile the plan on a log of a few million events).
    ///
    /// ```no_run
    /// # async fn f(store: tessera_postgres::PostgresStore) -> Result<(), tessera_core::StoreError> {
    /// let lag = store.reader_lag().await?;
    /// if lag.events_behind > 0 {
    ///     println!("{} events wait behind a transaction open for {:?}", lag.events_behind, lag.oldest_open_transaction);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn reader_lag(&self) -> Result<ReaderLag, StoreError> {
        let inner = self.inner();
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
                oldest_open_transaction: age
                    .and_then(|s| Duration::try_from_secs_f64(s.max(0.0)).ok()),
            })
        };
        decode().map_err(|e| StoreError::backend("measuring reader lag", e))
    }
}
