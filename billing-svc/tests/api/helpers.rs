//! The harness: auth-svc and billing-svc on random ports with a fresh
//! database and broker namespace, the tracker's events published as the
//! tracker would, a real SMTP sink, and the money invariants.

use std::time::Duration;

use auth_svc::testing::TestAuth;
use popug_bus::{Consumer, Relay, Topology};
use popug_proto::{
    events::Event,
    pb::popug::{
        auth::v1 as auth,
        billing::v1::{self as pb, billing_service_client::BillingServiceClient},
        events::billing::v1 as billing_events,
    },
};
use popug_runtime::Env;
use popug_testing::{Probe, TestDatabase, consume, drain, with_token};
use prost::Message as _;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

pub(crate) struct TestApp {
    pub(crate) auth: TestAuth,
    pub(crate) billing: Channel,
    pub(crate) billing_relay: Relay,
    pub(crate) consumer: Consumer,
    pub(crate) ledger: billing_svc::store::Ledger,
    pub(crate) mailer: billing_svc::mail::Mailer,
    /// Sees what billing publishes; its channel publishes in the tracker's place.
    pub(crate) probe: Probe,
    pub(crate) topology: Topology,
    pub(crate) admin_token: String,
    /// The service's database URL, with its session limits.
    pub(crate) database_url: url::Url,
    pub(crate) _stop: tokio_util::sync::DropGuard,
    /// The database [`spawn_app`] made, dropped with the app (a test that
    /// names its own holds it).
    pub(crate) _database: Option<TestDatabase>,
}

pub(crate) async fn spawn_app(smtp_url: Option<String>) -> TestApp {
    let database = TestDatabase::fresh();
    let mut app = spawn_app_on(database.url().to_owned(), smtp_url).await;
    app._database = Some(database);
    app
}

/// [`spawn_app`] on the database at `billing_db` (created and migrated if needed).
pub(crate) async fn spawn_app_on(billing_db: String, smtp_url: Option<String>) -> TestApp {
    spawn_app_with(billing_db, smtp_url, &[]).await
}

/// [`spawn_app_on`] with more settings.
pub(crate) async fn spawn_app_with(
    billing_db: String,
    smtp_url: Option<String>,
    extra: &[(&str, &str)],
) -> TestApp {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let namespace = popug_testing::namespace();
    let stop = CancellationToken::new();
    let auth = TestAuth::spawn(&namespace, &stop).await;
    let auth_url = auth.url();
    let mail_dir = std::env::temp_dir().join(format!("popug-billing-mail-{id}"));
    let mail = mail_dir.to_string_lossy().into_owned();
    let mut pairs = vec![
        ("POPUG_BILLING_DATABASE_URL", billing_db.as_str()),
        ("POPUG_NAMESPACE", namespace.as_str()),
        ("POPUG_QUEUE_TTL", popug_testing::QUEUE_TTL),
        ("POPUG_BILLING_ADDR", "127.0.0.1:0"),
        ("POPUG_AUTH_URL", auth_url.as_str()),
        ("POPUG_BILLING_SEED", "7"),
        ("POPUG_MAIL_DIR", mail.as_str()),
        ("POPUG_BILLING_AUTO_CLOSE", "false"),
    ];
    if let Some(url) = &smtp_url {
        pairs.push(("POPUG_SMTP_URL", url.as_str()));
    }
    pairs.extend_from_slice(extra);
    let settings =
        billing_svc::BillingSettings::load(&Env::from_pairs(pairs)).expect("billing settings");
    let database_url = settings.common.limited_database_url();
    let amqp_url = settings.common.amqp_url.clone();
    let topology = Topology::from_settings(&settings.common);
    let mut billing_app = billing_svc::Application::build(settings)
        .await
        .expect("billing-svc");
    let billing_relay = billing_app.take_relay().expect("relay");
    let consumer = billing_app.take_consumer().expect("consumer");
    consumer.declare().await.expect("billing queue");
    let ledger = billing_app.ledger().clone();
    let mailer = billing_app.mailer().clone();
    let billing_addr = billing_app.local_addr();
    let stopping = stop.clone();
    tokio::spawn(billing_app.run_until_stopped(async move { stopping.cancelled().await }));

    let probe = Probe::declare(amqp_url.as_str(), &topology, &BILLING_EVENTS).await;

    let admin_token = auth.admin_token.clone();
    let mut app = TestApp {
        auth,
        billing: popug_testing::channel(billing_addr).await,
        billing_relay,
        consumer,
        ledger,
        mailer,
        probe,
        topology,
        admin_token,
        database_url,
        _stop: stop.drop_guard(),
        _database: None,
    };
    app.sync_accounts().await;
    app
}

