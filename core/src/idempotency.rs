//! Idempotent commands: deterministic event ids, and the fingerprint that tells a retry
//! of a request from another request sent under the same key.
//!
//! A command handled with an idempotency key gets event ids derived from (stream, key,
//! index) ([`command_event_id`]), so a retry lands once. When the command also carries a
//! [`Fingerprint`] of its request, the first event records it in the header
//! [`FINGERPRINT_HEADER`]; a later run of the key with another fingerprint is then
//! refused with [`CommandError::KeyReused`](crate::CommandError::KeyReused) instead of
//! answering the first run's outcome.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use crate::{EventId, StreamId};

/// The metadata header in which the first event of a keyed command records its
/// request's [`Fingerprint`]. Headers starting with `tessera.` are Tessera's own.
pub const FINGERPRINT_HEADER: &str = "tessera.fingerprint";

/// The UUID v5 namespace of every id Tessera derives.
pub const NAMESPACE: Uuid = Uuid::from_u128(0x7e55_e7a0_5b1c_4c8e_9d1e_a0c3_17f2_4b60);

/// The id of the `index`-th event produced by the command with idempotency `key` on
/// `stream`. The same inputs always give the same id, so a retried command's events
/// collide with the first attempt's and the store's idempotency rules make it land once.
pub fn command_event_id(stream: &StreamId, key: &str, index: usize) -> EventId {
    let mut name = Vec::with_capacity(stream.as_str().len() + key.len() + 24);
    name.extend_from_slice(b"cmd\0");
    name.extend_from_slice(stream.as_str().as_bytes());
    name.push(0);
    name.extend_from_slice(key.as_bytes());
    name.push(0);
    name.extend_from_slice(index.to_string().as_bytes());
    EventId::derived(&name)
}

/// What identifies a request, so that a retry (same key, same request) replays the first
/// outcome and a reuse of the key for another request is refused.
///
/// Two requests have the same fingerprint when their canonical JSON is the same
/// ([`Fingerprint::of`]: object keys sorted, no whitespace), or when the bytes given to
/// [`Fingerprint::from_bytes`] are. Shown and stored as a UUID (v5 in Tessera's
/// namespace).
///
/// ```
/// use std::collections::HashMap;
/// use tessera_core::Fingerprint;
///
/// let a = HashMap::from([("sku", "pen"), ("quantity", "2")]);
/// let b = HashMap::from([("quantity", "2"), ("sku", "pen")]);
/// assert_eq!(Fingerprint::of(&a).unwrap(), Fingerprint::of(&b).unwrap());
/// assert_ne!(Fingerprint::of(&a).unwrap(), Fingerprint::of(&("pen", 3)).unwrap());
/// let shown = Fingerprint::from_bytes(b"body").to_string();
/// assert_eq!(shown.parse::<Fingerprint>().unwrap(), Fingerprint::from_bytes(b"body"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint(Uuid);

impl Fingerprint {
    /// The fingerprint of `request`'s canonical JSON.
    ///
    /// # Errors
    /// When `request` cannot be serialized to JSON (a map with non-string keys, a
    /// failing `Serialize` impl).
    pub fn of<T: Serialize + ?Sized>(request: &T) -> Result<Self, serde_json::Error> {
        let canonical = serde_json::to_vec(&sorted(serde_json::to_value(request)?))?;
        Ok(Self::from_bytes(&canonical))
    }

    /// The fingerprint of `bytes` (a request body as received, a hash of it).
    pub fn from_bytes(bytes: &[u8]) -> Self {
        let mut name = Vec::with_capacity(bytes.len() + 4);
        name.extend_from_slice(b"req\0");
        name.extend_from_slice(bytes);
        Self(Uuid::new_v5(&NAMESPACE, &name))
    }

    /// The fingerprint as a UUID.
    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for Fingerprint {
    type Err = uuid::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(Self)
    }
}

/// `value` with every object's keys in sorted order, whatever map serde_json uses.
fn sorted(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_deterministic_and_distinct() {
        let s = StreamId::new("order-1").unwrap();
        let t = StreamId::new("order-2").unwrap();
        assert_eq!(command_event_id(&s, "k", 0), command_event_id(&s, "k", 0));
        assert_ne!(command_event_id(&s, "k", 0), command_event_id(&s, "k", 1));
        assert_ne!(command_event_id(&s, "k", 0), command_event_id(&t, "k", 0));
        assert_ne!(command_event_id(&s, "k", 0), command_event_id(&s, "k2", 0));
        // Separators keep ("a", "b-c") and ("a-b", "c") apart.
        let ab = StreamId::new("a-b").unwrap();
        let a = StreamId::new("a").unwrap();
        assert_ne!(
            command_event_id(&ab, "c", 0),
            command_event_id(&a, "b\0c", 0)
        );
    }

    #[test]
    fn fingerprints_ignore_key_order_but_not_values() {
        let a = serde_json::json!({ "b": 1, "a": { "y": [1, 2], "x": null } });
        let b = serde_json::json!({ "a": { "x": null, "y": [1, 2] }, "b": 1 });
        let c = serde_json::json!({ "a": { "x": null, "y": [2, 1] }, "b": 1 });
        let fp = |v: &Value| Fingerprint::of(v).unwrap();
        assert_eq!(fp(&a), fp(&b));
        assert_ne!(fp(&a), fp(&c));
        assert_eq!(
            fp(&a),
            Fingerprint::from_bytes(br#"{"a":{"x":null,"y":[1,2]},"b":1}"#)
        );
        assert_ne!(
            Fingerprint::from_bytes(b"x").as_uuid(),
            command_event_id(&StreamId::new("x").unwrap(), "x", 0).0,
        );
    }
}
