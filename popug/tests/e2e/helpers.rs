//! The harness: a running mesh on a simulated clock, signing in, waiting
//! for events to reach a replica, and scraping `/metrics`.

use std::{future::Future, time::Duration};

use chrono::{DateTime, NaiveDate, Utc};
use popug::{
    audit::audit,
    client::{Bearer, Channels, Endpoints},
    mesh::{Mesh, MeshSettings},
};
use popug_proto::pb::popug::{auth::v1 as auth, billing::v1 as billing, tracker::v1 as tracker};
use popug_runtime::Clock;
use popug_testing::ADMIN_PASSWORD;
use tokio_util::sync::CancellationToken;

/// A running mesh on a simulated clock that starts at 09:00 on `day`.
pub(crate) struct World {
    pub(crate) endpoints: Endpoints,
    pub(crate) channels: Channels,
    pub(crate) clock: Clock,
    pub(crate) day: NaiveDate,
    pub(crate) mail_dir: std::path::PathBuf,
    pub(crate) admin: Bearer,
    /// The mesh's broker, to publish what no service would.
    pub(crate) broker: popug_bus::Broker,
    /// Where each service serves `/metrics`: auth, tracker, billing, analytics.
    pub(crate) metrics: [std::net::SocketAddr; 4],
    pub(crate) _stop: tokio_util::sync::DropGuard,
    /// The mesh's databases, dropped after it stopped.
    pub(crate) _databases: Vec<popug_testing::TestDatabase>,
}

pub(crate) fn at(day: NaiveDate, hour: u32) -> DateTime<Utc> {
    day.and_hms_opt(hour, 0, 0).expect("an hour").and_utc()
}

impl World {
    pub(crate) async fn start() -> Self {
        popug_runtime::telemetry::init(popug_runtime::settings::LogFormat::Pretty);
        let day = Utc::now().date_naive() - chrono::Days::new(3);
        let clock = Clock::simulated(at(day, 9));
        let (env, databases) = popug_testing::mesh_env();
        let mail_dir = env.raw("POPUG_MAIL_DIR").expect("a mail dir").into();
        let settings = MeshSettings::load(&env)
            .expect("settings")
            .with_clock(&clock);
        let broker = popug_bus::Broker::new(
            settings.common().amqp_url.clone(),
            popug_bus::Topology::from_settings(settings.common()),
            "e2e",
        );
        let mesh = Mesh::start(settings).await.expect("the mesh starts");
        let endpoints = mesh.endpoints();
        let metrics = mesh.metrics_addrs();
        let stop = CancellationToken::new();
        drop(mesh.spawn(&stop));
        let channels = Channels::connect(&endpoints).await.expect("channels");
        let admin = sign_in(&channels, "admin", ADMIN_PASSWORD).await;
        Self {
            endpoints,
            channels,
            clock,
            day,
            mail_dir,
            admin,
            broker,
            metrics,
            _stop: stop.drop_guard(),
            _databases: databases,
        }
    }

    /// Creates an account with `role`, signed in.
    pub(crate) async fn hire(&self, login: &str, role: auth::Role) -> (String, Bearer) {
        let account = self
            .channels
            .auth(&self.admin)
            .create_account(auth::CreateAccountRequest {
                login: login.into(),
                password: format!("{login}-password"),
                name: login.into(),
                email: format!("{login}@popug.example"),
                role: role.into(),
            })
            .await
            .expect("create account")
            .into_inner()
            .account
            .expect("account");
        (
            account.account_id,
            sign_in(&self.channels, login, &format!("{login}-password")).await,
        )
    }

    /// The audit must come out clean once events have flowed.
    pub(crate) async fn assert_books_agree(&self) {
        let report = audit(&self.channels, &self.admin, Duration::from_secs(60))
            .await
            .expect("the audit runs");
        assert!(report.is_clean(), "{report}");
    }

    pub(crate) async fn create_task(
        &self,
        bearer: &Bearer,
        title: &str,
    ) -> Result<tracker::Task, tonic::Status> {
        self.channels
            .tracker(bearer)
            .create_task(tracker::CreateTaskRequest {
                title: title.into(),
                jira_id: String::new(),
                description: "e2e".into(),
            })
            .await
            .map(|response| response.into_inner().task.expect("task"))
    }

    /// Any popug's balance, read by the admin.
    pub(crate) async fn balance_of(&self, account_id: &str) -> i64 {
        self.channels
            .billing(&self.admin)
            .get_account(billing::GetAccountRequest {
                account_id: account_id.into(),
                date: String::new(),
            })
            .await
            .expect("an account")
            .into_inner()
            .balance_cents
    }

    pub(crate) async fn balance(
        &self,
        bearer: &Bearer,
        date: NaiveDate,
    ) -> billing::GetMyAccountResponse {
        self.channels
            .billing(bearer)
            .get_my_account(billing::GetMyAccountRequest {
                date: date.to_string(),
            })
            .await
            .expect("my account")
            .into_inner()
    }
}

pub(crate) async fn sign_in(channels: &Channels, login: &str, password: &str) -> Bearer {
    popug::client::sign_in(channels, login, password)
        .await
        .expect("signs in")
}

/// Retries `attempt` until it succeeds, for events to reach a replica.
pub(crate) async fn eventually<T, F, Fut>(mut attempt: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, tonic::Status>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match attempt().await {
            Ok(value) => return value,
            Err(status) if tokio::time::Instant::now() < deadline => {
                tracing::debug!(%status, "not yet");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(status) => panic!("never succeeded: {status:?}"),
        }
    }
}

/// A call's answer, whatever its message.
pub(crate) fn ok<T>(
    result: Result<tonic::Response<T>, tonic::Status>,
) -> Result<(), tonic::Status> {
    result.map(drop)
}
