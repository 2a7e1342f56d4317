//! One trace across the services: the shop's processes export their spans over OTLP to
//! a receiver in the test process.

use std::collections::{BTreeMap, BTreeSet};

use shop::service::Service;

use crate::otlp::{Receiver, Span};
use crate::services::{Broker, Topology};
use crate::support::eventually;

/// What the trace of the order must hold: (service, span name prefix).
const EXPECTED: [(&str, &str); 11] = [
    ("shop-gateway", "POST /v1/orders"),
    ("shop-ordering", "POST /v1/orders"),
    ("shop-ordering", "command "),
    ("shop-ordering", "append"),
    ("shop-ordering", "apply "),
    ("shop-ordering", "dispatch "),
    ("shop-inventory", "process "),
    ("shop-inventory", "command "),
    ("shop-inventory", "publish "),
    ("shop-payment", "process "),
    ("shop-payment", "command "),
];

/// Which of `EXPECTED` the trace lacks, and the spans whose parent is not in it.
fn missing(trace: &[Span]) -> (Vec<(&'static str, &'static str)>, Vec<String>) {
    let lacking = EXPECTED
        .iter()
        .filter(|(service, name)| {
            !trace
                .iter()
                .any(|s| s.service == *service && s.name.starts_with(name))
        })
        .copied()
        .collect();
    let ids: BTreeSet<&str> = trace.iter().map(|s| s.span_id.as_str()).collect();
    let orphans = trace
        .iter()
        .filter(|s| !s.parent.is_empty() && !ids.contains(s.parent.as_str()))
        .map(|s| format!("{} {} (parent {})", s.service, s.name, s.parent))
        .collect();
    (lacking, orphans)
}

/// [`eventually`], saying on a time-out what `last` held (the probe's last finding).
async fn eventually_or<T, F: std::future::Future<Output = Option<T>>>(
    what: &str,
    last: &std::sync::Mutex<String>,
    probe: impl FnMut() -> F,
) -> T {
    let waiting = std::panic::AssertUnwindSafe(eventually(what, probe));
    match futures_util::FutureExt::catch_unwind(waiting).await {
        Ok(v) => v,
        Err(_) => panic!("{what}: {}", last.lock().unwrap()),
    }
}

