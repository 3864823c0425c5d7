//! Building and running tracker-svc: database, the accounts replica's
//! consumer, the gRPC API behind token verification, the ops API, and the
//! outbox relay.

use std::net::SocketAddr;

use popug_bus::{Broker, Consumer, ConsumerConfig, Ops, Outbox, Relay, RelayConfig, Retention};
use popug_proto::pb::popug::tracker::v1::tracker_service_server::TrackerServiceServer;
use popug_runtime::{Services, StartupError, server::ServeError};
use popug_token::{AuthLayer, GrpcJwks, Verifier, admins_only, caller_account_id};
use rand::SeedableRng as _;

use crate::{config::TrackerSettings, grpc::TrackerApi, notify::Notifier, replica, store::Store};

/// Migrations of tracker-svc's own tables.
pub const MIGRATIONS: diesel_migrations::EmbeddedMigrations =
    diesel_migrations::embed_migrations!();

/// A built tracker-svc, ready to run.
pub struct Application {
    app: popug_runtime::Application,
    relay: Option<Relay>,
    consumer: Option<Consumer>,
    store: Store,
}

impl Application {
    /// Prepares everything and binds the listen address.
    pub async fn build(settings: TrackerSettings) -> Result<Self, StartupError> {
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
        let store = Store::new(
            pool.clone(),
            Outbox::new(name).with_clock(common.clock.clone()),
            common.clock.clone(),
        );
        // Its own broker user, and whose events it believes from which user.
        let broker = Broker::from_settings(common)
            .map_err(|error| StartupError::Setting(error.to_string()))?;
        let relay = Relay::new(pool.clone(), broker.clone(), name, RelayConfig::default());
        let consumer = Consumer::new(
            pool.clone(),
            broker.clone(),
            name,
            replica::handlers(&standings),
            ConsumerConfig::default(),
        );
        let ops = Ops::new(
            pool.clone(),
            broker,
            Some(name.to_owned()),
            relay.health(),
            admins_only(),
        )
        .with_identity(caller_account_id());
        let rng = match settings.seed {
            Some(seed) => rand::rngs::StdRng::seed_from_u64(seed),
            None => rand::rngs::StdRng::from_entropy(),
        };
        let api = TrackerApi::new(store.clone(), Notifier::new(settings.mail_dir.clone()), rng);
        let verifier = Verifier::new(
            GrpcJwks::new(common.auth_url.as_str())
                .map_err(|error| StartupError::Setting(format!("POPUG_AUTH_URL: {error}")))?,
        );
        let services = Services::new()
            .with(TrackerServiceServer::new(api))
            .with(ops.into_server())
            .with_layer(AuthLayer::new(verifier).with_standings(standings.clone()));
        // Old inbox rows and closed dead letters are pruned hourly.
        let app = popug_runtime::Application::build(common, services, Vec::new())
            .await?
            .with_task(Retention::for_service(pool, common).into_task());
        tracing::info!(addr = %app.local_addr(), metrics = %app.metrics_addr(), "tracker-svc listening");
        Ok(Self {
            app,
            relay: Some(relay),
            consumer: Some(consumer),
            store,
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

    /// Takes the outbox relay out, so a test can step it by hand.
    pub fn take_relay(&mut self) -> Option<Relay> {
        self.relay.take()
    }

    /// Takes the consumer out, so a test can step it by hand.
    pub fn take_consumer(&mut self) -> Option<Consumer> {
        self.consumer.take()
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
        let mut app = self.app;
        if let Some(relay) = self.relay {
            app = app.with_task(relay.into_task());
        }
        if let Some(consumer) = self.consumer {
            app = app.with_task(consumer.into_task());
        }
        app.run_until_stopped(shutdown).await
    }
}
