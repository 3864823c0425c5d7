//! The idempotent consumer: applies events from the service's queue exactly
//! once in effect, and sends what cannot be applied to the dead-letter queue.
//!
//! A step ([`Consumer::process_batch`]) waits for a delivery, takes whatever
//! else is ready (up to the batch size) and applies the batch in one
//! transaction. Per event, inside a savepoint: insert `(consumer, event_id)`
//! into the inbox, and, if that row is new, run the handler. So a redelivered
//! event changes nothing, and batching amortises the commit. Acks go out only
//! after the commit.
//!
//! Failures:
//! - *Transient* (the database or broker briefly away): the batch is retried
//!   with backoff, holding its deliveries; no delivery attempt is spent.
//! - *Permanent* (bytes that do not decode, an unknown type or version, an
//!   incoherent delivery (see [`crate::trust`]), a failed validation,
//!   [`HandlerError::Rejected`]): recorded in `failed_events` and nacked to
//!   the dead-letter queue on first delivery, never applied.
//! - *Handler failures* ([`HandlerError::Failed`], database errors that are
//!   not transient): requeued, and dead-lettered on the last allowed attempt,
//!   well within the queue's delivery limit.
//!
//! Every dead letter is logged as an ERROR alert.

use std::sync::Arc;

use diesel::ExpressionMethods as _;
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};
use futures::{FutureExt as _, StreamExt as _};
use lapin::{
    Channel, Connection,
    message::Delivery,
    options::{BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions},
    types::{AMQPValue, FieldTable},
};
use popug_runtime::database::Pool;
use tokio_util::sync::CancellationToken;

use crate::{
    broker::{Backoff, Broker},
    dead_letters::{self, DEAD_LETTER_ID_HEADER, Failure, Origin, REPLAYED_HEADER, bounded},
    envelope::EventMeta,
    handlers::{HandlerError, Handlers},
    schema::inbox,
    topology::{self, QueueSpec},
    trust::{self, Received},
};

/// Tuning of a consumer.
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// Unacknowledged deliveries the broker may push ahead.
    pub prefetch: u16,
    /// Most deliveries applied in one transaction.
    pub batch_size: usize,
    /// Deliveries of an event whose handler fails before it is dead-lettered.
    pub attempts: u32,
    /// Pauses between retries of transient failures.
    pub backoff: Backoff,
    /// Competing workers in [`Consumer::run`], each with its own channel and
    /// database connection; events carry no ordering promise across workers.
    pub workers: usize,
    /// Whether [`Consumer::run`] first rebuilds the consumer's state from the
    /// history stream, once ([`Consumer::replay_history`]): for a read
    /// model, never for the books.
    pub rebuild_from_history: bool,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        Self {
            prefetch: 512,
            batch_size: 256,
            attempts: 3,
            backoff: Backoff::default(),
            workers: 4,
            rebuild_from_history: false,
        }
    }
}

/// Why a step stopped before settling its batch. Unsettled deliveries return
/// to the queue when the channel closes.
#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    /// The broker failed or went away.
    #[error("broker error: {0}")]
    Broker(#[from] lapin::Error),
    /// The channel could not acknowledge; the broker will redeliver.
    #[error("the channel could not settle a delivery")]
    Unsettled,
    /// The broker cancelled our subscription (e.g. the queue was deleted).
    #[error("the broker cancelled the subscription to {0}")]
    Cancelled(String),
    /// A rebuild from the event history could not go on.
    #[error("rebuilding from the event history: {0}")]
    History(String),
}

/// What one step did with its deliveries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchReport {
    /// Applied for the first time.
    pub applied: usize,
    /// Already in the inbox: acknowledged, nothing changed.
    pub duplicates: usize,
    /// Sent back to the queue for another attempt.
    pub retried: usize,
    /// Recorded in `failed_events` and sent to the dead-letter queue.
    pub dead_lettered: usize,
}

