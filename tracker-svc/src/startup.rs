//! Building and running tracker-svc: database, the accounts replica's
//! consumer, the gRPC API behind token verification, the ops API, and the
//! outbox relay.

use std::net::SocketAddr;

use popug_bus::{Bus, Consumer, ConsumerConfig, Outbox, Relay};
use popug_proto::pb::popug::tracker::v1::tracker_service_server::TrackerServiceServer;
use popug_runtime::{Services, StartupError, server::ServeError};
use rand::SeedableRng as _;

use crate::{config::TrackerSettings, grpc::TrackerApi, notify::Notifier, replica, store::Store};

/// Migrations of tracker-svc's own tables.
pub const MIGRATIONS: diesel_migrations::EmbeddedMigrations =
    diesel_migrations::embed_migrations!();

/// A built tracker-svc, ready to run.
pub struct Application {
    app: popug_runtime::Application,
    bus: Bus,
    store: Store,
}

impl Application {
    /// Prepares everything and binds the listen address.
    pub async fn build(settings: TrackerSettings) -> Result<Self, StartupError> {
        let common = &settings.common;
        let name = common.service.name();
        let pool = popug_bus::wiring::database(common, &MIGRATIONS).await?;
        let standings = popug_bus::wiring::standings(&pool);
        let store = Store::new(
            pool.clone(),
            Outbox::new(name).with_clock(common.clock.clone()),
            common.clock.clone(),
        );
        let bus = Bus::new(&pool, common)?
            .publishing()
            .consuming(replica::handlers(&standings), ConsumerConfig::default());
        let rng = match settings.seed {
            Some(seed) => rand::rngs::StdRng::seed_from_u64(seed),
            None => rand::rngs::StdRng::from_entropy(),
        };
        let api = TrackerApi::new(store.clone(), Notifier::new(settings.mail_dir.clone()), rng);
        let services = Services::new()
            .with(TrackerServiceServer::new(api))
            .with(bus.ops())
            .with_layer(popug_bus::wiring::auth_layer(common, &standings)?);
        let app = popug_runtime::Application::build(common, services, Vec::new()).await?;
        tracing::info!(addr = %app.local_addr(), metrics = %app.metrics_addr(), "tracker-svc listening");
        Ok(Self { app, bus, store })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.app.local_addr()
    }

    /// Where its Prometheus `/metrics` endpoint listens.
    pub fn metrics_addr(&self) -> SocketAddr {
        self.app.metrics_addr()
    }

    /// Takes the outbox relay out, so a test can step it by hand.
    pub fn take_relay(&mut self) -> Option<Relay> {
        self.bus.take_relay()
    }

    /// Takes the consumer out, so a test can step it by hand.
    pub fn take_consumer(&mut self) -> Option<Consumer> {
        self.bus.take_consumer()
    }

    /// The store, for tests' direct checks.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Serves until `shutdown` completes, then drains.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), ServeError> {
        self.bus.attach(self.app).run_until_stopped(shutdown).await
    }
}
