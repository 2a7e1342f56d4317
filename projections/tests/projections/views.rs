//! Document views on both backends: get, list with filters and cursors, the closed set
//! of filterable fields, and a rebuild that keeps serving.

use serde::{Deserialize, Serialize};
use tessera_core::{
    BoxError, EventFilter, EventReader, MemoryStore, Position, ReadAll, RecordedEvent,
};
use tessera_projections::{ApplyError, QueryError, RunnerConfig, Subscriber, View, ViewStore};

use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};

use crate::pg_support::{cleanup, pool, unique};
use crate::support::{deposit, WAIT};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Account {
    id: String,
    tier: String,
    total: i64,
}

/// One document per `acct` stream: its total, and a tier from it.
struct Accounts;

impl View for Accounts {
    type Doc = Account;
    const NAME: &'static str = "accounts";
    const FILTERABLE: &'static [&'static str] = &["tier", "id"];

    fn filter() -> EventFilter {
        EventFilter::category("acct")
    }

    fn key(event: &RecordedEvent) -> Result<Option<String>, BoxError> {
        Ok(Some(event.stream_id.as_str().to_owned()))
    }

    fn apply(doc: Option<Account>, event: &RecordedEvent) -> Result<Account, BoxError> {
        let amount = event.data.to_value()?["amount"]
            .as_i64()
            .ok_or("no amount")?;
        let mut doc = doc.unwrap_or(Account {
            id: event.stream_id.as_str().to_owned(),
            tier: String::new(),
            total: 0,
        });
        doc.total += amount;
        doc.tier = if doc.total >= 10 { "gold" } else { "basic" }.to_owned();
        Ok(doc)
    }
}

