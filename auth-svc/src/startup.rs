//! Building and running auth-svc: database, keys, first admin, the gRPC API
//! behind token verification, the ops API, and the outbox relay.

use std::{net::SocketAddr, sync::Arc};

use popug_bus::{Bus, Outbox, Relay};
use popug_proto::pb::popug::auth::v1::auth_service_server::AuthServiceServer;
use popug_runtime::{ApiError, Services, StartupError, server::ServeError};
use popug_token::{AuthLayer, Role, Verifier};
use rand::Rng as _;

use crate::{
    config::AuthSettings,
    domain::{Email, Name, NewAccount, Password, password},
    error::Error,
    grpc::AuthApi,
    keys::KeyRing,
    store::Store,
};

/// Migrations of auth-svc's own tables.
pub const MIGRATIONS: diesel_migrations::EmbeddedMigrations =
    diesel_migrations::embed_migrations!();

/// A built auth-svc, ready to run.
pub struct Application {
    app: popug_runtime::Application,
    bus: Bus,
    store: Store,
}

impl Application {
    /// Prepares everything and binds the listen address.
    pub async fn build(settings: AuthSettings) -> Result<Self, StartupError> {
        let common = &settings.common;
        let pool = popug_bus::wiring::database(common, &MIGRATIONS).await?;
        let standings = popug_bus::wiring::standings(&pool);
        let store = Store::new(
            pool.clone(),
            Outbox::new(common.service.name()).with_clock(common.clock.clone()),
        );
        let keys = Arc::new(
            KeyRing::load(&settings, &store)
                .await
                .map_err(ApiError::from)?,
        );
        ensure_first_admin(&store, &settings)
            .await
            .map_err(ApiError::from)?;

        let bus = Bus::new(&pool, common)?.publishing();
        let published = Arc::clone(&keys);
        let verifier = Verifier::new(move || published.jwks());
        let api = AuthApi::new(
            store.clone(),
            keys,
            Arc::new(settings.clone()),
            standings.clone(),
        );
        let services = Services::new()
            .with(AuthServiceServer::new(api))
            .with(bus.ops())
            .with_layer(AuthLayer::new(verifier).with_standings(standings.clone()));
        let app = popug_runtime::Application::build(common, services, Vec::new()).await?;
        tracing::info!(addr = %app.local_addr(), metrics = %app.metrics_addr(), "auth-svc listening");
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

    /// Takes the outbox relay out, so a test can step it by hand instead of
    /// it running in the background.
    pub fn take_relay(&mut self) -> Option<Relay> {
        self.bus.take_relay()
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

/// Creates the first admin if its login is free; a generated password is
/// printed once, here, and never again.
async fn ensure_first_admin(store: &Store, settings: &AuthSettings) -> Result<(), Error> {
    let login = settings.admin_login.clone();
    if let Some((account, hash)) = store.credentials(login.as_str()).await? {
        if let Some(wanted) = settings.admin_password.clone() {
            let matches =
                tokio::task::spawn_blocking(move || password::verify(&hash, wanted.expose()))
                    .await
                    .map_err(Error::internal)?;
            if !matches {
                tracing::warn!(
                    login = %account.login,
                    "POPUG_ADMIN_PASSWORD is set, but the admin `{}` already exists with another password: \
                     the setting only chooses the first admin's password when it is created, and is ignored now. \
                     To set it, run `popug admin reset-password --login {}` (on this database), or sign in and use `popug password`",
                    account.login,
                    account.login,
                );
            }
        }
        return Ok(());
    }
    // A generated password is kept in clear until it is shown, once.
    let (password, generated) = match &settings.admin_password {
        Some(password) => (password.clone(), None),
        None => {
            let generated: String = rand::thread_rng()
                .sample_iter(&rand::distributions::Alphanumeric)
                .take(20)
                .map(char::from)
                .collect();
            (
                Password::parse("POPUG_ADMIN_PASSWORD", &generated)?,
                Some(generated),
            )
        }
    };
    let new = NewAccount {
        password,
        name: Name::parse("name", "Administrator")?,
        email: Email::parse("email", &format!("{}@popug.local", login.as_str()))?,
        role: Role::Admin,
        login,
    };
    let hash = {
        let password = new.password.clone();
        tokio::task::spawn_blocking(move || password::hash(&password))
            .await
            .map_err(Error::internal)?
    };
    match store.create_account(&new, &hash).await {
        Ok(account) => {
            tracing::info!(account_id = %account.account_id, login = %account.login, "first admin created");
            if let Some(password) = generated {
                #[allow(clippy::print_stdout)] // the one place the generated password is shown
                {
                    println!(
                        "\nFirst admin created: login `{}`, password `{password}`\n(shown once; set POPUG_ADMIN_PASSWORD to choose it)\n",
                        account.login
                    );
                }
            }
            Ok(())
        }
        // A replica starting at the same moment created it first.
        Err(Error::LoginTaken(_)) => Ok(()),
        Err(error) => Err(error),
    }
}
