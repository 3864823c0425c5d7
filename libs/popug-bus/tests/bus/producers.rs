//! Trust in who published: each service publishes as a broker user of its
//! own, so a forged event names a producer the broker refuses, a replay
//! carries its first publisher, and a service connects only as its own
//! producer user.

use std::sync::{
    Arc,
    atomic::{AtomicBool, AtomicUsize, Ordering},
};

use lapin::{BasicProperties, options::BasicPublishOptions};
use popug_bus::{
    Broker, Consumer, ConsumerConfig, HandlerError, Handlers, Outbox, Relay, RelayConfig, Step,
    dead_letters,
};
use popug_proto::pb::popug::events::{tasks::v1::TaskCompleted, v1::Envelope};
use popug_testing::consume_any;
use prost::Message as _;

use crate::helpers::{
    World, account, completed_envelope, completion, counting_handlers, envelope_bytes,
    fast_backoff, properties, replay_marks,
};

/// A RabbitMQ user made for one test, deleted when dropped.
struct BrokerUser {
    name: String,
    password: String,
}

fn rabbitmqctl_checked(args: &[&str]) {
    let output = std::process::Command::new("rabbitmqctl")
        .arg("-q")
        .args(args)
        .output()
        .expect("rabbitmqctl runs");
    assert!(
        output.status.success(),
        "rabbitmqctl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

impl BrokerUser {
    /// A user `<namespace>-<role>` that may use the test's namespace (and
    /// the default exchange, as every popug service must to declare its
    /// dead-lettering queues); with `topic_write`, it may publish on the
    /// events exchange only routing keys that pattern matches.
    fn create(world: &World, role: &str, topic_write: Option<&str>) -> Self {
        let exchange = world.broker.topology().exchange();
        let namespace = exchange.trim_end_matches(".popug.events");
        let user = Self {
            name: format!("{namespace}-{role}"),
            password: uuid::Uuid::new_v4().simple().to_string(),
        };
        rabbitmqctl_checked(&["add_user", &user.name, &user.password]);
        let ours = format!("^{}\\.", namespace.replace('.', "\\."));
        rabbitmqctl_checked(&[
            "set_permissions",
            "-p",
            "/",
            &user.name,
            &ours,
            &format!("{ours}|^amq\\.default$"),
            &ours,
        ]);
        if let Some(pattern) = topic_write {
            rabbitmqctl_checked(&[
                "set_topic_permissions",
                "-p",
                "/",
                &user.name,
                &exchange,
                pattern,
                ".*",
            ]);
        }
        user
    }

    /// A broker of `world`'s namespace, connecting as this user.
    fn broker(&self, world: &World) -> Broker {
        let url = format!("amqp://{}:{}@127.0.0.1:5672/%2f", self.name, self.password);
        Broker::new(
            url.parse().expect("url"),
            world.broker.topology().clone(),
            self.name.clone(),
        )
    }
}

impl Drop for BrokerUser {
    fn drop(&mut self) {
        let deleted = std::process::Command::new("rabbitmqctl")
            .args(["-q", "delete_user", &self.name])
            .output();
        if !deleted.is_ok_and(|output| output.status.success()) {
            eprintln!("could not delete the broker user {}", self.name);
        }
    }
}

/// The topic pattern of every routing key `producer` owns, from the catalog.
fn own_keys(producer: &str) -> String {
    let keys: Vec<String> = popug_proto::events::catalog()
        .iter()
        .filter(|info| info.producer == producer)
        .map(|info| info.routing_key.replace('.', "\\."))
        .collect();
    format!("^({})$", keys.join("|"))
}

/// The tracker, with its own broker user restricted to its own keys, and a
/// forger with a user of its own; consumers know the producers' users.
struct Producers {
    tracker: BrokerUser,
    forger: BrokerUser,
    users: popug_runtime::ProducerUsers,
}

impl Producers {
    fn create(world: &World) -> Self {
        let tracker = BrokerUser::create(world, "tracker", Some(&own_keys("tracker")));
        let forger = BrokerUser::create(world, "forger", None);
        let namespace = world.broker.topology().exchange();
        let users = format!(
            "auth={namespace}-auth,tracker={},billing={namespace}-billing",
            tracker.name
        )
        .parse()
        .expect("producer users");
        Self {
            tracker,
            forger,
            users,
        }
    }

    /// A consumer of `world`'s queue that believes only the producers' users.
    async fn consumer(&self, world: &World, handlers: Handlers) -> Consumer {
        let consumer = Consumer::new(
            world.pool.clone(),
            world.broker.clone().with_producer_users(self.users.clone()),
            "accounts-test",
            handlers,
            ConsumerConfig {
                backoff: fast_backoff(),
                ..ConsumerConfig::default()
            },
        );
        consumer.declare().await.expect("declare");
        consumer
    }

    /// Publishes `event` the honest way: the tracker's outbox and relay,
    /// over the tracker's own connection.
    async fn publish_as_tracker(&self, world: &World, event: &TaskCompleted) {
        let mut conn = world.pool.get().await.expect("connection");
        Outbox::new("tracker")
            .enqueue(&mut conn, event)
            .await
            .expect("enqueue");
        drop(conn);
        let mut relay = Relay::new(
            world.pool.clone(),
            self.tracker.broker(world),
            "tracker",
            RelayConfig {
                backoff: fast_backoff(),
                ..RelayConfig::default()
            },
        );
        assert_eq!(
            relay
                .publish_pending()
                .await
                .expect("the tracker publishes"),
            Step::Published(1)
        );
    }
}

/// Publishes as `broker`'s user; the broker's answer.
async fn try_publish(
    broker: &Broker,
    exchange: &str,
    routing_key: &str,
    body: &[u8],
    properties: BasicProperties,
) -> Result<lapin::Confirmation, lapin::Error> {
    let (connection, channel) = broker.confirm_channel().await.expect("broker");
    let confirmation = async {
        channel
            .basic_publish(
                exchange.into(),
                routing_key.into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..BasicPublishOptions::default()
                },
                body,
                properties,
            )
            .await?
            .await
    }
    .await;
    connection.close(200, "done".into()).await.ok();
    confirmation
}

/// A completion's envelope and the properties our relay would give it.
fn as_the_relay_would(envelope: &Envelope) -> BasicProperties {
    properties(envelope)
        .with_type("popug.events.tasks.v1.TaskCompleted".into())
        .with_app_id("tracker".into())
}

#[tokio::test]
async fn a_forged_event_is_dead_lettered_and_the_broker_refuses_a_borrowed_user_id() {
    let world = World::new().await;
    let producers = Producers::create(&world);
    let calls = Arc::new(AtomicUsize::new(0));
    let mut consumer = producers.consumer(&world, counting_handlers(&calls)).await;
    let forger = producers.forger.broker(&world);
    let exchange = world.broker.topology().exchange();

    // The real tracker publishes one completion.
    producers.publish_as_tracker(&world, &completion()).await;

    // The forger tells the same kind of story perfectly: right routing key,
    // right envelope, the relay's properties; but as itself.
    let mut forged = Vec::new();
    for user_id in [None, Some(producers.forger.name.as_str())] {
        let envelope = completed_envelope();
        let mut properties = as_the_relay_would(&envelope);
        if let Some(user_id) = user_id {
            properties = properties.with_user_id(user_id.into());
        }
        let confirmed = try_publish(
            &forger,
            &exchange,
            "task.completed.v1",
            &envelope.encode_to_vec(),
            properties,
        )
        .await;
        assert_eq!(confirmed.expect("routed"), lapin::Confirmation::Ack(None));
        forged.push(envelope);
    }
    // Straight into the consumer's queue, past the exchange.
    let envelope = completed_envelope();
    let confirmed = try_publish(
        &forger,
        "",
        &world.broker.topology().queue("accounts-test"),
        &envelope.encode_to_vec(),
        as_the_relay_would(&envelope).with_user_id(producers.forger.name.as_str().into()),
    )
    .await;
    assert_eq!(confirmed.expect("routed"), lapin::Confirmation::Ack(None));
    forged.push(envelope);

    // Borrowing the tracker's name: the broker itself refuses the message.
    let borrowed = completed_envelope();
    let refused = try_publish(
        &forger,
        &exchange,
        "task.completed.v1",
        &borrowed.encode_to_vec(),
        as_the_relay_would(&borrowed).with_user_id(producers.tracker.name.as_str().into()),
    )
    .await;
    let refused = refused.expect_err("the broker refuses a user_id not the connection's");
    assert!(
        format!("{refused:?}").contains("PRECONDITION_FAILED - user_id property set to"),
        "{refused:?}"
    );
    // And the tracker's own user may publish only the tracker's keys.
    let (_, account_body) = envelope_bytes(&account("not-the-trackers"));
    let refused = try_publish(
        &producers.tracker.broker(&world),
        &exchange,
        "account.created.v1",
        &account_body,
        BasicProperties::default(),
    )
    .await;
    let refused = refused.expect_err("the tracker may not publish an account event");
    assert!(
        format!("{refused:?}").contains("ACCESS_REFUSED - access to topic 'account.created.v1'"),
        "{refused:?}"
    );

    let report = consume_any(&mut consumer, 1 + forged.len()).await;
    assert_eq!(
        (report.applied, report.retried, report.dead_lettered),
        (1, 0, forged.len())
    );
    assert_eq!(
        AtomicUsize::load(&calls, Ordering::SeqCst),
        1,
        "only the tracker's applied"
    );
    let rows = world.dead_letter_rows().await;
    assert_eq!(rows.len(), forged.len());
    for envelope in &forged {
        let row = rows
            .iter()
            .find(|row| row.event_id.map(|id| id.to_string()).as_ref() == Some(&envelope.event_id))
            .expect("a row per forgery");
        assert!(row.error.starts_with("unauthenticated"), "{}", row.error);
    }
    assert!(
        rows.iter()
            .all(|row| row.event_id.map(|id| id.to_string()) != Some(borrowed.event_id.clone())),
        "the refused message never arrived"
    );
    assert_eq!(world.dead_letter_depth().await, 3);
}

#[tokio::test]
async fn a_replay_carries_the_first_publisher_so_a_forgery_stays_refused_and_a_real_event_applies()
{
    let world = World::new().await;
    let producers = Producers::create(&world);
    let broken = Arc::new(AtomicBool::new(true));
    let applied = Arc::new(AtomicUsize::new(0));
    let handlers = {
        let (broken, applied) = (Arc::clone(&broken), Arc::clone(&applied));
        Handlers::new().on::<TaskCompleted, _>(move |_, _, _| {
            let failing = AtomicBool::load(&broken, Ordering::SeqCst);
            if !failing {
                applied.fetch_add(1, Ordering::SeqCst);
            }
            Box::pin(async move {
                if failing {
                    Err(HandlerError::Failed("a bug".into()))
                } else {
                    Ok(())
                }
            })
        })
    };
    let mut consumer = producers.consumer(&world, handlers).await;

    // A real completion meets a bug; a forged one is refused at once.
    let real = completion();
    producers.publish_as_tracker(&world, &real).await;
    assert_eq!(consume_any(&mut consumer, 3).await.dead_lettered, 1);
    let forged = completed_envelope();
    try_publish(
        &producers.forger.broker(&world),
        &world.broker.topology().exchange(),
        "task.completed.v1",
        &forged.encode_to_vec(),
        as_the_relay_would(&forged),
    )
    .await
    .expect("routed");
    assert_eq!(consume_any(&mut consumer, 1).await.dead_lettered, 1);
    // The consumer's own user (what its replay publishes as) marks another
    // completion as the replay of the real one's row: the row holds other
    // bytes, so the mark is not believed.
    let real_row = world.dead_letter_rows().await[0].id;
    let disguised = completed_envelope();
    let confirmed = try_publish(
        &world.broker,
        "",
        &world.broker.topology().queue("accounts-test"),
        &disguised.encode_to_vec(),
        as_the_relay_would(&disguised)
            .with_user_id(world.broker.user().into())
            .with_headers(replay_marks(real_row)),
    )
    .await;
    assert_eq!(confirmed.expect("routed"), lapin::Confirmation::Ack(None));
    assert_eq!(consume_any(&mut consumer, 1).await.dead_lettered, 1);

    // After the fix, a replay (as the consumer's own user) applies the real
    // one and refuses the others again, twice over.
    broken.store(false, Ordering::SeqCst);
    for round in 1..=2 {
        let replayed = dead_letters::replay(&world.pool, &world.broker, "accounts-test", None)
            .await
            .expect("replay");
        assert_eq!(replayed, if round == 1 { 3 } else { 2 });
        let report = consume_any(&mut consumer, usize::try_from(replayed).expect("few")).await;
        assert_eq!(report.dead_lettered, 2, "round {round}");
        assert_eq!(report.applied, usize::from(round == 1), "round {round}");
    }
    assert_eq!(AtomicUsize::load(&applied, Ordering::SeqCst), 1);
    let rows = world.dead_letter_rows().await;
    assert_eq!(rows.len(), 3);
    let disguised_row = rows
        .iter()
        .find(|row| row.event_id.map(|id| id.to_string()) == Some(disguised.event_id.clone()))
        .expect("the disguised one's row");
    assert!(
        disguised_row.error.contains("by `guest`"),
        "{}",
        disguised_row.error
    );
    assert_eq!(disguised_row.failures, 3);
    let forged_row = rows
        .iter()
        .find(|row| row.event_id.map(|id| id.to_string()) == Some(forged.event_id.clone()))
        .expect("the forgery's row");
    assert_eq!(forged_row.failures, 3);
    assert!(!forged_row.resolved);
    assert!(
        forged_row.error.contains("without a user_id"),
        "{}",
        forged_row.error
    );
    assert!(
        rows.iter().any(|row| row.resolved),
        "the real one's row is resolved"
    );
}

#[test]
fn a_service_must_connect_as_its_own_producer_user() {
    use popug_runtime::{Env, Service, Settings};
    let users = ("POPUG_AMQP_PRODUCER_USERS", "auth=a,tracker=t,billing=b");
    let broker = |service, url: &str| {
        let settings = Settings::load(service, &Env::from_pairs([users, ("POPUG_AMQP_URL", url)]))
            .expect("settings load");
        Broker::from_settings(&settings)
    };
    let guest = "amqp://guest:guest@127.0.0.1:5672/%2f";
    let error = broker(Service::Tracker, guest).expect_err("tracker as guest");
    assert_eq!(error.variable, "POPUG_AMQP_PRODUCER_USERS");
    assert!(error.reason.contains("as `guest`"), "{error}");
    let tracker =
        broker(Service::Tracker, "amqp://t:secret@127.0.0.1:5672/%2f").expect("tracker as t");
    assert_eq!(tracker.user(), "t");
    assert_eq!(
        tracker
            .producer_users()
            .and_then(|users| users.user_of("auth")),
        Some("a")
    );
    let error = broker(Service::Analytics, "amqp://b:secret@127.0.0.1:5672/%2f")
        .expect_err("analytics as billing's user");
    assert!(error.reason.contains("the user of billing"), "{error}");
    broker(Service::Analytics, guest).expect("analytics as a user of its own");
    // Unset: nothing to check, nothing believed of users.
    let settings = Settings::load(Service::Tracker, &Env::from_pairs([])).expect("defaults");
    let plain = Broker::from_settings(&settings).expect("defaults");
    assert_eq!((plain.user(), plain.producer_users()), ("guest", None));
}
