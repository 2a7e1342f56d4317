//! `shop serve`.

use std::net::SocketAddr;
use std::time::Duration;

use tessera_core::BoxError;
use tessera_projections::resilience::ResilienceConfig;
use tokio::net::TcpListener;

use super::{LogFormat, ServeArgs};
use crate::app::{eventstoredb_parts, memory_parts, postgres_parts, service_parts, App};
use crate::fulfilment::Fulfilment;
use crate::gateway::GatewayConfig;
use crate::secret::Token;
use crate::server;
use crate::service::connect_bus;
use crate::settings::Settings;

/// Settings from the command line and `SHOP_ADMIN_TOKEN`, for a server listening on
/// `addr`.
fn settings(
    args: &ServeArgs,
    addr: SocketAddr,
    admin_token: Option<String>,
) -> Result<Settings, BoxError> {
    if !(0.0..=1.0).contains(&args.payment_failure_rate) {
        return Err("--payment-failure-rate must be between 0 and 1".into());
    }
    let limits = args.limits.limits();
    if Duration::from_millis(args.read_wait_ms) >= limits.request_timeout {
        return Err(
            "--read-wait-ms must be shorter than --request-timeout-s (a read would be cut \
             before it gave up waiting)"
                .into(),
        );
    }
    let admin_token = admin_token.filter(|t| !t.is_empty()).map(Token::from);
    if admin_token.is_some() && args.admin_open {
        return Err("--admin-open and SHOP_ADMIN_TOKEN are both set: choose one".into());
    }
    let origins = match &args.public_origin {
        Some(origin) => vec![origin.clone()],
        None if addr.ip().is_loopback() => vec![
            format!("http://{addr}"),
            format!("http://localhost:{}", addr.port()),
        ],
        None => vec![format!("http://{addr}")],
    };
    Ok(Settings {
        prefix: args.database.schema_prefix.clone(),
        gateway: GatewayConfig {
            latency: Duration::from_millis(args.payment_latency_ms),
            failure_rate: args.payment_failure_rate,
            limit_cents: args.payment_limit_cents,
        },
        payment_timeout: Duration::from_secs(args.payment_timeout_s),
        resilience: ResilienceConfig {
            max_concurrent: usize::from(args.payment_concurrency),
            ..ResilienceConfig::default()
        },
        read_wait: Duration::from_millis(args.read_wait_ms),
        admin_token,
        admin_open: args.admin_open,
        origins,
        state_cache: args.state_cache,
        limits,
        jwt: args.jwt.verifier()?,
        service: args.service,
        max_backlog: args.max_backlog,
        ..Settings::default()
    })
}

fn saga(settings: &Settings) -> Fulfilment {
    Fulfilment {
        payment_timeout: settings.payment_timeout,
    }
}

/// A start-up notice for whoever started the server: a `shop: …` line on stderr, or
/// with `--log-format json` a log event like every other line.
fn notice(format: LogFormat, message: &str) {
    match format {
        LogFormat::Human => eprintln!("shop: {message}"),
        LogFormat::Json => tracing::info!(target: "shop", "{message}"),
    }
}

