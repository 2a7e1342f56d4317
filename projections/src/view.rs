//! Document read models: one JSON document per key, kept in memory or in PostgreSQL.
//!
//! A read model is a [`View`]: pure logic that folds events into one document per key.
//! The same view runs on a [`MemoryProjection`](crate::MemoryProjection) (through
//! [`MemView`]) or on a [`PgProjection`](crate::PgProjection) (through `PgView`, feature
//! `postgres`) whose `docs` table lives in a schema per version (`{name}_v{n}`); a
//! [`ViewStore`] holds either, answers `get` and `list` (filters and cursors), runs the
//! view's runner and rebuilds it without downtime.
//!
//! The runner drives a [`ViewSubscriber`] ([`ViewStore::subscriber`], also for runners
//! built by hand, under [`leader`](crate::leader) election say). In PostgreSQL it does
//! not go through `PgProjection`'s transaction: each batch is one statement, the
//! checkpoint's compare-and-set and the documents' writes together, and it reads only
//! the documents its last batch did not leave it; a key it has not kept is presumed new
//! while its kept documents are current, and the table's primary key catches a wrong
//! presumption (the batch is then folded again from the stored document).
//!
//! ```
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! use serde::{Deserialize, Serialize};
//! use tessera_core::{BoxError, EventAppender, EventFilter, ExpectedVersion, MemoryStore, NewEvent, RecordedEvent, StreamId};
//! use tessera_projections::{RunnerConfig, View, ViewStore};
//!
//! #[derive(Clone, Serialize, Deserialize)]
//! struct Order { id: String, status: String, lines: u32 }
//!
//! struct Orders;
//! impl View for Orders {
//!     type Doc = Order;
//!     const NAME: &'static str = "orders";
//!     const FILTERABLE: &'static [&'static str] = &["status"];
//!     fn filter() -> EventFilter { EventFilter::category("order") }
//!     fn key(e: &RecordedEvent) -> Result<Option<String>, BoxError> {
//!         Ok(Some(e.stream_id.as_str().to_owned()))
//!     }
//!     fn apply(doc: Option<Order>, e: &RecordedEvent) -> Result<Order, BoxError> {
//!         let mut doc = doc.unwrap_or(Order { id: e.stream_id.as_str().into(), status: "open".into(), lines: 0 });
//!         match e.event_type.as_str() {
//!             "LineAdded" => doc.lines += 1,
//!             "Shipped" => doc.status = "shipped".into(),
//!             _ => {}
//!         }
//!         Ok(doc)
//!     }
//! }
//!
//! let store = MemoryStore::new();
//! let orders = ViewStore::<Orders>::memory("");
//! let runner = orders.spawn(store.clone(), RunnerConfig::default());
//! let stream = StreamId::new("order-1").unwrap();
//! let added = NewEvent::json("LineAdded", &serde_json::json!({})).unwrap();
//! let out = store.append(&stream, ExpectedVersion::NoStream, vec![added]).await.unwrap();
//! runner.wait_for(out.position, std::time::Duration::from_secs(5)).await.unwrap();
//!
//! assert_eq!(orders.get("order-1").await.unwrap().unwrap().lines, 1);
//! let open = vec![("status", "open".to_owned())];
//! assert_eq!(orders.list(&open, None, 10).await.unwrap().items.len(), 1);
//! // Only the fields the view declares can be filtered on: a typed error, not a panic.
//! assert!(orders.list(&vec![("lines", "1".to_owned())], None, 10).await.is_err());
//! # });
//! ```

use serde::de::DeserializeOwned;
use serde::Serialize;
use tessera_core::{BoxError, EventFilter, Position, RecordedEvent};

#[cfg(feature = "postgres")]
mod live;
mod memory;
#[cfg(feature = "postgres")]
mod postgres;
mod store;
mod subscriber;

pub use memory::{Docs, MemView};
#[cfg(feature = "postgres")]
pub use postgres::PgView;
pub use store::{QueryError, ViewStore};
pub use subscriber::ViewSubscriber;

/// One read model: which events it reads and how they change its documents.
pub trait View: Send + Sync + 'static {
    /// One document.
    type Doc: Serialize + DeserializeOwned + Clone + Send + Sync + 'static;
    /// Stable name, for example `{context}_{model}` (also the PostgreSQL schema prefix,
    /// so lower-case letters, digits and `_`).
    const NAME: &'static str;
    /// The top-level string fields of [`Self::Doc`] a list may filter on. A filter on any
    /// other field is refused with [`QueryError::UnknownField`].
    const FILTERABLE: &'static [&'static str] = &[];
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

/// Which documents a list wants: each top-level string field named must equal its value.
/// Field names come from [`View::FILTERABLE`]; values are bound, never put in SQL.
pub type Filters = Vec<(&'static str, String)>;

/// `filters` as one JSON object of the values the fields must equal, once each field is
/// checked against `V::FILTERABLE`; `None` when two filters want one field to hold two
/// values (nothing can match).
fn wanted<V: View>(
    filters: &Filters,
) -> Result<Option<serde_json::Map<String, serde_json::Value>>, QueryError> {
    let mut want = serde_json::Map::new();
    for (field, value) in filters {
        if !V::FILTERABLE.contains(field) {
            return Err(QueryError::UnknownField {
                view: V::NAME.to_owned(),
                field: (*field).to_owned(),
            });
        }
        let value = serde_json::Value::String(value.clone());
        match want.get(*field) {
            Some(other) if *other != value => return Ok(None),
            _ => {
                want.insert((*field).to_owned(), value);
            }
        }
    }
    Ok(Some(want))
}

/// Whether `doc` holds every value of `want` in its top-level fields.
fn matches<D: Serialize>(doc: &D, want: &serde_json::Map<String, serde_json::Value>) -> bool {
    if want.is_empty() {
        return true;
    }
    let Ok(value) = serde_json::to_value(doc) else {
        return false;
    };
    want.iter().all(|(field, v)| value.get(field) == Some(v))
}
