//! What goes wrong on the PostgreSQL read side.

use tessera_core::Position;

/// What went wrong with a PostgreSQL read model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PgError {
    /// A projection or schema name that is not a plain identifier (see
    /// [`SchemaName`](tessera_postgres::SchemaName): the one check every name on the
    /// read side goes through).
    #[error(transparent)]
    InvalidName(#[from] tessera_postgres::InvalidSchemaName),
    /// No connection could be had.
    #[error("no database connection: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    /// A statement failed.
    #[error("database error: {0}")]
    Db(#[from] tokio_postgres::Error),
    /// A stored position does not fit the types (corrupt control table).
    #[error("corrupt checkpoint for {name}: {reason}")]
    Corrupt {
        /// The projection.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// The handler's `setup` failed.
    #[error("setting up {name} v{version}: {error}")]
    Setup {
        /// The projection.
        name: String,
        /// The version.
        version: i32,
        /// The handler's error.
        error: tessera_core::BoxError,
    },
    /// Reading the event store failed during a rebuild.
    #[error("reading the event store: {0}")]
    Store(#[from] tessera_core::StoreError),
    /// Another rebuild of the same projection holds the rebuild lock (in this process or
    /// another); this one waited [`REBUILD_LOCK_WAIT`](crate::REBUILD_LOCK_WAIT) and
    /// changed nothing.
    #[error("a rebuild of {name} is already running")]
    RebuildRunning {
        /// The projection.
        name: String,
    },
    /// The connection holding this rebuild's lock was lost (its session killed or timed
    /// out), so another rebuild may have started; this one stopped before switching.
    /// Run it again: it resumes from its checkpoint.
    #[error("the rebuild of {name} lost its lock (its connection ended); run it again to resume")]
    RebuildLockLost {
        /// The projection.
        name: String,
    },
    /// The handler failed on an event during a rebuild.
    #[error("rebuild of {name} failed at {position}: {error}")]
    Handler {
        /// The projection.
        name: String,
        /// Where.
        position: Position,
        /// The handler's error.
        error: tessera_core::BoxError,
    },
}
