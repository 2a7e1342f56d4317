//! A view held in memory.

use std::collections::HashMap;
use std::marker::PhantomData;

use tessera_core::{BoxError, EventFilter, Position, RecordedEvent};

use super::{matches, Page, View};
use crate::MemoryHandler;

/// The [`MemoryHandler`] of a view: documents with the position that created them.
pub struct MemView<V> {
    name: String,
    view: PhantomData<fn() -> V>,
}

impl<V: View> MemView<V> {
    /// The handler of `V`, named with a prefix (empty in production).
    pub fn new(prefix: &str) -> Self {
        Self {
            name: format!("{prefix}{}", V::NAME),
            view: PhantomData,
        }
    }
}

/// The documents of a memory view.
pub struct Docs<D> {
    by_key: HashMap<String, (Position, D)>,
}

impl<D> Default for Docs<D> {
    fn default() -> Self {
        Self {
            by_key: HashMap::new(),
        }
    }
}

impl<D: serde::Serialize + Clone> Docs<D> {
    /// The document under `key`.
    pub fn get(&self, key: &str) -> Option<D> {
        self.by_key.get(key).map(|(_, d)| d.clone())
    }

    /// Up to `limit` documents holding the values of `want`, created after `after`,
    /// oldest first.
    pub(super) fn list(
        &self,
        want: &serde_json::Map<String, serde_json::Value>,
        after: Option<Position>,
        limit: usize,
    ) -> Page<D> {
        let after = after.unwrap_or(Position::START);
        let mut hits: Vec<(Position, &D)> = self
            .by_key
            .values()
            .filter(|(p, d)| *p > after && matches(d, want))
            .map(|(p, d)| (*p, d))
            .collect();
        hits.sort_by_key(|(p, _)| *p);
        let more = hits.len() > limit;
        hits.truncate(limit);
        let next = if more {
            hits.last().map(|(p, _)| *p)
        } else {
            None
        };
        Page {
            items: hits.into_iter().map(|(_, d)| d.clone()).collect(),
            next,
        }
    }

    /// Every document.
    pub fn all(&self) -> Vec<D> {
        self.by_key.values().map(|(_, d)| d.clone()).collect()
    }
}

impl<V: View> MemoryHandler for MemView<V> {
    type Model = Docs<V::Doc>;

    fn name(&self) -> &str {
        &self.name
    }

    fn filter(&self) -> EventFilter {
        V::filter()
    }

    fn handle(&self, model: &mut Docs<V::Doc>, event: &RecordedEvent) -> Result<(), BoxError> {
        let Some(key) = V::key(event)? else {
            return Ok(());
        };
        let (created, doc) = match model.by_key.get(&key) {
            Some((p, d)) => (*p, Some(d.clone())),
            None => (event.position, None),
        };
        // Decide first, change after: an error leaves the model as it was.
        let doc = V::apply(doc, event)?;
        model.by_key.insert(key, (created, doc));
        Ok(())
    }
}
