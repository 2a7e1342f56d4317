//! Handing issued commands to the application: the [`Dispatcher`].

use async_trait::async_trait;
use tessera_core::process::Issued;
use tessera_core::BoxError;

/// Sends a process manager's commands to the contexts that handle them.
///
/// The runtime stores it as `dyn Dispatcher<C>`, so it is an `async_trait`. An
/// implementation usually matches on the command and calls the target
/// [`CommandHandler`](tessera_core::CommandHandler) with
/// [`Issued::options`], whose idempotency key makes a re-dispatch (after a crash, or a
/// retry whose reply was lost) land once. `Ok` means the command landed, or had landed.
///
/// ```
/// use async_trait::async_trait;
/// use tessera_core::process::Issued;
/// use tessera_projections::process::{DispatchError, Dispatcher};
///
/// struct Printer;
/// #[async_trait]
/// impl Dispatcher<String> for Printer {
///     async fn dispatch(&self, issued: &Issued<String>) -> Result<(), DispatchError> {
///         println!("{} ({})", issued.command, issued.idempotency_key());
///         Ok(())
///     }
/// }
/// let _: Box<dyn Dispatcher<String>> = Box::new(Printer);
/// ```
#[async_trait]
pub trait Dispatcher<C>: Send + Sync + 'static {
    /// Dispatches one command.
    async fn dispatch(&self, issued: &Issued<C>) -> Result<(), DispatchError>;
}

/// Compile-time check that [`Dispatcher`] stays object safe.
fn _object_safe(_: Box<dyn Dispatcher<()>>) {}

/// Why a command was not dispatched.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DispatchError {
    /// It may succeed later (the target is unavailable, a timeout, an open circuit): the
    /// runtime retries it with backoff, up to its attempts.
    #[error("transient dispatch failure: {0}")]
    Transient(#[source] BoxError),
    /// It will never succeed (the target refused it): no retry.
    #[error("command rejected: {0}")]
    Rejected(#[source] BoxError),
}

impl DispatchError {
    /// A transient failure.
    pub fn transient(error: impl Into<BoxError>) -> Self {
        DispatchError::Transient(error.into())
    }

    /// A rejection.
    pub fn rejected(error: impl Into<BoxError>) -> Self {
        DispatchError::Rejected(error.into())
    }

    /// Whether a retry may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, DispatchError::Transient(_))
    }
}
