//! The harness: auth-svc and tracker-svc on random ports, sharing a fresh
//! broker namespace, each on a fresh database; relays and consumers stepped
//! by the tests.

use auth_svc::testing::TestAuth;
use popug_bus::{BatchReport, Consumer, Relay, Topology};
use popug_proto::pb::popug::{
    auth::v1 as auth,
    tracker::v1::{self as pb, tracker_service_client::TrackerServiceClient},
};
use popug_runtime::Env;
use popug_testing::{Probe, TestDatabase, drain, with_token};
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

pub(crate) struct TestApp {
    pub(crate) auth: TestAuth,
    pub(crate) tracker: Channel,
    pub(crate) tracker_relay: Relay,
    pub(crate) consumer: Consumer,
    pub(crate) probe: Probe,
    pub(crate) admin_token: String,
    pub(crate) mail_dir: std::path::PathBuf,
    pub(crate) _stop: tokio_util::sync::DropGuard,
    /// Its database, dropped after the service stopped.
    pub(crate) _database: TestDatabase,
}

pub(crate) async fn spawn_app() -> TestApp {
    let namespace = popug_testing::namespace();
    let stop = CancellationToken::new();
    let auth = TestAuth::spawn(&namespace, &stop).await;

    let tracker_db = TestDatabase::fresh();
    let auth_url = auth.url();
    let mail_dir =
        std::env::temp_dir().join(format!("popug-test-mail-{}", uuid::Uuid::new_v4().simple()));
    let mail = mail_dir.to_string_lossy().into_owned();
    let tracker_settings = tracker_svc::TrackerSettings::load(&Env::from_pairs([
        ("POPUG_TRACKER_DATABASE_URL", tracker_db.url()),
        ("POPUG_NAMESPACE", namespace.as_str()),
        ("POPUG_QUEUE_TTL", popug_testing::QUEUE_TTL),
        ("POPUG_TRACKER_ADDR", "127.0.0.1:0"),
        ("POPUG_AUTH_URL", auth_url.as_str()),
        ("POPUG_TRACKER_SEED", "42"),
        ("POPUG_MAIL_DIR", mail.as_str()),
    ]))
    .expect("tracker settings");
    let amqp_url = tracker_settings.common.amqp_url.clone();
    let topology = Topology::from_settings(&tracker_settings.common);
    let mut tracker_app = tracker_svc::Application::build(tracker_settings)
        .await
        .expect("tracker-svc");
    let tracker_relay = tracker_app.take_relay().expect("relay");
    let consumer = tracker_app.take_consumer().expect("consumer");
    consumer.declare().await.expect("tracker queue");
    let tracker_addr = tracker_app.local_addr();
    let stopping = stop.clone();
    tokio::spawn(tracker_app.run_until_stopped(async move { stopping.cancelled().await }));

    let probe = Probe::declare(amqp_url.as_str(), &topology, &["task.#"]).await;

    let admin_token = auth.admin_token.clone();
    let mut app = TestApp {
        auth,
        tracker: popug_testing::channel(tracker_addr).await,
        tracker_relay,
        consumer,
        probe,
        admin_token,
        mail_dir,
        _stop: stop.drop_guard(),
        _database: tracker_db,
    };
    app.sync_accounts().await;
    app
}

impl TestApp {
    pub(crate) fn tracker(&self) -> TrackerServiceClient<Channel> {
        TrackerServiceClient::new(self.tracker.clone())
    }

    /// Publishes auth's pending account events and applies them in the tracker.
    pub(crate) async fn sync_accounts(&mut self) {
        let published = drain(&mut self.auth.relay).await;
        self.consume(published).await;
    }

    pub(crate) async fn consume(&mut self, deliveries: usize) -> BatchReport {
        popug_testing::consume(&mut self.consumer, deliveries).await
    }

    /// Creates an account with `role` in auth, replicates it, signs it in.
    pub(crate) async fn account(&mut self, login: &str, role: auth::Role) -> (String, String) {
        let (id, token) = self.auth.account(login, role).await;
        self.sync_accounts().await;
        (id.to_string(), token)
    }

    pub(crate) async fn create_task(
        &self,
        token: &str,
        title: &str,
    ) -> Result<pb::Task, tonic::Status> {
        self.tracker()
            .create_task(with_token(
                pb::CreateTaskRequest {
                    title: title.into(),
                    jira_id: String::new(),
                    description: "d".into(),
                },
                token,
            ))
            .await
            .map(|response| response.into_inner().task.expect("task"))
    }

    /// The task events the tracker published so far: (routing key, type, payload).
    pub(crate) async fn task_events(&mut self) -> Vec<(String, String, Vec<u8>)> {
        drain(&mut self.tracker_relay).await;
        let taken = self.probe.take().await;
        taken
            .into_iter()
            .map(|event| (event.routing_key, event.event_type, event.payload))
            .collect()
    }
}