/// A receiver, and a topology on NATS (not started) exporting its spans to it.
async fn traced() -> (Receiver, Topology) {
    let receiver = Receiver::start().await;
    let mut topology = Topology::new(Broker::Nats).await;
    topology
        .env
        .insert("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint.clone());
    topology.env.insert("OTEL_BSP_SCHEDULE_DELAY", "100".into());
    (receiver, topology)
}

/// The gateway's span of the (one) order's `POST`, once it arrived.
async fn gateway_post(receiver: &Receiver) -> Span {
    eventually("the gateway's span of the order's POST", || async {
        receiver
            .spans()
            .into_iter()
            .find(|s| s.service == "shop-gateway" && s.name == "POST /v1/orders")
    })
    .await
}

/// An order placed through the gateway of the services topology (NATS) is one trace:
/// the gateway, ordering, inventory and payment all send spans with the trace id of the
/// gateway's request, each span's parent is in the trace, and it holds the steps from
/// the request to the commands in the other services and the read models. Payment is
/// down when the order is placed and restarted after: its part of the trace is made
/// by the restarted process, from the context the command message carried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_order_is_one_trace_across_the_services_and_a_restart() {
    let (receiver, mut topology) = traced().await;
    topology.launch().await;
    let shop = topology.shop();
    shop.product("tea", "Tea", 300, 10).await;
    topology.kill(Service::Payment).await;
    let (id, _) = shop.order("alice", &[("tea", 1)]).await;
    topology.start_service(Service::Payment);
    topology.ready().await;
    let order = shop.settled(&id).await;
    assert_eq!(order["status"], "confirmed", "{order}");

    let root = gateway_post(&receiver).await;
    assert!(root.parent.is_empty(), "the gateway's request is the root");
    let last = std::sync::Mutex::new(String::new());
    let trace = eventually_or("the whole trace of the order", &last, || async {
        let trace = receiver.trace(&root.trace_id);
        let (lacking, orphans) = missing(&trace);
        *last.lock().unwrap() = format!("lacking {lacking:?}, orphans {orphans:?}");
        (lacking.is_empty() && orphans.is_empty()).then_some(trace)
    })
    .await;
    let services = receiver.services_in(&root.trace_id);
    assert_eq!(
        services,
        [
            "shop-gateway",
            "shop-inventory",
            "shop-ordering",
            "shop-payment"
        ]
        .map(str::to_owned)
        .into(),
    );
    // Parent and child: ordering's request span is the child of the gateway's call.
    let by_id: BTreeMap<&str, &Span> = trace.iter().map(|s| (s.span_id.as_str(), s)).collect();
    let ordering_request = trace
        .iter()
        .find(|s| s.service == "shop-ordering" && s.name == "POST /v1/orders")
        .expect("ordering's request span");
    let call = by_id[ordering_request.parent.as_str()];
    assert_eq!(call.service, "shop-gateway");
    assert_eq!(call.attribute("tessera.service"), Some("ordering"));
    assert_eq!(call.parent, root.span_id);
    // The PostgreSQL store's append is a database span, with its group commit's size.
    let append = trace
        .iter()
        .find(|s| s.service == "shop-ordering" && s.name == "append")
        .expect("ordering's append");
    assert_eq!(append.attribute("db.system.name"), Some("postgresql"));
    let group: u64 = append
        .attribute("tessera.append.group_size")
        .and_then(|g| g.parse().ok())
        .expect("the group size");
    assert!(group >= 1, "{append:?}");
    // A runner's batch that applied one of the order's events is a root linked to the
    // event's trace, with its size and lag.
    let batch = eventually("a batch span linked to the order's trace", || async {
        receiver.spans().into_iter().find(|s| {
            s.name.starts_with("batch ") && s.links.iter().any(|(t, _)| *t == root.trace_id)
        })
    })
    .await;
    assert!(batch.parent.is_empty(), "{batch:?}");
    assert!(batch.attribute("tessera.batch_size").is_some(), "{batch:?}");
    assert!(
        batch.attribute("tessera.lag_seconds").is_some(),
        "{batch:?}"
    );
    // Payment's handling of the charge is a consumer span under ordering's dispatch.
    let charge = trace
        .iter()
        .find(|s| s.service == "shop-payment" && s.name.starts_with("process "))
        .expect("payment's processing");
    assert_eq!(charge.attribute("messaging.system"), Some("nats"));
    let mut up = by_id[charge.parent.as_str()];
    let mut chain = vec![format!("{} {}", up.service, up.name)];
    while !up.name.starts_with("dispatch ") {
        up = by_id
            .get(up.parent.as_str())
            .unwrap_or_else(|| panic!("{} has no dispatch above it: {chain:?}", charge.name));
        chain.push(format!("{} {}", up.service, up.name));
    }
    assert_eq!(up.service, "shop-ordering");
    // Other orders' traces are not mixed in: one order placed, one trace with its POST.
    let posts = receiver
        .spans()
        .into_iter()
        .filter(|s| s.service == "shop-gateway" && s.name == "POST /v1/orders")
        .count();
    assert_eq!(posts, 1);
}

/// A deadline that fires after the request's trace ended links to it: the saga's payment
/// deadline (payment never answers, a 1 s timeout) fires a dispatch that is the root of
/// a trace of its own, with a link to a span of the order's trace, and what the
/// dispatch causes in payment stays in that new trace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fired_deadline_links_to_the_trace_that_set_it() {
    let (receiver, mut topology) = traced().await;
    let flags = |f: &[&str]| f.iter().map(|s| (*s).to_owned()).collect();
    topology
        .flags
        .insert(Service::Payment, flags(&["--payment-failure-rate", "1"]));
    topology
        .flags
        .insert(Service::Ordering, flags(&["--payment-timeout-s", "1"]));
    topology.launch().await;
    let shop = topology.shop();
    shop.product("clock", "Clock", 700, 2).await;
    let (id, _) = shop.order("gina", &[("clock", 1)]).await;
    let order = shop.settled(&id).await;
    assert_eq!(order["reason"], "payment_timeout", "{order}");

    let root = gateway_post(&receiver).await;
    let fired = eventually("a dispatch linked to the order's trace", || async {
        receiver.spans().into_iter().find(|s| {
            s.name.starts_with("dispatch ") && s.links.iter().any(|(t, _)| *t == root.trace_id)
        })
    })
    .await;
    assert!(fired.parent.is_empty(), "a root: {fired:?}");
    assert_ne!(fired.trace_id, root.trace_id);
    assert_eq!(fired.service, "shop-ordering");
    // The link names a span of the order's trace.
    let (_, linked) = fired.links.first().expect("a link").clone();
    eventually("the linked span arrives", || async {
        receiver
            .trace(&root.trace_id)
            .iter()
            .any(|s| s.span_id == linked)
            .then_some(())
    })
    .await;
    // The timed-out payment's handling continues the deadline's trace.
    eventually(
        "payment's handling of the time-out in the new trace",
        || async {
            receiver
                .trace(&fired.trace_id)
                .iter()
                .any(|s| s.service == "shop-payment" && s.name.starts_with("command "))
                .then_some(())
        },
    )
    .await;
}
