//! Retry timing: exponential backoff with jitter, on backon's `ExponentialBuilder`.

use std::time::Duration;

use backon::ExponentialBuilder;

/// How often and how far apart a transient failure is retried.
///
/// The delay before retry `k` (1-based) is `min(min_delay · 2^(k-1), max_delay)`; with
/// jitter a random part of up to the same again is added, so each delay lies in
/// `[d, 2d)` for that `d`, and callers that failed together spread out.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryConfig {
    /// Attempts in all, the first included (1: no retry).
    pub max_attempts: u32,
    /// Delay before the first retry (before jitter).
    pub min_delay: Duration,
    /// Cap of the delay (before jitter).
    pub max_delay: Duration,
    /// Whether to add jitter.
    pub jitter: bool,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            min_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
            jitter: true,
        }
    }
}

impl RetryConfig {
    /// The backon backoff this describes.
    pub fn backoff(&self) -> ExponentialBuilder {
        let retries = usize::try_from(self.max_attempts.saturating_sub(1)).unwrap_or(usize::MAX);
        let builder = ExponentialBuilder::default()
            .with_min_delay(self.min_delay)
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
