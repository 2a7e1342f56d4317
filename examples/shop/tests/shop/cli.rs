//! The command line: out-of-range values are clap errors instead of panics later, and
//! `--log-format json` writes nothing but JSON.

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

/// With `--log-format json` every line the server writes, its start-up notices
/// included, is one JSON object.
#[test]
fn json_logs_are_json_from_the_first_line() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command as Process, Stdio};

    let mut child = Process::new(env!("CARGO_BIN_EXE_shop"))
        .args(["--log-format", "json", "serve", "--listen", "127.0.0.1:0"])
        .env_remove("DATABASE_URL")
        .env_remove("SHOP_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the shop binary starts");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = Vec::new();
    for line in BufReader::new(stderr).lines() {
        let line = line.expect("utf-8 line");
        let listening = line.contains("listening on");
        lines.push(line);
        if listening {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        lines.iter().any(|l| l.contains("in-memory store")),
        "the in-memory notice is there: {lines:?}"
    );
    for line in &lines {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(value["fields"]["message"].is_string(), "{line}");
    }
}