/// The routing keys of every event billing publishes, for the probe.
pub(crate) const BILLING_EVENTS: [&str; 4] = [
    <billing_events::TaskPriced as Event>::ROUTING_KEY,
    <billing_events::TransactionApplied as Event>::ROUTING_KEY,
    <billing_events::PaymentSent as Event>::ROUTING_KEY,
    <billing_events::BillingCycleClosed as Event>::ROUTING_KEY,
];

impl TestApp {
    pub(crate) fn billing(&self) -> BillingServiceClient<Channel> {
        BillingServiceClient::new(self.billing.clone())
    }

    pub(crate) async fn sync_accounts(&mut self) {
        let published = drain(&mut self.auth.relay).await;
        consume(&mut self.consumer, published).await;
    }

    pub(crate) async fn account(&mut self, login: &str, role: auth::Role) -> (uuid::Uuid, String) {
        let account = self.auth.account(login, role).await;
        self.sync_accounts().await;
        account
    }

    /// Publishes `event` as its producer would (the tracker, or auth for
    /// account events), as of `at`; returns its bytes.
    pub(crate) async fn publish<E: Event>(
        &self,
        event: &E,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Vec<u8> {
        let body = popug_bus::envelope::wrap(event, E::PRODUCER, at).encode_to_vec();
        self.publish_bytes(E::ROUTING_KEY, &body).await;
        body
    }

    pub(crate) async fn publish_bytes(&self, routing_key: &str, body: &[u8]) {
        self.probe
            .channel()
            .basic_publish(
                self.topology.exchange().into(),
                routing_key.into(),
                Default::default(),
                body,
                Default::default(),
            )
            .await
            .expect("publish");
    }

    /// Billing's published events so far: (type, payload).
    pub(crate) async fn billing_events(&mut self) -> Vec<(String, Vec<u8>)> {
        drain(&mut self.billing_relay).await;
        let taken = self.probe.take().await;
        taken
            .into_iter()
            .map(|event| (event.event_type, event.payload))
            .collect()
    }

    pub(crate) async fn balance(&self, account_id: uuid::Uuid) -> i64 {
        self.billing()
            .get_account(with_token(
                pb::GetAccountRequest {
                    account_id: account_id.to_string(),
                    date: String::new(),
                },
                &self.admin_token,
            ))
            .await
            .expect("get account")
            .into_inner()
            .balance_cents
    }

    pub(crate) async fn assert_invariants(&self) {
        let mut conn = self.ledger.pool().get().await.expect("connection");
        let violations = billing_svc::invariants::violations(&mut conn)
            .await
            .expect("checks run");
        assert!(
            violations.is_empty(),
            "money invariants broken:\n{}",
            violations.join("\n")
        );
    }
}

/// A real SMTP server (Python's aiosmtpd) storing mail in a maildir.
pub(crate) struct SmtpSink {
    pub(crate) child: tokio::process::Child,
    maildir: tempfile_dir::Dir,
    pub(crate) url: String,
}

mod tempfile_dir {
    /// A directory removed on drop.
    pub(super) struct Dir(pub(super) std::path::PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            std::fs::remove_dir_all(&self.0).ok();
        }
    }
}

/// A port nothing listens on yet.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("free port")
        .local_addr()
        .expect("addr")
        .port()
}

impl SmtpSink {
    pub(crate) async fn start() -> Self {
        Self::start_on(free_port()).await
    }

    pub(crate) async fn start_on(port: u16) -> Self {
        let maildir =
            std::env::temp_dir().join(format!("popug-smtp-{}", uuid::Uuid::new_v4().simple()));
        let child = tokio::process::Command::new("python3")
            .args([
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                &format!("127.0.0.1:{port}"),
                "-c",
                "aiosmtpd.handlers.Mailbox",
            ])
            .arg(&maildir)
            .kill_on_drop(true)
            .spawn()
            .expect("aiosmtpd is installed (pip install aiosmtpd)");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the SMTP sink did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Self {
            child,
            maildir: tempfile_dir::Dir(maildir),
            url: format!("smtp://127.0.0.1:{port}"),
        }
    }

    pub(crate) fn messages(&self) -> Vec<String> {
        let mut messages = Vec::new();
        for folder in ["new", "cur"] {
            if let Ok(entries) = std::fs::read_dir(self.maildir.0.join(folder)) {
                for entry in entries {
                    messages.push(
                        std::fs::read_to_string(entry.expect("entry").path()).expect("message"),
                    );
                }
            }
        }
        messages
    }
}

impl TestApp {
    pub(crate) async fn statement(
        &self,
        account_id: uuid::Uuid,
        from: &str,
        to: &str,
    ) -> pb::GetStatementResponse {
        self.billing()
            .get_statement(with_token(
                pb::GetStatementRequest {
                    account_id: account_id.to_string(),
                    from: from.into(),
                    to: to.into(),
                },
                &self.admin_token,
            ))
            .await
            .expect("statement")
            .into_inner()
    }
}
