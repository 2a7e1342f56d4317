//! Group commit: writer tasks drain the queue of appends, each running whatever is
//! waiting as one transaction, so concurrent appends share a commit (and its WAL flush)
//! while a lone append goes out at once.

use std::collections::VecDeque;
use std::sync::Arc;

use deadpool_postgres::{Object, Pool};
use tessera_core::StoreError;
use tokio::sync::{mpsc, watch, Mutex};

use crate::append::{Append, Applied};
use crate::error::{is_retryable_abort, is_unique_violation, map_pg, map_pool};
use crate::group::{self, GroupResult};
use crate::job::{copy, Job};
use crate::sql::Sql;

/// Splits `jobs` into the first append to each stream and the rest, both in order.
fn one_per_stream(jobs: Vec<Job>) -> (Vec<Job>, Vec<Job>) {
    if jobs.len() < 2 {
        return (jobs, Vec::new());
    }
    let mut seen = std::collections::HashSet::with_capacity(jobs.len());
    jobs.into_iter()
        .partition(|job| seen.insert(job.append.stream.clone()))
}

/// How many times a writer lets other tasks run, while its group is smaller than its
/// last one, before it sends the group. Callers whose appends just committed are then
/// able to queue their next one into this group instead of the one after (at 8 tasks:
/// 5,785-5,880 -> 7,090-7,498 commands/s). A writer whose last group held one append
/// (no concurrency) does not wait at all.
const GATHER_YIELDS: usize = 16;

/// Constraints whose violation means "this batch collided with stored events".
const EVENT_CONSTRAINTS: &[&str] = &["events_pkey", "events_stream_event_id_key"];

/// The queue of appends, shared by the writer tasks.
pub(crate) type Queue = Arc<Mutex<mpsc::Receiver<Job>>>;

/// One writer task's view of the store. Several run side by side, each with a
/// connection of its own, so the server can execute and flush groups in parallel.
#[derive(Clone)]
pub(crate) struct Writer {
    pub(crate) pool: Pool,
    pub(crate) sql: Arc<Sql>,
    pub(crate) endpoint: Arc<str>,
    pub(crate) appended: watch::Sender<u64>,
    /// Tells the notifier task that appends committed.
    pub(crate) committed: watch::Sender<u64>,
    pub(crate) max_group: usize,
}

impl Writer {
    /// Runs until every sender is gone: takes whatever is queued (waiting only when
    /// nothing is), runs it as one group, repeats.
    pub(crate) async fn run(self, queue: Queue) {
        let mut again: VecDeque<Job> = VecDeque::new();
        let mut connection: Option<Object> = None;
        let mut last = 1usize;
        loop {
            let mut jobs = Vec::new();
            match again.pop_front() {
                Some(job) if job.solo => jobs.push(job),
                Some(job) => {
                    jobs.push(job);
                    while jobs.len() < self.max_group && again.front().is_some_and(|j| !j.solo) {
                        jobs.extend(again.pop_front());
                    }
                }
                None => {
                    let mut queue = queue.lock().await;
                    match queue.recv().await {
                        Some(job) => jobs.push(job),
                        None => return,
                    }
                    let target = last.min(self.max_group);
                    let mut yields = 0;
                    loop {
                        while jobs.len() < self.max_group {
                            match queue.try_recv() {
                                Ok(job) => jobs.push(job),
                                Err(_) => break,
                            }
                        }
                        if jobs.len() >= target || yields >= GATHER_YIELDS {
                            break;
                        }
                        tokio::task::yield_now().await;
                        yields += 1;
                    }
                }
            }
            last = jobs.len();
            // One statement touches a stream once: later appends to a stream already in
            // the group wait for the next one, in their order.
            let (mut jobs, later) = one_per_stream(jobs);
            for job in later.into_iter().rev() {
                again.push_front(job);
            }
            // One lock order for stream rows across writers.
            jobs.sort_by(|a, b| a.append.stream.cmp(&b.append.stream));
            again.extend(self.run_group(&mut connection, jobs).await);
        }
    }

    /// Runs one group on the writer's connection (opened if there is none); returns
    /// the jobs to run again.
    async fn run_group(&self, connection: &mut Option<Object>, jobs: Vec<Job>) -> Vec<Job> {
        let client = match connection.take() {
            Some(client) => client,
            None => match self.open().await {
                Ok(client) => client,
                Err(e) => {
                    let n = jobs.len();
                    for job in jobs {
                        job.finish(Err(copy(&e)), n);
                    }
                    return Vec::new();
                }
            },
        };
        let n = jobs.len();
        let (skip, jobs): (Vec<Job>, Vec<Job>) =
            jobs.into_iter().partition(|j| j.append.cannot_apply());
        let mut refused = skip;
        let mut again = Vec::new();
        if !jobs.is_empty() {
            let appends: Vec<&Append> = jobs.iter().map(|j| &j.append).collect();
            match group::run(&client, &self.sql, &appends).await {
                GroupResult::Committed(results) => {
                    let mut any = false;
                    for (job, result) in jobs.into_iter().zip(results) {
                        match result {
                            Ok(Applied::Inserted(outcome)) => {
                                any = true;
                                job.finish(Ok(outcome), n);
                            }
                            Ok(Applied::Refused) => refused.push(job),
                            Err(e) => job.finish(Err(e), n),
                        }
                    }
                    if any {
                        self.appended.send_modify(|v| *v = v.wrapping_add(1));
                        self.committed.send_modify(|v| *v = v.wrapping_add(1));
                    }
                }
                GroupResult::Lost(e) => {
                    let _ = Object::take(client);
                    for job in jobs.into_iter().chain(refused) {
                        job.finish(Err(self.lost(&e)), n);
                    }
                    return Vec::new();
                }
                GroupResult::Aborted(error) => {
                    // The statement ran in its implicit transaction, which the server
                    // rolled back: the connection is idle again.
                    if jobs.len() > 1 {
                        // One append failed the whole statement: each on its own now.
                        tracing::debug!(group = n, error = %crate::error::describe(&error), "group rolled back");
                        again.extend(jobs.into_iter().map(|mut j| {
                            j.solo = true;
                            j
                        }));
                    } else if let Some(job) = jobs.into_iter().next() {
                        if is_unique_violation(&error, EVENT_CONSTRAINTS) {
                            refused.push(job);
                        } else if is_retryable_abort(&error) {
                            again.extend(self.attempt_again(job, n));
                        } else {
                            job.finish(Err(map_pg(error, "append", &self.endpoint)), n);
                        }
                    }
                }
            }
        }
        again.extend(self.settle(&client, refused, n).await);
        if client.is_closed() {
            let _ = Object::take(client);
        } else {
            *connection = Some(client);
        }
        again
    }

    /// A connection of the writer's own, kept across groups. Its statements use generic
    /// plans: the append statements' custom plans cost more to make (at every execution,
    /// ~0.5 ms for the group statement, seen in the server log's bind times) than they
    /// save, since the plan is the same for any parameters.
    async fn open(&self) -> Result<Object, StoreError> {
        let client = self
            .pool
            .get()
            .await
            .map_err(|e| map_pool(e, &self.endpoint))?;
        client
            .batch_execute("SET plan_cache_mode = force_generic_plan")
            .await
            .map_err(|e| map_pg(e, "preparing an append connection", &self.endpoint))?;
        Ok(client)
    }
}
