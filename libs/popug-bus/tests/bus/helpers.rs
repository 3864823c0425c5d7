//! The harness: one test's world (its own database and broker namespace),
//! events and handlers to publish and consume, and captured logs.

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
    QueueSpec, Relay, RelayConfig, Step, Topology, dead_letters, envelope, topology,
};
use popug_proto::pb::popug::events::{
    accounts::v1::{AccountCreated, Role},
    tasks::v1::{TaskAssigned, TaskCompleted},
    v1::Envelope,
};
use popug_runtime::database::Pool;
use popug_testing::TestDatabase;
use prost::Message as _;
use tokio_util::sync::CancellationToken;

pub(crate) const AMQP: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// One test's world: its own database and its own broker namespace.
pub(crate) struct World {
    pub(crate) pool: Pool,
    pub(crate) broker: Broker,
    /// Its database, dropped with it.
    pub(crate) _database: TestDatabase,
}

impl World {
    pub(crate) async fn new() -> Self {
        Self::on_broker(AMQP).await
    }

    /// A world whose broker is the one at `amqp` (a private node).
    pub(crate) async fn on_broker(amqp: &str) -> Self {
        popug_runtime::telemetry::init(popug_runtime::settings::LogFormat::Pretty);
        let id = uuid::Uuid::new_v4().simple().to_string();
        let topology = Topology::new(Some(format!("test-{}", &id[..12])))
            .with_queue_expiry(Duration::from_secs(60));
        let broker = Broker::new(amqp.parse().expect("url"), topology, "bus-test");
        let (pool, database) = fresh_database().await;
        Self {
            pool,
            broker,
            _database: database,
        }
    }

    /// The same broker namespace over a database of its own, as a service
    /// that lost its database and starts again.
    pub(crate) async fn with_new_database(&self) -> Self {
        let (pool, database) = fresh_database().await;
        Self {
            pool,
            broker: self.broker.clone(),
            _database: database,
        }
    }

    /// The ops API over this world, for consumer `accounts-test`, letting
    /// everyone in.
    pub(crate) fn ops(&self) -> popug_bus::Ops {
        popug_bus::Ops::new(
            self.pool.clone(),
            self.broker.clone(),
            Some("accounts-test".into()),
            self.relay().health(),
            Arc::new(|_| Ok(())),
        )
    }

