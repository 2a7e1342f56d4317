//! Settling refused appends with the idempotency rules, and retries.

use deadpool_postgres::Object;
use postgres_types::ToSql;
use tessera_core::StoreError;
use tokio_postgres::Row;

use crate::conflict::{self, Verdict};
use crate::error::map_pg;
use crate::group;
use crate::job::{copy, Job};
use crate::writer::Writer;

/// Times a refused append whose stream then met the expectation is run again.
const MAX_ATTEMPTS: u32 = 8;

impl Writer {
    /// Decides on refused appends with the idempotency rules (their checks pipelined).
    pub(crate) async fn settle(&self, client: &Object, jobs: Vec<Job>, n: usize) -> Vec<Job> {
        if jobs.is_empty() {
            return Vec::new();
        }
        let statement = match client.prepare_cached(&self.sql.conflict).await {
            Ok(statement) => statement,
            Err(e) => {
                let e = map_pg(e, "checking a refused append", &self.endpoint);
                for job in jobs {
                    job.finish(Err(copy(&e)), n);
                }
                return Vec::new();
            }
        };
        let params: Vec<[&(dyn ToSql + Sync); 2]> = jobs
            .iter()
            .map(|j| [&j.append.name as &(dyn ToSql + Sync), &j.append.ids])
            .collect();
        let checks = params
            .iter()
            .map(|p| Box::pin(client.query(&statement, p)) as group::Step<'_, Vec<Row>>)
            .collect();
        let results = group::join_in_order(checks).await;
        let mut again = Vec::new();
        for (job, rows) in jobs.into_iter().zip(results) {
            match rows {
                Ok(rows) => match conflict::verdict(&job.append, &rows) {
                    Verdict::Repeat(outcome) => job.finish(Ok(outcome), n),
                    Verdict::Refused(e) => job.finish(Err(e), n),
                    Verdict::Retry => again.extend(self.attempt_again(job, n)),
                },
                Err(e) => job.finish(
                    Err(map_pg(e, "checking a refused append", &self.endpoint)),
                    n,
                ),
            }
        }
        again
    }

    pub(crate) fn attempt_again(&self, mut job: Job, n: usize) -> Option<Job> {
        job.attempts += 1;
        if job.attempts < MAX_ATTEMPTS {
            return Some(job);
        }
        let stream = job.append.stream.clone();
        job.finish(
            Err(StoreError::Backend {
                message: format!(
                    "append to stream {stream} kept conflicting with concurrent writers"
                ),
                source: None,
            }),
            n,
        );
        None
    }

    pub(crate) fn lost(&self, e: &tokio_postgres::Error) -> StoreError {
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
