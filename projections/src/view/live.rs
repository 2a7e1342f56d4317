//! A PostgreSQL view's live runner: each batch in one statement, and the documents the
//! last batch left kept for the next.
//!
//! A [`PgProjection`] batch takes five statements: begin, the checkpoint's
//! compare-and-set, the handler's read of its documents, their write, commit. A view
//! knows every write of a batch once it has folded it, so its live runner reads the
//! documents first (a plain read, no transaction) and then sends the compare-and-set and
//! the write as one statement (`sql/apply.sql`): one transaction, the documents written
//! only if the checkpoint moved.
//!
//! Reading outside that statement is sound because every write of a version's documents
//! moves that version's checkpoint in the same transaction, and checkpoints only move
//! forward: if the compare-and-set finds the checkpoint still at the batch's start, no
//! document of the version changed since the read. The same argument keeps the documents
//! a batch wrote for the next one: they are the stored ones while the checkpoint stays
//! where that batch left it, so a batch starting there (same schema, same position)
//! reads only the documents it has not kept, and its compare-and-set proves the kept
//! ones current, or fences it with nothing written. A failed or fenced batch, or any
//! other start, forgets them.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use tessera_core::{BoxError, EventFilter, Position, RecordedEvent};

use super::{PgView, View};
use crate::sql::{fill, from_columns, to_columns};
use crate::{ApplyError, PgProjection, Subscriber};

/// At most this many documents are kept between batches; past it, only the last
/// batch's are.
const KEPT_DOCS: usize = 4096;

/// The documents as stored once the checkpoint of `schema` stands at `at`: each with
/// the position that created it.
struct Kept<D> {
    schema: String,
    at: Position,
    docs: HashMap<String, (Position, D)>,
}

/// The live runner's subscriber of a view in PostgreSQL.
pub(super) struct PgLive<V: View> {
    projection: PgProjection<PgView<V>>,
    kept: Mutex<Option<Kept<V::Doc>>>,
}

impl<V: View> PgLive<V> {
    pub(super) fn new(projection: PgProjection<PgView<V>>) -> Self {
        Self {
            projection,
            kept: Mutex::new(None),
        }
    }

    /// The documents kept, if they are the stored ones for a batch starting at `from`
    /// in `schema` (the kept set is taken either way: a batch that fails forgets it).
    fn take_kept(&self, schema: &str, from: Position) -> HashMap<String, (Position, V::Doc)> {
        let kept = self
            .kept
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        match kept {
            Some(k) if k.schema == schema && k.at == from => k.docs,
            _ => HashMap::new(),
        }
    }

    /// What a statement's `error` means for a batch from `from` on `version`: a
    /// rebuild that took over drops the version's schema, so "no such table" there is a
    /// fence (re-read the active version) when another version is active now, and a
    /// failure otherwise.
    async fn failure(&self, from: Position, version: i32, error: BoxError) -> ApplyError {
        if super::store::switched(&error)
            && matches!(self.projection.active_version().await, Ok(v) if v != version)
        {
            return ApplyError::Fenced { expected: from };
        }
        ApplyError::Failed { applied: 0, error }
    }

    fn keep(&self, kept: Kept<V::Doc>) {
        *self.kept.lock().unwrap_or_else(PoisonError::into_inner) = Some(kept);
    }
}

impl<V: View> Subscriber for PgLive<V> {
    fn name(&self) -> &str {
        Subscriber::name(&self.projection)
    }

    fn filter(&self) -> EventFilter {
        V::filter()
    }

    async fn checkpoint(&self) -> Result<Position, BoxError> {
        self.projection.checkpoint().await
    }

    async fn apply(&self, from: Position, batch: &[RecordedEvent]) -> Result<(), ApplyError> {
        let failed = |error: BoxError| ApplyError::Failed { applied: 0, error };
        let (pool, target, advance) = self.projection.live_parts();
        let Some(target) = target else {
            return Err(ApplyError::Fenced { expected: from });
        };
        let mut kept = self.take_kept(&target.schema, from);
        let mut keys: Vec<Option<String>> = Vec::with_capacity(batch.len());
        let mut touched: HashMap<String, (Position, Option<V::Doc>)> = HashMap::new();
        let mut missing: Vec<String> = Vec::new();
        for event in batch {
            let key = V::key(event).map_err(failed)?;
            if let Some(key) = key.as_ref().filter(|k| !touched.contains_key(*k)) {
                let known = kept.remove(key);
                if known.is_none() {
                    missing.push(key.clone());
                }
                let (created, doc) = known.map_or((event.position, None), |(c, d)| (c, Some(d)));
                touched.insert(key.clone(), (created, doc));
            }
            keys.push(key);
        }
        let client = pool.get().await.map_err(|e| failed(e.into()))?;
        if !missing.is_empty() {
            let load = async {
                let select = client
                    .prepare_cached(&fill(include_str!("sql/load.sql"), &target.schema))
                    .await?;
                for row in client.query(&select, &[&missing]).await? {
                    let key: String = row.try_get(0)?;
                    let doc: serde_json::Value = row.try_get(3)?;
                    let created = from_columns(&row, 1, self.name())?;
                    touched.insert(key, (created, Some(serde_json::from_value(doc)?)));
                }
                Ok::<_, BoxError>(())
            };
            if let Err(e) = load.await {
                return Err(self.failure(from, target.version, e).await);
            }
        }
        for (event, key) in batch.iter().zip(&keys) {
            let Some(key) = key else { continue };
            let entry = touched
                .get_mut(key)
                .ok_or("document vanished")
                .map_err(|e| failed(e.into()))?;
            entry.1 = Some(V::apply(entry.1.take(), event).map_err(failed)?);
        }
        let last = batch.last().map_or(from, |e| e.position);
        let write = async {
            let mut columns = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for (key, (created, doc)) in &touched {
                let Some(doc) = doc else { continue };
                let (c, p) = to_columns(*created)?;
                columns.0.push(key.as_str());
                columns.1.push(c);
                columns.2.push(p);
                columns.3.push(serde_json::to_value(doc)?);
            }
            let ((fc, fp), (tc, tp)) = (to_columns(from)?, to_columns(last)?);
            let text =
                fill(include_str!("sql/apply.sql"), &target.schema).replace("{advance}", advance);
            let statement = client.prepare_cached(&text).await?;
            let name = self.name();
            let params: [&(dyn tokio_postgres::types::ToSql + Sync); 10] = [
                &name,
                &target.version,
                &fc,
                &fp,
                &tc,
                &tp,
                &columns.0,
                &columns.1,
                &columns.2,
                &columns.3,
            ];
            let moved: i64 = client.query_one(&statement, &params).await?.try_get(0)?;
            Ok::<_, BoxError>(moved > 0)
        };
        match write.await {
            Ok(true) => {}
            Ok(false) => return Err(ApplyError::Fenced { expected: from }),
            Err(e) => return Err(self.failure(from, target.version, e).await),
        }
        // Committed: the kept documents not touched are unchanged, the touched ones are
        // as written.
        let fresh = touched
            .into_iter()
            .filter_map(|(key, (created, doc))| Some((key, (created, doc?))));
        let fresh: Vec<_> = fresh.collect();
        if kept.len() + fresh.len() > KEPT_DOCS {
            kept.clear();
        }
        if fresh.len() <= KEPT_DOCS {
            kept.extend(fresh);
        }
        self.keep(Kept {
            schema: target.schema,
            at: last,
            docs: kept,
        });
        Ok(())
    }
}
