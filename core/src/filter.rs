//! Filters on the global log.

use crate::{category_of, RecordedEvent};

/// Which events of the global log a reader wants. Empty lists mean "any".
///
/// ```
/// use tessera_core::EventFilter;
/// let f = EventFilter::category("order").with_types(["OrderPlaced"]);
/// assert!(f.matches_parts("order-1", "OrderPlaced"));
/// assert!(!f.matches_parts("payment-1", "OrderPlaced"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct EventFilter {
    /// Stream categories to keep (empty: all).
    pub categories: Vec<String>,
    /// Event types to keep (empty: all).
    pub event_types: Vec<String>,
}

impl EventFilter {
    /// Every event.
    pub fn all() -> Self {
        Self::default()
    }

    /// Events of streams in one category.
    pub fn category(category: impl Into<String>) -> Self {
        Self {
            categories: vec![category.into()],
            event_types: Vec::new(),
        }
    }

    /// Events of streams in any of these categories.
    pub fn categories<I: IntoIterator<Item = S>, S: Into<String>>(categories: I) -> Self {
        Self {
            categories: categories.into_iter().map(Into::into).collect(),
            event_types: Vec::new(),
        }
    }

    /// Also requires one of these event types.
    #[must_use]
    pub fn with_types<I: IntoIterator<Item = S>, S: Into<String>>(mut self, types: I) -> Self {
        self.event_types = types.into_iter().map(Into::into).collect();
        self
    }

    /// Whether this filter keeps everything.
    pub fn is_all(&self) -> bool {
        self.categories.is_empty() && self.event_types.is_empty()
    }

    /// Whether an event of `stream` with type `event_type` passes.
    pub fn matches_parts(&self, stream: &str, event_type: &str) -> bool {
        (self.categories.is_empty() || self.categories.iter().any(|c| c == category_of(stream)))
            && (self.event_types.is_empty() || self.event_types.iter().any(|t| t == event_type))
    }

    /// Whether `event` passes.
    pub fn matches(&self, event: &RecordedEvent) -> bool {
        self.matches_parts(event.stream_id.as_str(), &event.event_type)
    }
}
