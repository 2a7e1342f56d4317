//! One active relay: leases in memory and in PostgreSQL, a waiting instance taking over
//! when the holder stops or its session is killed.

use std::sync::Arc;
use std::time::Duration;

use tessera_core::MemoryStore;
use tessera_projections::integration::{Bus, MemoryBus, MessageKind, PublicEvents, Relay};
use tessera_projections::leader::{lead, LeaderHandle, Leadership, MemoryLeadership, PgLeadership};
use tessera_projections::{MemoryCheckpoints, Runner, RunnerConfig};

use crate::pg_support::{named_pool, pool, unique};
use crate::support::{deposit, WAIT};

fn public() -> PublicEvents {
    PublicEvents::new("bank").map("acct", "Deposited", "Deposited", 1, |e| {
        Ok(e.data.to_value()?)
    })
}

/// Two instances of a relay under one lease name over one log, checkpoint and bus.
fn instances<L: Leadership>(
    a: L,
    b: L,
    store: &MemoryStore,
    bus: &MemoryBus,
) -> (LeaderHandle<MemoryStore>, LeaderHandle<MemoryStore>) {
    let checkpoints = MemoryCheckpoints::new();
    let start = {
        let (store, bus, checkpoints) = (store.clone(), bus.clone(), checkpoints.clone());
        move || {
            let bus: Arc<dyn Bus> = Arc::new(bus.clone());
            let relay = Relay::new("relay", public(), store.clone(), bus, checkpoints.clone());
            Runner::new(store.clone(), relay, RunnerConfig::default())
        }
    };
    let name = format!("relay_{}", unique());
    (lead(a, name.clone(), start.clone()), lead(b, name, start))
}

async fn published(bus: &MemoryBus, count: usize) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let n = bus
            .messages("bank")
            .iter()
            .filter(|m| m.as_ref().is_ok_and(|m| m.kind == MessageKind::Event))
            .count();
        if n >= count {
            assert_eq!(n, count, "each event published once");
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{n} of {count} published"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn one_leads<S: tessera_core::EventReader>(a: &LeaderHandle<S>, b: &LeaderHandle<S>) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !(a.is_leader() || b.is_leader()) {
        assert!(tokio::time::Instant::now() < deadline, "nobody leads");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(a.is_leader() != b.is_leader(), "exactly one leads");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_of_two_memory_relays_leads_and_the_other_takes_over() {
    let (store, bus) = (MemoryStore::new(), MemoryBus::new());
    let leadership = MemoryLeadership::new();
    let (a, b) = instances(leadership.clone(), leadership, &store, &bus);
    deposit(&store, "acct-1", 1).await;
    one_leads(&a, &b).await;
    published(&bus, 1).await;
    let (leader, waiting) = if a.is_leader() { (a, b) } else { (b, a) };
    leader.stop().await;
    waiting
        .wait_until_leader(WAIT)
        .await
        .expect("the waiting instance takes over");
    deposit(&store, "acct-1", 2).await;
    published(&bus, 2).await;
    waiting.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pg_lease_passes_on_when_its_session_is_killed() {
    let (app_a, app_b) = (
        format!("lease_a_{}", unique()),
        format!("lease_b_{}", unique()),
    );
    let fast = |pool| {
        PgLeadership::new(pool).with_intervals(Duration::from_millis(50), Duration::from_millis(50))
    };
    let (store, bus) = (MemoryStore::new(), MemoryBus::new());
    let (a, b) = instances(
        fast(named_pool(&app_a).await),
        fast(named_pool(&app_b).await),
        &store,
        &bus,
    );
    one_leads(&a, &b).await;
    let (leader, waiting, app) = if a.is_leader() {
        (a, b, app_a)
    } else {
        (b, a, app_b)
    };
    deposit(&store, "acct-1", 1).await;
    published(&bus, 1).await;
    // The holder's session dies (a crashed process, an operator's kill).
    let admin = pool().await.get().await.expect("connection");
    let killed = admin
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
            &[&app],
        )
        .await
        .expect("terminate");
    assert!(!killed.is_empty(), "found the holder's session");
    // The holder notices and gives the lease up; the lease is taken again (by the waiting
    // instance, or by the old holder on a new session: both may), and one instance leads.
    let deadline = tokio::time::Instant::now() + WAIT;
    while leader.terms() + waiting.terms() < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "nobody took the lease after the holder's session died"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    one_leads(&leader, &waiting).await;
    deposit(&store, "acct-1", 2).await;
    published(&bus, 2).await;
    leader.stop().await;
    waiting.stop().await;
}