impl BatchReport {
    /// Deliveries the step settled.
    pub fn settled(&self) -> usize {
        self.applied + self.duplicates + self.retried + self.dead_lettered
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    Applied,
    Duplicate,
    Retry,
    /// Recorded and to be sent to the dead-letter queue, for this reason
    /// (already cut to a loggable length).
    DeadLetter(String),
}

/// Why a batch must be applied again; nothing was committed.
struct Retry {
    error: String,
    /// A deadlock or serialization failure: retried at once, not backed off.
    conflict: bool,
}

impl From<&diesel::result::Error> for Retry {
    fn from(error: &diesel::result::Error) -> Self {
        Self {
            error: error.to_string(),
            conflict: is_conflict(error),
        }
    }
}

/// A deadlock, a serialization failure or a lock wait that timed out
/// between concurrent transactions.
fn is_conflict(error: &diesel::result::Error) -> bool {
    use diesel::result::{DatabaseErrorKind, Error};
    match error {
        Error::DatabaseError(DatabaseErrorKind::SerializationFailure, _) => true,
        // A lock wait that ran out of time is a collision too: the holder
        // is slow or hung, and the server ends a hung one's transaction.
        Error::DatabaseError(_, info) => {
            info.message().contains("deadlock detected")
                || info
                    .message()
                    .contains("canceling statement due to lock timeout")
        }
        _ => false,
    }
}

/// Why the fast path gave up on a batch.
#[derive(Debug, thiserror::Error)]
enum FastPathError {
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
    #[error(transparent)]
    Handler(HandlerError),
}

/// A delivery, parsed before the transaction so that bad bytes cost no I/O
/// (a replayed one costs a look-up of its dead-letter row).
pub(crate) struct Item {
    pub(crate) delivery: Delivery,
    parsed: Result<Parsed, Unusable>,
    /// Earlier deliveries of this message (the quorum queue's `x-delivery-count`).
    pub(crate) earlier_deliveries: u32,
    /// Set when the replay moved this message back from the dead-letter
    /// queue (its mark believed: its row holds exactly its bytes).
    replay: Option<Replay>,
    /// The routing key the message was published with: the delivery's own,
    /// or for a replay the one its dead-letter row kept (`None`: unknown).
    routing_key: Option<String>,
    /// The broker user that published it: the delivery's `user_id`, or for a
    /// replay the one its dead-letter row kept.
    user_id: Option<String>,
}

struct Parsed {
    meta: EventMeta,
    decoded: Box<dyn std::any::Any + Send + Sync>,
}

/// A message that will never apply: why, and its envelope if it could be read.
struct Unusable {
    meta: Option<EventMeta>,
    reason: String,
    /// Its producer's broker user did not publish it.
    unauthenticated: bool,
}

/// A replayed message whose mark was believed (see `replay_origin`).
struct Replay {
    /// The message's `failed_events` row.
    dead_letter_id: i64,
}

struct Link {
    connection: Connection,
    channel: Channel,
    deliveries: lapin::Consumer,
}

/// Consumes one service's queue.
pub struct Consumer {
    pub(crate) pool: Pool,
    pub(crate) broker: Broker,
    pub(crate) name: String,
    handlers: Arc<Handlers>,
    pub(crate) config: ConsumerConfig,
    link: Option<Link>,
}

impl Consumer {
    /// A consumer named `name` (the service, e.g. `billing`) applying `handlers`.
    pub fn new(
        pool: Pool,
        broker: Broker,
        name: impl Into<String>,
        handlers: Handlers,
        config: ConsumerConfig,
    ) -> Self {
        Self {
            pool,
            broker,
            name: name.into(),
            handlers: Arc::new(handlers),
            config,
            link: None,
        }
    }

    /// The consumer's name, as recorded in the inbox and `failed_events`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How the consumer's queue is declared.
    pub fn queue_spec(&self) -> QueueSpec {
        QueueSpec::new(self.name.clone(), self.handlers.routing_keys())
    }

    /// Declares the exchange, the queue and its dead-letter queue.
    pub async fn declare(&self) -> lapin::Result<()> {
        let connection = self.broker.connect().await?;
        let channel = connection.create_channel().await?;
        topology::declare_queue(&channel, self.broker.topology(), &self.queue_spec()).await?;
        connection.close(200, "declared".into()).await
    }

