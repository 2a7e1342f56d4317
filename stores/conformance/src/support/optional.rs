//! The contract's optional reads, which a store may decline with `Ok(None)`, checked
//! against what its factory declares ([`Browsing`]).

use std::io::Write;

use crate::Browsing;

/// The store's answer to a case's first optional read: `Some` to check further, or
/// `None` when the store declined and `browsing` lets it, after a `SKIPPED` line on
/// stderr (written to the handle, not with `eprintln!`, so the test harness does not
/// capture it and the skip shows in every run). Panics when a store that declared
/// [`Browsing::Answers`] declines.
pub(crate) fn first_answer<T>(
    case: &str,
    call: &str,
    browsing: Browsing,
    answer: Option<T>,
) -> Option<T> {
    match (answer, browsing) {
        (Some(answer), _) => Some(answer),
        (None, Browsing::MayDecline) => {
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED conformance case {case}: the store answered {call} with Ok(None) \
                 (it cannot), which its factory allows (Browsing::MayDecline)"
            );
            None
        }
        (None, Browsing::Answers) => panic!(
            "{case}: {call} returned Ok(None) (\"this store cannot\"), but the factory \
             declares Browsing::Answers (a wrapper that does not forward it?)"
        ),
    }
}

/// A later answer of a store that answered the case's first optional read: declining
/// now is inconsistent and panics.
#[track_caller]
pub(crate) fn answer<T>(call: &str, answer: Option<T>) -> T {
    answer.unwrap_or_else(|| {
        panic!("{call} returned Ok(None) (\"this store cannot\") after answering an earlier call")
    })
}
