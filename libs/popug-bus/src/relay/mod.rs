//! The outbox relay: publishes committed events to the broker and deletes
//! each row only after the broker has confirmed it.
//!
//! One step ([`Relay::publish_pending`]) takes a batch of rows in id order,
//! publishes them all with the mandatory flag, persistent delivery and the
//! connection's user as the AMQP `user_id` (which the broker validates), with
//! their confirms pipelined (the whole batch in flight at once), and deletes
//! the rows whose confirms came back positive, up to the first failure. A
//! nack or a returned (unroutable) message leaves that row and every later
//! one in place, so nothing is lost; the step reports the error and the loop
//! retries on the growing schedule of [`Backoff`].
//!
//! Order is best effort, and consumers must not rely on it: ids are taken at
//! insert, not at commit, and rows after a failed one may already have been
//! delivered when the batch is retried (those copies are duplicates, which
//! the inboxes absorb).
//!
//! Replicas: a step runs in a transaction holding a transaction-level
//! advisory lock, so one relay publishes at a time; the others stand by and
//! take over when it stops. A crash between a confirm and the delete
//! publishes that batch again, which the consumers' inboxes absorb
//! (at-least-once).
//!
//! [`Relay::run`] loops on steps and wakes on `NOTIFY popug_outbox`, sent by
//! a trigger when rows commit, with a slow poll as a safety net. After a
//! broker outage it reconnects within about a second of the broker's return
//! ([`Broker::pause_until_back`]).
//!
//! A broker under a memory or disk alarm blocks publishers: it stops reading
//! what they send, and confirms never come. The relay waits for confirms at
//! most [`RelayConfig::confirm_timeout`]; then, or before publishing when the
//! broker has already said `connection.blocked`, the step fails with
//! [`RelayError::Blocked`]. The relay says so in the log (an ALERT when it
//! starts), in `popug_relay_blocked` and in `GetOutboxStatus`, keeps the
//! connection, and looks again every second; rows stay in the outbox.

use std::{sync::Arc, time::Duration};

use diesel::{ExpressionMethods as _, QueryDsl as _};
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};
use lapin::{Channel, Connection, types::ShortString};
use popug_runtime::{advisory_locks, database::Pool};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

mod health;
mod publish;
mod wake;

pub use health::RelayHealth;

use self::{
    publish::{load_batch, publish, timed_out},
    wake::{listen, wait},
};
use crate::{
    broker::{Backoff, Broker},
    schema::outbox,
    topology,
};

/// How often a blocked relay looks again.
const BLOCKED_RECHECK: Duration = Duration::from_secs(1);

/// What one step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Published and deleted this many rows.
    Published(usize),
    /// Nothing was waiting.
    Idle,
    /// Another replica's relay is publishing.
    Standby,
}

/// Why a step failed; every row it did not confirm is still in the outbox.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The database failed.
    #[error("outbox database error: {0}")]
    Database(#[from] diesel::result::Error),
    /// No database connection could be had.
    #[error("no outbox database connection: {0}")]
    Pool(String),
    /// The broker could not be reached or failed mid-publish.
    #[error("broker error: {0}")]
    Broker(#[from] lapin::Error),
    /// The broker refused the event.
    #[error("broker nacked event {event_id}")]
    Nacked {
        /// The refused event.
        event_id: Uuid,
    },
    /// The broker blocks publishing (a memory or disk alarm), or confirms
    /// did not come back in time.
    #[error("the broker is not accepting events: {reason}")]
    Blocked {
        /// The broker's reason, or what the relay saw.
        reason: String,
    },
    /// No queue is bound to the event's routing key, so it would be lost.
    #[error("event {event_id} is unroutable: no queue is bound to `{routing_key}`")]
    Unroutable {
        /// The returned event.
        event_id: Uuid,
        /// Its routing key.
        routing_key: String,
    },
}

/// Tuning of a relay.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Most rows published per step (and so in flight at once).
    pub batch_size: i64,
    /// Pauses between failed attempts.
    pub backoff: Backoff,
    /// How often to look for rows when no notification came.
    pub poll_interval: Duration,
    /// How long a batch's confirms may take before the broker is taken to
    /// be blocking the relay.
    pub confirm_timeout: Duration,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            batch_size: 1_000,
            backoff: Backoff::default(),
            poll_interval: Duration::from_secs(2),
            confirm_timeout: Duration::from_secs(15),
        }
    }
}

/// Publishes one service's outbox.
pub struct Relay {
    pool: Pool,
    broker: Broker,
    producer: String,
    config: RelayConfig,
    health: Arc<RelayHealth>,
    /// The publishing connection, opened on first use and after failures.
    link: Option<(Connection, Channel)>,
}

