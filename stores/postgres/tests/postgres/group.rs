//! Group commit: appends that share a transaction still succeed or fail on their own,
//! exactly as they would alone (checked against the in-memory reference store).

use std::sync::Arc;

use tessera_core::{
    EventAppender, EventReader, ExpectedVersion, MemoryStore, NewEvent, ReadStream, StoreError,
    StreamId, Version,
};
use tokio::sync::Barrier;

use crate::common::{event, TestDb};

/// What an append did, without store-specific positions.
fn shape(result: &Result<tessera_core::AppendOutcome, StoreError>) -> String {
    match result {
        Ok(o) => format!("ok {}..{}", o.first_version, o.version),
        Err(StoreError::WrongExpectedVersion { actual, .. }) => {
            format!("wrong version, actual {actual:?}")
        }
        Err(StoreError::DuplicateEventId {
            event_id, version, ..
        }) => format!("duplicate {event_id} at {version}"),
        Err(e) => format!("other: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_in_one_group_are_decided_one_by_one() {
    let db = TestDb::new("group").await;
    // One writer with large groups, so the concurrent appends below share transactions.
    let store = db
        .builder()
        .writers(1)
        .max_group_size(64)
        .build()
        .await
        .unwrap();
    let memory = MemoryStore::new();
    let stored: Vec<NewEvent> = (0..3).map(|_| event("Stored")).collect();
    for i in 0..12 {
        let s = StreamId::new(format!("acct-{i}")).unwrap();
        for store in [&store as &dyn Setup, &memory] {
            store.setup(&s, stored.clone()).await;
        }
    }
    let sid = |i: usize| StreamId::new(format!("acct-{i}")).unwrap();
    let fresh = |i: usize| StreamId::new(format!("new-{i}")).unwrap();
    let (a, b, c) = (stored[0].clone(), stored[1].clone(), stored[2].clone());
    let exact = |v| ExpectedVersion::Exact(Version(v));
    let cases: Vec<(StreamId, ExpectedVersion, Vec<NewEvent>)> = vec![
        (sid(0), exact(2), vec![event("X"), event("Y")]),
        (sid(1), exact(1), vec![event("X")]),
        (sid(2), ExpectedVersion::NoStream, vec![event("X")]),
        (sid(3), ExpectedVersion::StreamExists, vec![event("X")]),
        (
            sid(4),
            ExpectedVersion::Any,
            vec![event("X"), event("Y"), event("Z")],
        ),
        (
            sid(5),
            ExpectedVersion::NoStream,
            vec![a.clone(), b.clone(), c.clone()],
        ),
        (sid(6), ExpectedVersion::Any, vec![b.clone(), c.clone()]),
        (sid(7), exact(0), vec![b.clone()]),
        (sid(8), exact(2), vec![event("X"), a.clone()]),
        (sid(9), ExpectedVersion::Any, vec![c.clone(), b.clone()]),
        (sid(10), exact(0), vec![b.clone(), event("X")]),
        (sid(11), exact(9), vec![event("X")]),
        (fresh(0), ExpectedVersion::NoStream, vec![event("X")]),
        (fresh(1), ExpectedVersion::Any, vec![event("X"), event("Y")]),
        (fresh(2), ExpectedVersion::StreamExists, vec![event("X")]),
        (fresh(3), exact(0), vec![event("X")]),
    ];
    let expected: Vec<String> = {
        let mut out = Vec::new();
        for (s, e, evs) in &cases {
            out.push(shape(&memory.append(s, *e, evs.clone()).await));
        }
        out
    };
    let barrier = Arc::new(Barrier::new(cases.len()));
    let tasks: Vec<_> = cases
        .into_iter()
        .map(|(s, e, evs)| {
            let (store, barrier) = (store.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                shape(&store.append(&s, e, evs).await)
            })
        })
        .collect();
    let mut got = Vec::new();
    for t in tasks {
        got.push(t.await.unwrap());
    }
    assert_eq!(got, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_to_one_stream_in_one_group_see_each_other() {
    let db = TestDb::new("group_same").await;
    let store = db.builder().writers(1).build().await.unwrap();
    let s = StreamId::new("cart-1").unwrap();
    let barrier = Arc::new(Barrier::new(40));
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let (store, barrier, s) = (store.clone(), barrier.clone(), s.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                let expected = if i % 2 == 0 {
                    ExpectedVersion::NoStream
                } else {
                    ExpectedVersion::Any
                };
                store.append(&s, expected, vec![event("Added")]).await
            })
        })
        .collect();
    let mut ok = 0;
    let mut versions = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            Ok(o) => {
                ok += 1;
                versions.push(o.version.0);
            }
            Err(StoreError::WrongExpectedVersion { .. }) => {}
            Err(e) => panic!("{e}"),
        }
    }
    // Every Any lands; a NoStream only if it ran before everything else.
    assert!(ok == 20 || ok == 21, "{ok} appends landed");
    versions.sort_unstable();
    assert_eq!(versions, (0..ok).collect::<Vec<_>>());
    let stored = store.read_stream(&s, ReadStream::forward()).await.unwrap();
    assert_eq!(stored.len(), usize::try_from(ok).unwrap());
}

/// Writes the same starting state to either store.
trait Setup: Sync {
    fn setup<'a>(
        &'a self,
        s: &'a StreamId,
        events: Vec<NewEvent>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>>;
}

impl<T: EventAppender> Setup for T {
    fn setup<'a>(
        &'a self,
        s: &'a StreamId,
        events: Vec<NewEvent>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>> {
        Box::pin(async move {
            self.append(s, ExpectedVersion::NoStream, events[..1].to_vec())
                .await
                .unwrap();
            self.append(s, ExpectedVersion::Exact(Version(0)), events[1..].to_vec())
                .await
                .unwrap();
        })
    }
}
