//! Tessera integration events on RabbitMQ: a [`RabbitBus`] implementing the
//! [`Bus`](tessera_projections::integration::Bus) contract on `lapin`, so that a
//! service's [`Relay`](tessera_projections::integration::Relay) publishes its public
//! events and another service's [`Inbox`](tessera_projections::integration::Inbox)
//! consumes them.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use tessera_projections::integration::{ConsumerSpec, PublicEvents, Relay};
//! use tessera_projections::{MemoryCheckpoints, Runner, RunnerConfig};
//! use tessera_rabbitmq::RabbitBus;
//!
//! let bus = Arc::new(RabbitBus::connect("amqp://guest:guest@127.0.0.1:5672/%2f").await?);
//! // The warehouse's queue exists before the first publish (RabbitMQ routes on publish).
//! bus.declare_consumer(&ConsumerSpec::new("warehouse", "ordering", "ordering.order.>")).await?;
//!
//! let ordering = tessera_core::MemoryStore::new();
//! let public = PublicEvents::new("ordering")
//!     .map("order", "OrderPlaced", "OrderPlaced", 1, |e| Ok(e.data.to_value()?));
//! let relay = Relay::new("ordering_relay", public, ordering.clone(), bus.clone(), MemoryCheckpoints::new());
//! let _relay = Runner::new(ordering, relay, RunnerConfig::default()).spawn();
//! // ... and in the warehouse: Inbox::new(bus, handler, checkpoints, InboxConfig::new(spec)).spawn()
//! # Ok(()) }
//! ```
//!
//! An unreachable broker is a clear error, in bounded time, without the credentials:
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use tessera_projections::integration::BusError;
//! let error = tessera_rabbitmq::RabbitBus::connect("amqp://guest:s3cret@127.0.0.1:1/%2f").await.unwrap_err();
//! assert!(matches!(error, BusError::Unavailable(_)));
//! assert!(error.to_string().contains("amqp://127.0.0.1:1/%2f"));
//! assert!(!error.to_string().contains("s3cret"));
//! # });
//! ```
//!
//! # Topology
//!
//! - Each context has a durable **topic exchange** `{prefix}{context}` (prefix
//!   `tessera.` by default, see [`RabbitConfig`]). An event goes to its source context's
//!   exchange, a command to its target's (the subject's first token); the routing key
//!   is the subject (`ordering.order.OrderPlaced`, `inventory.commands.Reserve`).
//! - A message is **persistent** (delivery mode 2), its `message_id` the message id, its
//!   `content_type` the payload's, its headers the
//!   [wire](tessera_projections::integration::wire) headers as AMQP strings, its body the
//!   payload.
//! - A consumer is a durable **quorum queue** named after the consumer, bound to its
//!   context's exchange with the filter as binding key (`*` stays, a final `>` becomes
//!   `#`), read with manual acknowledgements and a prefetch of `max_in_flight`.
//!   Bindings add up: re-opening a consumer with another filter adds a binding; delete
//!   the queue to narrow it. Declarations are idempotent; a queue that exists with other
//!   arguments is used as it is (logged).
//! - RabbitMQ routes a message to the queues bound **when it is published**. So that
//!   nothing published before its consumer exists is lost, each context's exchange
//!   has an alternate exchange, `{prefix}{context}.unrouted` (fanout), whose durable
//!   quorum queue of the same name **holds** every message no queue was bound for.
//!   Opening or declaring a consumer ([`RabbitBus::declare_consumer`]) first moves the
//!   held messages its filter matches into its queue (each copied with a confirmation
//!   before it leaves the hold), then binds the queue, then moves what came in
//!   between. Claims of one context take turns, across processes, under an exclusive
//!   queue `{prefix}{context}.claiming` (a claim takes every held message while it
//!   looks), and copy what they want in the source log's order. A held message goes
//!   to the first consumer that wants it; consumers
//!   declared later see only what is published after them (RabbitMQ keeps no log to
//!   replay). A context nobody consumes keeps its messages in the hold: limit it with
//!   a RabbitMQ policy (`max-length`, `message-ttl`) on `.*\.unrouted$` if needed.
//! - Each context has a **dead-letter queue** `{prefix}{context}.dead` (durable,
//!   quorum), reached through the default exchange.
//! - Delivered messages decode through the one
//!   [wire format](tessera_projections::integration::wire): the `Tessera-*` headers and
//!   `Content-Type` (or, missing that, the `content_type` property); headers that
//!   brokers and other producers add (`x-death`, ...) are not read.
//!
//! # What a confirmation promises
//!
//! [`publish`](tessera_projections::integration::Bus::publish) sends every message of
//! the call on a channel in publisher-confirm mode, then waits for every confirmation;
//! it returns `Ok` only once the broker acknowledged each one, and
//! [`BusError::NotConfirmed`](tessera_projections::integration::BusError::NotConfirmed)
//! on a refusal, a timeout (`confirm_timeout`) or a lost connection (the relay then
//! publishes again; the next call reconnects). For a persistent message routed to
//! quorum queues the broker confirms once a majority of the queue's replicas wrote it
//! to disk (fsync); routed to classic durable queues, once it is written to disk, fsync
//! batched over a few hundred milliseconds; routed to no queue at all, at once, and it
//! is gone. RabbitMQ keeps no message-id window: a re-published message is a second
//! copy, which the inbox recognises by source stream and version.
//!
//! # Redelivery and attempts
//!
//! - A delivery dropped unsettled is returned to the queue at once (a negative
//!   acknowledgement with requeue); a consumer whose channel or connection closes has
//!   all its unsettled deliveries returned by the broker.
//! - [`retry(delay)`](tessera_projections::integration::Delivery::retry) waits `delay`
//!   in a background task, keeping its prefetch slot, then returns the message with a
//!   negative acknowledgement; a crash meanwhile returns it at once.
//! - The attempt number is the quorum queue's `x-delivery-count` (returns so far) plus
//!   one; on a classic queue, 2 for any redelivery.
//! - After `max_deliveries` deliveries, the quorum queue's delivery limit parks the
//!   message in the context's dead-letter queue (reason `delivery limit`) instead of
//!   dropping it.
//! - [`dead_letter(reason)`](tessera_projections::integration::Delivery::dead_letter)
//!   publishes a copy with the `Tessera-Dead-Letter-Reason` and
//!   `Tessera-Dead-Letter-Consumer` headers to the dead-letter queue, waits for its
//!   confirmation, then acknowledges the original. [`RabbitBus::dead_letters`] reads
//!   them.
//!
//! # Connections
//!
//! The bus keeps one connection for publishing and one for its consumers (so that a
//! broker throttling publishers does not stall consumers), each opened on first use
//! and opened again on the next call after it was lost. Every broker request is
//! bounded in time (connect timeout; confirm timeout; at most 5 s for an
//! acknowledgement): a connection that stops answering without closing (a stalled
//! network path) is dropped and replaced rather than waited on, and its consumer
//! reports the loss so the inbox opens it again. An idle connection that died
//! silently is noticed through AMQP heartbeats: add `?heartbeat=10` to the URL for
//! ten seconds (the server proposes 60 by default). Only `amqp://` is supported (the
//! build carries no TLS backend).
//!
//! A consumer's [lag](tessera_projections::integration::Consumer::lag) is its queue's
//! ready messages plus the deliveries it handed out and that are not settled yet;
//! messages already prefetched into the client but not taken yet (at most
//! `max_in_flight`) are not counted.

mod acker;
mod bus;
mod claim;
mod config;
mod connection;
mod consumer;
mod publish;
mod topology;

pub use acker::{DEAD_LETTER_CONSUMER, DEAD_LETTER_REASON};
pub use bus::RabbitBus;
pub use config::RabbitConfig;
