//! The command line: serve, rebuild, projections, load, seed.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::builder::RangedU64ValueParser;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::secret;

pub use limits::LimitArgs;

mod freshness;
mod gateway;
mod limits;
mod load;
mod logging;
mod rebuild;
pub mod seed;
mod serve;
mod status;
mod up;

/// Longest `--payment-timeout-s`: 30 days (deadlines are stored as instants).
pub const MAX_PAYMENT_TIMEOUT_S: u64 = 30 * 86_400;
/// Most `--payment-concurrency`.
const MAX_PAYMENT_CONCURRENCY: i64 = 1024;

/// Longest `--payment-latency-ms`: a minute (far beyond the gateway route's timeout).
pub const MAX_PAYMENT_LATENCY_MS: u64 = 60_000;
/// Longest `--read-wait-ms`: ten minutes.
pub const MAX_READ_WAIT_MS: u64 = 600_000;
/// Most `--orders` of `load` and `seed`.
pub const MAX_ORDERS: u64 = 10_000_000;
/// Most `--skus` of `load` and `seed`.
pub const MAX_SKUS: u64 = 10_000;
/// Most `--reads` of `load`.
pub const MAX_READS: u64 = 10_000_000;
/// Longest `--settle-s` of `load`: a day.
pub const MAX_SETTLE_S: u64 = 86_400;
/// Most `--rate` of `load`, orders per second.
pub const MAX_RATE: u64 = 1_000_000;
/// Most `--concurrency` of `seed`.
pub const MAX_SEED_CONCURRENCY: u64 = 4096;
/// Most `--state-cache` of `serve`: states kept by each command handler.
pub const MAX_STATE_CACHE: u64 = 1_000_000;

/// A `usize` flag of at most `max`.
fn at_most(max: u64) -> RangedU64ValueParser<usize> {
    RangedU64ValueParser::new().range(0..=max)
}

/// The Tessera example shop.
#[derive(Debug, Parser)]
#[command(name = "shop", version, about)]
pub struct Cli {
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Human, global = true)]
    pub log_format: LogFormat,
    /// Log filter, e.g. `info` or `info,shop=debug`.
    #[arg(long, env = "SHOP_LOG", default_value = "info", global = true)]
    pub log: String,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// For people.
    Human,
    /// One JSON object per line.
    Json,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API (on the in-memory store unless a database is given).
    Serve(ServeArgs),
    /// Rebuild read models on PostgreSQL without downtime (safe while a server runs).
    Rebuild(RebuildArgs),
    /// Show the status of every projection on PostgreSQL.
    Projections(Database),
    /// Place and read orders through the API; report throughput, latency and outcomes.
    Load(LoadArgs),
    /// Place orders in process (the real handlers and saga, no HTTP) on PostgreSQL, or
    /// in memory to measure the pipeline without HTTP.
    Seed(SeedArgs),
    /// Serve the API gateway in front of the ordering, inventory and payment services.
    Gateway(gateway::GatewayArgs),
    /// Measure how soon a write shows in the shop's reads, at idle.
    Freshness(FreshnessArgs),
    /// Run the shop as services: a database each, the three services and the gateway
    /// as child processes, until Ctrl-C.
    Up(up::UpArgs),
}

/// Where the PostgreSQL database is.
#[derive(Debug, Args)]
pub struct Database {
    /// PostgreSQL URL, e.g. `postgres://postgres@127.0.0.1:5432/shop` (never printed
    /// with its password).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<secret::Url>,
    /// Prefix of every schema name (for running several shops in one database).
    #[arg(long, default_value = "", hide = true)]
    pub schema_prefix: String,
}

