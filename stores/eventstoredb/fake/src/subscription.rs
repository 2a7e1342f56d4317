//! Catch-up subscriptions (`Read` with the subscription option): a confirmation, the
//! stored events after the starting point, `CaughtUp` (and a checkpoint when
//! filtered), then every event appended later, until the client goes away.

use std::sync::Arc;

use super::log::Stored;
use super::messages as pb;
use super::streams::{Filter, Out};
use super::State;

/// Which events of `$all` a subscription delivers.
type Wanted = Box<dyn Fn(&Stored) -> bool + Send>;

/// Serves one subscription.
pub async fn run(state: Arc<State>, stream: pb::StreamOption, filter: Filter, out: Out) {
    let mut appended = state.appended.subscribe();
    let checkpoints = filter.is_set();
    // Which events of `$all` belong to the subscription, and where it starts.
    let (wanted, mut next): (Wanted, usize) = {
        let log = state.log();
        match stream {
            pb::StreamOption::All(a) => {
                let next = match a.all_option {
                    Some(pb::AllOption::Position(p)) => log.index_after(p),
                    Some(pb::AllOption::End(_)) => log.len(),
                    Some(pb::AllOption::Start(_)) | None => 0,
                };
                (Box::new(move |e| filter.matches(e)), next)
            }
            pb::StreamOption::Stream(s) => {
                let name = s
                    .stream_identifier
                    .map(|i| i.stream_name)
                    .unwrap_or_default();
                let after = match s.revision_option {
                    Some(pb::RevisionOption::Revision(r)) => Some(r),
                    Some(pb::RevisionOption::End(_)) => log.current(&name),
                    Some(pb::RevisionOption::Start(_)) | None => None,
                };
                let wanted =
                    move |e: &Stored| e.stream == name && after.is_none_or(|a| e.revision > a);
                (Box::new(wanted), 0)
            }
        }
    };
    let confirmation = pb::SubscriptionConfirmation {
        subscription_id: uuid::Uuid::new_v4().to_string(),
    };
    if !out.send(pb::ReadContent::Confirmation(confirmation)).await {
        return;
    }
    let mut caught_up = false;
    loop {
        // Mark the log as seen before reading it, so no append slips between the two.
        appended.borrow_and_update();
        let (batch, checkpoint) = {
            let log = state.log();
            let new = log.since(next);
            next += new.len();
            let batch: Vec<Stored> = new.iter().filter(|e| wanted(e)).cloned().collect();
            (batch, new.last().map(|e| e.position))
        };
        if !out.events(&batch).await {
            return;
        }
        if !caught_up {
            caught_up = true;
            if !out
                .send(pb::ReadContent::CaughtUp(pb::Empty::default()))
                .await
            {
                return;
            }
        }
        if let (true, Some(position)) = (checkpoints, checkpoint) {
            // Filtered subscriptions report how far they have looked.
            if !out.send(pb::ReadContent::Checkpoint(position)).await {
                return;
            }
        }
        if appended.changed().await.is_err() {
            return; // the server is shutting down
        }
    }
}
