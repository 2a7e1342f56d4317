//! What an operator reads of a process store, on both stores alike: instances page by
//! page in the byte order of their ids (all, or of one status), and one instance's
//! commands in every state, its deadlines and the inputs it handled.

use std::sync::Arc;
use std::time::Duration;

use tessera_core::process::{InstanceId, Status};
use tessera_core::{EventReader, MemoryStore, Position, ReadAll};
use tessera_projections::process::{
    CommandState, DeadlineState, MemoryProcess, PgProcess, ProcessStore, Worker,
};

use crate::process_cases as cases;
use crate::process_postgres::in_schema;
use crate::process_support::{emit, record_up_to, Cmd, Ev, Fulfil, LedgerDispatcher};

fn placed(o: &str) -> Ev {
    Ev::Placed { order: o.into() }
}
fn reserved(o: &str) -> Ev {
    Ev::Reserved { order: o.into() }
}
fn charged(o: &str) -> Ev {
    Ev::Charged { order: o.into() }
}
fn declined(o: &str) -> Ev {
    Ev::Declined { order: o.into() }
}

/// Emits `events` and lets a runner record them.
async fn record<S: ProcessStore<Fulfil>>(store: &MemoryStore, process: &S, events: Vec<Ev>) {
    let mut last = Position::START;
    for e in events {
        last = emit(store, e).await;
    }
    record_up_to(store, process, last).await;
}

/// The 25 orders and the status each ends in: ids whose byte order differs from a
/// natural-language collation's (upper and lower case, `-` and `_`, digits of unequal
/// length), two fifths pending, a fifth each completed, compensating and failed.
fn orders() -> Vec<(String, Status)> {
    (0..25)
        .map(|i| {
            let prefix = ["Ord", "ord-", "ord_", "ord", "ORD"][i % 5];
            let status = match i % 5 {
                0 | 1 => Status::Pending,
                2 => Status::Completed,
                3 => Status::Compensating,
                _ => Status::Failed,
            };
            (format!("{prefix}{i}"), status)
        })
        .collect()
}

/// Pages through the instances (of `status`) `limit` at a time: every id seen, in order,
/// and the size of each page.
async fn page_through<S: ProcessStore<Fulfil>>(
    process: &S,
    status: Option<Status>,
    limit: usize,
) -> (Vec<String>, Vec<usize>) {
    let (mut ids, mut sizes) = (Vec::new(), Vec::new());
    let mut after: Option<InstanceId> = None;
    loop {
        let page = process
            .instance_page(status, after.as_ref(), limit)
            .await
            .expect("page");
        assert!(page.len() <= limit, "{} > {limit}", page.len());
        if let Some(s) = status {
            assert!(page.iter().all(|i| i.status == s), "only {s}");
        }
        sizes.push(page.len());
        ids.extend(page.iter().map(|i| i.id.to_string()));
        if page.len() < limit {
            return (ids, sizes);
        }
        after = page.last().map(|i| i.id.clone());
    }
}

