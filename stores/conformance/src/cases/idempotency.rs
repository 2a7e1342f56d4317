//! Idempotent appends, keyed by event id within a stream (the EventStoreDB rules), and
//! where a store following EventStoreDB's server differs ([`Idempotency`]).

use tessera_core::{
    AppendOutcome, EventId, EventStore, ExpectedVersion, Landing, NewEvent, StoreError, StreamId,
    Version,
};

use crate::support::{
    append_ok, assert_empty_store, assert_nothing_written, assert_wrong_version, ev, evs, ids, ok,
    read_stream, sid, wait_visible, within,
};
use crate::Idempotency;
use ExpectedVersion::{Any, NoStream, StreamExists};

/// Stands for a new event (an id the stream does not hold) in a [`Fixture::batch`].
const NEW: usize = usize::MAX;

/// `Exact(Version(v))`.
fn exact(v: u64) -> ExpectedVersion {
    ExpectedVersion::Exact(Version(v))
}

/// A stream holding `a0` (appended alone), `b1 b2` (one batch) and `c3` (alone).
struct Fixture {
    stream: StreamId,
    events: Vec<NewEvent>,
    outcomes: [AppendOutcome; 3],
}

impl Fixture {
    async fn new<S: EventStore>(store: &S, stream: &str) -> Self {
        let stream = sid(stream);
        let events = evs("Fixture", 0, 4);
        let outcomes = [
            append_ok(store, &stream, NoStream, events[..1].to_vec()).await,
            append_ok(store, &stream, exact(0), events[1..3].to_vec()).await,
            append_ok(store, &stream, exact(2), events[3..].to_vec()).await,
        ];
        // The head is compared later: wait until the fixture is visible to readers
        // (PostgreSQL hides commits while an older transaction is still running).
        wait_visible(store, outcomes[2].position).await;
        let versions = outcomes.map(|o| (o.first_version.0, o.version.0));
        assert_eq!(
            versions,
            [(0, 0), (1, 2), (3, 3)],
            "fixture appends' versions"
        );
        Self {
            stream,
            events,
            outcomes,
        }
    }

    /// The stored events at these versions, in this order ([`NEW`]: a new event).
    fn batch(&self, versions: &[usize]) -> Vec<NewEvent> {
        let pick = |&v: &usize| match v {
            NEW => ev("New", 99),
            v => self.events[v].clone(),
        };
        versions.iter().map(pick).collect()
    }

    /// The ids of `batch` the fixture did not store.
    fn new_ids(&self, batch: &[NewEvent]) -> Vec<EventId> {
        let stored = |id: &EventId| self.events.iter().any(|e| e.id == *id);
        batch
            .iter()
            .map(|e| e.id)
            .filter(|id| !stored(id))
            .collect()
    }
}

/// Repeats of stored events succeed with the original outcome and write nothing: at the
/// original expectation after the stream moved on, with `Any` and `StreamExists`, as a
/// sub-batch or a span across batches placed where the expectation puts it.
/// [`append_landing`](tessera_core::EventAppender::append_landing) never calls a repeat
/// written, and a store that [refuses taken ids](tessera_core::EventAppender::rejects_taken_ids)
/// says `Repeat` for each and `Written` for a write.
pub async fn idempotent_repeats<S: EventStore>(store: S) {
    assert_empty_store(&store).await;
    let f = Fixture::new(&store, "idem-1").await;
    let head = ok("head", store.head().await);
    let stored = read_stream(&store, &f.stream).await;
    let [out_a, out_b, out_c] = f.outcomes;
    let span = |first: usize, last: usize| AppendOutcome {
        first_version: Version(first as u64),
        version: Version(last as u64),
        position: stored[last].position,
    };
    #[rustfmt::skip]
    let cases = [
        ("a0 again with NoStream",            NoStream,     f.batch(&[0]),          out_a),
        ("b1 b2 again with Exact(0)",         exact(0),     f.batch(&[1, 2]),       out_b),
        ("c3 again with Exact(2)",            exact(2),     f.batch(&[3]),          out_c),
        ("b1 b2 again with Any",              Any,          f.batch(&[1, 2]),       out_b),
        ("b1 b2 again with StreamExists",     StreamExists, f.batch(&[1, 2]),       out_b),
        ("a0 again with Any",                 Any,          f.batch(&[0]),          out_a),
        ("c3 again with StreamExists",        StreamExists, f.batch(&[3]),          out_c),
        ("b1 alone with Exact(0)",            exact(0),     f.batch(&[1]),          span(1, 1)),
        ("b2 alone with Exact(1)",            exact(1),     f.batch(&[2]),          span(2, 2)),
        ("b2 c3 (two appends) with Exact(1)", exact(1),     f.batch(&[2, 3]),       span(2, 3)),
        ("b2 c3 (two appends) with Any",      Any,          f.batch(&[2, 3]),       span(2, 3)),
        ("the whole stream with NoStream",    NoStream,     f.batch(&[0, 1, 2, 3]), span(0, 3)),
    ];
    let reports = store.rejects_taken_ids();
    for (what, expected, batch, original) in cases {
        let (got, landing) = ok(
            what,
            within(what, store.append_landing(&f.stream, expected, batch)).await,
        );
        assert_eq!(
            got, original,
            "{what}: a repeat must return the original outcome"
        );
        assert_ne!(landing, Landing::Written, "{what}: a repeat wrote nothing");
        if reports {
            assert_eq!(landing, Landing::Repeat, "{what}");
        }
        assert_nothing_written(&store, &f.stream, Some(Version(3)), &[], what).await;
        let now = ok("head", store.head().await);
        assert_eq!(now, head, "{what}: a repeat must not move the head");
    }
    let after = read_stream(&store, &f.stream).await;
    assert_eq!(after, stored, "repeats changed the stream");

    // Idempotency is per stream: the same ids in another stream are new events.
    let other = sid("idem-2");
    let (out, landing) = ok(
        "a new stream",
        store
            .append_landing(&other, NoStream, f.batch(&[0, 1, 2, 3]))
            .await,
    );
    if reports {
        assert_eq!(landing, Landing::Written, "a write");
    }
    assert_eq!(
        (out.first_version, out.version),
        (Version(0), Version(3)),
        "ids stored in one stream must be appendable to another"
    );
}

