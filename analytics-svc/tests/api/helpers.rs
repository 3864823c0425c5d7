//! The harness: auth, billing and analytics on random ports in one broker
//! namespace; the tracker's events published as the tracker would, billing's
//! own events flowing through its relay.

use auth_svc::testing::TestAuth;
use popug_bus::{BatchReport, Consumer, Relay, Topology};
use popug_proto::{
    events::Event,
    pb::popug::events::accounts::v1::AccountCreated,
    pb::popug::{
        analytics::v1::{self as pb, analytics_service_client::AnalyticsServiceClient},
        auth::v1 as auth,
    },
};
use popug_runtime::Env;
use popug_testing::{TestDatabase, drain, with_token};
use prost::Message as _;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

pub(crate) struct TestApp {
    pub(crate) auth: TestAuth,
    pub(crate) billing: Channel,
    pub(crate) analytics: Channel,
    pub(crate) billing_relay: Relay,
    pub(crate) billing_consumer: Consumer,
    pub(crate) analytics_consumer: Consumer,
    /// analytics' own database, for tests that look under the read model.
    pub(crate) analytics_db: TestDatabase,
    pub(crate) ledger: billing_svc::store::Ledger,
    pub(crate) channel: lapin::Channel,
    pub(crate) topology: Topology,
    pub(crate) admin_token: String,
    /// Deliveries sent to each consumer's queue and not consumed yet.
    pub(crate) pending: std::collections::HashMap<&'static str, usize>,
    pub(crate) _stop: tokio_util::sync::DropGuard,
    /// billing's database, dropped after the services stopped.
    pub(crate) _billing_db: TestDatabase,
}

pub(crate) async fn spawn_app() -> TestApp {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let namespace = popug_testing::namespace();
    let stop = CancellationToken::new();
    let (billing_db, analytics_db) = (TestDatabase::fresh(), TestDatabase::fresh());
    let common = [
        ("POPUG_NAMESPACE", namespace.as_str()),
        ("POPUG_QUEUE_TTL", popug_testing::QUEUE_TTL),
    ];
    let auth = TestAuth::spawn(&namespace, &stop).await;
    let auth_url = auth.url();

    let mail = std::env::temp_dir()
        .join(format!("popug-analytics-mail-{id}"))
        .to_string_lossy()
        .into_owned();
    let mut pairs = common.to_vec();
    pairs.extend([
        ("POPUG_BILLING_DATABASE_URL", billing_db.url()),
        ("POPUG_BILLING_ADDR", "127.0.0.1:0"),
        ("POPUG_AUTH_URL", auth_url.as_str()),
        ("POPUG_MAIL_DIR", mail.as_str()),
        ("POPUG_BILLING_AUTO_CLOSE", "false"),
    ]);
    let billing_settings =
        billing_svc::BillingSettings::load(&Env::from_pairs(pairs)).expect("settings");
    let topology = Topology::from_settings(&billing_settings.common);
    let amqp_url = billing_settings.common.amqp_url.clone();
    let mut billing_app = billing_svc::Application::build(billing_settings)
        .await
        .expect("billing");
    let billing_relay = billing_app.take_relay().expect("relay");
    let billing_consumer = billing_app.take_consumer().expect("consumer");
    billing_consumer.declare().await.expect("queue");
    let ledger = billing_app.ledger().clone();
    let billing_addr = billing_app.local_addr();
    let stopping = stop.clone();
    tokio::spawn(billing_app.run_until_stopped(async move { stopping.cancelled().await }));

    let mut pairs = common.to_vec();
    pairs.extend([
        ("POPUG_ANALYTICS_DATABASE_URL", analytics_db.url()),
        ("POPUG_ANALYTICS_ADDR", "127.0.0.1:0"),
        ("POPUG_AUTH_URL", auth_url.as_str()),
    ]);
    let mut analytics_app = analytics_svc::Application::build(
        analytics_svc::AnalyticsSettings::load(&Env::from_pairs(pairs)).expect("settings"),
    )
    .await
    .expect("analytics");
    let analytics_consumer = analytics_app.take_consumer().expect("consumer");
    analytics_consumer.declare().await.expect("queue");
    let analytics_addr = analytics_app.local_addr();
    let stopping = stop.clone();
    tokio::spawn(analytics_app.run_until_stopped(async move { stopping.cancelled().await }));

    let connection = lapin::Connection::connect(amqp_url.as_str(), Default::default())
        .await
        .expect("broker");
    let channel = connection.create_channel().await.expect("channel");
    channel
        .confirm_select(Default::default())
        .await
        .expect("confirms");
    std::mem::forget(connection);
    let admin_token = auth.admin_token.clone();
    let mut app = TestApp {
        auth,
        billing: popug_testing::channel(billing_addr).await,
        analytics: popug_testing::channel(analytics_addr).await,
        billing_relay,
        billing_consumer,
        analytics_consumer,
        analytics_db,
        ledger,
        channel,
        topology,
        admin_token,
        pending: std::collections::HashMap::new(),
        _stop: stop.drop_guard(),
        _billing_db: billing_db,
    };
    app.settle().await;
    app
}

