//! The worker marks dispatched commands in batches (group commit), without weakening a
//! guarantee: every command marked once and each instance's in order; a crash or a
//! failed mark between dispatching and marking re-dispatches, and the effect lands once;
//! two workers (and a runner) on one store. On both stores.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use tessera_core::process::{Instance, InstanceId, Issued, ProcessManager, Status};
use tessera_core::{
    BoxError, CommandHandler, DomainEvent, EventAppender, EventFilter, ExpectedVersion,
    MemoryStore, NewEvent, Position, RecordedEvent, StreamId,
};
use tessera_projections::process::{
    Backlog, Clock, Deadline, DispatchError, Dispatcher, Due, MemoryProcess, OutboxEntry,
    PgProcess, ProcessConfig, ProcessStore, Pruned, Worker,
};
use tessera_projections::{ApplyError, Runner, RunnerConfig, Subscriber};
use tokio::sync::Notify;

use crate::process_burst::{Burst, Recorder};
use crate::process_cases as cases;
use crate::process_postgres::in_schema;
use crate::process_support::{emit, eventually, ledger, Cmd, Ev, Fulfil, Ledger, LedgerDispatcher};

/// One mark asked for: its commands' (instance, index), in the order given.
type Mark = Vec<(String, u32)>;

/// A process store that notes every mark asked of it, and can hold marks back (a crash
/// between dispatching and marking, once the worker is aborted) or fail them.
#[derive(Clone)]
struct Marking<S> {
    inner: S,
    /// Each mark asked for.
    calls: Arc<Mutex<Vec<Mark>>>,
    /// While set, a mark never returns.
    hold: Arc<AtomicBool>,
    /// Marks still to fail before reaching the store.
    fail: Arc<AtomicUsize>,
    /// Marks the store itself failed.
    errors: Arc<AtomicUsize>,
    /// `due` scans asked for.
    scans: Arc<AtomicUsize>,
}

impl<S> Marking<S> {
    fn new(inner: S) -> Self {
        Self {
            inner,
            calls: Arc::default(),
            hold: Arc::default(),
            fail: Arc::default(),
            errors: Arc::default(),
            scans: Arc::default(),
        }
    }

    fn scans(&self) -> usize {
        self.scans.load(Ordering::SeqCst)
    }

    fn calls(&self) -> Vec<Mark> {
        self.calls.lock().expect("lock").clone()
    }

    async fn mark<C>(
        &self,
        issued: &[Issued<C>],
        mark: impl std::future::Future<Output = Result<(), BoxError>>,
    ) -> Result<(), BoxError> {
        let call = issued
            .iter()
            .map(|i| (i.instance.to_string(), i.index))
            .collect();
        self.calls.lock().expect("lock").push(call);
        if self.hold.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        let failing = self
            .fail
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        if failing.is_ok() {
            return Err("connection lost before the mark".into());
        }
        let marked = mark.await;
        if marked.is_err() {
            self.errors.fetch_add(1, Ordering::SeqCst);
        }
        marked
    }
}

impl<S: Subscriber + Clone> Subscriber for Marking<S> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn filter(&self) -> EventFilter {
        self.inner.filter()
    }

    async fn checkpoint(&self) -> Result<Position, BoxError> {
        self.inner.checkpoint().await
    }

    async fn apply(&self, from: Position, batch: &[RecordedEvent]) -> Result<(), ApplyError> {
        self.inner.apply(from, batch).await
    }
}

impl<P: ProcessManager, S: ProcessStore<P>> ProcessStore<P> for Marking<S> {
    fn clock(&self) -> Clock {
        self.inner.clock()
    }

    fn wakeup(&self) -> Arc<Notify> {
        self.inner.wakeup()
    }

    async fn pending(&self, limit: usize) -> Result<Vec<OutboxEntry<P::Command>>, BoxError> {
        self.inner.pending(limit).await
    }

    async fn backlog(&self) -> Result<Backlog, BoxError> {
        self.inner.backlog().await
    }

    async fn due(
        &self,
        now: SystemTime,
        limit: usize,
        busy: &[InstanceId],
    ) -> Result<Due<P::Command>, BoxError> {
        self.scans.fetch_add(1, Ordering::SeqCst);
        self.inner.due(now, limit, busy).await
    }

