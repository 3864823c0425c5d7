//! The service's Postgres: a pool of async diesel connections to its own
//! database, which is created if missing and migrated at start.
//!
//! Migrations are embedded in the binaries (shared ones from `popug-bus`, then
//! the service's own) and run under an advisory lock, so several replicas
//! starting together migrate once.

use diesel_async::{
    AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _,
    async_connection_wrapper::AsyncConnectionWrapper,
    pooled_connection::{
        AsyncDieselConnectionManager, ManagerConfig, PoolableConnection, RecyclingMethod, bb8,
    },
};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness as _};

/// A pool of connections to one service's database.
pub type Pool = bb8::Pool<AsyncPgConnection>;

/// A connection checked out of a [`Pool`].
pub type PooledConnection<'a> = bb8::PooledConnection<'a, AsyncPgConnection>;

/// Why the database could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    /// The server did not accept a connection.
    #[error("cannot connect to Postgres at {url}: {source}")]
    Connect {
        /// The URL, without password.
        url: String,
        /// The driver's error.
        source: diesel::ConnectionError,
    },
    /// A query needed to prepare the database failed.
    #[error("cannot prepare database {database}: {source}")]
    Query {
        /// The database being prepared.
        database: String,
        /// The driver's error.
        source: diesel::result::Error,
    },
    /// An embedded migration failed.
    #[error("migrating database {database} failed: {message}")]
    Migrate {
        /// The database being migrated.
        database: String,
        /// What diesel said.
        message: String,
    },
    /// The pool could not be built.
    #[error("cannot build the connection pool for {database}: {message}")]
    Pool {
        /// The database of the pool.
        database: String,
        /// What the pool said.
        message: String,
    },
    /// The database name in the URL is not one we create.
    #[error("database name {0:?} must be lower-case letters, digits and `_`")]
    Name(String),
}

/// A connection from `pool`, or the API error a caller sees when none can be
/// had in time (`UNAVAILABLE`).
pub async fn conn(pool: &Pool) -> Result<PooledConnection<'_>, crate::ApiError> {
    pool.get().await.map_err(crate::ApiError::from)
}

/// How long a session of a service may wait or hold on. A hung process (a
/// replica paused mid-transaction) must not hold locks that every other
/// replica waits for without end: its idle transaction is ended by the
/// server, and the others' lock waits and statements give up in time, with
/// errors that [`is_transient`] classifies as "try again".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    /// Longest wait for a lock (`lock_timeout`).
    pub lock_timeout: std::time::Duration,
    /// Longest statement (`statement_timeout`).
    pub statement_timeout: std::time::Duration,
    /// Longest idle time inside a transaction before the server ends the
    /// session (`idle_in_transaction_session_timeout`).
    pub idle_in_transaction: std::time::Duration,
}

impl SessionLimits {
    /// `url` with the limits as session options (added to any it has).
    pub fn apply(&self, url: &url::Url) -> url::Url {
        let limits = format!(
            "-c lock_timeout={} -c statement_timeout={} -c idle_in_transaction_session_timeout={}",
            self.lock_timeout.as_millis(),
            self.statement_timeout.as_millis(),
            self.idle_in_transaction.as_millis()
        );
        // The raw query, split by hand: form decoding would turn a `+` in a
        // password or path into a space, which libpq-style parsers do not.
        let mut options = None;
        let mut query: Vec<String> = url
            .query()
            .unwrap_or_default()
            .split('&')
            .filter(|pair| !pair.is_empty())
            .filter_map(|pair| match pair.split_once('=') {
                Some(("options", value)) => {
                    options = Some(percent_decode(value));
                    None
                }
                _ => Some(pair.to_owned()),
            })
            .collect();
        let options = options.map_or(limits.clone(), |own| format!("{own} {limits}"));
        query.push(format!("options={}", encode(&options)));
        let mut limited = url.clone();
        limited.set_query(Some(&query.join("&")));
        limited
    }
}