    async fn link(&mut self) -> Result<&mut Link, ConsumerError> {
        let usable = self.link.as_ref().is_some_and(|link| {
            link.connection.status().connected() && link.channel.status().connected()
        });
        if !usable {
            self.link = None;
            let connection = self.broker.connect().await?;
            let channel = connection.create_channel().await?;
            topology::declare_queue(&channel, self.broker.topology(), &self.queue_spec()).await?;
            channel
                .basic_qos(self.config.prefetch, BasicQosOptions::default())
                .await?;
            let deliveries = channel
                .basic_consume(
                    self.broker.topology().queue(&self.name).into(),
                    format!("{}-{}", self.name, uuid::Uuid::new_v4()).into(),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await?;
            self.link = Some(Link {
                connection,
                channel,
                deliveries,
            });
        }
        Ok(self.link.as_mut().expect("the link was just made"))
    }

    /// Waits for deliveries, applies a batch and settles it. Returns `None`
    /// when `token` was cancelled first.
    pub async fn process_batch(
        &mut self,
        token: &CancellationToken,
    ) -> Result<Option<BatchReport>, ConsumerError> {
        let batch_size = self.config.batch_size;
        let queue = self.broker.topology().queue(&self.name);
        let link = self.link().await?;
        let first = tokio::select! {
            delivery = link.deliveries.next() => delivery,
            () = token.cancelled() => return Ok(None),
        };
        let mut deliveries = vec![next_delivery(first, &queue)?];
        while deliveries.len() < batch_size {
            match link.deliveries.next().now_or_never() {
                Some(next) => deliveries.push(next_delivery(next, &queue)?),
                None => break,
            }
        }
        metrics::histogram!("popug_consumer_batch_size", "service" => self.name.clone())
            .record(deliveries.len() as f64);
        tracing::debug!(consumer = %self.name, deliveries = deliveries.len(), "batch");
        let mut items: Vec<Item> = Vec::with_capacity(deliveries.len());
        for delivery in deliveries {
            let Some(origin) = self.replay_origin(&delivery, token).await else {
                // Cancelled: unsettled deliveries go back to the queue.
                return Ok(None);
            };
            items.push(self.parse(delivery, origin));
        }

        let Some(outcomes) = self.apply_retrying(&items, &queue, token).await else {
            // Cancelled: unsettled deliveries go back to the queue.
            return Ok(None);
        };
        self.settle(&items, &outcomes, &queue).await.map(Some)
    }

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

    /// For a delivery that says it is a replay, the origin its dead-letter
    /// row recorded, if that row holds exactly this body (a mark without
    /// such a row is not believed). `None` when `token` was cancelled while
    /// the database was away.
    async fn replay_origin(
        &self,
        delivery: &Delivery,
        token: &CancellationToken,
    ) -> Option<Option<Origin>> {
        let headers = delivery
            .properties
            .headers()
            .as_ref()
            .map(FieldTable::inner);
        let header = |name: &str| headers.and_then(|headers| headers.get(name));
        // The replay publishes through the default exchange.
        let claimed = match header(DEAD_LETTER_ID_HEADER).and_then(long) {
            Some(id)
                if delivery.exchange.as_str().is_empty() && header(REPLAYED_HEADER).is_some() =>
            {
                id
            }
            _ => return Some(None),
        };
        let mut backoff = self.config.backoff.clone();
        loop {
            let looked_up = match self.pool.get().await {
                Ok(mut conn) => {
                    dead_letters::origin_of(&mut conn, &self.name, claimed, &delivery.data)
                        .await
                        .map_err(|error| error.to_string())
                }
                Err(error) => Err(error.to_string()),
            };
            match looked_up {
                Ok(origin) => return Some(origin),
                Err(error) => {
                    let pause = backoff.next_pause();
                    tracing::warn!(consumer = %self.name, error = %bounded(&error), retry_in = ?pause, "cannot look up a replayed message's row; retrying");
                    tokio::select! {
                        () = tokio::time::sleep(pause) => {},
                        () = token.cancelled() => return None,
                    }
                }
            }
        }
    }

    pub(crate) fn parse(&self, delivery: Delivery, origin: Option<Origin>) -> Item {
        let headers = delivery
            .properties
            .headers()
            .as_ref()
            .map(FieldTable::inner);
        let earlier_deliveries = headers
            .and_then(|headers| headers.get("x-delivery-count"))
            .and_then(integer)
            .unwrap_or(0);
        // A replay is held against where the message first came from, as its
        // row recorded it; anything else against the broker's own word.
        let (replay, routing_key, user_id) = match origin {
            Some(origin) => (
                Some(Replay {
                    dead_letter_id: origin.id,
                }),
                origin.routing_key,
                origin.user_id,
            ),
            None => (
                None,
                Some(delivery.routing_key.to_string()),
                delivery
                    .properties
                    .user_id()
                    .as_ref()
                    .map(|user| user.to_string()),
            ),
        };
        let received = Received {
            routing_key: routing_key.as_deref(),
            amqp_type: delivery
                .properties
                .kind()
                .as_ref()
                .map(|kind| kind.as_str()),
            app_id: delivery
                .properties
                .app_id()
                .as_ref()
                .map(|app| app.as_str()),
            user_id: user_id.as_deref(),
        };
        let parsed = match trust::admit(&delivery.data, &received, self.broker.producer_users()) {
            Err(refused) => Err(Unusable {
                meta: refused.meta.map(|meta| *meta),
                reason: refused.reason,
                unauthenticated: refused.unauthenticated,
            }),
            Ok((opened, _)) => match self
                .handlers
                .decode(&opened.meta.event_type, &opened.payload)
            {
                Ok(decoded) => Ok(Parsed {
                    meta: opened.meta,
                    decoded,
                }),
                Err(reason) => Err(Unusable {
                    meta: Some(opened.meta),
                    reason,
                    unauthenticated: false,
                }),
            },
        };
        Item {
            delivery,
            parsed,
            earlier_deliveries,
            replay,
            routing_key,
            user_id,
        }
    }

    /// The record of `item`'s failure.
    fn failure<'a>(
        &'a self,
        item: &'a Item,
        queue: &'a str,
        meta: Option<&'a EventMeta>,
        error: &'a str,
    ) -> Failure<'a> {
        Failure {
            consumer: &self.name,
            queue,
            routing_key: item.routing_key.as_deref(),
            user_id: item.user_id.as_deref(),
            dead_letter_id: item.replay.as_ref().map(|replay| replay.dead_letter_id),
            meta,
            body: &item.delivery.data,
            error,
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
                Err(FastPathError::Handler(HandlerError::Database(error)))
                    if is_transient(&error) =>
                {
                    return Err(Retry::from(&error));
                }
                Err(FastPathError::Database(error)) => return Err(Retry::from(&error)),
                Err(FastPathError::Handler(_)) => {}
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

    async fn apply_fast(
        &self,
        conn: &mut AsyncPgConnection,
        items: &[Item],
    ) -> Result<Vec<Outcome>, FastPathError> {
        let parsed: Vec<&Parsed> = items
            .iter()
            .filter_map(|item| item.parsed.as_ref().ok())
            .collect();
        conn.transaction::<_, FastPathError, _>(async |conn| {
            self.lock_keys(conn, parsed.iter().copied()).await?;
            let rows: Vec<_> = parsed
                .iter()
                .map(|p| {
                    (
                        inbox::consumer.eq(&self.name),
                        inbox::event_id.eq(p.meta.event_id),
                    )
                })
                .collect();
            let mut fresh: std::collections::HashSet<uuid::Uuid> =
                diesel::insert_into(inbox::table)
                    .values(rows)
                    .on_conflict_do_nothing()
                    .returning(inbox::event_id)
                    .get_results(conn)
                    .await?
                    .into_iter()
                    .collect();
            // `remove`: a second copy of an event in the same batch is a duplicate.
            let outcomes: Vec<Outcome> = parsed
                .iter()
                .map(|p| {
                    if fresh.remove(&p.meta.event_id) {
                        Outcome::Applied
                    } else {
                        Outcome::Duplicate
                    }
                })
                .collect();
            let applied: Vec<_> = parsed
                .iter()
                .zip(&outcomes)
                .filter(|(_, outcome)| **outcome == Outcome::Applied)
                .map(|(p, _)| (&p.meta, &p.decoded))
                .collect();
            self.handlers
                .apply_all(conn, &applied)
                .await
                .map_err(FastPathError::Handler)?;
            for (item, parsed) in items.iter().zip(&parsed) {
                if let Some(replay) = &item.replay {
                    dead_letters::resolve(
                        conn,
                        &self.name,
                        parsed.meta.event_id,
                        Some(replay.dead_letter_id),
                    )
                    .await?;
                }
            }
            // A handler that swallowed a database error leaves the transaction
            // aborted, and Postgres would answer our COMMIT with a silent
            // ROLLBACK; this probe turns that into an error instead.
            ensure_usable(conn).await.map_err(FastPathError::Handler)?;
            Ok(outcomes)
        })
        .await
    }

    /// Takes the batch's lock keys (see [`Handlers::locking`]) as
    /// transaction-level advisory locks, sorted, before anything else: every
    /// competing transaction then locks in the same order.
    async fn lock_keys<'p>(
        &self,
        conn: &mut AsyncPgConnection,
        parsed: impl Iterator<Item = &'p Parsed>,
    ) -> Result<(), diesel::result::Error> {
        let mut locks: Vec<i32> = parsed
            .flat_map(|p| self.handlers.lock_keys(&p.meta.event_type, &p.decoded))
            .map(|key| lock_id(&key))
            .collect();
        if locks.is_empty() {
            return Ok(());
        }
        locks.sort_unstable();
        locks.dedup();
        // `unnest` yields the ids in array order, and each row's lock is
        // taken as the row is produced.
        diesel::sql_query(format!(
            "SELECT pg_advisory_xact_lock({KEY_LOCK_CLASS}, id) FROM unnest($1::int4[]) AS id"
        ))
        .bind::<diesel::sql_types::Array<diesel::sql_types::Integer>, _>(&locks)
        .execute(conn)
        .await
        .map(drop)
    }

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
        let handlers = &self.handlers;
        let applied = conn
            .transaction::<bool, HandlerError, _>(async |conn| {
                let fresh = diesel::insert_into(inbox::table)
                    .values((
                        inbox::consumer.eq(&self.name),
                        inbox::event_id.eq(parsed.meta.event_id),
                    ))
                    .on_conflict_do_nothing()
                    .execute(conn)
                    .await?
                    == 1;
                if fresh {
                    handlers.apply(conn, &parsed.meta, &parsed.decoded).await?;
                    ensure_usable(conn).await?;
                }
                Ok(fresh)
            })
            .await;
        let fresh = match applied {
            Ok(fresh) => fresh,
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
        if let Some(replay) = &item.replay {
            dead_letters::resolve(
                conn,
                &self.name,
                parsed.meta.event_id,
                Some(replay.dead_letter_id),
            )
            .await?;
        }
        Ok(if fresh {
            Outcome::Applied
        } else {
            Outcome::Duplicate
        })
    }

