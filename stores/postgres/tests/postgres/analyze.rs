//! The analyzer: a plan cached while a table was nearly empty is made again once the
//! table has grown, and only the watched schemas' tables are analyzed.

use std::time::{Duration, Instant};

use tessera_postgres::{analyze::analyze_grown, Analyzer, AnalyzerConfig};
use tokio_postgres::Client;

use crate::common::{database_url, raw_client, run_detached, TestDb};

/// A table of `Marks` (a name that needs quoting) in `schema`, without autovacuum
/// (only the analyzer changes its statistics here), holding one row.
async fn marks(raw: &Client, schema: &str) -> String {
    let table = format!("\"{schema}\".\"Marks\"");
    raw.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS \"{schema}\";
         CREATE TABLE {table} (name text PRIMARY KEY, n bigint NOT NULL)
             WITH (autovacuum_enabled = false);
         INSERT INTO {table} VALUES ('m0', 0);"
    ))
    .await
    .expect("marks table");
    table
}

/// Adds `rows` rows to `table`, and has this session's statistics flushed at once.
async fn grow(raw: &Client, table: &str, from: usize, rows: usize) {
    raw.batch_execute(&format!(
        "SELECT pg_stat_force_next_flush();
         INSERT INTO {table} SELECT 'm' || g, g FROM generate_series({from}, {}) g;",
        from + rows - 1
    ))
    .await
    .expect("grow");
}

async fn plan(raw: &Client) -> String {
    raw.query("EXPLAIN EXECUTE lookup('{m0,m7}')", &[])
        .await
        .expect("explain")
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect::<Vec<_>>()
        .join("\n")
}

async fn reltuples(raw: &Client, table: &str) -> f32 {
    raw.query_one(
        &format!("SELECT reltuples FROM pg_class WHERE oid = '{table}'::regclass"),
        &[],
    )
    .await
    .expect("reltuples")
    .get(0)
}