/// Stored ids that are not an exact repeat where the expectation puts them.
///
/// Under either [`Idempotency`]: `WrongExpectedVersion` when the expectation is not met
/// (partial overlaps included), nothing written.
///
/// When the expectation is met but an id of the batch is already stored in the stream:
/// - [`Idempotency::Strict`]: `DuplicateEventId` naming the stored id and its version;
///   nothing written.
/// - [`Idempotency::EventStoreDb`]: what EventStoreDB's commit check does, each case on
///   a fresh copy of the fixture (`a0`, `b1 b2`, `c3`): `Exact(3)` appends the batch at
///   4.. whatever its ids; with `Any` or `StreamExists`, a batch whose first id is new is
///   appended at 4.., one whose first id is stored but a later one is new is refused
///   with `WrongExpectedVersion { actual: Some(3) }`, and one whose ids are all stored,
///   in whatever order or places, is a repeat: nothing written, the outcome naming the
///   version and position of the batch's last id (`b2 b1` → version 1; `a0 c3` →
///   version 3) with `first_version` = version + 1 − batch length.
pub async fn idempotency_conflicts<S: EventStore>(store: S, idempotency: Idempotency) {
    assert_empty_store(&store).await;
    let f = Fixture::new(&store, "idemc-1").await;
    let current = Some(Version(3));

    // Expectation not met: stored ids at the wrong place, or mixed with new ones.
    #[rustfmt::skip]
    let wrong_place = [
        ("c3 with Exact(0)",                     exact(0), f.batch(&[3])),
        ("b1 b2 with Exact(1)",                  exact(1), f.batch(&[1, 2])),
        ("b2 b1 reordered with Exact(0)",        exact(0), f.batch(&[2, 1])),
        ("a0 plus a new event with NoStream",    NoStream, f.batch(&[0, NEW])),
        ("c3 plus a new event with Exact(2)",    exact(2), f.batch(&[3, NEW])),
        ("b1 b2 plus a new event with Exact(0)", exact(0), f.batch(&[1, 2, NEW])),
        ("a new event plus c3 with Exact(2)",    exact(2), f.batch(&[NEW, 3])),
    ];
    for (what, expected, batch) in wrong_place {
        let result = within(what, store.append(&f.stream, expected, batch.clone())).await;
        assert_wrong_version(&result, &f.stream, expected, current, what);
        assert_nothing_written(&store, &f.stream, current, &f.new_ids(&batch), what).await;
    }

    match idempotency {
        Idempotency::Strict => stored_ids_are_duplicates(&store, &f).await,
        Idempotency::EventStoreDb => stored_ids_as_eventstoredb(&store).await,
    }
}

