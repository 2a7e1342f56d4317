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
//!
//! While the kept documents are current, and the runner's last read of documents it had
//! not kept found none of them stored (the view's events mostly start new documents, as
//! every order does in the shop's), a key the batch touches that is not kept is presumed
//! new and not read: its document is inserted without `ON CONFLICT`, so if one was
//! stored after all (it was kept once and let go, or written before this runner
//! started) the statement fails on the documents' primary key, nothing of it commits,
//! and the batch is folded again from documents read from the table. After such a miss
//! the runner reads for [`DISTRUST_BATCHES`] batches, and presumes again only once a
//! read finds nothing stored: a view whose events only ever update old documents never
//! presumes after its first miss, and pays the read it always paid, not a failed
//! statement as well (one mixing new and old documents may miss once per such cycle).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use metrics::Key;
use tessera_core::{telemetry, BoxError, EventFilter, Position, RecordedEvent};

use super::{PgView, View};
use crate::sql::{fill, to_columns};
use crate::{ApplyError, PgProjection, Subscriber};

/// About this many documents are kept between batches, in two generations: the
/// documents of the latest batches, and those of the batches before them.
const KEPT_DOCS: usize = 4096;

/// Batches after a wrong presumption during which missing documents are read.
pub(super) const DISTRUST_BATCHES: u32 = 64;

/// The documents as stored once the checkpoint of `schema` stands at `at`: each with
/// the position that created it.
struct Kept<D> {
    schema: String,
    at: Position,
    docs: Generations<D>,
}

/// Kept documents, the newer generation first; when it fills, it becomes the older and
/// the older is let go.
struct Generations<D> {
    young: HashMap<String, (Position, D)>,
    old: HashMap<String, (Position, D)>,
}

impl<D> Default for Generations<D> {
    fn default() -> Self {
        Self {
            young: HashMap::new(),
            old: HashMap::new(),
        }
    }
}

impl<D> Generations<D> {
    fn take(&mut self, key: &str) -> Option<(Position, D)> {
        self.young.remove(key).or_else(|| self.old.remove(key))
    }

    fn put(&mut self, key: String, doc: (Position, D)) {
        self.young.insert(key, doc);
        if self.young.len() >= KEPT_DOCS / 2 {
            self.old = std::mem::take(&mut self.young);
        }
    }
}

/// A document a batch touches, as the batch starts it.
struct Touched<D> {
    /// The position that created it (the batch's first event on it, if new).
    created: Position,
    doc: Option<D>,
    /// Not read: presumed new, inserted without `ON CONFLICT`.
    presumed: bool,
}

/// How a committed batch came by its documents, and how often a presumption was
/// refused: `tessera_view_documents_total` (`view`, `source` = `kept`, `read` or
/// `presumed`) and `tessera_view_presumptions_refused_total` (`view`).
struct DocMetrics {
    kept: Key,
    read: Key,
    presumed: Key,
    refused: Key,
}

impl DocMetrics {
    fn new(view: &str) -> Self {
        let docs = |source| {
            telemetry::key(
                "tessera_view_documents_total",
                &[("view", view), ("source", source)],
            )
        };
        Self {
            kept: docs("kept"),
            read: docs("read"),
            presumed: docs("presumed"),
            refused: telemetry::key("tessera_view_presumptions_refused_total", &[("view", view)]),
        }
    }
}

/// Where a batch's documents came from: kept, read (found or not), presumed new.
#[derive(Default)]
struct Sources {
    kept: u64,
    read: u64,
    presumed: u64,
}

/// The live runner's subscriber of a view in PostgreSQL.
pub(super) struct PgLive<V: View> {
    projection: PgProjection<PgView<V>>,
    kept: Mutex<Option<Kept<V::Doc>>>,
    /// Batches left during which nothing is presumed new.
    distrust: AtomicU32,
    /// The last read of documents not kept found none of them stored.
    reads_found_none: AtomicBool,
    /// The batch statement's text and the schema it was filled in for (built once
    /// per version, not per batch).
    statement: Mutex<Option<(String, Arc<str>)>>,
    metrics: DocMetrics,
}

impl<V: View> PgLive<V> {
    pub(super) fn new(projection: PgProjection<PgView<V>>) -> Self {
        Self {
            metrics: DocMetrics::new(Subscriber::name(&projection)),
            projection,
            kept: Mutex::new(None),
            distrust: AtomicU32::new(0),
            reads_found_none: AtomicBool::new(false),
            statement: Mutex::new(None),
        }
    }

