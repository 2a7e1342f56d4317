//! The command line: out-of-range values are clap errors instead of panics later,
//! `--log-format json` writes nothing but JSON, `shop projections` shows what the
//! admin status route shows, and `shop load` measures what it claims to (open loop at
//! a fixed rate, one hot product, transactions per order).

use std::collections::BTreeMap;
use std::time::Duration;

use clap::Parser;
use serde_json::Value;
use shop::cli::{Cli, Command};

use crate::support::{database_url, eventually, settings, TestShop};

/// Values that would overflow a deadline, a latency or an allocation are refused by
/// clap, with the flag named, before anything runs.
#[test]
fn out_of_range_flags_are_clap_errors() {
    let huge = u64::MAX.to_string();
    let cases: [&[&str]; 23] = [
        &["serve", "--payment-timeout-s", &huge],
        &["serve", "--payment-timeout-s", "0"],
        &["serve", "--payment-latency-ms", &huge],
        &["serve", "--read-wait-ms", &huge],
        &["serve", "--state-cache", &huge],
        &["serve", "--state-cache", "1000001"],
        &["serve", "--header-read-timeout-s", "0"],
        &["serve", "--request-timeout-s", &huge],
        &["serve", "--max-requests", "0"],
        &["serve", "--max-header-bytes", "100"],
        &["serve", "--rate-limit-burst", "0"],
        &["serve", "--shutdown-timeout-s", &huge],
        &["load", "--orders", &huge],
        &["load", "--skus", &huge],
        &["load", "--reads", &huge],
        &["load", "--settle-s", &huge],
        &["load", "--rate", "0"],
        &["load", "--rate", "1000001"],
        &["load", "--poll-ms", "0"],
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
        "--state-cache",
        "1000000",
    ]);
    assert!(matches!(max.command, Command::Serve(ref s)
        if s.payment_timeout_s == shop::cli::MAX_PAYMENT_TIMEOUT_S
            && s.payment_latency_ms == shop::cli::MAX_PAYMENT_LATENCY_MS
            && s.state_cache == 1_000_000));
}

/// `--help` names the variables a value can come from but never shows their values:
/// a password in `DATABASE_URL` or `EVENTSTOREDB_URL`, or the admin token, stays out of
/// the output of every subcommand's help.
#[test]
fn help_shows_no_secret_from_the_environment() {
    for command in ["serve", "rebuild", "projections", "seed"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_shop"))
            .args([command, "--help"])
            .env("DATABASE_URL", "postgres://u:s3cretpw@h/db")
            .env("EVENTSTOREDB_URL", "esdb://admin:esdbs3cret@h:2113")
            .env("SHOP_ADMIN_TOKEN", "t0kens3cret")
            .output()
            .expect("run shop --help");
        let shown = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "shop {command} --help: {shown}");
        assert!(shown.contains("DATABASE_URL"), "{shown}");
        for secret in ["s3cretpw", "esdbs3cret", "t0kens3cret"] {
            assert!(
                !shown.contains(secret),
                "shop {command} --help shows {secret}: {shown}"
            );
        }
    }
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

/// Human logs written to a pipe (`2>&1 | tail`, a file) carry no colour codes.
#[test]
fn human_logs_to_a_pipe_are_plain_text() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command as Process, Stdio};

    let mut child = Process::new(env!("CARGO_BIN_EXE_shop"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env_remove("DATABASE_URL")
        .env("SHOP_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the shop binary starts");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.expect("utf-8 line");
        let listening = line.contains("listening on");
        seen.push(line);
        if listening {
            break;
        }
    }
    // Stopping logs through tracing (`shutting down`, `draining`...).
    let term = Process::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(term.success());
    seen.extend(lines.map(|l| l.expect("utf-8 line")));
    let _ = child.wait();
    assert!(
        seen.iter().any(|l| l.contains("shutting down")),
        "a tracing line: {seen:?}"
    );
    for line in &seen {
        assert!(!line.contains('\u{1b}'), "a colour code in {line:?}");
    }
}

/// Kind, checkpoint, head and lag of each runner, by name.
type Rows = BTreeMap<String, [String; 5]>;

/// The admin status route's runners, once two looks a runner's idle refresh apart agree
/// and every runner is live.
async fn idle_route(shop: &TestShop) -> Rows {
    let look = || async {
        let (status, body) = shop.get("/v1/admin/projections").await;
        assert_eq!(status, 200, "{body}");
        let runners = body["runners"].as_array().expect("runners").clone();
        let live = runners.iter().all(|r| r["state"] == "live");
        let rows: Rows = runners
            .iter()
            .map(|r| {
                let text = |v: &Value| v.as_str().map_or_else(|| v.to_string(), str::to_owned);
                let head = r["head"].as_str().unwrap_or("-").to_owned();
                let backlog = r["backlog"]["waiting"]
                    .as_u64()
                    .map_or_else(|| "-".to_owned(), |w| w.to_string());
                let figures = [
                    text(&r["kind"]),
                    text(&r["checkpoint"]),
                    head,
                    text(&r["lag_events"]),
                    backlog,
                ];
                (text(&r["name"]), figures)
            })
            .collect();
        (live, rows)
    };
    eventually("the runners are live and idle", || async {
        let (_, first) = look().await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let (live, second) = look().await;
        (live && first == second).then_some(second)
    })
    .await
}

