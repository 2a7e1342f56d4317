//! An integration message: what crosses the broker, with the headers every adapter
//! carries.

use std::collections::BTreeMap;

use bytes::Bytes;
use tessera_core::Position;
use uuid::Uuid;

/// What a message is: a fact another service may react to, or a command to the service
/// that owns the aggregate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// A public event of the source context (published by its relay).
    Event,
    /// A command for the context named by the subject's first token, carrying an
    /// idempotency key; its owner handles it once and answers with events.
    Command,
}

impl MessageKind {
    /// `"event"` or `"command"`.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::Event => "event",
            MessageKind::Command => "command",
        }
    }
}

/// One integration message.
///
/// Order and duplicates: `stream`, `version` and `previous` let an inbox hand a
/// consumer the messages of one source stream in version order with none missing,
/// whatever the broker delivers (see [`Inbox`](super::Inbox)); `id` is the source
/// event's id (or the command's), so repeats are recognised by the broker (message-id
/// deduplication) and absorbed by the consumer's idempotent writes.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// The source event's id (a command's: derived from its idempotency key).
    pub id: Uuid,
    /// Event or command.
    pub kind: MessageKind,
    /// Stable integration name (never the Rust type name).
    pub name: String,
    /// Schema version of the payload.
    pub schema_version: u32,
    /// The context that published it.
    pub source: String,
    /// Where the broker routes it: `{context}.{category}.{name}` for events,
    /// `{target}.commands.{name}` for commands (dot-separated tokens).
    pub subject: String,
    /// The source stream.
    pub stream: String,
    /// The source event's version in its stream (0 for commands).
    pub version: u64,
    /// The version of the previous message published from the same stream (`None` for
    /// the first): how an inbox knows that nothing is missing before this one.
    pub previous: Option<u64>,
    /// The source event's position in the source log.
    pub position: Position,
    /// Correlation id of the request that caused it.
    pub correlation_id: Option<Uuid>,
    /// Id of the message that caused it.
    pub causation_id: Option<Uuid>,
    /// A command's idempotency key.
    pub idempotency_key: Option<String>,
    /// Further headers, such as W3C `traceparent` and `tracestate`.
    pub headers: BTreeMap<String, String>,
    /// Media type of the payload (`application/json`).
    pub content_type: String,
    /// The payload.
    pub payload: Bytes,
}

/// The media type of every payload Tessera writes.
pub const JSON: &str = "application/json";

impl Message {
    /// The payload decoded as `T`.
    pub fn decode<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.payload)
    }

    /// The id of the `index`-th event a consumer writes for this message: the same for
    /// every delivery of it, so the store's idempotent append lands a redelivery once.
    pub fn derived_event_id(&self, index: usize) -> tessera_core::EventId {
        let mut name = Vec::with_capacity(48);
        name.extend_from_slice(b"inbox\0");
        name.extend_from_slice(self.id.as_bytes());
        name.extend_from_slice(&(index as u64).to_be_bytes());
        tessera_core::EventId::derived(&name)
    }

    /// The idempotency key a consumer gives the command it runs for this message.
    pub fn idempotency_key_for_consumer(&self) -> String {
        format!("msg:{}", self.id)
    }
}
