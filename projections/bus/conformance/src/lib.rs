//! # tessera-bus-conformance
//!
//! One behavioural suite that every broker adapter of Tessera's integration events must
//! pass, as `tessera-conformance` is for stores: messages round-trip with every header;
//! foreign and undecodable messages are typed errors; a repeat or a command sent twice
//! has one effect; an inbox that dies before acknowledging has one effect; per-stream
//! order holds under lost confirmations and relay restarts; a restarted relay resumes
//! from its checkpoint; two relays on one checkpoint publish each event once in effect;
//! a message held back across a gap is handled in order; poison stops an inbox with a
//! status naming it, or is dead-lettered when configured; an inbox reports its lag.
//!
//! An adapter plugs in with a [`BusFactory`] and one macro call in an integration test:
//!
//! ```
//! use std::sync::Arc;
//! use tessera_bus_conformance::BusFactory;
//! use tessera_projections::integration::{Bus, MemoryBus};
//!
//! struct Memory(MemoryBus);
//!
//! impl BusFactory for Memory {
//!     async fn connect(&self) -> Arc<dyn Bus> {
//!         Arc::new(self.0.clone())
//!     }
//!     async fn publish_raw(&self, context: &str, subject: &str, headers: Vec<(String, String)>, body: Vec<u8>) {
//!         self.0.publish_raw(context, subject, headers, body.into());
//!     }
//! }
//!
//! // One `#[tokio::test]` per case, in a module named `bus_conformance`.
//! tessera_bus_conformance::bus_conformance_suite!(Memory(MemoryBus::new()));
//! # fn main() {}
//! ```
//!
//! Each case uses contexts and consumer names of its own (random), so cases can share
//! one broker and run in parallel. Every wait is bounded ([`WAIT`]): an adapter that
//! loses a message fails instead of hanging CI.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tessera_projections::integration::Bus;

pub mod cases;
pub mod fixtures;
mod support;

/// How long a case waits for something to happen before it fails.
pub const WAIT: Duration = Duration::from_secs(30);

/// Connects the suite to the broker under test.
pub trait BusFactory: Send + Sync + 'static {
    /// A new connection to the broker (every call sees the same broker).
    fn connect(&self) -> impl Future<Output = Arc<dyn Bus>> + Send;

    /// Stores a message that no Tessera relay wrote (any headers, any body) in
    /// `context`'s destination under `subject`, as another producer might.
    fn publish_raw(
        &self,
        context: &str,
        subject: &str,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    ) -> impl Future<Output = ()> + Send;

    /// Removes what a case made for `contexts` (streams, exchanges, queues). Nothing by
    /// default.
    fn cleanup(&self, contexts: Vec<String>) -> impl Future<Output = ()> + Send {
        let _ = contexts;
        async {}
    }
}

/// Generates a module `bus_conformance` with one `#[tokio::test]` per case of
/// [`cases`], each running against the factory expression given.
#[macro_export]
macro_rules! bus_conformance_suite {
    ($factory:expr) => {
        #[allow(missing_docs)]
        mod bus_conformance {
            #[allow(unused_imports)]
            use super::*;
            $crate::__bus_case!($factory;
                round_trip_with_every_header,
                foreign_and_undecodable_messages_are_typed_errors,
                a_repeated_message_has_one_effect,
                a_command_sent_twice_is_handled_once_by_its_owner,
                an_inbox_that_dies_before_acking_has_one_effect,
                per_stream_order_holds_under_lost_confirmations_and_relay_restarts,
                a_restarted_relay_resumes_from_its_checkpoint,
                two_relays_on_one_checkpoint_publish_each_event_once_in_effect,
                two_instances_of_one_inbox_keep_order_and_effect_once,
                a_message_after_a_gap_is_held_back_until_its_predecessor,
                a_slow_stream_does_not_hold_back_the_others,
                a_streams_waiting_messages_reach_the_handler_together,
                an_inbox_dying_between_a_runs_writes_and_its_position_has_one_effect_each,
                poison_stops_the_inbox_naming_the_message,
                poison_is_dead_lettered_when_configured,
                a_foreign_message_stops_the_inbox_counted_once,
                an_inbox_reports_its_lag,
            );
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __bus_case {
    ($factory:expr; $($case:ident),* $(,)?) => {
        $(
            #[$crate::__private::tokio::test(
                crate = "::tessera_bus_conformance::__private::tokio",
                flavor = "multi_thread",
                worker_threads = 2
            )]
            async fn $case() {
                let factory = $factory;
                $crate::cases::$case(&factory).await;
            }
        )*
    };
}

#[doc(hidden)]
pub mod __private {
    pub use tokio;
}
