//! Rebuilding a read model from the event history.
//!
//! When history is kept ([`crate::Topology::history_age`]), every event
//! published to the exchange also lands in a stream that keeps it for the
//! configured age. A consumer whose database was lost (analytics: its read
//! model is built purely from events) replays that stream from its first
//! event through its ordinary handlers, inbox and trust checks, so what it
//! had applied already is skipped and a forged event is refused as it was.
//!
//! Where the history ends: the replay first publishes a marker of its own
//! (routing key [`MARKER_KEY`], which only the stream is bound to) and reads
//! the stream until it meets it; everything before the marker is the
//! history, and what comes after reaches the consumer's own queue anyway.
//!
//! A replay runs once per consumer: its completion is recorded in
//! `history_replays`, and a replay cut short runs again from the start
//! (the inbox makes that harmless). A stream has no redelivery: an event a
//! handler refuses is recorded as a dead letter at once and the replay goes
//! on; a transient failure stops the replay, which the caller retries.

use diesel_async::RunQueryDsl as _;
use futures::{FutureExt as _, StreamExt as _};
use lapin::{
    BasicProperties, Confirmation,
    options::{
        BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
        ConfirmSelectOptions,
    },
    types::{AMQPValue, FieldTable},
};
use tokio_util::sync::CancellationToken;

use crate::{
    Consumer,
    consumer::{ConsumerError, Outcome},
};

/// The routing key of a replay's end marker.
pub const MARKER_KEY: &str = "history.marker";

/// What a replay did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HistoryReport {
    /// Events applied for the first time.
    pub applied: u64,
    /// Events already applied before (skipped by the inbox).
    pub duplicates: u64,
    /// Events recorded as dead letters.
    pub dead_lettered: u64,
    /// The stream offset of the first event read: above 0 when the oldest
    /// events have aged out, and the rebuild is then partial.
    pub first_offset: Option<i64>,
}

impl Consumer {
    /// Replays the history stream into this consumer, unless a replay has
    /// completed before; see the module docs. `Ok(None)` when there is
    /// nothing to do (replayed before, or the topology keeps no history) or
    /// `token` was cancelled.
    pub async fn replay_history(
        &mut self,
        token: &CancellationToken,
    ) -> Result<Option<HistoryReport>, ConsumerError> {
        if self.replayed_before().await? {
            return Ok(None);
        }
        let topology = self.broker.topology().clone();
        let Some(age) = topology.history_age() else {
            return Ok(None);
        };
        let stream = topology.history_stream();
        let connection = self.broker.connect().await?;
        let channel = connection.create_channel().await?;
        // Declared here too: the consumer may start before any producer.
        crate::topology::declare_history(&channel, &topology, age).await?;
        tracing::info!(consumer = %self.name, %stream, "rebuilding from the event history");
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        channel
            .basic_qos(self.config.prefetch, BasicQosOptions::default())
            .await?;
        let marker = uuid::Uuid::new_v4().to_string();
        let confirm = channel
            .basic_publish(
                topology.exchange().into(),
                MARKER_KEY.into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..BasicPublishOptions::default()
                },
                b"",
                BasicProperties::default()
                    .with_message_id(marker.as_str().into())
                    .with_delivery_mode(2),
            )
            .await?
            .await?;
        if confirm != Confirmation::Ack(None) {
            return Err(ConsumerError::History(format!(
                "the end marker was not stored in {stream}"
            )));
        }
        let mut arguments = FieldTable::default();
        arguments.insert(
            "x-stream-offset".into(),
            AMQPValue::LongString("first".into()),
        );
        let mut deliveries = channel
            .basic_consume(
                stream.as_str().into(),
                format!("{}-history-{marker}", self.name).into(),
                BasicConsumeOptions::default(),
                arguments,
            )
            .await?;

