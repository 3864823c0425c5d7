//! Black-box tests of the event bus against the real Postgres and RabbitMQ:
//! a fresh database and a fresh broker namespace per test, and no sleeps
//! for correctness (tests drive the relay and the consumer step by step).
//! The harness is in `helpers`, the tests in one module an area. The broker
//! outage test stays here: nextest runs tests named `outage_*` alone, and its
//! filter matches names from the crate root.

mod consumer;
mod dead_letter_console;
mod dead_letter_races;
mod dead_letter_rows;
mod helpers;
mod history;
mod migrations;
mod ops_api;
mod private_broker;
mod producers;
mod relay;
mod relay_recovery;
mod retention;
mod trust;

use std::time::Duration;

use popug_bus::outbox;
use tokio_util::sync::CancellationToken;

use crate::helpers::{World, account};

fn rabbitmqctl(args: &[&str]) {
    let status = std::process::Command::new("rabbitmqctl")
        .args(args)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("rabbitmqctl runs");
    assert!(status.success(), "rabbitmqctl {args:?} failed");
}

/// Runs alone (see .config/nextest.toml): it takes the broker away from everyone.
#[tokio::test]
async fn outage_the_relay_survives_the_broker_going_away_and_loses_nothing() {
    let world = World::new().await;
    let probe = world.probe().await;
    let relay = world.relay();
    let health = relay.health();
    let token = CancellationToken::new();
    let running = tokio::spawn(relay.run(token.clone()));

    let mut sent = world
        .enqueue(
            &(0..20)
                .map(|i| account(&format!("a{i}")))
                .collect::<Vec<_>>(),
        )
        .await;
    assert_eq!(
        world.take(&probe, 20, Duration::from_secs(20)).await.len(),
        20
    );

    // The broker closes every connection.
    rabbitmqctl(&["close_all_connections", "test: connections closed"]);
    sent.extend(
        world
            .enqueue(
                &(20..40)
                    .map(|i| account(&format!("b{i}")))
                    .collect::<Vec<_>>(),
            )
            .await,
    );
    let after_close = world.take(&probe, 20, Duration::from_secs(30)).await;
    assert_eq!(after_close.len(), 20);

    // The broker stops; events wait in the outbox.
    rabbitmqctl(&["stop_app"]);
    sent.extend(
        world
            .enqueue(
                &(40..60)
                    .map(|i| account(&format!("c{i}")))
                    .collect::<Vec<_>>(),
            )
            .await,
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while health.snapshot().1.is_none() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (connected, last_error) = health.snapshot();
    let backlog = outbox::backlog(&mut world.pool.get().await.expect("connection"))
        .await
        .expect("backlog");
    rabbitmqctl(&["start_app"]);
    assert!(
        !connected && last_error.is_some(),
        "the relay reports the outage"
    );
    assert_eq!(
        backlog.pending, 20,
        "the backlog is visible while the broker is away"
    );

    let after_restart = world.take(&probe, 20, Duration::from_secs(60)).await;
    token.cancel();
    running.await.expect("relay stops");
    let mut received: Vec<String> = after_close
        .iter()
        .chain(&after_restart)
        .map(|d| d.properties.message_id().as_ref().expect("id").to_string())
        .collect();
    received.sort();
    received.dedup();
    let mut expected: Vec<String> = sent[20..].iter().map(ToString::to_string).collect();
    expected.sort();
    assert_eq!(received, expected, "every event after the outage arrived");
    assert_eq!(world.count("SELECT count(*) AS n FROM outbox").await, 0);
}
