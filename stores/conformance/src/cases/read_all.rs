//! Reads of the global log: filters, `after` and `limit`.

use tessera_core::{
    EventFilter, EventId, EventStore, ExpectedVersion, NewEvent, Position, ReadAll, RecordedEvent,
};

use crate::support::{
    append_ok, assert_empty_store, assert_invalid_input, ev, read_all, read_all_pages, sid,
    wait_visible,
};

/// `read_all` with category, multi-category and event-type filters returns exactly the
/// matching events in log order (whole or in pages), respects `after` and `limit`, and
/// rejects a limit of 0; `count_events`, where the store counts, gives as many.
pub async fn read_all_filters_and_limits<S: EventStore>(store: S) {
    assert_empty_store(&store).await;
    let script: [(&str, &[&str]); 7] = [
        ("order-1", &["Placed", "Paid"]),
        ("payment-1", &["Charged"]),
        ("order-2", &["Placed"]),
        ("orders-1", &["Placed"]),
        ("order", &["Placed", "Cancelled"]),
        ("payment-2", &["Charged", "Refunded"]),
        ("order-1", &["Shipped"]),
    ];
    let mut sent: Vec<EventId> = Vec::new();
    let mut last = Position::START;
    for (stream, types) in script {
        let batch: Vec<NewEvent> = types.iter().map(|t| ev(t, sent.len() as u64)).collect();
        sent.extend(batch.iter().map(|e| e.id));
        last = append_ok(&store, &sid(stream), ExpectedVersion::Any, batch)
            .await
            .position;
    }
    wait_visible(&store, last).await;
    let all = read_all_pages(&store, Position::START, &EventFilter::all(), 1000).await;
    let ids = |events: &[RecordedEvent]| events.iter().map(|e| e.id).collect::<Vec<_>>();
    assert_eq!(
        ids(&all),
        sent,
        "read_all must return every event in append order"
    );

    let (cat, all_of) = (|c: &str| EventFilter::category(c), EventFilter::all);
    #[rustfmt::skip]
    let filters = [
        (cat("order"),                                         6),
        (cat("orders"),                                        1),
        (cat("payment"),                                       3),
        (all_of().with_types(["Placed"]),                      4),
        (cat("order").with_types(["Paid", "Placed"]),          4),
        (EventFilter::categories(["order", "payment"]),        9),
        (EventFilter::categories(["payment", "order", "order"]), 9),
        (cat("payment").with_types(["Refunded", "Placed"]),    1),
        (all_of().with_types(["Nope"]),                        0),
        (cat("ord"),                                           0),
        (cat("order-1"),                                       0),
        (cat("Order"),                                         0),
    ];
    for (filter, count) in filters {
        let expected: Vec<EventId> = all
            .iter()
            .filter(|e| filter.matches(e))
            .map(|e| e.id)
            .collect();
        assert_eq!(
            expected.len(),
            count,
            "the suite's own expectation for {filter:?}"
        );
        let got = read_all(
            &store,
            ReadAll::after(Position::START, 1000).filter(filter.clone()),
        )
        .await;
        assert_eq!(ids(&got), expected, "read_all with {filter:?}");
        let paged = read_all_pages(&store, Position::START, &filter, 2).await;
        assert_eq!(
            ids(&paged),
            expected,
            "read_all in pages of 2 with {filter:?}"
        );
        // A store that counts counts what read_all returns: the whole log, and a range
        // from after the third event up to the eighth.
        let whole = (Position::START, all[9].position, expected.len());
        let range = (all[2].position, all[7].position);
        let in_range = all[3..8].iter().filter(|e| filter.matches(e)).count();
        for (after, up_to, want) in [whole, (range.0, range.1, in_range)] {
            let counted = store
                .count_events(after, up_to, &filter)
                .await
                .unwrap_or_else(|e| panic!("count_events with {filter:?}: {e}"));
            if let Some(n) = counted {
                assert_eq!(
                    n, want as u64,
                    "count_events after {after} up to {up_to} with {filter:?}"
                );
            }
        }
    }

    let first3 = read_all(&store, ReadAll::after(Position::START, 3)).await;
    assert_eq!(ids(&first3), sent[..3], "read_all limit 3 from the start");
    let next3 = read_all(&store, ReadAll::after(all[2].position, 3)).await;
    assert_eq!(
        ids(&next3),
        sent[3..6],
        "read_all is strictly after `after`"
    );
    assert_eq!(all.len(), 10, "events appended");
    let tail = read_all(&store, ReadAll::after(all[8].position, 100)).await;
    assert_eq!(
        ids(&tail),
        sent[9..],
        "read_all after the second-to-last event"
    );
    let none = read_all(&store, ReadAll::after(all[9].position, 100)).await;
    assert!(
        none.is_empty(),
        "read_all after the last event must be empty: {none:?}"
    );
    let orders_after = read_all(
        &store,
        ReadAll::after(all[4].position, 2).filter(EventFilter::category("order")),
    )
    .await;
    let expected: Vec<EventId> = all[5..]
        .iter()
        .filter(|e| e.stream_id.category() == "order")
        .take(2)
        .map(|e| e.id)
        .collect();
    assert_eq!(
        ids(&orders_after),
        expected,
        "filtered read_all after a mid position, limit 2"
    );

    let result = store.read_all(ReadAll::after(Position::START, 0)).await;
    assert_invalid_input(result, "read_all with limit 0");
}

/// Category and type filters compare exact strings: `_`, `%` and `\` are not patterns,
/// and a category never matches a longer prefix of the stream id.
pub async fn category_filter_is_literal<S: EventStore>(store: S) {
    assert_empty_store(&store).await;
    let streams = [
        "a_c-1", "abc-1", "a%c-1", "aXYc-1", "a\\c-1", "A_C-1", "x-y-z", "x_y-1",
    ];
    let mut last = Position::START;
    for (i, s) in streams.iter().enumerate() {
        let types = ["T_pe", "Type", "T%pe", "T\\pe"];
        let e = ev(types[i % types.len()], i as u64);
        last = append_ok(&store, &sid(s), ExpectedVersion::NoStream, vec![e])
            .await
            .position;
    }
    wait_visible(&store, last).await;
    let cat = |c: &str| EventFilter::category(c);
    let types = |t: &str| EventFilter::all().with_types([t]);
    #[rustfmt::skip]
    let cases: [(EventFilter, Vec<&str>); 11] = [
        (cat("a_c"),      vec!["a_c-1"]),
        (cat("a%c"),      vec!["a%c-1"]),
        (cat("a%"),       vec![]),
        (cat("a\\c"),     vec!["a\\c-1"]),
        (cat("abc"),      vec!["abc-1"]),
        (cat("x"),        vec!["x-y-z"]),
        (cat("x-y"),      vec![]),
        (cat("x_y"),      vec!["x_y-1"]),
        (types("T_pe"),   vec!["a_c-1", "a\\c-1"]),
        (types("T%pe"),   vec!["a%c-1", "x-y-z"]),
        (types("T\\pe"),  vec!["aXYc-1", "x_y-1"]),
    ];
    for (filter, expected) in cases {
        let got = read_all(
            &store,
            ReadAll::after(Position::START, 100).filter(filter.clone()),
        )
        .await;
        let got: Vec<&str> = got.iter().map(|e| e.stream_id.as_str()).collect();
        assert_eq!(
            got, expected,
            "read_all with {filter:?} must match literally"
        );
    }
}
