//! Following a correlation: the events one request caused, page by page.

use tessera_core::{
    EventId, EventReader, EventStore, ExpectedVersion, Metadata, NewEvent, Position, RecordedEvent,
};
use uuid::Uuid;

use crate::support::{
    answer, append_ok, assert_empty_store, assert_invalid_input, assert_strictly_increasing, ev,
    first_answer, ok, read_all_pages, sid, wait_visible, within,
};
use crate::Browsing;

/// `correlated` returns exactly the events whose metadata correlation id is the one
/// asked for (not those it merely caused, nor a header of that name), in position
/// order, strictly after `after`, whatever the page size, as `read_all` returns them; a
/// limit of 0 is `InvalidInput`. Skipped, visibly, for a store that cannot search by
/// correlation and may say so.
pub async fn correlated_events<S: EventStore>(store: S, browsing: Browsing) {
    assert_empty_store(&store).await;
    let (c1, c2) = (Uuid::new_v4(), Uuid::new_v4());
    let call = "correlated(c1, START, 10)";
    let first = ok(
        call,
        within(call, store.correlated(c1, Position::START, 10)).await,
    );
    let Some(first) = first_answer("correlated_events", call, browsing, first) else {
        return;
    };
    assert!(first.is_empty(), "{call} of an empty store: {first:?}");

    let with = |n: u64, metadata: Metadata| ev("Traced", n).with_metadata(metadata);
    let header = Metadata::default().with_header("correlation_id", c1.to_string());
    let script: [(&str, Vec<NewEvent>); 7] = [
        (
            "trip-1",
            vec![with(0, Metadata::correlated(c1)), ev("Plain", 1)],
        ),
        ("trip-2", vec![with(2, Metadata::correlated(c2))]),
        (
            "trip-1",
            vec![with(3, Metadata::correlated(c1).caused_by(c2))],
        ),
        (
            "other-1",
            vec![with(4, Metadata::correlated(c2).caused_by(c1))],
        ),
        ("other-2", vec![with(5, header)]),
        (
            "trip-3",
            (6..9).map(|n| with(n, Metadata::correlated(c1))).collect(),
        ),
        ("trip-2", vec![with(9, Metadata::correlated(c1))]),
    ];
    let mut last = Position::START;
    for (stream, events) in script {
        let out = append_ok(&store, &sid(stream), ExpectedVersion::Any, events).await;
        last = out.position;
    }
    wait_visible(&store, last).await;
    let log = read_all_pages(&store, Position::START, &Default::default(), 1000).await;
    assert_eq!(log.len(), 10, "events appended");
    let of = |id: Uuid| -> Vec<RecordedEvent> {
        let matching = log.iter().filter(|e| e.metadata.correlation_id == Some(id));
        matching.cloned().collect()
    };
    let (of_c1, of_c2) = (of(c1), of(c2));
    assert_eq!(
        (of_c1.len(), of_c2.len()),
        (6, 2),
        "the suite's own expectation"
    );

    for limit in [1, 2, 4, 1000] {
        let got = correlated_pages(&store, c1, Position::START, limit).await;
        assert_eq!(
            got, of_c1,
            "correlated(c1) in pages of {limit}, as read_all returns them"
        );
    }
    let got = correlated_pages(&store, c2, Position::START, 1).await;
    assert_eq!(got, of_c2, "correlated(c2) in pages of 1");
    // Strictly after `after`: from an event of the correlation, from one of another,
    // from inside a batch, from the last event of the log.
    for after in [
        of_c1[1].position,
        of_c2[1].position,
        of_c1[3].position,
        last,
    ] {
        let want: Vec<_> = of_c1
            .iter()
            .filter(|e| e.position > after)
            .cloned()
            .collect();
        let got = correlated_pages(&store, c1, after, 2).await;
        assert_eq!(got, want, "correlated(c1) after {after}");
    }
    let unknown = correlated_pages(&store, EventId::random().0, Position::START, 10).await;
    assert!(unknown.is_empty(), "an unknown correlation id: {unknown:?}");

    let result = store.correlated(c1, Position::START, 0).await;
    assert_invalid_input(result, "correlated with limit 0");
}

/// Every event of `correlation_id` after `after`, read in pages of `limit`, each page
/// checked.
async fn correlated_pages<S: EventReader>(
    store: &S,
    correlation_id: Uuid,
    after: Position,
    limit: usize,
) -> Vec<RecordedEvent> {
    let mut out: Vec<RecordedEvent> = Vec::new();
    let mut after = after;
    loop {
        let what = format!("correlated({correlation_id}, {after}, {limit})");
        let page = within(&what, store.correlated(correlation_id, after, limit)).await;
        let page = answer(&what, ok(&what, page));
        assert!(page.len() <= limit, "{what} returned {} events", page.len());
        assert_strictly_increasing(&page, &what);
        for e in &page {
            assert!(
                e.position > after,
                "{what} returned {} at {}",
                e.id,
                e.position
            );
            let id = e.metadata.correlation_id;
            assert_eq!(id, Some(correlation_id), "{what} returned {}", e.id);
        }
        let full = page.len() == limit;
        let Some(last) = page.last().map(|e| e.position) else {
            break;
        };
        out.extend(page);
        assert!(out.len() <= 1000, "{what}: more events than appended");
        if !full {
            break;
        }
        after = last;
    }
    out
}
