//! The one backoff policy of every retry in Tessera, on backon's `ExponentialBuilder`.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};

/// Exponential backoff with jitter: how often and how far apart something is retried.
/// Command conflicts ([`RetryPolicy`](crate::RetryPolicy)), failing subscribers and
/// process commands (`tessera-projections`) and guarded calls all wait through it.
///
/// Before retry `k` (1-based) it waits `d = min(min_delay · 2^(k-1), max_delay)`; with
/// `jitter`, a random part of up to `d` more, so each wait lies in `[d, 2d]` and callers
/// that failed together spread out. It is a backon
/// [`BackoffBuilder`](backon::BackoffBuilder), so it drives backon's `Retryable` as is.
///
/// ```
/// use std::time::Duration;
/// use tessera_core::Backoff;
///
/// let ms = Duration::from_millis;
/// let backoff = Backoff { max_attempts: 4, min_delay: ms(10), max_delay: ms(25), jitter: true };
/// for (retry, d) in [(1, 10), (2, 20), (3, 25), (9, 25)] {
///     let wait = backoff.delay(retry);
///     assert!(ms(d) <= wait && wait <= ms(2 * d), "{wait:?}");
/// }
/// // As a backon builder: a wait before each of the 3 retries that 4 attempts allow.
/// assert_eq!(backon::BackoffBuilder::build(backoff).count(), 3);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Attempts in all, the first included (1: no retry).
    pub max_attempts: u32,
    /// Wait before the first retry (before jitter).
    pub min_delay: Duration,
    /// Cap of the wait (before jitter).
    pub max_delay: Duration,
    /// Whether to add jitter.
    pub jitter: bool,
}

impl Default for Backoff {
    /// 3 attempts, waits from 100 ms doubling up to 2 s, with jitter.
    fn default() -> Self {
        Self {
            max_attempts: 3,
            min_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
            jitter: true,
        }
    }
}

impl Backoff {
    /// A jittered backoff whose wait after failure `k` lies in the upper half of
    /// `[0, c]`, `c = min(first_cap · 2^(k-1), max_cap)`: for settings that name the caps
    /// of the waits rather than their floors.
    pub fn capped(first_cap: Duration, max_cap: Duration, max_attempts: u32) -> Self {
        Self {
            max_attempts,
            min_delay: first_cap / 2,
            max_delay: max_cap / 2,
            jitter: true,
        }
    }

    /// The wait after failed attempt `attempt` (1-based), whatever `max_attempts` says:
    /// callers that count their attempts themselves ask for one wait at a time.
    pub fn delay(&self, attempt: u32) -> Duration {
        let doubled = self
            .min_delay
            .saturating_mul(1 << attempt.saturating_sub(1).min(31));
        let base = doubled.min(self.max_delay);
        // backon's own jitter, on one step from `base` (its arithmetic is in f32: keep
        // the wait within `[base, 2 base]` to the nanosecond).
        let step = Self {
            max_attempts: 2,
            min_delay: base,
            max_delay: base,
            jitter: self.jitter,
        };
        step.build()
            .next()
            .map_or(base, |wait| wait.clamp(base, base.saturating_mul(2)))
    }

    /// The backon builder this describes (at most `max_attempts - 1` waits).
    pub fn exponential(&self) -> ExponentialBuilder {
        let retries = usize::try_from(self.max_attempts.saturating_sub(1)).unwrap_or(usize::MAX);
        let builder = ExponentialBuilder::default()
            .with_min_delay(self.min_delay.min(self.max_delay))
            .with_max_delay(self.max_delay)
            .with_factor(2.0)
            .with_max_times(retries);
        if self.jitter {
            builder.with_jitter()
        } else {
            builder
        }
    }
}

impl BackoffBuilder for Backoff {
    type Backoff = ExponentialBackoff;

    fn build(self) -> ExponentialBackoff {
        self.exponential().build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_up_to_the_cap_and_jitter_stays_below_twice() {
        let ms = Duration::from_millis;
        let plain = Backoff {
            max_attempts: 5,
            min_delay: ms(4),
            max_delay: ms(20),
            jitter: false,
        };
        let waits: Vec<_> = (1..=6).map(|k| plain.delay(k)).collect();
        assert_eq!(waits, [ms(4), ms(8), ms(16), ms(20), ms(20), ms(20)]);
        assert_eq!(plain.build().count(), 4);
        let capped = Backoff::capped(ms(2), ms(200), 10);
        for attempt in 1..80 {
            let cap = ms(2)
                .saturating_mul(1 << (attempt - 1).min(20))
                .min(ms(200));
            for _ in 0..20 {
                let wait = capped.delay(attempt);
                assert!(cap / 2 <= wait && wait <= cap, "{attempt}: {wait:?}");
            }
        }
        let upside_down = Backoff {
            min_delay: ms(50),
            ..plain
        };
        assert_eq!(
            upside_down.delay(1),
            ms(20),
            "the cap holds from the first wait"
        );
    }
}
