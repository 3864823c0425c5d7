//! Black-box tests of the event bus against the real Postgres and RabbitMQ:
//! a fresh database and a fresh broker namespace per test, and no sleeps
//! for correctness (tests drive the relay and the consumer step by step).
//! This file holds the helpers and the tests of publishing and consuming;
//! the modules below hold those of dead letters and of trust on the bus.

mod dead_letter_console;
mod dead_letter_rows;
mod history;
mod private_broker;
mod relay_recovery;
mod retention;
mod trust;

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use diesel_async::{AsyncConnection as _, RunQueryDsl as _};
use lapin::{
    BasicProperties,
    options::{BasicGetOptions, BasicPublishOptions},
};
use popug_bus::{
    Backoff, Broker, Consumer, ConsumerConfig, HandlerError, Handlers, Outbox, OutboxError,
    QueueSpec, Relay, RelayConfig, Step, Topology, dead_letters, envelope, outbox, topology,
};
use popug_proto::pb::popug::events::accounts::v1::{AccountCreated, Role};
use popug_runtime::database::Pool;
use prost::Message as _;
use tokio_util::sync::CancellationToken;

const POSTGRES: &str = "postgres://postgres@127.0.0.1:5432";
const AMQP: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// One test's world: its own database and its own broker namespace.
struct World {
    pool: Pool,
    broker: Broker,
}

impl World {
    async fn new() -> Self {
        Self::on_broker(AMQP).await
    }

    /// A world whose broker is the one at `amqp` (a private node).
    async fn on_broker(amqp: &str) -> Self {
        popug_runtime::telemetry::init(popug_runtime::settings::LogFormat::Pretty);
        let id = uuid::Uuid::new_v4().simple().to_string();
        let topology = Topology::new(Some(format!("test-{}", &id[..12])))
            .with_queue_expiry(Duration::from_secs(60));
        let broker = Broker::new(amqp.parse().expect("url"), topology, "bus-test");
        Self {
            pool: fresh_database().await,
            broker,
        }
    }

    /// The same broker namespace over a database of its own, as a service
    /// that lost its database and starts again.
    async fn with_new_database(&self) -> Self {
        Self {
            pool: fresh_database().await,
            broker: self.broker.clone(),
        }
    }

    fn relay(&self) -> Relay {
        Relay::new(
            self.pool.clone(),
            self.broker.clone(),
            "test",
            RelayConfig {
                batch_size: 100,
                backoff: fast_backoff(),
                poll_interval: Duration::from_millis(200),
                confirm_timeout: Duration::from_secs(2),
            },
        )
    }

    /// A queue bound to every account event, for reading what was published.
    async fn probe(&self) -> String {
        let channel = self.channel().await;
        let spec = QueueSpec::new("probe", vec!["account.#".into()]);
        topology::declare_queue(&channel, self.broker.topology(), &spec)
            .await
            .expect("probe queue");
        self.broker.topology().queue("probe")
    }

    async fn channel(&self) -> lapin::Channel {
        let (connection, channel) = self.broker.confirm_channel().await.expect("broker");
        // The connection closes when its last handle drops; keep it with the channel.
        std::mem::forget(connection);
        channel
    }

    /// Reads messages from `queue` until `count` arrived or `within` passed.
    async fn take(
        &self,
        queue: &str,
        count: usize,
        within: Duration,
    ) -> Vec<lapin::message::Delivery> {
        let deadline = tokio::time::Instant::now() + within;
        let mut taken = Vec::new();
        while taken.len() < count && tokio::time::Instant::now() < deadline {
            let channel = match self.broker.confirm_channel().await {
                Ok((connection, channel)) => {
                    std::mem::forget(connection);
                    channel
                }
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            };
            while taken.len() < count {
                match channel
                    .basic_get(queue.into(), BasicGetOptions { no_ack: true })
                    .await
                {
                    Ok(Some(message)) => taken.push(message.delivery),
                    Ok(None) => tokio::time::sleep(Duration::from_millis(20)).await,
                    Err(_) => break,
                }
                if tokio::time::Instant::now() >= deadline {
                    break;
                }
            }
        }
        taken
    }

