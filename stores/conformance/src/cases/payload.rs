//! Payloads: every recorded field round-trips, for large, unicode and unusual JSON data.

use std::time::{Duration, SystemTime};

use serde_json::{json, Value};
use tessera_core::{
    EventData, EventFilter, EventId, EventStore, ExpectedVersion, Metadata, NewEvent, Position,
    RecordedEvent, StreamId, Version,
};

use crate::support::{
    append_ok, assert_empty_store, assert_same_event, assert_strictly_increasing, json_of,
    next_event, ok, read_all_pages, read_stream, sid, wait_visible, within,
};

/// How far a store's clock may be from the test's.
const CLOCK_SKEW: Duration = Duration::from_secs(120);

/// An event with explicit type, schema version, data and metadata.
fn event(event_type: &str, schema_version: u32, data: &Value, metadata: Metadata) -> NewEvent {
    NewEvent::json(event_type, data)
        .expect("JSON serializes")
        .with_schema_version(schema_version)
        .with_metadata(metadata)
}

/// Appends `sent` as one batch to a new `stream`, then checks every field of the event as
/// seen by `read_stream`, `read_all`, `find_event` and a subscription.
async fn round_trip<S: EventStore>(store: &S, stream: &StreamId, sent: &[NewEvent], what: &str) {
    let before = SystemTime::now();
    let out = append_ok(store, stream, ExpectedVersion::NoStream, sent.to_vec()).await;
    let after = SystemTime::now();
    assert_eq!(
        (out.first_version, out.version),
        (Version(0), Version(sent.len() as u64 - 1)),
        "{what}: outcome versions"
    );
    wait_visible(store, out.position).await;

    let stored = read_stream(store, stream).await;
    assert_eq!(stored.len(), sent.len(), "{what}: events stored");
    assert_strictly_increasing(&stored, what);
    assert_eq!(
        stored.last().map(|e| e.position),
        Some(out.position),
        "{what}: outcome position"
    );
    for (i, (r, s)) in stored.iter().zip(sent).enumerate() {
        let what = format!("{what}, event {i} via read_stream");
        assert_eq!(&r.stream_id, stream, "{what}: stream id");
        assert_eq!(r.version, Version(i as u64), "{what}: version");
        assert_same_event(r, s, &what);
        assert!(
            r.recorded_at + CLOCK_SKEW >= before && r.recorded_at <= after + CLOCK_SKEW,
            "{what}: recorded_at {:?} is not within {CLOCK_SKEW:?} of the append ({before:?}..{after:?})",
            r.recorded_at
        );
    }

    let filter = EventFilter::category(stream.category());
    let via_all = read_all_pages(store, Position::START, &filter, 1000).await;
    let via_all: Vec<&RecordedEvent> = via_all.iter().filter(|e| &e.stream_id == stream).collect();
    assert_eq!(via_all.len(), sent.len(), "{what}: events via read_all");
    let mut sub = store.subscribe(Position::START, filter);
    for (i, r) in stored.iter().enumerate() {
        let found = ok(
            "find_event",
            within("find_event", store.find_event(stream, r.id)).await,
        )
        .unwrap_or_else(|| panic!("{what}: find_event did not find event {i}"));
        let mut delivered = next_event(&mut sub, what).await;
        while &delivered.stream_id != stream {
            delivered = next_event(&mut sub, what).await;
        }
        for (via, e) in [
            ("read_all", via_all[i]),
            ("find_event", &found),
            ("subscription", &delivered),
        ] {
            let what = format!("{what}, event {i} via {via}");
            assert_eq!(
                (
                    &e.id,
                    &e.stream_id,
                    e.version,
                    e.position,
                    &e.event_type,
                    e.schema_version
                ),
                (
                    &r.id,
                    &r.stream_id,
                    r.version,
                    r.position,
                    &r.event_type,
                    r.schema_version
                ),
                "{what}: differs from read_stream"
            );
            assert_eq!(
                json_of(e),
                json_of(r),
                "{what}: data differs from read_stream"
            );
            assert_eq!(
                e.metadata, r.metadata,
                "{what}: metadata differs from read_stream"
            );
            assert_eq!(
                e.recorded_at, r.recorded_at,
                "{what}: recorded_at differs from read_stream"
            );
        }
    }
}

