//! Checkpoints: where each reader of the log stands, moved only by compare-and-set.
//!
//! Every checkpointed reader (projection, process manager, reactor, relay) keeps its
//! position in the same shape and moves it the same way: from the position it read to
//! the position of the last event it applied, refused ([`ApplyError::Fenced`]) when the
//! stored checkpoint is not where the reader expected, so a second runner of the same
//! reader never applies a batch twice.
//!
//! - [`CheckpointStore`] is the contract for readers whose effects are not written with
//!   the checkpoint (a reactor's commands carry idempotency keys instead):
//!   [`MemoryCheckpoints`], [`PgCheckpoints`] (feature `postgres`), and [`Checkpoints`],
//!   either one chosen at run time.
//! - Readers whose effects are data ([`MemoryProjection`](crate::MemoryProjection),
//!   [`process::MemoryProcess`](crate::process::MemoryProcess)) keep the checkpoint
//!   under the lock of that data; their PostgreSQL counterparts move a [`PgCheckpoints`]
//!   row inside the transaction that writes their data. All of them compare with the one
//!   rule below.
//!
//! In PostgreSQL every checkpoint is a row of one table shape,
//! `{schema}.checkpoints (name, commit_pos, prepare_pos, updated_at)`, whichever reader
//! owns it.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use tessera_core::Position;
//! use tessera_projections::{CheckpointStore, MemoryCheckpoints};
//!
//! let checkpoints = MemoryCheckpoints::new();
//! let to = Position::new(7, 7);
//! assert!(checkpoints.advance("mailer", Position::START, to).await.unwrap());
//! // A second runner that read the old checkpoint is refused.
//! assert!(!checkpoints.advance("mailer", Position::START, Position::new(9, 9)).await.unwrap());
//! assert_eq!(checkpoints.load("mailer").await.unwrap(), to);
//! # });
//! ```

use std::future::Future;

use tessera_core::{BoxError, Position};

use crate::ApplyError;

mod memory;
#[cfg(feature = "postgres")]
mod postgres;

pub use memory::MemoryCheckpoints;
#[cfg(feature = "postgres")]
pub use postgres::PgCheckpoints;

/// Where checkpoints are kept: load one, move one by compare-and-set.
pub trait CheckpointStore: Clone + Send + Sync + 'static {
    /// The checkpoint of `name` ([`Position::START`] when it has none).
    fn load(&self, name: &str) -> impl Future<Output = Result<Position, BoxError>> + Send;

    /// Moves `name` from `from` to `to`; `false` (and nothing changed) when it was not
    /// at `from`. A reader with no checkpoint yet is at [`Position::START`].
    fn advance(
        &self,
        name: &str,
        from: Position,
        to: Position,
    ) -> impl Future<Output = Result<bool, BoxError>> + Send;

    /// [`load`](Self::load) of each of `names`, in their order. The default loads them
    /// one by one; a store with a round trip per call answers in one.
    fn load_all(
        &self,
        names: &[String],
    ) -> impl Future<Output = Result<Vec<Position>, BoxError>> + Send {
        async move {
            let mut positions = Vec::with_capacity(names.len());
            for name in names {
                positions.push(self.load(name).await?);
            }
            Ok(positions)
        }
    }

    /// [`advance`](Self::advance) of each `(name, from, to)` of `moves` (distinct
    /// names), in their order: whether each moved. Not atomic as a whole: each move is
    /// its own compare-and-set. The default moves them one by one; a store with a round
    /// trip per call moves them in one.
    fn advance_all(
        &self,
        moves: &[(String, Position, Position)],
    ) -> impl Future<Output = Result<Vec<bool>, BoxError>> + Send {
        async move {
            let mut moved = Vec::with_capacity(moves.len());
            for (name, from, to) in moves {
                moved.push(self.advance(name, *from, *to).await?);
            }
            Ok(moved)
        }
    }
}

/// Checkpoints in memory or in PostgreSQL, chosen at run time.
#[derive(Clone)]
#[non_exhaustive]
pub enum Checkpoints {
    /// In process memory: lost on exit, like the memory store.
    Memory(MemoryCheckpoints),
    /// In a PostgreSQL schema's `checkpoints` table.
    #[cfg(feature = "postgres")]
    Postgres(PgCheckpoints),
}

impl CheckpointStore for Checkpoints {
    async fn load(&self, name: &str) -> Result<Position, BoxError> {
        match self {
            Checkpoints::Memory(m) => m.load(name).await,
            #[cfg(feature = "postgres")]
            Checkpoints::Postgres(p) => p.load(name).await,
        }
    }

    async fn advance(&self, name: &str, from: Position, to: Position) -> Result<bool, BoxError> {
        match self {
            Checkpoints::Memory(m) => m.advance(name, from, to).await,
            #[cfg(feature = "postgres")]
            Checkpoints::Postgres(p) => p.advance(name, from, to).await,
        }
    }

    async fn load_all(&self, names: &[String]) -> Result<Vec<Position>, BoxError> {
        match self {
            Checkpoints::Memory(m) => m.load_all(names).await,
            #[cfg(feature = "postgres")]
            Checkpoints::Postgres(p) => p.load_all(names).await,
        }
    }

    async fn advance_all(
        &self,
        moves: &[(String, Position, Position)],
    ) -> Result<Vec<bool>, BoxError> {
        match self {
            Checkpoints::Memory(m) => m.advance_all(moves).await,
            #[cfg(feature = "postgres")]
            Checkpoints::Postgres(p) => p.advance_all(moves).await,
        }
    }
}

impl From<MemoryCheckpoints> for Checkpoints {
    fn from(m: MemoryCheckpoints) -> Self {
        Checkpoints::Memory(m)
    }
}

#[cfg(feature = "postgres")]
impl From<PgCheckpoints> for Checkpoints {
    fn from(p: PgCheckpoints) -> Self {
        Checkpoints::Postgres(p)
    }
}

/// The one comparison every reader makes before it applies a batch read from `from`:
/// the stored checkpoint must still be there, else another runner moved it.
pub(crate) fn expect_at(stored: Position, from: Position) -> Result<(), ApplyError> {
    if stored == from {
        Ok(())
    } else {
        Err(ApplyError::Fenced { expected: from })
    }
}