    async fn enqueue(&self, events: &[AccountCreated]) -> Vec<uuid::Uuid> {
        let mut conn = self.pool.get().await.expect("connection");
        let outbox = Outbox::new("test");
        conn.transaction::<_, OutboxError, _>(async |conn| outbox.enqueue_all(conn, events).await)
            .await
            .expect("enqueue")
    }

    async fn drain_relay(&self, relay: &mut Relay) -> usize {
        let mut published = 0;
        loop {
            match relay.publish_pending().await.expect("relay step") {
                Step::Published(n) => published += n,
                Step::Idle => return published,
                Step::Standby => panic!("no other relay runs in this test"),
            }
        }
    }

    async fn count(&self, sql: &str) -> i64 {
        #[derive(diesel::QueryableByName)]
        struct Count {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let mut conn = self.pool.get().await.expect("connection");
        diesel::sql_query(sql)
            .get_result::<Count>(&mut conn)
            .await
            .expect(sql)
            .n
    }

    /// Publishes raw bytes as if a producer had.
    async fn publish_raw(&self, routing_key: &str, body: &[u8], message_id: &str) {
        self.publish_with(
            routing_key,
            body,
            BasicProperties::default().with_message_id(message_id.into()),
        )
        .await;
    }

    /// Publishes raw bytes with `properties`, as if a producer had.
    async fn publish_with(&self, routing_key: &str, body: &[u8], properties: BasicProperties) {
        let channel = self.channel().await;
        let confirm = channel
            .basic_publish(
                self.broker.topology().exchange().into(),
                routing_key.into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..BasicPublishOptions::default()
                },
                body,
                properties,
            )
            .await
            .expect("publish")
            .await
            .expect("confirm");
        assert_eq!(
            confirm,
            lapin::Confirmation::Ack(None),
            "{routing_key} was not routed"
        );
    }

    /// A consumer whose queues are declared, so publishing to it routes.
    async fn declared_consumer(&self, handlers: Handlers) -> Consumer {
        let consumer = self.consumer(handlers);
        consumer.declare().await.expect("declare");
        consumer
    }

    /// Publishes `event` in a fresh envelope; returns the envelope's bytes and id.
    async fn publish_account(&self, event: &AccountCreated) -> (String, Vec<u8>) {
        let (event_id, body) = envelope_bytes(event);
        self.publish_raw("account.created.v1", &body, &event_id)
            .await;
        (event_id, body)
    }

    async fn dead_letter_depth(&self) -> u32 {
        dead_letters::queue_depth(&self.broker, "accounts-test")
            .await
            .expect("depth")
    }

    fn consumer(&self, handlers: Handlers) -> Consumer {
        Consumer::new(
            self.pool.clone(),
            self.broker.clone(),
            "accounts-test",
            handlers,
            ConsumerConfig {
                backoff: fast_backoff(),
                ..ConsumerConfig::default()
            },
        )
    }
}

/// A new database with the bus's tables and a table of accounts.
async fn fresh_database() -> Pool {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let database = format!("{POSTGRES}/popug_test_{id}").parse().expect("url");
    let pool = popug_runtime::database::connect(&database, 8, &[&popug_bus::MIGRATIONS])
        .await
        .expect("test database");
    let mut conn = pool.get().await.expect("connection");
    diesel::sql_query("CREATE TABLE accounts (event_id UUID PRIMARY KEY, login TEXT NOT NULL)")
        .execute(&mut conn)
        .await
        .expect("test table");
    drop(conn);
    pool
}

fn fast_backoff() -> Backoff {
    Backoff::new(vec![
        Duration::from_millis(50),
        Duration::from_millis(200),
        Duration::from_millis(500),
    ])
}

fn account(login: &str) -> AccountCreated {
    AccountCreated {
        account_id: uuid::Uuid::new_v4().to_string(),
        login: login.to_owned(),
        name: login.to_owned(),
        email: format!("{login}@popug.inc"),
        role: Role::Worker.into(),
        active: true,
        version: 1,
    }
}

/// `event` in a fresh envelope from its catalogued producer, auth.
fn envelope_bytes(event: &AccountCreated) -> (String, Vec<u8>) {
    let envelope = envelope::wrap(event, "auth", chrono::Utc::now());
    (envelope.event_id.clone(), envelope.encode_to_vec())
}

