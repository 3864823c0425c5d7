//! The harness: auth-svc on a random port against a fresh database and a
//! fresh broker namespace, a probe queue that sees its account events.

use auth_svc::{Application, AuthSettings};
use popug_bus::{Relay, Topology};
use popug_proto::pb::popug::auth::v1::{self as pb, auth_service_client::AuthServiceClient};
use popug_runtime::Env;
use popug_testing::{
    ADMIN_PASSWORD, Probe, QUEUE_TTL, TestDatabase, channel, drain, namespace, with_token,
};
use tonic::transport::Channel;

pub(crate) struct TestApp {
    pub(crate) addr: std::net::SocketAddr,
    pub(crate) channel: Channel,
    pub(crate) relay: Relay,
    pub(crate) admin_token: String,
    pub(crate) stop: tokio_util::sync::CancellationToken,
    pub(crate) probe: Probe,
    /// The database it made, dropped with it (none when the test made one).
    pub(crate) _database: Option<TestDatabase>,
}

pub(crate) struct Options {
    pub(crate) signing_key: Option<String>,
    pub(crate) previous_signing_key: Option<String>,
    pub(crate) signup: bool,
    pub(crate) database_url: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            signing_key: None,
            previous_signing_key: None,
            signup: true,
            database_url: None,
        }
    }
}

pub(crate) async fn spawn_app() -> TestApp {
    spawn_app_with(Options::default()).await
}

pub(crate) async fn spawn_app_with(options: Options) -> TestApp {
    popug_runtime::telemetry::init(popug_runtime::settings::LogFormat::Pretty);
    // A database of its own unless the test keeps one across restarts.
    let database = options.database_url.is_none().then(TestDatabase::fresh);
    let database_url = options
        .database_url
        .clone()
        .or_else(|| database.as_ref().map(|database| database.url().to_owned()))
        .expect("a database");
    let namespace = namespace();
    let signup = options.signup.to_string();
    let mut pairs = vec![
        ("POPUG_AUTH_DATABASE_URL", database_url.as_str()),
        ("POPUG_NAMESPACE", namespace.as_str()),
        ("POPUG_QUEUE_TTL", QUEUE_TTL),
        ("POPUG_AUTH_ADDR", "127.0.0.1:0"),
        ("POPUG_ADMIN_PASSWORD", ADMIN_PASSWORD),
        ("POPUG_AUTH_SIGNUP_ENABLED", signup.as_str()),
    ];
    if let Some(key) = &options.signing_key {
        pairs.push(("POPUG_AUTH_SIGNING_KEY", key));
    }
    if let Some(key) = &options.previous_signing_key {
        pairs.push(("POPUG_AUTH_PREVIOUS_SIGNING_KEY", key));
    }
    let settings = AuthSettings::load(&Env::from_pairs(pairs)).expect("settings");
    let amqp_url = settings.common.amqp_url.clone();
    let topology = Topology::from_settings(&settings.common);
    let mut app = Application::build(settings).await.expect("auth-svc starts");
    let relay = app.take_relay().expect("relay");
    let addr = app.local_addr();
    let stop = tokio_util::sync::CancellationToken::new();
    let stopping = stop.clone();
    tokio::spawn(app.run_until_stopped(async move { stopping.cancelled().await }));
    let channel = channel(addr).await;

    // A probe queue that sees every account event published in the namespace.
    let probe = Probe::declare(amqp_url.as_str(), &topology, &["account.#"]).await;

    let mut app = TestApp {
        addr,
        channel,
        relay,
        admin_token: String::new(),
        stop,
        probe,
        _database: database,
    };
    app.admin_token = app.login("admin", ADMIN_PASSWORD).await.access_token;
    app
}

impl TestApp {
    pub(crate) fn client(&self) -> AuthServiceClient<Channel> {
        AuthServiceClient::new(self.channel.clone())
    }

    pub(crate) async fn login(&self, login: &str, password: &str) -> pb::LoginResponse {
        self.client()
            .login(pb::LoginRequest {
                login: login.into(),
                password: password.into(),
            })
            .await
            .unwrap_or_else(|status| panic!("login {login}: {status:?}"))
            .into_inner()
    }

    pub(crate) async fn create(&self, login: &str, role: pb::Role) -> pb::Account {
        self.client()
            .create_account(with_token(
                pb::CreateAccountRequest {
                    login: login.into(),
                    password: format!("{login}-password"),
                    name: format!("Popug {login}"),
                    email: format!("{login}@popug.inc"),
                    role: role.into(),
                },
                &self.admin_token,
            ))
            .await
            .unwrap_or_else(|status| panic!("create {login}: {status:?}"))
            .into_inner()
            .account
            .expect("account")
    }

    /// Creates an account of `role` and signs it in; returns (account, access token).
    pub(crate) async fn signed_in(
        &self,
        login: &str,
        role: pb::Role,
    ) -> (pb::Account, pb::LoginResponse) {
        let account = self.create(login, role).await;
        let session = self.login(login, &format!("{login}-password")).await;
        (account, session)
    }

    pub(crate) async fn relay_pending_events(&mut self) {
        drain(&mut self.relay).await;
    }

    /// Every account event published so far, as (type, payload bytes).
    pub(crate) async fn published_events(&mut self) -> Vec<(String, Vec<u8>)> {
        self.relay_pending_events().await;
        let taken = self.probe.take().await;
        taken
            .into_iter()
            .map(|event| (event.event_type, event.payload))
            .collect()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
