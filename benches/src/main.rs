//! `tessera-bench`: one workload per subcommand, one `key=value` summary line each.

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use tessera_benches::order::BenchOrder;
use tessera_benches::stats::{Latencies, Summary};
use tessera_benches::target;
use tessera_benches::workload::{batch, commands, long_stream};
use tessera_core::{CommandHandler, EventStore, MemoryStore, SnapshotPolicy, SnapshotStore};

/// Tessera load generator.
#[derive(Parser, Debug)]
#[command(name = "tessera-bench", version, about)]
struct Cli {
    /// PostgreSQL to run against (and to measure raw baselines on).
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/test",
        global = true
    )]
    database_url: String,
    /// PostgreSQL store: append connections (group commit), see `Builder::writers`.
    #[arg(long, default_value_t = 2, global = true)]
    writers: usize,
    /// Which store the workload uses.
    #[arg(long, value_enum, default_value_t = StoreKind::Postgres, global = true)]
    store: StoreKind,
    #[command(subcommand)]
    workload: Workload,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
enum StoreKind {
    /// The embedded in-memory store (no baseline).
    Memory,
    /// PostgreSQL at --database-url, in a fresh schema dropped afterwards.
    Postgres,
}

#[derive(Subcommand, Debug)]
enum Workload {
    /// Single-event commands (load, decide, append) through the command handler.
    Append {
        /// Concurrent tasks.
        #[arg(long, default_value_t = 1)]
        concurrency: usize,
        /// Fresh aggregates per task.
        #[arg(long, default_value_t = 10)]
        aggregates: usize,
        /// Commands per aggregate.
        #[arg(long, default_value_t = 10)]
        commands: usize,
        /// Keep up to N aggregate states in memory between commands
        /// (`CommandHandler::with_state_cache`); 0: every command reads its stream.
        #[arg(long, default_value_t = 0)]
        state_cache: usize,
        /// Rounds the run is split into, each the store's share of the commands and
        /// then the baseline's (at most --commands).
        #[arg(long, default_value_t = 5)]
        rounds: usize,
    },
    /// Appends of many events at once (default 100), straight to the store.
    Batch {
        /// Number of appends.
        #[arg(long, default_value_t = 200)]
        batches: usize,
        /// Events per append.
        #[arg(long, default_value_t = 100)]
        size: usize,
        /// Rounds the run is split into, each the store's share of the batches and
        /// then the baseline's.
        #[arg(long, default_value_t = 5)]
        rounds: usize,
    },
    /// Commands on long streams (snapshots every N events) against commands on new streams.
    LongStream {
        /// Long streams.
        #[arg(long, default_value_t = 4)]
        streams: usize,
        /// Events in each before the run.
        #[arg(long, default_value_t = 10_000)]
        length: usize,
        /// Commands per stream.
        #[arg(long, default_value_t = 50)]
        commands: usize,
        /// Snapshot policy: every N events (0: never).
        #[arg(long, default_value_t = 100)]
        snapshot_every: u64,
    },
    /// Rebuild of a PostgreSQL read model over N events, beside a raw COPY of them.
    Rebuild {
        /// Events in the log.
        #[arg(long, default_value_t = 1_000_000)]
        events: usize,
        /// Streams they are spread over.
        #[arg(long, default_value_t = 10_000)]
        streams: usize,
        /// Events per rebuild batch.
        #[arg(long, default_value_t = 2_000)]
        batch: usize,
    },
    /// Append → read-model latency at a steady rate (PostgreSQL).
    Latency {
        /// Events per second.
        #[arg(long, default_value_t = 1_000)]
        rate: u32,
        /// Seconds to run.
        #[arg(long, default_value_t = 10)]
        seconds: u32,
    },
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let run_id = format!("r{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    if let Workload::Rebuild {
        events,
        streams,
        batch,
    } = cli.workload
    {
        let url = cli.database_url.clone();
        let result = tessera_benches::pg::with_store(
            &cli.database_url,
            &run_id,
            cli.writers,
            |store, schema| async move {
                rebuild_workload(&url, &store, &schema, events, streams, batch).await
            },
        )
        .await
        .and_then(|r| r);
        return finish(result);
    }
    if let Workload::Latency { rate, seconds } = cli.workload {
        let url = cli.database_url.clone();
        let result = tessera_benches::pg::with_store(&cli.database_url, &run_id, cli.writers, |store, schema| async move {
            let control = format!("{schema}_ctl");
            let out = tessera_benches::workload::latency::run(&store, &control, rate, seconds).await;
            let client = tessera_benches::baseline::connect(&url).await?;
            client
                .batch_execute(&format!(
                    "DROP SCHEMA IF EXISTS \"{control}\" CASCADE; DROP SCHEMA IF EXISTS bench_order_totals_v1 CASCADE;"
                ))
                .await
                .map_err(|e| e.to_string())?;
            let mut lat = out?;
            let mut s = Summary::default();
            s.add("workload", "latency").add("rate_per_s", rate).add("events", lat.len());
            s.add("p50_ms", format!("{:.3}", lat.percentile_ms(50.0)));
            s.add("p99_ms", format!("{:.3}", lat.percentile_ms(99.0)));
            s.add("max_ms", format!("{:.3}", lat.percentile_ms(100.0)));
            Ok::<_, String>(s)
        })
        .await
        .and_then(|r| r);
        return finish(result);
    }
    let result = match cli.store {
        StoreKind::Memory => run(&cli, MemoryStore::new(), None, &run_id).await,
        StoreKind::Postgres => tessera_benches::pg::with_store(
            &cli.database_url,
            &run_id,
            cli.writers,
            |store, schema| {
                let cli = &cli;
                let run_id = run_id.clone();
                async move { run(cli, store, Some(schema), &run_id).await }
            },
        )
        .await
        .and_then(|r| r),
    };
    finish(result)
}