    async fn settle(
        &self,
        items: &[Item],
        outcomes: &[Outcome],
        queue: &str,
    ) -> Result<BatchReport, ConsumerError> {
        let mut report = BatchReport::default();
        let mut last_ack = None;
        let lag = metrics::histogram!("popug_consumer_lag_seconds", "service" => self.name.clone());
        let committed_at = chrono::Utc::now();
        for (item, outcome) in items.iter().zip(outcomes) {
            if let (Outcome::Applied, Ok(parsed)) = (outcome, &item.parsed) {
                // From the producer's commit to this consumer's.
                let millis = (committed_at - parsed.meta.occurred_at).num_milliseconds();
                lag.record(millis.max(0) as f64 / 1000.0);
            }
            match outcome {
                Outcome::Applied | Outcome::Duplicate => {
                    if *outcome == Outcome::Applied {
                        report.applied += 1;
                    } else {
                        report.duplicates += 1;
                    }
                    last_ack = Some(item);
                }
                Outcome::Retry => {
                    report.retried += 1;
                    settled(
                        item.delivery
                            .acker
                            .nack(BasicNackOptions {
                                requeue: true,
                                multiple: false,
                            })
                            .await?,
                    )?;
                }
                Outcome::DeadLetter(reason) => {
                    report.dead_lettered += 1;
                    let (meta, unauthenticated) = match &item.parsed {
                        Ok(parsed) => (Some(&parsed.meta), false),
                        Err(unusable) => (unusable.meta.as_ref(), unusable.unauthenticated),
                    };
                    let event_id = meta.map(|meta| meta.event_id);
                    let event_type = meta.map(|meta| meta.event_type.as_str());
                    let routing_key = item.routing_key.as_deref();
                    if unauthenticated {
                        let user_id = item.user_id.as_deref();
                        tracing::error!(
                            consumer = %self.name, %queue, ?event_id, event_type, routing_key, user_id,
                            %reason,
                            "ALERT: event not published by its producer's broker user (forged, or a producer misconfigured) dead-lettered"
                        );
                    } else {
                        tracing::error!(
                            consumer = %self.name, %queue, ?event_id, event_type, routing_key,
                            %reason,
                            "ALERT: event dead-lettered; see ListDeadLetters, replay after the fix"
                        );
                    }
                    settled(
                        item.delivery
                            .acker
                            .nack(BasicNackOptions {
                                requeue: false,
                                multiple: false,
                            })
                            .await?,
                    )?;
                }
            }
        }
        // Everything else in the batch is settled already, so one ack with
        // `multiple` covers exactly the applied and duplicate deliveries.
        if let Some(item) = last_ack {
            settled(
                item.delivery
                    .acker
                    .ack(BasicAckOptions { multiple: true })
                    .await?,
            )?;
        }
        for (outcome, count) in [
            ("applied", report.applied),
            ("duplicate", report.duplicates),
            ("retried", report.retried),
            ("dead_lettered", report.dead_lettered),
        ] {
            if count > 0 {
                metrics::counter!("popug_events_consumed_total", "service" => self.name.clone(), "outcome" => outcome)
                    .increment(u64::try_from(count).unwrap_or(u64::MAX));
            }
        }
        Ok(report)
    }