/// `shop serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// The database (none: the embedded in-memory store).
    #[command(flatten)]
    pub database: Database,
    /// Keep events in EventStoreDB (`esdb://host:2113?tls=false`); read models, saga
    /// state and checkpoints stay in PostgreSQL when `--database-url` is given, else in
    /// memory.
    #[arg(long, env = "EVENTSTOREDB_URL", hide_env_values = true)]
    pub eventstoredb_url: Option<secret::Url>,
    /// Payments above this many cents are declined.
    #[arg(long, default_value_t = 1_000_000)]
    pub payment_limit_cents: i64,
    /// Typical latency of the simulated gateway (at most 60000).
    #[arg(long, default_value_t = 5,
        value_parser = clap::value_parser!(u64).range(0..=MAX_PAYMENT_LATENCY_MS))]
    pub payment_latency_ms: u64,
    /// Chance (0 to 1) that a gateway call fails transiently.
    #[arg(long, default_value_t = 0.0)]
    pub payment_failure_rate: f64,
    /// Gateway calls in flight at once (the payment route's bulkhead, and how many
    /// requested payments the payment worker handles at once; 1 to 1024). With a 5 ms
    /// gateway, 16 would cap payments near 16 / (5 ms + recording the answer), under
    /// the rate a flash sale places orders at.
    #[arg(long, default_value_t = 64,
        value_parser = clap::value_parser!(u16).range(1..=MAX_PAYMENT_CONCURRENCY))]
    pub payment_concurrency: u16,
    /// Seconds a payment may go unanswered before the order is rejected (1 to 30 days).
    #[arg(long, default_value_t = 30,
        value_parser = clap::value_parser!(u64).range(1..=MAX_PAYMENT_TIMEOUT_S))]
    pub payment_timeout_s: u64,
    /// Longest wait of a `?min_position=` read, in milliseconds (at most 600000).
    #[arg(long, default_value_t = 5000,
        value_parser = clap::value_parser!(u64).range(0..=MAX_READ_WAIT_MS))]
    pub read_wait_ms: u64,
    /// Aggregate states (orders, products, payments) each command handler keeps in
    /// memory between commands, least recently used evicted first; 0 turns it off.
    /// Safe with other writers: a stale state fails its append and is reloaded. At most
    /// 1000000.
    #[arg(long, default_value_t = 10_000, value_parser = at_most(MAX_STATE_CACHE))]
    pub state_cache: usize,
    /// Refuse new orders (503 with Retry-After) while the pipeline's backlog (its
    /// runners' lag, inboxes' waiting messages and the saga's undispatched commands) is
    /// over this many, until it is back under three quarters of it: an offered rate above what
    /// the machine settles then does not take the CPU the pipeline needs. 0 takes every
    /// order.
    #[arg(long, default_value_t = 2_000)]
    pub max_backlog: u64,
    /// Serve the admin routes (`/v1/admin/…`) without a token to anyone who reaches the
    /// listener: only on a machine whose every user may run rebuilds, never behind a
    /// proxy. Without it, admin routes need `Authorization: Bearer $SHOP_ADMIN_TOKEN` and
    /// are refused (403) while SHOP_ADMIN_TOKEN is not set.
    #[arg(long)]
    pub admin_open: bool,
    /// The origin browsers reach the server at, e.g. `https://shop.example.com` behind a
    /// proxy (default: `http://` and the listen address). State-changing admin requests
    /// sent with another `Origin` header are refused (403).
    #[arg(long, value_parser = origin)]
    pub public_origin: Option<String>,
    /// Timeouts, caps, sizes, the rate limit and the shutdown deadline.
    #[command(flatten)]
    pub limits: LimitArgs,
    /// Customers' bearer JWTs (none: customer routes are open).
    #[command(flatten)]
    pub jwt: crate::jwt::JwtArgs,
    /// Run one service of the split shop instead of all three contexts: its own log,
    /// read models and saga state in the database of `--database-url` (give each
    /// service a database of its own), the others reached through `--bus`.
    #[arg(long, value_enum, requires_all = ["bus", "database_url"], conflicts_with = "eventstoredb_url")]
    pub service: Option<crate::service::Service>,
    /// The broker between the services: `nats://host:4222` (NATS JetStream) or
    /// `amqp://user:pass@host:5672/vhost` (RabbitMQ). Needs `--service`.
    #[arg(
        long,
        env = "SHOP_BUS_URL",
        hide_env_values = true,
        requires = "service"
    )]
    pub bus: Option<secret::Url>,
    /// Prefix of the bus's names (NATS: streams and subjects; RabbitMQ: exchanges; a
    /// RabbitMQ consumer's queue is not prefixed: give each shop a vhost of its own).
    #[arg(long, default_value = "", hide = true)]
    pub bus_prefix: String,
}

/// An origin, `http(s)://host[:port]`, as browsers write it in `Origin` headers.
fn origin(value: &str) -> Result<String, String> {
    let url = reqwest::Url::parse(value).map_err(|e| e.to_string())?;
    let bare = url.path() == "/"
        && url.query().is_none()
        && url.fragment().is_none()
        && url.username().is_empty()
        && url.password().is_none();
    if !matches!(url.scheme(), "http" | "https") || !bare {
        return Err("give scheme://host[:port] (http or https), with no path".into());
    }
    Ok(url.origin().ascii_serialization())
}

