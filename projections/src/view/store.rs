//! A view's documents, wherever they are kept, with its runner and rebuild.

#[cfg(feature = "postgres")]
use deadpool_postgres::Pool;
use tessera_core::{BoxError, EventReader, Position};

use super::{memory::MemView, wanted, Filters, Page, View, ViewSubscriber};
#[cfg(feature = "postgres")]
use super::{postgres, PgView};
use crate::{MemoryProjection, Progress, Runner, RunnerConfig, RunnerHandle, Subscriber};
#[cfg(feature = "postgres")]
use crate::{PgError, PgProjection};

/// A read model could not be queried.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// A list filtered on a field the view does not declare in
    /// [`View::FILTERABLE`].
    #[error("read model {view} cannot filter on {field:?}")]
    UnknownField {
        /// The view.
        view: String,
        /// The field asked for.
        field: String,
    },
    /// The backend failed (database down, a rebuild switching too often, a document
    /// that does not decode).
    #[error("read model {name} unavailable: {source}")]
    Unavailable {
        /// The view.
        name: String,
        /// Why.
        #[source]
        source: BoxError,
    },
}

/// A view kept in memory or in PostgreSQL.
#[non_exhaustive]
pub enum ViewStore<V: View> {
    /// In process memory (the embedded mode).
    Memory(MemoryProjection<MemView<V>>),
    /// In PostgreSQL, one schema per version.
    #[cfg(feature = "postgres")]
    Pg(PgProjection<PgView<V>>, Pool),
}

impl<V: View> Clone for ViewStore<V> {
    fn clone(&self) -> Self {
        match self {
            ViewStore::Memory(m) => ViewStore::Memory(m.clone()),
            #[cfg(feature = "postgres")]
            ViewStore::Pg(p, pool) => ViewStore::Pg(p.clone(), pool.clone()),
        }
    }
}

/// How many times a query re-resolves the active schema when a rebuild switched it
/// (and dropped the old one) between resolving and reading.
#[cfg(feature = "postgres")]
const SWITCH_RETRIES: usize = 3;

impl<V: View> ViewStore<V> {
    /// An empty view in memory.
    pub fn memory(prefix: &str) -> Self {
        ViewStore::Memory(MemoryProjection::new(MemView::new(prefix)))
    }

    /// The view in PostgreSQL (created if missing), control tables in `control`.
    #[cfg(feature = "postgres")]
    pub async fn postgres(pool: Pool, prefix: &str, control: &str) -> Result<Self, PgError> {
        let projection =
            PgProjection::with_control_schema(pool.clone(), PgView::new(prefix), control).await?;
        Ok(ViewStore::Pg(projection, pool))
    }

    /// The view's name (with its prefix).
    pub fn name(&self) -> String {
        match self {
            ViewStore::Memory(m) => m.name().to_owned(),
            #[cfg(feature = "postgres")]
            ViewStore::Pg(p, _) => p.name().to_owned(),
        }
    }

    /// The events the view reads.
    pub fn filter(&self) -> tessera_core::EventFilter {
        V::filter()
    }

    #[cfg(feature = "postgres")]
    fn fail(&self, source: impl Into<BoxError>) -> QueryError {
        QueryError::Unavailable {
            name: self.name(),
            source: source.into(),
        }
    }

    /// The document under `key`.
    pub async fn get(&self, key: &str) -> Result<Option<V::Doc>, QueryError> {
        match self {
            ViewStore::Memory(m) => Ok(m.read(|docs| docs.get(key))),
            #[cfg(feature = "postgres")]
            ViewStore::Pg(p, pool) => {
                let mut tries = 0;
                loop {
                    let result = async {
                        let client = pool.get().await?;
                        // The version last seen active, checked in the read's own
                        // statement: one round trip while it stays active.
                        if let Some((version, schema)) = p.seen_active() {
                            let (control, name) = p.control_of();
                            let (active, doc) =
                                postgres::get_checked(&client, (&schema, &control, name), key)
                                    .await?;
                            if active == Some(version) {
                                return Ok(doc);
                            }
                            p.forget_active();
                        }
                        let (_, schema) = p.read_active(&client).await?;
                        postgres::get(&client, &schema, key).await
                    }
                    .await;
                    match result {
                        Err(e) if switched(&e) && tries < SWITCH_RETRIES => {
                            p.forget_active();
                            tries += 1;
                        }
                        other => return other.map_err(|e| self.fail(e)),
                    }
                }
            }
        }
    }

