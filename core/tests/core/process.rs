//! The process-manager contract through its test kit: compensation order, failing
//! compensations, deadlines, deterministic command ids.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tessera_core::process::{
    CommandKind, Correlation, Input, Instance, ProcessManager, ProcessTest, Reaction, Status,
    StepState,
};
use tessera_core::{DomainEvent, EventFilter};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Ev {
    #[serde(rename = "TripBooked")]
    Booked { trip: String },
    #[serde(rename = "StepDone")]
    Done { trip: String, step: String },
    #[serde(rename = "StepFailed")]
    Failed { trip: String },
    #[serde(rename = "TripCancelled")]
    Cancelled { trip: String },
    #[serde(rename = "Noise")]
    Noise,
}
impl DomainEvent for Ev {}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Cmd {
    Do(String),
    Undo(String),
    Finish,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Tick {
    Late,
}

/// Books flight, hotel and car in turn; undoes what was done on failure.
pub struct Trip;

impl ProcessManager for Trip {
    const NAME: &'static str = "trip";
    type Event = Ev;
    type State = Vec<String>;
    type Command = Cmd;
    type Timeout = Tick;

    fn filter(&self) -> EventFilter {
        EventFilter::category("trip")
    }

    fn correlate(&self, event: &Ev) -> Correlation {
        match event {
            Ev::Booked { trip } => Correlation::Start(trip.into()),
            Ev::Done { trip, .. } | Ev::Failed { trip } | Ev::Cancelled { trip } => {
                Correlation::Continue(trip.into())
            }
            Ev::Noise => Correlation::Ignore,
        }
    }

    fn react(&self, saga: &Instance<Self>, input: Input<'_, Self>) -> Reaction<Self> {
        const PLAN: [&str; 3] = ["flight", "hotel", "car"];
        match input {
            Input::Event(Ev::Booked { .. }) => Reaction::new()
                .issue(Cmd::Do(PLAN[0].into()))
                .schedule("late", Duration::from_secs(60), Tick::Late),
            Input::Event(Ev::Done { step, .. }) => {
                let mut done = saga.state.clone();
                done.push(step.clone());
                let r = Reaction::new()
                    .completed_step(step.clone(), Some(Cmd::Undo(step.clone())))
                    .state(done.clone());
                match PLAN.get(done.len()) {
                    Some(next) => r.issue(Cmd::Do((*next).into())),
                    None => r.cancel("late").issue(Cmd::Finish).complete(),
                }
            }
            Input::Event(Ev::Failed { .. }) => Reaction::new().compensate("a booking failed"),
            Input::Event(Ev::Cancelled { .. }) => Reaction::new().compensate("cancelled"),
            Input::Event(Ev::Noise) => Reaction::new(),
            Input::Timeout(Tick::Late) => Reaction::new().compensate("too late"),
            Input::CommandFailed { reason, .. } => {
                Reaction::new().compensate(format!("command failed: {reason}"))
            }
        }
    }
}

fn booked() -> Ev {
    Ev::Booked { trip: "t1".into() }
}

fn done(step: &str) -> Ev {
    Ev::Done {
        trip: "t1".into(),
        step: step.into(),
    }
}

#[test]
fn a_start_event_creates_the_instance_and_schedules_its_deadline() {
    ProcessTest::new(Trip)
        .when(booked())
        .then_commands([Cmd::Do("flight".into())])
        .then_scheduled([("late", Duration::from_secs(60))])
        .then_status(Status::Pending);
}

#[test]
fn a_continue_event_without_an_instance_and_an_ignored_event_do_nothing() {
    let outcome = ProcessTest::new(Trip)
        .when(done("flight"))
        .then_commands([]);
    assert!(outcome.instance().is_none());
    let outcome = ProcessTest::new(Trip).given([booked()]).when(Ev::Noise);
    assert!(outcome.instance().is_none());
}

#[test]
fn the_last_step_completes_and_cancels_the_deadline() {
    ProcessTest::new(Trip)
        .given([booked(), done("flight"), done("hotel")])
        .when(done("car"))
        .then_commands([Cmd::Finish])
        .then_cancelled(["late"])
        .then_status(Status::Completed);
}

#[test]
fn compensation_runs_in_reverse_order_of_completion() {
    let outcome = ProcessTest::new(Trip)
        .given([booked(), done("flight"), done("hotel")])
        .when(Ev::Failed { trip: "t1".into() })
        .then_commands([Cmd::Undo("hotel".into()), Cmd::Undo("flight".into())])
        .then_status(Status::Compensating)
        .then_reason("a booking failed");
    let kinds: Vec<CommandKind> = outcome.issued().iter().map(|i| i.kind).collect();
    assert_eq!(
        kinds,
        [
            CommandKind::Compensation { step: 1 },
            CommandKind::Compensation { step: 0 }
        ]
    );
    let outcome = outcome.dispatched().then_status(Status::Completed);
    let steps = &outcome.instance().expect("instance").steps;
    assert!(steps.iter().all(|s| s.state == StepState::Compensated));
}

#[test]
fn compensating_again_does_nothing() {
    ProcessTest::new(Trip)
        .given([booked(), done("flight")])
        .when(Ev::Failed { trip: "t1".into() })
        .and()
        .when(Ev::Cancelled { trip: "t1".into() })
        .then_commands([])
        .then_reason("a booking failed");
}

#[test]
fn a_failing_compensation_ends_failed_with_the_reason() {
    let outcome = ProcessTest::new(Trip)
        .given([booked(), done("flight"), done("hotel"), done("car")])
        .when(Ev::Cancelled { trip: "t1".into() })
        .then_commands([
            Cmd::Undo("car".into()),
            Cmd::Undo("hotel".into()),
            Cmd::Undo("flight".into()),
        ])
        .dispatch_fails(&Cmd::Undo("hotel".into()), "hotel API down")
        .then_status(Status::Failed)
        .then_reason("compensation of step \"hotel\" failed: hotel API down");
    let steps: Vec<StepState> = outcome
        .instance()
        .expect("instance")
        .steps
        .iter()
        .map(|s| s.state.clone())
        .collect();
    assert_eq!(
        steps,
        [
            StepState::Done,
            StepState::CompensationFailed("hotel API down".into()),
            StepState::Compensated,
        ]
    );
}

#[test]
fn a_failed_forward_command_goes_to_the_process_manager() {
    ProcessTest::new(Trip)
        .given([booked(), done("flight")])
        .when(done("hotel"))
        .dispatch_fails(&Cmd::Do("car".into()), "no cars")
        .then_commands([Cmd::Undo("hotel".into()), Cmd::Undo("flight".into())])
        .then_reason("command failed: no cars");
}

#[test]
fn a_timeout_compensates() {
    ProcessTest::new(Trip)
        .given([booked(), done("flight")])
        .when_timeout("t1", Tick::Late)
        .then_commands([Cmd::Undo("flight".into())])
        .dispatched()
        .then_status(Status::Completed)
        .then_reason("too late");
}

#[test]
fn command_ids_are_deterministic_and_carry_an_idempotency_key() {
    let ids = || {
        ProcessTest::new(Trip)
            .given([booked(), done("flight")])
            .when(Ev::Failed { trip: "t1".into() })
            .issued()
            .to_vec()
    };
    let (a, b) = (ids(), ids());
    assert_eq!(a, b);
    let options = a[0].options();
    assert_eq!(options.idempotency_key, Some(a[0].id.to_string()));
    assert_eq!(options.metadata.causation_id, Some(a[0].trigger.0));
    assert!(options.metadata.correlation_id.is_some());
}
