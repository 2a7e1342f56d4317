//! Point lookups: a stream's version, the head of the log, one event by id.

use tessera_core::{EventId, EventStore, ExpectedVersion, Version};

use crate::support::{
    append_ok, assert_empty_store, evs, ok, read_stream, sid, version_of, wait_visible, within,
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