/// [`Idempotency::Strict`]: an expectation that holds with a stored id in the batch is
/// `DuplicateEventId`, and nothing is written.
async fn stored_ids_are_duplicates<S: EventStore>(store: &S, f: &Fixture) {
    let current = Some(Version(3));
    #[rustfmt::skip]
    let taken = [
        ("a0 with Exact(3)",                      exact(3),     f.batch(&[0])),
        ("a new event plus b1 with Exact(3)",     exact(3),     f.batch(&[NEW, 1])),
        ("c3 plus a new event with Any",          Any,          f.batch(&[3, NEW])),
        ("a new event plus a0 with StreamExists", StreamExists, f.batch(&[NEW, 0])),
        ("b2 b1 reordered with Any",              Any,          f.batch(&[2, 1])),
    ];
    for (what, expected, batch) in taken {
        let new_ids = f.new_ids(&batch);
        match within(what, store.append(&f.stream, expected, batch.clone())).await {
            Err(StoreError::DuplicateEventId {
                stream,
                event_id,
                version,
            }) => {
                assert_eq!(stream, f.stream, "{what}: DuplicateEventId.stream");
                let at = f.events.iter().position(|e| e.id == event_id);
                assert!(
                    batch.iter().any(|e| e.id == event_id) && at.is_some(),
                    "{what}: DuplicateEventId names {event_id}, not a stored id of the batch"
                );
                let at = at.map(|v| Version(v as u64));
                assert_eq!(Some(version), at, "{what}: DuplicateEventId.version");
            }
            other => panic!("{what}: expected DuplicateEventId, got {other:?}"),
        }
        assert_nothing_written(store, &f.stream, current, &new_ids, what).await;
    }
}

/// What EventStoreDB does with a batch whose expectation holds on the fixture (version
/// 3) but which holds stored ids.
#[derive(Clone, Copy, Debug)]
enum Esdb {
    /// Appended as it is at versions 4.., stored ids included.
    Appended,
    /// Refused: `WrongExpectedVersion` with the stream's version, 3.
    Refused,
    /// A repeat ending at this fixture version: nothing written.
    RepeatEndingAt(usize),
}

/// [`Idempotency::Strict`]'s `DuplicateEventId` cases and more, as EventStoreDB's commit
/// check decides them, each on a fresh fixture stream.
async fn stored_ids_as_eventstoredb<S: EventStore>(store: &S) {
    use Esdb::{Appended, Refused, RepeatEndingAt};
    #[rustfmt::skip]
    let cases: [(&str, ExpectedVersion, &[usize], Esdb); 9] = [
        ("a0 with Exact(3)",                       exact(3),     &[0],      Appended),
        ("b1 b2 with Exact(3)",                    exact(3),     &[1, 2],   Appended),
        ("a new event plus b1 with Exact(3)",      exact(3),     &[NEW, 1], Appended),
        ("a new event plus c3 with Any",           Any,          &[NEW, 3], Appended),
        ("a new event plus a0 with StreamExists",  StreamExists, &[NEW, 0], Appended),
        ("c3 plus a new event with Any",           Any,          &[3, NEW], Refused),
        ("b1 plus a new event with StreamExists",  StreamExists, &[1, NEW], Refused),
        ("b2 b1 reordered with Any",               Any,          &[2, 1],   RepeatEndingAt(1)),
        ("a0 c3 (not adjacent) with StreamExists", StreamExists, &[0, 3],   RepeatEndingAt(3)),
    ];
    for (n, (what, expected, versions, decision)) in cases.into_iter().enumerate() {
        let f = Fixture::new(store, &format!("idemc-esdb-{n}")).await;
        let before = read_stream(store, &f.stream).await;
        let batch = f.batch(versions);
        let len = batch.len() as u64;
        let result = within(what, store.append(&f.stream, expected, batch.clone())).await;
        match decision {
            Appended => {
                let got = ok(what, result);
                let after = read_stream(store, &f.stream).await;
                let want_ids: Vec<EventId> =
                    ids(&f.events).into_iter().chain(ids(&batch)).collect();
                let got_ids: Vec<EventId> = after.iter().map(|e| e.id).collect();
                assert_eq!(
                    got_ids, want_ids,
                    "{what}: EventStoreDB appends the batch after c3, stored ids included"
                );
                assert_eq!(
                    after[..4],
                    before[..],
                    "{what}: the fixture's events changed"
                );
                let last = 3 + len;
                let versions: Vec<u64> = after.iter().map(|e| e.version.0).collect();
                assert_eq!(versions, (0..=last).collect::<Vec<_>>(), "{what}: versions");
                assert_eq!(
                    got,
                    AppendOutcome {
                        first_version: Version(4),
                        version: Version(last),
                        position: after[usize::try_from(last).expect("small")].position,
                    },
                    "{what}: the outcome of an append at 4.."
                );
            }
            Refused => {
                assert_wrong_version(&result, &f.stream, expected, Some(Version(3)), what);
                assert_nothing_written(
                    store,
                    &f.stream,
                    Some(Version(3)),
                    &f.new_ids(&batch),
                    what,
                )
                .await;
            }
            RepeatEndingAt(v) => {
                let got = ok(what, result);
                let version = v as u64;
                assert_eq!(
                    got,
                    AppendOutcome {
                        first_version: Version((version + 1).saturating_sub(len)),
                        version: Version(version),
                        position: before[v].position,
                    },
                    "{what}: EventStoreDB takes it as a repeat ending at the batch's last id"
                );
                assert_nothing_written(store, &f.stream, Some(Version(3)), &[], what).await;
                let after = read_stream(store, &f.stream).await;
                assert_eq!(after, before, "{what}: a repeat changed the stream");
            }
        }
    }
}
