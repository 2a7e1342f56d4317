//! Retry timing of a guarded call: exponential backoff with jitter, Tessera's one
//! [`Backoff`] (on backon's `ExponentialBuilder`).

use tessera_core::Backoff;

/// How often and how far apart a transient failure is retried: a [`Backoff`], by default
/// 3 attempts, waits from 100 ms doubling up to 2 s, with jitter.
///
/// The delay before retry `k` (1-based) is `min(min_delay · 2^(k-1), max_delay)`; with
/// jitter a random part of up to the same again is added, so each delay lies in
/// `[d, 2d]` for that `d`, and callers that failed together spread out.
pub type RetryConfig = Backoff;