    /// The documents kept, if they are the stored ones for a batch starting at `from`
    /// in `schema` (the kept set is taken either way: a batch that fails forgets it).
    fn take_kept(&self, schema: &str, from: Position) -> Option<Generations<V::Doc>> {
        let kept = self
            .kept
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        match kept {
            Some(k) if k.schema == schema && k.at == from => Some(k.docs),
            _ => None,
        }
    }

    fn keep(&self, kept: Kept<V::Doc>) {
        *self.kept.lock().unwrap_or_else(PoisonError::into_inner) = Some(kept);
    }

    /// Whether this batch may presume documents missing from current kept ones new
    /// (and counts a distrusted batch down).
    fn presume(&self) -> bool {
        let trusted = self
            .distrust
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_err();
        trusted && self.reads_found_none.load(Ordering::Relaxed)
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

    /// The documents `batch` touches as it starts them, with each event's key: from
    /// `kept`, read from `schema` through `client`, or presumed new (`presume`).
    async fn start(
        &self,
        client: &deadpool_postgres::Object,
        schema: &str,
        batch: &[RecordedEvent],
        (kept, presume): (&mut Generations<V::Doc>, bool),
    ) -> Result<Started<V::Doc>, BoxError> {
        let mut sources = Sources::default();
        let mut keys: Vec<Option<String>> = Vec::with_capacity(batch.len());
        let mut touched: HashMap<String, Touched<V::Doc>> = HashMap::new();
        let mut missing: Vec<String> = Vec::new();
        for event in batch {
            let key = V::key(event)?;
            if let Some(key) = key.as_ref().filter(|k| !touched.contains_key(*k)) {
                let entry = match kept.take(key) {
                    Some((created, doc)) => {
                        sources.kept += 1;
                        Touched {
                            created,
                            doc: Some(doc),
                            presumed: false,
                        }
                    }
                    None => {
                        if presume {
                            sources.presumed += 1;
                        } else {
                            missing.push(key.clone());
                        }
                        Touched {
                            created: event.position,
                            doc: None,
                            presumed: presume,
                        }
                    }
                };
                touched.insert(key.clone(), entry);
            }
            keys.push(key);
        }
        if !missing.is_empty() {
            sources.read = missing.len() as u64;
            let missing: Vec<&str> = missing.iter().map(String::as_str).collect();
            let stored = super::postgres::load(client, schema, &missing, self.name()).await?;
            self.reads_found_none
                .store(stored.is_empty(), Ordering::Relaxed);
            for (key, created, doc) in stored {
                let doc = Some(doc);
                let presumed = false;
                touched.insert(
                    key,
                    Touched {
                        created,
                        doc,
                        presumed,
                    },
                );
            }
        }
        Ok((keys, touched, sources))
    }

    /// `sql/apply.sql` filled in for `schema` with the compare-and-set `advance`.
    fn statement_text(&self, schema: &str, advance: &str) -> Arc<str> {
        let mut cached = self
            .statement
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match cached.as_ref() {
            Some((filled_for, text)) if filled_for == schema => Arc::clone(text),
            _ => {
                let text: Arc<str> = fill(include_str!("sql/apply.sql"), schema)
                    .replace("{advance}", advance)
                    .into();
                *cached = Some((schema.to_owned(), Arc::clone(&text)));
                text
            }
        }
    }

    /// Sends the batch's one statement: moves the checkpoint from `from` to `to` and
    /// writes `touched`; whether it moved.
    async fn write(
        &self,
        client: &deadpool_postgres::Object,
        (schema, version, advance): (&str, i32, &str),
        (from, to): (Position, Position),
        touched: &HashMap<String, Touched<V::Doc>>,
    ) -> Result<bool, BoxError> {
        // Known documents (upserted) and presumed new ones (inserted), as columns.
        type Columns<'a> = (Vec<&'a str>, Vec<i64>, Vec<i64>, Vec<serde_json::Value>);
        let mut columns: [Columns<'_>; 2] = Default::default();
        for (key, t) in touched {
            let Some(doc) = &t.doc else { continue };
            let (c, p) = to_columns(t.created)?;
            let set = &mut columns[usize::from(t.presumed)];
            set.0.push(key.as_str());
            set.1.push(c);
            set.2.push(p);
            set.3.push(serde_json::to_value(doc)?);
        }
        let ((fc, fp), (tc, tp)) = (to_columns(from)?, to_columns(to)?);
        let text = self.statement_text(schema, advance);
        let statement = client.prepare_cached(&text).await?;
        let name = self.name();
        let [known, new] = &columns;
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 14] = [
            &name, &version, &fc, &fp, &tc, &tp, &known.0, &known.1, &known.2, &known.3, &new.0,
            &new.1, &new.2, &new.3,
        ];
        let moved: i64 = client.query_one(&statement, &params).await?.try_get(0)?;
        Ok(moved > 0)
    }
}