#[tokio::test]
async fn a_plan_cached_on_a_small_table_is_made_again_once_the_table_is_analyzed_grown() {
    let db = TestDb::new("analyze_plan").await;
    let store = db.store().await;
    let raw = raw_client().await;
    let schema = db.schema.as_str().to_owned();
    let table = marks(&raw, &schema).await;
    // A schema the analyzer does not watch (dropped with its `TestDb`), whose table
    // grows too.
    let other = TestDb::new("analyze_other").await;
    let other_table = marks(&raw, other.schema.as_str()).await;
    // A join of an array against the table, its generic plan made and kept while the
    // table holds one row (generic plans, as PostgreSQL picks after five runs when they
    // cost no more, and as the store's append connections always use).
    raw.batch_execute(&format!(
        "SET plan_cache_mode = force_generic_plan;
         PREPARE lookup(text[]) AS SELECT m.n FROM {table} m JOIN unnest($1) AS u(name) ON m.name = u.name"
    ))
    .await
    .expect("prepare");
    for _ in 0..8 {
        raw.batch_execute("EXECUTE lookup('{m0}')")
            .await
            .expect("execute");
    }
    grow(&raw, &table, 1, 20_000).await;
    grow(&raw, &other_table, 1, 20_000).await;
    let before = plan(&raw).await;
    assert!(
        before.contains("Seq Scan on \"Marks\""),
        "the premise: the plan cached on one row reads the whole table:\n{before}"
    );

    // The server's statistics may take a moment to count the new rows.
    let watched = vec![schema.clone()];
    let deadline = Instant::now() + Duration::from_secs(10);
    let analyzed = loop {
        let analyzed = analyze_grown(store.pool(), &watched, 1_000)
            .await
            .expect("analyze");
        if !analyzed.is_empty() || Instant::now() > deadline {
            break analyzed;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // Quoted only where needed (`format('%I.%I')`).
    assert_eq!(analyzed, vec![format!("{schema}.\"Marks\"")]);
    assert!(reltuples(&raw, &table).await >= 20_000.0);
    // The indexed column only: the others' statistics are left to autovacuum.
    let columns: Vec<String> = raw
        .query(
            "SELECT attname::text FROM pg_stats WHERE schemaname = $1 AND tablename = 'Marks'",
            &[&schema],
        )
        .await
        .expect("pg_stats")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(columns, vec!["name".to_owned()]);
    assert!(
        reltuples(&raw, &other_table).await < 0.0,
        "a schema not watched is left alone"
    );
    let after = plan(&raw).await;
    assert!(
        !after.contains("Seq Scan"),
        "the plan is made again for the table as it is now:\n{after}"
    );
    // Not grown since: not analyzed again.
    let again = analyze_grown(store.pool(), &watched, 1_000)
        .await
        .expect("analyze");
    assert!(again.is_empty(), "analyzed again without growth: {again:?}");
}

#[tokio::test]
async fn an_analyzer_analyzes_grown_tables_by_itself_and_stops_with_its_last_handle() {
    let db = TestDb::new("analyze_task").await;
    let store = db.store().await;
    let raw = raw_client().await;
    let schema = db.schema.as_str().to_owned();
    let table = marks(&raw, &schema).await;
    // Small tables are left alone.
    let config = AnalyzerConfig {
        interval: Duration::from_millis(20),
        min_rows: 2_000,
    };
    let analyzer = Analyzer::spawn(store.pool().clone(), vec![format!("{schema}%")], config);
    grow(&raw, &table, 1, 1_000).await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert!(
        reltuples(&raw, &table).await < 0.0,
        "analyzed below min_rows"
    );
    grow(&raw, &table, 1_001, 1_500).await;
    analyzed_within_10_s(
        &raw,
        &table,
        2_500.0,
        "the analyzer did not analyze the grown table",
    )
    .await;
    let clone = analyzer.clone();
    drop(analyzer);
    // A clone keeps it running: the table doubled is analyzed again.
    grow(&raw, &table, 2_501, 3_000).await;
    analyzed_within_10_s(&raw, &table, 5_500.0, "the clone's analyzer stopped").await;
    drop(clone);
    grow(&raw, &table, 5_501, 10_000).await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert!(
        reltuples(&raw, &table).await < 6_000.0,
        "the analyzer ran on after its last handle was dropped"
    );
}

/// The default threshold is low: a saga's instances read in full below a thousand rows
/// cost up to a millisecond a call; they are analyzed long before a thousand.
#[tokio::test]
async fn by_default_an_analyzer_analyzes_a_table_of_a_hundred_rows() {
    let db = TestDb::new("analyze_default").await;
    let store = db.store().await;
    let raw = raw_client().await;
    let schema = db.schema.as_str().to_owned();
    let table = marks(&raw, &schema).await;
    let config = AnalyzerConfig {
        interval: Duration::from_millis(20),
        ..AnalyzerConfig::default()
    };
    let _analyzer = Analyzer::spawn(store.pool().clone(), vec![format!("{schema}%")], config);
    grow(&raw, &table, 1, 100).await;
    analyzed_within_10_s(
        &raw,
        &table,
        100.0,
        "a table of 100 rows was not analyzed with the default threshold",
    )
    .await;
}

/// Waits until `table`'s statistics count at least `rows`, failing with `otherwise`
/// after 10 s.
async fn analyzed_within_10_s(raw: &Client, table: &str, rows: f32, otherwise: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while reltuples(raw, table).await < rows {
        assert!(Instant::now() < deadline, "{otherwise}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A pool of one connection to the test database (as `user`, if given), its settings
/// `options` (`-c name=value`).
fn pool_of(user: Option<&str>, options: &str) -> deadpool_postgres::Pool {
    let mut config: tokio_postgres::Config = database_url().parse().expect("database url");
    config.options(options);
    if let Some(user) = user {
        config.user(user);
    }
    let manager = deadpool_postgres::Manager::new(config, tokio_postgres::NoTls);
    deadpool_postgres::Pool::builder(manager)
        .max_size(1)
        .build()
        .expect("pool")
}

/// Waits until the server's statistics count at least `rows` live rows in each of
/// `tables` (they may take a moment to arrive).
async fn counted(raw: &Client, tables: &[&str], rows: i64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    for table in tables {
        let sql =
            format!("SELECT n_live_tup FROM pg_stat_user_tables WHERE relid = '{table}'::regclass");
        while raw
            .query_one(&sql, &[])
            .await
            .expect("stats")
            .get::<_, i64>(0)
            < rows
        {
            assert!(Instant::now() < deadline, "{table}: rows not counted");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[tokio::test]
async fn a_table_that_cannot_be_analyzed_now_does_not_hold_back_the_others() {
    let db = TestDb::new("analyze_fail").await;
    let raw = raw_client().await;
    let schema = db.schema.as_str().to_owned();
    let first = marks(&raw, &schema).await;
    let second = format!("\"{schema}\".\"Notes\"");
    raw.batch_execute(&format!(
        "CREATE TABLE {second} (LIKE {first} INCLUDING ALL) WITH (autovacuum_enabled = false)"
    ))
    .await
    .expect("second table");
    grow(&raw, &first, 1, 2_000).await;
    grow(&raw, &second, 1, 2_000).await;
    counted(&raw, &[&first, &second], 2_000).await;
    // `Marks`, checked first (by name), is locked by another transaction: the
    // analyzer's `ANALYZE` of it gives up after its own lock timeout (a second, the
    // pool setting none). (Should the test fail, the server ends the lock's session
    // after 5 s, which the schema's drop would wait for.)
    let locker = raw_client().await;
    locker
        .batch_execute(&format!(
            "SET idle_in_transaction_session_timeout = '5s';
             BEGIN; LOCK TABLE {first} IN ACCESS EXCLUSIVE MODE"
        ))
        .await
        .expect("lock");
    let pool = pool_of(None, "");
    let started = Instant::now();
    let analyzed = analyze_grown(&pool, std::slice::from_ref(&schema), 1_000)
        .await
        .expect("a table failing is not the check failing");
    assert_eq!(
        analyzed,
        vec![format!("{schema}.\"Notes\"")],
        "the locked table was analyzed: the analyzer waited until its lock ended"
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert!(reltuples(&raw, &second).await >= 2_000.0);
    locker.batch_execute("ROLLBACK").await.expect("unlock");
    assert!(
        reltuples(&raw, &first).await < 0.0,
        "not analyzed while locked"
    );
    // Tried again at the next check.
    let analyzed = analyze_grown(&pool, std::slice::from_ref(&schema), 1_000)
        .await
        .expect("analyze");
    assert_eq!(analyzed, vec![format!("{schema}.\"Marks\"")]);
}

#[tokio::test]
async fn tables_of_another_owner_are_left_alone() {
    let db = TestDb::new("analyze_owner").await;
    let raw = raw_client().await;
    let schema = db.schema.as_str().to_owned();
    let role = format!("{schema}_role");
    let _dropped = DropRole(role.clone());
    // Owned by the test's superuser, not by (nor through) the analyzer's role.
    let theirs = marks(&raw, &schema).await;
    let ours = format!("\"{schema}\".\"Notes\"");
    raw.batch_execute(&format!(
        "CREATE ROLE \"{role}\" LOGIN;
         GRANT USAGE ON SCHEMA \"{schema}\" TO \"{role}\";
         CREATE TABLE {ours} (LIKE {theirs} INCLUDING ALL) WITH (autovacuum_enabled = false);
         ALTER TABLE {ours} OWNER TO \"{role}\";"
    ))
    .await
    .expect("role and tables");
    grow(&raw, &theirs, 1, 2_000).await;
    grow(&raw, &ours, 1, 2_000).await;
    counted(&raw, &[&theirs, &ours], 2_000).await;
    let pool = pool_of(Some(&role), "");
    let analyzed = analyze_grown(&pool, std::slice::from_ref(&schema), 1_000).await;
    drop(pool);
    let ours_counted = reltuples(&raw, &ours).await;
    let theirs_counted = reltuples(&raw, &theirs).await;
    assert_eq!(
        analyzed.expect("analyze"),
        vec![format!("{schema}.\"Notes\"")]
    );
    assert!(ours_counted >= 2_000.0);
    assert!(theirs_counted < 0.0, "another owner's table analyzed");
}

/// Drops a role of the test's own when dropped, after what it owns and the privileges
/// granted to it, whatever the test did.
struct DropRole(String);

impl Drop for DropRole {
    fn drop(&mut self) {
        let sql = format!("DROP OWNED BY \"{0}\"; DROP ROLE IF EXISTS \"{0}\"", self.0);
        if !run_detached(sql) {
            eprintln!("could not drop test role {}", self.0);
        }
    }
}