/// 25 instances in four statuses, made by the runner and a worker round (the failed
/// ones' compensation is rejected). Pages of 7 hold each once, in the byte order of the
/// ids, with and without a status filter; so do pages of 2, and the full listings; a
/// page may start after an id that is not stored. A limit of 0 is an error.
pub async fn pages_hold_each_instance_once_in_id_order<S: ProcessStore<Fulfil>>(process: S) {
    let store = MemoryStore::new();
    let orders = orders();
    let first: Vec<Ev> = orders
        .iter()
        .flat_map(|(o, status)| match status {
            Status::Pending => vec![placed(o)],
            Status::Completed => vec![placed(o), reserved(o), charged(o)],
            Status::Failed => vec![placed(o), reserved(o), declined(o)],
            Status::Compensating => vec![],
        })
        .collect();
    record(&store, &process, first).await;
    let d = LedgerDispatcher::new(&store);
    d.rejecting.lock().expect("lock").insert("Release");
    Worker::new(process.clone(), Arc::new(d), cases::config())
        .run_once()
        .await
        .expect("worker round");
    // Compensating ones after the round, so their Release waits.
    let then: Vec<Ev> = orders
        .iter()
        .filter(|(_, s)| *s == Status::Compensating)
        .flat_map(|(o, _)| [placed(o), reserved(o), declined(o)])
        .collect();
    record(&store, &process, then).await;
    for (o, status) in &orders {
        let saga = process.instance(&o.as_str().into()).await.expect("load");
        assert_eq!(saga.expect("exists").status, *status, "{o}");
    }

    let sorted = |status: Option<Status>| {
        let mut ids: Vec<String> = orders
            .iter()
            .filter(|(_, s)| status.is_none_or(|want| *s == want))
            .map(|(o, _)| o.clone())
            .collect();
        ids.sort();
        ids
    };
    let (ids, sizes) = page_through(&process, None, 7).await;
    assert_eq!(ids, sorted(None));
    assert_eq!(sizes, [7, 7, 7, 4]);
    let listed = process.instances(None).await.expect("instances");
    let listed: Vec<String> = listed.iter().map(|i| i.id.to_string()).collect();
    assert_eq!(listed, sorted(None), "the full listing in the same order");
    for status in [
        Status::Pending,
        Status::Completed,
        Status::Compensating,
        Status::Failed,
    ] {
        let (ids, sizes) = page_through(&process, Some(status), 7).await;
        assert_eq!(ids, sorted(Some(status)), "{status}");
        let expected: &[usize] = if status == Status::Pending {
            &[7, 3]
        } else {
            &[5]
        };
        assert_eq!(sizes, expected, "{status}");
        let (ids, sizes) = page_through(&process, Some(status), 2).await;
        assert_eq!(ids, sorted(Some(status)), "{status} by 2");
        assert!(sizes.len() >= 3, "{status} by 2: {sizes:?}");
        let listed = process.instances(Some(status)).await.expect("instances");
        let listed: Vec<String> = listed.iter().map(|i| i.id.to_string()).collect();
        assert_eq!(listed, sorted(Some(status)), "{status} listed");
    }
    // After an id not stored: the ids after it.
    let after: InstanceId = "ord".into();
    let page = process
        .instance_page(None, Some(&after), 100)
        .await
        .expect("page");
    let page: Vec<String> = page.iter().map(|i| i.id.to_string()).collect();
    let expected: Vec<String> = sorted(None)
        .into_iter()
        .filter(|o| o.as_str() > "ord")
        .collect();
    assert_eq!(page, expected);

    let zero = process.instance_page(None, None, 0).await;
    let error = zero.expect_err("a limit of 0 is an error").to_string();
    assert!(error.contains("limit"), "{error}");
    let zero = process.instance_page(Some(Status::Pending), None, 0).await;
    assert!(zero.is_err(), "with a status too");
}

