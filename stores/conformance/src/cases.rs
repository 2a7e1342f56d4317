//! The cases of the suite. Each takes a fresh, empty store and panics on a violation.
//!
//! | module | what it pins down |
//! |---|---|
//! | `expected_version` | every [`ExpectedVersion`](tessera_core::ExpectedVersion) on a missing and an existing stream |
//! | `idempotency` | repeats of stored ids, partial overlaps, ids stored elsewhere in the stream (by the store's [`Idempotency`](crate::Idempotency)) |
//! | `batches` | duplicate ids in a batch, empty batches, a 1000-event batch |
//! | `concurrency` | many writers racing on one stream |
//! | `many_streams` | many writers on many streams, then the global log |
//! | `subscription` | a burst of writers, catch-up then live |
//! | `subscription_filter` | category and type filters, starting mid-log |
//! | `read_stream` | one stream forward and backward, `from`, `limit`, missing streams |
//! | `read_all` | the global log with category and type filters, `after`, `limit`; `count_events` where the store counts |
//! | `lookup` | `stream_version`, `head`, `find_event` |
//! | `stream_ids` | stream id validation and unusual valid ids |
//! | `payload` | large, unicode and unusual JSON payloads with every recorded field |
//! | `catalog` | `categories` and `streams` page by page in byte order, by category, with versions (where the store lists them) |
//! | `correlated` | `correlated`: one correlation's events in position order, page by page (where the store searches) |

mod batches;
mod catalog;
mod concurrency;
mod correlated;
mod expected_version;
mod idempotency;
mod lookup;
mod many_streams;
mod payload;
mod read_all;
mod read_stream;
mod stream_ids;
mod subscription;
mod subscription_filter;

pub use batches::{large_batch, rejected_batches};
pub use catalog::{categories_in_byte_order, streams_in_byte_order};
pub use concurrency::concurrent_writers_one_stream;
pub use correlated::correlated_events;
pub use expected_version::{expected_version_on_empty_stream, expected_version_on_existing_stream};
pub use idempotency::{idempotency_conflicts, idempotent_repeats};
pub use lookup::{last_of_types_looks_back, stream_version_head_and_find_event};
pub use many_streams::concurrent_writers_many_streams;
pub use payload::{json_shapes_round_trip, large_payload_round_trip, unicode_payload_round_trip};
pub use read_all::{category_filter_is_literal, read_all_filters_and_limits};
pub use read_stream::read_stream_directions;
pub use stream_ids::{invalid_stream_ids, unusual_stream_ids_round_trip};
pub use subscription::{
    subscribers_see_a_concurrent_burst_once, subscription_hands_over_from_catch_up_to_live,
};
pub use subscription_filter::{category_subscription, subscription_from_a_mid_position};
