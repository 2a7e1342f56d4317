//! Resilience guards in paused tokio time: breaker transitions, bulkhead limit, backoff
//! bounds, timeouts. No real sleeps.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tessera_projections::resilience::{
    BreakerConfig, BreakerState, Bulkhead, CallError, CircuitBreaker, Resilience, ResilienceConfig,
    RetryConfig,
};
use tokio::time::Instant;

#[derive(Debug, PartialEq)]
enum GatewayError {
    Unavailable,
    Declined,
}

fn transient(e: &GatewayError) -> bool {
    *e == GatewayError::Unavailable
}

fn breaker_config() -> BreakerConfig {
    BreakerConfig {
        failure_threshold: 3,
        cool_down: Duration::from_secs(10),
        success_threshold: 2,
    }
}

#[tokio::test(start_paused = true)]
async fn breaker_opens_half_opens_and_closes() {
    let breaker = CircuitBreaker::new(breaker_config());
    // Two failures, a success: the count starts again.
    breaker.try_acquire().expect("closed").failure();
    breaker.try_acquire().expect("closed").failure();
    breaker.try_acquire().expect("closed").success();
    assert_eq!(breaker.snapshot().consecutive_failures, 0);
    for _ in 0..3 {
        breaker.try_acquire().expect("closed").failure();
    }
    let s = breaker.snapshot();
    assert_eq!(
        (s.state, s.opened, s.failures, s.calls),
        (BreakerState::Open, 1, 5, 6)
    );
    assert!(breaker.try_acquire().is_err(), "open refuses");
    assert_eq!(breaker.snapshot().rejected, 1);
    tokio::time::advance(Duration::from_secs(9)).await;
    assert_eq!(breaker.state(), BreakerState::Open, "still cooling down");
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(breaker.state(), BreakerState::HalfOpen);
    // Half-open: at most `success_threshold` trials at once.
    let (a, b) = (
        breaker.try_acquire().expect("trial"),
        breaker.try_acquire().expect("trial"),
    );
    assert!(breaker.try_acquire().is_err(), "trial slots taken");
    a.success();
    assert_eq!(breaker.snapshot().half_open_successes, 1);
    assert_eq!(breaker.state(), BreakerState::HalfOpen);
    b.success();
    assert_eq!(breaker.state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn a_failed_trial_reopens_the_breaker() {
    let breaker = CircuitBreaker::new(breaker_config());
    for _ in 0..3 {
        breaker.try_acquire().expect("closed").failure();
    }
    tokio::time::advance(Duration::from_secs(10)).await;
    breaker.try_acquire().expect("trial").success();
    breaker.try_acquire().expect("trial").failure();
    let s = breaker.snapshot();
    assert_eq!((s.state, s.opened), (BreakerState::Open, 2));
    tokio::time::advance(Duration::from_secs(5)).await;
    assert!(breaker.try_acquire().is_err(), "a full cool-down again");
    // A trial permit dropped unreported frees its slot.
    tokio::time::advance(Duration::from_secs(5)).await;
    drop(breaker.try_acquire().expect("trial"));
    drop(breaker.try_acquire().expect("trial"));
    assert!(breaker.try_acquire().is_ok());
}

#[tokio::test(start_paused = true)]
async fn bulkhead_limits_concurrent_calls() {
    let bulkhead = Bulkhead::new(2, Duration::from_secs(1));
    let (in_flight, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let (bulkhead, in_flight, peak) = (bulkhead.clone(), in_flight.clone(), peak.clone());
        tasks.push(tokio::spawn(async move {
            let Ok(_slot) = bulkhead.acquire().await else {
                return false;
            };
            let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(300)).await;
            in_flight.fetch_sub(1, Ordering::SeqCst);
            true
        }));
    }
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(bulkhead.snapshot().in_flight, 2);
    let mut admitted = 0;
    for t in tasks {
        admitted += usize::from(t.await.expect("task"));
    }
    // Slots free every 300 ms; a call waits at most 1 s: 2 + 2 + 2 fit (at 0, 300, 600 ms).
    assert_eq!(peak.load(Ordering::SeqCst), 2);
    assert_eq!(admitted, 6);
    // With no wait, the third concurrent call is refused.
    let strict = Bulkhead::new(2, Duration::ZERO);
    let (_a, _b) = (
        strict.acquire().await.expect("slot"),
        strict.acquire().await.expect("slot"),
    );
    assert!(strict.acquire().await.is_err());
    let s = strict.snapshot();
    assert_eq!((s.max_concurrent, s.in_flight, s.rejected), (2, 2, 1));
}

#[tokio::test(start_paused = true)]
async fn retries_transient_errors_with_bounded_exponential_backoff() {
    let config = ResilienceConfig {
        retry: RetryConfig {
            max_attempts: 6,
            min_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(800),
            jitter: true,
        },
        breaker: BreakerConfig {
            failure_threshold: 100,
            ..breaker_config()
        },
        ..ResilienceConfig::default()
    };
    let guard = Resilience::new(config);
    let times = Arc::new(Mutex::new(Vec::new()));
    let result: Result<(), _> = guard
        .call(transient, || {
            let times = times.clone();
            async move {
                times.lock().expect("lock").push(Instant::now());
                Err(GatewayError::Unavailable)
            }
        })
        .await;
    assert!(matches!(
        result,
        Err(CallError::Transient(GatewayError::Unavailable))
    ));
    let times = times.lock().expect("lock").clone();
    assert_eq!(times.len(), 6, "max_attempts in all");
    // Each delay is in [d, 2d) for d = min(100 ms · 2^k, 800 ms); tokio's timer rounds a
    // sleep up to the next millisecond, hence the 1 ms of slack above.
    let bases = [100u64, 200, 400, 800, 800];
    for (gap, base) in times.windows(2).map(|w| w[1] - w[0]).zip(bases) {
        let (low, high) = (
            Duration::from_millis(base),
            Duration::from_millis(2 * base + 1),
        );
        assert!(
            gap >= low && gap < high,
            "delay {gap:?} outside [{low:?}, {high:?})"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn permanent_errors_are_not_retried_nor_counted_by_the_breaker() {
    let guard = Resilience::new(ResilienceConfig::default());
    let calls = AtomicUsize::new(0);
    let result: Result<(), _> = guard
        .call(transient, || {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Err(GatewayError::Declined) }
        })
        .await;
    assert!(matches!(
        result,
        Err(CallError::Permanent(GatewayError::Declined))
    ));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(guard.breaker().snapshot().failures, 0);
}

#[tokio::test(start_paused = true)]
async fn timeouts_count_as_failures_and_an_open_breaker_fails_fast() {
    let config = ResilienceConfig {
        timeout: Duration::from_secs(2),
        retry: RetryConfig {
            max_attempts: 1,
            ..RetryConfig::default()
        },
        breaker: breaker_config(),
        ..ResilienceConfig::default()
    };
    let guard = Resilience::new(config);
    let slow = || async {
        tokio::time::sleep(Duration::from_secs(60)).await;
        Ok::<(), GatewayError>(())
    };
    for _ in 0..3 {
        let start = Instant::now();
        assert!(matches!(
            guard.call(transient, slow).await,
            Err(CallError::Timeout(_))
        ));
        assert_eq!(
            start.elapsed(),
            Duration::from_secs(2),
            "cut at the timeout"
        );
    }
    assert_eq!(guard.breaker().state(), BreakerState::Open);
    let calls = AtomicUsize::new(0);
    let refused = guard
        .call(transient, || {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Ok::<(), GatewayError>(()) }
        })
        .await;
    assert!(matches!(refused, Err(CallError::Open)));
    assert_eq!(calls.load(Ordering::SeqCst), 0, "not called while open");
    tokio::time::advance(Duration::from_secs(10)).await;
    for _ in 0..2 {
        guard
            .call(transient, || async { Ok::<(), GatewayError>(()) })
            .await
            .expect("trial");
    }
    assert_eq!(guard.breaker().state(), BreakerState::Closed);
}
