//! The worker dispatches instances concurrently, within its bound, and the commands of
//! one instance in order, each after the previous one was marked: on both stores.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tessera_core::process::InstanceId;
use tessera_core::{MemoryStore, Position};
use tessera_projections::process::{
    Due, MemoryProcess, PgProcess, ProcessConfig, ProcessStore, Worker,
};
use tessera_projections::{Runner, RunnerConfig};

use crate::process_burst::{Burst, Recorder, Step};
use crate::process_cases as cases;
use crate::process_postgres::in_schema;
use crate::process_support::{emit, eventually, record_up_to, Ev};

const PAUSE: Duration = Duration::from_millis(50);

fn config(bound: usize) -> ProcessConfig {
    ProcessConfig {
        max_concurrent_dispatches: bound,
        ..cases::config()
    }
}

/// Places `orders` (o0, o1, …) and lets a runner record them.
async fn place<S: ProcessStore<Burst>>(store: &MemoryStore, process: &S, orders: &[String]) {
    let mut last = Position::START;
    for order in orders {
        last = emit(
            store,
            Ev::Placed {
                order: order.clone(),
            },
        )
        .await;
    }
    record_up_to(store, process, last).await;
}

/// Each entry's instance and step.
fn heads(due: Due<Step>) -> Vec<(String, u32)> {
    due.entries
        .into_iter()
        .map(|e| (e.issued.instance.to_string(), e.issued.command.n))
        .collect()
}

fn orders(range: std::ops::Range<u32>) -> Vec<String> {
    range.map(|i| format!("o{i}")).collect()
}

/// 24 instances with one slow command each: a round overlaps them, never beyond 4.
async fn instances_go_concurrently_within_the_bound<S: ProcessStore<Burst>>(process: S) {
    let store = MemoryStore::new();
    place(&store, &process, &orders(0..24)).await;
    let d = Recorder::new(process.clone(), PAUSE);
    let round = Worker::new(process.clone(), Arc::new(d.clone()), config(4))
        .run_once()
        .await
        .expect("round");
    assert_eq!(round.dispatched, 24);
    let max = d.max.load(Ordering::SeqCst);
    assert!(max > 1, "dispatched one at a time");
    assert!(max <= 4, "{max} in flight, above the bound of 4");
    assert_eq!(*d.violations.lock().expect("lock"), Vec::<String>::new());
    for order in orders(0..24) {
        assert_eq!(d.steps_of(&order), [1], "{order}");
    }
    assert!(process.pending(100).await.expect("pending").is_empty());
}

/// Instances with four queued commands each, one of which fails once: each instance's
/// commands land in order, one at a time, while instances overlap. A spawned worker,
/// with orders arriving while it runs.
async fn an_instance_keeps_its_order<S: ProcessStore<Burst>>(process: S) {
    let store = MemoryStore::new();
    place(&store, &process, &orders(0..6)).await;
    let now = process.clock().now();
    let all = heads(process.due(now, 100, &[]).await.expect("due"));
    let first: Vec<(String, u32)> = orders(0..6).into_iter().map(|o| (o, 1)).collect();
    assert_eq!(
        all, first,
        "the oldest command of each instance, oldest first"
    );
    let busy: Vec<InstanceId> = vec!["o0".into(), "o3".into()];
    let some = heads(process.due(now, 3, &busy).await.expect("due"));
    assert_eq!(some, [("o1".into(), 1), ("o2".into(), 1), ("o4".into(), 1)]);

    let d = Recorder::new(process.clone(), PAUSE);
    d.fail_once.lock().expect("lock").insert(("o2".into(), 2));
    let runner = Runner::new(store.clone(), process.clone(), RunnerConfig::default()).spawn();
    let worker = Worker::new(process.clone(), Arc::new(d.clone()), config(3)).spawn();
    for order in orders(6..10) {
        emit(&store, Ev::Placed { order }).await;
    }
    eventually("every step landed", || async {
        d.landed.lock().expect("lock").len() == 40
    })
    .await;
    runner.stop().await;
    worker.stop().await;
    for order in orders(0..10) {
        assert_eq!(d.steps_of(&order), [1, 2, 3, 4], "{order}");
    }
    assert_eq!(*d.violations.lock().expect("lock"), Vec::<String>::new());
    let max = d.max.load(Ordering::SeqCst);
    assert!(max > 1 && max <= 3, "{max} in flight at most, bound 3");
    assert!(process.pending(100).await.expect("pending").is_empty());
}