    /// The consumer as an essential background task of a service.
    pub fn into_task(self) -> popug_runtime::BackgroundTask {
        popug_runtime::BackgroundTask::new("consumer", move |token| self.worker().run(token))
            .essential()
    }

    /// Runs `config.workers` competing workers until `token` is cancelled,
    /// reconnecting with backoff when the broker goes away. Returns once every
    /// worker has settled the batch in hand. A worker that dies stops the
    /// others, and the panic goes on to the caller (the supervisor restarts
    /// the whole consumer), so a consumer never runs short of workers.
    pub async fn run(mut self, token: CancellationToken) {
        if self.config.rebuild_from_history {
            let mut backoff = self.config.backoff.clone();
            loop {
                match self.replay_history(&token).await {
                    Ok(_) => break,
                    Err(error) => {
                        let pause = backoff.next_pause();
                        tracing::error!(consumer = %self.name, %error, retry_in = ?pause,
                            "ALERT: rebuilding from the event history failed; retrying");
                        self.broker
                            .pause_until_back(pause, unreachable(&error), &token)
                            .await;
                    }
                }
                if token.is_cancelled() {
                    return;
                }
            }
        }
        let stop = token.child_token();
        let mut running = tokio::task::JoinSet::new();
        for _ in 0..self.config.workers.max(1) {
            running.spawn(self.worker().run_worker(stop.clone()));
        }
        running.spawn(gauge_dead_letters(
            self.pool.clone(),
            self.name.clone(),
            stop.clone(),
        ));
        let mut panic = None;
        while let Some(joined) = running.join_next().await {
            // Workers end only when stopped: one that ends early stops all.
            stop.cancel();
            if let Err(error) = joined
                && error.is_panic()
            {
                panic.get_or_insert(error.into_panic());
            }
        }
        if let Some(panic) = panic {
            std::panic::resume_unwind(panic);
        }
    }

