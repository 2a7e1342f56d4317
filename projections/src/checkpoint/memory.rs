//! Checkpoints in process memory.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tessera_core::{BoxError, Position};

use super::CheckpointStore;

/// Checkpoints in process memory, by name. Clones share them.
#[derive(Clone, Default)]
pub struct MemoryCheckpoints {
    by_name: Arc<Mutex<HashMap<String, Position>>>,
}

impl MemoryCheckpoints {
    /// No checkpoints yet: every reader is at [`Position::START`].
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Position>> {
        self.by_name.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl CheckpointStore for MemoryCheckpoints {
    async fn load(&self, name: &str) -> Result<Position, BoxError> {
        Ok(self.lock().get(name).copied().unwrap_or_default())
    }

    async fn advance(&self, name: &str, from: Position, to: Position) -> Result<bool, BoxError> {
        let mut map = self.lock();
        let at = map.entry(name.to_owned()).or_default();
        if super::expect_at(*at, from).is_err() {
            return Ok(false);
        }
        *at = to;
        Ok(true)
    }
}