    async fn mark_dispatched(&self, issued: &Issued<P::Command>) -> Result<(), BoxError> {
        let one = std::slice::from_ref(issued);
        self.mark(one, self.inner.mark_dispatched(issued)).await
    }

    async fn mark_all_dispatched(&self, issued: &[Issued<P::Command>]) -> Result<(), BoxError> {
        self.mark(issued, self.inner.mark_all_dispatched(issued))
            .await
    }

    async fn mark_failed(
        &self,
        issued: &Issued<P::Command>,
        error: &str,
        retry_at: Option<SystemTime>,
    ) -> Result<(), BoxError> {
        self.inner.mark_failed(issued, error, retry_at).await
    }

    async fn fire_due(&self, now: SystemTime, limit: usize) -> Result<usize, BoxError> {
        self.inner.fire_due(now, limit).await
    }

    async fn prune(&self, before: SystemTime, limit: usize) -> Result<Pruned, BoxError> {
        self.inner.prune(before, limit).await
    }

    async fn instance(&self, id: &InstanceId) -> Result<Option<Instance<P>>, BoxError> {
        self.inner.instance(id).await
    }

    async fn instances(&self, status: Option<Status>) -> Result<Vec<Instance<P>>, BoxError> {
        self.inner.instances(status).await
    }

    async fn deadlines(&self) -> Result<Vec<Deadline>, BoxError> {
        self.inner.deadlines().await
    }
}

fn orders(n: u32) -> Vec<String> {
    (0..n).map(|i| format!("o{i}")).collect()
}

fn config() -> ProcessConfig {
    ProcessConfig {
        max_concurrent_dispatches: 8,
        ..cases::config()
    }
}

/// Places `orders` and lets a runner record them.
async fn place<S: Subscriber + Clone>(store: &MemoryStore, process: &S, orders: &[String]) {
    let mut last = Position::START;
    for order in orders {
        let order = order.clone();
        last = emit(store, Ev::Placed { order }).await;
    }
    crate::process_support::record_up_to(store, process, last).await;
}

/// 40 instances of three commands each, dispatched 8 at a time by a spawned worker:
/// marks are coalesced (fewer marks than commands, some of several instances), every
/// command is marked once, each instance's in order, and none went before the previous
/// one of its instance was marked.
async fn many_instances_are_marked_once_in_order<S: ProcessStore<Burst>>(process: S) {
    let store = MemoryStore::new();
    let process = Marking::new(process);
    place(&store, &process, &orders(40)).await;
    let d = Recorder::new(process.clone(), Duration::from_millis(20));
    let worker = Worker::new(process.clone(), Arc::new(d.clone()), config()).spawn();
    eventually("every step landed", || async {
        d.landed.lock().expect("lock").len() == 120
    })
    .await;
    eventually("every step marked", || async {
        process.pending(1000).await.expect("pending").is_empty()
    })
    .await;
    worker.stop().await;
    assert_eq!(*d.violations.lock().expect("lock"), Vec::<String>::new());
    let calls = process.calls();
    let mut marked: HashMap<String, Vec<u32>> = HashMap::new();
    for (instance, index) in calls.iter().flatten() {
        marked.entry(instance.clone()).or_default().push(*index);
    }
    for order in orders(40) {
        assert_eq!(d.steps_of(&order), [1, 2, 3], "{order} dispatched");
        assert_eq!(
            marked[&order],
            [0, 1, 2],
            "{order} marked once each, in order"
        );
    }
    assert!(
        calls.len() < 120 && calls.iter().any(|c| c.len() > 1),
        "marks coalesced across instances: {} marks for 120 commands",
        calls.len()
    );
    assert!(
        calls.iter().all(|c| {
            let instances: HashSet<&String> = c.iter().map(|(i, _)| i).collect();
            instances.len() == c.len()
        }),
        "one command per instance in a mark"
    );
}

/// The worker's configuration with a tick an hour away: what it claims, it claims on
/// a wake-up or a landing.
fn slow_ticks() -> ProcessConfig {
    ProcessConfig {
        poll_interval: Duration::from_secs(3600),
        ..config()
    }
}