/// `shop projections` run on the shop's schemas, as rows.
async fn projections_command(prefix: &str) -> Rows {
    let args = [
        "projections",
        "--database-url",
        &database_url(),
        "--schema-prefix",
        prefix,
    ]
    .map(str::to_owned);
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_shop"))
            .args(args)
            .output()
            .expect("run shop projections")
    })
    .await
    .expect("join");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "shop projections: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut sections = stdout.split("\n\n");
    let runners = sections.next().unwrap_or_default();
    let inboxes: Vec<Vec<&str>> = sections
        .next()
        .unwrap_or_default()
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    let names: Vec<(&str, &str)> = inboxes.iter().map(|c| (c[0], c[1])).collect();
    assert_eq!(
        names,
        [
            ("inventory", "fulfilment_inbox_inventory"),
            ("payment", "fulfilment_inbox_payment")
        ],
        "{stdout}"
    );
    for cells in &inboxes {
        let streams: u64 = cells[2].parse().expect("a count of streams");
        assert!(streams >= 1, "{stdout}");
    }
    runners
        .lines()
        .skip(1)
        .map(|line| {
            let cells: Vec<&str> = line.split_whitespace().collect();
            let [kind, name, checkpoint, head, lag, backlog] = cells[..] else {
                panic!("a row of six cells: {line:?}");
            };
            let figures = [kind, checkpoint, head, lag, backlog].map(str::to_owned);
            (name.to_owned(), figures)
        })
        .collect()
}

/// `shop projections` reads stored checkpoints and `GET /v1/admin/projections` asks the
/// running runners; on an idle shop both list the same runners (the payment worker too)
/// with the same checkpoints, heads and lag. The lag counts the events each runner
/// wants: at rest none, though the saga's and the relays' logs end with events they do
/// not read. The relays (whose checkpoints are not stored on the in-memory bus) and
/// the inboxes show only in the route: live relays, running inboxes without lag, every
/// message handled once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projections_command_shows_what_the_admin_route_shows() {
    let shop = TestShop::postgres().await;
    let prefix = shop.prefix.clone().expect("a PostgreSQL shop");
    shop.product("tea", "Tea", 450, 100).await;
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(shop.order(&format!("c{i}"), &[("tea", 1)]).await.0);
    }
    for id in &ids {
        shop.settled(id).await;
    }
    // A cancelled order ends the inventory and payment logs with events the relays do
    // not read (`ReservationReleased`, `PaymentRefunded`).
    let (status, body) = shop
        .post(
            &format!("/v1/orders/{}/cancel", ids[0]),
            &serde_json::json!({}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    shop.order_until(&ids[0], "refunded and released", |o| {
        o["payment"]["status"] == "refunded" && o["reservation"]["status"] == "released"
    })
    .await;
    let mut route = idle_route(&shop).await;
    for relay in ["inventory_relay", "payment_relay"] {
        let row = route.remove(relay).expect("a relay in the route");
        assert_eq!(
            (row[0].as_str(), row[3].as_str()),
            ("relay", "0"),
            "{row:?}"
        );
    }
    let (_, body) = shop.get("/v1/admin/projections").await;
    let inboxes = body["inboxes"].as_array().expect("inboxes");
    let names: Vec<&str> = inboxes.iter().filter_map(|i| i["name"].as_str()).collect();
    assert_eq!(
        names,
        [
            "fulfilment_inbox_inventory",
            "fulfilment_inbox_payment",
            "inventory_commands",
            "payment_commands"
        ]
    );
    for inbox in inboxes {
        assert_eq!(inbox["state"], "running", "{inbox}");
        assert_eq!(inbox["lag_messages"], 0, "{inbox}");
        assert!(inbox["handled"].as_u64() > Some(0), "{inbox}");
        assert_eq!(inbox["poison"], Value::Null, "{inbox}");
    }
    let command = projections_command(&prefix).await;
    assert_eq!(
        command, route,
        "shop projections (left), the admin route (right)"
    );
    assert_eq!(
        route.get("fulfilment").map(|r| r[4].as_str()),
        Some("0"),
        "at rest the saga has dispatched everything: {route:?}"
    );
    for (name, kind) in [("payment_worker", "worker"), ("fulfilment", "saga")] {
        assert_eq!(
            route.get(name).map(|r| r[0].as_str()),
            Some(kind),
            "{route:?}"
        );
    }
    shop.finish().await;
}

/// `shop load` with `args` against the shop at `base`: its standard output, and its
/// summary line's keys and values.
async fn shop_load(base: &str, args: &[&str]) -> (String, BTreeMap<String, String>) {
    let mut all = vec!["load".to_owned(), "--target".to_owned(), base.to_owned()];
    all.extend(args.iter().map(|a| (*a).to_owned()));
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_shop"))
            .args(all)
            .env_remove("SHOP_LOG")
            .output()
            .expect("run shop load")
    })
    .await
    .expect("join");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "shop load: {stdout}{stderr}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with("workload=shop-load "))
        .unwrap_or_else(|| panic!("a summary line: {stdout}{stderr}"));
    let pairs = line
        .split(' ')
        .map(|kv| {
            let (k, v) = kv.split_once('=').expect("key=value");
            (k.to_owned(), v.to_owned())
        })
        .collect();
    (stdout, pairs)
}

