//! Publishing: committed events reach the broker in order and once, invalid
//! ones never enter the outbox, one relay at a time, and its health gauge.

use std::time::Duration;

use diesel_async::{AsyncConnection as _, RunQueryDsl as _};
use popug_bus::{Broker, Outbox, OutboxError, Relay, RelayConfig, Step, envelope};
use popug_proto::pb::popug::events::accounts::v1::AccountCreated;
use prost::Message as _;

use crate::helpers::{World, account, fast_backoff};

#[tokio::test]
async fn committed_events_reach_the_broker_in_order_once_and_rolled_back_ones_never() {
    let world = World::new().await;
    let probe = world.probe().await;
    let mut expected = Vec::new();
    for i in 0..30 {
        expected.extend(world.enqueue(&[account(&format!("popug{i}"))]).await);
    }
    // A transaction that rolls back takes its events with it.
    let mut conn = world.pool.get().await.expect("connection");
    let rolled_back: Result<(), OutboxError> = conn
        .transaction(async |conn| {
            Outbox::new("test").enqueue(conn, &account("ghost")).await?;
            Err(OutboxError::Database(
                diesel::result::Error::RollbackTransaction,
            ))
        })
        .await;
    assert!(rolled_back.is_err());
    drop(conn);
    expected.extend(
        world
            .enqueue(
                &(30..60)
                    .map(|i| account(&format!("popug{i}")))
                    .collect::<Vec<_>>(),
            )
            .await,
    );

    let mut relay = world.relay();
    assert_eq!(world.drain_relay(&mut relay).await, 60);
    assert_eq!(world.count("SELECT count(*) AS n FROM outbox").await, 0);

    let deliveries = world.take(&probe, 61, Duration::from_secs(2)).await;
    let ids: Vec<String> = deliveries
        .iter()
        .map(|d| {
            d.properties
                .message_id()
                .as_ref()
                .expect("message id")
                .to_string()
        })
        .collect();
    let expected: Vec<String> = expected.iter().map(ToString::to_string).collect();
    assert_eq!(ids, expected, "every committed event once, in commit order");

    let first = &deliveries[0];
    assert_eq!(first.routing_key.as_str(), "account.created.v1");
    assert_eq!(
        first.properties.kind().as_ref().map(|t| t.as_str()),
        Some("popug.events.accounts.v1.AccountCreated")
    );
    assert_eq!(
        first.properties.app_id().as_ref().map(|a| a.as_str()),
        Some("test")
    );
    assert_eq!(
        first.properties.content_type().as_ref().map(|c| c.as_str()),
        Some("application/protobuf")
    );
    assert_eq!(*first.properties.delivery_mode(), Some(2));
    let opened = envelope::open(&first.data).expect("an envelope");
    assert_eq!(opened.meta.event_id.to_string(), expected[0]);
    assert_eq!(opened.meta.event_name, "AccountCreated");
    assert_eq!(opened.meta.event_version, 1);
    assert_eq!(
        AccountCreated::decode(opened.payload.as_slice())
            .expect("payload")
            .login,
        "popug0"
    );
}

#[tokio::test]
async fn an_invalid_event_is_an_error_for_the_caller_and_is_not_enqueued() {
    let world = World::new().await;
    let mut bad = account("kesha");
    bad.email = "not-an-email".into();
    let mut conn = world.pool.get().await.expect("connection");
    let error = Outbox::new("test")
        .enqueue_all(&mut conn, &[account("ok"), bad])
        .await
        .expect_err("invalid event refused");
    assert!(error.to_string().contains("`email`"), "{error}");
    drop(conn);
    assert_eq!(world.count("SELECT count(*) AS n FROM outbox").await, 0);
}

#[tokio::test]
async fn the_outbox_refuses_a_day_that_is_not_in_the_calendar() {
    use popug_proto::pb::popug::events::billing::v1::BillingCycleClosed;
    let world = World::new().await;
    let mut conn = world.pool.get().await.expect("connection");
    for day in ["2026-99-99", "2026-02-30", "2026-1-5"] {
        let error = Outbox::new("test")
            .enqueue(
                &mut conn,
                &BillingCycleClosed {
                    day: day.into(),
                    accounts_paid: 0,
                    payouts_cents: 0,
                },
            )
            .await
            .expect_err("not a day");
        assert!(
            matches!(&error, OutboxError::Invalid { source, .. } if source.field == "day"),
            "{day}: {error}"
        );
    }
    drop(conn);
    assert_eq!(world.count("SELECT count(*) AS n FROM outbox").await, 0);
}

