//! A test's own databases, dropped when the test ends.
//!
//! A test names a fresh database (the service it starts creates it) and holds
//! a [`TestDatabase`] for as long as anything may use it; dropping it drops the
//! database `WITH (FORCE)` on a fresh connection. `DROP DATABASE` waits for a
//! checkpoint, seconds on a busy server, and the server finishes a drop whose
//! client has gone, so the test waits only until the command is sent and a
//! moment more: it is not slowed, and a drop that fails is logged, never
//! failing the test.

use std::time::Duration;

/// How long a test waits for the server to answer its drop: long enough to
/// hear of a refusal, short enough not to wait out a checkpoint.
const ANSWER_WAIT: Duration = Duration::from_millis(250);

/// How long a test waits to connect to the server to drop its databases.
const CONNECT_WAIT: Duration = Duration::from_secs(5);

/// The test Postgres server, as every test names it.
const SERVER: &str = "postgres://postgres@127.0.0.1:5432";

/// A database of one test's own, dropped (with every session on it) when
/// this is dropped.
#[derive(Debug)]
pub struct TestDatabase {
    url: url::Url,
}

impl TestDatabase {
    /// A fresh name, `popug_test_<uuid>`; the service started on
    /// [`TestDatabase::url`] creates it.
    pub fn fresh() -> Self {
        let url = format!("{SERVER}/popug_test_{}", uuid::Uuid::new_v4().simple())
            .parse()
            .expect("a valid URL");
        Self { url }
    }

    /// Takes over `url`'s database, e.g. one of a mesh's.
    pub fn adopt(url: url::Url) -> Self {
        Self { url }
    }

    /// Its URL.
    pub fn url(&self) -> &str {
        self.url.as_str()
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let url = &self.url;
        // Drop runs inside the test's runtime, which must not block: the
        // drop gets a thread and a runtime of its own.
        std::thread::scope(|scope| {
            scope.spawn(|| {
                match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime.block_on(drop_database(url)),
                    Err(error) => tracing::warn!(%error, "no runtime to drop a test database"),
                }
            });
        });
    }
}

/// Sends `DROP DATABASE … WITH (FORCE)` for `url`'s database; logs what
/// goes wrong.
async fn drop_database(url: &url::Url) {
    let name = url.path().trim_start_matches('/');
    let server = popug_runtime::database::server_url(url);
    let connected = tokio::time::timeout(
        CONNECT_WAIT,
        tokio_postgres::connect(server.as_str(), tokio_postgres::NoTls),
    )
    .await;
    let (client, connection) = match connected {
        Ok(Ok(connected)) => connected,
        Ok(Err(error)) => {
            tracing::warn!(%error, database = name, "cannot connect to drop a test database");
            return;
        }
        Err(_) => {
            tracing::warn!(
                database = name,
                "timed out connecting to drop a test database"
            );
            return;
        }
    };
    let driving = tokio::spawn(connection);
    let statement = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
    match tokio::time::timeout(ANSWER_WAIT, client.simple_query(&statement)).await {
        Ok(Ok(_)) => {}
        Ok(Err(error)) => {
            tracing::warn!(%error, database = name, "a test database was not dropped");
        }
        // Sent; the server finishes it after this process has gone.
        Err(_) => tracing::debug!(database = name, "a test database is left to drop"),
    }
    driving.abort();
}
