//! Browsing the store for an operator: categories, streams, correlated events
//! (`sql/catalog_*.sql`, where each statement says what it costs).

use postgres_types::ToSql;
use tessera_core::{
    ListStreams, Position, RecordedEvent, StoreError, StreamId, StreamInfo, Version,
};
use tokio_postgres::Row;
use uuid::Uuid;

use crate::codec::{self, get, recorded_event, Xid8};
use crate::read;
use crate::store::Inner;

impl Inner {
    pub(crate) async fn categories(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let what = "listing categories";
        let limit = read::limit(limit)?;
        let sql = &self.sql.catalog_categories;
        let rows = self.query(what, sql, &[&after, &limit]).await?;
        rows.iter()
            .map(|row| get(row, "category").map_err(|e| StoreError::backend(what, e)))
            .collect()
    }

    pub(crate) async fn streams(&self, list: &ListStreams) -> Result<Vec<StreamInfo>, StoreError> {
        let limit = read::limit(list.limit)?;
        let after = list.after.as_ref().map(StreamId::as_str);
        let params: [&(dyn ToSql + Sync); 3] = [&after, &list.category, &limit];
        let sql = &self.sql.catalog_streams;
        let rows = self.query("listing streams", sql, &params).await?;
        rows.iter().map(stream_info).collect()
    }

    pub(crate) async fn correlated(
        &self,
        correlation_id: Uuid,
        after: Position,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let limit = read::limit(limit)?;
        let tx = Xid8(after.commit);
        let position = i64::try_from(after.prepare).unwrap_or(i64::MAX);
        // The text serde writes for the metadata's `Uuid`: hyphenated, lower case.
        let id = correlation_id.hyphenated().to_string();
        let params: [&(dyn ToSql + Sync); 4] = [&tx, &position, &id, &limit];
        let sql = &self.sql.catalog_correlated;
        let rows = self
            .query("finding correlated events", sql, &params)
            .await?;
        rows.iter().map(recorded_event).collect()
    }
}

/// A `streams` row; one that does not decode is [`StoreError::Corrupt`].
fn stream_info(row: &Row) -> Result<StreamInfo, StoreError> {
    let stream = get::<String>(row, "stream_id");
    let decoded = stream.clone().and_then(|stream| {
        let stream_id = StreamId::new(stream).map_err(|e| e.to_string())?;
        let version = codec::unsigned(get(row, "version")?, "streams.version")?;
        Ok(StreamInfo {
            stream_id,
            version: Version(version),
        })
    });
    decoded.map_err(|reason| StoreError::Corrupt {
        stream: stream.unwrap_or_else(|_| "<unreadable stream_id>".to_owned()),
        version: 0,
        reason,
    })
}