/// Decodes `%XX` escapes (and nothing else: `+` stays `+`).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let escaped = (bytes[index] == b'%')
            .then(|| text.get(index + 1..index + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                decoded.push(byte);
                index += 3;
            }
            None => {
                decoded.push(bytes[index]);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

/// Percent-encodes all but the unreserved characters of RFC 3986.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|byte| {
            if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
                char::from(byte).to_string()
            } else {
                format!("%{byte:02X}")
            }
        })
        .collect()
}

/// Database errors that say "try again later", not "this is wrong": the
/// server or the connection went away, two transactions collided, or a
/// lock wait or statement ran out of time.
pub fn is_transient(error: &diesel::result::Error) -> bool {
    use diesel::result::{DatabaseErrorKind, Error};
    match error {
        Error::DatabaseError(
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::SerializationFailure,
            _,
        )
        | Error::BrokenTransactionManager => true,
        Error::DatabaseError(_, info) => {
            let message = info.message();
            [
                "deadlock detected",
                "terminating connection",
                "server closed the connection",
                "connection closed",
                "connection reset",
                "the database system is shutting down",
                "the database system is starting up",
                "canceling statement due to lock timeout",
                "canceling statement due to statement timeout",
            ]
            .iter()
            .any(|transient| message.contains(transient))
        }
        _ => false,
    }
}

/// The URL with its password masked, for messages.
pub fn redacted(url: &url::Url) -> String {
    let mut shown = url.clone();
    if shown.password().is_some() {
        // Cannot fail: the URL has a host, since it has a password.
        shown.set_password(Some("***")).ok();
    }
    shown.to_string()
}

/// The server's maintenance database (`postgres`) at `url`'s address, where
/// databases are created, dropped and the server is probed.
pub fn server_url(url: &url::Url) -> url::Url {
    let mut server = url.clone();
    server.set_path("postgres");
    server
}

/// Creates the database named in `url` if it does not exist, runs `migrations`
/// in order, and returns a pool of `pool_size` connections to it.
pub async fn connect(
    url: &url::Url,
    pool_size: u32,
    migrations: &[&'static EmbeddedMigrations],
) -> Result<Pool, DatabaseError> {
    let database = url.path().trim_start_matches('/').to_owned();
    create_if_missing(url, &database).await?;
    migrate(url, &database, migrations).await?;
    let mut config = ManagerConfig::default();
    config.recycling_method = RecyclingMethod::CustomFunction(Box::new(|conn| {
        Box::pin(async move { checked_out(conn) })
    }));
    let manager =
        AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(url.as_str(), config);
    bb8::Pool::builder()
        .max_size(pool_size)
        .connection_timeout(std::time::Duration::from_secs(10))
        .build(manager)
        .await
        .map_err(|error| DatabaseError::Pool {
            database,
            message: error.to_string(),
        })
}

/// Whether a pooled connection may be handed out, without a round trip: a
/// `SELECT 1` per checkout was one statement in eight under load. A
/// connection the server closed (a restart, a terminated backend) is
/// closed on our side as soon as its socket is, and is replaced; one that
/// breaks later fails its first statement, which every caller already
/// handles as a transient error.
fn checked_out(conn: &mut AsyncPgConnection) -> diesel::QueryResult<()> {
    if PoolableConnection::is_broken(conn) {
        Err(diesel::result::Error::BrokenTransactionManager)
    } else {
        Ok(())
    }
}

async fn create_if_missing(url: &url::Url, database: &str) -> Result<(), DatabaseError> {
    if database.is_empty()
        || !database
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return Err(DatabaseError::Name(database.to_owned()));
    }
    let server = server_url(url);
    let mut conn = AsyncPgConnection::establish(server.as_str())
        .await
        .map_err(|source| DatabaseError::Connect {
            url: redacted(&server),
            source,
        })?;
    let query_error = |source| DatabaseError::Query {
        database: database.to_owned(),
        source,
    };
    let exists: bool = diesel::select(diesel::dsl::sql::<diesel::sql_types::Bool>(&format!(
        "EXISTS (SELECT 1 FROM pg_database WHERE datname = '{database}')"
    )))
    .get_result(&mut conn)
    .await
    .map_err(query_error)?;
    if !exists {
        // The name was checked above, so it is safe to splice into the statement.
        match diesel::sql_query(format!("CREATE DATABASE {database}"))
            .execute(&mut conn)
            .await
        {
            Ok(_) => tracing::info!(%database, "database created"),
            // Another replica created it between our check and our create:
            // "already exists", or a unique violation when both raced.
            Err(diesel::result::Error::DatabaseError(kind, info))
                if kind == diesel::result::DatabaseErrorKind::UniqueViolation
                    || info.message().contains("already exists") => {}
            Err(error) => return Err(query_error(error)),
        }
    }
    Ok(())
}

