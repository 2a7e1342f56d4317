//! Read models as documents keyed by id, kept in memory or in PostgreSQL.
//!
//! Each read model is a [`View`]: pure logic that folds typed events into one JSON
//! document per key. The same view runs on a [`MemoryProjection`] (the default) or on a
//! [`PgProjection`] whose tables live in a schema per version (`{name}_v{n}`), so each
//! bounded context's read models sit in their own schemas. Both sides get
//! zero-downtime rebuilds from `tessera-projections`.

use serde::de::DeserializeOwned;
use serde::Serialize;
use tessera_core::{BoxError, EventFilter, Position, RecordedEvent};

mod memory;
mod postgres;
mod store;

pub use memory::MemView;
pub use postgres::PgView;
pub use store::{QueryError, ViewStore};

#[allow(unused_imports)] // named in the module docs
use tessera_projections::{MemoryProjection, PgProjection};

/// One read model: which events it reads and how they change its documents.
pub trait View: Send + Sync + 'static {
    /// One document.
    type Doc: Serialize + DeserializeOwned + Clone + Send + Sync + 'static;
    /// Stable name, `{context}_{model}` (also the PostgreSQL schema prefix).
    const NAME: &'static str;
    /// The events it reads.
    fn filter() -> EventFilter;
    /// The key of the document `event` changes, or `None` to ignore it.
    fn key(event: &RecordedEvent) -> Result<Option<String>, BoxError>;
    /// The document after `event` (`doc` is `None` before its first event).
    fn apply(doc: Option<Self::Doc>, event: &RecordedEvent) -> Result<Self::Doc, BoxError>;
}

/// A page of documents in the order they were created.
#[derive(Debug, Clone)]
pub struct Page<D> {
    /// The documents.
    pub items: Vec<D>,
    /// Where the next page starts (`None`: this was the last).
    pub next: Option<Position>,
}

/// Which documents a list wants: equality on top-level string fields.
pub type Filters = Vec<(&'static str, String)>;

/// Whether `doc` passes every filter.
pub fn matches<D: Serialize>(doc: &D, filters: &Filters) -> bool {
    if filters.is_empty() {
        return true;
    }
    let Ok(value) = serde_json::to_value(doc) else {
        return false;
    };
    filters
        .iter()
        .all(|(field, want)| value.get(field).and_then(|v| v.as_str()) == Some(want.as_str()))
}
