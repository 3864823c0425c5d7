//! All four services in one process: `popug up` on the local defaults, the
//! end-to-end tests on random ports, `popug simulate` on a simulated clock.
//! Each service is the same `Application` its own binary runs.

use std::{net::SocketAddr, time::Duration};

use anyhow::{Context as _, bail};
use diesel_async::AsyncConnection as _;
use popug_runtime::{Clock, Env, Settings, SettingsError};
use tokio_util::sync::CancellationToken;

use crate::client::Endpoints;

/// Every service's settings, read from one environment.
#[derive(Debug, Clone)]
pub struct MeshSettings {
    /// auth-svc's.
    pub auth: auth_svc::AuthSettings,
    /// tracker-svc's.
    pub tracker: tracker_svc::TrackerSettings,
    /// billing-svc's.
    pub billing: billing_svc::BillingSettings,
    /// analytics-svc's.
    pub analytics: analytics_svc::AnalyticsSettings,
    /// Whether `POPUG_AUTH_URL` was given; if not, the others use the
    /// auth-svc started here, wherever it listens.
    auth_url_given: bool,
}

impl MeshSettings {
    /// Reads every service's settings from `env`.
    pub fn load(env: &Env) -> Result<Self, SettingsError> {
        Ok(Self {
            auth: auth_svc::AuthSettings::load(env)?,
            tracker: tracker_svc::TrackerSettings::load(env)?,
            billing: billing_svc::BillingSettings::load(env)?,
            analytics: analytics_svc::AnalyticsSettings::load(env)?,
            auth_url_given: env.raw("POPUG_AUTH_URL").is_some(),
        })
    }

    /// Every service tells business time by `clock`.
    #[must_use]
    pub fn with_clock(mut self, clock: &Clock) -> Self {
        for common in [
            &mut self.auth.common,
            &mut self.tracker.common,
            &mut self.billing.common,
            &mut self.analytics.common,
        ] {
            common.clock = clock.clone();
        }
        self
    }

    /// The settings every service shares (auth-svc's copy).
    pub fn common(&self) -> &Settings {
        &self.auth.common
    }
}

/// The four services, built and listening, not yet serving (boxed: the
/// services are large, and so would be every future holding a mesh).
pub struct Mesh {
    auth: Box<auth_svc::Application>,
    tracker: Box<tracker_svc::Application>,
    billing: Box<billing_svc::Application>,
    analytics: Box<analytics_svc::Application>,
}

impl Mesh {
    /// Declares the broker topology once, then builds every service (each
    /// creates and migrates its database).
    pub async fn start(mut settings: MeshSettings) -> anyhow::Result<Self> {
        // Declare the topology before the services race to declare the same
        // quorum queues (which RabbitMQ 3.10 can refuse mid-race).
        let broker = popug_bus::Broker::new(
            settings.common().amqp_url.clone(),
            popug_bus::Topology::from_settings(settings.common()),
            "popug-mesh",
        );
        let (connection, channel) = broker.confirm_channel().await?;
        popug_bus::topology::declare_catalog(&channel, broker.topology()).await?;
        connection.close(200, "declared".into()).await.ok();

        let auth = Box::new(auth_svc::Application::build(settings.auth).await?);
        if !settings.auth_url_given {
            let auth_url: url::Url = format!("http://{}", auth.local_addr()).parse()?;
            settings.tracker.common.auth_url = auth_url.clone();
            settings.billing.common.auth_url = auth_url.clone();
            settings.analytics.common.auth_url = auth_url;
        }
        Ok(Self {
            auth,
            tracker: Box::new(tracker_svc::Application::build(settings.tracker).await?),
            billing: Box::new(billing_svc::Application::build(settings.billing).await?),
            analytics: Box::new(analytics_svc::Application::build(settings.analytics).await?),
        })
    }

    /// Where each service listens.
    pub fn addrs(&self) -> [SocketAddr; 4] {
        [
            self.auth.local_addr(),
            self.tracker.local_addr(),
            self.billing.local_addr(),
            self.analytics.local_addr(),
        ]
    }

