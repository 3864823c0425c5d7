//! Consuming: duplicates and poison messages, dead letters on first
//! delivery and their replay, lost database connections, competing workers,
//! lingering steps.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use diesel_async::RunQueryDsl as _;
use popug_bus::{Consumer, ConsumerConfig, Handlers, dead_letters, envelope};
use popug_proto::pb::popug::events::accounts::v1::AccountCreated;
use popug_testing::consume_any;
use prost::Message as _;
use tokio_util::sync::CancellationToken;

use crate::helpers::{World, account, envelope_bytes, fast_backoff, recording_handlers};

#[tokio::test]
async fn a_duplicate_event_changes_nothing_even_when_delivered_concurrently() {
    let world = World::new().await;
    let calls = Arc::new(AtomicUsize::new(0));
    let handlers = || recording_handlers(Arc::new(AtomicBool::new(false)), Arc::clone(&calls));
    let first = world.consumer(handlers());
    let second = world.consumer(handlers());
    first.declare().await.expect("declare");
    let (event_id, body) = envelope_bytes(&account("kesha"));
    for _ in 0..6 {
        world
            .publish_raw("account.created.v1", &body, &event_id)
            .await;
    }
    // Two competing consumers on one queue, as two replicas would be, run
    // until all six deliveries are settled between them.
    let settled = Arc::new(AtomicUsize::new(0));
    let token = CancellationToken::new();
    let run = |mut consumer: Consumer| {
        let settled = Arc::clone(&settled);
        let token = token.clone();
        tokio::spawn(async move {
            let mut total = popug_bus::BatchReport::default();
            while let Some(report) = consumer.process_batch(&token).await.expect("batch") {
                total.applied += report.applied;
                total.duplicates += report.duplicates;
                total.dead_lettered += report.dead_lettered;
                if settled.fetch_add(report.settled(), Ordering::SeqCst) + report.settled() >= 6 {
                    token.cancel();
                }
            }
            total
        })
    };
    let (a, b) = (run(first), run(second));
    let (a, b) = tokio::time::timeout(Duration::from_secs(20), async { (a.await, b.await) })
        .await
        .expect("six deliveries settle");
    let (a, b) = (a.expect("first consumer"), b.expect("second consumer"));
    assert_eq!(a.applied + b.applied, 1);
    assert_eq!(a.duplicates + b.duplicates, 5);
    assert_eq!(a.dead_lettered + b.dead_lettered, 0);
    assert_eq!(world.count("SELECT count(*) AS n FROM accounts").await, 1);
    assert_eq!(world.count("SELECT count(*) AS n FROM inbox").await, 1);
}

#[tokio::test]
async fn a_poison_message_is_dead_lettered_within_the_limit_while_others_flow() {
    let world = World::new().await;
    let broken = Arc::new(AtomicBool::new(true));
    let calls = Arc::new(AtomicUsize::new(0));
    let mut consumer = world
        .declared_consumer(recording_handlers(Arc::clone(&broken), calls))
        .await;
    for login in ["before", "poison", "after"] {
        world.publish_account(&account(login)).await;
    }
    // The poison message is tried `attempts` (3) times: 2 retries, then the DLQ.
    let report = consume_any(&mut consumer, 5).await;
    assert_eq!(
        (report.applied, report.retried, report.dead_lettered),
        (2, 2, 1)
    );
    assert_eq!(world.count("SELECT count(*) AS n FROM accounts").await, 2);
    assert_eq!(
        world
            .count("SELECT count(*) AS n FROM failed_events WHERE consumer = 'accounts-test' AND error LIKE '%cannot handle poison%' AND queue LIKE '%accounts-test.events' AND event_id IS NOT NULL AND failures = 1")
            .await,
        1
    );
    assert_eq!(world.dead_letter_depth().await, 1);
}

