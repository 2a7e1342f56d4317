//! A message as headers and a body: the one wire format every adapter uses.

use std::collections::BTreeMap;

use bytes::Bytes;
use tessera_core::Position;
use uuid::Uuid;

use super::{Message, MessageError, MessageKind};

/// Header names. Every adapter sends all of them (as NATS headers or AMQP headers).
pub mod header {
    /// The message id (the source event's id).
    pub const ID: &str = "Tessera-Id";
    /// `event` or `command`.
    pub const KIND: &str = "Tessera-Kind";
    /// The integration name.
    pub const NAME: &str = "Tessera-Name";
    /// The payload's schema version.
    pub const SCHEMA_VERSION: &str = "Tessera-Schema-Version";
    /// The source context.
    pub const SOURCE: &str = "Tessera-Source";
    /// The routing subject.
    pub const SUBJECT: &str = "Tessera-Subject";
    /// The source stream.
    pub const STREAM: &str = "Tessera-Stream";
    /// The source event's version.
    pub const VERSION: &str = "Tessera-Version";
    /// The version of the previous message of the stream (absent for the first).
    pub const PREVIOUS: &str = "Tessera-Previous";
    /// The source event's position (`commit.prepare`).
    pub const POSITION: &str = "Tessera-Position";
    /// Correlation id.
    pub const CORRELATION_ID: &str = "Tessera-Correlation-Id";
    /// Causation id.
    pub const CAUSATION_ID: &str = "Tessera-Causation-Id";
    /// A command's idempotency key.
    pub const IDEMPOTENCY_KEY: &str = "Tessera-Idempotency-Key";
    /// The payload's media type.
    pub const CONTENT_TYPE: &str = "Content-Type";
    /// Prefix of free-form headers (`Tessera-H-traceparent`).
    pub const EXTRA_PREFIX: &str = "Tessera-H-";
}

/// A header value as printable ASCII: `%`, control characters and every byte of a
/// non-ASCII character percent-encoded (stream ids and names may hold any Unicode;
/// broker headers may not).
fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if (0x20..0x7f).contains(&b) && b != b'%' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The value [`encode`] made; `None` if it is not one.
fn decode(value: &str) -> Option<String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = value.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// `message` as (name, value) headers, values in printable ASCII; the body is
/// `message.payload`.
pub fn to_headers(message: &Message) -> Vec<(String, String)> {
    let mut h: Vec<(String, String)> = vec![
        (header::ID.to_owned(), message.id.to_string()),
        (header::KIND.to_owned(), message.kind.as_str().to_owned()),
        (header::NAME.to_owned(), message.name.clone()),
        (
            header::SCHEMA_VERSION.to_owned(),
            message.schema_version.to_string(),
        ),
        (header::SOURCE.to_owned(), message.source.clone()),
        (header::SUBJECT.to_owned(), message.subject.clone()),
        (header::STREAM.to_owned(), message.stream.clone()),
        (header::VERSION.to_owned(), message.version.to_string()),
        (header::POSITION.to_owned(), message.position.to_string()),
        (
            header::CONTENT_TYPE.to_owned(),
            message.content_type.clone(),
        ),
    ];
    let optional = [
        (header::PREVIOUS, message.previous.map(|p| p.to_string())),
        (
            header::CORRELATION_ID,
            message.correlation_id.map(|c| c.to_string()),
        ),
        (
            header::CAUSATION_ID,
            message.causation_id.map(|c| c.to_string()),
        ),
        (header::IDEMPOTENCY_KEY, message.idempotency_key.clone()),
    ];
    for (name, value) in optional {
        if let Some(value) = value {
            h.push((name.to_owned(), value));
        }
    }
    for (k, v) in &message.headers {
        h.push((format!("{}{k}", header::EXTRA_PREFIX), v.clone()));
    }
    for (_, v) in &mut h {
        *v = encode(v);
    }
    h
}

/// The message that `headers` and `body` carry. Header names match case-insensitively
/// (brokers and proxies may change their case).
pub fn from_headers<'a>(
    headers: impl IntoIterator<Item = (&'a str, &'a str)>,
    body: Bytes,
) -> Result<Message, MessageError> {
    let mut found: BTreeMap<String, String> = BTreeMap::new();
    let mut extra = BTreeMap::new();
    let prefix = header::EXTRA_PREFIX.to_ascii_lowercase();
    for (name, value) in headers {
        let value = decode(value).ok_or_else(|| MessageError::BadHeader {
            name: "(percent-encoding)",
            value: value.chars().take(100).collect(),
        })?;
        let lower = name.to_ascii_lowercase();
        if lower.starts_with(&prefix) {
            // The prefix is ASCII: the extra header's own name follows it, as sent.
            extra.insert(name[prefix.len()..].to_owned(), value);
        } else {
            found.insert(lower, value);
        }
    }
    let get = |name: &'static str| found.get(&name.to_ascii_lowercase()).map(String::as_str);
    let need = |name: &'static str| get(name).ok_or(MessageError::MissingHeader(name));
    let bad = |name: &'static str, value: &str| MessageError::BadHeader {
        name,
        value: value.chars().take(100).collect(),
    };
    let uuid =
        |name: &'static str, value: &str| value.parse::<Uuid>().map_err(|_| bad(name, value));
    let number =
        |name: &'static str, value: &str| value.parse::<u64>().map_err(|_| bad(name, value));
    let optional_uuid = |name| get(name).map(|v| uuid(name, v)).transpose();

    let content_type = need(header::CONTENT_TYPE)?;
    if !content_type.eq_ignore_ascii_case(super::JSON) {
        return Err(MessageError::ContentType(
            content_type.chars().take(100).collect(),
        ));
    }
    let kind = match need(header::KIND)? {
        "event" => MessageKind::Event,
        "command" => MessageKind::Command,
        other => return Err(bad(header::KIND, other)),
    };
    let schema_version = need(header::SCHEMA_VERSION)?;
    let position = need(header::POSITION)?;
    let message = Message {
        id: uuid(header::ID, need(header::ID)?)?,
        kind,
        name: need(header::NAME)?.to_owned(),
        schema_version: schema_version
            .parse()
            .map_err(|_| bad(header::SCHEMA_VERSION, schema_version))?,
        source: need(header::SOURCE)?.to_owned(),
        subject: need(header::SUBJECT)?.to_owned(),
        stream: need(header::STREAM)?.to_owned(),
        version: number(header::VERSION, need(header::VERSION)?)?,
        previous: get(header::PREVIOUS)
            .map(|v| number(header::PREVIOUS, v))
            .transpose()?,
        position: position
            .parse::<Position>()
            .map_err(|_| bad(header::POSITION, position))?,
        correlation_id: optional_uuid(header::CORRELATION_ID)?,
        causation_id: optional_uuid(header::CAUSATION_ID)?,
        idempotency_key: get(header::IDEMPOTENCY_KEY).map(str::to_owned),
        headers: extra,
        content_type: super::JSON.to_owned(),
        payload: body,
    };
    if serde_json::from_slice::<serde::de::IgnoredAny>(&message.payload).is_err() {
        return Err(MessageError::Payload);
    }
    Ok(message)
}