impl Relay {
    /// A relay for `producer`'s outbox in `pool`'s database.
    pub fn new(
        pool: Pool,
        broker: Broker,
        producer: impl Into<String>,
        config: RelayConfig,
    ) -> Self {
        Self {
            pool,
            broker,
            producer: producer.into(),
            config,
            health: Arc::default(),
            link: None,
        }
    }

    /// The relay's health, for the ops service.
    pub fn health(&self) -> Arc<RelayHealth> {
        Arc::clone(&self.health)
    }

    async fn channel(&mut self) -> Result<Channel, RelayError> {
        if let Some((connection, channel)) = &self.link
            && connection.status().connected()
            && channel.status().connected()
        {
            return Ok(channel.clone());
        }
        self.link = None;
        let (connection, channel) = self.broker.confirm_channel().await?;
        topology::declare_catalog(&channel, self.broker.topology()).await?;
        self.link = Some((connection, channel.clone()));
        Ok(channel)
    }

    /// Publishes one batch of pending rows; see the module docs.
    pub async fn publish_pending(&mut self) -> Result<Step, RelayError> {
        let outcome = self.try_publish_pending().await;
        let blocked = matches!(outcome, Err(RelayError::Blocked { .. }));
        metrics::gauge!("popug_relay_blocked", "service" => self.producer.clone())
            .set(if blocked { 1.0 } else { 0.0 });
        match &outcome {
            Ok(_) => self.health.record(true, false, None),
            // A blocked connection is kept: the broker unblocks it when the
            // alarm clears, and a new one would be blocked the same way.
            Err(error @ RelayError::Blocked { .. }) => {
                self.health.record(true, true, Some(error.to_string()));
            }
            Err(error) => {
                self.link = None;
                self.health.record(false, false, Some(error.to_string()));
            }
        }
        // 1 while steps succeed (a standby relay connects too), 0 from the
        // first failed one: what `PopugRelayDisconnected` watches.
        metrics::gauge!("popug_relay_connected", "service" => self.producer.clone())
            .set(if outcome.is_ok() { 1.0 } else { 0.0 });
        outcome
    }

    /// The broker's `connection.blocked` notice on the current link.
    fn link_blocked(&self) -> bool {
        self.link
            .as_ref()
            .is_some_and(|(connection, _)| connection.status().blocked())
    }

    fn blocked_error(&self, waited: Option<Duration>) -> RelayError {
        let reason = match (self.link_blocked(), waited) {
            (true, _) | (false, None) => {
                "the broker blocks publishing (a memory or disk alarm)".to_owned()
            }
            (false, Some(waited)) => format!("no confirms from the broker within {waited:?}"),
        };
        RelayError::Blocked { reason }
    }

    async fn try_publish_pending(&mut self) -> Result<Step, RelayError> {
        let channel = self.channel().await?;
        if self.link_blocked() {
            return Err(self.blocked_error(None));
        }
        let confirm_timeout = self.config.confirm_timeout;
        tracing::debug!("outbox relay step");
        let exchange: ShortString = self.broker.topology().exchange().into();
        let producer: ShortString = self.producer.as_str().into();
        // The broker refuses a `user_id` that is not the connection's user,
        // so consumers can believe it.
        let user: ShortString = self.broker.user().into();
        let batch_size = self.config.batch_size;
        let mut conn = self
            .pool
            .get()
            .await
            .map_err(|error| RelayError::Pool(error.to_string()))?;
        // The transaction commits the deletes of what was confirmed even when
        // a later row failed; the failure is reported after the commit.
        let (step, failure) = conn
            .transaction::<_, RelayError, _>(async |conn| {
                let locked: bool = diesel::select(diesel::dsl::sql::<diesel::sql_types::Bool>(
                    &format!("pg_try_advisory_xact_lock({})", advisory_locks::RELAY),
                ))
                .get_result(conn)
                .await?;
                if !locked {
                    return Ok((Step::Standby, None));
                }
                let rows = load_batch(conn, batch_size).await?;
                tracing::debug!(rows = rows.len(), "outbox batch loaded");
                if rows.is_empty() {
                    return Ok((Step::Idle, None));
                }
                let Ok((confirmed, failure)) = tokio::time::timeout(
                    confirm_timeout,
                    publish(&channel, &exchange, &producer, &user, &rows),
                )
                .await
                else {
                    // Nothing is deleted: rows published but unconfirmed go
                    // again later, and the inboxes absorb the copies.
                    return Ok((Step::Idle, Some(timed_out())));
                };
                tracing::debug!(confirmed, ?failure, "outbox batch published");
                let ids: Vec<i64> = rows[..confirmed].iter().map(|row| row.id).collect();
                diesel::delete(outbox::table.filter(outbox::id.eq_any(&ids)))
                    .execute(conn)
                    .await?;
                Ok((Step::Published(confirmed), failure))
            })
            .await?;
        match failure {
            Some(RelayError::Blocked { .. }) => Err(self.blocked_error(Some(confirm_timeout))),
            Some(error) => Err(error),
            None => Ok(step),
        }
    }

