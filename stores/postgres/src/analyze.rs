//! Statistics kept up with fast-growing tables, so that cached plans do not outlive
//! the table sizes they were made for.
//!
//! A prepared statement's plan is made once and cached on its connection (after five
//! runs PostgreSQL keeps a generic plan, when its estimated cost is no higher). Made
//! while a table is nearly empty, it reads the table in full (a sequential scan, a hash
//! join): the cheapest way then.
//! Nothing makes it again until the table's statistics change, which autovacuum does
//! only when its next round (once a minute by default) finds enough rows changed. A
//! table that goes from empty to thousands of rows in seconds (checkpoints of an
//! inbox, a saga's records, the log of a new store) is read in full by every run of
//! such a plan meanwhile: its cost grows with the table.
//!
//! An [`Analyzer`] checks the tables of the schemas it watches once a second and runs
//! `ANALYZE` on each that holds at least [`AnalyzerConfig::min_rows`] live rows and
//! twice as many as its statistics last counted. The statistics change, every cached
//! plan that reads the table is made again on its next run, and the planner then sees
//! the table as it is. A table must double between two runs, so `ANALYZE` runs about
//! twenty-four times in its life up to a billion rows: autovacuum's threshold (50 rows
//! and a tenth of the table) is nearer, but its rounds come a minute apart, and never
//! where it is off. Tables the connection's role does not own (nor is a member of the
//! owner) are left alone: `ANALYZE` would skip them with a warning.
//!
//! Only the indexed columns are analyzed: statistics of expressions in indexes, and of
//! columns used only in filters, are left to autovacuum's own `ANALYZE`.

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::Pool;
use tessera_core::BoxError;
use tokio::task::JoinHandle;
use tokio_postgres::error::SqlState;

/// The tables of the watched schemas whose live rows reached `$2` and twice the count
/// of their last statistics (`reltuples` is -1 before the first `ANALYZE` or vacuum),
/// owned by the connection's role (or one it is a member of), with their indexed
/// columns (`NULL`: none).
const GROWN: &str = "SELECT format('%I.%I', s.schemaname, s.relname), \
       (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) \
          FROM pg_attribute a \
         WHERE a.attrelid = s.relid AND a.attnum > 0 AND NOT a.attisdropped \
           AND a.attnum IN (SELECT unnest(i.indkey::int2[]) FROM pg_index i \
                             WHERE i.indrelid = s.relid)) \
     FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid \
     WHERE s.schemaname LIKE ANY($1::text[]) AND s.n_live_tup >= $2 \
       AND pg_has_role(c.relowner, 'USAGE') \
       AND s.n_live_tup >= 2 * greatest(c.reltuples, 0) \
     ORDER BY 1";

/// Prefixed to each `ANALYZE`, in the same implicit transaction: when the session sets
/// no `lock_timeout` of its own, the `ANALYZE` waits at most a second for its table's
/// lock (held by a migration's `ALTER TABLE`, a `CREATE INDEX`, a `VACUUM`) and is
/// tried again at the next check, instead of holding one of the pool's connections
/// for as long as the lock lasts.
const LOCK_WAIT: &str = "SELECT set_config('lock_timeout', \
       CASE current_setting('lock_timeout') WHEN '0' THEN '1s' \
            ELSE current_setting('lock_timeout') END, true)";

/// How an [`Analyzer`] works.
#[derive(Debug, Clone)]
pub struct AnalyzerConfig {
    /// Between two checks (default 1 s; at least 1 ms).
    pub interval: Duration,
    /// Live rows a table needs before it is analyzed (default 64; at least 1). A full
    /// read of a table below a thousand rows is not cheap when they carry JSON: in a
    /// 15-s load at 100 orders/s, which left a saga's instances below 1,000 rows for
    /// most of its run, the update of an instance read 89 blocks a call on average
    /// (0.96 ms) and its load 78 (0.71 ms). Each `ANALYZE` makes the cached plans on its
    /// table again: from 64 rows, about four more of them in a table's life.
    pub min_rows: i64,
}

impl Default for AnalyzerConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(1),
            min_rows: 64,
        }
    }
}