fn finish(result: Result<Summary, String>) -> ExitCode {
    match result {
        Ok(summary) => {
            println!("{}", summary.line());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tessera-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn rebuild_workload(
    url: &str,
    store: &tessera_postgres::PostgresStore,
    schema: &str,
    events: usize,
    streams: usize,
    batch: usize,
) -> Result<Summary, String> {
    use tessera_benches::workload::rebuild;
    let fill_start = std::time::Instant::now();
    rebuild::fill(store, events, streams).await?;
    let fill = fill_start.elapsed();
    let lag = reader_lag_ms(store).await?;
    let (raw_rows, raw_el) = rebuild::raw_copy(url, schema).await?;
    let control = format!("{schema}_ctl");
    let rss_before = rebuild::rss_kib();
    let (done, el, peak) = rebuild::rebuild(store, &control, batch).await?;
    let client = tessera_benches::baseline::connect(url).await?;
    client
        .batch_execute(&format!(
            "DROP SCHEMA IF EXISTS \"{control}\" CASCADE; DROP SCHEMA IF EXISTS bench_order_totals_v1 CASCADE; DROP SCHEMA IF EXISTS bench_order_totals_v2 CASCADE;"
        ))
        .await
        .map_err(|e| e.to_string())?;
    let mut s = Summary::default();
    s.add("workload", "rebuild")
        .add("events", done)
        .add("batch", batch);
    s.add("fill_s", format!("{:.1}", fill.as_secs_f64()))
        .add("reader_lag_ms", format!("{lag:.2}"));
    let rate = s.rate(
        "rebuild_events_per_s",
        usize::try_from(done).unwrap_or(usize::MAX),
        el,
    );
    let base = s.rate(
        "baseline_copy_rows_per_s",
        usize::try_from(raw_rows).unwrap_or(usize::MAX),
        raw_el,
    );
    s.ratio("ratio", rate / base);
    s.add("rss_before_rebuild_kib", rss_before)
        .add("peak_rss_kib", peak);
    s.judge(Some(target::rebuild()));
    Ok(s)
}

/// The median time of one `reader_lag()` call, over 9 calls, on the log as it is.
async fn reader_lag_ms(store: &tessera_postgres::PostgresStore) -> Result<f64, String> {
    let mut times = Vec::with_capacity(9);
    for _ in 0..9 {
        let t0 = std::time::Instant::now();
        store.reader_lag().await.map_err(|e| e.to_string())?;
        times.push(t0.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

/// The raw baseline's table in `schema`, created anew (none off PostgreSQL).
async fn baseline_table(cli: &Cli, schema: Option<&str>) -> Result<Option<String>, String> {
    let Some(schema) = schema else {
        return Ok(None);
    };
    let client = tessera_benches::baseline::connect(&cli.database_url).await?;
    Ok(Some(
        tessera_benches::baseline::create_table(&client, schema).await?,
    ))
}

/// Runs the chosen workload; `schema` is set when on PostgreSQL (baselines run there).
async fn run<S: EventStore + SnapshotStore>(
    cli: &Cli,
    store: S,
    schema: Option<String>,
    run_id: &str,
) -> Result<Summary, String> {
    let mut s = Summary::default();
    let (store_name, kind) = if schema.is_some() {
        ("postgres", target::Store::Postgres)
    } else {
        ("memory", target::Store::Memory)
    };
    match cli.workload {
        Workload::Append {
            concurrency,
            aggregates,
            commands: k,
            state_cache,
            rounds,
        } => {
            let load = commands::CommandLoad {
                concurrency,
                aggregates,
                commands: k,
            };
            let mut handler = CommandHandler::<BenchOrder, _>::new(store.clone(), ());
            if state_cache > 0 {
                handler = handler.with_state_cache(state_cache);
            }
            // The store's and the raw baseline's work alternate in rounds, so a host
            // whose speed drifts during the run weighs on both alike.
            let rounds = rounds.clamp(1, k.max(1));
            let baseline_table = baseline_table(cli, schema.as_deref()).await?;
            let (mut elapsed, mut latencies, mut ids) =
                (std::time::Duration::ZERO, Latencies::default(), Vec::new());
            let (mut base_elapsed, mut base_lat) =
                (std::time::Duration::ZERO, Latencies::default());
            let mut round_ratios = Vec::with_capacity(rounds);
            for round in 0..rounds {
                let part = (k * round / rounds)..(k * (round + 1) / rounds);
                let commands_in_round = concurrency * aggregates * part.len();
                let r = commands::run(handler.clone(), load, part, run_id).await?;
                let rate = commands_in_round as f64 / r.elapsed.as_secs_f64();
                elapsed += r.elapsed;
                latencies.merge(r.latencies);
                ids = r.ids;
                if let Some(table) = &baseline_table {
                    let (el, lat) = tessera_benches::baseline::single_inserts(
                        &cli.database_url,
                        table,
                        concurrency,
                        commands_in_round,
                        round,
                    )
                    .await?;
                    round_ratios.push(rate / (lat.len() as f64 / el.as_secs_f64()));
                    base_elapsed += el;
                    base_lat.merge(lat);
                }
            }
            commands::verify(&store, &ids, k).await?;
            s.add("workload", "append")
                .add("store", store_name)
                .add("concurrency", concurrency)
                .add("state_cache", state_cache);
            s.add("commands", load.total())
                .add("elapsed_s", format!("{:.3}", elapsed.as_secs_f64()));
            let rate = s.rate("commands_per_s", load.total(), elapsed);
            s.add("p50_ms", format!("{:.3}", latencies.percentile_ms(50.0)));
            s.add("p99_ms", format!("{:.3}", latencies.percentile_ms(99.0)));
            s.add("verified", true);
            if baseline_table.is_some() {
                let base = s.rate("baseline_single_insert_per_s", base_lat.len(), base_elapsed);
                s.add(
                    "baseline_p50_ms",
                    format!("{:.3}", base_lat.percentile_ms(50.0)),
                );
                s.add(
                    "baseline_p99_ms",
                    format!("{:.3}", base_lat.percentile_ms(99.0)),
                );
                s.add("rounds", rounds);
                let listed: Vec<String> = round_ratios.iter().map(|r| format!("{r:.2}")).collect();
                s.add("round_ratios", listed.join(","));
                s.ratio("ratio", rate / base);
            }
            s.judge(target::append(kind, concurrency, k));
        }
        Workload::Batch {
            batches,
            size,
            rounds,
        } => {
            // As for commands: the store's and the baseline's shares alternate.
            let rounds = rounds.clamp(1, batches.max(1));
            let baseline_table = baseline_table(cli, schema.as_deref()).await?;
            let (mut el, mut lat) = (std::time::Duration::ZERO, Latencies::default());
            let (mut base_el, mut base_lat) = (std::time::Duration::ZERO, Latencies::default());
            for round in 0..rounds {
                let part = (batches * round / rounds)..(batches * (round + 1) / rounds);
                let n = part.len();
                let (e, l) = batch::run(&store, part, size, run_id).await?;
                el += e;
                lat.merge(l);
                if let Some(table) = &baseline_table {
                    let (e, l) = tessera_benches::baseline::multi_inserts(
                        &cli.database_url,
                        table,
                        n,
                        size,
                        round,
                    )
                    .await?;
                    base_el += e;
                    base_lat.merge(l);
                }
            }
            s.add("workload", "batch")
                .add("store", store_name)
                .add("batch_size", size)
                .add("batches", batches);
            let rate = s.rate("events_per_s", batches * size, el);
            s.add("p50_ms", format!("{:.3}", lat.percentile_ms(50.0)));
            s.add("p99_ms", format!("{:.3}", lat.percentile_ms(99.0)));
            if baseline_table.is_some() {
                let base = s.rate(
                    "baseline_multi_insert_events_per_s",
                    batches * size,
                    base_el,
                );
                s.add(
                    "baseline_p50_ms",
                    format!("{:.3}", base_lat.percentile_ms(50.0)),
                );
                s.add("rounds", rounds);
                s.ratio("ratio", rate / base);
            }
            s.judge(target::batch(kind, size));
        }
        Workload::Rebuild { .. } | Workload::Latency { .. } => {
            return Err("this workload runs on PostgreSQL only".into())
        }
        Workload::LongStream {
            streams,
            length,
            commands: k,
            snapshot_every,
        } => {
            let policy = if snapshot_every == 0 {
                SnapshotPolicy::Never
            } else {
                SnapshotPolicy::EveryNEvents(snapshot_every)
            };
            let handler = CommandHandler::<BenchOrder, _>::new(store.clone(), ())
                .with_snapshots(store.clone(), policy);
            let ids = long_stream::prepare(&store, streams, length, run_id).await?;
            let fresh: Vec<String> = (0..streams)
                .map(|i| format!("{run_id}_fresh_{i}"))
                .collect();
            // Warm up: the first command on each long stream reads it whole and snapshots.
            long_stream::run(&handler, &ids, 1).await?;
            let (el_long, mut lat_long) = long_stream::run(&handler, &ids, k).await?;
            let (el_new, mut lat_new) = long_stream::run(&handler, &fresh, k).await?;
            s.add("workload", "long-stream")
                .add("store", store_name)
                .add("stream_length", length);
            s.add("snapshot_every", snapshot_every);
            let long = s.rate("long_commands_per_s", streams * k, el_long);
            let new = s.rate("new_commands_per_s", streams * k, el_new);
            s.add(
                "long_p50_ms",
                format!("{:.3}", lat_long.percentile_ms(50.0)),
            );
            s.add("new_p50_ms", format!("{:.3}", lat_new.percentile_ms(50.0)));
            s.ratio("cost_ratio", new / long);
            s.judge(Some(target::long_stream()));
        }
    }
    Ok(s)
}
