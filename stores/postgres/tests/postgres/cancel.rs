//! Appends whose callers give up: the caller leading a group runs it in its own task,
//! so dropping that caller must neither abandon the group (and the appends of others
//! in it) nor lose the connection, and appends queued behind it must still run.

use std::time::Duration;

use tessera_core::{EventAppender, EventReader, ExpectedVersion, StreamId, Version};

use crate::common::{event, lock_stream_row, TestDb};

/// Waits up to 5 s for `stream` to reach `version`.
async fn reaches(store: &tessera_postgres::PostgresStore, stream: &StreamId, version: u64) -> bool {
    for _ in 0..250 {
        if store.stream_version(stream).await.unwrap() == Some(Version(version)) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// A store built by `builder` with stream `held-1` at version 0, whose row a foreign
/// transaction (the returned client; end it with `ROLLBACK`) holds locked, so the next
/// append to it blocks on the connection that runs it.
async fn with_a_held_stream(
    db: &TestDb,
    builder: tessera_postgres::Builder,
) -> (
    tessera_postgres::PostgresStore,
    StreamId,
    tokio_postgres::Client,
) {
    let store = builder.build().await.unwrap();
    let held = StreamId::new("held-1").unwrap();
    store
        .append(&held, ExpectedVersion::NoStream, vec![event("First")])
        .await
        .unwrap();
    (store, held, lock_stream_row(db, "held-1").await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_callers_leave_their_appends_running_and_the_connection_free() {
    let db = TestDb::new("cancel").await;
    // One append connection: the second append below must queue behind the first,
    // whose statement blocks on the held stream's row.
    let (store, held, raw) = with_a_held_stream(&db, db.builder().writers(1)).await;
    let queued = StreamId::new("queued-1").unwrap();
    let blocked = event("Blocked");
    let blocked_id = blocked.id;
    let leader = {
        let store = store.clone();
        let held = held.clone();
        tokio::spawn(async move {
            let append = store.append(&held, ExpectedVersion::Exact(Version(0)), vec![blocked]);
            tokio::time::timeout(Duration::from_millis(600), append).await
        })
    };
    tokio::time::sleep(Duration::from_millis(150)).await;
    let follower = {
        let store = store.clone();
        let queued = queued.clone();
        tokio::spawn(async move {
            let append = store.append(&queued, ExpectedVersion::NoStream, vec![event("Queued")]);
            tokio::time::timeout(Duration::from_millis(300), append).await
        })
    };
    assert!(
        leader.await.unwrap().is_err(),
        "the append ran although its stream row was locked"
    );
    assert!(
        follower.await.unwrap().is_err(),
        "the queued append ran although the only connection was busy"
    );

    // Both callers are gone. Once the lock goes, both appends still land.
    raw.batch_execute("ROLLBACK").await.unwrap();
    assert!(
        reaches(&store, &held, 1).await,
        "the dropped leader's append never ran"
    );
    assert!(
        reaches(&store, &queued, 0).await,
        "the dropped follower's append never ran"
    );
    let found = store.find_event(&held, blocked_id).await.unwrap();
    assert_eq!(found.map(|e| e.version), Some(Version(1)));

    // And the connection came back: a new append completes.
    let after = StreamId::new("after-1").unwrap();
    let append = store.append(&after, ExpectedVersion::NoStream, vec![event("After")]);
    let outcome = tokio::time::timeout(Duration::from_secs(5), append).await;
    assert!(
        matches!(outcome, Ok(Ok(_))),
        "no append ran after the callers gave up: {outcome:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_cancelled_at_random_points_keep_every_stream_whole() {
    let db = TestDb::new("cancel_random").await;
    let store = db.builder().writers(2).build().await.unwrap();
    let streams: Vec<StreamId> = (0..8)
        .map(|i| StreamId::new(format!("rnd-{i}")).unwrap())
        .collect();
    let tasks: Vec<_> = (0..16)
        .map(|t| {
            let store = store.clone();
            let streams = streams.clone();
            tokio::spawn(async move {
                let (mut acknowledged, mut submitted) = (Vec::new(), Vec::new());
                for k in 0..60 {
                    let stream = &streams[(t + k) % streams.len()];
                    let e = event("Rnd");
                    let id = e.id;
                    submitted.push((stream.clone(), id));
                    let append = store.append(stream, ExpectedVersion::Any, vec![e]);
                    let budget = Duration::from_micros(fastrand::u64(50..3_000));
                    if let Ok(result) = tokio::time::timeout(budget, append).await {
                        acknowledged.push((stream.clone(), id, result.unwrap().version));
                    }
                }
                (acknowledged, submitted)
            })
        })
        .collect();
    let (mut acknowledged, mut submitted) = (Vec::new(), Vec::new());
    for t in tasks {
        let (a, s) = t.await.unwrap();
        acknowledged.extend(a);
        submitted.extend(s);
    }
    // Every append was queued at its first poll, so every one lands, whether its caller
    // waited or not, without another append coming to lead it.
    let mut missing = submitted.clone();
    for _ in 0..500 {
        let mut still = Vec::new();
        for (stream, id) in missing {
            if store.find_event(&stream, id).await.unwrap().is_none() {
                still.push((stream, id));
            }
        }
        missing = still;
        if missing.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(missing.is_empty(), "{} appends never ran", missing.len());
    let after = StreamId::new("rnd-after").unwrap();
    let last = tokio::time::timeout(
        Duration::from_secs(10),
        store.append(&after, ExpectedVersion::NoStream, vec![event("After")]),
    )
    .await;
    assert!(matches!(last, Ok(Ok(_))), "appends stopped: {last:?}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    for stream in &streams {
        let stored = store
            .read_stream(stream, tessera_core::ReadStream::forward())
            .await
            .unwrap();
        for (i, e) in stored.iter().enumerate() {
            assert_eq!(e.version.0, i as u64, "hole in {stream}");
        }
        let mut ids: Vec<_> = stored.iter().map(|e| e.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(
            ids.len(),
            stored.len(),
            "an event of {stream} is stored twice"
        );
    }
    for (stream, id, version) in acknowledged {
        let found = store.find_event(&stream, id).await.unwrap();
        assert_eq!(
            found.map(|e| e.version),
            Some(version),
            "acknowledged {id} lost"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_that_gave_up_behind_a_leader_still_lands() {
    let db = TestDb::new("cancel_follower").await;
    let (store, held, raw) = with_a_held_stream(&db, db.builder().writers(1)).await;
    let queued = StreamId::new("queued-1").unwrap();
    // The leader waits for its append; the follower behind it gives up.
    let leader = {
        let (store, held) = (store.clone(), held.clone());
        tokio::spawn(async move {
            store
                .append(
                    &held,
                    ExpectedVersion::Exact(Version(0)),
                    vec![event("Blocked")],
                )
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(150)).await;
    let follower = store.append(&queued, ExpectedVersion::NoStream, vec![event("Queued")]);
    assert!(tokio::time::timeout(Duration::from_millis(300), follower)
        .await
        .is_err());
    raw.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(leader.await.unwrap().unwrap().version, Version(1));
    // Nobody waits for the follower's append and no new append comes: it still runs.
    assert!(
        reaches(&store, &queued, 0).await,
        "the queued append was stranded"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_beyond_the_queue_bound_are_refused_and_the_rest_land() {
    let db = TestDb::new("cancel_bound").await;
    // One connection, groups of one: the bound is max(16 x 1, 1024) = 1024 queued.
    let builder = db.builder().writers(1).max_group_size(1);
    let (store, held, raw) = with_a_held_stream(&db, builder).await;
    let leader = {
        let (store, held) = (store.clone(), held.clone());
        tokio::spawn(async move {
            store
                .append(&held, ExpectedVersion::Any, vec![event("B")])
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(150)).await;
    let tasks: Vec<_> = (0..1100)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let s = StreamId::new(format!("many-{i}")).unwrap();
                store
                    .append(&s, ExpectedVersion::NoStream, vec![event("M")])
                    .await
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    raw.batch_execute("ROLLBACK").await.unwrap();
    leader.await.unwrap().unwrap();
    let (mut landed, mut refused) = (0, Vec::new());
    for (i, t) in tasks.into_iter().enumerate() {
        match t.await.unwrap() {
            Ok(_) => landed += 1,
            Err(tessera_core::StoreError::Unavailable { message, .. }) => {
                assert!(message.contains("not keeping up"), "{message}");
                refused.push(i);
            }
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    // All 1,100 queued within the second before the lock went (then exactly 76 are
    // refused); on a slow machine a few may have come after the queue began to drain.
    assert!(landed >= 1024, "{landed} landed");
    assert!(!refused.is_empty(), "nothing was refused beyond the bound");
    assert_eq!(landed + refused.len(), 1100);
    for i in refused {
        let s = StreamId::new(format!("many-{i}")).unwrap();
        assert_eq!(
            store.stream_version(&s).await.unwrap(),
            None,
            "refused {s} wrote"
        );
    }
}
