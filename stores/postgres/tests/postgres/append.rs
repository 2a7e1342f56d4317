//! Appends: versions, expectations, idempotency, unknown outcomes.

use std::time::Duration;

use tessera_core::{
    AppendOutcome, EventAppender, EventReader, ExpectedVersion, NewEvent, ReadStream, StoreError,
    StreamId, Version,
};
use tokio_postgres::error::SqlState;

use crate::common::{
    count_rows, database_url, event, is_unavailable, lock_stream_row, raw_client,
    wait_for_activity, TestDb,
};

fn sid(s: &str) -> StreamId {
    StreamId::new(s).unwrap()
}

#[tokio::test]
async fn versions_start_at_zero_and_expectations_are_checked() {
    let db = TestDb::new("expectations").await;
    let store = db.store().await;
    let s = sid("order-1");
    let out = store
        .append(&s, ExpectedVersion::NoStream, vec![event("A"), event("B")])
        .await
        .unwrap();
    assert_eq!((out.first_version, out.version), (Version(0), Version(1)));
    let out2 = store
        .append(&s, ExpectedVersion::Exact(Version(1)), vec![event("C")])
        .await
        .unwrap();
    assert_eq!((out2.first_version, out2.version), (Version(2), Version(2)));
    assert!(out2.position > out.position);
    let out3 = store
        .append(&s, ExpectedVersion::StreamExists, vec![event("D")])
        .await
        .unwrap();
    assert_eq!(out3.version, Version(3));
    let out4 = store
        .append(&s, ExpectedVersion::Any, vec![event("E")])
        .await
        .unwrap();
    assert_eq!(out4.version, Version(4));
    let fresh = store
        .append(&sid("order-2"), ExpectedVersion::Any, vec![event("A")])
        .await
        .unwrap();
    assert_eq!(fresh.version, Version(0));

    for (expected, actual) in [
        (ExpectedVersion::NoStream, Some(Version(4))),
        (ExpectedVersion::Exact(Version(2)), Some(Version(4))),
        (ExpectedVersion::Exact(Version(9)), Some(Version(4))),
        (ExpectedVersion::Exact(Version(u64::MAX)), Some(Version(4))),
    ] {
        let err = store
            .append(&s, expected, vec![event("X")])
            .await
            .unwrap_err();
        match err {
            StoreError::WrongExpectedVersion {
                stream,
                expected: e,
                actual: a,
            } => {
                assert_eq!((stream, e, a), (s.clone(), expected, actual));
            }
            other => panic!("expected a version conflict, got {other:?}"),
        }
    }
    let missing = sid("order-missing");
    for expected in [
        ExpectedVersion::StreamExists,
        ExpectedVersion::Exact(Version(0)),
    ] {
        let err = store
            .append(&missing, expected, vec![event("X")])
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::WrongExpectedVersion { actual: None, .. }),
            "{err:?}"
        );
    }
    assert_eq!(store.stream_version(&s).await.unwrap(), Some(Version(4)));
    assert_eq!(store.stream_version(&missing).await.unwrap(), None);
    let versions: Vec<u64> = store
        .read_stream(&s, ReadStream::forward())
        .await
        .unwrap()
        .iter()
        .map(|e| e.version.0)
        .collect();
    assert_eq!(versions, [0, 1, 2, 3, 4]);
}

#[tokio::test]
async fn bad_batches_are_rejected() {
    let db = TestDb::new("bad_batches").await;
    let store = db.store().await;
    let s = sid("order-1");
    let err = store
        .append(&s, ExpectedVersion::Any, vec![])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::EmptyAppend { .. }), "{err:?}");
    let e = event("A");
    let err = store
        .append(&s, ExpectedVersion::Any, vec![e.clone(), e.clone()])
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::DuplicateIdInBatch { event_id, .. } if event_id == e.id),
        "{err:?}"
    );
    assert_eq!(store.stream_version(&s).await.unwrap(), None);
}