/// A scan says whether it left a pending command: none when it returned every one;
/// one when a command waits behind a busy instance, behind the head it returned, for
/// its retry time, or beyond the limit.
async fn a_scan_says_whether_it_left_a_command<S: ProcessStore<Burst>>(process: S) {
    let store = MemoryStore::new();
    place(&store, &process, &orders(0..2)).await;
    let now = process.clock().now();
    let more = |due: &Due<Step>| due.more;
    let all = process.due(now, 10, &[]).await.expect("due");
    assert_eq!(all.entries.len(), 2);
    assert!(!more(&all), "every pending command returned");
    assert!(more(&process.due(now, 1, &[]).await.expect("due")), "limit");
    let busy = process.due(now, 10, &["o0".into()]).await.expect("due");
    assert_eq!(heads(busy.clone()), [("o1".into(), 1)]);
    assert!(more(&busy), "o0's command waits for o0");
    let later = now + Duration::from_secs(3600);
    process
        .mark_failed(&all.entries[1].issued, "gateway down", Some(later))
        .await
        .expect("mark failed");
    let waiting = process.due(now, 10, &[]).await.expect("due");
    assert_eq!(heads(waiting.clone()), [("o0".into(), 1)]);
    assert!(more(&waiting), "o1's command waits for its retry");
    process
        .mark_dispatched(&all.entries[0].issued)
        .await
        .expect("mark");
    process
        .mark_dispatched(&all.entries[1].issued)
        .await
        .expect("mark");
    let none = process.due(later, 10, &[]).await.expect("due");
    assert!(none.entries.is_empty() && !more(&none), "nothing pending");
}

/// Instances with two commands each: the second waits behind the first.
async fn a_scan_leaves_a_command_behind_its_head<S: ProcessStore<Burst>>(process: S) {
    let store = MemoryStore::new();
    place(&store, &process, &orders(0..1)).await;
    let due = process
        .due(process.clock().now(), 10, &[])
        .await
        .expect("due");
    assert_eq!(heads(due.clone()), [("o0".into(), 1)]);
    assert!(due.more, "step 2 waits behind step 1");
}

/// Instances with 150 queued commands each: the head of an instance behind two long
/// busy queues is found, and behind a long queue whose head waits for its retry (on
/// PostgreSQL busy instances are left out by the statement; the queue behind a waiting
/// head is crossed in pages that double).
async fn a_long_queue_hides_no_instance<S: ProcessStore<Burst>>(process: S) {
    let store = MemoryStore::new();
    place(&store, &process, &orders(0..3)).await;
    let now = process.clock().now();
    let all = heads(process.due(now, 10, &[]).await.expect("due"));
    let first: Vec<(String, u32)> = orders(0..3).into_iter().map(|o| (o, 1)).collect();
    assert_eq!(all, first, "each instance's oldest command, once");
    let busy: Vec<InstanceId> = vec!["o0".into(), "o1".into()];
    let behind = process.due(now, 1, &busy).await.expect("due");
    assert!(
        behind.more,
        "o0's and o1's commands left (on PostgreSQL, pages read)"
    );
    assert_eq!(heads(behind), [("o2".into(), 1)]);
    let later = process.clock().now() + Duration::from_secs(3600);
    assert_eq!(
        heads(process.due(later, 2, &["o1".into()]).await.expect("due")),
        [("o0".into(), 1), ("o2".into(), 1)]
    );
    // o0's head failed and waits an hour for its retry: none of o0's 149 later
    // commands goes before it.
    let head = process
        .due(now, 1, &[])
        .await
        .expect("due")
        .entries
        .remove(0);
    assert_eq!(head.issued.instance.as_str(), "o0");
    process
        .mark_failed(&head.issued, "gateway down", Some(later))
        .await
        .expect("mark failed");
    assert_eq!(
        heads(process.due(now, 10, &[]).await.expect("due")),
        [("o1".into(), 1), ("o2".into(), 1)]
    );
    assert_eq!(
        heads(process.due(later, 10, &[]).await.expect("due")),
        [("o0".into(), 1), ("o1".into(), 1), ("o2".into(), 1)]
    );
}

#[tokio::test(start_paused = true)]
async fn instances_are_dispatched_concurrently_within_the_bound() {
    instances_go_concurrently_within_the_bound(MemoryProcess::new(Burst { steps: 1 })).await;
}

#[tokio::test(start_paused = true)]
async fn commands_of_one_instance_go_in_order_one_at_a_time() {
    an_instance_keeps_its_order(MemoryProcess::new(Burst { steps: 4 })).await;
}

