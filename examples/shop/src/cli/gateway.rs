//! `shop gateway`.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;
use tessera_core::BoxError;
use tokio::net::TcpListener;

use super::LogFormat;
use crate::api_gateway::{self, Config, Gateway};
use crate::jwt::JwtArgs;
use crate::secret::Token;

/// `shop gateway`.
#[derive(Debug, Args)]
pub struct GatewayArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8000")]
    pub listen: SocketAddr,
    /// The ordering service (`http://host:port`; an all-in-one `shop serve` does too).
    #[arg(long)]
    pub ordering: String,
    /// The inventory service.
    #[arg(long)]
    pub inventory: String,
    /// The payment service.
    #[arg(long)]
    pub payment: String,
    /// Customers' bearer JWTs (none: customer routes are open).
    #[command(flatten)]
    pub jwt: JwtArgs,
    /// Requests per second each client may send (a customer by the token's subject,
    /// else by its address); more get 429 with Retry-After. 0: no limit.
    #[arg(long, default_value_t = 0)]
    pub rate_limit_per_s: u32,
    /// Requests a client may send at once before the rate applies (default: the rate).
    #[arg(long, requires = "rate_limit_per_s", value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_limit_burst: Option<u32>,
    /// Bearer token of the admin routes, the services' own (without one, admin routes
    /// are refused with 403).
    #[arg(long, env = "SHOP_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<Token>,
    /// Milliseconds a call to a service may take (1 to 600000).
    #[arg(long, default_value_t = 10_000,
        value_parser = clap::value_parser!(u64).range(1..=600_000))]
    pub upstream_timeout_ms: u64,
    /// Calls in a row without an answer that open a service's breaker (1 to 1000).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub breaker_failures: u32,
    /// Seconds an open breaker waits before letting trial calls through (1 to 3600).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub breaker_cool_down_s: u64,
}

impl GatewayArgs {
    /// The gateway's configuration.
    pub fn config(&self) -> Result<Config, BoxError> {
        let mut config = Config::new(&self.ordering, &self.inventory, &self.payment);
        config.jwt = self.jwt.verifier()?;
        config.admin_token = self.admin_token.clone().filter(|t| !t.expose().is_empty());
        config.rate_per_s = self.rate_limit_per_s;
        config.rate_burst = self.rate_limit_burst.unwrap_or(0);
        config.calls.timeout = Duration::from_millis(self.upstream_timeout_ms);
        config.calls.breaker.failure_threshold = self.breaker_failures;
        config.calls.breaker.cool_down = Duration::from_secs(self.breaker_cool_down_s);
        Ok(config)
    }
}

/// Runs the gateway until Ctrl-C or SIGTERM.
pub async fn run(args: GatewayArgs, format: LogFormat) -> Result<(), BoxError> {
    // Before anything says the gateway is up (see `server::signal`).
    let stop = crate::server::signal();
    let config = args.config()?;
    let customers = match &config.jwt {
        Some(v) => format!("customer routes need a bearer JWT ({:?})", v.algorithm()),
        None => "customer routes are open (no --jwt-secret or --jwt-public-key)".to_owned(),
    };
    let gateway = Gateway::new(config)?;
    let listener = TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let addr = listener.local_addr()?;
    let message = format!(
        "gateway listening on http://{addr}: ordering {}, inventory {}, payment {}; {customers}",
        args.ordering, args.inventory, args.payment
    );
    match format {
        LogFormat::Human => eprintln!("shop: {message}"),
        LogFormat::Json => tracing::info!(target: "shop", "{message}"),
    }
    api_gateway::serve(gateway, listener, stop).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::cli::{Cli, Command};

    #[test]
    fn the_gateway_takes_its_services_and_one_jwt_key() {
        let base = [
            "shop",
            "gateway",
            "--ordering",
            "http://127.0.0.1:1",
            "--inventory",
            "http://127.0.0.1:2",
            "--payment",
            "http://127.0.0.1:3",
        ];
        let cli = Cli::parse_from(base.iter().chain(&["--rate-limit-per-s", "5"]));
        let Command::Gateway(args) = cli.command else {
            panic!("gateway")
        };
        let config = args.config().expect("config");
        assert_eq!((config.rate_per_s, config.rate_burst), (5, 0));
        assert!(config.jwt.is_none());
        let both = ["--jwt-secret", "s", "--jwt-public-key", "k.pem"];
        assert!(Cli::try_parse_from(base.iter().chain(&both)).is_err());
        assert!(Cli::try_parse_from(base.iter().chain(&["--rate-limit-burst", "3"])).is_err());
        assert!(Cli::try_parse_from(["shop", "gateway", "--ordering", "x"]).is_err());
        let short = Cli::parse_from(base.iter().chain(&["--jwt-secret", "short"]));
        let Command::Gateway(args) = short.command else {
            panic!("gateway")
        };
        assert!(args.config().is_err(), "a secret under 32 bytes");
    }
}
