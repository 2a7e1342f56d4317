//! A simulated payment gateway: latency, transient failures, and a deterministic limit.

use std::time::Duration;

use uuid::Uuid;

/// How the simulated gateway behaves.
#[derive(Debug, Clone, Copy)]
pub struct GatewayConfig {
    /// Typical latency of a call (each call takes 50%–150% of it).
    pub latency: Duration,
    /// Chance in `0.0..=1.0` that a call fails transiently.
    pub failure_rate: f64,
    /// Payments above this amount are declined.
    pub limit_cents: i64,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            latency: Duration::from_millis(5),
            failure_rate: 0.0,
            limit_cents: 1_000_000,
        }
    }
}

/// What the gateway answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Charge {
    /// Money taken, with the gateway's reference.
    Captured(String),
    /// Refused.
    Declined,
}

/// A transient failure: try again later.
#[derive(Debug, Clone, thiserror::Error)]
#[error("payment gateway temporarily unavailable")]
pub struct Transient;

/// The simulated gateway.
#[derive(Debug, Clone)]
pub struct Gateway {
    config: GatewayConfig,
}

impl Gateway {
    /// A gateway behaving as `config` says.
    pub fn new(config: GatewayConfig) -> Self {
        Self { config }
    }

    /// Charges `amount_cents` for `payment`. Idempotent per payment in a real gateway;
    /// here the reference is derived from the payment id, so repeats answer the same.
    pub async fn charge(&self, payment: Uuid, amount_cents: i64) -> Result<Charge, Transient> {
        let base = u64::try_from(self.config.latency.as_micros()).unwrap_or(u64::MAX);
        let jittered = base / 2 + fastrand::u64(0..=base.max(1));
        tokio::time::sleep(Duration::from_micros(jittered)).await;
        if fastrand::f64() < self.config.failure_rate {
            return Err(Transient);
        }
        if amount_cents > self.config.limit_cents {
            return Ok(Charge::Declined);
        }
        Ok(Charge::Captured(format!("sim-{}", payment.simple())))
    }
}