    /// Another worker on the same queue, with its own connection.
    fn worker(&self) -> Self {
        Self {
            pool: self.pool.clone(),
            broker: self.broker.clone(),
            name: self.name.clone(),
            handlers: Arc::clone(&self.handlers),
            config: self.config.clone(),
            link: None,
        }
    }

    async fn run_worker(mut self, token: CancellationToken) {
        let mut backoff = self.config.backoff.clone();
        while !token.is_cancelled() {
            match self.process_batch(&token).await {
                Ok(_) => backoff.reset(),
                Err(error) => {
                    self.link = None;
                    let pause = backoff.next_pause();
                    tracing::error!(
                        consumer = %self.name, broker = %self.broker.redacted_url(), %error, retry_in = ?pause,
                        "ALERT: consumer lost the broker; reconnecting"
                    );
                    self.broker
                        .pause_until_back(pause, unreachable(&error), &token)
                        .await;
                }
            }
        }
        if let Some(link) = self.link.take() {
            link.connection
                .close(200, "shutting down".into())
                .await
                .ok();
        }
    }
}

/// Whether a consumer's failure was not reaching the broker at all.
fn unreachable(error: &ConsumerError) -> bool {
    matches!(error, ConsumerError::Broker(error) if crate::broker::is_unreachable(error))
}

/// The first half of the two-part advisory locks taken for handlers' lock
/// keys ("popk" in ASCII); two-part keys never meet the one-part ones the
/// relay and billing's day close use.
const KEY_LOCK_CLASS: i32 = 0x706f_706b;

/// A lock key's advisory lock: FNV-1a, fixed so that replicas of different
/// builds agree. Two keys sharing an id only wait for each other.
fn lock_id(key: &str) -> i32 {
    let hash = key.bytes().fold(0x811c_9dc5_u32, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    });
    i32::from_ne_bytes(hash.to_ne_bytes())
}

