//! Read-your-writes waits read the runner's status, not the store: any number of
//! concurrent waiters costs the store what one does.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tessera_core::testkit::{Call, Forward};
use tessera_core::{
    EventAppender, ExpectedVersion, MemoryStore, NewEvent, Position, StoreError, StreamId,
};
use tessera_projections::{MemoryProjection, Runner, RunnerConfig};

use crate::support::{deposit, SumHandler, WAIT};

/// Counts the log reads that a wait could make (`head` and `read_all`).
#[derive(Clone, Default)]
struct Counting {
    inner: MemoryStore,
    reads: Arc<AtomicU64>,
}

impl Forward for Counting {
    type Inner = MemoryStore;

    fn inner(&self) -> &MemoryStore {
        &self.inner
    }

    fn before(&self, call: Call) -> Result<(), StoreError> {
        if matches!(call, Call::Head | Call::ReadAll) {
            self.reads.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_waits_for_a_future_position_cost_the_store_what_one_does() {
    let store = Counting::default();
    deposit(&store.inner, "acct-1", 1).await;
    let projection = MemoryProjection::new(SumHandler::new("sums"));
    let config = RunnerConfig {
        idle_refresh: Duration::from_secs(3_600),
        head_refresh: Duration::from_secs(3_600),
        ..RunnerConfig::default()
    };
    let runner = Arc::new(Runner::new(store.clone(), projection, config).spawn());
    let head = tessera_core::EventReader::head(&store.inner)
        .await
        .expect("head")
        .expect("an event");
    runner.wait_for(head, WAIT).await.expect("caught up");
    // The next event goes to another category: the sums never see its position, so the
    // waits end through the runner's measurement of the head, not its checkpoint.
    let future = Position::new(head.commit + 1, head.prepare + 1);
    let before = store.reads.load(Ordering::SeqCst);
    let waits: Vec<_> = (0..200)
        .map(|_| {
            let runner = Arc::clone(&runner);
            tokio::spawn(async move { runner.wait_for(future, WAIT).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let other = NewEvent::json("Noted", &serde_json::json!({})).expect("json");
    let out = store
        .inner
        .append(
            &StreamId::new("note-1").expect("id"),
            ExpectedVersion::Any,
            vec![other],
        )
        .await
        .expect("append");
    assert_eq!(out.position, future, "the position waited for");
    for w in waits {
        w.await.expect("task").expect("reached");
    }
    let reads = store.reads.load(Ordering::SeqCst) - before;
    // Each measurement is two reads; while the waiters wait the runner measures once per
    // round of asks, not once per waiter.
    assert!(reads < 200, "{reads} reads for 200 waits");
    assert!(reads > 0, "the runner measured the head");
}
