//! Reading subscriptions with bounded waits.

use std::time::Duration;

use tessera_core::{RecordedEvent, Subscription};

use super::{assert_unique, within};

/// How long a subscription must stay silent to count as having nothing more to deliver.
pub(crate) const QUIET: Duration = Duration::from_millis(300);

/// The next event of a subscription, within [`WAIT`].
pub(crate) async fn next_event(sub: &mut Subscription, what: &str) -> RecordedEvent {
    match within(what, sub.next()).await {
        Some(Ok(e)) => e,
        Some(Err(e)) => panic!("{what}: the subscription failed: {e:?}"),
        None => panic!("{what}: the subscription ended"),
    }
}

/// The next `n` events of a subscription, checked for order and uniqueness.
pub(crate) async fn collect(sub: &mut Subscription, n: usize, what: &str) -> Vec<RecordedEvent> {
    let mut out: Vec<RecordedEvent> = Vec::with_capacity(n);
    while out.len() < n {
        let label = format!("{what}: event {} of {n}", out.len() + 1);
        let e = next_event(sub, &label).await;
        if let Some(prev) = out.last() {
            assert!(
                e.position > prev.position,
                "{what}: subscription delivered {} after {} (positions must strictly increase)",
                e.position,
                prev.position
            );
        }
        out.push(e);
    }
    assert_unique(&out, what);
    out
}

/// Panics if the subscription delivers anything within [`QUIET`].
pub(crate) async fn assert_quiet(sub: &mut Subscription, what: &str) {
    if let Ok(extra) = tokio::time::timeout(QUIET, sub.next()).await {
        panic!("{what}: expected nothing more, the subscription delivered {extra:?}");
    }
}
