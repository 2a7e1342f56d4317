//! What a caller says about one command besides the command itself.

use crate::{Fingerprint, Metadata};

/// Options of one command.
///
/// With an idempotency key, a retry of the command lands once and answers the first
/// run's outcome (`replayed` set). With a [`Fingerprint`] of the request as well, a run of
/// the key for another request is refused with
/// [`CommandError::KeyReused`](crate::CommandError::KeyReused), which carries the first
/// run's outcome:
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// # use serde::{Deserialize, Serialize};
/// # use tessera_core::{Aggregate, DomainEvent};
/// # #[derive(Default, Serialize, Deserialize)] struct Counter { value: u64 }
/// # #[derive(Debug, PartialEq, Serialize, Deserialize)] enum Ev { Incremented { by: u64 } }
/// # impl DomainEvent for Ev {}
/// # #[derive(Debug, thiserror::Error)] #[error("overflow")] struct Overflow;
/// # impl Aggregate for Counter {
/// #     const CATEGORY: &'static str = "counter";
/// #     type Command = u64; type Event = Ev; type Error = Overflow; type Services = ();
/// #     fn apply(&mut self, e: &Ev) { let Ev::Incremented { by } = e; self.value += by; }
/// #     fn decide(&self, by: &u64, _: &()) -> Result<Vec<Ev>, Overflow> { Ok(vec![Ev::Incremented { by: *by }]) }
/// # }
/// use tessera_core::{CommandError, CommandHandler, CommandOptions, Fingerprint, MemoryStore};
///
/// let handler = CommandHandler::<Counter, _>::new(MemoryStore::new(), ());
/// let request = |by: u64| CommandOptions::idempotent("req-1")
///     .with_fingerprint(Fingerprint::of(&serde_json::json!({ "by": by })).unwrap());
/// let first = handler.handle_with("c1", &2, request(2)).await.unwrap();
/// let again = handler.handle_with("c1", &2, request(2)).await.unwrap();
/// assert!(!first.replayed && again.replayed);
/// assert_eq!((again.version, again.position), (first.version, first.position));
/// match handler.handle_with("c1", &3, request(3)).await {
///     Err(CommandError::KeyReused { first: earlier }) => assert_eq!(earlier.position, first.position),
///     other => panic!("{other:?}"),
/// }
/// assert_eq!(handler.load("c1").await.unwrap().state.value, 2);
/// # });
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommandOptions {
    /// When set, the command's events get ids derived from it, so a retry of the same
    /// command (same key, same aggregate) lands once and returns the first outcome.
    pub idempotency_key: Option<String>,
    /// The request behind a keyed command (ignored without a key). The first event
    /// records it (header [`FINGERPRINT_HEADER`](crate::idempotency::FINGERPRINT_HEADER));
    /// a later run of the key with another fingerprint fails with
    /// [`CommandError::KeyReused`](crate::CommandError::KeyReused). A run without one, or
    /// a first run that recorded none, cannot be told apart and replays.
    ///
    /// Two runs of one key that load the same version and append at the same instant
    /// are told apart by the store only through their event ids, which the key alone
    /// derives: the later one is then answered as a repeat of the earlier, whatever its
    /// fingerprint. Once the first run has landed, every later run is compared.
    pub fingerprint: Option<Fingerprint>,
    /// Metadata put on every event the command records.
    pub metadata: Metadata,
}

impl CommandOptions {
    /// Options with an idempotency key.
    pub fn idempotent(key: impl Into<String>) -> Self {
        Self {
            idempotency_key: Some(key.into()),
            ..Self::default()
        }
    }

    /// Sets the fingerprint of the request.
    #[must_use]
    pub fn with_fingerprint(mut self, fingerprint: Fingerprint) -> Self {
        self.fingerprint = Some(fingerprint);
        self
    }

    /// Sets the metadata.
    #[must_use]
    pub fn with_metadata(mut self, metadata: Metadata) -> Self {
        self.metadata = metadata;
        self
    }
}
