//! What a view's runner drives, on either backend.

use tessera_core::{BoxError, EventFilter, Position, RecordedEvent};

#[cfg(feature = "postgres")]
use super::live::PgLive;
use super::{MemView, View};
use crate::{ApplyError, MemoryProjection, Subscriber};

/// The [`Subscriber`] of a [`ViewStore`](super::ViewStore), from
/// [`ViewStore::subscriber`](super::ViewStore::subscriber): for a runner built by hand
/// (under [`leader`](crate::leader) election, say). In PostgreSQL it writes each batch
/// in one statement and keeps the documents its last batch wrote; build one per runner.
pub struct ViewSubscriber<V: View>(Inner<V>);

enum Inner<V: View> {
    Memory(MemoryProjection<MemView<V>>),
    #[cfg(feature = "postgres")]
    Pg(Box<PgLive<V>>),
}

impl<V: View> ViewSubscriber<V> {
    pub(super) fn memory(projection: MemoryProjection<MemView<V>>) -> Self {
        Self(Inner::Memory(projection))
    }

    #[cfg(feature = "postgres")]
    pub(super) fn pg(live: PgLive<V>) -> Self {
        Self(Inner::Pg(Box::new(live)))
    }
}

impl<V: View> Subscriber for ViewSubscriber<V> {
    fn name(&self) -> &str {
        match &self.0 {
            Inner::Memory(m) => Subscriber::name(m),
            #[cfg(feature = "postgres")]
            Inner::Pg(p) => p.name(),
        }
    }

    fn filter(&self) -> EventFilter {
        V::filter()
    }

    async fn checkpoint(&self) -> Result<Position, BoxError> {
        match &self.0 {
            Inner::Memory(m) => m.checkpoint().await,
            #[cfg(feature = "postgres")]
            Inner::Pg(p) => p.checkpoint().await,
        }
    }

    async fn apply(&self, from: Position, batch: &[RecordedEvent]) -> Result<(), ApplyError> {
        match &self.0 {
            Inner::Memory(m) => m.apply(from, batch).await,
            #[cfg(feature = "postgres")]
            Inner::Pg(p) => p.apply(from, batch).await,
        }
    }
}
