//! `shop serve`.

use std::time::Duration;

use tessera_core::BoxError;
use tokio::net::TcpListener;

use super::{LogFormat, ServeArgs};
use crate::app::{eventstoredb_parts, memory_parts, postgres_parts, App};
use crate::fulfilment::Fulfilment;
use crate::gateway::GatewayConfig;
use crate::server;
use crate::settings::Settings;

/// Settings from the command line and the environment.
fn settings(args: &ServeArgs, loopback_only: bool) -> Result<Settings, BoxError> {
    if !(0.0..=1.0).contains(&args.payment_failure_rate) {
        return Err("--payment-failure-rate must be between 0 and 1".into());
    }
    Ok(Settings {
        prefix: args.database.schema_prefix.clone(),
        gateway: GatewayConfig {
            latency: Duration::from_millis(args.payment_latency_ms),
            failure_rate: args.payment_failure_rate,
            limit_cents: args.payment_limit_cents,
        },
        payment_timeout: Duration::from_secs(args.payment_timeout_s),
        read_wait: Duration::from_millis(args.read_wait_ms),
        admin_token: std::env::var("SHOP_ADMIN_TOKEN")
            .ok()
            .filter(|t| !t.is_empty()),
        loopback_only,
        state_cache: args.state_cache,
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
    let listener = TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let addr = listener.local_addr()?;
    let settings = settings(&args, addr.ip().is_loopback())?;
    if settings.admin_token.is_none() && !settings.loopback_only {
        notice(
            format,
            &format!(
                "SHOP_ADMIN_TOKEN is not set and {addr} is not loopback: admin routes are refused."
            ),
        );
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
        server::serve(app, listener, server::signal()).await?;
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
            server::serve(app, listener, server::signal()).await?;
        }
        Some(url) => {
            let parts = postgres_parts(url, &settings.prefix, saga(&settings)).await?;
            let app = App::start(settings, parts);
            notice(
                format,
                &format!("on PostgreSQL; listening on http://{addr}"),
            );
            server::serve(app, listener, server::signal()).await?;
        }
    }
    Ok(())
}