/// A 1 MiB payload (and a 64 KiB header) round-trips intact.
pub async fn large_payload_round_trip<S: EventStore>(store: S) {
    assert_empty_store(&store).await;
    let unit = "The quick brown fox jumps over the lazy dog. Ça va? 你好! 🎉 \"quoted\" \\ / \n";
    let blob: String = unit.repeat((1 << 20) / unit.len() + 1);
    assert!(blob.len() >= 1 << 20);
    let numbers: Vec<u64> = (0..10_000).map(|i| i * 7919).collect();
    let data = json!({ "blob": blob, "numbers": numbers, "n": 1 });
    let metadata = Metadata::correlated(EventId::random().0)
        .caused_by(EventId::random().0)
        .with_header("big", "h".repeat(64 * 1024));
    let sent = [
        event("Large", 1, &data, metadata),
        event("Small", 1, &json!({"after": "large"}), Metadata::default()),
    ];
    round_trip(&store, &sid("large-1"), &sent, "a 1 MiB payload").await;
    let stored = read_stream(&store, &sid("large-1")).await;
    let back = json_of(&stored[0]);
    assert_eq!(
        back["blob"].as_str().map(str::len),
        Some(blob.len()),
        "blob length"
    );
}

/// Unicode everywhere: stream id and category, event type, data (escapes, emoji with
/// joiners, right-to-left text, numbers beyond f64 precision) and metadata headers.
pub async fn unicode_payload_round_trip<S: EventStore>(store: S) {
    assert_empty_store(&store).await;
    let data = json!({
        "emoji": "🎉👩‍👩‍👧‍👦🏳️‍🌈",
        "rtl": "مرحبا بالعالم",
        "cjk": "漢字かなカナ한글",
        "combining": "e\u{301} n\u{303}",
        "escapes": "quote\" backslash\\ slash/ tab\t newline\n cr\r bell\u{7} del\u{7f}",
        "nested": { "ключ": ["ß", 1, -2, 3.5, true, false, null, {}] },
        "beyond f64": 9_007_199_254_740_993_u64,
        "max u64": u64::MAX,
        "min i64": i64::MIN,
        "": "empty key",
        "zzz": 1, "aaa": 2
    });
    let metadata = Metadata::correlated(EventId::random().0)
        .caused_by(EventId::random().0)
        .with_header("user", "Zoë")
        .with_header("ключ", "значение")
        .with_header("emoji 🎉", "✓ done")
        .with_header("empty", "")
        .with_header("quote\"", "back\\slash");
    let sent = [
        event("Événement_passé✓", 3, &data, metadata),
        event(
            "普通",
            2_147_483_647,
            &json!("単純な文字列"),
            Metadata::default(),
        ),
    ];
    round_trip(&store, &sid("ünïcødé-测试-🎉"), &sent, "a unicode payload").await;
}

/// Data of every JSON shape (null, booleans, numbers, strings, empty and nested arrays
/// and objects) and schema versions from 0 up round-trip as JSON values.
pub async fn json_shapes_round_trip<S: EventStore>(store: S) {
    assert_empty_store(&store).await;
    let mut deep = json!("bottom");
    for i in 0..64 {
        deep = if i % 2 == 0 {
            json!([deep])
        } else {
            json!({ "d": deep })
        };
    }
    let shapes = [
        json!(null),
        json!(true),
        json!(false),
        json!(0),
        json!(-1),
        json!(0.5),
        json!(-2.25),
        json!(""),
        json!("text"),
        json!([]),
        json!({}),
        json!([1, "two", [3], {"four": 4}]),
        deep,
    ];
    let sent: Vec<NewEvent> = shapes
        .iter()
        .enumerate()
        .map(|(i, v)| {
            event(
                "Shape",
                u32::try_from(i).expect("small"),
                v,
                Metadata::default(),
            )
        })
        .collect();
    round_trip(&store, &sid("shape-1"), &sent, "JSON shapes").await;
    // Data written as text keeps its meaning whatever the store does to whitespace and
    // key order.
    let text = b"{ \"b\" : [ 1 , 2 ] ,\n \"a\" : { \"y\" : null , \"x\" : \"\\u00e9\" } }".to_vec();
    let raw = NewEvent::new("Raw", EventData::from_json_bytes(text).expect("valid JSON"));
    let stream = sid("shape-2");
    append_ok(&store, &stream, ExpectedVersion::NoStream, vec![raw]).await;
    let stored = read_stream(&store, &stream).await;
    assert_eq!(
        json_of(&stored[0]),
        json!({"a": {"x": "é", "y": null}, "b": [1, 2]}),
        "JSON written as formatted text"
    );
}
