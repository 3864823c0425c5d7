//! The bus as every service wires it, written once: the service's broker
//! (its own user), its outbox relay if it publishes, its consumer if it
//! consumes, the ops API over both (admins only, callers named in what they
//! leave), the hourly retention, and the token check every API sits behind.
//! A service's `startup.rs` says only what is its own.

use std::sync::Arc;

use popug_proto::pb::popug::ops::v1::ops_service_server::OpsServiceServer;
use popug_runtime::{Settings, StartupError, database::Pool, directory::AccountsDirectory};
use popug_token::{AuthLayer, GrpcJwks, Standings, Verifier, admins_only, caller_account_id};

use crate::{
    Broker, Consumer, ConsumerConfig, Handlers, Ops, Relay, RelayConfig, RelayHealth, Retention,
};

/// A service's side of the bus, built and not yet running (the relay and
/// the consumer boxed: they are large, and so would be every future that
/// holds a service being built).
pub struct Bus {
    pool: Pool,
    broker: Broker,
    service: &'static str,
    relay: Option<Box<Relay>>,
    relay_health: Arc<RelayHealth>,
    consumer: Option<Box<Consumer>>,
    consumes: bool,
    retention: Retention,
}

impl Bus {
    /// The bus of the service `settings` describe, over its `pool`; it
    /// neither publishes nor consumes until told to.
    pub fn new(pool: &Pool, settings: &Settings) -> Result<Self, StartupError> {
        // Its own broker user, and whose events it believes from which user.
        let broker = Broker::from_settings(settings)
            .map_err(|error| StartupError::Setting(error.to_string()))?;
        Ok(Self {
            pool: pool.clone(),
            broker,
            service: settings.service.name(),
            relay: None,
            relay_health: Arc::new(RelayHealth::default()),
            consumer: None,
            consumes: false,
            // Old inbox rows and closed dead letters are pruned hourly.
            retention: Retention::for_service(pool.clone(), settings),
        })
    }

    /// It publishes: an outbox relay takes its committed events to the broker.
    #[must_use]
    pub fn publishing(mut self) -> Self {
        let relay = Relay::new(
            self.pool.clone(),
            self.broker.clone(),
            self.service,
            RelayConfig::default(),
        );
        self.relay_health = relay.health();
        self.relay = Some(Box::new(relay));
        self
    }

    /// It consumes: `handlers` apply its queue's events, as `config` says.
    #[must_use]
    pub fn consuming(mut self, handlers: Handlers, config: ConsumerConfig) -> Self {
        self.consumer = Some(Box::new(Consumer::new(
            self.pool.clone(),
            self.broker.clone(),
            self.service,
            handlers,
            config,
        )));
        self.consumes = true;
        self
    }

    /// The ops API over this bus: admins only, each caller named by its
    /// account in the records it leaves.
    pub fn ops(&self) -> OpsServiceServer<Ops> {
        Ops::new(
            self.pool.clone(),
            self.broker.clone(),
            self.consumes.then(|| self.service.to_owned()),
            Arc::clone(&self.relay_health),
            admins_only(),
        )
        .with_identity(caller_account_id())
        .into_server()
    }

    /// Takes the relay out, so a test can step it by hand.
    pub fn take_relay(&mut self) -> Option<Relay> {
        self.relay.take().map(|relay| *relay)
    }

    /// Takes the consumer out, so a test can step it by hand.
    pub fn take_consumer(&mut self) -> Option<Consumer> {
        self.consumer.take().map(|consumer| *consumer)
    }

    /// Runs the relay and the consumer (those not taken) and the retention
    /// as `app`'s supervised background tasks.
    pub fn attach(self, mut app: popug_runtime::Application) -> popug_runtime::Application {
        if let Some(relay) = self.relay {
            app = app.with_task(relay.into_task());
        }
        if let Some(consumer) = self.consumer {
            app = app.with_task(consumer.into_task());
        }
        app.with_task(self.retention.into_task())
    }
}

/// The service's database, created if missing and migrated: the bus's
/// tables first, then the service's `own`.
pub async fn database(
    settings: &Settings,
    own: &'static diesel_migrations::EmbeddedMigrations,
) -> Result<Pool, StartupError> {
    Ok(popug_runtime::database::connect(
        &settings.limited_database_url(),
        settings.database_pool_size,
        &[&crate::MIGRATIONS, own],
    )
    .await?)
}

/// Every call is judged by the caller's standing in the service's own
/// `accounts` table (its replica of auth's accounts), now.
pub fn standings(pool: &Pool) -> Standings {
    Standings::new(Arc::new(AccountsDirectory::new(pool.clone())))
}

/// The token check of a service that verifies tokens with auth-svc's keys
/// (fetched from `POPUG_AUTH_URL`), judging callers by `standings`.
pub fn auth_layer(settings: &Settings, standings: &Standings) -> Result<AuthLayer, StartupError> {
    let keys = GrpcJwks::new(settings.auth_url.as_str())
        .map_err(|error| StartupError::Setting(format!("POPUG_AUTH_URL: {error}")))?;
    Ok(AuthLayer::new(Verifier::new(keys)).with_standings(standings.clone()))
}