async fn open(pool: &deadpool_postgres::Pool, schema: &str, steps: u32) -> PgProcess<Burst> {
    PgProcess::new(pool.clone(), Burst { steps }, schema)
        .await
        .expect("process store")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_instances_are_dispatched_concurrently_within_the_bound() {
    in_schema(|pool, schema| async move {
        instances_go_concurrently_within_the_bound(open(&pool, &schema, 1).await).await;
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_long_queue_hides_no_instance_in_memory() {
    a_long_queue_hides_no_instance(MemoryProcess::new(Burst { steps: 150 })).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_a_long_queue_hides_no_instance() {
    in_schema(|pool, schema| async move {
        a_long_queue_hides_no_instance(open(&pool, &schema, 150).await).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_commands_of_one_instance_go_in_order_one_at_a_time() {
    in_schema(|pool, schema| async move {
        an_instance_keeps_its_order(open(&pool, &schema, 4).await).await;
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_scan_says_whether_it_left_a_command_in_memory() {
    a_scan_says_whether_it_left_a_command(MemoryProcess::new(Burst { steps: 1 })).await;
    a_scan_leaves_a_command_behind_its_head(MemoryProcess::new(Burst { steps: 2 })).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_a_scan_says_whether_it_left_a_command() {
    in_schema(|pool, schema| async move {
        a_scan_says_whether_it_left_a_command(open(&pool, &schema, 1).await).await;
    })
    .await;
    in_schema(|pool, schema| async move {
        a_scan_leaves_a_command_behind_its_head(open(&pool, &schema, 2).await).await;
    })
    .await;
}

/// One instance reacting to 40 events of one batch: 40 rounds of writes, more than a
/// fixed-size join polls in order, and its commands are queued in the order of the
/// events all the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_many_reactions_of_one_instance_in_one_batch_keep_their_order() {
    use tessera_projections::Subscriber;
    in_schema(|pool, schema| async move {
        let process = open(&pool, &schema, 1).await;
        let events = crate::process_postgres::placed(&["o0"; 40]).await;
        assert_eq!(events.len(), 40);
        process
            .apply(Position::START, &events)
            .await
            .expect("one batch");
        let queued: Vec<uuid::Uuid> = process
            .pending(100)
            .await
            .expect("pending")
            .iter()
            .map(|e| e.issued.trigger.0)
            .collect();
        let triggers: Vec<uuid::Uuid> = events.iter().map(|e| e.id.0).collect();
        assert_eq!(queued, triggers, "queued in the order of the events");
    })
    .await;
}

/// The outbox scan starts after a low-water mark, which never passes a command queued
/// by a transaction still open. Here that transaction (T) got its xid after another (A)
/// that queued a command behind T's and committed first: T's xid is then above the
/// snapshot's `xmax` of the scans that follow (one past the latest completed xid), which
/// a mark waiting for that `xmax` would take as ended. T stays open while the outbox is
/// scanned again and again; once it commits, its command is due. Once the mark has
/// moved, what lies below it is not read again (shown by setting a settled command back
/// to pending by hand, which the store never does).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_the_outbox_scan_s_mark_waits_for_open_transactions() {
    in_schema(|pool, schema| async move {
        let process = open(&pool, &schema, 1).await;
        let store = MemoryStore::new();
        place(&store, &process, &orders(0..3)).await;
        let now = process.clock().now();
        dispatch_all(&process, now).await;
        // A copy of `instance`'s command under a new id, queued on `client`.
        let copy = |instance: &'static str| {
            format!(
                "INSERT INTO \"{schema}\".outbox \
                     (process, command_id, instance_id, issued, not_before) \
                 SELECT process, u, instance_id, jsonb_set(issued, '{{id}}', to_jsonb(u)), \
                        not_before \
                 FROM \"{schema}\".outbox, gen_random_uuid() AS u \
                 WHERE instance_id = '{instance}' RETURNING command_id, seq"
            )
        };
        let (a, t) = (pool.get().await.expect("a"), pool.get().await.expect("t"));
        a.batch_execute("BEGIN; SELECT pg_current_xact_id()")
            .await
            .expect("a has its xid");
        t.batch_execute("BEGIN").await.expect("begin t");
        let late = t.query_one(&copy("o0"), &[]).await.expect("t queues");
        let (late, late_seq): (uuid::Uuid, i64) = (late.get(0), late.get(1));
        a.query_one(&copy("o1"), &[]).await.expect("a queues");
        a.batch_execute("COMMIT").await.expect("a commits");
        for _ in 0..8 {
            dispatch_all(&process, now).await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            process.low_water() < late_seq,
            "the mark ({}) passed seq {late_seq}, queued by a transaction still open",
            process.low_water()
        );
        t.batch_execute("COMMIT").await.expect("t commits");
        let due = process.due(now, 10, &[]).await.expect("due");
        let ids: Vec<uuid::Uuid> = due.entries.iter().map(|e| e.issued.id.0).collect();
        assert_eq!(ids, [late], "the late command is due, and only it");
        // Scanned until the mark reaches the late command (other tests' transactions in
        // the cluster may hold the horizon back a while).
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while process.low_water() < late_seq - 1 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the mark never moved"
            );
            process.due(now, 10, &[]).await.expect("due");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(
            process.low_water(),
            late_seq - 1,
            "the mark passed a pending command"
        );
        pool.get()
            .await
            .expect("connection")
            .batch_execute(&format!(
                "UPDATE \"{schema}\".outbox SET state = 'pending' WHERE instance_id = 'o2'"
            ))
            .await
            .expect("o2's command set back to pending");
        let due = process.due(now, 10, &[]).await.expect("due");
        let ids: Vec<uuid::Uuid> = due.entries.iter().map(|e| e.issued.id.0).collect();
        assert_eq!(ids, [late], "the scan read below its mark");
    })
    .await;
}

/// Marks every command due at `now` dispatched.
async fn dispatch_all(process: &PgProcess<Burst>, now: std::time::SystemTime) {
    for entry in process.due(now, 10, &[]).await.expect("due").entries {
        process.mark_dispatched(&entry.issued).await.expect("mark");
    }
}
