//! Settling a batch after its commit: the applied and duplicate deliveries
//! acknowledged (with one `multiple` ack when the channel is the batch's
//! own), retries requeued, dead letters
//! nacked into the dead-letter queue (each logged as an ERROR alert), and
//! the outcome counters and lag histogram.

use std::collections::BTreeSet;

use lapin::{
    Channel,
    options::{BasicAckOptions, BasicNackOptions},
};

use super::{BatchReport, Consumer, ConsumerError, Outcome, delivery::Item};

/// How a batch's applied and duplicate deliveries are acknowledged.
#[derive(Clone, Copy)]
pub(super) enum Acks<'a> {
    /// One `multiple` ack for the lot: the channel holds no other
    /// unsettled deliveries than the batch's.
    Together,
    /// Through the channel's [`SharedAcks`]: other batches hold deliveries
    /// of the same channel.
    Shared(&'a SharedAcks),
}

/// The acks of a channel whose deliveries several batches settle (see
/// `partitions`): a `multiple` ack is sent only up to the oldest delivery
/// still in a batch, so it never settles another batch's delivery before
/// that batch's commit; one ack covers what several batches applied.
pub(super) struct SharedAcks {
    channel: Channel,
    tags: tokio::sync::Mutex<Tags>,
    /// Whether any batch has been settled.
    settled_any: std::sync::atomic::AtomicBool,
}

/// Delivery tags of a shared channel.
#[derive(Default)]
struct Tags {
    /// Handed to a batch and not settled yet.
    in_flight: BTreeSet<u64>,
    /// Applied or duplicate, waiting for the `multiple` ack that covers them.
    to_ack: BTreeSet<u64>,
}

impl SharedAcks {
    pub(super) fn new(channel: Channel) -> Self {
        Self {
            channel,
            tags: tokio::sync::Mutex::default(),
            settled_any: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Whether any batch has been settled through these acks.
    pub(super) fn settled_any(&self) -> bool {
        self.settled_any.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A delivery handed to a batch.
    pub(super) async fn dispatched(&self, tag: u64) {
        self.tags.lock().await.in_flight.insert(tag);
    }

    /// Deliveries of a batch settled: `acked` wait for their ack, `nacked`
    /// were nacked already. Sends the `multiple` ack that covers every
    /// delivery to ack below the oldest one still in a batch, if any.
    async fn settled(&self, acked: &[u64], nacked: &[u64]) -> Result<(), ConsumerError> {
        // The lock is held over the send, so acks go out in tag order.
        let mut tags = self.tags.lock().await;
        if let Some(upto) = tags.settle(acked, nacked) {
            self.channel
                .basic_ack(upto, BasicAckOptions { multiple: true })
                .await?;
        }
        self.settled_any
            .store(true, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }
}

impl Tags {
    /// Records a batch's settled deliveries; the tag up to which one
    /// `multiple` ack may now go: the newest delivery to ack that is older
    /// than every delivery still in a batch.
    fn settle(&mut self, acked: &[u64], nacked: &[u64]) -> Option<u64> {
        for tag in acked.iter().chain(nacked) {
            self.in_flight.remove(tag);
        }
        self.to_ack.extend(acked);
        let oldest = self.in_flight.first().copied().unwrap_or(u64::MAX);
        let upto = *self.to_ack.range(..oldest).next_back()?;
        self.to_ack = self.to_ack.split_off(&(upto + 1));
        Some(upto)
    }
}

impl Consumer {
    /// Settles every delivery of the batch by its outcome.
    pub(super) async fn settle(
        &self,
        items: &[Item],
        outcomes: &[Outcome],
        queue: &str,
        acks: Acks<'_>,
    ) -> Result<BatchReport, ConsumerError> {
        let mut report = BatchReport::default();
        let mut last_ack = None;
        let (mut acked, mut nacked) = (Vec::new(), Vec::new());
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
                    acked.push(item.delivery.delivery_tag);
                    last_ack = Some(item);
                }
                Outcome::Retry => {
                    report.retried += 1;
                    nacked.push(item.delivery.delivery_tag);
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
                    nacked.push(item.delivery.delivery_tag);
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
        match acks {
            // Everything else in the batch is settled already, and the
            // channel holds nothing else, so one ack with `multiple` covers
            // exactly the applied and duplicate deliveries.
            Acks::Together => {
                if let Some(item) = last_ack {
                    settled(
                        item.delivery
                            .acker
                            .ack(BasicAckOptions { multiple: true })
                            .await?,
                    )?;
                }
            }
            Acks::Shared(shared) => shared.settled(&acked, &nacked).await?,
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
}

/// lapin answers `false` when the channel can no longer settle deliveries.
fn settled(sent: bool) -> Result<(), ConsumerError> {
    if sent {
        Ok(())
    } else {
        Err(ConsumerError::Unsettled)
    }
}

#[cfg(test)]
mod tests {
    use super::Tags;

    #[test]
    fn a_multiple_ack_never_covers_a_delivery_still_in_a_batch() {
        let mut tags = Tags::default();
        tags.in_flight.extend(1..=6);
        // 1 is still in a batch: nothing may be acked yet.
        assert_eq!(tags.settle(&[2, 3], &[]), None);
        // Now 1..=3 are applied, 4 is the oldest in a batch.
        assert_eq!(tags.settle(&[1], &[]), Some(3));
        // 4 was nacked by itself; 5 is still in a batch.
        assert_eq!(tags.settle(&[6], &[4]), None);
        assert_eq!(tags.settle(&[5], &[]), Some(6));
        assert!(tags.in_flight.is_empty() && tags.to_ack.is_empty());
        // A batch of nothing but nacks acks nothing.
        tags.in_flight.insert(7);
        assert_eq!(tags.settle(&[], &[7]), None);
    }
}
