//! A running auth-svc for other services' black-box tests to sign in with
//! (feature `testing`): it lives here, beside what it starts, so that the
//! shared test library (`popug-testing`) depends on no service.

use std::net::SocketAddr;

use popug_bus::Relay;
use popug_proto::pb::popug::auth::v1::{self as auth, auth_service_client::AuthServiceClient};
use popug_testing::{ADMIN_PASSWORD, QUEUE_TTL, TestDatabase, channel, with_token};
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

/// A running auth-svc whose relay the test steps.
pub struct TestAuth {
    /// Its address.
    pub addr: SocketAddr,
    /// A channel to it.
    pub channel: Channel,
    /// Its outbox relay, stepped by the test.
    pub relay: Relay,
    /// The first admin's access token.
    pub admin_token: String,
    /// Its database, dropped with it.
    _database: TestDatabase,
}

impl TestAuth {
    /// Starts auth-svc in `namespace` until `stop` is cancelled.
    pub async fn spawn(namespace: &str, stop: &CancellationToken) -> Self {
        popug_runtime::telemetry::init(popug_runtime::settings::LogFormat::Pretty);
        let database = TestDatabase::fresh();
        let settings = crate::AuthSettings::load(&popug_runtime::Env::from_pairs([
            ("POPUG_AUTH_DATABASE_URL", database.url()),
            ("POPUG_NAMESPACE", namespace),
            ("POPUG_QUEUE_TTL", QUEUE_TTL),
            ("POPUG_AUTH_ADDR", "127.0.0.1:0"),
            ("POPUG_ADMIN_PASSWORD", ADMIN_PASSWORD),
        ]))
        .expect("auth settings");
        // Boxed: the build's future is large, and every test's holds this one.
        let mut app = Box::pin(crate::Application::build(settings))
            .await
            .expect("auth-svc starts");
        let relay = app.take_relay().expect("relay");
        let addr = app.local_addr();
        let stopping = stop.clone();
        tokio::spawn(app.run_until_stopped(async move { stopping.cancelled().await }));
        let channel = channel(addr).await;
        let admin_token = AuthServiceClient::new(channel.clone())
            .login(auth::LoginRequest {
                login: "admin".into(),
                password: ADMIN_PASSWORD.into(),
            })
            .await
            .expect("the first admin signs in")
            .into_inner()
            .access_token;
        Self {
            addr,
            channel,
            relay,
            admin_token,
            _database: database,
        }
    }

    /// `POPUG_AUTH_URL` for the other services.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Creates an account with `role` (password `<login>-password`) and
    /// signs it in; returns its id and access token. Its AccountCreated
    /// waits in the relay.
    pub async fn account(&self, login: &str, role: auth::Role) -> (uuid::Uuid, String) {
        let mut client = AuthServiceClient::new(self.channel.clone());
        let account = client
            .create_account(with_token(
                auth::CreateAccountRequest {
                    login: login.into(),
                    password: format!("{login}-password"),
                    name: login.into(),
                    email: format!("{login}@popug.inc"),
                    role: role.into(),
                },
                &self.admin_token,
            ))
            .await
            .expect("create account")
            .into_inner()
            .account
            .expect("account");
        let token = client
            .login(auth::LoginRequest {
                login: login.into(),
                password: format!("{login}-password"),
            })
            .await
            .expect("login")
            .into_inner()
            .access_token;
        (account.account_id.parse().expect("a UUID"), token)
    }
}
