//! The given/when/then test kit.

use std::collections::HashMap;

use tessera_core::testkit::AggregateTest;

use crate::tally::{Cmd, Tally, TallyError, TallyEvent};

fn added(amount: i64) -> TallyEvent {
    TallyEvent::Added { amount }
}

#[test]
fn given_when_then_events() {
    AggregateTest::<Tally>::new()
        .given([added(1), added(2)])
        .when(&Cmd::AddTwice(3))
        .then_expect_events([added(3), added(3)]);
    AggregateTest::<Tally>::new()
        .when(&Cmd::Nothing)
        .then_expect_events([]);
}

#[test]
fn given_when_then_errors() {
    let err = AggregateTest::<Tally>::new()
        .given([added(i64::MAX)])
        .when(&Cmd::Add(1))
        .then_expect_error();
    assert_eq!(err, TallyError::Overflow);
    AggregateTest::<Tally>::new()
        .when(&Cmd::Refuse)
        .then_expect_error_message("refused");
}

#[test]
#[should_panic(expected = "decided events differ")]
fn other_events_fail_the_test() {
    AggregateTest::<Tally>::new()
        .when(&Cmd::Add(1))
        .then_expect_events([added(2)]);
}

#[test]
#[should_panic(expected = "the command was rejected")]
fn a_rejection_fails_a_test_expecting_events() {
    AggregateTest::<Tally>::new()
        .when(&Cmd::Refuse)
        .then_expect_events([added(1)]);
}

#[test]
#[should_panic(expected = "expected a rejection")]
fn events_fail_a_test_expecting_a_rejection() {
    let _ = AggregateTest::<Tally>::new()
        .when(&Cmd::Add(1))
        .then_expect_error();
}

#[test]
#[should_panic(expected = "does not encode")]
fn an_event_that_does_not_encode_fails_the_test() {
    let poisoned = TallyEvent::Poisoned {
        map: HashMap::from([((1, 2), 3)]),
    };
    AggregateTest::<Tally>::new()
        .when(&Cmd::Poison)
        .then_expect_events([added(1), poisoned]);
}
