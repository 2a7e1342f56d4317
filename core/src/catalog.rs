//! Browsing a store page by page: its streams, for an operator's console (the categories
//! and correlation searches are [`EventReader`](crate::EventReader) methods that need no
//! type of their own).

use crate::{StreamId, Version};

/// A page of the store's streams, for [`EventReader::streams`](crate::EventReader::streams):
/// every stream, or one category's, in byte order of their ids, strictly after
/// `after`, at most `limit`.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use tessera_core::{EventAppender, EventReader, ExpectedVersion, ListStreams, MemoryStore, NewEvent, StreamId};
/// let store = MemoryStore::new();
/// for id in ["order-2", "order-1", "user-1"] {
///     let e = NewEvent::json("Created", &serde_json::json!({})).unwrap();
///     store.append(&StreamId::new(id).unwrap(), ExpectedVersion::NoStream, vec![e]).await.unwrap();
/// }
/// // Page through the orders, one stream at a time.
/// let mut list = ListStreams::all(1).category("order");
/// let mut seen = Vec::new();
/// while let Some(page) = store.streams(list.clone()).await.unwrap() {
///     let Some(last) = page.last() else { break };
///     list = list.after(last.stream_id.clone());
///     seen.extend(page.into_iter().map(|s| s.stream_id.to_string()));
/// }
/// assert_eq!(seen, ["order-1", "order-2"]);
/// # });
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListStreams {
    /// Only the streams of this category (the part of the id before the first `-`, as
    /// [`StreamId::category`] says); `None`: every stream.
    pub category: Option<String>,
    /// Only the streams whose id is greater than this one in byte order (the last id of
    /// the previous page); `None`: from the first.
    pub after: Option<StreamId>,
    /// The most streams to return (at least 1).
    pub limit: usize,
}

impl ListStreams {
    /// The first `limit` streams of the store.
    pub fn all(limit: usize) -> Self {
        Self {
            category: None,
            after: None,
            limit,
        }
    }

    /// Keeps only the streams of `category`.
    #[must_use]
    pub fn category(mut self, category: impl Into<String>) -> Self {
        self.category = Some(category.into());
        self
    }

    /// Starts strictly after `stream` (in byte order of the ids).
    #[must_use]
    pub fn after(mut self, stream: StreamId) -> Self {
        self.after = Some(stream);
        self
    }

    /// Whether `stream` belongs in this listing (its category, and after `after`), the
    /// limit aside.
    ///
    /// ```
    /// use tessera_core::{ListStreams, StreamId};
    /// let id = |s: &str| StreamId::new(s).unwrap();
    /// let list = ListStreams::all(10).category("order").after(id("order-1"));
    /// assert!(list.matches(&id("order-2")));
    /// assert!(!list.matches(&id("order-1")));
    /// assert!(!list.matches(&id("orders-2")));
    /// ```
    pub fn matches(&self, stream: &StreamId) -> bool {
        self.category
            .as_deref()
            .is_none_or(|c| stream.category() == c)
            && self.after.as_ref().is_none_or(|after| stream > after)
    }
}

/// One stream of a [`ListStreams`] page: its id and current version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamInfo {
    /// The stream.
    pub stream_id: StreamId,
    /// The version of its newest event (versions start at 0).
    pub version: Version,
}