/// How often the unresolved dead letters are counted.
const DEAD_LETTER_GAUGE_PERIOD: std::time::Duration = std::time::Duration::from_secs(5);

/// `popug_dead_letters_unresolved`: the dead letters nobody has replayed yet,
/// counted from the database every few seconds. Unlike the `dead_lettered`
/// outcome counter it survives restarts, so "above zero" is an alert rule.
async fn gauge_dead_letters(pool: Pool, service: String, token: CancellationToken) {
    let gauge = metrics::gauge!("popug_dead_letters_unresolved", "service" => service.clone());
    while !token.is_cancelled() {
        let count = async {
            match pool.get().await {
                Ok(mut conn) => dead_letters::unresolved(&mut conn)
                    .await
                    .map_err(|error| error.to_string()),
                Err(error) => Err(error.to_string()),
            }
        };
        // A database that is down must not hold up shutdown.
        let counted = tokio::select! {
            counted = count => counted,
            () = token.cancelled() => return,
        };
        match counted {
            Ok(unresolved) => gauge.set(unresolved as f64),
            Err(error) => {
                tracing::warn!(%service, %error, "cannot count the unresolved dead letters");
            }
        }
        tokio::select! {
            () = tokio::time::sleep(DEAD_LETTER_GAUGE_PERIOD) => {},
            () = token.cancelled() => {},
        }
    }
}

/// lapin answers `false` when the channel can no longer settle deliveries.
fn settled(sent: bool) -> Result<(), ConsumerError> {
    if sent {
        Ok(())
    } else {
        Err(ConsumerError::Unsettled)
    }
}

/// Fails when the transaction was aborted by an error a handler swallowed.
async fn ensure_usable(conn: &mut AsyncPgConnection) -> Result<(), HandlerError> {
    diesel::sql_query("SELECT 1")
        .execute(conn)
        .await
        .map(drop)
        .map_err(|error| {
            HandlerError::Failed(format!(
                "the handler returned Ok but left the transaction unusable: {error}"
            ))
        })
}

fn next_delivery(
    next: Option<lapin::Result<Delivery>>,
    queue: &str,
) -> Result<Delivery, ConsumerError> {
    match next {
        Some(Ok(delivery)) => Ok(delivery),
        Some(Err(error)) => Err(error.into()),
        None => Err(ConsumerError::Cancelled(queue.to_owned())),
    }
}

/// A header's integer, as the replay writes it.
fn long(value: &AMQPValue) -> Option<i64> {
    match value {
        AMQPValue::LongLongInt(v) => Some(*v),
        AMQPValue::LongInt(v) => Some(i64::from(*v)),
        AMQPValue::LongUInt(v) => Some(i64::from(*v)),
        _ => None,
    }
}

fn integer(value: &AMQPValue) -> Option<u32> {
    let wide = match value {
        AMQPValue::ShortShortInt(v) => i64::from(*v),
        AMQPValue::ShortShortUInt(v) => i64::from(*v),
        AMQPValue::ShortInt(v) => i64::from(*v),
        AMQPValue::ShortUInt(v) => i64::from(*v),
        AMQPValue::LongInt(v) => i64::from(*v),
        AMQPValue::LongUInt(v) => i64::from(*v),
        AMQPValue::LongLongInt(v) => *v,
        _ => return None,
    };
    u32::try_from(wide).ok()
}

/// Database errors that say "try again later" (see
/// [`popug_runtime::database::is_transient`]).
pub use popug_runtime::database::is_transient;
