//! Commands to another service, as messages.

use std::collections::BTreeMap;

use serde::Serialize;
use tessera_core::{BoxError, Position};
use uuid::Uuid;

use super::{Message, MessageKind, JSON};

/// A command message from `source` to the context `target`, named `name`, carrying
/// `idempotency_key`: its id derives from the target and the key, so sending it again
/// (after a crash before the send was recorded) is the same message, dropped by the
/// broker's de-duplication or handled once by the owner's keyed command handler. It
/// goes to subject `{target}.commands.{name}`, in the target's durable queue. It
/// carries the current span's trace context, if traced, so the owner's handling
/// continues the sender's trace.
///
/// ```
/// use tessera_projections::integration::command_message;
/// let a = command_message("ordering", "inventory", "ReserveStock", "order-7:reserve", &serde_json::json!({"sku": "a"}), None).unwrap();
/// let b = command_message("ordering", "inventory", "ReserveStock", "order-7:reserve", &serde_json::json!({"sku": "a"}), None).unwrap();
/// assert_eq!(a.id, b.id);
/// assert_eq!(a.subject, "inventory.commands.ReserveStock");
/// ```
pub fn command_message<T: Serialize + ?Sized>(
    source: &str,
    target: &str,
    name: &str,
    idempotency_key: &str,
    payload: &T,
    correlation_id: Option<Uuid>,
) -> Result<Message, BoxError> {
    let id = Uuid::new_v5(
        &tessera_core::idempotency::NAMESPACE,
        format!("command\0{target}\0{idempotency_key}").as_bytes(),
    );
    let mut headers = BTreeMap::new();
    if let Some(trace) = tessera_core::trace::TraceContext::current() {
        trace.write_to(&mut headers);
    }
    Ok(Message {
        id,
        kind: MessageKind::Command,
        name: name.to_owned(),
        schema_version: 1,
        source: source.to_owned(),
        subject: format!("{target}.commands.{name}"),
        stream: String::new(),
        version: 0,
        previous: None,
        position: Position::START,
        correlation_id,
        causation_id: None,
        idempotency_key: Some(idempotency_key.to_owned()),
        headers,
        content_type: JSON.to_owned(),
        payload: serde_json::to_vec(payload)?.into(),
    })
}
