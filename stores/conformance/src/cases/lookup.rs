//! Point lookups: a stream's version, the head of the log, one event by id.

use tessera_core::{EventId, EventStore, ExpectedVersion, Version};

use crate::support::{
    append_ok, assert_empty_store, ev, evs, ok, read_stream, sid, version_of, wait_visible, within,
};

/// `stream_version` is `None` for a missing stream and the last version otherwise;
/// `head` is `None` for an empty log and then the position of the newest event;
/// `find_event` returns the stored event by id, scoped to its stream.
pub async fn stream_version_head_and_find_event<S: EventStore>(store: S) {
    assert_empty_store(&store).await;
    let (one, two, three) = (sid("look-1"), sid("look-2"), sid("look-3"));
    assert_eq!(
        version_of(&store, &one).await,
        None,
        "stream_version of a missing stream"
    );
    let found = ok(
        "find_event",
        store.find_event(&one, EventId::random()).await,
    );
    assert!(found.is_none(), "find_event in a missing stream: {found:?}");

    let first = evs("Look", 0, 3);
    let out = append_ok(&store, &one, ExpectedVersion::NoStream, first.clone()).await;
    wait_visible(&store, out.position).await;
    let head = ok("head", within("head", store.head()).await);
    assert_eq!(head, Some(out.position), "head after the first append");
    assert_eq!(
        version_of(&store, &one).await,
        Some(Version(2)),
        "stream_version after 3 events"
    );

    let second = evs("Look", 3, 2);
    let out2 = append_ok(&store, &two, ExpectedVersion::NoStream, second.clone()).await;
    wait_visible(&store, out2.position).await;
    let head = ok("head", within("head", store.head()).await);
    assert_eq!(
        head,
        Some(out2.position),
        "head after an append to another stream"
    );
    assert!(
        out2.position > out.position,
        "positions grow across streams"
    );
    assert_eq!(
        version_of(&store, &one).await,
        Some(Version(2)),
        "another stream's append"
    );
    assert_eq!(
        version_of(&store, &two).await,
        Some(Version(1)),
        "stream_version of look-2"
    );

    let stored = read_stream(&store, &one).await;
    for (i, e) in first.iter().enumerate() {
        let found = ok(
            "find_event",
            within("find_event", store.find_event(&one, e.id)).await,
        );
        assert_eq!(
            found.as_ref(),
            Some(&stored[i]),
            "find_event must return the stored event, as read_stream does"
        );
    }
    let elsewhere = ok("find_event", store.find_event(&two, first[0].id).await);
    assert!(
        elsewhere.is_none(),
        "find_event is scoped to the stream: look-1's event found in look-2: {elsewhere:?}"
    );
    let unknown = ok(
        "find_event",
        store.find_event(&one, EventId::random()).await,
    );
    assert!(
        unknown.is_none(),
        "find_event of an unknown id: {unknown:?}"
    );

    // The same id stored in two streams: each lookup finds its own stream's event.
    let copy = vec![first[1].clone().with_schema_version(5)];
    append_ok(&store, &three, ExpectedVersion::NoStream, copy).await;
    let in_three = ok("find_event", store.find_event(&three, first[1].id).await)
        .expect("the copy is stored in look-3");
    assert_eq!(
        (
            in_three.stream_id.clone(),
            in_three.version,
            in_three.schema_version
        ),
        (three, Version(0), 5)
    );
    let in_one = ok("find_event", store.find_event(&one, first[1].id).await)
        .expect("the original is still in look-1");
    assert_eq!(in_one, stored[1], "look-1's event is unchanged");
}

/// `last_of_types` answers, for each `(stream, below)`, the version of the stream's last
/// event of one of the types below that version, as reading the stream backwards would:
/// past other types, across more than a page of them, `None` where there is none, the
/// stream is missing or `below` is 0, in the order asked.
pub async fn last_of_types_looks_back<S: EventStore>(store: S) {
    assert_empty_store(&store).await;
    let (a, b, missing) = (sid("back-a"), sid("back-b"), sid("back-missing"));
    // a: Public at 0 and 3, Private elsewhere; b: Public at 1, then 70 Private (more
    // than a page of a backwards read).
    let mut a_events = vec![ev("Public", 0), ev("Private", 1), ev("Private", 2)];
    a_events.extend([ev("Public", 3), ev("Private", 4)]);
    append_ok(&store, &a, ExpectedVersion::NoStream, a_events).await;
    let mut b_events = vec![ev("Private", 0), ev("Public", 1)];
    b_events.extend(evs("Private", 2, 70));
    let out = append_ok(&store, &b, ExpectedVersion::NoStream, b_events).await;
    wait_visible(&store, out.position).await;
    let types = ["Public".to_owned(), "Other".to_owned()];
    let queries = [
        (a.clone(), Version(5)),
        (a.clone(), Version(3)),
        (a.clone(), Version(1)),
        (a.clone(), Version(0)),
        (b.clone(), Version(72)),
        (b.clone(), Version(1)),
        (missing, Version(4)),
    ];
    let found = ok("last_of_types", store.last_of_types(&queries, &types).await);
    assert_eq!(
        found,
        [
            Some(Version(3)),
            Some(Version(0)),
            Some(Version(0)),
            None,
            Some(Version(1)),
            None,
            None
        ],
        "last_of_types for {queries:?}"
    );
    let none = ok("last_of_types", store.last_of_types(&[], &types).await);
    assert!(none.is_empty());
}
