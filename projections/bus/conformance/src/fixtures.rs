//! Messages the cases (and adapters' own tests) publish.

use std::collections::BTreeMap;

use tessera_core::Position;
use tessera_projections::integration::{Message, MessageKind, JSON};

/// An event of `context` with every header set, extras (`traceparent`, `tracestate`)
/// and a Unicode stream id included, and a fresh id.
pub fn full_event(context: &str) -> Message {
    let mut headers = BTreeMap::new();
    headers.insert(
        "traceparent".to_owned(),
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned(),
    );
    headers.insert("tracestate".to_owned(), "congo=t61rcWkgMzE".to_owned());
    Message {
        id: uuid::Uuid::new_v4(),
        kind: MessageKind::Event,
        name: "Deposited".to_owned(),
        schema_version: 3,
        source: context.to_owned(),
        subject: format!("{context}.acct.Deposited"),
        stream: "acct-ünïcode 1".to_owned(),
        version: 41,
        previous: Some(40),
        position: Position::new(1_234, 1_230),
        correlation_id: Some(uuid::Uuid::new_v4()),
        causation_id: Some(uuid::Uuid::new_v4()),
        idempotency_key: None,
        headers,
        content_type: JSON.to_owned(),
        payload: serde_json::to_vec(&serde_json::json!({"amount": 7, "note": "é"}))
            .expect("json")
            .into(),
    }
}
