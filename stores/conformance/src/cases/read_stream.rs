//! Reads of one stream, in both directions, from a version and with a limit.

use tessera_core::{EventStore, ExpectedVersion, NewEvent, ReadStream, RecordedEvent, Version};

use crate::support::{
    append_ok, assert_empty_store, assert_invalid_input, assert_same_event, evs, ok, read_stream,
    sid, within,
};

/// The versions of `events`.
fn versions(events: &[RecordedEvent]) -> Vec<u64> {
    events.iter().map(|e| e.version.0).collect()
}

/// Forward from version `from`, at most `limit` events.
fn fwd(from: u64, limit: usize) -> ReadStream {
    ReadStream::forward().from(Version(from)).limit(limit)
}

/// Backward from version `from`, at most `limit` events.
fn back(from: u64, limit: usize) -> ReadStream {
    ReadStream::backward().from(Version(from)).limit(limit)
}

/// `read_stream` forward and backward, from a version and with a limit, returns the
/// stream's own events in order; a missing stream and reads past the end are empty; a
/// backward read from past the end starts at the last event; a limit of 0 is
/// `InvalidInput`.
pub async fn read_stream_directions<S: EventStore>(store: S) {
    assert_empty_store(&store).await;
    let stream = sid("rs-1");
    let other = sid("rs-2");
    let mut sent: Vec<NewEvent> = Vec::new();
    for size in [3, 1, 4, 2] {
        let batch = evs("Read", sent.len() as u64, size);
        sent.extend(batch.clone());
        append_ok(&store, &stream, ExpectedVersion::Any, batch).await;
        append_ok(&store, &other, ExpectedVersion::Any, evs("Other", 0, 1)).await;
    }
    let all = read_stream(&store, &stream).await;
    let every: Vec<u64> = (0..10).collect();
    assert_eq!(versions(&all), every, "forward read of the whole stream");
    for (r, s) in all.iter().zip(&sent) {
        assert_eq!(
            r.stream_id, stream,
            "read_stream returned another stream's event"
        );
        assert_same_event(r, s, "forward read");
    }

    let backward_all: Vec<u64> = every.iter().rev().copied().collect();
    #[rustfmt::skip]
    let cases = [
        ("forward, limit 1",                        ReadStream::forward().limit(1),  vec![0]),
        ("forward from 3, limit 4",                 fwd(3, 4),                       vec![3, 4, 5, 6]),
        ("forward from 8, limit 10",                fwd(8, 10),                      vec![8, 9]),
        ("forward from 9",                          fwd(9, usize::MAX),              vec![9]),
        ("forward from 10 (the end)",               fwd(10, usize::MAX),             vec![]),
        ("forward from 1000",                       fwd(1000, 5),                    vec![]),
        ("backward",                                ReadStream::backward(),          backward_all),
        ("backward, limit 3",                       ReadStream::backward().limit(3), vec![9, 8, 7]),
        ("backward from 5, limit 3",                back(5, 3),                      vec![5, 4, 3]),
        ("backward from 1, limit 10",               back(1, 10),                     vec![1, 0]),
        ("backward from 0",                         back(0, usize::MAX),             vec![0]),
        ("backward from 50 (past the end), limit 2", back(50, 2),                    vec![9, 8]),
    ];
    for (what, read, expected) in cases {
        let got = ok(what, within(what, store.read_stream(&stream, read)).await);
        assert_eq!(versions(&got), expected, "read_stream {what}: versions");
        for e in &got {
            let same = &all[usize::try_from(e.version.0).expect("small")];
            assert_eq!(e, same, "read_stream {what}: differs from the forward read");
        }
    }

    let missing = sid("rs-missing");
    for read in [
        ReadStream::forward(),
        ReadStream::backward(),
        fwd(3, 2),
        back(3, 2),
    ] {
        let got = ok(
            "read of a missing stream",
            store.read_stream(&missing, read).await,
        );
        assert!(
            got.is_empty(),
            "a missing stream must read as empty ({read:?}): {got:?}"
        );
    }
    for (what, s) in [("existing", &stream), ("missing", &missing)] {
        for read in [
            ReadStream::forward().limit(0),
            ReadStream::backward().limit(0),
        ] {
            let result = store.read_stream(s, read).await;
            assert_invalid_input(
                result,
                &format!("read_stream of the {what} stream, {read:?}"),
            );
        }
    }
}
