//! The command line refuses out-of-range values as clap errors instead of panicking later.

use clap::Parser;
use shop::cli::{Cli, Command};

/// Values that would overflow a deadline, a latency or an allocation are refused by
/// clap, with the flag named, before anything runs.
#[test]
fn out_of_range_flags_are_clap_errors() {
    let huge = u64::MAX.to_string();
    let cases: [&[&str]; 12] = [
        &["serve", "--payment-timeout-s", &huge],
        &["serve", "--payment-timeout-s", "0"],
        &["serve", "--payment-latency-ms", &huge],
        &["serve", "--read-wait-ms", &huge],
        &["load", "--orders", &huge],
        &["load", "--skus", &huge],
        &["load", "--reads", &huge],
        &["load", "--settle-s", &huge],
        &["seed", "--orders", &huge],
        &["seed", "--orders", "10000001"],
        &["seed", "--orders", "1", "--skus", "10001"],
        &["seed", "--orders", "1", "--concurrency", &huge],
    ];
    for args in cases {
        let flag = args
            .iter()
            .rev()
            .find(|a| a.starts_with("--"))
            .expect("flag");
        let error = Cli::try_parse_from(std::iter::once("shop").chain(args.iter().copied()))
            .expect_err("out of range");
        assert_eq!(
            error.kind(),
            clap::error::ErrorKind::ValueValidation,
            "{args:?}"
        );
        assert!(error.to_string().contains(flag), "{args:?}: {error}");
    }
    let max = Cli::parse_from([
        "shop",
        "serve",
        "--payment-timeout-s",
        "2592000",
        "--payment-latency-ms",
        "60000",
    ]);
    assert!(matches!(max.command, Command::Serve(ref s)
        if s.payment_timeout_s == shop::cli::MAX_PAYMENT_TIMEOUT_S
            && s.payment_latency_ms == shop::cli::MAX_PAYMENT_LATENCY_MS));
}
