//! The cases, one public function each, run by [`bus_conformance_suite!`](crate::bus_conformance_suite).

mod batch;
mod effect;
mod order;
mod poison;
mod wire;

pub use batch::{
    a_streams_waiting_messages_reach_the_handler_together,
    an_inbox_dying_between_a_runs_writes_and_its_position_has_one_effect_each,
};
pub use effect::{
    a_command_sent_twice_is_handled_once_by_its_owner, a_repeated_message_has_one_effect,
    an_inbox_that_dies_before_acking_has_one_effect,
};
pub use order::{
    a_message_after_a_gap_is_held_back_until_its_predecessor,
    a_restarted_relay_resumes_from_its_checkpoint, a_slow_stream_does_not_hold_back_the_others,
    per_stream_order_holds_under_lost_confirmations_and_relay_restarts,
    two_instances_of_one_inbox_keep_order_and_effect_once,
    two_relays_on_one_checkpoint_publish_each_event_once_in_effect,
};
pub use poison::{
    a_foreign_message_stops_the_inbox_counted_once, an_inbox_reports_its_lag,
    poison_is_dead_lettered_when_configured, poison_stops_the_inbox_naming_the_message,
};
pub use wire::{foreign_and_undecodable_messages_are_typed_errors, round_trip_with_every_header};