    pub(crate) fn relay(&self) -> Relay {
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
    pub(crate) async fn probe(&self) -> String {
        let channel = self.channel().await;
        let spec = QueueSpec::new("probe", vec!["account.#".into()]);
        topology::declare_queue(&channel, self.broker.topology(), &spec)
            .await
            .expect("probe queue");
        self.broker.topology().queue("probe")
    }

    pub(crate) async fn channel(&self) -> lapin::Channel {
        let (connection, channel) = self.broker.confirm_channel().await.expect("broker");
        // The connection closes when its last handle drops; keep it with the channel.
        std::mem::forget(connection);
        channel
    }

    /// Reads messages from `queue` until `count` arrived or `within` passed.
    pub(crate) async fn take(
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

    pub(crate) async fn enqueue(&self, events: &[AccountCreated]) -> Vec<uuid::Uuid> {
        let mut conn = self.pool.get().await.expect("connection");
        let outbox = Outbox::new("test");
        conn.transaction::<_, OutboxError, _>(async |conn| outbox.enqueue_all(conn, events).await)
            .await
            .expect("enqueue")
    }

    pub(crate) async fn drain_relay(&self, relay: &mut Relay) -> usize {
        let mut published = 0;
        loop {
            match relay.publish_pending().await.expect("relay step") {
                Step::Published(n) => published += n,
                Step::Idle => return published,
                Step::Standby => panic!("no other relay runs in this test"),
            }
        }
    }

    pub(crate) async fn count(&self, sql: &str) -> i64 {
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
    pub(crate) async fn publish_raw(&self, routing_key: &str, body: &[u8], message_id: &str) {
        self.publish_with(
            routing_key,
            body,
            BasicProperties::default().with_message_id(message_id.into()),
        )
        .await;
    }

    /// Publishes raw bytes with `properties`, as if a producer had.
    pub(crate) async fn publish_with(
        &self,
        routing_key: &str,
        body: &[u8],
        properties: BasicProperties,
    ) {
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
    pub(crate) async fn declared_consumer(&self, handlers: Handlers) -> Consumer {
        let consumer = self.consumer(handlers);
        consumer.declare().await.expect("declare");
        consumer
    }

    /// Publishes `event` in a fresh envelope; returns the envelope's bytes and id.
    pub(crate) async fn publish_account(&self, event: &AccountCreated) -> (String, Vec<u8>) {
        let (event_id, body) = envelope_bytes(event);
        self.publish_raw("account.created.v1", &body, &event_id)
            .await;
        (event_id, body)
    }

    pub(crate) async fn dead_letter_depth(&self) -> u32 {
        dead_letters::queue_depth(&self.broker, "accounts-test")
            .await
            .expect("depth")
    }

    pub(crate) fn consumer(&self, handlers: Handlers) -> Consumer {
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

/// A new database with the bus's tables and a table of accounts, dropped
/// with its guard.
pub(crate) async fn fresh_database() -> (Pool, TestDatabase) {
    let database = TestDatabase::fresh();
    let url = database.url().parse().expect("url");
    let pool = popug_runtime::database::connect(&url, 8, &[&popug_bus::MIGRATIONS])
        .await
        .expect("test database");
    let mut conn = pool.get().await.expect("connection");
    diesel::sql_query("CREATE TABLE accounts (event_id UUID PRIMARY KEY, login TEXT NOT NULL)")
        .execute(&mut conn)
        .await
        .expect("test table");
    drop(conn);
    (pool, database)
}

pub(crate) fn fast_backoff() -> Backoff {
    Backoff::new(vec![
        Duration::from_millis(50),
        Duration::from_millis(200),
        Duration::from_millis(500),
    ])
}

pub(crate) fn account(login: &str) -> AccountCreated {
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
pub(crate) fn envelope_bytes(event: &AccountCreated) -> (String, Vec<u8>) {
    let envelope = envelope::wrap(event, "auth", chrono::Utc::now());
    (envelope.event_id.clone(), envelope.encode_to_vec())
}

/// The log lines written on this thread while the value lives (a
/// `#[tokio::test]` runs the consumer steps it drives on its own thread).
pub(crate) struct CapturedLogs {
    pub(crate) buffer: Arc<Mutex<Vec<u8>>>,
    pub(crate) _guard: tracing::subscriber::DefaultGuard,
}

pub(crate) struct LogWriter(Arc<Mutex<Vec<u8>>>);

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
    pub(crate) fn start() -> Self {
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
    pub(crate) fn lines(&self) -> Vec<String> {
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
pub(crate) fn recording_handlers(broken: Arc<AtomicBool>, calls: Arc<AtomicUsize>) -> Handlers {
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

/// A client of the ops API.
pub(crate) type OpsClient = popug_proto::pb::popug::ops::v1::ops_service_client::OpsServiceClient<
    tonic::transport::Channel,
>;

/// Serves `world`'s ops API, for consumer `accounts-test`, with a guard
/// that lets everyone in, on a free port; it stops when the guard drops.
pub(crate) async fn serve_ops(world: &World) -> (OpsClient, tokio_util::sync::DropGuard) {
    serve(world.ops()).await
}

/// Serves `ops` on a free port until the guard drops.
pub(crate) async fn serve(ops: popug_bus::Ops) -> (OpsClient, tokio_util::sync::DropGuard) {
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
    let client = OpsClient::new(popug_testing::channel(addr).await);
    (client, stop.drop_guard())
}

/// Handlers of assignments, completions and accounts that count each call.
pub(crate) fn counting_handlers(calls: &Arc<AtomicUsize>) -> Handlers {
    let (assigned, completed, created) = (Arc::clone(calls), Arc::clone(calls), Arc::clone(calls));
    Handlers::new()
        .on::<TaskAssigned, _>(move |_, _, _| {
            assigned.fetch_add(1, Ordering::SeqCst);
            Box::pin(async { Ok(()) })
        })
        .on::<TaskCompleted, _>(move |_, _, _| {
            completed.fetch_add(1, Ordering::SeqCst);
            Box::pin(async { Ok(()) })
        })
        .on::<AccountCreated, _>(move |_, _, _| {
            created.fetch_add(1, Ordering::SeqCst);
            Box::pin(async { Ok(()) })
        })
}

pub(crate) fn completion() -> TaskCompleted {
    TaskCompleted {
        task_id: uuid::Uuid::new_v4().to_string(),
        assignee_id: uuid::Uuid::new_v4().to_string(),
    }
}

/// A completion's envelope as the tracker writes it.
pub(crate) fn completed_envelope() -> Envelope {
    envelope::wrap(&completion(), "tracker", chrono::Utc::now())
}

pub(crate) fn properties(envelope: &Envelope) -> BasicProperties {
    BasicProperties::default().with_message_id(envelope.event_id.as_str().into())
}

/// Replay marks: the replay's header naming a dead letter's row.
pub(crate) fn replay_marks(dead_letter_id: i64) -> lapin::types::FieldTable {
    let mut headers = lapin::types::FieldTable::default();
    headers.insert(
        dead_letters::REPLAYED_HEADER.into(),
        lapin::types::AMQPValue::Boolean(true),
    );
    headers.insert(
        dead_letters::DEAD_LETTER_ID_HEADER.into(),
        lapin::types::AMQPValue::LongLongInt(dead_letter_id),
    );
    headers
}

impl World {
    /// Waits (20 s at most) until the dead-letter queue holds `depth`
    /// messages: the broker moves a nacked message there asynchronously, so
    /// it may arrive after the consumer's step returned.
    pub(crate) async fn await_dead_letter_depth(&self, depth: u32) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let now = self.dead_letter_depth().await;
            if now == depth {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the dead-letter queue holds {now} messages, not {depth}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
