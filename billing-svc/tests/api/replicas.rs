//! Two replicas on one database and one queue under load: every event
//! booked once, the day closed once.

use std::time::Duration;

use lapin::options::BasicGetOptions;
use popug_bus::{Topology, topology};
use popug_proto::{events::Event, pb::popug::events::tasks::v1 as tasks_v1};
use popug_runtime::Env;
use popug_testing::tracker_events::{assigned, completed, created};
use prost::Message as _;
use tokio_util::sync::CancellationToken;

use popug_testing::Probe;

use crate::helpers::BILLING_EVENTS;

/// Takes what waits in the probe queue: each message id once into
/// `published`, counting the ones seen before in `duplicates`.
async fn drain_probe(
    probe: &lapin::Channel,
    queue: &str,
    published: &mut std::collections::HashSet<String>,
    duplicates: &mut usize,
) {
    while let Some(message) = probe
        .basic_get(queue.into(), BasicGetOptions { no_ack: true })
        .await
        .expect("get")
    {
        let id = message.delivery.properties.message_id().clone();
        if !published.insert(id.expect("a message id").to_string()) {
            *duplicates += 1;
        }
    }
}

/// Two billing-svc instances on one database and one queue, as two
/// Kubernetes replicas run: their consumers compete for 2,400 task events
/// while both try to close the day; their relays share one outbox.
#[tokio::test]
async fn two_replicas_under_load_book_every_event_once_and_close_the_day_once() {
    popug_runtime::telemetry::init(popug_runtime::settings::LogFormat::Pretty);
    let namespace = popug_testing::namespace();
    let test_database = popug_testing::TestDatabase::fresh();
    let database = test_database.url().to_owned();
    let mail =
        std::env::temp_dir().join(format!("popug-replicas-{}", uuid::Uuid::new_v4().simple()));
    let mail = mail.to_string_lossy().into_owned();
    let settings = billing_svc::BillingSettings::load(&Env::from_pairs([
        ("POPUG_BILLING_DATABASE_URL", database.as_str()),
        ("POPUG_NAMESPACE", namespace.as_str()),
        ("POPUG_QUEUE_TTL", popug_testing::QUEUE_TTL),
        ("POPUG_BILLING_ADDR", "127.0.0.1:0"),
        ("POPUG_MAIL_DIR", mail.as_str()),
        ("POPUG_BILLING_AUTO_CLOSE", "false"),
        // Eight competing workers over two replicas, in small batches:
        // many batches book into the same accounts at once.
        ("POPUG_BILLING_CONSUMER_WORKERS", "4"),
        ("POPUG_BILLING_BATCH_SIZE", "32"),
    ]))
    .expect("settings");
    let topology = Topology::from_settings(&settings.common);
    let broker = popug_bus::Broker::new(settings.common.amqp_url.clone(), topology.clone(), "test");
    let (connection, channel) = broker.confirm_channel().await.expect("broker");
    topology::declare_catalog(&channel, &topology)
        .await
        .expect("topology");
    let probe = Probe::declare(
        settings.common.amqp_url.as_str(),
        &topology,
        &BILLING_EVENTS,
    )
    .await;
    let stop = CancellationToken::new();
    let mut ledgers = Vec::new();
    for _ in 0..2 {
        let replica = billing_svc::Application::build(settings.clone())
            .await
            .expect("a replica starts");
        ledgers.push(replica.ledger().clone());
        let stopping = stop.clone();
        tokio::spawn(replica.run_until_stopped(async move { stopping.cancelled().await }));
    }
    let _stop = stop.drop_guard();

    // Yesterday's work: 400 tasks for 20 workers, each created, assigned,
    // reassigned once and completed; 2,400 events, 1,200 entries to book.
    let yesterday = chrono::Utc::now() - chrono::Duration::days(1);
    let day = popug_runtime::calendar::day_of(yesterday, popug_runtime::Timezone::UTC);
    let workers: Vec<uuid::Uuid> = (0..20).map(|_| uuid::Uuid::new_v4()).collect();
    let mut confirms = Vec::new();
    for (number, task) in (0..400).map(|n| (n, uuid::Uuid::new_v4())) {
        let first = workers[number % workers.len()];
        let second = workers[(number + 7) % workers.len()];
        let events = [
            (
                <popug_proto::pb::popug::events::tasks::v2::TaskCreated as Event>::ROUTING_KEY,
                popug_bus::envelope::wrap(&created(task, number), "tracker", yesterday)
                    .encode_to_vec(),
            ),
            (
                tasks_v1::TaskAssigned::ROUTING_KEY,
                popug_bus::envelope::wrap(&assigned(task, first, None), "tracker", yesterday)
                    .encode_to_vec(),
            ),
            (
                tasks_v1::TaskAssigned::ROUTING_KEY,
                popug_bus::envelope::wrap(
                    &assigned(task, second, Some(first)),
                    "tracker",
                    yesterday,
                )
                .encode_to_vec(),
            ),
            (
                tasks_v1::TaskCompleted::ROUTING_KEY,
                popug_bus::envelope::wrap(&completed(task, second), "tracker", yesterday)
                    .encode_to_vec(),
            ),
        ];
        for (routing_key, body) in events {
            let confirm = channel
                .basic_publish(
                    topology.exchange().into(),
                    routing_key.into(),
                    lapin::options::BasicPublishOptions::default(),
                    &body,
                    lapin::BasicProperties::default().with_delivery_mode(2),
                )
                .await
                .expect("publish");
            confirms.push(confirm);
        }
        // Both replicas try to close yesterday while the load is on.
        if number == 200 {
            let (a, b) = tokio::join!(ledgers[0].close_day(day), ledgers[1].close_day(day));
            let (a, b) = (a.expect("close"), b.expect("close"));
            assert!(
                a.already_closed != b.already_closed,
                "exactly one replica closes: {a:?} {b:?}"
            );
            assert_eq!(a.payouts_cents, b.payouts_cents);
        }
    }
    for confirm in confirms {
        confirm.await.expect("confirmed");
    }
    connection.close(200, "published".into()).await.ok();

    // Every fee and reward is booked once, by whichever replica took it.
    let pool = ledgers[0].pool().clone();
    let queue = topology.queue("probe");
    let mut published = std::collections::HashSet::new();
    let mut duplicates = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        // Reading the probe as it fills also keeps it from expiring.
        drain_probe(probe.channel(), &queue, &mut published, &mut duplicates).await;
        let mut conn = pool.get().await.expect("connection");
        let booked: i64 = diesel_async::RunQueryDsl::get_result(
            diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
                "(SELECT count(*) FROM entries WHERE kind <> 'payout')",
            )),
            &mut conn,
        )
        .await
        .expect("count");
        if booked == 1_200 {
            break;
        }
        assert!(booked < 1_200, "{booked} entries for 1,200 events");
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {booked} of 1,200 booked"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let again = ledgers[1].close_day(day).await.expect("close");
    assert!(again.already_closed, "a closed day stays closed");
    let violations = ledgers[0].violations().await.expect("invariants");
    assert!(violations.is_empty(), "{violations:#?}");

    // The two relays shared one outbox: each event billing committed (a
    // price per task, a transaction per entry, a payment per payout, one
    // closed cycle) reached the broker exactly once.
    let mut conn = pool.get().await.expect("connection");
    let committed: i64 = diesel_async::RunQueryDsl::get_result(
        diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
            "400 + (SELECT count(*) FROM entries) + (SELECT count(*) FROM payouts) \
             + (SELECT count(*) FROM day_closes)",
        )),
        &mut conn,
    )
    .await
    .expect("count");
    let committed = usize::try_from(committed).expect("a count");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while published.len() + duplicates < committed && tokio::time::Instant::now() < deadline {
        drain_probe(probe.channel(), &queue, &mut published, &mut duplicates).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(duplicates, 0, "events published twice by the two relays");
    assert_eq!(published.len(), committed, "events committed vs published");
    // Nothing beyond them arrives either.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let extra = probe
        .channel()
        .basic_get(queue.as_str().into(), BasicGetOptions { no_ack: true })
        .await
        .expect("get");
    assert!(extra.is_none(), "an event beyond the {committed} committed");
}