/// A batch's documents as it starts them: each event's key, the documents, and where
/// they came from.
type Started<D> = (Vec<Option<String>>, HashMap<String, Touched<D>>, Sources);

/// Whether `e` is the documents' primary key refusing a document presumed new.
fn stored_after_all(e: &BoxError) -> bool {
    e.downcast_ref::<tokio_postgres::Error>()
        .and_then(tokio_postgres::Error::as_db_error)
        .is_some_and(|db| {
            *db.code() == tokio_postgres::error::SqlState::UNIQUE_VIOLATION
                && db.table() == Some("docs")
        })
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
        let kept = self.take_kept(&target.schema, from);
        let mut presume = kept.is_some() && self.presume();
        let mut kept = kept.unwrap_or_default();
        let last = batch.last().map_or(from, |e| e.position);
        let client = pool.get().await.map_err(|e| failed(e.into()))?;
        let (touched, sources) = loop {
            let started = self
                .start(&client, &target.schema, batch, (&mut kept, presume))
                .await;
            let (keys, mut touched, sources) = match started {
                Ok(started) => started,
                Err(e) => return Err(self.failure(from, target.version, e).await),
            };
            for (event, key) in batch.iter().zip(&keys) {
                let Some(key) = key else { continue };
                let entry = touched
                    .get_mut(key)
                    .ok_or("document vanished")
                    .map_err(|e| failed(e.into()))?;
                entry.doc = Some(V::apply(entry.doc.take(), event).map_err(failed)?);
            }
            let at = (&*target.schema, target.version, advance);
            match self.write(&client, at, (from, last), &touched).await {
                Ok(true) => break (touched, sources),
                Ok(false) => return Err(ApplyError::Fenced { expected: from }),
                // A document presumed new was stored: nothing committed; fold again
                // from the table, and presume nothing for a while.
                Err(e) if presume && stored_after_all(&e) => {
                    telemetry::increment(&self.metrics.refused, 1);
                    self.distrust.store(DISTRUST_BATCHES, Ordering::Relaxed);
                    self.reads_found_none.store(false, Ordering::Relaxed);
                    presume = false;
                    kept = Generations::default();
                }
                Err(e) => return Err(self.failure(from, target.version, e).await),
            }
        };
        let m = &self.metrics;
        telemetry::increment(&m.kept, sources.kept);
        telemetry::increment(&m.read, sources.read);
        telemetry::increment(&m.presumed, sources.presumed);
        // Committed: the kept documents not touched are unchanged, the touched ones are
        // as written.
        for (key, t) in touched {
            if let Some(doc) = t.doc {
                kept.put(key, (t.created, doc));
            }
        }
        self.keep(Kept {
            schema: target.schema,
            at: last,
            docs: kept,
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use tessera_core::Position;

    use super::{Generations, KEPT_DOCS};

    /// However many documents pass through, at most [`KEPT_DOCS`] stay kept, the
    /// latest ones among them; one taken is gone.
    #[test]
    fn kept_documents_stay_bounded_and_recent() {
        let mut kept = Generations::default();
        for n in 0..10 * KEPT_DOCS {
            kept.put(format!("doc-{n}"), (Position::new(1, 1), n));
            assert!(kept.young.len() + kept.old.len() <= KEPT_DOCS);
        }
        let last = 10 * KEPT_DOCS - 1;
        assert_eq!(kept.take(&format!("doc-{last}")).map(|d| d.1), Some(last));
        assert!(kept.take(&format!("doc-{last}")).is_none(), "taken once");
        let older = last + 1 - KEPT_DOCS / 2;
        assert_eq!(kept.take(&format!("doc-{older}")).map(|d| d.1), Some(older));
        assert!(kept.take("doc-0").is_none(), "the oldest were let go");
    }
}