/// Each instance's second command waits behind its first: once the first lands, the
/// worker claims it at once, not at its next tick.
async fn a_command_behind_a_landing_goes_at_once<S: ProcessStore<Burst>>(process: S) {
    let store = MemoryStore::new();
    place(&store, &process, &orders(3)).await;
    let d = Recorder::new(process.clone(), Duration::from_millis(5));
    let worker = Worker::new(process.clone(), Arc::new(d.clone()), slow_ticks()).spawn();
    eventually("both steps of every instance landed", || async {
        d.landed.lock().expect("lock").len() == 6
    })
    .await;
    worker.stop().await;
    assert_eq!(*d.violations.lock().expect("lock"), Vec::<String>::new());
}

/// Orders arrive one at a time, each dispatched and marked before the next: a landing
/// that leaves nothing pending claims nothing, so an order costs the worker one scan
/// (on its wake-up), not two.
async fn a_landing_that_leaves_nothing_pending_scans_no_more<S: ProcessStore<Burst>>(process: S) {
    let store = MemoryStore::new();
    let process = Marking::new(process);
    let d = Recorder::new(process.clone(), Duration::ZERO);
    let worker = Worker::new(process.clone(), Arc::new(d.clone()), slow_ticks()).spawn();
    eventually("the first scan", || async { process.scans() >= 1 }).await;
    let before = process.scans();
    for n in 0..5 {
        place(&store, &process, &[format!("o{n}")]).await;
        eventually("landed and marked", || async {
            d.landed.lock().expect("lock").len() == n + 1
                && process.pending(10).await.expect("pending").is_empty()
        })
        .await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    worker.stop().await;
    let scans = process.scans() - before;
    assert!(
        scans <= 6,
        "{scans} scans for 5 orders landing one at a time"
    );
}

/// The worker dies while its batched mark is under way (held back, then aborted): the
/// commands were dispatched and stay pending; the next worker dispatches them again, and
/// each lands once through its idempotency key.
async fn a_crash_before_the_batched_mark_redispatches_once<S: ProcessStore<Fulfil>>(process: S) {
    let store = MemoryStore::new();
    let process = Marking::new(process);
    place(&store, &process, &orders(6)).await;
    process.hold.store(true, Ordering::SeqCst);
    let first = LedgerDispatcher::new(&store);
    let worker = Worker::new(process.clone(), Arc::new(first.clone()), config()).spawn();
    eventually("every Reserve landed, and a mark is under way", || async {
        first.attempts().len() == 6 && !process.calls().is_empty()
    })
    .await;
    worker.abort().await;
    assert_eq!(
        process.pending(10).await.expect("pending").len(),
        6,
        "none marked"
    );
    process.hold.store(false, Ordering::SeqCst);
    let again = LedgerDispatcher::new(&store);
    let worker = Worker::new(process.clone(), Arc::new(again.clone()), config()).spawn();
    eventually("outbox drained", || async {
        process.pending(10).await.expect("pending").is_empty()
    })
    .await;
    worker.stop().await;
    assert_eq!(again.attempts(), ["Reserve"; 6], "each re-dispatched");
    for order in orders(6) {
        assert_eq!(ledger(&store, &order).await, ["Reserve"], "{order}: once");
    }
}

/// `fails` marks fail (the connection drops before the transaction) while `n` orders'
/// commands go: the commands they carried are dispatched again, land once, and are
/// marked by a later mark. With `config`'s tick an hour away, what claims them again is
/// the worker's retry after a failed mark, not the tick.
async fn a_failed_mark_redispatches_once<S: ProcessStore<Fulfil>>(
    process: S,
    (n, fails): (u32, usize),
    config: ProcessConfig,
) {
    let store = MemoryStore::new();
    let process = Marking::new(process);
    place(&store, &process, &orders(n)).await;
    process.fail.store(fails, Ordering::SeqCst);
    let d = LedgerDispatcher::new(&store);
    let worker = Worker::new(process.clone(), Arc::new(d.clone()), config).spawn();
    eventually("outbox drained", || async {
        process.pending(10).await.expect("pending").is_empty()
    })
    .await;
    worker.stop().await;
    assert_eq!(process.fail.load(Ordering::SeqCst), 0, "every failure hit");
    let attempts = d.attempts().len();
    assert!(
        attempts > n as usize,
        "{attempts} dispatches: some went again"
    );
    for order in orders(n) {
        assert_eq!(ledger(&store, &order).await, ["Reserve"], "{order}: once");
    }
}

/// Dispatches to the ledger (idempotency key), and answers Reserve and Charge with the
/// event the saga waits for next, appended once (its id is the command's).
#[derive(Clone)]
struct Flow {
    store: MemoryStore,
    handler: CommandHandler<Ledger, MemoryStore>,
}

#[async_trait]
impl Dispatcher<Cmd> for Flow {
    async fn dispatch(&self, issued: &Issued<Cmd>) -> Result<(), DispatchError> {
        let (name, order) = (issued.command.name(), issued.command.order().to_owned());
        self.handler
            .handle_with(&order, &name.to_owned(), issued.options())
            .await
            .map_err(DispatchError::transient)?;
        let (category, next) = match issued.command {
            Cmd::Reserve(_) => (
                "inventory",
                Ev::Reserved {
                    order: order.clone(),
                },
            ),
            Cmd::Charge(_) => (
                "payment",
                Ev::Charged {
                    order: order.clone(),
                },
            ),
            _ => return Ok(()),
        };
        let (ty, data) = next.encode().map_err(DispatchError::rejected)?;
        let stream = StreamId::from_parts(category, &order).map_err(DispatchError::rejected)?;
        let event = NewEvent::new(ty, data).with_id(issued.id);
        self.store
            .append(&stream, ExpectedVersion::NoStream, vec![event])
            .await
            .map_err(DispatchError::transient)?;
        Ok(())
    }
}

/// A runner and two workers over one store (two handles of it, as two processes would
/// have), 30 orders through reserve → charge → confirm: every saga completes, each
/// order's commands land once and in order, and no mark failed (no deadlock between
/// the marks of the two workers and the runner's batches).
async fn two_workers_and_a_runner_share_one_store<S: ProcessStore<Fulfil>>(one: S, two: S) {
    let store = MemoryStore::new();
    let (one, two) = (Marking::new(one), Marking::new(two));
    let flow = Flow {
        store: store.clone(),
        handler: CommandHandler::new(store.clone(), ()),
    };
    let runner_config = RunnerConfig {
        batch_size: 16,
        ..RunnerConfig::default()
    };
    let runner = Runner::new(store.clone(), one.clone(), runner_config).spawn();
    let workers = [
        Worker::new(one.clone(), Arc::new(flow.clone()), config()).spawn(),
        Worker::new(two.clone(), Arc::new(flow.clone()), config()).spawn(),
    ];
    for order in orders(30) {
        emit(&store, Ev::Placed { order }).await;
    }
    eventually("every saga completed", || async {
        let done = one.instances(Some(Status::Completed)).await;
        done.expect("instances").len() == 30
    })
    .await;
    eventually("outbox drained", || async {
        one.pending(10).await.expect("pending").is_empty()
    })
    .await;
    runner.stop().await;
    for worker in workers {
        worker.stop().await;
    }
    for order in orders(30) {
        let landed = ledger(&store, &order).await;
        assert_eq!(landed, ["Reserve", "Charge", "Confirm"], "{order}");
    }
    for (name, store) in [("one", &one), ("two", &two)] {
        assert_eq!(
            store.errors.load(Ordering::SeqCst),
            0,
            "worker {name}: a mark failed"
        );
    }
    let marks = one.calls().len() + two.calls().len();
    assert!(marks > 0, "both workers share the marking");
}

#[tokio::test(start_paused = true)]
async fn many_instances_are_marked_once_in_order_in_batches() {
    many_instances_are_marked_once_in_order(MemoryProcess::new(Burst { steps: 3 })).await;
}

#[tokio::test(start_paused = true)]
async fn a_crash_before_the_batched_mark_redispatches_and_lands_once() {
    a_crash_before_the_batched_mark_redispatches_once(MemoryProcess::new(Fulfil)).await;
}

#[tokio::test(start_paused = true)]
async fn a_failed_batched_mark_redispatches_and_lands_once() {
    a_failed_mark_redispatches_once(MemoryProcess::new(Fulfil), (6, 2), config()).await;
}

#[tokio::test(start_paused = true)]
async fn two_workers_and_a_runner_on_one_memory_store() {
    let process = MemoryProcess::new(Fulfil);
    two_workers_and_a_runner_share_one_store(process.clone(), process).await;
}

async fn open<P: ProcessManager>(
    pool: &deadpool_postgres::Pool,
    schema: &str,
    p: P,
) -> PgProcess<P> {
    PgProcess::new(pool.clone(), p, schema)
        .await
        .expect("process store")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_many_instances_are_marked_once_in_order_in_batches() {
    in_schema(|pool, schema| async move {
        let process = open(&pool, &schema, Burst { steps: 3 }).await;
        many_instances_are_marked_once_in_order(process).await;
        let client = pool.get().await.expect("connection");
        let row = client
            .query_one(
                &format!(
                    "SELECT count(*) FILTER (WHERE state = 'dispatched' AND attempts = 1), \
                     count(*) FROM \"{schema}\".outbox"
                ),
                &[],
            )
            .await
            .expect("outbox");
        let (once, all): (i64, i64) = (row.get(0), row.get(1));
        assert_eq!(
            (once, all),
            (120, 120),
            "every command dispatched, marked once"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_a_crash_before_the_batched_mark_redispatches_and_lands_once() {
    in_schema(|pool, schema| async move {
        let process = open(&pool, &schema, Fulfil).await;
        a_crash_before_the_batched_mark_redispatches_once(process).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_a_failed_batched_mark_redispatches_and_lands_once() {
    in_schema(|pool, schema| async move {
        let process = open(&pool, &schema, Fulfil).await;
        a_failed_mark_redispatches_once(process, (6, 2), config()).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_two_workers_and_a_runner_on_one_store() {
    in_schema(|pool, schema| async move {
        let one = open(&pool, &schema, Fulfil).await;
        let two = open(&pool, &schema, Fulfil).await;
        two_workers_and_a_runner_share_one_store(one, two).await;
    })
    .await;
}

/// The events of `store` after `from`, and the position of the last.
async fn after(store: &MemoryStore, from: Position) -> (Vec<RecordedEvent>, Position) {
    use tessera_core::EventReader;
    let batch = store
        .read_all(tessera_core::ReadAll::after(from, usize::MAX))
        .await
        .expect("read the log");
    let last = batch.last().map_or(from, |e| e.position);
    (batch, last)
}

/// A runner's batch and a worker's mark take the same instances at the same moment, the
/// batch's events naming them in the reverse order of their ids. The forward marks here
/// lock no instance (they may not wait for the batch at all); the compensation marks of
/// the last step lock their instances in id order, as the batch does, so neither waits
/// for the other while holding what the other needs. Taking a batch's instances in the
/// order of its events instead deadlocks there (PostgreSQL aborts one transaction after
/// `deadlock_timeout`, and this test sees its error).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_a_batch_and_a_mark_over_the_same_instances_never_deadlock() {
    in_schema(|pool, schema| async move {
        let process = open(&pool, &schema, Fulfil).await;
        let store = MemoryStore::new();
        let mut at = Position::START;
        for round in 0..6 {
            let orders: Vec<String> = (0..40).map(|i| format!("r{round}-o{i:03}")).collect();
            for order in &orders {
                emit(
                    &store,
                    Ev::Placed {
                        order: order.clone(),
                    },
                )
                .await;
            }
            let (placed, placed_at) = after(&store, at).await;
            process
                .apply(at, &placed)
                .await
                .expect("placements applied");
            at = placed_at;
            let reserves: Vec<Issued<Cmd>> = process
                .pending(1_000)
                .await
                .expect("the outbox")
                .into_iter()
                .map(|entry| entry.issued)
                .filter(|issued| matches!(issued.command, Cmd::Reserve(_)))
                .collect();
            assert_eq!(reserves.len(), 40, "round {round}: one Reserve per order");
            for order in orders.iter().rev() {
                emit(
                    &store,
                    Ev::Reserved {
                        order: order.clone(),
                    },
                )
                .await;
            }
            let (reserved, reserved_at) = after(&store, at).await;
            let (applied, marked) = tokio::join!(
                process.apply(at, &reserved),
                process.mark_all_dispatched(&reserves),
            );
            applied.unwrap_or_else(|e| panic!("round {round}: the batch: {e}"));
            marked.unwrap_or_else(|e| panic!("round {round}: the mark: {e}"));
            at = reserved_at;
        }
        let charges = process.pending(1_000).await.expect("the outbox");
        assert_eq!(
            charges.len(),
            240,
            "a Charge per order, every Reserve marked"
        );
        assert!(charges
            .iter()
            .all(|e| matches!(e.issued.command, Cmd::Charge(_))));
    })
    .await;
}

/// Three orders placed in `process`: their `Reserve` commands, pending.
async fn three_reserves(process: &PgProcess<Fulfil>) -> Vec<Issued<Cmd>> {
    let store = MemoryStore::new();
    for order in ["m-a", "m-b", "m-c"] {
        let order = order.to_owned();
        emit(&store, Ev::Placed { order }).await;
    }
    let (placed, _) = after(&store, Position::START).await;
    process
        .apply(Position::START, &placed)
        .await
        .expect("placements applied");
    let reserves: Vec<Issued<Cmd>> = process
        .pending(100)
        .await
        .expect("the outbox")
        .into_iter()
        .map(|entry| entry.issued)
        .collect();
    assert_eq!(reserves.len(), 3, "one Reserve per order");
    reserves
}

/// The state of each outbox row, by command id.
async fn states(pool: &deadpool_postgres::Pool, schema: &str) -> HashMap<uuid::Uuid, String> {
    let client = pool.get().await.expect("connection");
    let sql = format!("SELECT command_id, state FROM \"{schema}\".outbox");
    let rows = client.query(&sql, &[]).await.expect("outbox");
    rows.iter().map(|r| (r.get(0), r.get(1))).collect()
}

/// A worker's mark of forward commands does not wait for their instances: with another
/// transaction holding every instance's row (as a runner's batch over them does), the
/// mark lands at once. Marking under the instances' locks made marks and batches queue
/// behind each other in a sale.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_a_forward_mark_does_not_wait_for_its_instances() {
    in_schema(|pool, schema| async move {
        let process = open(&pool, &schema, Fulfil).await;
        let reserves = three_reserves(&process).await;
        let mut holder = pool.get().await.expect("connection");
        let batch = holder.transaction().await.expect("a transaction");
        let sql = format!("SELECT instance_id FROM \"{schema}\".instances FOR UPDATE");
        let locked = batch.query(&sql, &[]).await.expect("lock the instances");
        assert_eq!(locked.len(), 3, "every instance locked");
        tokio::time::timeout(
            Duration::from_secs(10),
            process.mark_all_dispatched(&reserves),
        )
        .await
        .expect("the mark waits for no instance lock")
        .expect("the mark");
        batch.rollback().await.expect("rollback");
        let states = states(&pool, &schema).await;
        for r in &reserves {
            assert_eq!(states[&r.id.0], "dispatched", "{:?}", r.instance);
        }
    })
    .await;
}

/// A row another transaction holds is not skipped for good: the mark waits for that
/// transaction alone and then marks the row, or leaves it as that transaction left it
/// (a runner that discarded the command).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_a_mark_of_a_held_row_waits_for_its_holder_and_then_decides() {
    for commits in [false, true] {
        in_schema(|pool, schema| async move {
            let process = open(&pool, &schema, Fulfil).await;
            let reserves = three_reserves(&process).await;
            let id = reserves[0].id.0;
            let mut holder = pool.get().await.expect("connection");
            let other = holder.transaction().await.expect("a transaction");
            let sql =
                format!("UPDATE \"{schema}\".outbox SET state = 'discarded' WHERE command_id = $1");
            assert_eq!(other.execute(&sql, &[&id]).await.expect("hold the row"), 1);
            let marking = tokio::spawn({
                let (process, reserves) = (process.clone(), reserves.clone());
                async move { process.mark_all_dispatched(&reserves).await }
            });
            // Rows nobody holds are marked first, while the held one waits.
            eventually("the rows nobody holds marked", || {
                let (pool, schema, reserves) = (pool.clone(), schema.clone(), reserves.clone());
                async move {
                    let free = states(&pool, &schema).await;
                    reserves[1..].iter().all(|r| free[&r.id.0] == "dispatched")
                }
            })
            .await;
            tokio::time::sleep(Duration::from_millis(100)).await;
            if marking.is_finished() {
                panic!("the mark waits for the row's holder: {:?}", marking.await);
            }
            if commits {
                other.commit().await.expect("commit");
            } else {
                other.rollback().await.expect("rollback");
            }
            tokio::time::timeout(Duration::from_secs(10), marking)
                .await
                .expect("the mark lands once the holder ends")
                .expect("the mark task")
                .expect("the mark");
            let expected = if commits { "discarded" } else { "dispatched" };
            assert_eq!(
                states(&pool, &schema).await[&id],
                expected,
                "holder committed: {commits}"
            );
        })
        .await;
    }
}

/// The saga's pending commands of `kind` (by name).
async fn pending_of(process: &PgProcess<Fulfil>, kind: &str) -> Vec<Issued<Cmd>> {
    let pending = process.pending(10_000).await.expect("the outbox");
    pending
        .into_iter()
        .map(|entry| entry.issued)
        .filter(|issued| issued.command.name() == kind)
        .collect()
}

/// Compensation marks lock their instances (a dispatched compensation changes its
/// instance): racing a runner's batch whose events name the same instances in the
/// reverse order of their ids, both lock in id order and neither is aborted as a
/// deadlock. Taking a batch's instances in the order of its events deadlocks here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_a_batch_and_a_compensation_mark_over_the_same_instances_never_deadlock() {
    in_schema(|pool, schema| async move {
        let process = open(&pool, &schema, Fulfil).await;
        let store = MemoryStore::new();
        let mut at = Position::START;
        for round in 0..4 {
            let orders: Vec<String> = (0..30).map(|i| format!("c{round}-o{i:03}")).collect();
            let steps: [fn(String) -> Ev; 3] = [
                |order| Ev::Placed { order },
                |order| Ev::Reserved { order },
                |order| Ev::Declined { order },
            ];
            for (n, step) in steps.iter().enumerate() {
                for order in &orders {
                    emit(&store, step(order.clone())).await;
                }
                let (batch, last) = after(&store, at).await;
                process.apply(at, &batch).await.expect("a step applied");
                at = last;
                if n == 0 {
                    let reserves = pending_of(&process, "Reserve").await;
                    process
                        .mark_all_dispatched(&reserves)
                        .await
                        .expect("reserves marked");
                }
            }
            let releases = pending_of(&process, "Release").await;
            assert_eq!(
                releases.len(),
                30,
                "round {round}: a Release per declined order"
            );
            for order in orders.iter().rev() {
                let order = order.clone();
                emit(&store, Ev::Cancelled { order }).await;
            }
            let (cancelled, last) = after(&store, at).await;
            let (applied, marked) = tokio::join!(
                process.apply(at, &cancelled),
                process.mark_all_dispatched(&releases),
            );
            applied.unwrap_or_else(|e| panic!("round {round}: the batch: {e}"));
            marked.unwrap_or_else(|e| panic!("round {round}: the mark: {e}"));
            at = last;
            let states = states(&pool, &schema).await;
            for r in &releases {
                assert_ne!(
                    states[&r.id.0], "pending",
                    "round {round}: {:?}",
                    r.instance
                );
            }
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_behind_a_landing_goes_at_once_in_memory() {
    a_command_behind_a_landing_goes_at_once(MemoryProcess::new(Burst { steps: 2 })).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_a_command_behind_a_landing_goes_at_once() {
    in_schema(|pool, schema| async move {
        let process = open(&pool, &schema, Burst { steps: 2 }).await;
        a_command_behind_a_landing_goes_at_once(process).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_landing_that_leaves_nothing_pending_scans_no_more_in_memory() {
    let process = MemoryProcess::new(Burst { steps: 1 });
    a_landing_that_leaves_nothing_pending_scans_no_more(process).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_a_landing_that_leaves_nothing_pending_scans_no_more() {
    in_schema(|pool, schema| async move {
        let process = open(&pool, &schema, Burst { steps: 1 }).await;
        a_landing_that_leaves_nothing_pending_scans_no_more(process).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_mark_is_claimed_again_before_the_tick_in_memory() {
    let process = MemoryProcess::new(Fulfil);
    a_failed_mark_redispatches_once(process, (1, 1), slow_ticks()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_a_failed_mark_is_claimed_again_before_the_tick() {
    in_schema(|pool, schema| async move {
        let process = open(&pool, &schema, Fulfil).await;
        a_failed_mark_redispatches_once(process, (1, 1), slow_ticks()).await;
    })
    .await;
}
