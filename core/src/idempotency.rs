//! Deterministic event ids for idempotent commands.

use uuid::Uuid;

use crate::{EventId, StreamId};

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
}
