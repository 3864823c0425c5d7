//! Settling a batch after its commit: the applied and duplicate deliveries
//! acknowledged with one `multiple` ack, retries requeued, dead letters
//! nacked into the dead-letter queue (each logged as an ERROR alert), and
//! the outcome counters and lag histogram.

use lapin::options::{BasicAckOptions, BasicNackOptions};

use super::{BatchReport, Consumer, ConsumerError, Outcome, delivery::Item};

impl Consumer {
    /// Settles every delivery of the batch by its outcome.
    pub(super) async fn settle(
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
}

/// lapin answers `false` when the channel can no longer settle deliveries.
fn settled(sent: bool) -> Result<(), ConsumerError> {
    if sent {
        Ok(())
    } else {
        Err(ConsumerError::Unsettled)
    }
}