/// Runs `ANALYZE` on the tables of some schemas as they grow. See the
/// [module](self) docs. Clones share one task, which ends when the last is dropped.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use tessera_postgres::{Analyzer, AnalyzerConfig, PostgresStore, SchemaName};
///
/// let url = std::env::var("DATABASE_URL")
///     .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
/// # let name = format!("doc_{}", fastrand::u64(..));
/// # let schema = SchemaName::new(&name).unwrap();
/// # /*
/// let schema = SchemaName::new("ordering").unwrap();
/// # */
/// let store = PostgresStore::builder(url).schema(schema).build().await.unwrap();
/// // The store's schema and those of its read models, `ordering_orders_v1` and on.
/// # let pattern = format!("{name}%");
/// # /*
/// let pattern = "ordering%".to_owned();
/// # */
/// let analyzer = Analyzer::spawn(store.pool().clone(), vec![pattern], AnalyzerConfig::default());
/// // … the service runs; dropping the last clone stops it.
/// drop(analyzer);
/// # let client = store.pool().get().await.unwrap();
/// # client.batch_execute(&format!("DROP SCHEMA {name} CASCADE")).await.unwrap();
/// # });
/// ```
#[derive(Clone)]
pub struct Analyzer {
    task: Arc<Task>,
}

/// Aborts the task when the last handle goes.
struct Task(JoinHandle<()>);

impl Drop for Task {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Analyzer {
    /// Watches the schemas whose names match one of `schemas` (`LIKE` patterns: `%`
    /// for any run of characters, `_` for one), on a task of the current runtime.
    pub fn spawn(pool: Pool, schemas: Vec<String>, config: AnalyzerConfig) -> Self {
        let interval = config.interval.max(Duration::from_millis(1));
        let min_rows = config.min_rows.max(1);
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut failing = false;
            loop {
                tick.tick().await;
                match analyze_grown(&pool, &schemas, min_rows).await {
                    Ok(tables) => {
                        failing = false;
                        if !tables.is_empty() {
                            tracing::debug!(?tables, "analyzed grown tables");
                        }
                    }
                    // Once per spell of failures: the database may be down for a while.
                    Err(error) if !failing => {
                        failing = true;
                        tracing::warn!(%error, "analyzing grown tables failed");
                    }
                    Err(_) => {}
                }
            }
        });
        Self {
            task: Arc::new(Task(task)),
        }
    }
}

impl std::fmt::Debug for Analyzer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Analyzer")
            .field("running", &!self.task.0.is_finished())
            .finish()
    }
}

/// One check of an [`Analyzer`], now: runs `ANALYZE` on the indexed columns (all
/// columns when none is indexed) of each table of the schemas matching `schemas` that
/// holds at least `min_rows` live rows and twice as many as its
/// statistics last counted; returns their names (`schema.table`, quoted where needed),
/// in name order. The live rows are the server's cumulative statistics, which a
/// backend reports at most about once a second.
pub async fn analyze_grown(
    pool: &Pool,
    schemas: &[String],
    min_rows: i64,
) -> Result<Vec<String>, BoxError> {
    let client = pool.get().await?;
    let grown: Vec<(String, Option<String>)> = client
        .query(GROWN, &[&schemas, &min_rows])
        .await?
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    let mut analyzed = Vec::with_capacity(grown.len());
    for (table, indexed) in grown {
        // Names come from `format('%I.%I')` and `quote_ident`: quoted where needed. The
        // indexed columns only: the table's size is what the plans lacked, and the
        // statistics of the others (a JSON document, say) cost several times more to
        // gather; autovacuum's own analyze gathers them later.
        let statement = match indexed {
            Some(columns) => format!("{LOCK_WAIT}; ANALYZE {table} ({columns})"),
            None => format!("{LOCK_WAIT}; ANALYZE {table}"),
        };
        match client.batch_execute(&statement).await {
            Ok(()) => analyzed.push(table),
            // Dropped since (a rebuild's old version), or a column with it: nothing to do.
            Err(e)
                if [
                    SqlState::UNDEFINED_TABLE,
                    SqlState::INVALID_SCHEMA_NAME,
                    SqlState::UNDEFINED_COLUMN,
                ]
                .iter()
                .any(|code| e.code() == Some(code)) => {}
            // Lost connection: the next check tries again.
            Err(e) if e.is_closed() => return Err(e.into()),
            // One table failing (a lock or statement timeout, say) does not hold back
            // the others; it is tried again at the next check.
            Err(e) => tracing::debug!(%table, error = %e, "analyzing a grown table failed"),
        }
    }
    Ok(analyzed)
}
