//! Publishing a message twice stores it once; a delivery dropped, forgotten, retried or
//! dead-lettered comes back (or does not) as documented.

use std::time::{Duration, Instant};

use tessera_projections::integration::{Bus, ConsumerSpec};

use crate::support::{isolated, isolated_with, next, unique};
use crate::wire::event;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_message_id_published_twice_is_stored_once() {
    let bus = isolated().await;
    let m = event("ordering");
    bus.publish(std::slice::from_ref(&m))
        .await
        .expect("publish");
    bus.publish(std::slice::from_ref(&m))
        .await
        .expect("publish again");
    // And twice within one call.
    let other = event("ordering");
    bus.publish(&[other.clone(), other.clone()])
        .await
        .expect("publish a repeat in one call");
    let mut stream = bus
        .jetstream()
        .get_stream(bus.stream_name("ordering"))
        .await
        .expect("the context's stream");
    assert_eq!(stream.info().await.expect("info").state.messages, 2);

    let spec = ConsumerSpec::new(unique("c"), "ordering", "ordering.>");
    let mut consumer = bus.consume(&spec).await.expect("consume");
    for expected in [&m, &other] {
        let d = next(&mut consumer).await.expect("a delivery");
        assert_eq!(d.message.as_ref().expect("message").id, expected.id);
        d.ack().await.expect("ack");
    }
    assert!(
        consumer
            .next(Duration::from_millis(500))
            .await
            .expect("consumer")
            .is_none(),
        "stored once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_forgotten_retried_and_dead_lettered_deliveries() {
    let ack_wait = Duration::from_secs(2);
    let bus = isolated_with(|b| b.ack_wait(ack_wait)).await;
    let m = event("ordering");
    bus.publish(std::slice::from_ref(&m))
        .await
        .expect("publish");
    let name = unique("c");
    let spec = ConsumerSpec::new(name.clone(), "ordering", "ordering.acct.>");
    let mut consumer = bus.consume(&spec).await.expect("consume");

    let first = next(&mut consumer).await.expect("first delivery");
    assert_eq!(first.attempt, 1);
    // Dropped unsettled: delivered again at once.
    let dropped = Instant::now();
    drop(first);
    let second = next(&mut consumer).await.expect("redelivered after a drop");
    assert_eq!(second.attempt, 2);
    assert_eq!(second.message.as_ref().expect("message"), &m);
    assert!(dropped.elapsed() < ack_wait, "{:?}", dropped.elapsed());

    // Forgotten (as a process that died holding it): delivered again after the ack wait.
    let forgotten = Instant::now();
    std::mem::forget(second);
    let third = next(&mut consumer)
        .await
        .expect("redelivered after the ack wait");
    let waited = forgotten.elapsed();
    assert_eq!(third.attempt, 3);
    assert!(
        waited >= ack_wait - Duration::from_millis(200) && waited < ack_wait * 2,
        "redelivered after {waited:?}, ack wait {ack_wait:?}"
    );

    // Retried: delivered again after about the delay.
    let delay = Duration::from_millis(700);
    let retried = Instant::now();
    third.retry(delay).await.expect("retry");
    let fourth = next(&mut consumer)
        .await
        .expect("redelivered after the delay");
    let waited = retried.elapsed();
    assert_eq!(fourth.attempt, 4);
    assert!(
        waited >= delay - Duration::from_millis(100) && waited < delay + Duration::from_secs(1),
        "redelivered after {waited:?}, delay {delay:?}"
    );

    // Dead-lettered: parked with its reason, never delivered here again.
    fourth
        .dead_letter("handler refused: amount 7\nsecond line")
        .await
        .expect("dead letter");
    assert!(
        consumer
            .next(ack_wait + Duration::from_millis(500))
            .await
            .expect("consumer")
            .is_none(),
        "a dead letter is not delivered again"
    );
    let letters = bus.dead_letters("ordering").await.expect("dead letters");
    assert_eq!(letters.len(), 1, "{letters:?}");
    let letter = &letters[0];
    assert_eq!(letter.message.as_ref().expect("the message as sent"), &m);
    assert_eq!(letter.reason, "handler refused: amount 7 second line");
    assert_eq!(letter.consumer, name);
    assert_eq!(letter.subject, bus.server_subject(&m.subject));
    assert_eq!(letter.deliveries, 4);
    assert!(bus.dead_letters("shipping").await.expect("none").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reopened_consumer_continues_where_it_was_and_keeps_its_filter() {
    let bus = isolated().await;
    let (a, b) = (event("ordering"), event("ordering"));
    bus.publish(&[a.clone(), b.clone()]).await.expect("publish");
    let spec = ConsumerSpec::new(unique("c"), "ordering", "ordering.acct.>");
    let mut consumer = bus.consume(&spec).await.expect("consume");
    let d = next(&mut consumer).await.expect("a");
    assert_eq!(d.message.as_ref().expect("message").id, a.id);
    d.ack().await.expect("ack");
    drop(consumer);

    let mut again = bus.consume(&spec).await.expect("reopen");
    let d = next(&mut again).await.expect("b");
    assert_eq!(d.message.as_ref().expect("message").id, b.id);
    d.ack().await.expect("ack");

    let other = ConsumerSpec {
        filter: "ordering.other.>".into(),
        ..spec.clone()
    };
    assert!(
        bus.consume(&other).await.is_err(),
        "a consumer keeps its filter"
    );
    let wider = ConsumerSpec {
        max_in_flight: 7,
        max_deliveries: 3,
        ..spec.clone()
    };
    bus.consume(&wider).await.expect("limits follow the spec");
    let info = bus
        .jetstream()
        .get_stream(bus.stream_name("ordering"))
        .await
        .expect("stream")
        .consumer_info(&spec.name)
        .await
        .expect("consumer info");
    assert_eq!(
        (info.config.max_ack_pending, info.config.max_deliver),
        (7, 3)
    );
}