#[tokio::test]
async fn the_relay_binds_every_consumer_first_and_keeps_unroutable_events() {
    let world = World::new().await;
    // Before anything is published, the relay declares every consumer's queue
    // from the catalog: events wait there for consumers not yet running.
    world.enqueue(&[account("early")]).await;
    let mut relay = world.relay();
    assert_eq!(world.drain_relay(&mut relay).await, 1);
    let tracker_queue = world.broker.topology().queue("tracker");
    assert_eq!(
        world
            .take(&tracker_queue, 1, Duration::from_secs(5))
            .await
            .len(),
        1
    );

    // If the queues vanish under a running relay, events stay in the outbox...
    let channel = world.channel().await;
    for consumer in ["tracker", "billing", "analytics"] {
        channel
            .queue_delete(
                world.broker.topology().queue(consumer).into(),
                Default::default(),
            )
            .await
            .expect("delete");
    }
    let ids = world.enqueue(&[account("stranded")]).await;
    let error = relay
        .publish_pending()
        .await
        .expect_err("no queue is bound");
    assert!(error.to_string().contains("unroutable"), "{error}");
    assert_eq!(world.count("SELECT count(*) AS n FROM outbox").await, 1);

    // ...and the relay's reconnect declares them again and publishes.
    assert_eq!(world.drain_relay(&mut relay).await, 1);
    let deliveries = world.take(&tracker_queue, 1, Duration::from_secs(5)).await;
    assert_eq!(
        deliveries[0]
            .properties
            .message_id()
            .as_ref()
            .map(ToString::to_string),
        Some(ids[0].to_string())
    );
}

#[tokio::test]
async fn a_standby_relay_does_not_publish_while_another_holds_the_lock() {
    let world = World::new().await;
    let probe = world.probe().await;
    world.enqueue(&[account("one")]).await;
    let mut conn = world.pool.get().await.expect("connection");
    // Hold the relay lock as another replica's step would.
    let standby = conn
        .transaction::<_, diesel::result::Error, _>(async |conn| {
            diesel::sql_query(format!(
                "SELECT pg_advisory_xact_lock({})",
                popug_runtime::advisory_locks::RELAY
            ))
            .execute(conn)
            .await?;
            Ok(world.relay().publish_pending().await.expect("step"))
        })
        .await
        .expect("transaction");
    assert_eq!(standby, Step::Standby);
    drop(conn);
    assert_eq!(world.drain_relay(&mut world.relay()).await, 1);
    assert_eq!(world.take(&probe, 1, Duration::from_secs(5)).await.len(), 1);
}

#[tokio::test]
async fn the_relay_reports_whether_its_steps_reach_the_broker_as_a_gauge() {
    let metrics = popug_runtime::telemetry::metrics_handle();
    let world = World::new().await;
    let mut relay = world.relay();
    world.drain_relay(&mut relay).await;
    let rendered = metrics.render();
    assert!(
        rendered.contains("popug_relay_connected{service=\"test\"} 1"),
        "{rendered}"
    );
    // Nothing listens on port 1: the step fails, and the gauge says so.
    let unreachable = Broker::new(
        "amqp://guest:guest@127.0.0.1:1/%2f".parse().expect("url"),
        world.broker.topology().clone(),
        "bus-test",
    );
    let mut cut_off = Relay::new(
        world.pool.clone(),
        unreachable,
        "test-unreachable",
        RelayConfig {
            batch_size: 100,
            backoff: fast_backoff(),
            poll_interval: Duration::from_millis(200),
            confirm_timeout: Duration::from_secs(2),
        },
    );
    cut_off.publish_pending().await.expect_err("no broker");
    let rendered = metrics.render();
    assert!(
        rendered.contains("popug_relay_connected{service=\"test-unreachable\"} 0"),
        "{rendered}"
    );
}