/// A number of the summary line.
fn number(pairs: &BTreeMap<String, String>, key: &str) -> f64 {
    pairs[key]
        .parse()
        .unwrap_or_else(|_| panic!("{key}={} is not a number", pairs[key]))
}

/// `--rate` sends on schedule and times every order from its 201 to its confirmation:
/// 40 orders at 50/s take at least 0.78 s to send, every one is seen settled, and with
/// a gateway that takes 20–60 ms a call no order confirms in under 20 ms.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_at_a_fixed_rate_times_every_order_to_confirmed() {
    let mut slow_gateway = settings();
    slow_gateway.gateway.latency = Duration::from_millis(40);
    let shop = TestShop::memory_with(slow_gateway).await;
    let args = [
        "--orders", "40", "--rate", "50", "--skus", "3", "--reads", "0",
    ];
    let (stdout, pairs) = shop_load(&shop.base, &args).await;
    for (key, want) in [
        ("mode", "open"),
        ("rate", "50.0"),
        ("orders", "40"),
        ("place_failed", "0"),
        ("settled", "40"),
        ("confirmed", "40"),
        ("pending", "0"),
        ("skus", "3"),
        ("hot", "false"),
        ("tx_per_order", "-"),
    ] {
        assert_eq!(pairs[key], want, "{key}: {stdout}");
    }
    let offered = number(&pairs, "offered_per_s");
    assert!((45.0..=55.0).contains(&offered), "{stdout}");
    // Open loop: placing lasted at least the schedule, 39 gaps of 20 ms.
    let placed_per_s = number(&pairs, "place_per_s");
    assert!(placed_per_s <= 40.0 / 0.78, "{stdout}");
    let (p50, p99, max) = (
        number(&pairs, "confirm_p50_ms"),
        number(&pairs, "confirm_p99_ms"),
        number(&pairs, "confirm_max_ms"),
    );
    assert!(20.0 <= p50 && p50 <= p99 && p99 <= max, "{stdout}");
    // Every order was placed after the first send and seen before the last settle.
    let span_ms = 40.0 / number(&pairs, "settled_per_s") * 1000.0;
    assert!(max <= span_ms * 1.01, "{stdout}");
    assert!(number(&pairs, "watch_requests") >= 1.0, "{stdout}");
    shop.finish().await;
}

/// `--hot` puts every order on one product stocked for all of them (whatever `--skus`
/// says), and `--database-url` counts PostgreSQL's transactions per settled order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_load_puts_every_order_on_one_product_and_counts_transactions() {
    let shop = TestShop::postgres().await;
    let url = database_url();
    let args = [
        "--hot",
        "--skus",
        "5",
        "--orders",
        "30",
        "--rate",
        "200",
        "--reads",
        "0",
        "--database-url",
        &url,
        "--stats-wait-s",
        "1",
    ];
    let (stdout, pairs) = shop_load(&shop.base, &args).await;
    for (key, want) in [
        ("mode", "open"),
        ("skus", "1"),
        ("hot", "true"),
        ("settled", "30"),
        ("confirmed", "30"),
        ("place_failed", "0"),
    ] {
        assert_eq!(pairs[key], want, "{key}: {stdout}");
    }
    let sku = stdout
        .lines()
        .find_map(|l| l.strip_prefix("hot product: "))
        .unwrap_or_else(|| panic!("the hot product is named: {stdout}"));
    // Stocked for exactly the orders and the one warm-up order load places first.
    let product = shop
        .product_until(sku, "every order's unit reserved", |p| p["reserved"] == 31)
        .await;
    assert_eq!(product["on_hand"], 31, "stocked for exactly the orders");
    assert_eq!(product["available"], 0, "{product}");
    // Each order writes in several transactions of its own (its placing, its
    // commands' dispatch); other tests writing at the same time only add to these.
    assert!(number(&pairs, "write_tx_per_order") >= 1.0, "{stdout}");
    assert!(number(&pairs, "tx_per_order") > 0.0, "{stdout}");
    assert!(number(&pairs, "tx_window_s") >= 1.0, "{stdout}");
    shop.finish().await;
}