/// The consumers the catalog binds to `routing_key`.
pub(crate) fn consumers_of(routing_key: &str) -> &'static [&'static str] {
    popug_proto::events::catalog()
        .into_iter()
        .find(|info| info.routing_key == routing_key)
        .map_or(&[], |info| info.consumers)
}

impl TestApp {
    pub(crate) fn expect(&mut self, consumers: &[&'static str], count: usize) {
        for consumer in consumers {
            *self.pending.entry(consumer).or_default() += count;
        }
    }

    /// Steps analytics' consumer over what waits in its queue, dead letters
    /// allowed; returns what it did.
    pub(crate) async fn consume_analytics_report(&mut self) -> BatchReport {
        let deliveries = self.pending.remove("analytics").unwrap_or(0);
        popug_testing::consume_any(&mut self.analytics_consumer, deliveries).await
    }

    /// Applies what waits in analytics' queue only (billing does not run).
    pub(crate) async fn consume_analytics(&mut self) {
        let analytics = self.pending.remove("analytics").unwrap_or(0);
        popug_testing::consume(&mut self.analytics_consumer, analytics).await;
    }

    /// Lets every event flow until nothing is pending: auth's events and the
    /// test's tracker events to billing and analytics, billing's to analytics.
    pub(crate) async fn settle(&mut self) {
        // Every account event goes to tracker, billing and analytics.
        let accounts = drain(&mut self.auth.relay).await;
        self.expect(
            consumers_of(<AccountCreated as Event>::ROUTING_KEY),
            accounts,
        );
        let billing = self.pending.remove("billing").unwrap_or(0);
        popug_testing::consume(&mut self.billing_consumer, billing).await;
        // Every billing event goes to analytics.
        let produced = drain(&mut self.billing_relay).await;
        self.expect(&["analytics"], produced);
        let analytics = self.pending.remove("analytics").unwrap_or(0);
        popug_testing::consume(&mut self.analytics_consumer, analytics).await;
    }

    pub(crate) async fn account(&mut self, login: &str, role: auth::Role) -> (uuid::Uuid, String) {
        self.auth.account(login, role).await
    }

    pub(crate) async fn publish<E: Event>(
        &mut self,
        event: &E,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Vec<u8> {
        let body = popug_bus::envelope::wrap(event, E::PRODUCER, at).encode_to_vec();
        self.publish_bytes(E::ROUTING_KEY, &body).await;
        body
    }

    pub(crate) async fn publish_bytes(&mut self, routing_key: &str, body: &[u8]) {
        let confirm = self
            .channel
            .basic_publish(
                self.topology.exchange().into(),
                routing_key.into(),
                Default::default(),
                body,
                Default::default(),
            )
            .await
            .expect("publish")
            .await
            .expect("confirm");
        assert!(confirm.is_ack());
        self.expect(consumers_of(routing_key), 1);
    }

    pub(crate) fn analytics(&self) -> AnalyticsServiceClient<Channel> {
        AnalyticsServiceClient::new(self.analytics.clone())
    }

    pub(crate) async fn dashboard(&self, date: &str) -> pb::GetDashboardResponse {
        self.analytics()
            .get_dashboard(with_token(
                pb::GetDashboardRequest { date: date.into() },
                &self.admin_token,
            ))
            .await
            .expect("dashboard")
            .into_inner()
    }

    /// Today's most expensive completed task, as an admin sees it.
    pub(crate) async fn most_expensive_today(&self) -> Option<pb::ExpensiveTask> {
        self.analytics()
            .get_most_expensive_task(with_token(
                pb::GetMostExpensiveTaskRequest {
                    period: pb::Period::Day.into(),
                    ..Default::default()
                },
                &self.admin_token,
            ))
            .await
            .expect("the most expensive task")
            .into_inner()
            .task
    }
}
