//! Partitioned workers, for a consumer configured so
//! ([`super::ConsumerConfig::partitioned`]) whose handlers declare lock keys
//! (see [`crate::handlers::Handlers::locking`]): one subscription whose
//! deliveries a reader sends to `workers` partitions by their first lock
//! key, so the batches of two partitions never take the same advisory lock
//! and never wait for each other. Competing workers on one queue would each
//! get a share of every account, and with batches of hundreds of events
//! every batch would wait for the one before it.
//!
//! Replicas share the queue as before; each partitions what it receives the
//! same way (the lock id is a fixed hash), so partition `i` of one replica
//! takes turns only with partition `i` of another.
//!
//! The partitions share one channel, so their acks go through
//! [`SharedAcks`]: a `multiple` ack only up to the oldest delivery still in
//! a partition's hands.

use futures::StreamExt as _;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{
    Consumer, ConsumerError, Item,
    connection::next_delivery,
    lock_keys::lock_id,
    settle::{Acks, SharedAcks},
};

impl Consumer {
    /// Whether [`Consumer::run`] partitions deliveries among its workers.
    pub(super) fn partitioned(&self) -> bool {
        self.config.partitioned && self.config.workers > 1 && self.handlers.declares_lock_keys()
    }

    /// Runs partitioned workers until `token` is cancelled, opening a new
    /// subscription with backoff whenever the broker goes away.
    pub(super) async fn run_partitioned(mut self, token: CancellationToken) {
        let mut backoff = self.config.backoff.clone();
        while !token.is_cancelled() {
            let (ended, settled) = self.partitioned_session(&token).await;
            // A session that settled something worked: the next failure
            // starts the backoff afresh, as a competing worker's does.
            if settled {
                backoff.reset();
            }
            if let Err(error) = ended {
                self.reconnect_after(&error, &mut backoff, &token).await;
            }
        }
        self.close_link().await;
    }

    /// One subscription: reads deliveries and hands each to its partition's
    /// worker until `token` is cancelled (`Ok`) or the broker or a worker
    /// fails. Returns once every worker has settled the batch in hand; what
    /// the partitions had not taken yet goes back to the queue with the
    /// channel. A worker's panic goes on to the caller. Also says whether
    /// any batch was settled.
    async fn partitioned_session(
        &mut self,
        token: &CancellationToken,
    ) -> (Result<(), ConsumerError>, bool) {
        let queue = self.broker.topology().queue(&self.name);
        if let Err(error) = self.link().await {
            return (Err(error), false);
        }
        let mut link = self.link.take().expect("the link was just made");
        let stop = token.child_token();
        let acks = std::sync::Arc::new(SharedAcks::new(link.channel.clone()));
        let mut senders = Vec::with_capacity(self.config.workers);
        let mut running = tokio::task::JoinSet::new();
        for _ in 0..self.config.workers {
            let (sender, receiver) = mpsc::channel(self.config.batch_size.max(1));
            senders.push(sender);
            running.spawn(self.worker().run_partition(
                receiver,
                std::sync::Arc::clone(&acks),
                stop.clone(),
            ));
        }
        let read = async {
            loop {
                let next = tokio::select! {
                    next = link.deliveries.next() => next,
                    () = stop.cancelled() => return Ok(()),
                };
                let delivery = next_delivery(next, &queue)?;
                let Some(origin) = self.replay_origin(&delivery, &stop).await else {
                    return Ok(());
                };
                acks.dispatched(delivery.delivery_tag).await;
                let item = self.parse(delivery, origin);
                let partition = self.partition_of(&item, senders.len());
                tokio::select! {
                    sent = senders[partition].send(item) => {
                        // A closed partition has stopped: its error ends the session.
                        if sent.is_err() { return Ok(()); }
                    },
                    () = stop.cancelled() => return Ok(()),
                }
            }
        };
        let mut ended = tokio::select! {
            read = read => read,
            Some(joined) = running.join_next() => joined_result(joined),
        };
        stop.cancel();
        drop(senders);
        while let Some(joined) = running.join_next().await {
            if ended.is_ok() {
                ended = joined_result(joined);
            }
        }
        if ended.is_ok() {
            self.link = Some(link);
        }
        (ended, acks.settled_any())
    }

    /// The partition of `item`: by its first lock key, else by its event id
    /// (an event without keys writes nothing a competing batch writes).
    fn partition_of(&self, item: &Item, partitions: usize) -> usize {
        let Ok(parsed) = &item.parsed else {
            return 0;
        };
        let hash = self
            .handlers
            .lock_keys(&parsed.meta.event_type, &parsed.decoded)
            .first()
            .map_or_else(
                || lock_id(&parsed.meta.event_id.to_string()),
                |key| lock_id(key),
            );
        usize::try_from(u32::from_ne_bytes(hash.to_ne_bytes())).unwrap_or(0) % partitions.max(1)
    }

    /// One partition: batches what the reader sent, applies and settles
    /// them until the reader stops sending or `token` is cancelled.
    async fn run_partition(
        self,
        mut items: mpsc::Receiver<Item>,
        acks: std::sync::Arc<SharedAcks>,
        token: CancellationToken,
    ) -> Result<(), ConsumerError> {
        let queue = self.broker.topology().queue(&self.name);
        loop {
            let first = tokio::select! {
                item = items.recv() => item,
                () = token.cancelled() => None,
            };
            let Some(first) = first else {
                return Ok(());
            };
            let mut batch = vec![first];
            while batch.len() < self.config.batch_size {
                match items.try_recv() {
                    Ok(item) => batch.push(item),
                    Err(_) => break,
                }
            }
            self.record_batch_size(batch.len());
            let Some(outcomes) = self.apply_retrying(&batch, &queue, &token).await else {
                return Ok(());
            };
            self.settle(&batch, &outcomes, &queue, Acks::Shared(&acks))
                .await?;
        }
    }
}

/// A finished partition's result; a panic goes on.
fn joined_result(
    joined: Result<Result<(), ConsumerError>, tokio::task::JoinError>,
) -> Result<(), ConsumerError> {
    match joined {
        Ok(result) => result,
        Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
        Err(_) => Ok(()),
    }
}
