//! One statement holding the appends of a group: one round trip, one commit.

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

/// Runs the appends as one statement, in its implicit transaction: the single-append
/// statement for a lone append, the group statement for several (each to a different
/// stream). One round trip and one commit either way.
pub(crate) async fn run(client: &ClientWrapper, sql: &Sql, appends: &[&Append]) -> GroupResult {
    let text = match appends {
        [one] => sql.append(one.expected, one.ids.len()),
        _ => &sql.append_group,
    };
    let statement = match client.prepare_cached(text).await {
        Ok(s) => s,
        Err(e) if is_connection_error(&e) => return GroupResult::Lost(e),
        Err(e) => return GroupResult::Aborted(e),
    };
    let rows = match appends {
        [one] => client.query(&statement, &one.params()).await,
        _ => {
            let round = Round::new(appends.iter().copied());
            client.query(&statement, &round.params()).await
        }
    };
    match rows {
        Ok(rows) => GroupResult::Committed(round::applied(appends, &rows)),
        Err(e) if is_connection_error(&e) => GroupResult::Lost(e),
        Err(e) => GroupResult::Aborted(e),
    }
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
