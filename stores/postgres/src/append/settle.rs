//! Settling the appends a statement refused (it wrote nothing for them): each one's
//! check against what is stored (`sql/conflict.sql`) is sent on the connection, all of
//! them pipelined, and [`super::conflict`] gives the verdict.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::Poll;

use deadpool_postgres::Object;
use postgres_types::ToSql;
use tokio_postgres::{Error, Row};

use tessera_core::Landing;

use super::conflict::{self, Verdict};
use super::queue::{copy, Job};
use crate::error::map_pg;
use crate::sql::Sql;

/// A request in flight on the connection, boxed so different kinds pipeline together.
type Step<'a, T = Vec<Row>> = Pin<Box<dyn Future<Output = Result<T, Error>> + Send + 'a>>;

/// Decides on refused appends with the idempotency rules (their checks pipelined);
/// returns the jobs to run again.
pub(super) async fn settle(
    client: &Object,
    sql: &Sql,
    endpoint: &str,
    jobs: Vec<Job>,
    n: usize,
) -> Vec<Job> {
    if jobs.is_empty() {
        return Vec::new();
    }
    let statement = match client.prepare_cached(&sql.conflict).await {
        Ok(statement) => statement,
        Err(e) => {
            let e = map_pg(e, "checking a refused append", endpoint);
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
        .map(|p| Box::pin(client.query(&statement, p)) as Step<'_, Vec<Row>>)
        .collect();
    let results = join_in_order(checks).await;
    let mut again = Vec::new();
    for (job, rows) in jobs.into_iter().zip(results) {
        match rows {
            Ok(rows) => match conflict::verdict(&job.append, &rows) {
                Verdict::Repeat(outcome) => job.finish(Ok((outcome, Landing::Repeat)), n),
                Verdict::Refused(e) => job.finish(Err(e), n),
                Verdict::Retry => again.extend(job.attempt_again(n)),
            },
            Err(e) => job.finish(Err(map_pg(e, "checking a refused append", endpoint)), n),
        }
    }
    again
}

/// Polls every future in order (so each sends its request before the next does) until
/// all are done, and returns their outputs in the same order.
async fn join_in_order<T>(
    mut futures: Vec<Pin<Box<dyn Future<Output = T> + Send + '_>>>,
) -> Vec<T> {
    let mut outputs: Vec<Option<T>> = futures.iter().map(|_| None).collect();
    poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(v) => *output = Some(v),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}
