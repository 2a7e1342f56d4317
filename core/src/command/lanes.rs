//! One writer per aggregate in this process: commands for one stream wait their turn
//! instead of racing each other to the append and retrying on version conflicts.
//!
//! A hot aggregate (one product every order of a flash sale reserves) took N concurrent
//! commands through N loads and N appends of which one wins, the rest conflict and
//! retry with backoff, and under enough load give up. In a lane, each command decides
//! on the state the previous one left (from the state cache, when the handler has one)
//! and appends once. Writers in other processes are still caught by the expected
//! version, as before.

use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};

use tokio::sync::{Mutex, MutexGuard};

use crate::StreamId;

/// Lanes by hash of the stream id: two streams share a lane only when their hashes
/// collide (one in [`WriterLanes::DEFAULT`] for a pair of streams).
pub(super) struct WriterLanes {
    lanes: Box<[Mutex<()>]>,
}

impl WriterLanes {
    /// Lanes a handler has unless told otherwise.
    pub(super) const DEFAULT: usize = 1024;

    /// `count` lanes (at least one).
    pub(super) fn new(count: usize) -> Self {
        Self {
            lanes: (0..count.max(1)).map(|_| Mutex::new(())).collect(),
        }
    }

    /// Waits for `stream`'s lane; the command runs while the guard lives.
    pub(super) async fn enter(&self, stream: &StreamId) -> MutexGuard<'_, ()> {
        let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one(stream.as_str());
        // Less than the lane count, so it fits in usize.
        let lane = usize::try_from(hash % self.lanes.len() as u64).unwrap_or_default();
        self.lanes[lane].lock().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_stream_one_writer_others_free() {
        let lanes = WriterLanes::new(WriterLanes::DEFAULT);
        let a = StreamId::new("product-a").unwrap();
        let b = StreamId::new("product-b").unwrap();
        let held = lanes.enter(&a).await;
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(20), lanes.enter(&a))
                .await
                .is_err(),
            "a second writer of product-a waits"
        );
        let _b = tokio::time::timeout(std::time::Duration::from_millis(20), lanes.enter(&b))
            .await
            .expect("product-b has a lane of its own");
        drop(held);
        let _a = lanes.enter(&a).await;
    }
}
