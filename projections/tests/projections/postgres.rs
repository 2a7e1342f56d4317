use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tessera_core::{EventFilter, EventReader, MemoryStore, Position, ReadAll};
use tessera_projections::{
    PgError, PgProjection, Runner, RunnerConfig, RunnerHandle, State, Subscriber,
};

use crate::pg_support::{cleanup, model, named_pool, pool, small_pool, unique, PgSums};
use crate::support::{deposit, WAIT};

fn fast() -> RunnerConfig {
    RunnerConfig {
        batch_size: 32,
        max_attempts: 3,
        base_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
        head_refresh: Duration::from_millis(1),
        idle_refresh: Duration::from_millis(50),
    }
}

/// A sums projection of its own name in a control schema of its own: the name, the
/// control schema (for [`cleanup`]) and the projection.
async fn sums(pool: &deadpool_postgres::Pool) -> (String, String, PgProjection<PgSums>) {
    let (name, control) = (format!("sums_{}", unique()), format!("ctl_{}", unique()));
    let projection = PgProjection::with_control_schema(pool.clone(), PgSums::new(&name), &control)
        .await
        .expect("projection");
    (name, control, projection)
}

/// Per-stream totals folded from the log: the from-scratch answer.
async fn expected(store: &MemoryStore) -> Vec<(String, i64)> {
    let events = store
        .read_all(ReadAll::after(Position::START, usize::MAX).filter(EventFilter::category("acct")))
        .await
        .expect("read_all");
    let mut sums = BTreeMap::new();
    for e in events {
        let amount = e.data.to_value().expect("json")["amount"]
            .as_i64()
            .expect("amount");
        *sums.entry(e.stream_id.to_string()).or_insert(0) += amount;
    }
    sums.into_iter().collect()
}

/// A `PgSums` projection in a control schema of its own, over a log of `deposits`
/// deposits spread over `accounts` streams, with a runner that has caught up.
struct Live {
    pool: deadpool_postgres::Pool,
    name: String,
    control: String,
    projection: PgProjection<PgSums>,
    store: MemoryStore,
    runner: RunnerHandle<MemoryStore>,
}

async fn live_sums(pool: deadpool_postgres::Pool, deposits: usize, accounts: usize) -> Live {
    let (name, control, projection) = sums(&pool).await;
    let store = MemoryStore::new();
    for i in 0..deposits {
        deposit(&store, &format!("acct-{}", i % accounts), 1).await;
    }
    let runner = Runner::new(store.clone(), projection.clone(), fast()).spawn();
    let head = deposit(&store, "acct-0", 1).await;
    runner.wait_for(head, WAIT).await.expect("live");
    Live {
        pool,
        name,
        control,
        projection,
        store,
        runner,
    }
}

