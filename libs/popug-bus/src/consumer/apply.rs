//! The apply step: a batch applied in one transaction. The fast path runs
//! the inbox transaction once for the whole batch; if a handler fails, the
//! careful path applies the batch again one event per savepoint, so a bad
//! event is dead-lettered alone. A conflict with a concurrent transaction
//! is retried at once, another transient failure with backoff.

use diesel_async::{AsyncConnection as _, AsyncPgConnection};
use tokio_util::sync::CancellationToken;

use super::{
    Consumer,
    classify::{Retry, is_transient},
    delivery::{Item, Parsed},
    inbox::{Handling, InboxError},
};
use crate::{
    dead_letters::{self, bounded},
    handlers::HandlerError,
};

/// What became of one delivery in the apply step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    Applied,
    Duplicate,
    Retry,
    /// Recorded and to be sent to the dead-letter queue, for this reason
    /// (already cut to a loggable length).
    DeadLetter(String),
}

impl Consumer {
    /// Applies `items`, retrying conflicts at once and transient failures
    /// with backoff; `None` when `token` was cancelled first.
    pub(crate) async fn apply_retrying(
        &self,
        items: &[Item],
        queue: &str,
        token: &CancellationToken,
    ) -> Option<Vec<Outcome>> {
        let mut backoff = self.config.backoff.clone();
        loop {
            match self.apply(items, queue).await {
                Ok(outcomes) => return Some(outcomes),
                // Two transactions took the same rows in different orders:
                // nothing is wrong, so try again at once, after a short
                // random pause that lets the other one finish.
                Err(Retry {
                    error,
                    conflict: true,
                }) => {
                    tracing::debug!(consumer = %self.name, error = %bounded(&error), "conflict with a concurrent transaction; retrying the batch");
                    metrics::counter!("popug_consumer_conflicts_total", "service" => self.name.clone())
                        .increment(1);
                    let jitter = u64::from(
                        std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .unwrap_or_default()
                            .subsec_micros(),
                    ) % 20_000;
                    tokio::time::sleep(std::time::Duration::from_micros(jitter)).await;
                }
                Err(Retry { error, .. }) => {
                    let pause = backoff.next_pause();
                    if backoff.failures() >= 5 {
                        tracing::error!(consumer = %self.name, error = %bounded(&error), retry_in = ?pause, failures = backoff.failures(),
                            "ALERT: a batch keeps failing; its deliveries wait unacknowledged");
                    } else {
                        tracing::warn!(consumer = %self.name, error = %bounded(&error), retry_in = ?pause, "transient failure; retrying the batch");
                    }
                    tokio::select! {
                        () = tokio::time::sleep(pause) => {},
                        () = token.cancelled() => return None,
                    }
                }
            }
        }
    }

    /// Applies the batch in one transaction; an error is transient and the
    /// whole batch is retried.
    ///
    /// The fast path inserts the whole batch into the inbox with one
    /// statement and runs the handlers without savepoints, each batch
    /// handler once for all of its type's events. If any handler
    /// fails, that transaction rolls back and the batch is applied again on
    /// the careful path, one savepoint per event, so a failure is isolated
    /// to its own event.
    async fn apply(&self, items: &[Item], queue: &str) -> Result<Vec<Outcome>, Retry> {
        let mut conn = self.pool.get().await.map_err(|error| Retry {
            error: error.to_string(),
            conflict: false,
        })?;
        if items.iter().all(|item| item.parsed.is_ok()) {
            match self.apply_fast(&mut conn, items).await {
                Ok(outcomes) => return Ok(outcomes),
                Err(InboxError::Handler(HandlerError::Database(error))) if is_transient(&error) => {
                    return Err(Retry::from(&error));
                }
                Err(InboxError::Database(error)) => return Err(Retry::from(&error)),
                Err(InboxError::Handler(_)) => {}
            }
        }
        conn.transaction::<_, diesel::result::Error, _>(async |conn| {
            self.lock_keys(
                conn,
                items.iter().filter_map(|item| item.parsed.as_ref().ok()),
            )
            .await?;
            let mut outcomes = Vec::with_capacity(items.len());
            for item in items {
                outcomes.push(self.apply_one(conn, item, queue).await?);
            }
            Ok(outcomes)
        })
        .await
        .map_err(|error| Retry::from(&error))
    }

    /// The fast path: the whole batch through one inbox transaction, after
    /// its lock keys.
    async fn apply_fast(
        &self,
        conn: &mut AsyncPgConnection,
        items: &[Item],
    ) -> Result<Vec<Outcome>, InboxError> {
        let parsed: Vec<&Parsed> = items
            .iter()
            .filter_map(|item| item.parsed.as_ref().ok())
            .collect();
        conn.transaction::<_, InboxError, _>(async |conn| {
            self.lock_keys(conn, parsed.iter().copied()).await?;
            let outcomes = self
                .claim_and_apply(conn, &parsed, Handling::Together)
                .await?;
            for (item, parsed) in items.iter().zip(&parsed) {
                self.resolve_replay(conn, item, parsed).await?;
            }
            Ok(outcomes)
        })
        .await
    }

    /// The careful path for one event: a dead letter if it cannot apply,
    /// else the inbox transaction in a savepoint of its own, so a failing
    /// handler undoes only its event.
    async fn apply_one(
        &self,
        conn: &mut AsyncPgConnection,
        item: &Item,
        queue: &str,
    ) -> Result<Outcome, diesel::result::Error> {
        let parsed = match &item.parsed {
            Ok(parsed) => parsed,
            Err(unusable) => {
                dead_letters::record(
                    conn,
                    self.failure(item, queue, unusable.meta.as_ref(), &unusable.reason),
                )
                .await?;
                return Ok(Outcome::DeadLetter(bounded(&unusable.reason).into_owned()));
            }
        };
        let applied = conn
            .transaction::<_, HandlerError, _>(async |conn| {
                Ok(self
                    .claim_and_apply(conn, &[parsed], Handling::Alone)
                    .await?)
            })
            .await;
        let outcome = match applied {
            Ok(outcomes) => outcomes.into_iter().next().unwrap_or(Outcome::Duplicate),
            Err(HandlerError::Database(error)) if is_transient(&error) => return Err(error),
            Err(error) => {
                let last_attempt = matches!(error, HandlerError::Rejected(_))
                    || item.earlier_deliveries + 1 >= self.config.attempts;
                let error = error.to_string();
                if !last_attempt {
                    tracing::warn!(consumer = %self.name, event_id = %parsed.meta.event_id, error = %bounded(&error), "handler failed; will retry");
                    return Ok(Outcome::Retry);
                }
                dead_letters::record(conn, self.failure(item, queue, Some(&parsed.meta), &error))
                    .await?;
                return Ok(Outcome::DeadLetter(bounded(&error).into_owned()));
            }
        };
        self.resolve_replay(conn, item, parsed).await?;
        Ok(outcome)
    }
}
