//! Building and running analytics-svc: database, the read model's consumer,
//! the gRPC API behind token verification, and the ops API.

use std::net::SocketAddr;

use popug_bus::{Broker, Consumer, ConsumerConfig, Ops, RelayHealth, Retention};
use popug_proto::pb::popug::analytics::v1::analytics_service_server::AnalyticsServiceServer;
use popug_runtime::{Services, StartupError, server::ServeError};
use popug_token::{AuthLayer, GrpcJwks, Verifier, admins_only, caller_account_id};

use crate::{config::AnalyticsSettings, grpc::AnalyticsApi, handlers, store::Dashboards};

/// Migrations of analytics-svc's own tables.
pub const MIGRATIONS: diesel_migrations::EmbeddedMigrations =
    diesel_migrations::embed_migrations!();

/// A built analytics-svc, ready to run.
pub struct Application {
    app: popug_runtime::Application,
    consumer: Option<Consumer>,
}

impl Application {
    /// Prepares everything and binds the listen address.
    pub async fn build(settings: AnalyticsSettings) -> Result<Self, StartupError> {
        let common = &settings.common;
        let name = common.service.name();
        let pool = popug_runtime::database::connect(
            &common.limited_database_url(),
            common.database_pool_size,
            &[&popug_bus::MIGRATIONS, &MIGRATIONS],
        )
        .await?;
        // Every call is judged by the caller's standing in `accounts` now.
        let standings = popug_token::Standings::new(std::sync::Arc::new(
            popug_runtime::directory::AccountsDirectory::new(pool.clone()),
        ));
        // Its own broker user, and whose events it believes from which user.
        let broker = Broker::from_settings(common)
            .map_err(|error| StartupError::Setting(error.to_string()))?;
        let consumer = Consumer::new(
            pool.clone(),
            broker.clone(),
            name,
            handlers::handlers(common.timezone, &standings),
            // A read model built purely from events: one that lost its
            // database rebuilds itself from the event history.
            ConsumerConfig {
                rebuild_from_history: true,
                ..ConsumerConfig::default()
            },
        );
        // analytics produces no events: its outbox stays empty and no relay runs.
        let ops = Ops::new(
            pool.clone(),
            broker,
            Some(name.to_owned()),
            std::sync::Arc::new(RelayHealth::default()),
            admins_only(),
        )
        .with_identity(caller_account_id());
        let verifier = Verifier::new(
            GrpcJwks::new(common.auth_url.as_str())
                .map_err(|error| StartupError::Setting(format!("POPUG_AUTH_URL: {error}")))?,
        );
        let services = Services::new()
            .with(AnalyticsServiceServer::new(AnalyticsApi::new(
                Dashboards::new(pool.clone()),
                common.timezone,
                common.clock.clone(),
            )))
            .with(ops.into_server())
            .with_layer(AuthLayer::new(verifier).with_standings(standings.clone()));
        // Old inbox rows and closed dead letters are pruned hourly.
        let app = popug_runtime::Application::build(common, services, Vec::new())
            .await?
            .with_task(Retention::for_service(pool, common).into_task());
        tracing::info!(addr = %app.local_addr(), metrics = %app.metrics_addr(), "analytics-svc listening");
        Ok(Self {
            app,
            consumer: Some(consumer),
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.app.local_addr()
    }

    /// Where its Prometheus `/metrics` endpoint listens.
    pub fn metrics_addr(&self) -> SocketAddr {
        self.app.metrics_addr()
    }

    /// Takes the consumer out, so a test can step it by hand.
    pub fn take_consumer(&mut self) -> Option<Consumer> {
        self.consumer.take()
    }

    /// Serves until `shutdown` completes, then drains.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), ServeError> {
        let mut app = self.app;
        if let Some(consumer) = self.consumer {
            app = app.with_task(consumer.into_task());
        }
        app.run_until_stopped(shutdown).await
    }
}