#[tokio::test]
async fn malformed_unknown_and_invalid_messages_are_dead_lettered_on_first_delivery() {
    let world = World::new().await;
    let mut consumer = world
        .declared_consumer(recording_handlers(Arc::default(), Arc::default()))
        .await;
    world
        .publish_raw("account.created.v1", b"\xff\x00 not protobuf", "garbage")
        .await;
    let mut unknown = envelope::wrap(&account("x"), "test", chrono::Utc::now());
    if let Some(payload) = unknown.payload.as_mut() {
        payload.type_url = "type.googleapis.com/popug.events.accounts.v9.AccountCreated".into();
    }
    world
        .publish_raw(
            "account.created.v1",
            &unknown.encode_to_vec(),
            &unknown.event_id,
        )
        .await;
    let mut invalid = account("bad");
    invalid.account_id = "42".into();
    world.publish_account(&invalid).await;

    let report = consume_any(&mut consumer, 3).await;
    assert_eq!(
        (report.applied, report.retried, report.dead_lettered),
        (0, 0, 3)
    );
    assert_eq!(world.count("SELECT count(*) AS n FROM failed_events WHERE event_id IS NULL AND error LIKE '%not a popug.events.v1.Envelope%'").await, 1);
    assert_eq!(world.count("SELECT count(*) AS n FROM failed_events WHERE error LIKE '%unknown type or version%'").await, 1);
    assert_eq!(
        world
            .count("SELECT count(*) AS n FROM failed_events WHERE error LIKE '%`account_id`%'")
            .await,
        1
    );
    assert_eq!(world.dead_letter_depth().await, 3);
}

#[tokio::test]
async fn a_replayed_dead_letter_is_applied_once_after_the_fix() {
    let world = World::new().await;
    let broken = Arc::new(AtomicBool::new(true));
    let mut consumer = world
        .declared_consumer(recording_handlers(Arc::clone(&broken), Arc::default()))
        .await;
    let (event_id, body) = world.publish_account(&account("poison-then-fixed")).await;
    assert_eq!(consume_any(&mut consumer, 3).await.dead_lettered, 1);

    broken.store(false, Ordering::SeqCst);
    assert_eq!(
        dead_letters::replay(&world.pool, &world.broker, "accounts-test", None)
            .await
            .expect("replay"),
        1
    );
    let report = consume_any(&mut consumer, 1).await;
    assert_eq!(report.applied, 1);
    assert_eq!(world.count("SELECT count(*) AS n FROM accounts").await, 1);
    assert_eq!(
        world
            .count("SELECT count(*) AS n FROM failed_events WHERE resolved_at IS NOT NULL")
            .await,
        1
    );
    assert_eq!(world.dead_letter_depth().await, 0);
    // Nothing left to replay; replaying again moves nothing and applies nothing.
    assert_eq!(
        dead_letters::replay(&world.pool, &world.broker, "accounts-test", None)
            .await
            .expect("replay"),
        0
    );
    world
        .publish_raw("account.created.v1", &body, &event_id)
        .await;
    assert_eq!(consume_any(&mut consumer, 1).await.duplicates, 1);
    assert_eq!(world.count("SELECT count(*) AS n FROM accounts").await, 1);
}

#[tokio::test]
async fn a_lost_database_connection_is_retried_without_spending_attempts() {
    let world = World::new().await;
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&calls);
    let handlers = Handlers::new().on::<AccountCreated, _>(move |conn, meta, event| {
        let seen = Arc::clone(&seen);
        Box::pin(async move {
            if seen.fetch_add(1, Ordering::SeqCst) == 0 {
                // The database drops our connection mid-transaction.
                diesel::sql_query("SELECT pg_terminate_backend(pg_backend_pid())")
                    .execute(conn)
                    .await?;
            }
            diesel::sql_query("INSERT INTO accounts (event_id, login) VALUES ($1, $2)")
                .bind::<diesel::sql_types::Uuid, _>(meta.event_id)
                .bind::<diesel::sql_types::Text, _>(&event.login)
                .execute(conn)
                .await?;
            Ok(())
        })
    });
    let mut consumer = world.declared_consumer(handlers).await;
    world.publish_account(&account("steady")).await;
    let report = consume_any(&mut consumer, 1).await;
    assert_eq!(
        (report.applied, report.retried, report.dead_lettered),
        (1, 0, 0)
    );
    assert_eq!(AtomicUsize::load(&calls, Ordering::SeqCst), 2);
    assert_eq!(world.count("SELECT count(*) AS n FROM accounts").await, 1);
    assert_eq!(
        world.count("SELECT count(*) AS n FROM failed_events").await,
        0
    );
}