/// The log lines written on this thread while the value lives (a
/// `#[tokio::test]` runs the consumer steps it drives on its own thread).
struct CapturedLogs {
    buffer: Arc<Mutex<Vec<u8>>>,
    _guard: tracing::subscriber::DefaultGuard,
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl CapturedLogs {
    fn start() -> Self {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = {
            let buffer = Arc::clone(&buffer);
            move || LogWriter(Arc::clone(&buffer))
        };
        let subscriber = tracing_subscriber::fmt()
            .with_writer(writer)
            .with_ansi(false)
            .finish();
        Self {
            buffer,
            _guard: tracing::subscriber::set_default(subscriber),
        }
    }

    /// Every line so far.
    fn lines(&self) -> Vec<String> {
        String::from_utf8_lossy(
            &self
                .buffer
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
        .lines()
        .map(str::to_owned)
        .collect()
    }
}

/// Handlers that record each account in the test table; logins starting with
/// `poison` fail while `broken` is set.
fn recording_handlers(broken: Arc<AtomicBool>, calls: Arc<AtomicUsize>) -> Handlers {
    Handlers::new().on::<AccountCreated, _>(move |conn, meta, event| {
        let broken = Arc::clone(&broken);
        let calls = Arc::clone(&calls);
        Box::pin(async move {
            calls.fetch_add(1, Ordering::SeqCst);
            if event.login.starts_with("poison") && AtomicBool::load(&broken, Ordering::SeqCst) {
                return Err(HandlerError::Failed(format!(
                    "cannot handle {}",
                    event.login
                )));
            }
            diesel::sql_query("INSERT INTO accounts (event_id, login) VALUES ($1, $2)")
                .bind::<diesel::sql_types::Uuid, _>(meta.event_id)
                .bind::<diesel::sql_types::Text, _>(&event.login)
                .execute(conn)
                .await?;
            Ok(())
        })
    })
}

/// Steps `consumer` until `settled` deliveries were settled in all.
async fn consume(consumer: &mut Consumer, settled: usize) -> popug_bus::BatchReport {
    let token = CancellationToken::new();
    let mut total = popug_bus::BatchReport::default();
    while total.settled() < settled {
        let report = tokio::time::timeout(Duration::from_secs(20), consumer.process_batch(&token))
            .await
            .expect("deliveries arrive")
            .expect("batch")
            .expect("not cancelled");
        total.applied += report.applied;
        total.duplicates += report.duplicates;
        total.retried += report.retried;
        total.dead_lettered += report.dead_lettered;
    }
    total
}

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
    let report = consume(&mut consumer, 5).await;
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

    let report = consume(&mut consumer, 3).await;
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
    assert_eq!(consume(&mut consumer, 3).await.dead_lettered, 1);

    broken.store(false, Ordering::SeqCst);
    assert_eq!(
        dead_letters::replay(&world.pool, &world.broker, "accounts-test", None)
            .await
            .expect("replay"),
        1
    );
    let report = consume(&mut consumer, 1).await;
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
    assert_eq!(consume(&mut consumer, 1).await.duplicates, 1);
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
    let report = consume(&mut consumer, 1).await;
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

/// Serves `world`'s ops API, for consumer `accounts-test`, with a guard
/// that lets everyone in, on a free port; it stops when the guard drops.
async fn serve_ops(
    world: &World,
) -> (
    popug_proto::pb::popug::ops::v1::ops_service_client::OpsServiceClient<
        tonic::transport::Channel,
    >,
    tokio_util::sync::DropGuard,
) {
    let ops = popug_bus::Ops::new(
        world.pool.clone(),
        world.broker.clone(),
        Some("accounts-test".into()),
        world.relay().health(),
        Arc::new(|_| Ok(())),
    );
    let settings = popug_runtime::Settings::load(
        popug_runtime::Service::Auth,
        &popug_runtime::Env::from_pairs([("POPUG_AUTH_ADDR", "127.0.0.1:0")]),
    )
    .expect("settings");
    let app = popug_runtime::Application::build(
        &settings,
        popug_runtime::Services::new().with(ops.into_server()),
        Vec::new(),
    )
    .await
    .expect("build");
    let addr = app.local_addr();
    let stop = CancellationToken::new();
    let stopped = stop.clone();
    tokio::spawn(app.run_until_stopped(async move { stopped.cancelled().await }));
    let client = popug_proto::pb::popug::ops::v1::ops_service_client::OpsServiceClient::new(
        grpc_channel(addr).await,
    );
    (client, stop.drop_guard())
}

async fn grpc_channel(addr: std::net::SocketAddr) -> tonic::transport::Channel {
    tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .connect()
        .await
        .expect("connect")
}

/// Lists the services a server announces through reflection `v1` and `v1alpha`.
async fn reflected_services(addr: std::net::SocketAddr) -> (Vec<String>, Vec<String>) {
    // v1 and v1alpha are distinct generated modules of the same shape.
    macro_rules! list_services {
        ($version:ident, $channel:expr) => {{
            use tonic_reflection::pb::$version as reflection;
            let mut client =
                reflection::server_reflection_client::ServerReflectionClient::new($channel);
            let request = reflection::ServerReflectionRequest {
                host: String::new(),
                message_request: Some(
                    reflection::server_reflection_request::MessageRequest::ListServices(
                        String::new(),
                    ),
                ),
            };
            let mut responses = client
                .server_reflection_info(tokio_stream::iter([request]))
                .await
                .expect(stringify!(reflection $version))
                .into_inner();
            match responses
                .message()
                .await
                .expect("answer")
                .and_then(|r| r.message_response)
            {
                Some(
                    reflection::server_reflection_response::MessageResponse::ListServicesResponse(
                        list,
                    ),
                ) => list.service.into_iter().map(|s| s.name).collect(),
                other => panic!("unexpected answer {other:?}"),
            }
        }};
    }
    let channel = grpc_channel(addr).await;
    (
        list_services!(v1, channel.clone()),
        list_services!(v1alpha, channel),
    )
}

#[tokio::test]
async fn the_ops_api_shows_the_backlog_and_dead_letters_and_replays_them_over_grpc() {
    use popug_proto::pb::popug::ops::v1::{
        GetOutboxStatusRequest, ListDeadLettersRequest, ReplayDeadLettersRequest,
        ops_service_client::OpsServiceClient,
    };
    let world = World::new().await;
    let broken = Arc::new(AtomicBool::new(true));
    let mut consumer = world
        .declared_consumer(recording_handlers(Arc::clone(&broken), Arc::default()))
        .await;
    let (event_id, _) = world.publish_account(&account("poison-over-grpc")).await;
    assert_eq!(consume(&mut consumer, 3).await.dead_lettered, 1);
    world
        .enqueue(&[account("waiting1"), account("waiting2")])
        .await;

    let admin_only: popug_bus::Guard =
        Arc::new(|_| Err(tonic::Status::permission_denied("admins only")));
    let ops = popug_bus::Ops::new(
        world.pool.clone(),
        world.broker.clone(),
        Some("accounts-test".into()),
        world.relay().health(),
        admin_only,
    );
    let services = popug_runtime::Services::new().with(ops.into_server());
    let settings = popug_runtime::Settings::load(
        popug_runtime::Service::Auth,
        &popug_runtime::Env::from_pairs([("POPUG_AUTH_ADDR", "127.0.0.1:0")]),
    )
    .expect("settings");
    let app = popug_runtime::Application::build(&settings, services, Vec::new())
        .await
        .expect("build");
    let addr = app.local_addr();
    let stop = CancellationToken::new();
    let stopped = stop.clone();
    let server = tokio::spawn(app.run_until_stopped(async move { stopped.cancelled().await }));

    let mut client = OpsServiceClient::connect(format!("http://{addr}"))
        .await
        .expect("connect");
    let denied = client
        .get_outbox_status(GetOutboxStatusRequest {})
        .await
        .expect_err("guarded");
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);

    // The guard sees only what a server-side layer (token verification) put
    // into the request; serve the same API with an open guard to use it.
    let open_ops = popug_bus::Ops::new(
        world.pool.clone(),
        world.broker.clone(),
        Some("accounts-test".into()),
        world.relay().health(),
        Arc::new(|_| Ok(())),
    );
    let open_app = popug_runtime::Application::build(
        &settings,
        popug_runtime::Services::new().with(open_ops.into_server()),
        Vec::new(),
    )
    .await
    .expect("build");
    let open_addr = open_app.local_addr();
    let open_server = tokio::spawn(open_app.run_until_stopped({
        let stopped = stop.clone();
        async move { stopped.cancelled().await }
    }));
    let mut client = OpsServiceClient::connect(format!("http://{open_addr}"))
        .await
        .expect("connect");

    let status = client
        .get_outbox_status(GetOutboxStatusRequest {})
        .await
        .expect("status")
        .into_inner();
    assert_eq!(status.pending, 2);
    assert!(status.oldest_pending_at.is_some());

    let listed = client
        .list_dead_letters(ListDeadLettersRequest {
            page_size: 0,
            include_resolved: false,
            ..ListDeadLettersRequest::default()
        })
        .await
        .expect("list")
        .into_inner();
    assert_eq!((listed.unresolved, listed.dead_letter_queue_depth), (1, 1));
    assert_eq!(listed.dead_letters[0].event_id, event_id);
    assert!(
        listed.dead_letters[0]
            .error
            .contains("cannot handle poison-over-grpc")
    );
    let too_many = client
        .list_dead_letters(ListDeadLettersRequest {
            page_size: 5000,
            include_resolved: false,
            ..ListDeadLettersRequest::default()
        })
        .await
        .expect_err("page too large");
    assert_eq!(too_many.code(), tonic::Code::InvalidArgument);
    assert!(too_many.message().contains("page_size"));

    broken.store(false, Ordering::SeqCst);
    let replayed = client
        .replay_dead_letters(ReplayDeadLettersRequest {
            limit: 0,
            ..ReplayDeadLettersRequest::default()
        })
        .await
        .expect("replay");
    assert_eq!(replayed.into_inner().replayed, 1);
    assert_eq!(consume(&mut consumer, 1).await.applied, 1);
    let listed = client
        .list_dead_letters(ListDeadLettersRequest {
            page_size: 10,
            include_resolved: true,
            ..ListDeadLettersRequest::default()
        })
        .await
        .expect("list")
        .into_inner();
    assert_eq!((listed.unresolved, listed.dead_letter_queue_depth), (0, 0));
    assert!(listed.dead_letters[0].resolved_at.is_some());

    // Health and reflection come with every server.
    let mut health = tonic_health::pb::health_client::HealthClient::new(grpc_channel(addr).await);
    let serving = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "popug.ops.v1.OpsService".into(),
        })
        .await
        .expect("health")
        .into_inner();
    assert_eq!(
        serving.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    let (v1, v1alpha) = reflected_services(addr).await;
    for names in [&v1, &v1alpha] {
        for expected in ["popug.ops.v1.OpsService", "grpc.health.v1.Health"] {
            assert!(
                names.iter().any(|name| name == expected),
                "{expected} missing from {names:?}"
            );
        }
    }

    // Graceful shutdown: both servers return cleanly.
    stop.cancel();
    server.await.expect("join").expect("clean stop");
    open_server.await.expect("join").expect("clean stop");
}

#[tokio::test]
async fn replicas_starting_together_create_and_migrate_their_database_once() {
    let url: url::Url = format!("{POSTGRES}/popug_test_{}", uuid::Uuid::new_v4().simple())
        .parse()
        .expect("url");
    let connect = || popug_runtime::database::connect(&url, 2, &[&popug_bus::MIGRATIONS]);
    let (first, second) = tokio::join!(connect(), connect());
    let pool = first.expect("first replica");
    second.expect("second replica");
    let mut conn = pool.get().await.expect("connection");
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let applied = diesel::sql_query("SELECT count(*) AS n FROM __diesel_schema_migrations")
        .get_result::<Count>(&mut conn)
        .await
        .expect("migrations table");
    // Each of the bus's migrations once.
    let embedded =
        diesel::migration::MigrationSource::<diesel::pg::Pg>::migrations(&popug_bus::MIGRATIONS)
            .expect("embedded migrations")
            .len();
    assert_eq!(applied.n, i64::try_from(embedded).expect("a few"));
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
    let report = consume(&mut consumer, 5).await;
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