/// `shop rebuild`.
#[derive(Debug, Args)]
pub struct RebuildArgs {
    /// The projection (`ordering_orders`, `inventory_products`, `inventory_reservations`,
    /// `payment_payments`).
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub projection: Option<String>,
    /// Rebuild every projection.
    #[arg(long)]
    pub all: bool,
    /// The database.
    #[command(flatten)]
    pub database: Database,
}

/// `shop freshness`.
#[derive(Debug, Args)]
pub struct FreshnessArgs {
    /// The shop's base URL (loopback only).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub target: String,
    /// Products to create, one at a time (at most 10000).
    #[arg(long, default_value_t = 200, value_parser = at_most(MAX_SKUS))]
    pub writes: usize,
    /// Idle time between two writes, in milliseconds.
    #[arg(long, default_value_t = 20)]
    pub pause_ms: u64,
}

/// `shop load`.
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Orders to place (0: only read; at most 10 million).
    #[arg(long, default_value_t = 1000, value_parser = at_most(MAX_ORDERS))]
    pub orders: usize,
    /// Products the orders are spread over (each created with enough stock; at most
    /// 10000).
    #[arg(long, default_value_t = 20, value_parser = at_most(MAX_SKUS))]
    pub skus: usize,
    /// `GET /v1/orders/{id}` requests after the orders settled (0: none; at most 10
    /// million).
    #[arg(long, default_value_t = 5000, value_parser = at_most(MAX_READS))]
    pub reads: usize,
    /// Read orders already in the shop (listed with `GET /v1/orders`, up to `--reads`
    /// of them) as well as the ones placed.
    #[arg(long)]
    pub read_existing: bool,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// The shop to load (loopback addresses only).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub target: String,
    /// Seconds to wait for every order to reach a final status (at most a day).
    #[arg(long, default_value_t = 120,
        value_parser = clap::value_parser!(u64).range(0..=MAX_SETTLE_S))]
    pub settle_s: u64,
    /// Send orders on a fixed schedule of this many per second (open loop: each when
    /// due, whether or not earlier ones answered; at most 256 in flight) instead of
    /// `--concurrency` at a time. At most 1000000.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=MAX_RATE))]
    pub rate: Option<u64>,
    /// Hot-product mode: every order on one product (stocked for all of them), instead
    /// of `--skus` products.
    #[arg(long)]
    pub hot: bool,
    /// How often the orders still pending are looked for in the order list, in
    /// milliseconds (the resolution of the place → confirmed latency; 1 to 10000).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub poll_ms: u64,
    /// The shop's PostgreSQL database: count the transactions committed while the
    /// orders were placed and settled (`pg_stat_database.xact_commit`, and the
    /// transaction ids assigned: those that wrote), per settled order. The first
    /// misses the notifications the server's listening connections took in (published
    /// only when they exit). Never printed.
    #[arg(long, hide_env_values = true)]
    pub database_url: Option<secret::Url>,
    /// With `--database-url`, seconds to wait after the orders settled before the last
    /// reading, for PostgreSQL to publish every backend's counts (10 s at most for an
    /// idle backend on PostgreSQL 15; at most 600).
    #[arg(long, default_value_t = 11, value_parser = clap::value_parser!(u64).range(0..=600))]
    pub stats_wait_s: u64,
}

/// `shop seed`.
#[derive(Debug, Args)]
pub struct SeedArgs {
    /// Orders to place (each about 8 events over the three contexts; at most 10
    /// million).
    #[arg(long, value_parser = at_most(MAX_ORDERS))]
    pub orders: usize,
    /// Products the orders are spread over (at most 10000).
    #[arg(long, default_value_t = 20, value_parser = at_most(MAX_SKUS))]
    pub skus: usize,
    /// Orders placed at once (at most 4096).
    #[arg(long, default_value_t = 64, value_parser = at_most(MAX_SEED_CONCURRENCY))]
    pub concurrency: usize,
    /// Append the placed order ids to this file, one a line.
    #[arg(long)]
    pub ids_file: Option<std::path::PathBuf>,
    /// Latency of the simulated payment gateway (at most 60000).
    #[arg(long, default_value_t = 1,
        value_parser = clap::value_parser!(u64).range(0..=MAX_PAYMENT_LATENCY_MS))]
    pub payment_latency_ms: u64,
    /// Gateway calls in flight at once (1 to 1024), as `serve --payment-concurrency`.
    #[arg(long, default_value_t = 64,
        value_parser = clap::value_parser!(u16).range(1..=MAX_PAYMENT_CONCURRENCY))]
    pub payment_concurrency: u16,
    /// The database (none: the in-memory store, gone when seeding ends: the run
    /// measures the pipeline in process, without HTTP).
    #[command(flatten)]
    pub database: Database,
}