#[tokio::test]
async fn a_running_consumer_applies_what_arrives_and_stops_when_cancelled() {
    let world = World::new().await;
    let consumer = world
        .declared_consumer(recording_handlers(Arc::default(), Arc::default()))
        .await;
    let token = CancellationToken::new();
    let running = tokio::spawn(consumer.run(token.clone()));
    for i in 0..40 {
        world.publish_account(&account(&format!("live{i}"))).await;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while world.count("SELECT count(*) AS n FROM accounts").await < 40 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "events were not applied in time"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    token.cancel();
    tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("every worker stops")
        .expect("no worker panicked");
    assert_eq!(world.count("SELECT count(*) AS n FROM inbox").await, 40);
}

#[tokio::test]
async fn a_handler_that_swallows_a_database_error_does_not_get_its_event_acked() {
    let world = World::new().await;
    let taken = uuid::Uuid::new_v4();
    let mut conn = world.pool.get().await.expect("connection");
    diesel::sql_query("INSERT INTO accounts (event_id, login) VALUES ($1, 'taken')")
        .bind::<diesel::sql_types::Uuid, _>(taken)
        .execute(&mut conn)
        .await
        .expect("seed");
    drop(conn);
    let handlers = Handlers::new().on::<AccountCreated, _>(move |conn, meta, event| {
        Box::pin(async move {
            // "swallow" collides with the seeded row, and the handler hides it.
            let id = if event.login == "swallow" {
                taken
            } else {
                meta.event_id
            };
            let inserted =
                diesel::sql_query("INSERT INTO accounts (event_id, login) VALUES ($1, $2)")
                    .bind::<diesel::sql_types::Uuid, _>(id)
                    .bind::<diesel::sql_types::Text, _>(&event.login)
                    .execute(conn)
                    .await;
            drop(inserted);
            Ok(())
        })
    });
    let mut consumer = world.declared_consumer(handlers).await;
    for login in ["fine1", "swallow", "fine2"] {
        world.publish_account(&account(login)).await;
    }
    let report = consume_any(&mut consumer, 5).await;
    assert_eq!(
        (report.applied, report.retried, report.dead_lettered),
        (2, 2, 1)
    );
    assert_eq!(world.count("SELECT count(*) AS n FROM accounts").await, 3);
    assert_eq!(world.count("SELECT count(*) AS n FROM inbox").await, 2);
    assert_eq!(
        world
            .count("SELECT count(*) AS n FROM failed_events WHERE error LIKE '%left the transaction unusable%'")
            .await,
        1
    );
}

/// Handlers that move two counters per event, named by the login `x,y`, in
/// that order, with a pause between: competing transactions taking them in
/// different orders would deadlock, unless the lock keys order them.
fn crossing_handlers() -> Handlers {
    Handlers::new()
        .on::<AccountCreated, _>(|conn, _, event| {
            Box::pin(async move {
                for (step, name) in event.login.split(',').enumerate() {
                    if step > 0 {
                        diesel::sql_query("SELECT pg_sleep(0.002)")
                            .execute(conn)
                            .await?;
                    }
                    diesel::sql_query("UPDATE counters SET n = n + 1 WHERE name = $1")
                        .bind::<diesel::sql_types::Text, _>(name)
                        .execute(conn)
                        .await?;
                }
                Ok(())
            })
        })
        .locking::<AccountCreated, _>(|event| event.login.split(',').map(str::to_owned).collect())
}

#[tokio::test]
async fn competing_workers_take_the_lock_keys_in_one_order_and_never_deadlock() {
    let world = World::new().await;
    let mut conn = world.pool.get().await.expect("connection");
    diesel::sql_query(
        "CREATE TABLE counters AS SELECT 'c' || i AS name, 0 AS n FROM generate_series(0, 9) AS i",
    )
    .execute(&mut conn)
    .await
    .expect("counters");
    diesel::sql_query("ALTER TABLE counters ADD PRIMARY KEY (name)")
        .execute(&mut conn)
        .await
        .expect("key");
    drop(conn);
    // Two replicas of two workers each, on one queue.
    let consumers: Vec<Consumer> = (0..2)
        .map(|_| {
            Consumer::new(
                world.pool.clone(),
                world.broker.clone(),
                "accounts-test",
                crossing_handlers(),
                ConsumerConfig {
                    // Small enough that every worker gets a share.
                    prefetch: 16,
                    batch_size: 16,
                    workers: 2,
                    backoff: fast_backoff(),
                    ..ConsumerConfig::default()
                },
            )
        })
        .collect();
    consumers[0].declare().await.expect("declare");
    // Each pair of counters, both ways round.
    let mut events: i64 = 0;
    for _ in 0..2 {
        for a in 0..10 {
            for b in (0..10).filter(|&b| b != a) {
                let login = format!("c{a},c{b}");
                world.publish_account(&account(&login)).await;
                events += 1;
            }
        }
    }
    let stop = CancellationToken::new();
    let running: Vec<_> = consumers
        .into_iter()
        .map(|consumer| tokio::spawn(consumer.run(stop.clone())))
        .collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while world
        .count("SELECT sum(n)::bigint AS n FROM counters")
        .await
        < 2 * events
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the events are applied"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.cancel();
    for consumer in running {
        consumer.await.expect("consumer");
    }
    // Postgres reports its statistics within a second or so.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        world
            .count("SELECT deadlocks AS n FROM pg_stat_database WHERE datname = current_database()")
            .await,
        0,
        "deadlocks between the competing workers"
    );
    assert_eq!(world.count("SELECT count(*) AS n FROM inbox").await, events);
}

