//! An in-memory stand-in for an EventStoreDB node, written for tests: it speaks the
//! gRPC API (HTTP/2, protobuf) that the official `eventstore` client uses, so the
//! store under test runs its real client code over a real socket. Used by the tests of
//! `tessera-eventstoredb` (conformance suite and wire mappings) and by the example
//! shop's, which runs end to end on it; a crate of its own so both can start it.
//!
//! # What it models
//! - `ServerFeatures/GetSupportedMethods` (answers version 24.10.0, no batch append, so
//!   the client uses `Streams/Append`). Gossip is not served: a single-node
//!   `esdb://host:port` connection string never asks for it.
//! - `Streams/Append`: revisions from 0 per stream; expected revision `any`,
//!   `no_stream`, `stream_exists`, exact; a refused append answers
//!   `WrongExpectedVersion` with the current revision (both the pre- and post-20.6
//!   fields). Idempotency follows EventStoreDB's `IndexWriter.CheckCommit`: with `any`
//!   or `stream_exists`, a batch whose ids are all stored in the stream is a success
//!   that writes nothing, a batch whose *first* id is new is appended as it is (even if
//!   a later id is stored), one whose first id is stored but not all is refused; with
//!   `no_stream` or an exact revision behind the stream, the batch is a success only
//!   when it is exactly the events stored after that revision, otherwise refused; an
//!   exact revision equal to the current one appends whatever the ids. An idempotent
//!   success reports the position of the last matching event. As on the server, the
//!   id lookup behind `any`/`stream_exists` is one map for all streams: an id maps to
//!   the stream and revision it was last written at.
//! - `Streams/Read`: stream reads forwards and backwards from a revision, the start or
//!   the end, with a maximum count, and `StreamNotFound` for a missing stream; `$all`
//!   reads forwards from a position (inclusive) and backwards from a position
//!   (exclusive) or the end. Events carry `type`, `content-type`, `created` (100 ns
//!   ticks since the Unix epoch), data and custom metadata byte for byte, and ids as
//!   strings or structured, as requested.
//! - Subscriptions to `$all` (optionally filtered by stream or type prefixes, or by the
//!   client's `exclude_system_events` expression) and to one stream: confirmation,
//!   catch-up, `CaughtUp`, checkpoints when filtered, then live events.
//! - `$all` positions: byte offsets in one log, commit == prepare for every event,
//!   strictly increasing, with gaps between events. A fresh server holds two system
//!   events (`$settings`, `$stats-…`), as a real one does.
//! - Failure on demand: [`FakeServer::refuse_next`] makes the next calls fail with a
//!   chosen gRPC status.
//!
//! # What it cannot tell us
//! How a real EventStoreDB behaves. Its answers are this crate's reading of the
//! protocol and of the server's rules, not the server's: exact commit/prepare numbers
//! (a real server may give the events of one append one commit position and distinct
//! prepare positions, and report other positions for an append or an idempotent
//! repeat), what a real server puts in stream reads' positions, timing, `$all`'s other
//! system events, deleted and tombstoned streams, stream metadata, `$ce-`/`$et-`
//! projections, link resolution, ACLs, TLS, clustering, leader elections and
//! not-leader redirects, maximum append size, and the bounded cache behind real
//! idempotency (a server forgets old event ids; this fake never does).

// `tonic::Status` is the error of every gRPC handler, as in generated servers.
#![allow(clippy::result_large_err)]

mod log;
mod messages;
mod service;
mod streams;
mod subscription;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use tokio::sync::watch;

use log::{Decision, Expected, Log, Proposed};

/// The state behind one fake server.
pub(crate) struct State {
    log: Mutex<Log>,
    /// Bumped after every write; subscriptions wait on it.
    appended: watch::Sender<u64>,
    /// The next calls to refuse, and with what.
    refusals: Mutex<(usize, tonic::Code)>,
}

impl State {
    fn log(&self) -> MutexGuard<'_, Log> {
        self.log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn append(&self, stream: &Bytes, expected: Expected, events: Vec<Proposed>) -> Decision {
        let decision = self.log().append(stream, expected, events);
        if matches!(decision, Decision::Written { .. }) {
            self.appended.send_modify(|n| *n += 1);
        }
        decision
    }

    fn refuse_if_asked(&self) -> Result<(), tonic::Status> {
        let mut refusals = self
            .refusals
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if refusals.0 == 0 {
            return Ok(());
        }
        refusals.0 -= 1;
        Err(tonic::Status::new(
            refusals.1,
            "refused by the fake server, as asked",
        ))
    }
}

/// A running fake server. It runs on the tokio runtime that started it, until that
/// runtime shuts down.
#[derive(Clone)]
pub struct FakeServer {
    state: Arc<State>,
    addr: SocketAddr,
}

impl FakeServer {
    /// Starts a server on a free port of 127.0.0.1.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a free port");
        let addr = listener.local_addr().expect("local address");
        let state = Arc::new(State {
            log: Mutex::new(Log::default()),
            appended: watch::channel(0).0,
            refusals: Mutex::new((0, tonic::Code::Ok)),
        });
        for (stream, event_type) in [
            ("$settings", "$settings"),
            ("$stats-127.0.0.1:2113", "$statsCollected"),
        ] {
            let seed = Proposed {
                id: uuid::Uuid::new_v4(),
                event_type: event_type.to_owned(),
                content_type: "application/json".to_owned(),
                data: Bytes::from_static(b"{}"),
                custom_metadata: Bytes::new(),
            };
            state.append(&Bytes::from(stream), Expected::Any, vec![seed]);
        }
        let incoming = tonic::transport::server::TcpIncoming::from_listener(listener, true, None)
            .expect("incoming connections");
        let router = tonic::transport::Server::builder()
            .add_service(service::Streams(state.clone()))
            .add_service(service::Features);
        tokio::spawn(router.serve_with_incoming(incoming));
        Self { state, addr }
    }

    /// The connection string of this server.
    pub fn url(&self) -> String {
        format!("esdb://{}?tls=false", self.addr)
    }

    /// Makes the next `n` appends and reads fail with `code` (subscriptions are
    /// served: the store's wake-up subscription would otherwise take the refusals).
    pub fn refuse_next(&self, n: usize, code: tonic::Code) {
        *self
            .state
            .refusals
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = (n, code);
    }

    /// Appends directly to the log, as another client of the server would.
    pub fn write_raw(&self, stream: &str, event_type: &str, data: &'static [u8]) {
        let event = Proposed {
            id: uuid::Uuid::new_v4(),
            event_type: event_type.to_owned(),
            content_type: "application/octet-stream".to_owned(),
            data: Bytes::from_static(data),
            custom_metadata: Bytes::new(),
        };
        self.state.append(
            &Bytes::copy_from_slice(stream.as_bytes()),
            Expected::Any,
            vec![event],
        );
    }

    /// The revisions stored in `stream` with their event ids, read from the log
    /// itself (not through the client).
    pub fn stored_ids(&self, stream: &str) -> Vec<(u64, uuid::Uuid)> {
        self.state
            .log()
            .read_stream(stream.as_bytes(), Some(0), true, u64::MAX)
            .unwrap_or_default()
            .into_iter()
            .map(|e| (e.revision, e.id))
            .collect()
    }
}