/// A rebuild of `projection` started on a task and stopped inside its first progress
/// report (holding the rebuild lock) until the returned sender is sent to.
async fn paused_rebuild(
    projection: &PgProjection<PgSums>,
    store: &MemoryStore,
) -> (
    tokio::task::JoinHandle<Result<tessera_projections::RebuildReport, PgError>>,
    std::sync::mpsc::Sender<()>,
) {
    let (entered, entered_rx) = tokio::sync::oneshot::channel();
    let (release, released) = std::sync::mpsc::channel::<()>();
    let (projection, store) = (projection.clone(), store.clone());
    let mut pause = Some((entered, released));
    let task = tokio::spawn(async move {
        projection
            .rebuild(&store, 100, move |_| {
                if let Some((entered, released)) = pause.take() {
                    let _ = entered.send(());
                    let _ = released.recv();
                }
            })
            .await
    });
    entered_rx.await.expect("the rebuild started");
    (task, release)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pg_read_model_and_checkpoint_commit_together_under_kills() {
    let pool = pool().await;
    let (name, control) = (format!("sums_{}", unique()), format!("ctl_{}", unique()));
    let handler = PgSums::new(&name);
    let pause = handler.pause_ms.clone();
    pause.store(3, Ordering::SeqCst);
    let projection = PgProjection::with_control_schema(pool.clone(), handler, &control)
        .await
        .expect("projection");
    let store = MemoryStore::new();
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            for i in 0..600 {
                deposit(&store, &format!("acct-{}", i % 9), 1).await;
                if i % 20 == 0 {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        })
    };
    let schema = projection.active_schema().await.expect("schema");
    for round in 0..15u64 {
        let runner = Runner::new(store.clone(), projection.clone(), fast()).spawn();
        // Kill it while a batch is between the handler's writes and the commit.
        tokio::time::sleep(Duration::from_millis(4 + round % 5)).await;
        runner.abort().await;
        let (sums, applied) = model(&pool, &schema).await;
        assert!(
            applied.iter().all(|n| *n == 1),
            "round {round}: an event was applied twice"
        );
        let upto = projection.checkpoint().await.expect("checkpoint");
        let wanted = store
            .read_all(
                ReadAll::after(Position::START, usize::MAX).filter(EventFilter::category("acct")),
            )
            .await
            .expect("read")
            .iter()
            .filter(|e| e.position <= upto)
            .count();
        assert_eq!(
            applied.len(),
            wanted,
            "round {round}: checkpoint and read model disagree"
        );
        assert_eq!(
            usize::try_from(sums.iter().map(|(_, t)| *t).sum::<i64>()).ok(),
            Some(wanted)
        );
    }
    writer.await.expect("writer");
    pause.store(0, Ordering::SeqCst);
    let runner = Runner::new(store.clone(), projection.clone(), fast()).spawn();
    let head = deposit(&store, "acct-0", 1).await;
    runner.wait_for(head, WAIT).await.expect("caught up");
    assert_eq!(model(&pool, &schema).await.0, expected(&store).await);
    runner.stop().await;
    cleanup(&pool, &control, &name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_pg_runners_apply_each_event_once() {
    let pool = pool().await;
    let (name, control, projection) = sums(&pool).await;
    let store = MemoryStore::new();
    let a = Runner::new(store.clone(), projection.clone(), fast()).spawn();
    let b = Runner::new(store.clone(), projection.clone(), fast()).spawn();
    let mut last = Position::START;
    for i in 0..400 {
        last = deposit(&store, &format!("acct-{}", i % 5), 1).await;
    }
    a.wait_for(last, WAIT).await.expect("a");
    b.wait_for(last, WAIT).await.expect("b");
    let schema = projection.active_schema().await.expect("schema");
    let (sums, applied) = model(&pool, &schema).await;
    assert_eq!(applied.len(), 400);
    assert!(
        applied.iter().all(|n| *n == 1),
        "an event was applied twice"
    );
    assert_eq!(sums, expected(&store).await);
    a.stop().await;
    b.stop().await;
    cleanup(&pool, &control, &name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pg_poison_event_stops_and_resumes_after_the_fix() {
    // One connection: the one every failed batch ran on serves everything after.
    let pool = small_pool(1).await;
    let (name, control) = (format!("sums_{}", unique()), format!("ctl_{}", unique()));
    let handler = PgSums::new(&name);
    let strict = handler.strict.clone();
    let projection = PgProjection::with_control_schema(pool.clone(), handler, &control)
        .await
        .expect("projection");
    let store = MemoryStore::new();
    deposit(&store, "acct-a", 5).await;
    let poison = deposit(&store, "acct-a", -2).await;
    let after = deposit(&store, "acct-a", 1).await;
    let runner = Runner::new(store.clone(), projection.clone(), fast()).spawn();
    let mut watch = runner.watch();
    tokio::time::timeout(WAIT, watch.wait_for(|s| s.state == State::Failed))
        .await
        .expect("failed in time")
        .expect("status");
    let failure = runner.status().failure.expect("failure");
    assert_eq!(failure.position, poison);
    assert!(failure.error.contains("negative amount -2"));
    // The failed batches' transactions were rolled back before the connection served
    // again: a statement on it runs in a transaction of its own, not an aborted one.
    // (One simple-protocol message: a transaction of its own starts with it.)
    let client = pool.get().await.expect("connection");
    let rows = client
        .simple_query("SELECT now() = statement_timestamp()")
        .await
        .expect("the connection is usable, not in a failed transaction");
    let fresh = rows.iter().find_map(|m| match m {
        tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_owned),
        _ => None,
    });
    assert_eq!(
        fresh.as_deref(),
        Some("t"),
        "the pool handed out a connection inside a transaction"
    );
    drop(client);
    let schema = projection.active_schema().await.expect("schema");
    assert_eq!(
        model(&pool, &schema).await.0,
        vec![("acct-a".to_owned(), 5)]
    );
    drop(runner);
    strict.store(false, Ordering::SeqCst);
    let runner = Runner::new(store.clone(), projection.clone(), fast()).spawn();
    runner.wait_for(after, WAIT).await.expect("resumed");
    assert_eq!(
        model(&pool, &schema).await.0,
        vec![("acct-a".to_owned(), 4)]
    );
    runner.stop().await;
    cleanup(&pool, &control, &name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pg_rebuild_under_traffic_serves_throughout_switches_and_resumes_after_a_crash() {
    let Live {
        pool,
        name,
        control,
        projection,
        store,
        runner,
    } = live_sums(pool().await, 1500, 17).await;
    let v1 = projection.active_schema().await.expect("schema");

    // A rebuild that crashes after a few batches leaves its checkpoint behind...
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let crashing = {
        let (projection, store) = (projection.clone(), store.clone());
        tokio::spawn(async move {
            projection
                .rebuild(&store, 100, move |p| {
                    let _ = tx.send(p.done);
                })
                .await
        })
    };
    while rx.recv().await.is_some_and(|done| done < 300) {}
    crashing.abort();
    let _ = crashing.await;
    assert_eq!(
        projection.active_schema().await.expect("schema"),
        v1,
        "a crashed rebuild must not switch"
    );

    // ...and queries keep answering from v1 while traffic flows and the rebuild resumes.
    let traffic = {
        let store = store.clone();
        tokio::spawn(async move {
            for i in 0..300 {
                deposit(&store, &format!("acct-{}", i % 17), 2).await;
                tokio::time::sleep(Duration::from_micros(300)).await;
            }
        })
    };
    let reader = {
        let (pool, projection) = (pool.clone(), projection.clone());
        tokio::spawn(async move {
            let mut answered = 0;
            for _ in 0..200 {
                let schema = projection.active_schema().await.expect("schema");
                let client = pool.get().await.expect("connection");
                // A query may race the drop of the old schema right after the switch;
                // it then re-resolves the active schema. Every other answer must come.
                match client
                    .query_one(&format!("SELECT count(*) FROM {schema}.sums"), &[])
                    .await
                {
                    Ok(_) => answered += 1,
                    Err(e) => assert!(
                        e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE),
                        "query failed: {e}"
                    ),
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            answered
        })
    };
    let report = projection
        .rebuild(&store, 100, |_| {})
        .await
        .expect("rebuild");
    assert!(
        report.resumed_from > Position::START,
        "the rebuild did not resume: {report:?}"
    );
    assert_eq!((report.replaced, report.version), (1, 2));
    traffic.await.expect("traffic");
    assert!(
        reader.await.expect("reader") >= 190,
        "queries stopped answering during the rebuild"
    );
    let v2 = projection.active_schema().await.expect("schema");
    assert_ne!(v1, v2);
    let head = deposit(&store, "acct-0", 1).await;
    runner
        .wait_for(head, WAIT)
        .await
        .expect("live runner continues on the new version");
    let (sums, applied) = model(&pool, &v2).await;
    assert!(applied.iter().all(|n| *n == 1));
    assert_eq!(sums, expected(&store).await);
    runner.stop().await;
    cleanup(&pool, &control, &name).await;
}

/// Two rebuilds of one projection (the CLI's while the server's runs, say): the second
/// is refused and changes nothing, the first switches once, and the live version is
/// never dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pg_a_second_concurrent_rebuild_is_refused_and_the_first_switches_once() {
    let Live {
        pool,
        name,
        control,
        projection,
        store,
        runner,
    } = live_sums(pool().await, 500, 7).await;

    // The first rebuild stops inside its first progress report, holding the lock.
    let (first, release) = paused_rebuild(&projection, &store).await;
    let second = projection.rebuild(&store, 100, |_| {}).await;
    assert!(
        matches!(second, Err(PgError::RebuildRunning { .. })),
        "{second:?}"
    );
    release.send(()).expect("release");
    let report = first.await.expect("task").expect("first rebuild");
    assert_eq!((report.replaced, report.version), (1, 2));

    // The lock went with the first rebuild: the next one runs, on top of v2.
    let again = projection
        .rebuild(&store, 100, |_| {})
        .await
        .expect("rebuild");
    assert_eq!((again.replaced, again.version), (2, 3));
    let head = deposit(&store, "acct-1", 1).await;
    runner
        .wait_for(head, WAIT)
        .await
        .expect("live runner continues on the newest version");
    let (sums, applied) = model(&pool, &projection.active_schema().await.expect("schema")).await;
    assert!(applied.iter().all(|n| *n == 1));
    assert_eq!(sums, expected(&store).await);
    runner.stop().await;
    cleanup(&pool, &control, &name).await;
}

/// A rebuild whose lock connection is killed stops before switching (another rebuild
/// could have taken the lock meanwhile), and the next run resumes and switches.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pg_a_rebuild_that_lost_its_lock_stops_before_switching() {
    let app = format!("lost-lock-{}", unique());
    let Live {
        pool,
        name,
        control,
        projection,
        store,
        runner,
    } = live_sums(named_pool(&app).await, 500, 7).await;
    let v1 = projection.active_schema().await.expect("schema");
    let (first, release) = paused_rebuild(&projection, &store).await;
    let client = pool.get().await.expect("connection");
    let killed: i64 = client
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE application_name = $1 AND query = 'SELECT pg_advisory_lock(hashtext($1))'",
            &[&app],
        )
        .await
        .expect("terminate")
        .get(0);
    assert_eq!(killed, 1, "the rebuild's lock connection");
    drop(client);
    tokio::time::sleep(Duration::from_millis(300)).await;
    release.send(()).expect("release");
    let lost = first.await.expect("task");
    assert!(
        matches!(lost, Err(PgError::RebuildLockLost { .. })),
        "{lost:?}"
    );
    assert_eq!(
        projection.active_schema().await.expect("schema"),
        v1,
        "no switch"
    );

    let report = projection
        .rebuild(&store, 100, |_| {})
        .await
        .expect("rebuild");
    assert!(report.resumed_from > Position::START, "{report:?}");
    assert_eq!((report.replaced, report.version), (1, 2));
    let head = deposit(&store, "acct-1", 1).await;
    runner.wait_for(head, WAIT).await.expect("live on v2");
    let (sums, applied) = model(&pool, &projection.active_schema().await.expect("schema")).await;
    assert!(applied.iter().all(|n| *n == 1));
    assert_eq!(sums, expected(&store).await);
    runner.stop().await;
    cleanup(&pool, &control, &name).await;
}

/// Handlers cache statements naming their version's schema; after a rebuild replaces a
/// version, none of the pool's connections may keep one prepared for the dropped schema
/// (each rebuild makes new names, so they would pile up for the connections' life).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_a_replaced_version_leaves_no_prepared_statement_behind() {
    let Live {
        pool,
        name,
        control,
        projection,
        store,
        runner,
    } = live_sums(small_pool(2).await, 50, 5).await;
    let v1 = projection.active_schema().await.expect("schema");
    let report = projection
        .rebuild(&store, 10, |_| {})
        .await
        .expect("rebuild");
    assert_eq!(report.replaced, 1);
    let head = deposit(&store, "acct-1", 1).await;
    runner.wait_for(head, WAIT).await.expect("live on v2");
    runner.stop().await;

    // Both of the pool's connections, held at once: each lists its own prepared statements.
    let (a, b) = (pool.get().await.expect("a"), pool.get().await.expect("b"));
    let bare = v1.trim_matches('"').to_owned();
    let mut left = 0;
    for client in [&a, &b] {
        let n: i64 = client
            .query_one(
                "SELECT count(*) FROM pg_prepared_statements WHERE strpos(statement, $1) > 0",
                &[&bare],
            )
            .await
            .expect("prepared statements")
            .get(0);
        left += n;
    }
    assert_eq!(
        left, 0,
        "statements naming the dropped {v1} are still prepared"
    );
    drop((a, b));
    cleanup(&pool, &control, &name).await;
}

/// A live batch moves its checkpoint only from where it stands: a batch applied again
/// from the same start (a second runner that read the old checkpoint) is fenced and
/// writes nothing, and a batch from a start that never was is fenced as well.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pg_batch_from_a_stale_checkpoint_is_fenced_and_writes_nothing() {
    let pool = pool().await;
    let (name, control, projection) = sums(&pool).await;
    let store = MemoryStore::new();
    for i in 0..6 {
        deposit(&store, &format!("acct-{}", i % 2), 1).await;
    }
    let events = store
        .read_all(ReadAll::after(Position::START, 100))
        .await
        .expect("the log");
    let from = projection.checkpoint().await.expect("checkpoint");
    assert_eq!(from, Position::START);
    let (first, second) = events.split_at(3);
    projection
        .apply(from, first)
        .await
        .expect("the first batch");
    for (start, batch) in [(from, second), (second[0].position, second)] {
        match projection.apply(start, batch).await {
            Err(tessera_projections::ApplyError::Fenced { expected }) => {
                assert_eq!(expected, start);
            }
            other => panic!("a batch from {start} is fenced, got {other:?}"),
        }
    }
    assert_eq!(
        projection.checkpoint().await.expect("checkpoint"),
        first[2].position,
        "the fenced batches moved nothing"
    );
    let schema = projection.active_schema().await.expect("schema");
    let (_, applied) = model(&pool, &schema).await;
    assert_eq!(
        applied.len(),
        3,
        "only the first batch's events were applied"
    );
    projection
        .apply(first[2].position, second)
        .await
        .expect("the second batch from where the first ended");
    assert_eq!(
        projection.checkpoint().await.expect("checkpoint"),
        second[2].position
    );
    cleanup(&pool, &control, &name).await;
}