async fn exercise(view: ViewStore<Accounts>) {
    let log = MemoryStore::new();
    for (i, amount) in [5, 20, 1, 30, 2].iter().enumerate() {
        deposit(&log, &format!("acct-{i}"), *amount).await;
    }
    let last = deposit(&log, "acct-2", 9).await; // acct-2 becomes gold
    let runner = view.spawn(log.clone(), RunnerConfig::default());
    runner.wait_for(last, WAIT).await.expect("caught up");

    let doc = view.get("acct-2").await.unwrap().expect("document");
    assert_eq!((doc.total, doc.tier.as_str()), (10, "gold"));
    assert_eq!(view.get("acct-9").await.unwrap(), None);

    // Pages of two gold accounts in creation order, with a cursor.
    let gold = vec![("tier", "gold".to_owned())];
    let first = view.list(&gold, None, 2).await.unwrap();
    let ids: Vec<_> = first.items.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids, ["acct-1", "acct-2"]);
    let rest = view.list(&gold, first.next, 2).await.unwrap();
    let ids: Vec<_> = rest.items.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids, ["acct-3"]);
    assert!(rest.next.is_none());
    // Two filters on different fields; one field wanted with two values matches nothing.
    let both = vec![("tier", "gold".to_owned()), ("id", "acct-3".to_owned())];
    assert_eq!(view.list(&both, None, 10).await.unwrap().items.len(), 1);
    let clash = vec![("tier", "gold".to_owned()), ("tier", "basic".to_owned())];
    assert!(view.list(&clash, None, 10).await.unwrap().items.is_empty());
    // A value that would be SQL is only a value.
    let odd = vec![("tier", "gold' OR '1'='1".to_owned())];
    assert!(view.list(&odd, None, 10).await.unwrap().items.is_empty());
    // A field the view does not declare is a typed error, not a query.
    let undeclared = vec![("total", "10".to_owned())];
    match view.list(&undeclared, None, 10).await {
        Err(QueryError::UnknownField { view, field }) => {
            assert_eq!((view.as_str(), field.as_str()), ("accounts", "total"));
        }
        other => panic!("expected UnknownField, got {other:?}"),
    }

    // A rebuild while the view serves: the same documents after it.
    let before = view.list(&Vec::new(), None, 100).await.unwrap().items;
    let events = view.rebuild(&log, |_| {}).await.expect("rebuild");
    assert_eq!(events, 6);
    assert_eq!(
        view.list(&Vec::new(), None, 100).await.unwrap().items,
        before
    );
    let next = deposit(&log, "acct-0", 100).await;
    runner.wait_for(next, WAIT).await.expect("runner continues");
    let doc = view.get("acct-0").await.unwrap().expect("document");
    assert_eq!((doc.total, doc.tier.as_str()), (105, "gold"));
    // Changed documents keep the place their creation gave them; pages of one walk them
    // all once, in that order.
    let mut walked = Vec::new();
    let mut cursor = None;
    for _ in 0..10 {
        let page = view.list(&Vec::new(), cursor, 1).await.unwrap();
        walked.extend(page.items.into_iter().map(|a| a.id));
        cursor = page.next;
        if cursor.is_none() {
            break;
        }
    }
    assert!(cursor.is_none(), "the pages ended");
    assert_eq!(walked, ["acct-0", "acct-1", "acct-2", "acct-3", "acct-4"]);
    runner.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_view_answers_gets_and_filtered_pages() {
    exercise(ViewStore::memory(&format!("m{}_", unique()))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pg_view_answers_gets_and_filtered_pages() {
    let pool = pool().await;
    let (prefix, control) = (format!("v{}_", unique()), format!("vctl_{}", unique()));
    let view = ViewStore::<Accounts>::postgres(pool.clone(), &prefix, &control)
        .await
        .expect("view");
    exercise(view).await;
    // Its documents' pages keep room for a changed document's next version (HOT).
    let options: Option<Vec<String>> = pool
        .get()
        .await
        .expect("connection")
        .query_one(
            "SELECT c.reloptions FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relname = 'docs' AND n.nspname LIKE $1 || '%'",
            &[&prefix],
        )
        .await
        .expect("the docs table's options")
        .get(0);
    assert_eq!(options, Some(vec!["fillfactor=80".to_owned()]));
    cleanup(&pool, &control, &format!("{prefix}accounts")).await;
}

/// A document read checks, in its own statement, that the version it last saw active
/// still is: after another version becomes active (here a third version switched in
/// by hand beside the second, which is not dropped), the next read answers from the new
/// one, not from the version it remembered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pg_view_reads_the_version_active_now() {
    let pool = pool().await;
    let (prefix, control) = (format!("v{}_", unique()), format!("vctl_{}", unique()));
    let view = ViewStore::<Accounts>::postgres(pool.clone(), &prefix, &control)
        .await
        .expect("view");
    let log = MemoryStore::new();
    let last = deposit(&log, "acct-0", 5).await;
    let runner = view.spawn(log.clone(), RunnerConfig::default());
    runner.wait_for(last, WAIT).await.expect("caught up");
    runner.stop().await;
    let doc = view.get("acct-0").await.unwrap().expect("document");
    assert_eq!(doc.total, 5);
    // Version 2 of the table, with the document changed, made active by hand.
    let name = format!("{prefix}accounts");
    switch_to_a_changed_v2(&pool, &name, &control).await;
    let client = pool.get().await.expect("connection");
    let doc = view.get("acct-0").await.unwrap().expect("document");
    assert_eq!(doc.total, 42, "read from the version active now");
    // And back: the remembered version is checked on every read.
    client
        .batch_execute(&format!(
            "UPDATE \"{control}\".active SET version = 1, schema_name = '{name}_v1' WHERE name = '{name}';"
        ))
        .await
        .expect("switch back");
    assert_eq!(
        view.get("acct-0").await.unwrap().expect("document").total,
        5
    );
    cleanup(&pool, &control, &name).await;
}

/// Makes a version 2 of view `name` (control schema `control`) active by hand: its
/// documents version 1's with every total set to 42, its checkpoint version 1's.
async fn switch_to_a_changed_v2(pool: &deadpool_postgres::Pool, name: &str, control: &str) {
    pool.get()
        .await
        .expect("connection")
        .batch_execute(&format!(
            "CREATE SCHEMA \"{name}_v2\";
             CREATE TABLE \"{name}_v2\".docs (LIKE \"{name}_v1\".docs INCLUDING ALL);
             INSERT INTO \"{name}_v2\".docs SELECT * FROM \"{name}_v1\".docs;
             UPDATE \"{name}_v2\".docs SET doc = jsonb_set(doc, '{{total}}', '42');
             INSERT INTO \"{control}\".checkpoints (name, commit_pos, prepare_pos)
               SELECT '{name}_v2', commit_pos, prepare_pos FROM \"{control}\".checkpoints
                WHERE name = '{name}_v1';
             UPDATE \"{control}\".active SET version = 2, schema_name = '{name}_v2' WHERE name = '{name}';"
        ))
        .await
        .expect("switch by hand");
}

/// Every event of `log`.
async fn whole_log(log: &MemoryStore) -> Vec<RecordedEvent> {
    log.read_all(ReadAll::after(Position::START, usize::MAX))
        .await
        .expect("the log")
}

/// The events of a log holding `amounts` deposited to their accounts, in that order.
async fn deposits(amounts: &[(&str, i64)]) -> Vec<RecordedEvent> {
    let log = MemoryStore::new();
    for (account, amount) in amounts {
        deposit(&log, account, *amount).await;
    }
    whole_log(&log).await
}

/// A PostgreSQL view and a fresh name for it: (view, prefix, control schema).
async fn pg_accounts(pool: &deadpool_postgres::Pool) -> (ViewStore<Accounts>, String, String) {
    let (prefix, control) = (format!("v{}_", unique()), format!("vctl_{}", unique()));
    let view = ViewStore::<Accounts>::postgres(pool.clone(), &prefix, &control)
        .await
        .expect("view");
    (view, prefix, control)
}

/// The totals of the accounts in `view`, by id.
async fn totals(view: &ViewStore<Accounts>) -> Vec<(String, i64)> {
    let page = view.list(&Vec::new(), None, 100).await.expect("list");
    let mut all: Vec<_> = page.items.into_iter().map(|a| (a.id, a.total)).collect();
    all.sort();
    all
}

/// Two runners of one PostgreSQL view (two view objects, as in two processes), each
/// writing its batches in one statement and keeping the documents it wrote: every
/// deposit counts once, whichever runner wins each batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_pg_view_runners_count_each_event_once() {
    let pool = pool().await;
    let (view, prefix, control) = pg_accounts(&pool).await;
    let other = ViewStore::<Accounts>::postgres(pool.clone(), &prefix, &control)
        .await
        .expect("the second view object");
    let log = MemoryStore::new();
    let a = view.spawn(log.clone(), RunnerConfig::default());
    let b = other.spawn(log.clone(), RunnerConfig::default());
    let mut last = tessera_core::Position::START;
    let mut wanted = [0i64; 5];
    for i in 0..400usize {
        let amount = i64::try_from(i % 7).expect("small") + 1;
        wanted[i % 5] += amount;
        last = deposit(&log, &format!("acct-{}", i % 5), amount).await;
        if i % 10 == 0 {
            tokio::task::yield_now().await;
        }
    }
    a.wait_for(last, WAIT).await.expect("a caught up");
    b.wait_for(last, WAIT).await.expect("b caught up");
    let expected: Vec<_> = (0..5).map(|i| (format!("acct-{i}"), wanted[i])).collect();
    assert_eq!(totals(&view).await, expected);
    a.stop().await;
    b.stop().await;
    cleanup(&pool, &control, &format!("{prefix}accounts")).await;
}