/// o1's Reserve failed once and was then dispatched, its Charge was rejected (which
/// started compensating: a Release waits) and its payment deadline is scheduled; it
/// handled its two events, in order. Its record shows all of that, nothing of o2, and
/// an unknown id has no record.
pub async fn a_record_shows_an_instances_commands_deadlines_and_inputs<S: ProcessStore<Fulfil>>(
    process: S,
) {
    let store = MemoryStore::new();
    let (o1, o2): (InstanceId, InstanceId) = ("o1".into(), "o2".into());
    record(&store, &process, vec![placed("o1"), placed("o2")]).await;
    let pending = process.pending(10).await.expect("pending");
    let reserve = pending
        .iter()
        .find(|e| e.issued.instance == o1)
        .expect("o1's Reserve");
    let now = process.clock().now();
    process
        .mark_failed(&reserve.issued, "Reserve service unavailable", Some(now))
        .await
        .expect("failed once");
    process
        .mark_dispatched(&reserve.issued)
        .await
        .expect("dispatched");
    // Handled later than the first event, on any clock's resolution.
    tokio::time::sleep(Duration::from_millis(5)).await;
    record(&store, &process, vec![reserved("o1")]).await;
    let pending = process.pending(10).await.expect("pending");
    let charge = pending
        .iter()
        .find(|e| e.issued.command == Cmd::Charge("o1".into()))
        .expect("o1's Charge");
    process
        .mark_failed(&charge.issued, "Charge refused", None)
        .await
        .expect("failed for good");
    let saga = process.instance(&o1).await.expect("load").expect("exists");
    assert_eq!(saga.status, Status::Compensating);

    let record = process
        .instance_record(&o1)
        .await
        .expect("record")
        .expect("o1 exists");
    let commands: Vec<(Cmd, CommandState, u32, Option<&str>)> = record
        .commands
        .iter()
        .map(|c| {
            assert_eq!(c.entry.issued.instance, o1);
            let error = c.entry.last_error.as_deref();
            (
                c.entry.issued.command.clone(),
                c.state,
                c.entry.attempts,
                error,
            )
        })
        .collect();
    assert_eq!(
        commands,
        [
            (Cmd::Reserve("o1".into()), CommandState::Dispatched, 2, None),
            (
                Cmd::Charge("o1".into()),
                CommandState::Failed,
                1,
                Some("Charge refused")
            ),
            (Cmd::Release("o1".into()), CommandState::Pending, 0, None),
        ]
    );
    let states: Vec<&str> = record.commands.iter().map(|c| c.state.as_str()).collect();
    assert_eq!(states, ["dispatched", "failed", "pending"]);

    let all = process.deadlines().await.expect("deadlines");
    let of_o1: Vec<_> = all.into_iter().filter(|d| d.instance == o1).collect();
    assert_eq!(record.deadlines, of_o1);
    assert_eq!(record.deadlines.len(), 1);
    assert_eq!(record.deadlines[0].key, "payment");
    assert_eq!(record.deadlines[0].state, DeadlineState::Scheduled);

    let events = store
        .read_all(ReadAll::after(Position::START, 100))
        .await
        .expect("read");
    let of_o1: Vec<uuid::Uuid> = events
        .iter()
        .filter(|e| {
            e.stream_id.as_str().ends_with("-o1") && !e.stream_id.as_str().starts_with("ledger")
        })
        .map(|e| e.id.0)
        .collect();
    assert_eq!(of_o1.len(), 2, "placed and reserved");
    let handled: Vec<uuid::Uuid> = record.handled.iter().map(|h| h.trigger_id).collect();
    assert_eq!(handled, of_o1, "oldest first");
    assert!(record.handled[0].handled_at < record.handled[1].handled_at);

    let other = process
        .instance_record(&o2)
        .await
        .expect("record")
        .expect("o2 exists");
    assert_eq!(other.commands.len(), 1, "its Reserve only");
    assert_eq!(other.commands[0].state, CommandState::Pending);
    assert!(other.deadlines.is_empty());
    assert_eq!(other.handled.len(), 1);

    let unknown = process.instance_record(&"nobody".into()).await;
    assert_eq!(unknown.expect("no error"), None);
}

#[tokio::test(start_paused = true)]
async fn pages_hold_each_instance_once_in_id_order_in_memory() {
    pages_hold_each_instance_once_in_id_order(MemoryProcess::new(Fulfil)).await;
}

#[tokio::test(start_paused = true)]
async fn a_record_shows_an_instances_commands_deadlines_and_inputs_in_memory() {
    a_record_shows_an_instances_commands_deadlines_and_inputs(MemoryProcess::new(Fulfil)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_pages_hold_each_instance_once_in_id_order() {
    in_schema(|pool, schema| async move {
        let process = PgProcess::new(pool, Fulfil, &schema)
            .await
            .expect("process store");
        pages_hold_each_instance_once_in_id_order(process).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_a_record_shows_an_instances_commands_deadlines_and_inputs() {
    in_schema(|pool, schema| async move {
        let process = PgProcess::new(pool, Fulfil, &schema)
            .await
            .expect("process store");
        a_record_shows_an_instances_commands_deadlines_and_inputs(process).await;
    })
    .await;
}
