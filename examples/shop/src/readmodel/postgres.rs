//! A view in PostgreSQL: one `docs` table per version schema.

use std::collections::HashMap;
use std::marker::PhantomData;

use deadpool_postgres::{GenericClient, Transaction};
use tessera_core::{BoxError, EventFilter, Position, RecordedEvent};
use tessera_projections::PgHandler;

use super::{Filters, Page, View};

/// The [`PgHandler`] of a view.
pub struct PgView<V> {
    name: String,
    view: PhantomData<fn() -> V>,
}

impl<V: View> PgView<V> {
    /// The handler of `V`, named with a prefix (empty in production; unique in tests).
    pub fn new(prefix: &str) -> Self {
        Self {
            name: format!("{prefix}{}", V::NAME),
            view: PhantomData,
        }
    }
}

fn to_i64(p: Position) -> Result<(i64, i64), BoxError> {
    Ok((i64::try_from(p.commit)?, i64::try_from(p.prepare)?))
}

fn from_i64(commit: i64, prepare: i64) -> Result<Position, BoxError> {
    Ok(Position::new(
        u64::try_from(commit)?,
        u64::try_from(prepare)?,
    ))
}

impl<V: View> PgHandler for PgView<V> {
    fn name(&self) -> &str {
        &self.name
    }

    fn filter(&self) -> EventFilter {
        V::filter()
    }

    async fn setup(&self, tx: &Transaction<'_>, schema: &str) -> Result<(), BoxError> {
        tx.batch_execute(&include_str!("docs.sql").replace("{schema}", schema))
            .await?;
        Ok(())
    }

    async fn handle(
        &self,
        tx: &Transaction<'_>,
        schema: &str,
        events: &[RecordedEvent],
    ) -> Result<(), BoxError> {
        // Documents touched by the batch: read in one statement, written in one (two
        // round trips a batch, however many documents it touches; a rebuild's batches
        // touch up to one document per event).
        let mut keys: Vec<Option<String>> = Vec::with_capacity(events.len());
        let mut touched: HashMap<String, (Position, Option<V::Doc>)> = HashMap::new();
        for event in events {
            let key = V::key(event)?;
            if let Some(key) = key.as_ref().filter(|k| !touched.contains_key(*k)) {
                touched.insert(key.clone(), (event.position, None));
            }
            keys.push(key);
        }
        if touched.is_empty() {
            return Ok(());
        }
        let wanted: Vec<&str> = touched.keys().map(String::as_str).collect();
        let select = tx
            .prepare_cached(&format!(
                "SELECT key, created_commit, created_prepare, doc FROM {schema}.docs WHERE key = ANY($1)"
            ))
            .await?;
        for row in tx.query(&select, &[&wanted]).await? {
            let key: String = row.try_get(0)?;
            let doc: serde_json::Value = row.try_get(3)?;
            let created = from_i64(row.try_get(1)?, row.try_get(2)?)?;
            touched.insert(key, (created, Some(serde_json::from_value(doc)?)));
        }
        for (event, key) in events.iter().zip(&keys) {
            let Some(key) = key else { continue };
            let entry = touched.get_mut(key).ok_or("document vanished")?;
            entry.1 = Some(V::apply(entry.1.take(), event)?);
        }
        let mut columns = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (key, (created, doc)) in touched {
            let Some(doc) = doc else { continue };
            let (c, p) = to_i64(created)?;
            columns.0.push(key);
            columns.1.push(c);
            columns.2.push(p);
            columns.3.push(serde_json::to_value(&doc)?);
        }
        let upsert = tx
            .prepare_cached(&format!(
                "INSERT INTO {schema}.docs (key, created_commit, created_prepare, doc)
                 SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::jsonb[])
                 ON CONFLICT (key) DO UPDATE SET doc = EXCLUDED.doc"
            ))
            .await?;
        tx.execute(&upsert, &[&columns.0, &columns.1, &columns.2, &columns.3])
            .await?;
        Ok(())
    }
}

/// The document under `key` in `schema`.
pub async fn get<D: serde::de::DeserializeOwned>(
    client: &impl GenericClient,
    schema: &str,
    key: &str,
) -> Result<Option<D>, BoxError> {
    // A cached statement: one round trip. After a rebuild drops `schema`, PostgreSQL
    // re-plans it by name and answers "no such table", which callers treat as a switch.
    let select = client
        .prepare_cached(&format!("SELECT doc FROM {schema}.docs WHERE key = $1"))
        .await?;
    let row = client.query_opt(&select, &[&key]).await?;
    match row {
        Some(r) => Ok(Some(serde_json::from_value(
            r.try_get::<_, serde_json::Value>(0)?,
        )?)),
        None => Ok(None),
    }
}

/// A page of documents passing `filters` in `schema`, oldest first.
pub async fn list<D: serde::de::DeserializeOwned>(
    client: &impl GenericClient,
    schema: &str,
    filters: &Filters,
    after: Option<Position>,
    limit: usize,
) -> Result<Page<D>, BoxError> {
    let (ac, ap) = to_i64(after.unwrap_or(Position::START))?;
    let fetch = i64::try_from(limit.saturating_add(1))?;
    let mut sql = format!(
        "SELECT created_commit, created_prepare, doc FROM {schema}.docs
          WHERE (created_commit, created_prepare) > ($1, $2)"
    );
    let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = vec![&ac, &ap];
    for (i, (field, value)) in filters.iter().enumerate() {
        // Field names come from the code, never from a request.
        debug_assert!(field.chars().all(|c| c.is_ascii_lowercase() || c == '_'));
        sql.push_str(&format!(" AND doc->>'{field}' = ${}", i + 3));
        params.push(value);
    }
    sql.push_str(&format!(
        " ORDER BY created_commit, created_prepare LIMIT ${}",
        filters.len() + 3
    ));
    params.push(&fetch);
    let rows = client.query(&sql, &params).await?;
    let mut items = Vec::with_capacity(rows.len());
    let mut last = None;
    for row in rows.iter().take(limit) {
        last = Some(from_i64(row.try_get(0)?, row.try_get(1)?)?);
        items.push(serde_json::from_value(
            row.try_get::<_, serde_json::Value>(2)?,
        )?);
    }
    let next = if rows.len() > limit { last } else { None };
    Ok(Page { items, next })
}
