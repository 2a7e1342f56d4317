//! The PostgreSQL process store: the shared runtime cases, each in a schema of its own
//! (dropped afterwards), with the memory store as the event source.

use std::future::Future;

use deadpool_postgres::Pool;
use tessera_projections::process::PgProcess;

use crate::pg_support::{pool, unique};
use crate::process_cases as cases;
use crate::process_support::Fulfil;

/// Runs `case` against a fresh schema, then drops it.
pub async fn in_schema<F, Fut>(case: F)
where
    F: FnOnce(Pool, String) -> Fut,
    Fut: Future<Output = ()>,
{
    let pool = pool().await;
    let schema = format!("pm_{}", unique());
    case(pool.clone(), schema.clone()).await;
    let client = pool.get().await.expect("connection");
    client
        .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
        .await
        .expect("drop schema");
}

async fn open(pool: &Pool, schema: &str) -> PgProcess<Fulfil> {
    PgProcess::new(pool.clone(), Fulfil, schema)
        .await
        .expect("process store")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_duplicate_delivery_issues_one_command() {
    in_schema(|pool, schema| async move {
        cases::duplicate_delivery_issues_one_command(open(&pool, &schema).await).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_crash_before_dispatch_redispatches_once() {
    in_schema(|pool, schema| async move {
        let first = open(&pool, &schema).await;
        cases::crash_before_dispatch_redispatches_once(first, || open(&pool, &schema)).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_deadline_survives_restart_and_fires_once() {
    in_schema(|pool, schema| async move {
        let first = open(&pool, &schema).await;
        cases::deadline_survives_restart_and_fires_once(first, || open(&pool, &schema)).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_deadline_cancelled_by_the_awaited_event_never_fires() {
    in_schema(|pool, schema| async move {
        cases::deadline_cancelled_by_the_awaited_event_never_fires(open(&pool, &schema).await)
            .await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_compensation_runs_in_reverse_order() {
    in_schema(|pool, schema| async move {
        cases::compensation_runs_in_reverse_order(open(&pool, &schema).await).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_failing_compensation_ends_failed_with_the_reason() {
    in_schema(|pool, schema| async move {
        cases::failing_compensation_ends_failed_with_the_reason(open(&pool, &schema).await).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_rejected_command_is_handed_to_the_process_manager() {
    in_schema(|pool, schema| async move {
        let process = open(&pool, &schema).await;
        cases::rejected_command_is_handed_to_the_process_manager(process).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_backlog_counts_waiting_and_retrying_commands() {
    in_schema(|pool, schema| async move {
        let process = open(&pool, &schema).await;
        cases::backlog_counts_waiting_and_retrying_commands(process).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_rejects_a_schema_name_that_is_not_an_identifier() {
    let pool = pool().await;
    assert!(PgProcess::new(pool, Fulfil, "bad; DROP").await.is_err());
}

/// The set-based batch against the memory store, one event at a time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_one_batch_leaves_what_one_event_at_a_time_leaves() {
    in_schema(|pool, schema| async move {
        cases::one_batch_leaves_what_one_event_at_a_time_leaves(
            open(&pool, &schema).await,
            tessera_projections::process::MemoryProcess::new(Fulfil),
        )
        .await;
    })
    .await;
}

/// The process's events of `orders` placed, read back from a memory log.
pub async fn placed(orders: &[&str]) -> Vec<tessera_core::RecordedEvent> {
    use tessera_core::{EventReader, MemoryStore, Position, ReadAll};
    let store = MemoryStore::new();
    for order in orders {
        let order = (*order).to_owned();
        crate::process_support::emit(&store, crate::process_support::Ev::Placed { order }).await;
    }
    store
        .read_all(ReadAll::after(Position::START, 100))
        .await
        .expect("read")
}

/// Rows of the instances and outbox of `schema`.
async fn written(pool: &Pool, schema: &str) -> (i64, i64) {
    let client = pool.get().await.expect("connection");
    let row = client
        .query_one(
            &format!(
                "SELECT (SELECT count(*) FROM \"{schema}\".instances), \
                        (SELECT count(*) FROM \"{schema}\".outbox)"
            ),
            &[],
        )
        .await
        .expect("count");
    (row.get(0), row.get(1))
}

/// A batch from a checkpoint that has moved is refused and writes nothing: the
/// checkpoint's compare-and-set comes first, and the instances, commands and handled
/// records of the batch roll back with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_a_batch_from_a_stale_checkpoint_is_fenced_and_writes_nothing() {
    use tessera_projections::{ApplyError, Subscriber};
    in_schema(|pool, schema| async move {
        let process = open(&pool, &schema).await;
        let events = placed(&["o1", "o2"]).await;
        let (first, second) = events.split_at(1);
        process
            .apply(tessera_core::Position::START, first)
            .await
            .expect("first batch");
        assert_eq!(written(&pool, &schema).await, (1, 1));
        // From the start again, with an event not applied yet: refused.
        let stale = process.apply(tessera_core::Position::START, second).await;
        assert!(matches!(stale, Err(ApplyError::Fenced { .. })), "{stale:?}");
        assert_eq!(written(&pool, &schema).await, (1, 1), "nothing of o2");
        assert_eq!(
            process.checkpoint().await.expect("checkpoint"),
            first[0].position
        );
        // From where it is: applied.
        process
            .apply(first[0].position, second)
            .await
            .expect("next batch");
        assert_eq!(written(&pool, &schema).await, (2, 2));
    })
    .await;
}

/// Two runners of one process: a batch that meets the checkpoint's row locked by the
/// other's transaction waits for it, then finds the checkpoint moved and writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_a_batch_waiting_for_another_runner_s_batch_is_fenced_after_it() {
    use tessera_projections::{ApplyError, Subscriber};
    in_schema(|pool, schema| async move {
        let process = open(&pool, &schema).await;
        let events = placed(&["o1", "o2"]).await;
        let (first, second) = events.split_at(1);
        // The other runner's batch: its checkpoint moved past `first`, not committed.
        let mut other = pool.get().await.expect("connection");
        let tx = other.transaction().await.expect("begin");
        let moved = tx
            .execute(
                &format!(
                    "UPDATE \"{schema}\".checkpoints SET commit_pos = $1, prepare_pos = $2 \
                     WHERE name = 'fulfil'"
                ),
                &[
                    &i64::try_from(first[0].position.commit).expect("position"),
                    &i64::try_from(first[0].position.prepare).expect("position"),
                ],
            )
            .await
            .expect("move");
        assert_eq!(moved, 1, "the process registered its checkpoint");
        let waiting = {
            let process = process.clone();
            let second = second.to_vec();
            tokio::spawn(async move { process.apply(tessera_core::Position::START, &second).await })
        };
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert!(!waiting.is_finished(), "waits for the other's batch");
        tx.commit().await.expect("commit");
        let applied = tokio::time::timeout(std::time::Duration::from_secs(10), waiting)
            .await
            .expect("no deadlock")
            .expect("task");
        assert!(
            matches!(applied, Err(ApplyError::Fenced { .. })),
            "{applied:?}"
        );
        assert_eq!(written(&pool, &schema).await, (0, 0), "nothing written");
    })
    .await;
}
