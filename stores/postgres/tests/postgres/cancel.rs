//! Appends whose callers give up: the caller leading a group runs it in its own task,
//! so dropping that caller must neither abandon the group (and the appends of others
//! in it) nor lose the connection, and appends queued behind it must still run.

use std::time::Duration;

use tessera_core::{EventAppender, EventReader, ExpectedVersion, StreamId, Version};

use crate::common::{event, raw_client, TestDb};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_callers_leave_their_appends_running_and_the_connection_free() {
    let db = TestDb::new("cancel").await;
    // One append connection: the second append below must queue behind the first.
    let store = db.builder().writers(1).build().await.unwrap();
    let held = StreamId::new("held-1").unwrap();
    let queued = StreamId::new("queued-1").unwrap();
    store
        .append(&held, ExpectedVersion::NoStream, vec![event("First")])
        .await
        .unwrap();

    // A foreign transaction locks the stream row, so the next append's statement blocks.
    let raw = raw_client().await;
    raw.batch_execute(&format!(
        "BEGIN; SELECT version FROM {} WHERE stream_id = 'held-1' FOR UPDATE",
        db.table("streams")
    ))
    .await
    .unwrap();
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
    let mut landed = false;
    for _ in 0..250 {
        let held_version = store.stream_version(&held).await.unwrap();
        let queued_version = store.stream_version(&queued).await.unwrap();
        if held_version == Some(Version(1)) && queued_version == Some(Version(0)) {
            landed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(landed, "an append whose caller gave up never ran");
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
                let mut acknowledged = Vec::new();
                for k in 0..60 {
                    let stream = &streams[(t + k) % streams.len()];
                    let e = event("Rnd");
                    let id = e.id;
                    let append = store.append(stream, ExpectedVersion::Any, vec![e]);
                    let budget = Duration::from_micros(fastrand::u64(50..3_000));
                    if let Ok(result) = tokio::time::timeout(budget, append).await {
                        acknowledged.push((stream.clone(), id, result.unwrap().version));
                    }
                }
                acknowledged
            })
        })
        .collect();
    let mut acknowledged = Vec::new();
    for t in tasks {
        acknowledged.extend(t.await.unwrap());
    }
    // Give appends whose callers gave up time to finish, then check the streams.
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
