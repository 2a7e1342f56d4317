//! `tessera-bench`: one workload per subcommand, one `key=value` summary line each.

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use tessera_benches::broker::{Broker, Session};
use tessera_benches::order::BenchOrder;
use tessera_benches::stats::{Latencies, Summary};
use tessera_benches::target;
use tessera_benches::workload::{batch, bus_latency, commands, long_stream, relay};
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
    /// Install a Prometheus `metrics` recorder (as the shop does) before the run, so
    /// that the libraries' metrics are recorded: run with and without to measure what
    /// recording costs. Without it the libraries' metric calls find no recorder.
    #[arg(long, global = true)]
    metrics: bool,
    /// Export spans over OTLP/HTTP (as the shop does when `OTEL_EXPORTER_OTLP_ENDPOINT`
    /// is set): to that endpoint if set, else to a sink in this process. Run with and
    /// without to measure what tracing costs.
    #[arg(long, global = true)]
    trace_export: bool,
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
    /// Not a workload: an OTLP/HTTP trace sink on `--listen` that reads every export
    /// and answers 200, for a process under test (the shop) to export to. Runs until
    /// killed.
    OtlpSink {
        /// Where to listen.
        #[arg(long, default_value = "127.0.0.1:4318")]
        listen: String,
    },
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
    /// Append → document view latency on PostgreSQL, a view's two ways of applying a
    /// live batch in alternating rounds: a transaction of five statements
    /// (`PgProjection` over `PgView`) and the `ViewStore`'s one statement.
    ViewLatency {
        /// Events per second.
        #[arg(long, default_value_t = 200)]
        rate: u32,
        /// Seconds per round.
        #[arg(long, default_value_t = 10)]
        seconds: u32,
        /// Rounds, each both ways.
        #[arg(long, default_value_t = 2)]
        rounds: u32,
    },
    /// Outbox relay throughput from a PostgreSQL log to a broker, beside the broker's
    /// own client publishing the same messages (rounds alternating).
    Relay {
        /// The broker: nats://host:4222, amqp://user:password@host:5672/%2f, or memory.
        #[arg(long, default_value = "nats://127.0.0.1:4222")]
        bus: String,
        /// Events in the log, all public.
        #[arg(long, default_value_t = 100_000)]
        events: usize,
        /// Streams they are spread over.
        #[arg(long, default_value_t = 100)]
        streams: usize,
        /// Rounds, each the relay's share of the events and then the raw client's.
        #[arg(long, default_value_t = 5)]
        rounds: usize,
        /// The relay runner's batch size.
        #[arg(long, default_value_t = 500)]
        batch_size: usize,
    },
    /// Append in one service → handled by an inbox in another, through a broker, at a
    /// steady rate.
    BusLatency {
        /// The broker: nats://host:4222, amqp://user:password@host:5672/%2f, or memory.
        #[arg(long, default_value = "nats://127.0.0.1:4222")]
        bus: String,
        /// Events per second.
        #[arg(long, default_value_t = 1_000)]
        rate: u32,
        /// Seconds to run.
        #[arg(long, default_value_t = 10)]
        seconds: u32,
        /// Where the inbox keeps its position per source stream.
        #[arg(long, value_enum, default_value_t = Positions::Postgres)]
        inbox_positions: Positions,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Positions {
    /// PgCheckpoints in a schema of the consuming service.
    Postgres,
    /// MemoryCheckpoints.
    Memory,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Workload::OtlpSink { listen } = &cli.workload {
        return match tessera_benches::traces::serve_sink(listen) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("tessera-bench: {e}");
                ExitCode::FAILURE
            }
        };
    }
    // Outside the workload's runtime: the exporter's blocking client has its own.
    let export = if cli.trace_export {
        match tessera_benches::traces::install() {
            Ok(export) => Some(export),
            Err(e) => {
                eprintln!("tessera-bench: cannot start the trace exporter: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        None
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("tessera-bench: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(run_recorded(cli));
    drop(runtime);
    if let Some(export) = export {
        export.finish();
    }
    code
}

async fn run_recorded(cli: Cli) -> ExitCode {
    let recorder = if cli.metrics {
        match tessera_benches::recorder::install() {
            Ok(handle) => Some(handle),
            Err(e) => {
                eprintln!("tessera-bench: cannot install the metrics recorder: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        None
    };
    let code = run_workload(cli).await;
    if let Some(handle) = recorder {
        let rendered = handle.render();
        let series = rendered.lines().filter(|l| !l.starts_with('#')).count();
        eprintln!("tessera-bench: the metrics recorder holds {series} series");
    }
    code
}

async fn run_workload(cli: Cli) -> ExitCode {
    let run_id = format!("r{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    if let Workload::Rebuild {
        events,
        streams,
        batch,
    } = cli.workload
    {
        return on_pg_store(&cli, &run_id, |url, store, schema| async move {
            rebuild_workload(&url, &store, &schema, events, streams, batch).await
        })
        .await;
    }
    if let Workload::Latency { rate, seconds } = cli.workload {
        let url = cli.database_url.clone();
        let result = tessera_benches::pg::with_store(&cli.database_url, &run_id, cli.writers, |store, schema| async move {
            let control = format!("{schema}_ctl");
            let out = tessera_benches::workload::latency::run(&store, &schema, &control, rate, seconds).await;
            let client = tessera_benches::baseline::connect(&url).await?;
            client
                .batch_execute(&format!(
                    "DROP SCHEMA IF EXISTS \"{control}\" CASCADE; DROP SCHEMA IF EXISTS \"{schema}_totals_v1\" CASCADE;"
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
    if let Workload::ViewLatency {
        rate,
        seconds,
        rounds,
    } = cli.workload
    {
        return on_pg_store(&cli, &run_id, |url, store, schema| async move {
            view_latency_rounds(&store, &schema, &url, (rate, seconds, rounds)).await
        })
        .await;
    }
    if let Workload::Relay {
        ref bus,
        events,
        streams,
        rounds,
        batch_size,
    } = cli.workload
    {
        let load = relay::RelayLoad {
            events,
            streams,
            rounds,
            batch_size,
        };
        return finish(relay_workload(&cli, bus, load, &run_id).await);
    }
    if let Workload::BusLatency {
        ref bus,
        rate,
        seconds,
        inbox_positions,
    } = cli.workload
    {
        let load = bus_latency::BusLatencyLoad {
            rate,
            seconds,
            positions: match inbox_positions {
                Positions::Postgres => bus_latency::InboxPositions::Postgres,
                Positions::Memory => bus_latency::InboxPositions::Memory,
            },
        };
        return finish(bus_latency_workload(&cli, bus, load, &run_id).await);
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

/// Runs `workload` on a fresh PostgreSQL store (its URL, the store, its schema) and
/// reports its summary.
async fn on_pg_store<F, Fut>(cli: &Cli, run_id: &str, workload: F) -> ExitCode
where
    F: FnOnce(String, tessera_postgres::PostgresStore, String) -> Fut,
    Fut: std::future::Future<Output = Result<Summary, String>>,
{
    let url = cli.database_url.clone();
    let result =
        tessera_benches::pg::with_store(&cli.database_url, run_id, cli.writers, |store, schema| {
            workload(url, store, schema)
        })
        .await
        .and_then(|r| r);
    finish(result)
}

/// The rounds of the `view-latency` workload on `store` (schema `schema`), each path
/// in turn, every view dropped after its round.
async fn view_latency_rounds(
    store: &tessera_postgres::PostgresStore,
    schema: &str,
    url: &str,
    (rate, seconds, rounds): (u32, u32, u32),
) -> Result<Summary, String> {
    use tessera_benches::workload::view_latency::{round, Path};
    let client = tessera_benches::baseline::connect(url).await?;
    let mut s = Summary::default();
    s.add("workload", "view-latency")
        .add("rate_per_s", rate)
        .add("seconds", seconds);
    let paths = [Path::Transaction, Path::OneStatement];
    let mut all = [
        tessera_benches::stats::Latencies::with_capacity(0),
        tessera_benches::stats::Latencies::with_capacity(0),
    ];
    for r in 0..rounds {
        // Each way goes first in every other round.
        let order = if r % 2 == 0 { [0, 1] } else { [1, 0] };
        for i in order {
            let path = paths[i];
            let (prefix, control) = (format!("{schema}_v{r}{i}_"), format!("{schema}_vctl"));
            let drop = format!(
                "DROP SCHEMA IF EXISTS \"{control}\" CASCADE; \
                 DROP SCHEMA IF EXISTS \"{prefix}bench_order_docs_v1\" CASCADE;"
            );
            client
                .batch_execute(&drop)
                .await
                .map_err(|e| e.to_string())?;
            let out = round(store, (&prefix, &control), path, (rate, seconds)).await;
            let cleaned = client.batch_execute(&drop).await;
            let mut lat = out?;
            cleaned.map_err(|e| e.to_string())?;
            let key = format!("{}_r{r}", path.name());
            s.add(
                &format!("{key}_p50_ms"),
                format!("{:.3}", lat.percentile_ms(50.0)),
            );
            s.add(
                &format!("{key}_p99_ms"),
                format!("{:.3}", lat.percentile_ms(99.0)),
            );
            all[i].merge(lat);
        }
    }
    for (path, lat) in paths.into_iter().zip(&mut all) {
        s.add(
            &format!("{}_p50_ms", path.name()),
            format!("{:.3}", lat.percentile_ms(50.0)),
        );
        s.add(
            &format!("{}_p99_ms", path.name()),
            format!("{:.3}", lat.percentile_ms(99.0)),
        );
    }
    Ok(s)
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
    let (done, el, peak) = rebuild::rebuild(store, schema, &control, batch).await?;
    let client = tessera_benches::baseline::connect(url).await?;
    client
        .batch_execute(&format!(
            "DROP SCHEMA IF EXISTS \"{control}\" CASCADE; DROP SCHEMA IF EXISTS \"{schema}_totals_v1\" CASCADE; DROP SCHEMA IF EXISTS \"{schema}_totals_v2\" CASCADE;"
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

/// Runs `f` on a PostgreSQL store in a fresh schema and a session on `bus`, then drops
/// the schema and `extra_schemas` (named after it) and deletes what the session made on
/// the broker.
async fn with_store_and_broker<F, Fut>(
    cli: &Cli,
    bus: &str,
    run_id: &str,
    extra_schemas: &[&str],
    f: F,
) -> Result<Summary, String>
where
    F: FnOnce(tessera_postgres::PostgresStore, String, Session) -> Fut,
    Fut: std::future::Future<Output = Result<Summary, String>>,
{
    let broker = Broker::parse(bus)?;
    let session = broker.session(run_id);
    let url = cli.database_url.clone();
    let extra: Vec<String> = extra_schemas.iter().map(|s| (*s).to_owned()).collect();
    tessera_benches::pg::with_store(
        &cli.database_url,
        run_id,
        cli.writers,
        |store, schema| async move {
            let out = f(store, schema.clone(), session.clone()).await;
            let cleaned = session.cleanup().await;
            let client = tessera_benches::baseline::connect(&url).await?;
            for suffix in extra {
                client
                    .batch_execute(&format!(
                        "DROP SCHEMA IF EXISTS \"{schema}_{suffix}\" CASCADE"
                    ))
                    .await
                    .map_err(|e| e.to_string())?;
            }
            let summary = out?;
            cleaned?;
            Ok(summary)
        },
    )
    .await
    .and_then(|r| r)
}

/// A summary line starting `workload=… bus=… broker=…` (the address without
/// credentials).
fn broker_summary(workload: &str, broker: &Broker) -> Summary {
    let mut s = Summary::default();
    s.add("workload", workload)
        .add("bus", broker.name())
        .add("broker", broker.describe());
    s
}

async fn relay_workload(
    cli: &Cli,
    bus: &str,
    load: relay::RelayLoad,
    run_id: &str,
) -> Result<Summary, String> {
    let broker = Broker::parse(bus)?;
    with_store_and_broker(
        cli,
        bus,
        run_id,
        &["ctl"],
        |store, schema, session| async move {
            let control = format!("{schema}_ctl");
            let report = relay::run(&store, &control, &session, load, run_id).await?;
            let mut s = broker_summary("relay", &broker);
            s.add("events", report.events)
                .add("streams", load.streams)
                .add("batch_size", load.batch_size)
                .add("raw_window", report.window);
            s.add("relay_s", format!("{:.3}", report.relay.as_secs_f64()))
                .add("raw_s", format!("{:.3}", report.raw.as_secs_f64()));
            let rate = s.rate("relay_events_per_s", report.events, report.relay);
            let base = s.rate("baseline_raw_events_per_s", report.events, report.raw);
            let listed: Vec<String> = report
                .round_ratios
                .iter()
                .map(|r| format!("{r:.2}"))
                .collect();
            s.add("rounds", report.round_ratios.len())
                .add("round_ratios", listed.join(","));
            let expected = Some(report.events as u64);
            let show = |n: Option<u64>| n.map_or_else(|| "unknown".to_owned(), |n| n.to_string());
            s.add("stored_relay", show(report.stored.0))
                .add("stored_raw", show(report.stored.1))
                .add("verified", report.stored == (expected, expected));
            s.ratio("ratio", rate / base)
                .ratio("relay_vs_raw", rate / base);
            s.judge(target::relay(&broker));
            Ok(s)
        },
    )
    .await
}

async fn bus_latency_workload(
    cli: &Cli,
    bus: &str,
    load: bus_latency::BusLatencyLoad,
    run_id: &str,
) -> Result<Summary, String> {
    let broker = Broker::parse(bus)?;
    let extra = ["ctl", "inbox"];
    with_store_and_broker(
        cli,
        bus,
        run_id,
        &extra,
        |store, schema, session| async move {
            let (control, inbox) = (format!("{schema}_ctl"), format!("{schema}_inbox"));
            let mut report =
                bus_latency::run(&store, &control, &inbox, &session, load, run_id).await?;
            let lat = &mut report.latencies;
            let mut s = broker_summary("bus-latency", &broker);
            s.add("rate_per_s", load.rate).add("events", lat.len());
            s.rate("achieved_rate_per_s", lat.len(), report.appending);
            s.rate("inbox_handled_per_s", lat.len(), report.handling);
            let positions = match load.positions {
                bus_latency::InboxPositions::Postgres => "postgres",
                bus_latency::InboxPositions::Memory => "memory",
            };
            s.add("inbox_positions", positions);
            let (p50, p99, max) = (
                lat.percentile_ms(50.0),
                lat.percentile_ms(99.0),
                lat.percentile_ms(100.0),
            );
            s.millis("p50_ms", p50)
                .millis("p99_ms", p99)
                .millis("max_ms", max);
            s.add("handled", report.inbox.handled)
                .add("duplicates", report.inbox.duplicates)
                .add("held_back", report.inbox.held_back);
            s.millis("bus_latency_p99_ms", p99);
            s.judge(Some(target::bus_latency()));
            Ok(s)
        },
    )
    .await
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
        Workload::OtlpSink { .. } => return Err("not a workload".into()),
        Workload::Rebuild { .. }
        | Workload::Latency { .. }
        | Workload::ViewLatency { .. }
        | Workload::Relay { .. }
        | Workload::BusLatency { .. } => return Err("this workload runs on PostgreSQL only".into()),
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