        let mut report = HistoryReport::default();
        let mut reached_marker = false;
        while !reached_marker {
            let first = tokio::select! {
                delivery = deliveries.next() => delivery,
                () = token.cancelled() => return Ok(None),
            };
            let mut batch = vec![first];
            while batch.len() < self.config.batch_size {
                match deliveries.next().now_or_never() {
                    Some(next) => batch.push(next),
                    None => break,
                }
            }
            let mut items = Vec::with_capacity(batch.len());
            let mut markers = Vec::new();
            for delivery in batch {
                let delivery =
                    delivery.ok_or_else(|| ConsumerError::Cancelled(stream.clone()))??;
                if report.first_offset.is_none() {
                    report.first_offset = stream_offset(&delivery);
                }
                if delivery.routing_key.as_str() == MARKER_KEY {
                    reached_marker |= delivery
                        .properties
                        .message_id()
                        .as_ref()
                        .is_some_and(|id| id.as_str() == marker);
                    markers.push(delivery);
                    continue;
                }
                if reached_marker {
                    // After the marker: the live queue has these too.
                    markers.push(delivery);
                    continue;
                }
                let mut item = self.parse(delivery, None);
                // No redelivery from a stream: a failing handler's first try
                // is its last.
                item.earlier_deliveries = self.config.attempts;
                items.push(item);
            }
            if !items.is_empty() {
                let Some(outcomes) = self.apply_retrying(&items, &stream, token).await else {
                    return Ok(None);
                };
                for outcome in &outcomes {
                    match outcome {
                        Outcome::Applied => report.applied += 1,
                        Outcome::Duplicate => report.duplicates += 1,
                        Outcome::DeadLetter(reason) => {
                            report.dead_lettered += 1;
                            tracing::error!(consumer = %self.name, %reason,
                                "ALERT: an event of the history was dead-lettered during the rebuild; see ListDeadLetters");
                        }
                        Outcome::Retry => {
                            return Err(ConsumerError::History(
                                "a handler asked to retry an event".into(),
                            ));
                        }
                    }
                }
            }
            // Acks only pace a stream (it keeps every event): ack the batch.
            if let Some(last) = items
                .iter()
                .map(|item| &item.delivery)
                .chain(&markers)
                .max_by_key(|d| d.delivery_tag)
            {
                last.acker.ack(BasicAckOptions { multiple: true }).await?;
            }
        }
        connection.close(200, "history replayed".into()).await.ok();
        self.record_replay(&report).await?;
        tracing::info!(consumer = %self.name, applied = report.applied, duplicates = report.duplicates,
            dead_lettered = report.dead_lettered, first_offset = ?report.first_offset, "rebuilt from the event history");
        if report.first_offset.is_some_and(|offset| offset > 0) {
            tracing::warn!(consumer = %self.name, "the oldest events had aged out of the history; the rebuild covers what was kept");
        }
        Ok(Some(report))
    }

    async fn replayed_before(&self) -> Result<bool, ConsumerError> {
        #[derive(diesel::QueryableByName)]
        struct Found {
            #[diesel(sql_type = diesel::sql_types::Bool)]
            found: bool,
        }
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let row: Found = diesel::sql_query(
            "SELECT EXISTS (SELECT 1 FROM history_replays WHERE consumer = $1) AS found",
        )
        .bind::<diesel::sql_types::Text, _>(&self.name)
        .get_result(&mut conn)
        .await
        .map_err(|error| ConsumerError::History(error.to_string()))?;
        Ok(row.found)
    }

    async fn record_replay(&self, report: &HistoryReport) -> Result<(), ConsumerError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        diesel::sql_query(
            "INSERT INTO history_replays (consumer, applied, first_offset) VALUES ($1, $2, $3) \
             ON CONFLICT (consumer) DO NOTHING",
        )
        .bind::<diesel::sql_types::Text, _>(&self.name)
        .bind::<diesel::sql_types::BigInt, _>(i64::try_from(report.applied).unwrap_or(i64::MAX))
        .bind::<diesel::sql_types::Nullable<diesel::sql_types::BigInt>, _>(report.first_offset)
        .execute(&mut conn)
        .await
        .map_err(|error| ConsumerError::History(error.to_string()))?;
        Ok(())
    }
}

fn pool_error(error: impl std::fmt::Display) -> ConsumerError {
    ConsumerError::History(format!("no database connection: {error}"))
}

/// The stream offset the broker gives each delivery from a stream.
fn stream_offset(delivery: &lapin::message::Delivery) -> Option<i64> {
    let headers = delivery.properties.headers().as_ref()?;
    match headers.inner().get("x-stream-offset")? {
        AMQPValue::LongLongInt(offset) => Some(*offset),
        AMQPValue::LongInt(offset) => Some(i64::from(*offset)),
        _ => None,
    }
}
