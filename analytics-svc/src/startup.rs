//! Building and running analytics-svc: database, the read model's consumer,
//! the gRPC API behind token verification, and the ops API.

use std::net::SocketAddr;

use popug_bus::{Bus, Consumer, ConsumerConfig};
use popug_proto::pb::popug::analytics::v1::analytics_service_server::AnalyticsServiceServer;
use popug_runtime::{Services, StartupError, server::ServeError};

use crate::{config::AnalyticsSettings, grpc::AnalyticsApi, handlers, store::Dashboards};

/// Migrations of analytics-svc's own tables.
pub const MIGRATIONS: diesel_migrations::EmbeddedMigrations =
    diesel_migrations::embed_migrations!();

/// A built analytics-svc, ready to run.
pub struct Application {
    app: popug_runtime::Application,
    bus: Bus,
}

impl Application {
    /// Prepares everything and binds the listen address.
    pub async fn build(settings: AnalyticsSettings) -> Result<Self, StartupError> {
        let common = &settings.common;
        let pool = popug_bus::wiring::database(common, &MIGRATIONS).await?;
        let standings = popug_bus::wiring::standings(&pool);
        // A read model built purely from events: one that lost its database
        // rebuilds itself from the event history. analytics publishes
        // nothing, so it runs no relay.
        let bus = Bus::new(&pool, common)?.consuming(
            handlers::handlers(common.timezone, &standings),
            ConsumerConfig {
                rebuild_from_history: true,
                // Dashboards may trail by a few milliseconds more; fuller
                // batches cost fewer commits per event.
                linger: std::time::Duration::from_millis(20),
                ..ConsumerConfig::default()
            },
        );
        let services = Services::new()
            .with(AnalyticsServiceServer::new(AnalyticsApi::new(
                Dashboards::new(pool.clone()),
                common.timezone,
                common.clock.clone(),
            )))
            .with(bus.ops())
            .with_layer(popug_bus::wiring::auth_layer(common, &standings)?);
        let app = popug_runtime::Application::build(common, services, Vec::new()).await?;
        tracing::info!(addr = %app.local_addr(), metrics = %app.metrics_addr(), "analytics-svc listening");
        Ok(Self { app, bus })
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
        self.bus.take_consumer()
    }

    /// Serves until `shutdown` completes, then drains.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), ServeError> {
        self.bus.attach(self.app).run_until_stopped(shutdown).await
    }
}
