//! Building and running billing-svc: database, the ledger's consumer, the
//! gRPC API behind token verification, the ops API, the outbox relay, the
//! midnight closer and the email sender.

use std::{net::SocketAddr, time::Duration};

use popug_bus::{Backoff, Bus, Consumer, ConsumerConfig, Outbox, Relay};
use popug_proto::pb::popug::billing::v1::billing_service_server::BillingServiceServer;
use popug_runtime::{BackgroundTask, Services, StartupError, server::ServeError};
use rand::SeedableRng as _;

use crate::{
    closer, config::BillingSettings, grpc::BillingApi, handlers, mail::Mailer, store::Ledger,
};

/// Migrations of billing-svc's own tables.
pub const MIGRATIONS: diesel_migrations::EmbeddedMigrations =
    diesel_migrations::embed_migrations!();

/// A built billing-svc, ready to run.
pub struct Application {
    app: popug_runtime::Application,
    bus: Bus,
    ledger: Ledger,
    mailer: Mailer,
    auto_close: bool,
}

impl Application {
    /// Prepares everything and binds the listen address.
    pub async fn build(settings: BillingSettings) -> Result<Self, StartupError> {
        let common = &settings.common;
        let name = common.service.name();
        let pool = popug_bus::wiring::database(common, &MIGRATIONS).await?;
        let standings = popug_bus::wiring::standings(&pool);
        let rng = match settings.seed {
            Some(seed) => rand::rngs::StdRng::seed_from_u64(seed),
            None => rand::rngs::StdRng::from_entropy(),
        };
        let ledger = Ledger::new(
            pool.clone(),
            Outbox::new(name).with_clock(common.clock.clone()),
            common.timezone,
            common.clock.clone(),
            rng,
        );
        let mailer = Mailer::new(
            pool.clone(),
            common.smtp_url.as_ref(),
            &settings.mail_dir,
            settings.mail_from.clone(),
        );
        // The workers are partitions by account of one subscription, so they
        // never book the same account; replicas share the queue safely: a
        // batch first takes sorted advisory locks on the accounts it books
        // (see `handlers`), then books its events set-based (see `store`).
        let bus = Bus::new(&pool, common)?.publishing().consuming(
            handlers::handlers(&ledger, &standings),
            ConsumerConfig {
                workers: settings.consumer_workers,
                // Every booking takes its popug's account lock.
                partitioned: true,
                batch_size: settings.batch_size,
                prefetch: u16::try_from(settings.batch_size * 2).unwrap_or(u16::MAX),
                ..ConsumerConfig::default()
            },
        );
        let services = Services::new()
            .with(BillingServiceServer::new(BillingApi::new(
                ledger.clone(),
                mailer.clone(),
            )))
            .with(bus.ops())
            .with_layer(popug_bus::wiring::auth_layer(common, &standings)?);
        let app = popug_runtime::Application::build(common, services, Vec::new()).await?;
        tracing::info!(addr = %app.local_addr(), metrics = %app.metrics_addr(), timezone = %common.timezone, "billing-svc listening");
        Ok(Self {
            app,
            bus,
            ledger,
            mailer,
            auto_close: settings.auto_close,
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
        self.bus.take_relay()
    }

    /// Takes the consumer out, so a test can step it by hand.
    pub fn take_consumer(&mut self) -> Option<Consumer> {
        self.bus.take_consumer()
    }

    /// The ledger, for tests' direct checks.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// The mailer, for tests to send pending emails deterministically.
    pub fn mailer(&self) -> &Mailer {
        &self.mailer
    }

    /// Serves until `shutdown` completes, then drains.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), ServeError> {
        let mut app = self.bus.attach(self.app);
        let mailer = self.mailer.clone();
        app = app.with_task(BackgroundTask::new("mailer", move |token| {
            mailer.clone().run(Duration::from_secs(30), token)
        }));
        let ledger = self.ledger.clone();
        app = app.with_task(BackgroundTask::new("ledger gauges", move |token| {
            ledger.clone().gauge_totals(Duration::from_secs(15), token)
        }));
        let ledger = self.ledger.clone();
        app = app.with_task(BackgroundTask::new("books gauges", move |token| {
            ledger.clone().gauge_books(Duration::from_secs(60), token)
        }));
        if self.auto_close {
            let (ledger, mailer) = (self.ledger, self.mailer);
            app = app.with_task(
                BackgroundTask::new("day closer", move |token| {
                    closer::run(ledger.clone(), mailer.clone(), Backoff::default(), token)
                })
                .essential(),
            );
        }
        app.run_until_stopped(shutdown).await
    }
}
