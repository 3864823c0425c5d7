//! The relay against a broker that goes away and one that blocks it. Both
//! run on a private RabbitMQ node of the test's own (its own port, data
//! directory and node name), so stopping it or raising its memory alarm
//! disturbs nobody else on the machine.

use std::time::Duration;

use popug_bus::{Relay, RelayConfig, outbox};
use popug_testing::private::PrivateBroker;
use tokio_util::sync::CancellationToken;

use crate::helpers::{World, account};

async fn private_broker() -> PrivateBroker {
    PrivateBroker::start()
        .await
        .expect("the private broker starts")
}

/// Waits up to `within` for `done`.
async fn eventually(within: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < deadline {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    done()
}

#[tokio::test]
async fn the_relay_reconnects_within_seconds_of_the_broker_returning() {
    let broker = private_broker().await;
    let world = World::on_broker(&broker.url()).await;
    let probe = world.probe().await;
    // The production schedule: 1, 3, 5, 10, 30 s.
    let relay = Relay::new(
        world.pool.clone(),
        world.broker.clone(),
        "test",
        RelayConfig::default(),
    );
    let health = relay.health();
    let token = CancellationToken::new();
    let running = tokio::spawn(relay.run(token.clone()));
    world.enqueue(&[account("before")]).await;
    assert_eq!(
        world.take(&probe, 1, Duration::from_secs(20)).await.len(),
        1
    );

    broker.ctl(&["stop_app"]).expect("rabbitmqctl");
    world.enqueue(&[account("during")]).await;
    assert!(
        eventually(Duration::from_secs(10), || !health.snapshot().0).await,
        "the relay notices the outage"
    );
    // Past the 1, 3, 5 and 10 s pauses: the next one on the schedule would
    // end about 30 s after this.
    tokio::time::sleep(Duration::from_secs(20)).await;
    broker.ctl(&["start_app"]).expect("rabbitmqctl");
    let back = std::time::Instant::now();
    let arrived = world.take(&probe, 1, Duration::from_secs(40)).await;
    let reconnected_in = back.elapsed();
    token.cancel();
    running.await.expect("the relay stops");
    assert_eq!(arrived.len(), 1, "the event waiting in the outbox arrived");
    assert!(
        reconnected_in < Duration::from_secs(8),
        "the relay reconnected {reconnected_in:?} after the broker came back"
    );
}

#[tokio::test]
async fn a_blocked_relay_says_so_and_publishes_once_the_alarm_clears() {
    let broker = private_broker().await;
    let world = World::on_broker(&broker.url()).await;
    let probe = world.probe().await;
    let relay = world.relay();
    let health = relay.health();
    let token = CancellationToken::new();
    let running = tokio::spawn(relay.run(token.clone()));
    world.enqueue(&[account("before")]).await;
    assert_eq!(
        world.take(&probe, 1, Duration::from_secs(20)).await.len(),
        1
    );

    // A memory high watermark of 0 raises the memory alarm at once.
    broker
        .ctl(&["set_vm_memory_high_watermark", "0"])
        .expect("rabbitmqctl");
    world.enqueue(&[account("during")]).await;
    assert!(
        eventually(Duration::from_secs(20), || health.blocked()).await,
        "the relay reports that the broker blocks it"
    );
    let (connected, last_error) = health.snapshot();
    assert!(connected, "a blocked relay is still connected");
    let last_error = last_error.expect("the reason");
    assert!(
        last_error.contains("not accepting events"),
        "the reason is given: {last_error}"
    );
    let backlog = outbox::backlog(&mut world.pool.get().await.expect("connection"))
        .await
        .expect("backlog");
    assert_eq!(backlog.pending, 1, "the event waits in the outbox");

    broker
        .ctl(&["set_vm_memory_high_watermark", "0.4"])
        .expect("rabbitmqctl");
    let arrived = world.take(&probe, 1, Duration::from_secs(30)).await;
    assert!(
        eventually(Duration::from_secs(10), || !health.blocked()).await,
        "the relay no longer reports a block"
    );
    token.cancel();
    running.await.expect("the relay stops");
    assert!(!arrived.is_empty(), "the waiting event arrived");
    assert_eq!(world.count("SELECT count(*) AS n FROM outbox").await, 0);
}
