//! An append waiting in the append queue, and how its caller hears back.

use tessera_core::{AppendOutcome, StoreError};
use tokio::sync::oneshot;
use tracing::Span;

use crate::append::Append;

/// An append waiting for its transaction.
pub(crate) struct Job {
    pub(crate) append: Append,
    pub(crate) reply: oneshot::Sender<Result<AppendOutcome, StoreError>>,
    pub(crate) span: Span,
    pub(crate) attempts: u32,
    /// Run in a transaction of its own (after its group failed).
    pub(crate) solo: bool,
}

impl Job {
    pub(crate) fn new(
        append: Append,
        reply: oneshot::Sender<Result<AppendOutcome, StoreError>>,
    ) -> Self {
        Self {
            append,
            reply,
            span: Span::current(),
            attempts: 0,
            solo: false,
        }
    }

    pub(crate) fn finish(self, result: Result<AppendOutcome, StoreError>, group: usize) {
        match &result {
            Ok(o) => {
                tracing::debug!(parent: &self.span, group, version = o.version.0, position = %o.position, "appended")
            }
            Err(e) => tracing::debug!(parent: &self.span, group, error = %e, "append refused"),
        }
        let _ = self.reply.send(result); // The caller may have given up waiting.
    }
}

/// The same failure for another waiter (the source is not cloneable).
pub(crate) fn copy(e: &StoreError) -> StoreError {
    let message = e.to_string();
    if e.is_transient() {
        StoreError::Unavailable {
            message,
            source: None,
        }
    } else {
        StoreError::Backend {
            message,
            source: None,
        }
    }
}