/// Driven by hand, a view's PostgreSQL subscriber moves its checkpoint only from where
/// it stands: a batch from a stale start is fenced and writes none of its documents, and
/// a subscriber whose last batch is no longer the stored one reads the documents again
/// instead of folding into the ones it kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pg_view_batch_from_a_stale_start_is_fenced_and_kept_documents_expire() {
    let pool = pool().await;
    let (view, prefix, control) = pg_accounts(&pool).await;
    let log = MemoryStore::new();
    for (i, amount) in [1, 2, 4, 8, 16, 32, 64, 128, 256].iter().enumerate() {
        deposit(&log, &format!("acct-{}", i % 2), *amount).await;
    }
    let events = whole_log(&log).await;
    let (one, two, three) = (&events[..3], &events[3..6], &events[6..]);
    let (a, b) = (view.subscriber(), view.subscriber());
    let start = a.checkpoint().await.expect("checkpoint");
    b.checkpoint().await.expect("checkpoint");
    a.apply(start, one).await.expect("a's first batch");
    let after_one = vec![("acct-0".to_owned(), 1 + 4), ("acct-1".to_owned(), 2)];
    assert_eq!(totals(&view).await, after_one);
    // b still believes the checkpoint is at the start: fenced, with a batch whose
    // documents differ from the stored ones (written, acct-0 would be 1 + 1 + 4), and
    // nothing written.
    match b.apply(start, &one[..2]).await {
        Err(ApplyError::Fenced { expected }) => assert_eq!(expected, start),
        other => panic!("a batch from a stale start is fenced, got {other:?}"),
    }
    assert_eq!(
        totals(&view).await,
        after_one,
        "the fenced batch wrote nothing"
    );
    // b goes on from the stored checkpoint; a's kept documents are now stale, so its
    // next batch (from where b left the checkpoint) reads them again.
    assert_eq!(b.checkpoint().await.expect("checkpoint"), one[2].position);
    b.apply(one[2].position, two).await.expect("b's batch");
    a.apply(two[2].position, three)
        .await
        .expect("a's second batch");
    let all = vec![
        ("acct-0".to_owned(), 1 + 4 + 16 + 64 + 256),
        ("acct-1".to_owned(), 2 + 8 + 32 + 128),
    ];
    assert_eq!(totals(&view).await, all);
    assert_eq!(
        view.checkpoint().await.expect("checkpoint"),
        three[2].position
    );
    // A batch that would move the checkpoint back (events before its start) moves
    // nothing: what a runner keeps relies on checkpoints only moving forward.
    match a.apply(three[2].position, one).await {
        Err(ApplyError::Fenced { .. }) => {}
        other => panic!("a batch ending before its start is refused, got {other:?}"),
    }
    assert_eq!(
        view.checkpoint().await.expect("checkpoint"),
        three[2].position
    );
    assert_eq!(totals(&view).await, all, "the refused batch wrote nothing");
    cleanup(&pool, &control, &format!("{prefix}accounts")).await;
}

