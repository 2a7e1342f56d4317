//! A simulated payment gateway: latency, transient failures, a deterministic limit, and
//! a ledger of what it captured and refunded per payment.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
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

/// What the gateway holds for one payment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Account {
    /// Captured.
    pub captured_cents: i64,
    /// Given back.
    pub refunded_cents: i64,
}

impl Account {
    /// Captured and not given back.
    pub fn net_cents(&self) -> i64 {
        self.captured_cents - self.refunded_cents
    }
}

#[derive(Debug, Default)]
struct Ledger {
    /// Per payment (one entry per payment charged, kept for the life of the process).
    accounts: HashMap<Uuid, Account>,
    /// Refunds that gave money back, by idempotency key, with the amount.
    refunds: HashMap<String, i64>,
}

/// The simulated gateway. Clones share one ledger, and one pause switch.
#[derive(Debug, Clone)]
pub struct Gateway {
    config: GatewayConfig,
    ledger: Arc<Mutex<Ledger>>,
    paused: Arc<tokio::sync::watch::Sender<bool>>,
}

impl Gateway {
    /// A gateway behaving as `config` says.
    pub fn new(config: GatewayConfig) -> Self {
        Self {
            config,
            ledger: Arc::default(),
            paused: Arc::new(tokio::sync::watch::Sender::new(false)),
        }
    }

    /// Holds every call (new and in progress before its answer) until [`resume`]: a
    /// gateway that is slow to answer for a while, for tests that need an order of
    /// events a real latency would only make likely.
    ///
    /// [`resume`]: Gateway::resume
    pub fn pause(&self) {
        self.paused.send_replace(true);
    }

    /// Lets held and new calls answer again.
    pub fn resume(&self) {
        self.paused.send_replace(false);
    }

    /// Charges `amount_cents` for `payment`. Idempotent per payment, as a real gateway
    /// is per idempotency key: a repeat answers the same reference and takes nothing more.
    pub async fn charge(&self, payment: Uuid, amount_cents: i64) -> Result<Charge, Transient> {
        self.call().await?;
        if amount_cents > self.config.limit_cents {
            return Ok(Charge::Declined);
        }
        self.ledger().accounts.entry(payment).or_insert(Account {
            captured_cents: amount_cents,
            refunded_cents: 0,
        });
        Ok(Charge::Captured(format!("sim-{}", payment.simple())))
    }

    /// Gives back what `payment` has captured and not yet refunded; returns the amount
    /// (0: nothing held, e.g. never captured). Idempotent per `key`: a repeat answers
    /// the first refund's amount and moves no money.
    pub async fn refund(&self, payment: Uuid, key: &str) -> Result<i64, Transient> {
        self.call().await?;
        let mut ledger = self.ledger();
        if let Some(cents) = ledger.refunds.get(key) {
            return Ok(*cents);
        }
        let Some(account) = ledger.accounts.get_mut(&payment) else {
            return Ok(0);
        };
        let cents = account.net_cents();
        account.refunded_cents += cents;
        if cents > 0 {
            ledger.refunds.insert(key.to_owned(), cents);
        }
        Ok(cents)
    }

    /// What the gateway holds for `payment` (all zero if never captured).
    pub fn account(&self, payment: Uuid) -> Account {
        self.ledger()
            .accounts
            .get(&payment)
            .copied()
            .unwrap_or_default()
    }

    /// The latency of one call, then maybe a transient failure.
    async fn call(&self) -> Result<(), Transient> {
        let base = u64::try_from(self.config.latency.as_micros()).unwrap_or(u64::MAX);
        let jittered = (base / 2).saturating_add(fastrand::u64(0..=base.max(1)));
        tokio::time::sleep(Duration::from_micros(jittered)).await;
        // The sender lives as long as any clone, so this only ends once resumed.
        let _ = self.paused.subscribe().wait_for(|paused| !*paused).await;
        if fastrand::f64() < self.config.failure_rate {
            return Err(Transient);
        }
        Ok(())
    }

    fn ledger(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use uuid::Uuid;

    use super::{Account, Charge, Gateway, GatewayConfig};

    fn fast() -> Gateway {
        Gateway::new(GatewayConfig {
            latency: Duration::ZERO,
            ..GatewayConfig::default()
        })
    }

    #[tokio::test]
    async fn a_refund_gives_back_a_capture_once_per_key() {
        let (gateway, p) = (fast(), Uuid::from_u128(1));
        assert_eq!(gateway.refund(p, "k0").await.ok(), Some(0), "nothing held");
        assert!(matches!(
            gateway.charge(p, 700).await,
            Ok(Charge::Captured(_))
        ));
        assert!(matches!(
            gateway.charge(p, 700).await,
            Ok(Charge::Captured(_))
        ));
        assert_eq!(
            gateway.account(p).net_cents(),
            700,
            "a repeat takes nothing more"
        );
        assert_eq!(gateway.refund(p, "k1").await.ok(), Some(700));
        assert_eq!(gateway.refund(p, "k1").await.ok(), Some(700), "same answer");
        assert_eq!(gateway.refund(p, "k2").await.ok(), Some(0), "nothing left");
        let account = Account {
            captured_cents: 700,
            refunded_cents: 700,
        };
        assert_eq!(gateway.account(p), account);
    }

    #[tokio::test]
    async fn a_huge_latency_does_not_overflow() {
        let gateway = Gateway::new(GatewayConfig {
            latency: Duration::MAX,
            ..GatewayConfig::default()
        });
        let call = gateway.charge(Uuid::from_u128(2), 1);
        assert!(tokio::time::timeout(Duration::from_millis(10), call)
            .await
            .is_err());
    }
}