    /// A page of documents passing `filters`, oldest first, after the cursor `after`.
    /// A filter on a field outside [`View::FILTERABLE`] is [`QueryError::UnknownField`].
    pub async fn list(
        &self,
        filters: &Filters,
        after: Option<Position>,
        limit: usize,
    ) -> Result<Page<V::Doc>, QueryError> {
        let Some(want) = wanted::<V>(filters)? else {
            return Ok(Page {
                items: Vec::new(),
                next: None,
            });
        };
        match self {
            ViewStore::Memory(m) => Ok(m.read(|docs| docs.list(&want, after, limit))),
            #[cfg(feature = "postgres")]
            ViewStore::Pg(p, pool) => {
                let mut tries = 0;
                loop {
                    let result = async {
                        let schema = p.active_schema().await?;
                        let client = pool.get().await?;
                        postgres::list(&client, &schema, want.clone(), after, limit).await
                    }
                    .await;
                    match result {
                        Err(e) if switched(&e) && tries < SWITCH_RETRIES => tries += 1,
                        other => return other.map_err(|e| self.fail(e)),
                    }
                }
            }
        }
    }

    /// The checkpoint of the active version.
    pub async fn checkpoint(&self) -> Result<Position, BoxError> {
        match self {
            ViewStore::Memory(m) => m.checkpoint().await,
            #[cfg(feature = "postgres")]
            ViewStore::Pg(p, _) => p.checkpoint().await,
        }
    }

    /// The subscriber a runner of this view drives (one per runner). In PostgreSQL each
    /// batch is one statement, the checkpoint's compare-and-set and the documents' writes
    /// together, reading only the documents the subscriber's last batch did not leave it
    /// (see `view/live.rs` for why that is sound).
    pub fn subscriber(&self) -> ViewSubscriber<V> {
        match self {
            ViewStore::Memory(m) => ViewSubscriber::memory(m.clone()),
            #[cfg(feature = "postgres")]
            ViewStore::Pg(p, _) => ViewSubscriber::pg(super::live::PgLive::new(p.clone())),
        }
    }

    /// Starts the view's runner on `store`, driving a fresh [`Self::subscriber`].
    pub fn spawn<S: EventReader>(&self, store: S, config: RunnerConfig) -> RunnerHandle<S> {
        Runner::new(store, self.subscriber(), config).spawn()
    }

    /// Rebuilds the view from `store` without downtime; returns the events applied.
    pub async fn rebuild<S: EventReader>(
        &self,
        store: &S,
        progress: impl FnMut(&Progress) + Send,
    ) -> Result<u64, BoxError> {
        match self {
            ViewStore::Memory(m) => m.rebuild(store, 500, progress).await,
            #[cfg(feature = "postgres")]
            ViewStore::Pg(p, _) => Ok(p.rebuild(store, 500, progress).await?.events),
        }
    }
}

/// Whether `e` says the schema or table went away (a rebuild switched versions).
#[cfg(feature = "postgres")]
pub(super) fn switched(e: &BoxError) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e.as_ref());
    while let Some(err) = source {
        if let Some(db) = err.downcast_ref::<tokio_postgres::Error>() {
            use tokio_postgres::error::SqlState;
            return matches!(
                db.code(),
                Some(c) if *c == SqlState::UNDEFINED_TABLE || *c == SqlState::INVALID_SCHEMA_NAME
            );
        }
        source = err.source();
    }
    false
}