/// Lends a `'static` migration set to diesel, which wants a source by value.
struct Borrowed(&'static EmbeddedMigrations);

impl diesel::migration::MigrationSource<diesel::pg::Pg> for Borrowed {
    fn migrations(
        &self,
    ) -> diesel::migration::Result<Vec<Box<dyn diesel::migration::Migration<diesel::pg::Pg>>>> {
        self.0.migrations()
    }
}

async fn migrate(
    url: &url::Url,
    database: &str,
    migrations: &[&'static EmbeddedMigrations],
) -> Result<(), DatabaseError> {
    let url = url.clone();
    let database = database.to_owned();
    let migrations = migrations.to_vec();
    tokio::task::spawn_blocking(move || {
        let failed = |message: String| DatabaseError::Migrate {
            database: database.clone(),
            message,
        };
        let mut conn =
            <AsyncConnectionWrapper<AsyncPgConnection> as diesel::Connection>::establish(
                url.as_str(),
            )
            .map_err(|source| DatabaseError::Connect {
                url: redacted(&url),
                source,
            })?;
        // Migrations may take long on a big database and wait for replicas
        // still running the old code: no session limit applies to them.
        diesel::connection::SimpleConnection::batch_execute(
            &mut conn,
            "SET lock_timeout = 0; SET statement_timeout = 0; SET idle_in_transaction_session_timeout = 0",
        )
        .map_err(|error| failed(error.to_string()))?;
        // Session-level lock: held until this connection closes at the end.
        diesel::RunQueryDsl::execute(
            diesel::sql_query(format!(
                "SELECT pg_advisory_lock({})",
                crate::advisory_locks::MIGRATION
            )),
            &mut conn,
        )
        .map_err(|error| failed(error.to_string()))?;
        for source in migrations {
            let applied = conn
                .run_pending_migrations(Borrowed(source))
                .map_err(|error| failed(error.to_string()))?;
            for version in applied {
                tracing::info!(%database, %version, "migration applied");
            }
        }
        Ok(())
    })
    .await
    .map_err(|error| DatabaseError::Migrate {
        database: "(migration task)".to_owned(),
        message: error.to_string(),
    })?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_limits_join_the_urls_own_options() {
        let limits = SessionLimits {
            lock_timeout: std::time::Duration::from_secs(5),
            statement_timeout: std::time::Duration::from_secs(60),
            idle_in_transaction: std::time::Duration::from_millis(1_500),
        };
        let plain = url::Url::parse("postgres://u@h:5432/popug_billing").expect("url");
        assert_eq!(
            limits.apply(&plain).as_str(),
            "postgres://u@h:5432/popug_billing?options=-c%20lock_timeout%3D5000%20-c%20statement_timeout%3D60000%20-c%20idle_in_transaction_session_timeout%3D1500"
        );
        let own = url::Url::parse(
            "postgres://u@h/db?sslmode=disable&password=a+b&options=-c%20search_path%3Dx",
        )
        .expect("url");
        let limited = limits.apply(&own);
        let pairs: Vec<(String, String)> = limited
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        assert_eq!(pairs[0], ("sslmode".into(), "disable".into()));
        assert!(
            pairs[2]
                .1
                .starts_with("-c search_path=x -c lock_timeout=5000"),
            "{pairs:?}"
        );
        assert!(
            limited.as_str().contains("password=a+b&"),
            "a `+` stays as written: {limited}"
        );
    }
}
