//! Document views on both backends: get, list with filters and cursors, the closed set
//! of filterable fields, and a rebuild that keeps serving.

use serde::{Deserialize, Serialize};
use tessera_core::{BoxError, EventFilter, MemoryStore, RecordedEvent};
use tessera_projections::{QueryError, RunnerConfig, View, ViewStore};

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
    let client = pool.get().await.expect("connection");
    client
        .batch_execute(&format!(
            "CREATE SCHEMA \"{name}_v2\";
             CREATE TABLE \"{name}_v2\".docs AS SELECT * FROM \"{name}_v1\".docs;
             UPDATE \"{name}_v2\".docs SET doc = jsonb_set(doc, '{{total}}', '42');
             UPDATE \"{control}\".active SET version = 2, schema_name = '{name}_v2' WHERE name = '{name}';"
        ))
        .await
        .expect("switch by hand");
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