/// Runs the server until Ctrl-C or SIGTERM.
pub async fn run(args: ServeArgs, format: LogFormat) -> Result<(), BoxError> {
    // Before anything says the server is up (see `server::signal`).
    let stop = server::signal();
    let listener = TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let addr = listener.local_addr()?;
    let settings = settings(&args, addr, std::env::var("SHOP_ADMIN_TOKEN").ok())?;
    if settings.admin_open {
        notice(
            format,
            &format!(
                "--admin-open: admin routes take no token; anyone who reaches {addr}, through a \
                 proxy too, can rebuild projections."
            ),
        );
    } else if settings.admin_token.is_none() {
        notice(
            format,
            "SHOP_ADMIN_TOKEN is not set: admin routes are refused (set it, or start with \
             --admin-open on a machine of your own).",
        );
    }
    if let (Some(service), Some(bus), Some(url)) =
        (args.service, &args.bus, &args.database.database_url)
    {
        let bus = connect_bus(bus, &args.bus_prefix).await?;
        let prefix = settings.prefix.clone();
        let parts = service_parts(url, &prefix, service, bus, saga(&settings)).await?;
        let app = App::start(settings, parts);
        notice(
            format,
            &format!(
                "the {service} service, on PostgreSQL, the other services through the bus; \
                 listening on http://{addr}"
            ),
        );
        server::serve(app, listener, stop).await?;
        return Ok(());
    }
    if let Some(esdb) = &args.eventstoredb_url {
        let db = args.database.database_url.as_deref();
        let parts = eventstoredb_parts(esdb, db, &settings.prefix, saga(&settings)).await?;
        let app = App::start(settings, parts);
        let models = if db.is_some() {
            "PostgreSQL"
        } else {
            "memory (lost when the server stops)"
        };
        notice(
            format,
            &format!("events in EventStoreDB, read models and saga state in {models}; listening on http://{addr}"),
        );
        server::serve(app, listener, stop).await?;
        return Ok(());
    }
    match &args.database.database_url {
        None => {
            notice(
                format,
                "no database configured (--database-url or DATABASE_URL): running on the embedded \
                 in-memory store. Data is kept in memory only and is lost when the server stops.",
            );
            let app = App::start(settings.clone(), memory_parts("", saga(&settings)));
            notice(
                format,
                &format!("listening on http://{addr} (try: curl http://{addr}/health/ready)"),
            );
            server::serve(app, listener, stop).await?;
        }
        Some(url) => {
            let parts = postgres_parts(url, &settings.prefix, saga(&settings)).await?;
            let app = App::start(settings, parts);
            notice(
                format,
                &format!("on PostgreSQL; listening on http://{addr}"),
            );
            server::serve(app, listener, stop).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use clap::Parser;

    use super::settings;
    use crate::cli::{Cli, Command, ServeArgs};
    use crate::server::Limits;

    fn serve(args: &[&str]) -> ServeArgs {
        let cli = Cli::parse_from(["shop", "serve"].iter().chain(args));
        match cli.command {
            Command::Serve(args) => args,
            _ => unreachable!("serve"),
        }
    }

    #[test]
    fn admin_access_is_set_by_flags_not_by_the_address() {
        let loopback = "127.0.0.1:8080".parse().expect("addr");
        let any = "0.0.0.0:8080".parse().expect("addr");
        for addr in [loopback, any] {
            let s = settings(&serve(&[]), addr, None).expect("settings");
            assert!(!s.admin_open && s.admin_token.is_none(), "{addr}: closed");
            let s = settings(&serve(&["--admin-open"]), addr, Some(String::new()));
            assert!(s.expect("settings").admin_open, "{addr}: open");
        }
        assert!(
            settings(&serve(&["--admin-open"]), loopback, Some("t".into())).is_err(),
            "--admin-open with a token is refused"
        );
        let s = settings(&serve(&[]), loopback, None).expect("settings");
        assert_eq!(
            s.origins,
            ["http://127.0.0.1:8080", "http://localhost:8080"]
        );
        let args = serve(&["--public-origin", "https://shop.example.com"]);
        let s = settings(&args, any, None).expect("settings");
        assert_eq!(s.origins, ["https://shop.example.com"]);
    }

    #[test]
    fn limits_come_from_the_flags_and_a_read_wait_must_end_before_the_request_timeout() {
        let addr = "127.0.0.1:8080".parse().expect("addr");
        let s = settings(&serve(&[]), addr, None).expect("settings");
        assert_eq!(
            s.limits,
            Limits::default(),
            "the flags' defaults are the limits'"
        );
        let args = serve(&[
            "--header-read-timeout-s",
            "3",
            "--rate-limit",
            "5",
            "--max-requests",
            "7",
            "--shutdown-timeout-s",
            "0",
        ]);
        let s = settings(&args, addr, None).expect("settings");
        assert_eq!(s.limits.header_read_timeout, Duration::from_secs(3));
        assert_eq!((s.limits.rate_per_s, s.limits.rate_burst), (5, 0));
        assert_eq!(s.limits.max_requests, 7);
        assert_eq!(s.limits.shutdown_deadline, Duration::ZERO);
        let long_wait = serve(&["--read-wait-ms", "30000"]);
        assert!(
            settings(&long_wait, addr, None).is_err(),
            "30 s wait, 30 s timeout"
        );
        let args = serve(&["--read-wait-ms", "30000", "--request-timeout-s", "31"]);
        assert!(settings(&args, addr, None).is_ok());
    }

    #[test]
    fn the_payment_route_s_concurrency_comes_from_its_flag() {
        let addr = "127.0.0.1:8080".parse().expect("addr");
        let s = settings(&serve(&[]), addr, None).expect("settings");
        assert_eq!(s.resilience.max_concurrent, 64);
        let s = settings(&serve(&["--payment-concurrency", "3"]), addr, None);
        assert_eq!(s.expect("settings").resilience.max_concurrent, 3);
        for bad in ["0", "1025", "many"] {
            let args = ["shop", "serve", "--payment-concurrency", bad];
            assert!(Cli::try_parse_from(args).is_err(), "{bad} refused");
        }
    }

    #[test]
    fn a_service_needs_the_bus_and_the_bus_needs_a_service() {
        let parse =
            |args: &[&str]| Cli::try_parse_from(["shop", "serve"].iter().chain(args)).map(|_| ());
        let db = ["--database-url", "postgres://h/shop_payment"];
        let bus = ["--bus", "nats://127.0.0.1:4222"];
        let service = ["--service", "payment"];
        // (Without `--database-url`, DATABASE_URL counts, as for every command: the
        // test scripts set it, so that case is not asserted here.)
        for args in [[&service[..], &db[..]].concat(), bus.to_vec()] {
            let error = parse(&args).expect_err("refused");
            assert_eq!(
                error.kind(),
                clap::error::ErrorKind::MissingRequiredArgument,
                "{args:?}"
            );
        }
        let error = parse(&["--service", "shipping"]).expect_err("no such service");
        assert_eq!(error.kind(), clap::error::ErrorKind::InvalidValue);
        let all = [&service[..], &db[..], &bus[..]].concat();
        let args = serve(&all);
        assert_eq!(args.service, Some(crate::service::Service::Payment));
        let s = settings(&args, "127.0.0.1:8080".parse().expect("addr"), None);
        assert!(!s.expect("settings").runs("ordering"), "payment only");
    }

    #[test]
    fn debug_output_shows_no_secret() {
        let args = serve(&[
            "--database-url",
            "postgres://u:s3cretpw@h/db",
            "--eventstoredb-url",
            "esdb://admin:esdbs3cret@h:2113",
        ]);
        let addr = "127.0.0.1:8080".parse().expect("addr");
        let s = settings(&args, addr, Some("t0kens3cret".into())).expect("settings");
        let shown = format!("{args:?} {s:?}");
        for secret in ["s3cretpw", "esdbs3cret", "t0kens3cret"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(shown.contains("postgres://u:***@h/db"), "{shown}");
    }
}
