//! The idempotent consumer: applies events from the service's queue exactly
//! once in effect, and sends what cannot be applied to the dead-letter queue.
//!
//! A step ([`Consumer::process_batch`]) waits for a delivery, takes whatever
//! else is ready or comes within [`ConsumerConfig::linger`] (up to the batch
//! size) and applies the batch in one
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
//!   [`HandlerError::Rejected`](crate::HandlerError::Rejected)): recorded in `failed_events` and nacked to
//!   the dead-letter queue on first delivery, never applied.
//! - *Handler failures* ([`HandlerError::Failed`](crate::HandlerError::Failed), database errors that are
//!   not transient): requeued, and dead-lettered on the last allowed attempt,
//!   well within the queue's delivery limit.
//!
//! Every dead letter is logged as an ERROR alert.
//!
//! One concern per file: `connection` (the channel and its subscription),
//! `delivery` (a delivery parsed and held against the catalog before the
//! transaction), `apply` (the batch step: the fast path, the careful path
//! and their retries), `inbox` (the one inbox transaction both paths run),
//! `lock_keys` (handlers' lock keys as advisory locks), `settle` (acks,
//! requeues and dead letters), `workers` (competing workers and the
//! dead-letter gauge), `partitions` (workers that split deliveries by lock
//! key) and `classify` (which failures are retried how).

mod apply;
mod classify;
mod connection;
mod delivery;
mod inbox;
mod lock_keys;
mod partitions;
mod settle;
mod workers;

use std::sync::Arc;

use futures::{FutureExt as _, StreamExt as _};
use popug_runtime::database::Pool;
use tokio_util::sync::CancellationToken;

pub use self::classify::is_transient;
pub(crate) use self::{apply::Outcome, delivery::Item};
use self::{
    connection::{Link, next_delivery},
    settle::Acks,
};
use crate::{
    broker::{Backoff, Broker},
    handlers::Handlers,
    topology::{self, QueueSpec},
};

/// Tuning of a consumer.
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// Unacknowledged deliveries the broker may push ahead.
    pub prefetch: u16,
    /// Most deliveries applied in one transaction.
    pub batch_size: usize,
    /// How long a competing worker's step may wait, after its first
    /// delivery, for more to fill its batch (zero: only what is ready).
    /// For a read model whose readers do not mind a few milliseconds:
    /// fuller batches cost fewer commits and statements per event.
    /// Partitioned workers take what is ready.
    pub linger: std::time::Duration,
    /// Deliveries of an event whose handler fails before it is dead-lettered.
    pub attempts: u32,
    /// Pauses between retries of transient failures.
    pub backoff: Backoff,
    /// Workers in [`Consumer::run`], each with its own database connection;
    /// events carry no ordering promise across workers. They compete on the
    /// queue, each with its own channel, unless `partitioned`.
    pub workers: usize,
    /// Whether the workers are partitions of one subscription, each taking
    /// the deliveries of its share of the handlers' lock keys (see
    /// `partitions`): for a consumer whose batches would otherwise wait on
    /// each other's locks all the time, such as billing's on the popugs'
    /// accounts. Elsewhere competing workers cost less: each forms its
    /// batches straight from its own channel.
    pub partitioned: bool,
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
            linger: std::time::Duration::ZERO,
            attempts: 3,
            backoff: Backoff::default(),
            workers: 4,
            partitioned: false,
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

    /// Waits for deliveries, applies a batch and settles it. Returns `None`
    /// when `token` was cancelled first.
    pub async fn process_batch(
        &mut self,
        token: &CancellationToken,
    ) -> Result<Option<BatchReport>, ConsumerError> {
        let (batch_size, linger) = (self.config.batch_size, self.config.linger);
        let queue = self.broker.topology().queue(&self.name);
        let link = self.link().await?;
        let first = tokio::select! {
            delivery = link.deliveries.next() => delivery,
            () = token.cancelled() => return Ok(None),
        };
        let mut deliveries = vec![next_delivery(first, &queue)?];
        let lingering = tokio::time::Instant::now() + linger;
        while deliveries.len() < batch_size {
            let next = match link.deliveries.next().now_or_never() {
                Some(next) => next,
                None if linger.is_zero() => break,
                None => match tokio::time::timeout_at(lingering, link.deliveries.next()).await {
                    Ok(next) => next,
                    Err(_) => break,
                },
            };
            deliveries.push(next_delivery(next, &queue)?);
        }
        self.record_batch_size(deliveries.len());
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
        self.settle(&items, &outcomes, &queue, Acks::Together)
            .await
            .map(Some)
    }

    /// The size of a batch about to be applied, as a metric.
    fn record_batch_size(&self, deliveries: usize) {
        metrics::histogram!("popug_consumer_batch_size", "service" => self.name.clone())
            .record(deliveries as f64);
        tracing::debug!(consumer = %self.name, deliveries, "batch");
    }
}
