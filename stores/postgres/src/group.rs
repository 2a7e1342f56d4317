//! One transaction holding the appends of a group, pipelined in a single round trip.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::Poll;

use deadpool_postgres::ClientWrapper;
use tessera_core::StoreError;
use tokio_postgres::{Error, Row};

use crate::append::{Append, Applied};
use crate::error::is_connection_error;
use crate::sql::Sql;

/// How a group's transaction ended.
pub(crate) enum GroupResult {
    /// Committed; per append, what its statement did.
    Committed(Vec<Result<Applied, StoreError>>),
    /// The connection failed: every append's outcome is unknown.
    Lost(Error),
    /// The server rolled the transaction back because of `error`, raised by the append
    /// at `culprit` when a statement of an append raised it.
    Aborted {
        /// Index of the append whose statement failed.
        culprit: Option<usize>,
        /// The first error.
        error: Error,
    },
}

type Step<'a> = Pin<Box<dyn Future<Output = Result<Option<Row>, Error>> + Send + 'a>>;

/// Runs `BEGIN; <append>...; COMMIT; NOTIFY` as one pipelined flight on `client` (a
/// lone append without `BEGIN`/`COMMIT`: its statement is its transaction).
///
/// The transaction commits only if every statement succeeded (after an error the server
/// turns the `COMMIT` into a rollback), so the connection is idle afterwards unless it
/// was lost.
pub(crate) async fn run(client: &ClientWrapper, sql: &Sql, appends: &[&Append]) -> GroupResult {
    let mut statements = Vec::with_capacity(appends.len());
    for a in appends {
        match client.prepare_cached(sql.append(a.expected)).await {
            Ok(s) => statements.push(s),
            Err(e) if is_connection_error(&e) => return GroupResult::Lost(e),
            Err(error) => {
                return GroupResult::Aborted {
                    culprit: None,
                    error,
                }
            }
        }
    }
    let params: Vec<_> = appends.iter().map(|a| a.params()).collect();
    // A lone append is one statement: its implicit transaction is enough.
    let explicit = appends.len() > 1;
    let mut steps: Vec<Step<'_>> = Vec::with_capacity(appends.len() + 3);
    if explicit {
        steps.push(Box::pin(async {
            client.batch_execute("BEGIN").await.map(|()| None)
        }));
    }
    for (statement, params) in statements.iter().zip(&params) {
        steps.push(Box::pin(async move {
            client.query_one(statement, params).await.map(Some)
        }));
    }
    if explicit {
        steps.push(Box::pin(async {
            client.batch_execute("COMMIT").await.map(|()| None)
        }));
    }
    // The wake-up hint goes out in a transaction of its own right after the commit, in
    // the same flight: NOTIFY inside the appending transaction would take the server's
    // notification lock across the commit's WAL flush and serialize every commit.
    steps.push(Box::pin(async {
        client.batch_execute(&sql.notify).await.map(|()| None)
    }));
    let mut results = join_in_order(steps).await;
    if let Some(Err(e)) = results.pop() {
        if is_connection_error(&e) && results.iter().all(Result::is_ok) {
            // Committed; only the hint is lost (polling covers it) with the connection,
            // which the pool drops as closed.
            tracing::debug!(error = %crate::error::describe(&e), "NOTIFY after commit failed");
        } else if !is_connection_error(&e) {
            tracing::warn!(error = %crate::error::describe(&e), "NOTIFY after commit failed");
        }
    }

    let mut rows = Vec::with_capacity(appends.len());
    let mut first_error = None;
    for (i, result) in results.into_iter().enumerate() {
        match result {
            Ok(row) => rows.push(row),
            Err(e) if is_connection_error(&e) => return GroupResult::Lost(e),
            Err(e) => {
                if first_error.is_none() {
                    let culprit = i
                        .checked_sub(usize::from(explicit))
                        .filter(|c| *c < appends.len());
                    first_error = Some((culprit, e));
                }
            }
        }
    }
    if let Some((culprit, error)) = first_error {
        return GroupResult::Aborted { culprit, error };
    }
    let applied = appends
        .iter()
        .zip(rows.iter().skip(usize::from(explicit)))
        .map(|(a, row)| match row {
            Some(row) => a.applied(row),
            None => Err(StoreError::Backend {
                message: "append statement returned no row".into(),
                source: None,
            }),
        })
        .collect();
    GroupResult::Committed(applied)
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