    /// Where each service serves `/metrics`.
    pub fn metrics_addrs(&self) -> [SocketAddr; 4] {
        [
            self.auth.metrics_addr(),
            self.tracker.metrics_addr(),
            self.billing.metrics_addr(),
            self.analytics.metrics_addr(),
        ]
    }

    /// Where each service answers, as URLs.
    pub fn endpoints(&self) -> Endpoints {
        let [auth, tracker, billing, analytics] = self.addrs().map(|addr| format!("http://{addr}"));
        Endpoints {
            auth,
            tracker,
            billing,
            analytics,
        }
    }

    /// Serves every service until `stop` is cancelled, then drains them all.
    pub async fn run_until_stopped(self, stop: CancellationToken) -> anyhow::Result<()> {
        let (auth, tracker, billing, analytics) = tokio::join!(
            self.auth.run_until_stopped(stop.clone().cancelled_owned()),
            self.tracker
                .run_until_stopped(stop.clone().cancelled_owned()),
            self.billing
                .run_until_stopped(stop.clone().cancelled_owned()),
            self.analytics.run_until_stopped(stop.cancelled_owned()),
        );
        auth?;
        tracker?;
        billing?;
        analytics?;
        Ok(())
    }

    /// Serves in the background; the returned handle ends when `stop` is
    /// cancelled and every service has drained.
    pub fn spawn(self, stop: &CancellationToken) -> tokio::task::JoinHandle<anyhow::Result<()>> {
        tokio::spawn(Box::pin(self.run_until_stopped(stop.clone())))
    }
}

/// Drops `databases` (a private mesh's, from
/// [`Env::with_private_databases`], once it has stopped).
pub async fn drop_databases(databases: &[url::Url]) -> anyhow::Result<()> {
    use diesel_async::RunQueryDsl as _;
    for database in databases {
        let name = database.path().trim_start_matches('/');
        let server = popug_runtime::database::server_url(database);
        let mut conn = diesel_async::AsyncPgConnection::establish(server.as_str()).await?;
        diesel::sql_query(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .execute(&mut conn)
            .await
            .with_context(|| format!("dropping {name}"))?;
    }
    Ok(())
}

/// Checks Postgres and RabbitMQ first, so a missing one is named plainly,
/// with its URL and how to start it.
pub async fn preflight(settings: &Settings) -> anyhow::Result<()> {
    let server = popug_runtime::database::server_url(&settings.database_url);
    let shown = popug_runtime::database::redacted(&server);
    match tokio::time::timeout(
        Duration::from_secs(5),
        diesel_async::AsyncPgConnection::establish(server.as_str()),
    )
    .await
    {
        Ok(Ok(_)) => {}
        Ok(Err(error)) => bail!(
            "Postgres is unreachable at {shown}: {error}\n  start it: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start\n  or point POPUG_POSTGRES_URL at yours"
        ),
        Err(_) => bail!(
            "Postgres did not answer at {shown} within 5 s\n  start it, or point POPUG_POSTGRES_URL at yours"
        ),
    }
    let shown = popug_runtime::database::redacted(&settings.amqp_url);
    match tokio::time::timeout(
        Duration::from_secs(5),
        lapin::Connection::connect(
            settings.amqp_url.as_str(),
            lapin::ConnectionProperties::default(),
        ),
    )
    .await
    {
        Ok(Ok(connection)) => {
            connection.close(200, "preflight".into()).await.ok();
            Ok(())
        }
        Ok(Err(error)) if popug_bus::broker::is_access_refused(&error) => bail!(
            "RabbitMQ at {shown} refused the user or password of POPUG_AMQP_URL: {error}\n  fix the credentials in POPUG_AMQP_URL (RabbitMQ's guest user works from localhost only)"
        ),
        Ok(Err(error)) => bail!(
            "RabbitMQ is unreachable at {shown}: {error}\n  start it: rabbitmq-server -detached\n  or point POPUG_AMQP_URL at yours"
        ),
        Err(_) => bail!(
            "RabbitMQ did not answer at {shown} within 5 s\n  start it: rabbitmq-server -detached"
        ),
    }
}
