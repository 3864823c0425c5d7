//! Recovering access on an installation one operates: `popug admin
//! reset-password` sets an account's password straight in auth-svc's
//! database, for whoever can reach that database but lost the password (the
//! first admin's is printed once, at the first start, and a later
//! `POPUG_ADMIN_PASSWORD` does not change it).
//!
//! It works without any service running, on the database the settings name
//! (`POPUG_AUTH_DATABASE_URL`, else `popug_auth` on `POPUG_POSTGRES_URL`),
//! through the same store as `SetPassword`: the hash is replaced and every
//! refresh token of the account revoked. Reaching the database is the
//! authority here, as it is for whoever runs auth-svc.

use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};
use popug_bus::Outbox;

use crate::{
    config::AuthSettings,
    domain::{Account, Password, password},
    startup::MIGRATIONS,
    store::Store,
};

/// Why a reset did not happen.
#[derive(Debug, thiserror::Error)]
pub enum RecoveryError {
    /// The auth database does not exist on the server the settings name.
    #[error(
        "there is no auth database `{database}` at {server}: has `popug up` (or auth-svc) run with these settings? (POPUG_AUTH_DATABASE_URL, POPUG_POSTGRES_URL)"
    )]
    NoDatabase {
        /// The database's name.
        database: String,
        /// The server, without password.
        server: String,
    },
    /// No account has the login.
    #[error("no account `{login}` in {database}")]
    NoAccount {
        /// The login asked for.
        login: String,
        /// The database, without password.
        database: String,
    },
    /// The database could not be reached or used.
    #[error(transparent)]
    Database(#[from] popug_runtime::database::DatabaseError),
    /// A query failed.
    #[error("{0}")]
    Store(String),
}

#[derive(diesel::QueryableByName)]
struct Exists {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    found: bool,
}

/// The auth database `settings` point at, without password, for saying
/// where a reset happens.
pub fn database_shown(settings: &AuthSettings) -> String {
    popug_runtime::database::redacted(&settings.common.database_url)
}

/// Sets `login`'s password to `new` in the auth database `settings` name and
/// ends its sessions; the database must exist (nothing is created).
pub async fn reset_password(
    settings: &AuthSettings,
    login: &str,
    new: &Password,
) -> Result<Account, RecoveryError> {
    let url = &settings.common.database_url;
    let database = url.path().trim_start_matches('/').to_owned();
    let server = popug_runtime::database::server_url(url);
    let mut conn = AsyncPgConnection::establish(server.as_str())
        .await
        .map_err(|source| popug_runtime::database::DatabaseError::Connect {
            url: popug_runtime::database::redacted(&server),
            source,
        })?;
    let found: Exists =
        diesel::sql_query("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS found")
            .bind::<diesel::sql_types::Text, _>(&database)
            .get_result(&mut conn)
            .await
            .map_err(|error| RecoveryError::Store(error.to_string()))?;
    if !found.found {
        return Err(RecoveryError::NoDatabase {
            database,
            server: popug_runtime::database::redacted(&server),
        });
    }
    let pool =
        popug_runtime::database::connect(url, 1, &[&popug_bus::MIGRATIONS, &MIGRATIONS]).await?;
    let store = Store::new(pool, Outbox::new(settings.common.service.name()));
    let login = login.trim().to_lowercase();
    let Some((account, _)) = store
        .credentials(&login)
        .await
        .map_err(|error| RecoveryError::Store(error.to_string()))?
    else {
        return Err(RecoveryError::NoAccount {
            login,
            database: database_shown(settings),
        });
    };
    let new = new.clone();
    let hash = tokio::task::spawn_blocking(move || password::hash(&new))
        .await
        .map_err(|error| RecoveryError::Store(error.to_string()))?;
    store
        .set_password(account.account_id, &hash)
        .await
        .map_err(|error| RecoveryError::Store(error.to_string()))
}
