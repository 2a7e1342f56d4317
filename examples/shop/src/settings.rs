//! Settings of a shop instance.

use std::time::Duration;

use crate::gateway::GatewayConfig;
use crate::secret::Token;
use crate::server::Limits;
use tessera_projections::resilience::ResilienceConfig;

/// Everything a shop instance is configured with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Prefix of every PostgreSQL schema and projection name (empty in production;
    /// tests use a unique one). Lower-case letters, digits and `_`.
    pub prefix: String,
    /// The simulated payment gateway.
    pub gateway: GatewayConfig,
    /// Timeout, retries, breaker and bulkhead around the gateway.
    pub resilience: ResilienceConfig,
    /// How long a payment may go unanswered before the order is rejected.
    pub payment_timeout: Duration,
    /// How often the saga's worker looks for due deadlines and retries.
    pub deadline_tick: Duration,
    /// The longest a `?min_position=` query waits for the read models.
    pub read_wait: Duration,
    /// Bearer token of the admin routes (`SHOP_ADMIN_TOKEN`); `Debug` shows `***`.
    pub admin_token: Option<Token>,
    /// Admin routes without a token (`serve --admin-open`): only for a machine whose
    /// every user may run rebuilds, never behind a proxy. Without it and without a token,
    /// admin routes are refused.
    pub admin_open: bool,
    /// The origins the server is reached at (`scheme://host[:port]`, lower case): a
    /// state-changing admin request whose `Origin` header names another one is refused.
    pub origins: Vec<String>,
    /// Aggregate states each command handler keeps in memory between commands
    /// (`CommandHandler::with_state_cache`); 0 turns the cache off.
    pub state_cache: usize,
    /// The HTTP server's timeouts, caps, sizes, rate limit and shutdown deadline.
    pub limits: Limits,
    /// Checks customers' bearer JWTs on the customer routes (`serve --jwt-secret` or
    /// `--jwt-public-key`); `None`: those routes are open (see `api::customer`).
    pub jwt: Option<crate::jwt::Verifier>,
    /// The one service this process runs (`serve --service`); `None`: all three
    /// contexts in one process, the embedded default.
    pub service: Option<crate::service::Service>,
    /// Backlog (runners' lag, inboxes' waiting messages, the saga's undispatched
    /// commands) over which new orders are refused with `503` (`serve --max-backlog`;
    /// see [`crate::app::Admission`]); 0 takes every order.
    pub max_backlog: u64,
}

impl Settings {
    /// Whether this process runs `context` (`ordering`, `inventory`, `payment`).
    pub fn runs(&self, context: &str) -> bool {
        crate::service::runs(self.service, context)
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            prefix: String::new(),
            gateway: GatewayConfig::default(),
            resilience: ResilienceConfig::default(),
            payment_timeout: Duration::from_secs(30),
            deadline_tick: Duration::from_millis(100),
            read_wait: Duration::from_secs(5),
            admin_token: None,
            admin_open: false,
            origins: Vec::new(),
            state_cache: 10_000,
            limits: Limits::default(),
            jwt: None,
            service: None,
            max_backlog: 0,
        }
    }
}