    /// The relay as an essential background task of a service; each
    /// restart starts from a new broker connection and the same health.
    pub fn into_task(self) -> popug_runtime::BackgroundTask {
        popug_runtime::BackgroundTask::new("outbox relay", move |token| {
            Self {
                pool: self.pool.clone(),
                broker: self.broker.clone(),
                producer: self.producer.clone(),
                config: self.config.clone(),
                health: Arc::clone(&self.health),
                link: None,
            }
            .run(token)
        })
        .essential()
    }

    /// Steps until `token` is cancelled: publishes whatever commits, retries
    /// failures on the backoff schedule, and logs an ERROR alert while the
    /// broker is away.
    pub async fn run(mut self, token: CancellationToken) {
        let mut backoff = self.config.backoff.clone();
        let mut listener: Option<AsyncPgConnection> = None;
        let mut gauged_at: Option<std::time::Instant> = None;
        let mut blocked_since: Option<std::time::Instant> = None;
        while !token.is_cancelled() {
            if listener.is_none() {
                listener = listen(&self.pool).await;
            }
            // The backlog gauges, at most once a second (a count per step
            // would slow a large backlog down).
            if gauged_at.is_none_or(|at| at.elapsed() >= Duration::from_secs(1)) {
                self.gauge_backlog().await;
                gauged_at = Some(std::time::Instant::now());
            }
            let stepped = self.publish_pending().await;
            if let Ok(Step::Published(published)) = &stepped {
                metrics::counter!("popug_events_published_total", "service" => self.producer.clone())
                    .increment(u64::try_from(*published).unwrap_or(0));
            }
            if !matches!(stepped, Err(RelayError::Blocked { .. }))
                && let Some(since) = blocked_since.take()
            {
                tracing::info!(blocked_for = ?since.elapsed(), "the broker no longer blocks the outbox relay");
            }
            let broker_failure = match &stepped {
                Err(RelayError::Broker(error)) => Some(crate::broker::is_unreachable(error)),
                _ => None,
            };
            let (pause, woken_by_commits) = match stepped {
                Ok(step) => {
                    if backoff.failures() > 0 {
                        tracing::info!("outbox relay publishing again");
                    }
                    backoff.reset();
                    match step {
                        Step::Published(_) => continue,
                        Step::Idle => (self.config.poll_interval, true),
                        Step::Standby => {
                            (self.config.poll_interval.min(Duration::from_secs(1)), true)
                        }
                    }
                }
                Err(error @ RelayError::Blocked { .. }) => {
                    // Looking again costs nothing (nothing is published while
                    // the broker says it blocks), so no growing pause.
                    if blocked_since.is_none() {
                        blocked_since = Some(std::time::Instant::now());
                        tracing::error!(
                            %error,
                            "ALERT: the broker blocks the outbox relay; events wait in the outbox"
                        );
                    }
                    (BLOCKED_RECHECK, false)
                }
                Err(error) => {
                    let pause = backoff.next_pause();
                    let backlog = match self.pool.get().await {
                        Ok(mut conn) => crate::outbox::backlog(&mut conn).await.ok(),
                        Err(_) => None,
                    };
                    tracing::error!(
                        %error,
                        pending = backlog.map(|b| b.pending),
                        oldest = ?backlog.and_then(|b| b.oldest),
                        retry_in = ?pause,
                        "ALERT: outbox relay cannot publish; events wait in the outbox"
                    );
                    // New commits must not cut the backoff short.
                    (pause, false)
                }
            };
            if woken_by_commits {
                if !wait(&mut listener, pause, &token).await {
                    listener = None;
                }
            } else if let Some(unreachable) = broker_failure {
                self.broker
                    .pause_until_back(pause, unreachable, &token)
                    .await;
            } else {
                wait(&mut None, pause, &token).await;
            }
        }
        if let Some((connection, _)) = self.link.take() {
            connection.close(200, "shutting down".into()).await.ok();
        }
    }
}

impl Relay {
    /// Sets `popug_outbox_pending` and `popug_outbox_oldest_age_seconds`.
    async fn gauge_backlog(&self) {
        let backlog = match self.pool.get().await {
            Ok(mut conn) => crate::outbox::backlog(&mut conn).await,
            Err(error) => {
                tracing::debug!(%error, "backlog not measured: no connection");
                return;
            }
        };
        match backlog {
            Ok(backlog) => {
                let service = self.producer.clone();
                metrics::gauge!("popug_outbox_pending", "service" => service.clone())
                    .set(backlog.pending as f64);
                metrics::gauge!("popug_outbox_oldest_age_seconds", "service" => service)
                    .set(backlog.oldest_age().as_secs_f64());
            }
            Err(error) => tracing::debug!(%error, "backlog not measured"),
        }
    }
}
