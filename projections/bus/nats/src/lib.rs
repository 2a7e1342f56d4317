//! # tessera-nats
//!
//! Tessera's integration events on NATS JetStream: [`NatsBus`] implements the broker
//! contract [`Bus`](tessera_projections::integration::Bus), so a
//! [`Relay`](tessera_projections::integration::Relay) publishes a service's public
//! events to JetStream and an [`Inbox`](tessera_projections::integration::Inbox) in
//! another service consumes them. It works with NATS server 2.9 and later (one filter
//! subject per consumer; it never asks for account information, whose 2.9 reply the
//! client cannot read).
//!
//! ```
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use tessera_core::{BoxError, EventAppender, ExpectedVersion, MemoryStore, NewEvent, StreamId};
//! use tessera_nats::NatsBus;
//! use tessera_projections::integration::{
//!     ConsumerSpec, Inbox, InboxConfig, InboxHandler, Message, PublicEvents, Relay,
//! };
//! use tessera_projections::{MemoryCheckpoints, Runner, RunnerConfig};
//!
//! let url = std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
//! let bus = NatsBus::connect(url).await.expect("a NATS server with JetStream (nats-server -js)");
//! # let context = format!("ordering{}", std::process::id());
//! # let context = context.as_str();
//! # /*
//! let context = "ordering";
//! # */
//!
//! // Ordering publishes OrderPlaced (and nothing else) to stream TESSERA_ORDERING ...
//! let ordering = MemoryStore::new();
//! let public = PublicEvents::new(context)
//!     .map("order", "OrderPlaced", "OrderPlaced", 1, |e| Ok(e.data.to_value()?));
//! let relay = Relay::new("ordering_relay", public, ordering.clone(), Arc::new(bus.clone()), MemoryCheckpoints::new());
//! let relay = Runner::new(ordering.clone(), relay, RunnerConfig::default()).spawn();
//!
//! // ... and the warehouse's inbox, a durable pull consumer, hands it to its handler.
//! struct Warehouse(tokio::sync::mpsc::UnboundedSender<String>);
//! impl InboxHandler for Warehouse {
//!     async fn handle(&self, m: &Message) -> Result<(), BoxError> {
//!         Ok(self.0.send(m.stream.clone())?)
//!     }
//! }
//! let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
//! let spec = ConsumerSpec::new("warehouse", context, format!("{context}.order.>"));
//! let inbox = Inbox::new(Arc::new(bus.clone()), Warehouse(tx), MemoryCheckpoints::new(), InboxConfig::new(spec)).spawn();
//!
//! let placed = NewEvent::json("OrderPlaced", &serde_json::json!({"total": 5})).unwrap();
//! let order = StreamId::new("order-1").unwrap();
//! ordering.append(&order, ExpectedVersion::NoStream, vec![placed]).await.unwrap();
//! assert_eq!(rx.recv().await.unwrap(), "order-1");
//! # inbox.stop().await;
//! # relay.stop().await;
//! # bus.jetstream().delete_stream(bus.stream_name(context)).await.unwrap();
//! # });
//! ```
//!
//! ## Where messages go
//!
//! | what | on the server |
//! | --- | --- |
//! | context `ordering` | stream `TESSERA_ORDERING` (prefix, `_`, the context upper-cased), subjects `ordering.>`, file storage, limits retention, created when first published to or consumed from |
//! | event | its `subject` (`ordering.order.OrderPlaced`), in its source context's stream |
//! | command | its `subject` (`inventory.commands.Reserve`), in the stream of the context its first token names |
//! | headers | [`wire::to_headers`](tessera_projections::integration::wire::to_headers), plus `Nats-Msg-Id` (the message id) and `Nats-Expected-Stream` |
//! | inbox | a durable pull consumer named as the [`ConsumerSpec`](tessera_projections::integration::ConsumerSpec), on its context's stream, filter subject `spec.filter` |
//! | dead letters | stream `TESSERA-DEAD`, subject `_tessera_dead.{context}.{consumer}` |
//!
//! [`NatsBuilder::stream_prefix`] changes `TESSERA`; [`NatsBuilder::subject_prefix`]
//! puts every subject under a prefix of its own, so that buses (or tests) share a server
//! without sharing a subject. A context name must be one subject token, and two
//! contexts must not differ only in case (they would share a stream name: refused).
//!
//! ## Publishing
//!
//! [`send`](tessera_projections::integration::Bus::send) sends the messages in order
//! without waiting for each acknowledgement and returns once it sent the last, with a
//! [`Confirmation`](tessera_projections::integration::Confirmation) that resolves once
//! JetStream acknowledged every one of them. At most
//! [`max_pending_publishes`](NatsBuilder::max_pending_publishes) (256) publishes await
//! an acknowledgement on a bus, earlier sends' included: while the window is full, a send
//! awaits the oldest acknowledgement (its own or an earlier send's), as a client
//! publishing in a loop does, and a confirmation being awaited takes its batch's
//! acknowledgements as they come, so the window moves on whether or not (and however
//! late) a confirmation is awaited. The relay sends its next batch while the previous
//! one's acknowledgements arrive. [`publish`](tessera_projections::integration::Bus::publish)
//! is a send whose confirmation it awaits: `Ok` once JetStream acknowledged every message.
//! A refused or timed-out publish, or a lost connection, is
//! [`BusError::NotConfirmed`](tessera_projections::integration::BusError::NotConfirmed)
//! (the rest of that send's acknowledgements are no longer waited for): the relay
//! publishes the batch again, and the stream drops each message it already holds by its
//! `Nats-Msg-Id` within the [duplicate window](NatsBuilder::duplicate_window) (2
//! minutes); later repeats are stored and absorbed by the inboxes.
//!
//! ## What a confirmation promises
//!
//! JetStream acknowledges a publish once the message is written to the stream's file
//! store, **before it is synced to disk**: the server syncs its files periodically, not
//! per message. So:
//!
//! - A killed server process loses nothing acknowledged: the operating system holds
//!   the writes. Measured here (NATS 2.9.10): 5,000 messages confirmed, the server
//!   killed with SIGKILL the moment the last confirmation arrived and started again, and
//!   all 5,000 were in the stream (`torture::acknowledged_messages_survive_a_sigkill_of_the_server`);
//!   10,000 events relayed through two SIGKILLs each arrived
//!   (`torture::ten_thousand_events_once_in_order_through_server_kills_and_a_relay_abort`).
//! - A machine that crashes or loses power can lose what was acknowledged since the
//!   last sync. To make an acknowledged message survive that, either replicate the
//!   streams across a cluster of three ([`NatsBuilder::replicas`] 3: a publish is
//!   acknowledged once a majority stored it, so the loss of one machine loses nothing),
//!   or, from NATS 2.10 on, sync every write before it is acknowledged (slower
//!   publishes):
//!
//!   ```text
//!   jetstream { store_dir: "/var/lib/nats", sync_interval: always }
//!   ```
//!
//!   NATS 2.9 (installed here) has no such setting (`unknown field "sync_interval"`):
//!   on 2.9 only replication protects against the loss of a machine.
//!
//! If a broker lost messages it had confirmed, the relay's checkpoint has already moved
//! past them. Set the relay's checkpoint back to a position before the loss (it is the
//! position of its checkpoint store, named as the relay) and restart it: it publishes
//! everything from there again; the duplicate window drops what the stream still holds
//! (re-publishes within 2 minutes), the inboxes absorb the rest (each keeps the version
//! it handled last per source stream), and the lost messages arrive, in order.
//!
//! ## Consuming
//!
//! Each inbox reads through a durable pull consumer: explicit acknowledgements,
//! `max_ack_pending` = `spec.max_in_flight`, `max_deliver` = `spec.max_deliveries`,
//! [`ack_wait`](NatsBuilder::ack_wait) 30 s. [`next`](tessera_projections::integration::Consumer::next)
//! takes what is available in one fetch (up to `max_in_flight`, at most 256) and hands
//! it out one by one; when nothing is, it waits on the server with a pull for one
//! message (at most 5 s at a time). Each pull runs to its end in a task of its own, so a
//! `next` given up on loses nothing. A consumer dropped gives back what it fetched and
//! did not hand out (negative acknowledgements), so one opened again gets it at once.
//! A [`Delivery`](tessera_projections::integration::Delivery)'s `attempt` is JetStream's
//! delivery count. Settling it waits for JetStream's confirmation:
//!
//! - `ack`: acknowledged; JetStream forgets it for this consumer.
//! - `retry(delay)`: a negative acknowledgement with that delay.
//! - `dead_letter(reason)`: the message, its headers and [`dead::header`]s (the reason,
//!   the consumer, the subject, the delivery count) are published to the dead-letter
//!   stream and acknowledged there, then the delivery is terminated (`+TERM`).
//!   [`NatsBus::dead_letters`] reads them back.
//! - dropped unsettled: a negative acknowledgement without delay is sent, so it comes
//!   again at once; if even that is lost (the process died), JetStream delivers it again
//!   after the ack wait.
//!
//! Keep the ack wait above the time a consumer holds its fetched messages (up to
//! `max_in_flight` of them, handled one by one), and note that each redelivery,
//! including an inbox's hold-back of a message whose predecessor has not been handled,
//! counts towards `max_deliver`: a message held back every 20 ms while its predecessor
//! waits out a 30 s ack wait is delivered some 1,500 times.

mod bus;
mod consumer;
pub mod dead;
mod names;
mod window;

pub use async_nats;
pub use bus::{headers, NatsBuilder, NatsBus};
pub use dead::DeadLetter;
