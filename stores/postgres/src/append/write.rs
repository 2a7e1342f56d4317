//! Running one group of appends on an append connection and answering each of them
//! by how its statement ended (who leads a group, and when, is [`super::lead`]).

use std::sync::Arc;

use deadpool_postgres::{Object, Pool};
use tessera_core::StoreError;
use tokio::sync::watch;

use super::encode::{Append, Applied};
use super::queue::{copy, Job};
use super::settle::settle;
use super::statement::{self, GroupResult};
use crate::error::{is_retryable_abort, is_unique_violation, map_append, map_pg, map_pool};
use crate::sql::Sql;

/// Constraints whose violation means "this batch collided with stored events".
const EVENT_CONSTRAINTS: &[&str] = &["events_pkey", "events_stream_event_id_key"];

/// What running a group needs of the store. Groups run side by side, one per append
/// connection, so the server can execute and flush them in parallel.
#[derive(Clone)]
pub(crate) struct Writer {
    pub(crate) pool: Pool,
    pub(crate) sql: Arc<Sql>,
    pub(crate) endpoint: Arc<str>,
    pub(crate) appended: watch::Sender<u64>,
    /// Told when appends committed: it sends other processes the hint.
    pub(crate) notifier: Arc<crate::notify::Notifier>,
    /// This store's channel and token, for the notifier.
    pub(crate) hint: Arc<crate::notify::Hint>,
    pub(crate) max_group: usize,
}

impl Writer {
    /// Runs one group on an append connection (opened if there is none); returns the
    /// jobs to run again.
    pub(super) async fn run_group(
        &self,
        connection: &mut Option<Object>,
        jobs: Vec<Job>,
    ) -> Vec<Job> {
        let held = InUse(Some(match connection.take() {
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
        }));
        let Some(client) = held.0.as_ref() else {
            return Vec::new(); // set just above
        };
        let n = jobs.len();
        let (skip, jobs): (Vec<Job>, Vec<Job>) =
            jobs.into_iter().partition(|j| j.append.cannot_apply());
        let mut refused = skip;
        let mut again = Vec::new();
        if !jobs.is_empty() {
            let appends: Vec<&Append> = jobs.iter().map(|j| &j.append).collect();
            match statement::run(client, &self.sql, &appends).await {
                GroupResult::Committed(results) => {
                    // Events went in if any append did, or may have (a result that could
                    // not be read): wake the subscribers either way.
                    let mut any = false;
                    for (job, result) in jobs.into_iter().zip(results) {
                        match result {
                            Ok(Applied::Inserted(outcome)) => {
                                any = true;
                                job.finish(Ok((outcome, tessera_core::Landing::Written)), n);
                            }
                            Ok(Applied::Refused) => refused.push(job),
                            Err(e) => {
                                any = true;
                                job.finish(Err(e), n);
                            }
                        }
                    }
                    if any {
                        self.appended.send_modify(|v| *v = v.wrapping_add(1));
                        self.notifier.committed(&self.hint, &self.pool);
                    }
                }
                GroupResult::Lost(e) => {
                    drop(held); // detached from the pool, never reused
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
                            again.extend(job.attempt_again(n));
                        } else {
                            job.finish(Err(map_append(error, &self.endpoint)), n);
                        }
                    }
                }
            }
        }
        again.extend(settle(client, &self.sql, &self.endpoint, refused, n).await);
        if !client.is_closed() {
            *connection = held.give_back();
        }
        again
    }

    /// An append connection, kept across groups. Its statements use generic
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

    fn lost(&self, e: &tokio_postgres::Error) -> StoreError {
        StoreError::Unavailable {
            message: format!(
                "connection to PostgreSQL at {} lost during append (outcome unknown: retry with the same event ids): {}",
                self.endpoint,
                crate::error::describe(e)
            ),
            source: None,
        }
    }
}

/// An append connection out of its slot while a group runs on it. Unless given back,
/// it is detached from the pool when dropped (a group that panicked, a connection that
/// closed or was lost: its state is unknown), so it never serves another user.
struct InUse(Option<Object>);

impl InUse {
    fn give_back(mut self) -> Option<Object> {
        self.0.take()
    }
}

impl Drop for InUse {
    fn drop(&mut self) {
        if let Some(client) = self.0.take() {
            let _ = Object::take(client);
        }
    }
}