#[tokio::test]
async fn repeats_of_stored_batches_return_the_original_outcome() {
    let db = TestDb::new("idempotency").await;
    let store = db.store().await;
    let s = sid("cart-1");
    let batch = vec![event("A"), event("B")];
    let first = store
        .append(&s, ExpectedVersion::NoStream, batch.clone())
        .await
        .unwrap();
    // The same append again (a retry after a lost acknowledgement): same outcome.
    for expected in [
        ExpectedVersion::NoStream,
        ExpectedVersion::Any,
        ExpectedVersion::StreamExists,
    ] {
        let again = store.append(&s, expected, batch.clone()).await.unwrap();
        assert_eq!(again, first, "{expected:?}");
    }
    let later = store
        .append(&s, ExpectedVersion::Exact(Version(1)), vec![event("C")])
        .await
        .unwrap();
    // Still a repeat once the stream moved on.
    assert_eq!(
        store
            .append(&s, ExpectedVersion::NoStream, batch.clone())
            .await
            .unwrap(),
        first
    );
    assert_eq!(
        store
            .append(&s, ExpectedVersion::Any, batch.clone())
            .await
            .unwrap(),
        first
    );
    // Only the second event: a repeat at its own place.
    let tail = store
        .append(
            &s,
            ExpectedVersion::Exact(Version(0)),
            vec![batch[1].clone()],
        )
        .await
        .unwrap();
    assert_eq!(
        (tail.first_version, tail.version, tail.position),
        (Version(1), Version(1), first.position)
    );
    // Not where the expectation puts it: a conflict.
    let err = store
        .append(&s, ExpectedVersion::Exact(Version(0)), batch.clone())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::WrongExpectedVersion {
                actual: Some(Version(2)),
                ..
            }
        ),
        "{err:?}"
    );
    // Expectation met but an id is taken: a duplicate.
    let err = store
        .append(
            &s,
            ExpectedVersion::Exact(later.version),
            vec![event("D"), batch[0].clone()],
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::DuplicateEventId { event_id, version: Version(0), .. } if event_id == batch[0].id),
        "{err:?}"
    );
    let err = store
        .append(
            &s,
            ExpectedVersion::Any,
            vec![batch[1].clone(), batch[0].clone()],
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::DuplicateEventId { .. }),
        "{err:?}"
    );
    assert_eq!(
        store
            .read_stream(&s, ReadStream::forward())
            .await
            .unwrap()
            .len(),
        3
    );
}

/// Panics unless `result` is the server's unique violation of `one_per_key` (not an
/// events key), reported as a backend failure whose source carries SQLSTATE and
/// constraint.
fn assert_foreign_unique_violation(result: &Result<AppendOutcome, StoreError>, what: &str) {
    let e = match result {
        Err(e @ StoreError::Backend { .. }) => e,
        other => panic!("{what}: expected the server's unique violation, got {other:?}"),
    };
    let db = std::error::Error::source(e)
        .and_then(|s| s.downcast_ref::<tokio_postgres::Error>())
        .and_then(tokio_postgres::Error::as_db_error)
        .unwrap_or_else(|| panic!("{what}: the server's error is not the source: {e:?}"));
    assert_eq!(db.code(), &SqlState::UNIQUE_VIOLATION, "{what}");
    assert_eq!(db.constraint(), Some("one_per_key"), "{what}");
}