/// The documents a view's PostgreSQL subscriber kept belong to the version they were
/// written to: once another version is active (switched in by hand at the same
/// checkpoint, its documents different) and the subscriber has read its checkpoint, the
/// next batch folds into that version's documents, not the ones kept from the first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pg_view_subscriber_folds_into_the_version_active_now() {
    let pool = pool().await;
    let (view, prefix, control) = pg_accounts(&pool).await;
    let log = MemoryStore::new();
    deposit(&log, "acct-0", 5).await;
    deposit(&log, "acct-0", 1).await;
    let events = whole_log(&log).await;
    let live = view.subscriber();
    let start = live.checkpoint().await.expect("checkpoint");
    live.apply(start, &events[..1])
        .await
        .expect("the first batch");
    let name = format!("{prefix}accounts");
    switch_to_a_changed_v2(&pool, &name, &control).await;
    let at = live.checkpoint().await.expect("version 2's checkpoint");
    assert_eq!(at, events[0].position);
    live.apply(at, &events[1..])
        .await
        .expect("the second batch");
    let doc = view.get("acct-0").await.unwrap().expect("document");
    assert_eq!(
        doc.total, 43,
        "folded into version 2's document, not the one kept from 1"
    );
    cleanup(&pool, &control, &name).await;
}

/// A view's PostgreSQL runner killed at any point of a batch (reading documents,
/// folding, in its one statement) leaves documents and checkpoint agreeing: after
/// fifteen kills under a stream of deposits, a last runner brings every total to the
/// sum of its deposits, none counted twice or lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_pg_view_runner_counts_each_event_once() {
    let pool = pool().await;
    let (view, prefix, control) = pg_accounts(&pool).await;
    let log = MemoryStore::new();
    let writer = {
        let log = log.clone();
        tokio::spawn(async move {
            for i in 0..600usize {
                deposit(&log, &format!("acct-{}", i % 9), 1).await;
                if i % 20 == 0 {
                    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                }
            }
        })
    };
    for round in 0..15u64 {
        let runner = view.spawn(log.clone(), RunnerConfig::default());
        tokio::time::sleep(std::time::Duration::from_millis(3 + round % 5)).await;
        runner.abort().await;
        // Whatever the kill left: the documents hold exactly the events up to the
        // checkpoint. (A statement the killed runner had sent may still commit: read
        // until the checkpoint stands still around the documents' read.)
        let mut stood = None;
        for _ in 0..100 {
            let before = view.checkpoint().await.expect("checkpoint");
            let counted: i64 = totals(&view).await.iter().map(|(_, t)| t).sum();
            if view.checkpoint().await.expect("checkpoint") == before {
                stood = Some((before, counted));
                break;
            }
        }
        let (upto, counted) = stood.expect("the checkpoint stands still once the runner is killed");
        let wanted = whole_log(&log)
            .await
            .iter()
            .filter(|e| e.position <= upto)
            .count();
        assert_eq!(
            usize::try_from(counted).ok(),
            Some(wanted),
            "round {round}: documents and checkpoint disagree"
        );
    }
    writer.await.expect("writer");
    let runner = view.spawn(log.clone(), RunnerConfig::default());
    let last = deposit(&log, "acct-0", 1).await;
    runner.wait_for(last, WAIT).await.expect("caught up");
    // 600 deposits over nine accounts (the first six get 67, the rest 66), and one more.
    let expected: Vec<_> = (0..9)
        .map(|i| (format!("acct-{i}"), [68, 67, 67, 67, 67, 67, 66, 66, 66][i]))
        .collect();
    assert_eq!(totals(&view).await, expected);
    runner.stop().await;
    cleanup(&pool, &control, &format!("{prefix}accounts")).await;
}

