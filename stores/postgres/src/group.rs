//! One transaction holding the appends of a group, pipelined in a single round trip.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::Poll;

use deadpool_postgres::ClientWrapper;
use tessera_core::StoreError;
use tokio_postgres::{Error, Row};

use crate::append::{Append, Applied};
use crate::error::is_connection_error;
use crate::round::{self, Round};
use crate::sql::Sql;

/// How a group's transaction ended.
pub(crate) enum GroupResult {
    /// Committed; per append, what it did.
    Committed(Vec<Result<Applied, StoreError>>),
    /// The connection failed: every append's outcome is unknown.
    Lost(Error),
    /// The server rolled the transaction back because of `error`.
    Aborted(Error),
}

/// A request in flight on the connection, boxed so different kinds pipeline together.
pub(crate) type Step<'a, T = Vec<Row>> =
    Pin<Box<dyn Future<Output = Result<T, Error>> + Send + 'a>>;

/// Runs the appends as one transaction, pipelined in one flight on `client`:
/// `BEGIN; <one statement per round>; COMMIT`, or for a lone append just its statement
/// (its implicit transaction).
///
/// The transaction commits only if every statement succeeded (after an error the server
/// turns the `COMMIT` into a rollback), so the connection is idle afterwards unless it
/// was lost.
pub(crate) async fn run(client: &ClientWrapper, sql: &Sql, appends: &[&Append]) -> GroupResult {
    let lone = appends.len() == 1;
    let text = match appends {
        [one] => sql.append(one.expected),
        _ => &sql.append_group,
    };
    let statement = match client.prepare_cached(text).await {
        Ok(s) => s,
        Err(e) if is_connection_error(&e) => return GroupResult::Lost(e),
        Err(e) => return GroupResult::Aborted(e),
    };
    let rounds = round::rounds(appends);
    let members: Vec<Vec<&Append>> = rounds
        .iter()
        .map(|r| r.iter().map(|&i| appends[i]).collect())
        .collect();
    let batches: Vec<Round<'_>> = members
        .iter()
        .map(|m| Round::new(m.iter().copied()))
        .collect();
    let lone_params = appends.first().filter(|_| lone).map(|a| a.params());

    let mut steps: Vec<Step<'_>> = Vec::with_capacity(rounds.len() + 2);
    let simple = |text: &'static str| -> Step<'_> {
        Box::pin(async move { client.batch_execute(text).await.map(|()| Vec::new()) })
    };
    if let Some(params) = &lone_params {
        let statement = &statement;
        steps.push(Box::pin(
            async move { client.query(statement, params).await },
        ));
    } else {
        steps.push(simple("BEGIN"));
        for batch in &batches {
            let statement = &statement;
            steps.push(Box::pin(async move {
                client.query(statement, &batch.params()).await
            }));
        }
        steps.push(simple("COMMIT"));
    }
    let results = join_in_order(steps).await;

    let mut outputs = Vec::with_capacity(results.len());
    let mut aborted = None;
    for result in results {
        match result {
            Ok(rows) => outputs.push(rows),
            Err(e) if is_connection_error(&e) => return GroupResult::Lost(e),
            Err(e) => aborted = aborted.or(Some(e)),
        }
    }
    if let Some(e) = aborted {
        return GroupResult::Aborted(e);
    }
    if lone {
        return GroupResult::Committed(round::applied(appends, &outputs[0]));
    }
    let mut applied: Vec<Option<Result<Applied, StoreError>>> =
        appends.iter().map(|_| None).collect();
    for ((indices, members), rows) in rounds.iter().zip(&members).zip(outputs.iter().skip(1)) {
        for (&i, result) in indices.iter().zip(round::applied(members, rows)) {
            applied[i] = Some(result);
        }
    }
    GroupResult::Committed(
        applied
            .into_iter()
            .map(|a| {
                a.unwrap_or_else(|| {
                    Err(StoreError::Backend {
                        message: "append result missing".into(),
                        source: None,
                    })
                })
            })
            .collect(),
    )
}

/// Polls every future in order (so each sends its request before the next does) until
/// all are done, and returns their outputs in the same order.
pub(crate) async fn join_in_order<T>(
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
