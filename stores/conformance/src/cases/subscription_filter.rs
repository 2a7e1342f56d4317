//! Filtered subscriptions and subscriptions that start mid-log.

use tessera_core::{
    EventFilter, EventId, EventStore, ExpectedVersion, NewEvent, Position, StreamId,
};

use crate::support::{append_ok, assert_empty_store, assert_quiet, collect, ev, next_event, sid};

/// A category subscription delivers only its category's events (the category is the
/// exact, case-sensitive part of the stream id before the first `-`, or the whole id),
/// and type and multi-category filters apply the same way.
pub async fn category_subscription<S: EventStore>(store: S) {
    assert_empty_store(&store).await;
    let streams = [
        "alpha-1",
        "beta-1",
        "alpha",
        "alphabet-1",
        "Alpha-1",
        "alpha-2",
    ]
    .map(sid);
    let mut alpha: Vec<EventId> = Vec::new();
    let mut alpha_keep: Vec<EventId> = Vec::new();
    let mut others: Vec<EventId> = Vec::new();
    let mut record = |(a, k, o): Ids| {
        alpha.extend(a);
        alpha_keep.extend(k);
        others.extend(o);
    };
    record(append_round(&store, &streams, 0).await);
    let mut sub = store.subscribe(Position::START, EventFilter::category("alpha"));
    let mut keep = store.subscribe(
        Position::START,
        EventFilter::category("alpha").with_types(["Keep"]),
    );
    let mut multi = store.subscribe(
        Position::START,
        EventFilter::categories(["beta", "alphabet"]),
    );
    record(append_round(&store, &streams, 1).await);
    record(append_round(&store, &streams, 2).await);
    // A sentinel in the category, after events of other categories: the next thing each
    // subscription delivers after its expected events must be it, or nothing.
    append_ok(
        &store,
        &streams[1],
        ExpectedVersion::Any,
        vec![ev("Keep", 9)],
    )
    .await;
    let sentinel = ev("Keep", 10);
    let sentinel_id = sentinel.id;
    append_ok(&store, &streams[0], ExpectedVersion::Any, vec![sentinel]).await;
    alpha.push(sentinel_id);
    alpha_keep.push(sentinel_id);

    for (name, sub, expected) in [
        ("category alpha", &mut sub, &alpha),
        ("category alpha, type Keep", &mut keep, &alpha_keep),
    ] {
        let got = collect(sub, expected.len(), name).await;
        let got: Vec<EventId> = got.iter().map(|e| e.id).collect();
        assert_eq!(&got, expected, "{name}: wrong events or order");
        assert_quiet(sub, name).await;
    }
    let got = collect(&mut multi, others.len(), "categories beta and alphabet").await;
    assert!(
        got.iter()
            .all(|e| ["beta", "alphabet"].contains(&e.stream_id.category())),
        "categories beta and alphabet: delivered another category's event"
    );
    // The extra beta event appended before the sentinel.
    let last = next_event(&mut multi, "categories beta and alphabet: last beta event").await;
    assert_eq!(last.stream_id, streams[1]);
    let got: Vec<EventId> = got.iter().map(|e| e.id).collect();
    assert_eq!(
        got, others,
        "categories beta and alphabet: wrong events or order"
    );
    assert_quiet(&mut multi, "categories beta and alphabet").await;
}

/// Ids appended in one round: (category alpha, alpha of type Keep, beta or alphabet).
type Ids = (Vec<EventId>, Vec<EventId>, Vec<EventId>);

/// Appends one event to each stream, alternating the types `Keep` and `Drop`.
async fn append_round<S: EventStore>(store: &S, streams: &[StreamId], round: u64) -> Ids {
    let mut ids: Ids = (Vec::new(), Vec::new(), Vec::new());
    for (i, stream) in streams.iter().enumerate() {
        let kind = if i % 2 == 0 { "Keep" } else { "Drop" };
        let e = ev(kind, round);
        let id = e.id;
        append_ok(store, stream, ExpectedVersion::Any, vec![e]).await;
        if stream.category() == "alpha" {
            ids.0.push(id);
            if kind == "Keep" {
                ids.1.push(id);
            }
        } else if ["beta", "alphabet"].contains(&stream.category()) {
            ids.2.push(id);
        }
    }
    ids
}

/// A subscription from the position of an event starts with the event after it, then
/// goes live; one from the head delivers only new events.
pub async fn subscription_from_a_mid_position<S: EventStore>(store: S) {
    assert_empty_store(&store).await;
    let stream = sid("mid-1");
    let mut sent: Vec<NewEvent> = Vec::new();
    let mut positions = Vec::new();
    for i in 0..10 {
        let e = ev("Mid", i);
        sent.push(e.clone());
        positions.push(
            append_ok(&store, &stream, ExpectedVersion::Any, vec![e])
                .await
                .position,
        );
    }
    let mut from_mid = store.subscribe(positions[3], EventFilter::all());
    let mut from_head = store.subscribe(positions[9], EventFilter::all());
    let got = collect(&mut from_mid, 6, "subscription after the 4th event").await;
    let ids: Vec<EventId> = got.iter().map(|e| e.id).collect();
    let expected: Vec<EventId> = sent[4..].iter().map(|e| e.id).collect();
    assert_eq!(
        ids, expected,
        "a subscription after position p starts right after p"
    );
    assert_quiet(
        &mut from_head,
        "subscription from the head, before new events",
    )
    .await;

    let live = ev("Mid", 10);
    let live_id = live.id;
    append_ok(&store, &stream, ExpectedVersion::Any, vec![live]).await;
    for (name, sub) in [
        ("from the 4th event", &mut from_mid),
        ("from the head", &mut from_head),
    ] {
        let e = next_event(sub, name).await;
        assert_eq!(e.id, live_id, "subscription {name}: expected the new event");
        assert_quiet(sub, name).await;
    }
}
