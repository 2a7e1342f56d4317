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