/// Once a view's PostgreSQL subscriber keeps current documents, a key it has not kept
/// is presumed new and not read. A document another runner stored is refused as new by
/// the table's key: nothing of that statement commits, and the batch is folded again
/// from the stored document.
/// Where a view's committed batches took their documents from, since the last reading:
/// (kept, read, presumed) and refused presumptions, from `tessera_view_documents_total`
/// and `tessera_view_presumptions_refused_total`.
fn sources(snapshotter: &Snapshotter) -> (u64, u64, u64, u64) {
    let mut counts = (0, 0, 0, 0);
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let DebugValue::Counter(n) = value else {
            continue;
        };
        let key = key.key();
        let source = key
            .labels()
            .find(|l| l.key() == "source")
            .map(|l| l.value().to_owned());
        match (key.name(), source.as_deref()) {
            ("tessera_view_documents_total", Some("kept")) => counts.0 += n,
            ("tessera_view_documents_total", Some("read")) => counts.1 += n,
            ("tessera_view_documents_total", Some("presumed")) => counts.2 += n,
            ("tessera_view_presumptions_refused_total", None) => counts.3 += n,
            _ => {}
        }
    }
    counts
}

/// A runner whose kept documents are current and whose last read found nothing stored
/// presumes the keys it has not kept new, and reads none of them; one it keeps it
/// neither reads nor presumes.
#[tokio::test(flavor = "current_thread")]
async fn a_pg_view_presumes_new_documents_while_its_reads_find_none_stored() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);
    let pool = pool().await;
    let (view, prefix, control) = pg_accounts(&pool).await;
    let events = deposits(&[("acct-0", 1), ("acct-1", 2), ("acct-2", 4), ("acct-0", 8)]).await;
    let a = view.subscriber();
    let start = a.checkpoint().await.expect("checkpoint");
    a.apply(start, &events[..1]).await.expect("first batch");
    // Nothing kept yet: read, and found none stored.
    assert_eq!(sources(&snapshotter), (0, 1, 0, 0));
    a.apply(events[0].position, &events[1..2])
        .await
        .expect("second batch");
    assert_eq!(sources(&snapshotter), (0, 0, 1, 0), "acct-1 presumed new");
    a.apply(events[1].position, &events[2..])
        .await
        .expect("third batch");
    assert_eq!(
        sources(&snapshotter),
        (1, 0, 1, 0),
        "acct-0 kept, acct-2 presumed"
    );
    let all = vec![
        ("acct-0".to_owned(), 1 + 8),
        ("acct-1".to_owned(), 2),
        ("acct-2".to_owned(), 4),
    ];
    assert_eq!(totals(&view).await, all);
    cleanup(&pool, &control, &format!("{prefix}accounts")).await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_pg_view_document_presumed_new_but_stored_is_read_and_folded_again() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);
    let pool = pool().await;
    let (view, prefix, control) = pg_accounts(&pool).await;
    let events = deposits(&[
        ("acct-1", 1),
        ("acct-0", 2),
        ("acct-1", 4),
        ("acct-2", 16),
        ("acct-3", 32),
    ])
    .await;
    let (a, b) = (view.subscriber(), view.subscriber());
    let start = b.checkpoint().await.expect("checkpoint");
    b.apply(start, &events[..1]).await.expect("b stores acct-1");
    assert_eq!(
        a.checkpoint().await.expect("checkpoint"),
        events[0].position
    );
    // a's first batch reads what it touches (finding nothing stored) and keeps acct-0
    // only.
    a.apply(events[0].position, &events[1..2])
        .await
        .expect("a's first batch");
    let _ = sources(&snapshotter);
    let second = tokio::time::timeout(WAIT, a.apply(events[1].position, &events[2..3]));
    second
        .await
        .expect("a's second batch ends")
        .expect("a's second batch, acct-1 presumed new, refused, folded again");
    assert_eq!(
        sources(&snapshotter),
        (0, 1, 0, 1),
        "acct-1 presumed, refused, then read"
    );
    // After a refusal the runner reads what it has not kept: acct-2 is new, and read;
    // that read found nothing stored, but the runner keeps reading for a while (acct-3).
    for (i, key) in [(3, "acct-2"), (4, "acct-3")] {
        a.apply(events[i - 1].position, &events[i..=i])
            .await
            .expect("a later batch");
        let read = (0, 1, 0, 0);
        assert_eq!(sources(&snapshotter), read, "{key} read, not presumed");
    }
    let all = vec![
        ("acct-0".to_owned(), 2),
        ("acct-1".to_owned(), 1 + 4),
        ("acct-2".to_owned(), 16),
        ("acct-3".to_owned(), 32),
    ];
    assert_eq!(totals(&view).await, all);
    assert_eq!(
        view.checkpoint().await.expect("checkpoint"),
        events[4].position
    );
    cleanup(&pool, &control, &format!("{prefix}accounts")).await;
}
