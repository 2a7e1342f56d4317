//! A view in PostgreSQL: one `docs` table per version schema.

use std::collections::HashMap;
use std::marker::PhantomData;

use deadpool_postgres::{GenericClient, Transaction};
use tessera_core::{BoxError, EventFilter, Position, RecordedEvent};

use super::{Page, View};
use crate::sql::{fill, from_columns, to_columns};
use crate::PgHandler;

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

impl<V: View> PgHandler for PgView<V> {
    fn name(&self) -> &str {
        &self.name
    }

    fn filter(&self) -> EventFilter {
        V::filter()
    }

    async fn setup(&self, tx: &Transaction<'_>, schema: &str) -> Result<(), BoxError> {
        tx.batch_execute(&fill(include_str!("sql/create.sql"), schema))
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
        for (key, created, doc) in load(tx, schema, &wanted, &self.name).await? {
            touched.insert(key, (created, Some(doc)));
        }
        for (event, key) in events.iter().zip(&keys) {
            let Some(key) = key else { continue };
            let entry = touched.get_mut(key).ok_or("document vanished")?;
            entry.1 = Some(V::apply(entry.1.take(), event)?);
        }
        let mut columns = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (key, (created, doc)) in touched {
            let Some(doc) = doc else { continue };
            let (c, p) = to_columns(created)?;
            columns.0.push(key);
            columns.1.push(c);
            columns.2.push(p);
            columns.3.push(serde_json::to_value(&doc)?);
        }
        let upsert = tx
            .prepare_cached(&fill(include_str!("sql/upsert.sql"), schema))
            .await?;
        tx.execute(&upsert, &[&columns.0, &columns.1, &columns.2, &columns.3])
            .await?;
        Ok(())
    }
}

/// The stored documents of `keys` in `schema` (quoted), each with the position that
/// created it, in one statement (`owner` names the view in errors).
pub(super) async fn load<D: serde::de::DeserializeOwned>(
    client: &impl GenericClient,
    schema: &str,
    keys: &[&str],
    owner: &str,
) -> Result<Vec<(String, Position, D)>, BoxError> {
    let select = client
        .prepare_cached(&fill(include_str!("sql/load.sql"), schema))
        .await?;
    let rows = client.query(&select, &[&keys]).await?;
    let mut docs = Vec::with_capacity(rows.len());
    for row in rows {
        let key: String = row.try_get(0)?;
        let doc: serde_json::Value = row.try_get(3)?;
        let created = from_columns(&row, 1, owner)?;
        docs.push((key, created, serde_json::from_value(doc)?));
    }
    Ok(docs)
}

/// The document under `key` in `schema` (quoted).
pub(super) async fn get<D: serde::de::DeserializeOwned>(
    client: &impl GenericClient,
    schema: &str,
    key: &str,
) -> Result<Option<D>, BoxError> {
    // A cached statement: one round trip. After a rebuild drops `schema`, PostgreSQL
    // re-plans it by name and answers "no such table", which callers treat as a switch.
    let select = client
        .prepare_cached(&fill(include_str!("sql/get.sql"), schema))
        .await?;
    let row = client.query_opt(&select, &[&key]).await?;
    match row {
        Some(r) => Ok(Some(serde_json::from_value(
            r.try_get::<_, serde_json::Value>(0)?,
        )?)),
        None => Ok(None),
    }
}

/// The document under `key` in `schema` (quoted) with the active version of projection
/// `name` (control schema `control`, quoted) in the same statement: the document is
/// the active version's when that is the version `schema` holds.
pub(super) async fn get_checked<D: serde::de::DeserializeOwned>(
    client: &impl GenericClient,
    (schema, control, name): (&str, &str, &str),
    key: &str,
) -> Result<(Option<i32>, Option<D>), BoxError> {
    let text = fill(include_str!("sql/get_checked.sql"), schema).replace("{control}", control);
    let select = client.prepare_cached(&text).await?;
    let row = client.query_one(&select, &[&key, &name]).await?;
    let active: Option<i32> = row.try_get(0)?;
    let doc = match row.try_get::<_, Option<serde_json::Value>>(1)? {
        Some(doc) => Some(serde_json::from_value(doc)?),
        None => None,
    };
    Ok((active, doc))
}

/// A page of documents of `schema` (quoted) holding the values of `want`, oldest first.
pub(super) async fn list<D: serde::de::DeserializeOwned>(
    client: &impl GenericClient,
    schema: &str,
    want: serde_json::Map<String, serde_json::Value>,
    after: Option<Position>,
    limit: usize,
) -> Result<Page<D>, BoxError> {
    let (ac, ap) = to_columns(after.unwrap_or(Position::START))?;
    let fetch = i64::try_from(limit.saturating_add(1))?;
    let want = serde_json::Value::Object(want);
    let select = client
        .prepare_cached(&fill(include_str!("sql/list.sql"), schema))
        .await?;
    let rows = client.query(&select, &[&ac, &ap, &want, &fetch]).await?;
    let mut items = Vec::with_capacity(rows.len());
    let mut last = None;
    for row in rows.iter().take(limit) {
        last = Some(from_columns(row, 0, "list")?);
        items.push(serde_json::from_value(
            row.try_get::<_, serde_json::Value>(2)?,
        )?);
    }
    let next = if rows.len() > limit { last } else { None };
    Ok(Page { items, next })
}
