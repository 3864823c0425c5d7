//! Retention: the bus tables do not grow without bound.
//!
//! - **The inbox** remembers each applied event's id so that a duplicate
//!   changes nothing. It must remember longer than any duplicate can arrive:
//!   the broker redelivers an unacknowledged delivery within minutes, a relay
//!   that died between the broker's confirm and its delete republishes within
//!   seconds of restarting, and a duplicate queued behind a backlog arrives
//!   when the backlog does (hours in a bad outage). The default, 30 days
//!   (`POPUG_INBOX_RETENTION_DAYS`), is far beyond all of them. The one
//!   duplicate that can wait longer is a copy sitting in a dead-letter
//!   queue; so an inbox row whose event has an unresolved dead letter is
//!   kept whatever its age.
//! - **Dead letters** are kept while unresolved (someone must decide), and
//!   for `POPUG_DEAD_LETTER_RETENTION_DAYS` (default 30) once resolved or
//!   discarded. Discards' audit records (`dead_letter_discards`) are kept:
//!   each is one admin's decision.
//!
//! [`prune`] deletes in batches of [`BATCH`] rows, each its own short
//! statement, so it never holds many locks or a long transaction;
//! [`Retention::into_task`] runs it at start and then every hour.

use std::time::Duration;

use diesel::sql_types::{BigInt, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use popug_runtime::database::Pool;
use tokio_util::sync::CancellationToken;

/// Rows deleted per statement.
pub const BATCH: i64 = 10_000;

/// How often the background task prunes.
pub const PERIOD: Duration = Duration::from_secs(3_600);

/// How long rows are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionConfig {
    /// Inbox rows older than this go (unless their event has an open dead
    /// letter).
    pub inbox: Duration,
    /// Dead letters resolved or discarded longer ago than this go.
    pub dead_letters: Duration,
}

impl RetentionConfig {
    /// The periods the service's settings give.
    pub fn from_settings(settings: &popug_runtime::Settings) -> Self {
        Self {
            inbox: settings.inbox_retention,
            dead_letters: settings.dead_letter_retention,
        }
    }
}

/// What one [`prune`] deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Inbox rows.
    pub inbox: u64,
    /// Closed dead letters.
    pub dead_letters: u64,
}

/// Deletes the inbox rows and closed dead letters that `config` says are
/// old at `now`; see the module docs.
pub async fn prune(
    conn: &mut AsyncPgConnection,
    config: RetentionConfig,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Pruned, diesel::result::Error> {
    let before =
        |keep: Duration| now - chrono::Duration::from_std(keep).unwrap_or(chrono::Duration::MAX);
    let inbox = in_batches(
        conn,
        "DELETE FROM inbox WHERE (consumer, event_id) IN ( \
             SELECT i.consumer, i.event_id FROM inbox i \
             WHERE i.applied_at < $1 AND NOT EXISTS ( \
                 SELECT 1 FROM failed_events f \
                 WHERE f.consumer = i.consumer AND f.event_id = i.event_id \
                   AND f.resolved_at IS NULL) \
             LIMIT $2)",
        before(config.inbox),
    )
    .await?;
    let dead_letters = in_batches(
        conn,
        "DELETE FROM failed_events WHERE id IN ( \
             SELECT id FROM failed_events WHERE resolved_at < $1 LIMIT $2)",
        before(config.dead_letters),
    )
    .await?;
    Ok(Pruned {
        inbox,
        dead_letters,
    })
}

async fn in_batches(
    conn: &mut AsyncPgConnection,
    statement: &str,
    before: chrono::DateTime<chrono::Utc>,
) -> Result<u64, diesel::result::Error> {
    let mut deleted = 0;
    loop {
        let batch = diesel::sql_query(statement)
            .bind::<Timestamptz, _>(before)
            .bind::<BigInt, _>(BATCH)
            .execute(conn)
            .await?;
        deleted += batch as u64;
        if i64::try_from(batch).unwrap_or(i64::MAX) < BATCH {
            return Ok(deleted);
        }
    }
}

/// The retention of one service's bus tables, as a background task.
#[derive(Clone)]
pub struct Retention {
    pool: Pool,
    service: String,
    config: RetentionConfig,
}

impl Retention {
    /// Prunes `pool`'s bus tables as `config` says; `service` labels the
    /// metrics and logs.
    pub fn new(pool: Pool, service: impl Into<String>, config: RetentionConfig) -> Self {
        Self {
            pool,
            service: service.into(),
            config,
        }
    }

    /// The retention of a service's bus tables in `pool`, with the periods
    /// of its `settings`.
    pub fn for_service(pool: Pool, settings: &popug_runtime::Settings) -> Self {
        Self::new(
            pool,
            settings.service.name(),
            RetentionConfig::from_settings(settings),
        )
    }

    /// One pruning, counted in `popug_retention_pruned_total` by table.
    pub async fn run_once(&self) -> Result<Pruned, String> {
        let mut conn = self.pool.get().await.map_err(|error| error.to_string())?;
        let pruned = prune(&mut conn, self.config, chrono::Utc::now())
            .await
            .map_err(|error| error.to_string())?;
        for (table, rows) in [
            ("inbox", pruned.inbox),
            ("failed_events", pruned.dead_letters),
        ] {
            metrics::counter!("popug_retention_pruned_total", "service" => self.service.clone(), "table" => table)
                .increment(rows);
        }
        if pruned != Pruned::default() {
            tracing::info!(service = %self.service, inbox = pruned.inbox, dead_letters = pruned.dead_letters, "old bus rows pruned");
        }
        Ok(pruned)
    }

    /// Prunes at start and every [`PERIOD`] until `token` is cancelled; a
    /// failed pruning is logged and tried again next period.
    pub async fn run(self, token: CancellationToken) {
        loop {
            let pruning = tokio::select! {
                pruned = self.run_once() => pruned,
                () = token.cancelled() => return,
            };
            if let Err(error) = pruning {
                tracing::warn!(service = %self.service, %error, "pruning old bus rows failed; trying again in an hour");
            }
            tokio::select! {
                () = tokio::time::sleep(PERIOD) => {},
                () = token.cancelled() => return,
            }
        }
    }

    /// [`Retention::run`] as a background task of a service (restarted by
    /// the supervisor if it ends).
    pub fn into_task(self) -> popug_runtime::BackgroundTask {
        popug_runtime::BackgroundTask::new("retention", move |token| self.clone().run(token))
    }
}