#[tokio::test]
async fn partitioned_workers_settle_every_delivery_once_a_poison_one_included() {
    let world = World::new().await;
    let broken = Arc::new(AtomicBool::new(true));
    let calls = Arc::new(AtomicUsize::new(0));
    // Partitions of one subscription, by lock key, sharing its channel and
    // so its acks.
    let handlers = recording_handlers(broken, calls)
        .locking::<AccountCreated, _>(|event| vec![format!("login:{}", event.login)]);
    let consumer = Consumer::new(
        world.pool.clone(),
        world.broker.clone(),
        "accounts-test",
        handlers,
        ConsumerConfig {
            prefetch: 8,
            batch_size: 4,
            workers: 4,
            partitioned: true,
            backoff: fast_backoff(),
            ..ConsumerConfig::default()
        },
    );
    consumer.declare().await.expect("declare");
    let logins: Vec<String> = (0..80).map(|i| format!("popug-{i}")).collect();
    for (i, login) in logins.iter().enumerate() {
        world.publish_account(&account(login)).await;
        if i == 40 {
            world.publish_account(&account("poison")).await;
        }
    }
    let stop = CancellationToken::new();
    let running = tokio::spawn(consumer.run(stop.clone()));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while world.count("SELECT count(*) AS n FROM accounts").await < 80 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the events are applied"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    world.await_dead_letter_depth(1).await;
    stop.cancel();
    running.await.expect("consumer");

    assert_eq!(
        world
            .count("SELECT count(DISTINCT login) AS n FROM accounts")
            .await,
        80
    );
    assert_eq!(world.count("SELECT count(*) AS n FROM inbox").await, 80);
    // With the consumer gone, any delivery it had not acked would be back in
    // the queue: every one was settled, and none before its commit.
    let queue = world.broker.topology().queue("accounts-test");
    let left = world
        .channel()
        .await
        .queue_declare(
            queue.as_str().into(),
            lapin::options::QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            lapin::types::FieldTable::default(),
        )
        .await
        .expect("the queue")
        .message_count();
    assert_eq!(left, 0, "deliveries left unsettled");
    assert_eq!(world.dead_letter_depth().await, 1);
}

/// A lingering step waits for more deliveries after its first, up to its
/// linger, and applies what came in one batch; without a linger it takes
/// only what is ready.
#[tokio::test]
async fn a_lingering_step_gathers_what_arrives_within_its_linger_into_one_batch() {
    let world = World::new().await;
    let calls = Arc::new(AtomicUsize::new(0));
    let handlers = || recording_handlers(Arc::new(AtomicBool::new(false)), Arc::clone(&calls));
    let consumer_lingering = |linger| {
        Consumer::new(
            world.pool.clone(),
            world.broker.clone(),
            "accounts-test",
            handlers(),
            ConsumerConfig {
                backoff: fast_backoff(),
                linger,
                ..ConsumerConfig::default()
            },
        )
    };
    for (linger, batches) in [(Duration::ZERO, 2), (Duration::from_secs(2), 1)] {
        let mut consumer = consumer_lingering(linger);
        let token = CancellationToken::new();
        consumer.declare().await.expect("declare");
        world.publish_account(&account("first")).await;
        let stepping = tokio::spawn(async move {
            let mut sizes = Vec::new();
            while sizes.iter().sum::<usize>() < 2 {
                let report = consumer.process_batch(&token).await.expect("batch");
                sizes.push(report.expect("not cancelled").settled());
            }
            sizes
        });
        // The second comes well after the first, and well within the linger.
        tokio::time::sleep(Duration::from_millis(700)).await;
        world.publish_account(&account("second")).await;
        let sizes = tokio::time::timeout(Duration::from_secs(20), stepping)
            .await
            .expect("both settle")
            .expect("stepping");
        assert_eq!(sizes.len(), batches, "linger {linger:?}: batches {sizes:?}");
    }
    assert_eq!(AtomicUsize::load(&calls, Ordering::SeqCst), 4);
}