/// Collisions are recognised by SQLSTATE *and* constraint name: a unique violation of a
/// constraint that is not one of the events' keys (here an index an operator added) is
/// reported as the failure it is, alone or in a group statement, and never settled as a
/// collision with stored events (a repeat, a version conflict, or a retry until the
/// attempts run out). The events' own keys are the conformance suite's
/// `idempotency_conflicts`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unique_violation_of_another_constraint_is_not_a_collision() {
    let db = TestDb::new("foreign_unique").await;
    let store = db.builder().writers(1).build().await.unwrap();
    let raw = raw_client().await;
    raw.batch_execute(&format!(
        "CREATE UNIQUE INDEX one_per_key ON {} ((data->>'key'))",
        db.table("events")
    ))
    .await
    .unwrap();
    let keyed = |key: &str| NewEvent::json("Keyed", &serde_json::json!({ "key": key })).unwrap();
    let s = sid("ledger-1");
    store
        .append(&s, ExpectedVersion::NoStream, vec![keyed("k1")])
        .await
        .unwrap();
    let before = store.read_stream(&s, ReadStream::forward()).await.unwrap();
    let fresh = sid("ledger-2");
    let taken = || keyed("k1");
    let cases = [
        (
            "one event, Exact(current)",
            &s,
            ExpectedVersion::Exact(Version(0)),
            vec![taken()],
        ),
        (
            "three events, Exact(current)",
            &s,
            ExpectedVersion::Exact(Version(0)),
            vec![keyed("k2"), taken(), keyed("k3")],
        ),
        ("one event, Any", &s, ExpectedVersion::Any, vec![taken()]),
        (
            "two events, StreamExists",
            &s,
            ExpectedVersion::StreamExists,
            vec![keyed("k2"), taken()],
        ),
        (
            "one event, NoStream",
            &fresh,
            ExpectedVersion::NoStream,
            vec![taken()],
        ),
        (
            "two events, Any, new stream",
            &fresh,
            ExpectedVersion::Any,
            vec![taken(), keyed("k2")],
        ),
    ];
    for (what, stream, expected, batch) in cases {
        let result = store.append(stream, expected, batch).await;
        assert_foreign_unique_violation(&result, what);
    }
    // In one group statement: the violation fails the statement, then only its own append.
    let (ok1, ok2) = (sid("ledger-3"), sid("ledger-4"));
    let results = crate::group::in_one_group(
        &db,
        &store,
        vec![
            (ok1.clone(), ExpectedVersion::NoStream, vec![keyed("k4")]),
            (s.clone(), ExpectedVersion::Exact(Version(0)), vec![taken()]),
            (
                fresh.clone(),
                ExpectedVersion::Any,
                vec![keyed("k5"), taken()],
            ),
            (
                ok2.clone(),
                ExpectedVersion::Any,
                vec![keyed("k6"), keyed("k7")],
            ),
        ],
    )
    .await;
    assert!(
        matches!(results[0], Ok(o) if o.version == Version(0)),
        "in a group, NoStream: {:?}",
        results[0]
    );
    assert_foreign_unique_violation(&results[1], "in a group, Exact(current)");
    assert_foreign_unique_violation(&results[2], "in a group, Any, new stream");
    assert!(
        matches!(results[3], Ok(o) if o.version == Version(1)),
        "in a group, Any: {:?}",
        results[3]
    );

    assert_eq!(
        store.read_stream(&s, ReadStream::forward()).await.unwrap(),
        before
    );
    assert_eq!(store.stream_version(&fresh).await.unwrap(), None);
    for (stream, n) in [(&s, 1), (&fresh, 0), (&ok1, 1), (&ok2, 2)] {
        assert_eq!(count_rows(&raw, &db, stream.as_str()).await, n, "{stream}");
    }
}

