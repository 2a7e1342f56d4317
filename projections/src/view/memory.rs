//! A view held in memory.

use std::collections::{BTreeSet, HashMap};
use std::marker::PhantomData;
use std::ops::Bound;

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

/// The documents of a memory view, by key and in the order they were created (so a
/// page reads from its cursor on, not every document).
pub struct Docs<D> {
    by_key: HashMap<String, (Position, D)>,
    by_created: BTreeSet<(Position, String)>,
}

impl<D> Default for Docs<D> {
    fn default() -> Self {
        Self {
            by_key: HashMap::new(),
            by_created: BTreeSet::new(),
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
        // From the cursor on, in creation order, until one past the page.
        let mut hits: Vec<(Position, &D)> = Vec::new();
        let from = (Bound::Excluded((after, String::new())), Bound::Unbounded);
        for (p, key) in self.by_created.range::<(Position, String), _>(from) {
            if *p <= after {
                continue; // (after, "") sorts before every key created at `after`
            }
            let Some((_, d)) = self.by_key.get(key) else {
                continue;
            };
            if matches(d, want) {
                hits.push((*p, d));
                if hits.len() > limit {
                    break;
                }
            }
        }
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
        if created == event.position {
            model.by_created.insert((created, key.clone()));
        }
        model.by_key.insert(key, (created, doc));
        Ok(())
    }
}
