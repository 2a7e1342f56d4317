//! A process manager's backlog shows beside its lag in the runner's status: the worker
//! fills it in ([`WorkerHandle::with_backlog`]); other statuses leave it out.

use std::sync::Arc;
use std::time::Duration;

use tessera_core::{MemoryStore, Position};
use tessera_projections::process::{MemoryProcess, PgProcess, ProcessConfig, ProcessStore, Worker};
use tessera_projections::{Runner, RunnerConfig};

use crate::process_burst::{Burst, Recorder};
use crate::process_cases as cases;
use crate::process_postgres::in_schema;
use crate::process_support::{emit, eventually, Ev};

/// Three orders of two commands each; every first command fails once and waits about
/// two seconds for its retry. Meanwhile the runner is caught up with the log and its status,
/// filled in by the worker, shows six commands waiting, three of them retrying; once
/// they went, nothing waits.
async fn the_backlog_shows_beside_the_lag<S: ProcessStore<Burst>>(process: S) {
    let store = MemoryStore::new();
    let runner = Runner::new(store.clone(), process.clone(), RunnerConfig::default()).spawn();
    let mut last = Position::START;
    for order in ["o0", "o1", "o2"] {
        let order = order.to_owned();
        last = emit(&store, Ev::Placed { order }).await;
    }
    runner
        .wait_for(last, Duration::from_secs(20))
        .await
        .expect("recorded");
    let d = Recorder::new(process.clone(), Duration::ZERO);
    for order in ["o0", "o1", "o2"] {
        d.fail_once.lock().expect("lock").insert((order.into(), 1));
    }
    let config = ProcessConfig {
        base_backoff: Duration::from_secs(2),
        max_backoff: Duration::from_secs(2),
        ..cases::config()
    };
    let worker = Worker::new(process.clone(), Arc::new(d.clone()), config).spawn();
    eventually("every first command failed once", || async {
        process.backlog().await.expect("backlog").retrying == 3
    })
    .await;
    let plain = runner.status();
    assert_eq!(plain.backlog, None, "a runner alone does not know it");
    let status = worker.with_backlog(runner.status()).await;
    assert!(status.checkpoint >= last, "caught up with the log");
    let backlog = status.backlog.expect("filled in by the worker");
    assert_eq!((backlog.waiting, backlog.retrying), (6, 3));
    assert!(backlog.oldest.is_some());
    eventually("the retries went", || async {
        let status = worker.with_backlog(runner.status()).await;
        status
            .backlog
            .is_some_and(|b| (b.waiting, b.retrying, b.oldest) == (0, 0, None))
    })
    .await;
    assert_eq!(worker.backlog().await.expect("backlog").waiting, 0);
    worker.stop().await;
    runner.stop().await;
}

#[tokio::test(start_paused = true)]
async fn the_backlog_shows_beside_the_lag_in_memory() {
    the_backlog_shows_beside_the_lag(MemoryProcess::new(Burst { steps: 2 })).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_the_backlog_shows_beside_the_lag() {
    in_schema(|pool, schema| async move {
        let process = PgProcess::new(pool.clone(), Burst { steps: 2 }, &schema)
            .await
            .expect("process store");
        the_backlog_shows_beside_the_lag(process).await;
    })
    .await;
}
