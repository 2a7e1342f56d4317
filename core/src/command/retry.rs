//! Retry policy for version conflicts.

use std::time::Duration;

use crate::Backoff;

/// How often and how patiently the command handler retries after a version conflict.
///
/// The delay before retry `n` lies in the upper half of `0..=min(max_delay, base_delay *
/// 2^(n-1))`, drawn at random ([`Backoff::capped`]), so contending writers spread out
/// instead of colliding again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (at least 1).
    pub max_attempts: u32,
    /// Cap of the first backoff.
    pub base_delay: Duration,
    /// Cap of every backoff.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 10,
            base_delay: Duration::from_millis(2),
            max_delay: Duration::from_millis(200),
        }
    }
}

impl RetryPolicy {
    /// No retry: the first conflict is returned.
    pub fn none() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// The jittered delay after failed attempt `attempt` (1-based).
    pub fn delay(&self, attempt: u32) -> Duration {
        self.backoff().delay(attempt)
    }

    /// The backoff this policy waits by.
    pub fn backoff(&self) -> Backoff {
        Backoff::capped(self.base_delay, self.max_delay, self.max_attempts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_stay_within_bounds() {
        let p = RetryPolicy::default();
        for attempt in 1..40 {
            let cap = p
                .base_delay
                .saturating_mul(1 << (attempt - 1).min(20))
                .min(p.max_delay);
            for _ in 0..50 {
                assert!(p.delay(attempt) <= cap);
            }
        }
        assert!(p.delay(1) <= Duration::from_millis(2));
    }
}
