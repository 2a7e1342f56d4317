//! A message as headers and a body: the one wire format every adapter uses.

use std::borrow::Cow;
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
/// broker headers may not). A value with nothing to encode is returned as it is.
fn encode(value: String) -> String {
    let clean = |b: u8| (0x20..0x7f).contains(&b) && b != b'%';
    if value.bytes().all(clean) {
        return value;
    }
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(value.len() + 8);
    for b in value.bytes() {
        if clean(b) {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
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
    let mut h = Vec::with_capacity(14 + message.headers.len());
    each_header(message, |name, value| h.push((name.into_owned(), value)));
    h
}

/// The headers of [`to_headers`], in the same order, handed to `put` one at a time
/// without collecting them: for an adapter that turns them into its broker's own
/// header type. A name from [`header`] comes as [`Cow::Borrowed`] (a `&'static str`
/// the adapter may keep without copying or checking it), a free-form header's name
/// (prefixed with [`header::EXTRA_PREFIX`]) as [`Cow::Owned`]; each value is encoded
/// as in [`to_headers`].
pub fn each_header(message: &Message, mut put: impl FnMut(Cow<'static, str>, String)) {
    let mut fixed = |name: &'static str, value: String| put(Cow::Borrowed(name), encode(value));
    fixed(header::ID, message.id.to_string());
    fixed(header::KIND, message.kind.as_str().to_owned());
    fixed(header::NAME, message.name.clone());
    fixed(header::SCHEMA_VERSION, message.schema_version.to_string());
    fixed(header::SOURCE, message.source.clone());
    fixed(header::SUBJECT, message.subject.clone());
    fixed(header::STREAM, message.stream.clone());
    fixed(header::VERSION, message.version.to_string());
    fixed(header::POSITION, message.position.to_string());
    fixed(header::CONTENT_TYPE, message.content_type.clone());
    if let Some(previous) = message.previous {
        fixed(header::PREVIOUS, previous.to_string());
    }
    if let Some(correlation) = message.correlation_id {
        fixed(header::CORRELATION_ID, correlation.to_string());
    }
    if let Some(causation) = message.causation_id {
        fixed(header::CAUSATION_ID, causation.to_string());
    }
    if let Some(key) = &message.idempotency_key {
        fixed(header::IDEMPOTENCY_KEY, key.clone());
    }
    for (k, v) in &message.headers {
        put(
            Cow::Owned(format!("{}{k}", header::EXTRA_PREFIX)),
            encode(v.clone()),
        );
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn message() -> Message {
        Message {
            id: Uuid::nil(),
            kind: MessageKind::Event,
            name: "Deposited".to_owned(),
            schema_version: 3,
            source: "bank".to_owned(),
            subject: "bank.acct.Deposited".to_owned(),
            stream: "acct-ü 100%\n".to_owned(),
            version: 41,
            previous: Some(40),
            position: Position::new(1_234, 1_230),
            correlation_id: None,
            causation_id: Some(Uuid::nil()),
            idempotency_key: None,
            headers: BTreeMap::from([("traceparent".to_owned(), "00-é".to_owned())]),
            content_type: super::super::JSON.to_owned(),
            payload: Bytes::from_static(b"{}"),
        }
    }

    #[test]
    fn headers_are_named_ordered_and_encoded_as_on_the_wire() {
        let nil = Uuid::nil().to_string();
        let expected: Vec<(&str, &str)> = vec![
            ("Tessera-Id", &nil),
            ("Tessera-Kind", "event"),
            ("Tessera-Name", "Deposited"),
            ("Tessera-Schema-Version", "3"),
            ("Tessera-Source", "bank"),
            ("Tessera-Subject", "bank.acct.Deposited"),
            ("Tessera-Stream", "acct-%C3%BC 100%25%0A"),
            ("Tessera-Version", "41"),
            ("Tessera-Position", "1234.1230"),
            ("Content-Type", "application/json"),
            ("Tessera-Previous", "40"),
            ("Tessera-Causation-Id", &nil),
            ("Tessera-H-traceparent", "00-%C3%A9"),
        ];
        let m = message();
        let got = to_headers(&m);
        let got: Vec<(&str, &str)> = got.iter().map(|(n, v)| (&**n, &**v)).collect();
        assert_eq!(got, expected);
        let mut borrowed = Vec::new();
        each_header(&m, |name, _| {
            borrowed.push(matches!(name, Cow::Borrowed(_)))
        });
        assert_eq!(
            borrowed.iter().filter(|b| !**b).count(),
            1,
            "only the extra is owned"
        );
        let back = from_headers(got, m.payload.clone()).expect("decodes");
        assert_eq!(back, m);
    }
}
