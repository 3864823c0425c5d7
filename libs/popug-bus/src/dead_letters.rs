//! Dead letters: the `failed_events` record of what a consumer could not
//! handle, and replay.
//!
//! A failed message lives in two places: its row in `failed_events` (queue,
//! consumer, error, body, time: what an operator reads) and the message
//! itself in the consumer's dead-letter queue. Replay moves messages from the
//! dead-letter queue back to the live queue with a `x-popug-replayed` header;
//! the normal idempotent consumer applies them and marks their rows resolved
//! in the same transaction. Replaying twice is harmless: the inbox absorbs it.

use diesel::{
    ExpressionMethods as _, QueryDsl as _, Queryable, Selectable, SelectableHelper as _,
    sql_types::{Bytea, Nullable, Text},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use lapin::{
    BasicProperties, Confirmation,
    options::{
        BasicAckOptions, BasicGetOptions, BasicNackOptions, BasicPublishOptions,
        QueueDeclareOptions,
    },
    types::{AMQPValue, FieldTable},
};
use uuid::Uuid;

use crate::{broker::Broker, envelope::EventMeta, schema::failed_events};

/// Header marking a message moved back from the dead-letter queue.
pub const REPLAYED_HEADER: &str = "x-popug-replayed";

/// Records a failure; a second failure of the same event updates its open row.
pub(crate) async fn record(
    conn: &mut AsyncPgConnection,
    consumer: &str,
    queue: &str,
    meta: Option<&EventMeta>,
    body: &[u8],
    error: &str,
) -> Result<(), diesel::result::Error> {
    diesel::sql_query(
        "INSERT INTO failed_events (consumer, queue, event_id, event_type, error, body) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (consumer, event_id) WHERE resolved_at IS NULL DO UPDATE \
         SET error = EXCLUDED.error, body = EXCLUDED.body, queue = EXCLUDED.queue, \
             failures = failed_events.failures + 1, failed_at = now()",
    )
    .bind::<Text, _>(consumer)
    .bind::<Text, _>(queue)
    .bind::<Nullable<diesel::sql_types::Uuid>, _>(meta.map(|meta| meta.event_id))
    .bind::<Nullable<Text>, _>(meta.map(|meta| meta.event_type.as_str()))
    // Postgres text cannot hold NUL, and the error may quote hostile bytes.
    .bind::<Text, _>(error.replace('\0', "\\0"))
    .bind::<Bytea, _>(body)
    .execute(conn)
    .await?;
    Ok(())
}

/// Marks the open failure of `event_id` resolved, after a replay applied it.
pub(crate) async fn resolve(
    conn: &mut AsyncPgConnection,
    consumer: &str,
    event_id: Uuid,
) -> Result<(), diesel::result::Error> {
    diesel::update(
        failed_events::table
            .filter(failed_events::consumer.eq(consumer))
            .filter(failed_events::event_id.eq(event_id))
            .filter(failed_events::resolved_at.is_null()),
    )
    .set(failed_events::resolved_at.eq(diesel::dsl::now))
    .execute(conn)
    .await?;
    Ok(())
}

/// One row of `failed_events`.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = failed_events)]
pub struct FailedEvent {
    /// Row id.
    pub id: i64,
    /// The consumer that failed.
    pub consumer: String,
    /// The queue the message came from.
    pub queue: String,
    /// The event id, when the message could be decoded.
    pub event_id: Option<Uuid>,
    /// The payload type, when the message could be decoded.
    pub event_type: Option<String>,
    /// Why it failed (the last time).
    pub error: String,
    /// How many times it failed.
    pub failures: i32,
    /// When it last failed.
    pub failed_at: chrono::DateTime<chrono::Utc>,
    /// When a replay applied it.
    pub resolved_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Failures, newest first.
pub async fn list(
    conn: &mut AsyncPgConnection,
    limit: i64,
    include_resolved: bool,
) -> Result<Vec<FailedEvent>, diesel::result::Error> {
    let mut query = failed_events::table
        .select(FailedEvent::as_select())
        .order(failed_events::id.desc())
        .limit(limit)
        .into_boxed();
    if !include_resolved {
        query = query.filter(failed_events::resolved_at.is_null());
    }
    query.load(conn).await
}

/// How many failures are not resolved.
pub async fn unresolved(conn: &mut AsyncPgConnection) -> Result<u64, diesel::result::Error> {
    let count: i64 = failed_events::table
        .filter(failed_events::resolved_at.is_null())
        .count()
        .get_result(conn)
        .await?;
    Ok(u64::try_from(count).unwrap_or(0))
}

/// Messages waiting in `consumer`'s dead-letter queue.
pub async fn queue_depth(broker: &Broker, consumer: &str) -> lapin::Result<u32> {
    let connection = broker.connect().await?;
    let channel = connection.create_channel().await?;
    let queue = channel
        .queue_declare(
            broker.topology().dead_letter_queue(consumer).into(),
            QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await?;
    connection.close(200, "done".into()).await.ok();
    Ok(queue.message_count())
}

/// Why a replay stopped early.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The broker failed; messages not yet moved stay in the dead-letter queue.
    #[error("broker error: {0}")]
    Broker(#[from] lapin::Error),
    /// The live queue did not accept a message; it stays in the dead-letter queue.
    #[error("the live queue {0} did not accept a replayed message")]
    Refused(String),
}

/// Moves up to `limit` messages (all present when the call starts, if
/// `None`) from `consumer`'s dead-letter queue back to its live queue. Each
/// is acknowledged in the dead-letter queue only after the live queue
/// confirmed it, so a failure mid-way loses nothing. Returns how many moved.
pub async fn replay(
    broker: &Broker,
    consumer: &str,
    limit: Option<u32>,
) -> Result<u32, ReplayError> {
    let topology = broker.topology();
    let dead_letter_queue = topology.dead_letter_queue(consumer);
    let live_queue = topology.queue(consumer);
    let (connection, channel) = broker.confirm_channel().await?;
    let waiting = channel
        .queue_declare(
            dead_letter_queue.as_str().into(),
            QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await?
        .message_count();
    let wanted = limit.map_or(waiting, |limit| limit.min(waiting));
    let mut moved = 0;
    while moved < wanted {
        let Some(message) = channel
            .basic_get(
                dead_letter_queue.as_str().into(),
                BasicGetOptions { no_ack: false },
            )
            .await?
        else {
            break;
        };
        let delivery = &message.delivery;
        let mut headers = delivery.properties.headers().clone().unwrap_or_default();
        // A fresh start on the live queue: the consumer counts attempts anew.
        let mut inner = headers.inner().clone();
        inner.remove("x-delivery-count");
        headers = FieldTable::from(inner);
        headers.insert(REPLAYED_HEADER.into(), AMQPValue::Boolean(true));
        let properties: BasicProperties = delivery.properties.clone().with_headers(headers);
        let confirmation = channel
            .basic_publish(
                "".into(),
                live_queue.as_str().into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..BasicPublishOptions::default()
                },
                &delivery.data,
                properties,
            )
            .await?
            .await?;
        if confirmation != Confirmation::Ack(None) {
            delivery
                .acker
                .nack(BasicNackOptions {
                    requeue: true,
                    multiple: false,
                })
                .await?;
            return Err(ReplayError::Refused(live_queue));
        }
        if !delivery.acker.ack(BasicAckOptions::default()).await? {
            // Not acknowledged: it stays in the dead-letter queue and its copy
            // in the live queue is a duplicate, which the inbox absorbs.
            return Err(ReplayError::Refused(dead_letter_queue));
        }
        moved += 1;
    }
    connection.close(200, "replayed".into()).await.ok();
    tracing::info!(%consumer, moved, "dead letters replayed");
    Ok(moved)
}