/// The service name spans are exported under: `shop-{service}` for one service of the
/// split shop, `shop-gateway`, else `shop`.
fn service_name(command: &Command) -> String {
    match command {
        Command::Serve(ServeArgs {
            service: Some(s), ..
        }) => format!("shop-{s}"),
        Command::Gateway(_) => "shop-gateway".to_owned(),
        _ => "shop".to_owned(),
    }
}

/// Parses the command line and runs it.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // Built before the runtime: the exporter's blocking HTTP client has a runtime of its
    // own, on the batch processor's thread.
    let export = match crate::traces::wanted() {
        true => match crate::traces::Export::start(&service_name(&cli.command)) {
            Ok(export) => Some(export),
            Err(e) => {
                eprintln!("shop: {e}");
                return ExitCode::FAILURE;
            }
        },
        false => None,
    };
    if let Err(e) = logging::init(cli.log_format, &cli.log, export.as_ref()) {
        eprintln!("shop: {e}");
        return ExitCode::FAILURE;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("shop: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve::run(args, cli.log_format).await,
            Command::Rebuild(args) => rebuild::run(args).await,
            Command::Projections(db) => status::run(db).await,
            Command::Load(args) => load::run(args).await,
            Command::Seed(args) => seed::run(args).await,
            Command::Gateway(args) => gateway::run(args, cli.log_format).await,
            Command::Freshness(args) => freshness::run(args).await,
            Command::Up(args) => up::run(args).await,
        }
    });
    if let Some(export) = export {
        export.shutdown();
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("shop: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::{Cli, Command};

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
        let cli = Cli::parse_from([
            "shop",
            "--log-format",
            "json",
            "serve",
            "--payment-limit-cents",
            "5",
        ]);
        assert!(matches!(cli.command, Command::Serve(ref s) if s.payment_limit_cents == 5));
        assert!(
            Cli::try_parse_from(["shop", "rebuild"]).is_err(),
            "a projection or --all is required"
        );
        assert!(Cli::try_parse_from(["shop", "rebuild", "ordering_orders", "--all"]).is_err());
        assert!(
            Cli::try_parse_from(["shop", "serve", "--rate-limit-burst", "5"]).is_err(),
            "a burst needs a rate"
        );
        let serve = Cli::parse_from(["shop", "serve", "--state-cache", "0"]);
        assert!(matches!(serve.command, Command::Serve(ref s) if s.state_cache == 0));
        let load = Cli::parse_from(["shop", "load", "--orders", "0", "--read-existing"]);
        assert!(matches!(load.command, Command::Load(ref l)
            if l.orders == 0 && l.read_existing && l.reads == 5000 && l.skus == 20));
        let seed = Cli::parse_from(["shop", "seed", "--orders", "7", "--ids-file", "ids.txt"]);
        assert!(matches!(seed.command, Command::Seed(ref s)
            if s.orders == 7 && s.skus == 20 && s.ids_file.is_some()
                && s.payment_latency_ms == 1 && s.payment_concurrency == 64
                && s.database.database_url.is_none() == std::env::var_os("DATABASE_URL").is_none()));
        for bad in [
            ["--payment-concurrency", "0"],
            ["--payment-latency-ms", "60001"],
        ] {
            let args = ["shop", "seed", "--orders", "1", bad[0], bad[1]];
            assert!(Cli::try_parse_from(args).is_err(), "{bad:?}");
        }
        assert!(
            Cli::try_parse_from(["shop", "seed"]).is_err(),
            "seed needs --orders"
        );
    }

    #[test]
    fn a_public_origin_is_scheme_host_and_port() {
        let origin = |value: &str| {
            Cli::try_parse_from(["shop", "serve", "--public-origin", value]).map(|cli| {
                match cli.command {
                    Command::Serve(s) => s.public_origin.unwrap_or_default(),
                    _ => unreachable!("serve"),
                }
            })
        };
        for (given, want) in [
            ("https://Shop.Example.com", "https://shop.example.com"),
            ("https://shop.example.com:443/", "https://shop.example.com"),
            ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ] {
            assert_eq!(origin(given).expect(given), want);
        }
        for bad in [
            "shop.example.com",
            "ftp://shop.example.com",
            "https://shop.example.com/admin",
            "https://u:p@shop.example.com",
            "https://shop.example.com?x=1",
        ] {
            assert!(origin(bad).is_err(), "{bad}");
        }
    }
}