/// A connection lost during COMMIT: the append reports an unknown outcome, and retrying
/// it with the same ids lands it exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_lost_during_commit_then_retry_lands_once() {
    let db = TestDb::new("lost_commit").await;
    let store = db.store().await;
    let raw = raw_client().await;
    // A deferred constraint trigger runs at COMMIT: it stalls the commit of this one
    // event type long enough to kill the connection in the middle of it.
    raw.batch_execute(&format!(
        "CREATE FUNCTION {schema}.slow_commit() RETURNS trigger LANGUAGE plpgsql AS
           $$ BEGIN PERFORM pg_sleep(30); RETURN NULL; END $$;
         CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON {events}
           DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
           WHEN (NEW.event_type = 'SlowCommit') EXECUTE FUNCTION {schema}.slow_commit();",
        schema = format!("\"{}\"", db.schema.as_str()),
        events = db.table("events"),
    ))
    .await
    .unwrap();
    let s = sid("payment-1");
    store
        .append(&s, ExpectedVersion::NoStream, vec![event("Opened")])
        .await
        .unwrap();
    let batch = vec![event("SlowCommit"), event("Charged")];
    let pending = tokio::spawn({
        let (store, s, batch) = (store.clone(), s.clone(), batch.clone());
        async move {
            store
                .append(&s, ExpectedVersion::Exact(Version(0)), batch)
                .await
        }
    });
    wait_for_sleeping_commit(&raw, &db.app).await;
    db.terminate_connections(&raw).await;
    let err = pending.await.unwrap().unwrap_err();
    assert!(is_unavailable(&err), "{err:?}");

    raw.batch_execute(&format!(
        "DROP TRIGGER slow_commit ON {}",
        db.table("events")
    ))
    .await
    .unwrap();
    let retried = retry_until_available(|| {
        store.append(&s, ExpectedVersion::Exact(Version(0)), batch.clone())
    })
    .await;
    assert_eq!(
        (retried.first_version, retried.version),
        (Version(1), Version(2))
    );
    let again = store
        .append(&s, ExpectedVersion::Exact(Version(0)), batch.clone())
        .await
        .unwrap();
    assert_eq!(again, retried);
    let stored = store.read_stream(&s, ReadStream::forward()).await.unwrap();
    let ids: Vec<_> = stored.iter().map(|e| e.id).collect();
    assert_eq!(ids.len(), 3);
    assert_eq!(&ids[1..], &[batch[0].id, batch[1].id]);
}

async fn wait_for_sleeping_commit(raw: &tokio_postgres::Client, app: &str) {
    wait_for_activity(raw, app, "wait_event = 'PgSleep'", "reached its COMMIT").await;
}

/// Retries an append while the store reports it unavailable (the pool may still hand
/// out a connection that was killed).
pub async fn retry_until_available<F, Fut, T>(mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    for _ in 0..100 {
        match f().await {
            Ok(v) => return v,
            Err(e) if is_unavailable(&e) => tokio::time::sleep(Duration::from_millis(20)).await,
            Err(e) => panic!("unexpected error: {e:?}"),
        }
    }
    panic!("store stayed unavailable");
}

/// A statement the server cuts short for now (here a lock timeout while another
/// transaction holds the stream's row) is a transient error, nothing is written, and
/// the same append retried once the lock is gone lands once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_timeout_is_transient_and_writes_nothing() {
    let db = TestDb::new("lock_timeout").await;
    let url = database_url();
    let sep = if url.contains('?') { '&' } else { '?' };
    let store = tessera_postgres::PostgresStore::builder(format!(
        "{url}{sep}options=-c%20lock_timeout%3D100"
    ))
    .schema(db.schema.clone())
    .application_name(&db.app)
    .build()
    .await
    .expect("store builds");
    let s = sid("order-timeout");
    store
        .append(&s, ExpectedVersion::NoStream, vec![event("A")])
        .await
        .unwrap();
    let lock = lock_stream_row(&db, s.as_str()).await;
    let batch = vec![event("B")];
    let err = store
        .append(&s, ExpectedVersion::Exact(Version(0)), batch.clone())
        .await
        .expect_err("the row is locked past lock_timeout");
    assert!(err.is_transient(), "{err:?}");
    let raw = raw_client().await;
    assert_eq!(
        count_rows(&raw, &db, s.as_str()).await,
        1,
        "nothing written"
    );
    lock.batch_execute("ROLLBACK").await.unwrap();
    let landed = store
        .append(&s, ExpectedVersion::Exact(Version(0)), batch)
        .await
        .expect("the retry lands");
    assert_eq!(landed.version, Version(1));
    assert_eq!(count_rows(&raw, &db, s.as_str()).await, 2);
}
