//! The append path: how a caller's append becomes part of a committed transaction. Its
//! steps, in order, each in the file it names:
//!
//! 1. [`encode`]: the caller's events (checked by the store) are encoded once into the
//!    parameters the append statements take ([`Append`]).
//! 2. [`queue`]: the append joins the store's one queue as a [`Job`], with the channel
//!    its caller hears back on, and the caller waits.
//! 3. [`lead`]: a caller that finds an append connection idle leads, in its own task:
//!    it takes a group from the front of the queue (up to the group limit, one append
//!    per stream, none of a stream another group is writing) and runs it
//!    ([`Committer`]), then frees the connection, waking a waiting caller to lead what
//!    is left. [`lease`] keeps the queue moving whatever happens to a leader or a
//!    caller (dropped, panicked).
//! 4. [`write`](mod@write): the group runs on the leader's append connection
//!    ([`Writer`]), and each append is answered by how its statement ended: written;
//!    refused (on to step 6, as is an `Exact` version no stream can have, which skips
//!    the statement); lost with the connection (outcome unknown); or rolled back (a
//!    group's appends then run again, each alone; a lone append is settled if it
//!    collided with stored events, runs again after a deadlock or serialization
//!    failure, and fails otherwise).
//! 5. [`statement`]: the group is written with one statement in its implicit
//!    transaction (one round trip, one commit), the single-append statement for a lone
//!    append and the group statement for several; the rows it returns say what each
//!    append did.
//! 6. [`settle`]: the appends the statement refused are checked against what is
//!    stored, pipelined on the same connection, and [`conflict`] decides each with the
//!    idempotency rules: an exact repeat (its original outcome), a conflict to report,
//!    or a stream that has since met the expectation (back to the front of the queue).
//!
//! The statements are in `sql/`, with the store's schema substituted in by
//! [`Sql`](crate::sql::Sql).

mod conflict;
mod encode;
mod lead;
mod lease;
mod queue;
mod settle;
mod statement;
mod write;

pub(crate) use encode::Append;
pub(crate) use lead::Committer;
pub(crate) use queue::Job;
pub(crate) use write::Writer;
