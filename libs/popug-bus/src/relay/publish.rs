//! One batch on the wire: the outbox rows read in id order, published with
//! every confirm in flight at once, and how many leading rows the broker
//! confirmed.

use diesel::{QueryDsl as _, SelectableHelper as _};
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use lapin::{
    BasicProperties, Channel, Confirmation,
    options::BasicPublishOptions,
    types::{AMQPValue, FieldTable, ShortString},
};
use uuid::Uuid;

use super::RelayError;
use crate::schema::outbox;

#[derive(diesel::Queryable, diesel::Selectable)]
#[diesel(table_name = outbox)]
pub(super) struct PendingRow {
    pub(super) id: i64,
    event_id: Uuid,
    routing_key: String,
    event_type: String,
    envelope: Vec<u8>,
    created_at: chrono::DateTime<chrono::Utc>,
}

/// A batch whose confirms did not come in time (classified by the caller,
/// who can see the connection).
pub(super) fn timed_out() -> RelayError {
    RelayError::Blocked {
        reason: String::new(),
    }
}

pub(super) async fn load_batch(
    conn: &mut AsyncPgConnection,
    batch_size: i64,
) -> Result<Vec<PendingRow>, diesel::result::Error> {
    outbox::table
        .select(PendingRow::as_select())
        .order(outbox::id)
        .limit(batch_size)
        .load(conn)
        .await
}

/// Publishes `rows` with every confirm in flight at once; returns how many
/// leading rows were confirmed, and the first failure.
pub(super) async fn publish(
    channel: &Channel,
    exchange: &ShortString,
    producer: &ShortString,
    user: &ShortString,
    rows: &[PendingRow],
) -> (usize, Option<RelayError>) {
    let mut confirms = Vec::with_capacity(rows.len());
    for row in rows {
        let mut properties = BasicProperties::default()
            .with_message_id(row.event_id.to_string().into())
            .with_type(row.event_type.as_str().into())
            .with_app_id(producer.clone())
            .with_user_id(user.clone())
            .with_timestamp(u64::try_from(row.created_at.timestamp()).unwrap_or(0))
            .with_content_type("application/protobuf".into())
            .with_delivery_mode(2);
        if let Some(headers) = trace_headers(&row.envelope) {
            properties = properties.with_headers(headers);
        }
        let published = channel
            .basic_publish(
                exchange.clone(),
                row.routing_key.as_str().into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..BasicPublishOptions::default()
                },
                &row.envelope,
                properties,
            )
            .await;
        match published {
            Ok(confirm) => confirms.push(confirm),
            Err(error) => {
                // Frames already sent may still be confirmed; they count only
                // if we wait for them, so settle what is in flight first.
                let (confirmed, failure) = settle(rows, confirms).await;
                return (
                    confirmed,
                    Some(failure.unwrap_or(RelayError::Broker(error))),
                );
            }
        }
    }
    settle(rows, confirms).await
}

/// The one field of an `Envelope` the relay reads (`trace_context`, field
/// 6); decoding it skips the rest, payload included, without copying it.
#[derive(Clone, PartialEq, prost::Message)]
struct EnvelopeTrace {
    #[prost(message, optional, tag = "6")]
    trace_context: Option<popug_proto::pb::popug::events::v1::TraceContext>,
}

/// The envelope's W3C trace context as AMQP headers, for brokers' and
/// tracing tools' eyes (consumers read the envelope's own copy).
fn trace_headers(envelope: &[u8]) -> Option<FieldTable> {
    use prost::Message as _;
    let trace = EnvelopeTrace::decode(envelope).ok()?.trace_context?;
    if trace.traceparent.is_empty() {
        return None;
    }
    let mut headers = FieldTable::default();
    headers.insert(
        "traceparent".into(),
        AMQPValue::LongString(trace.traceparent.into()),
    );
    if !trace.tracestate.is_empty() {
        headers.insert(
            "tracestate".into(),
            AMQPValue::LongString(trace.tracestate.into()),
        );
    }
    Some(headers)
}

pub(super) async fn settle(
    rows: &[PendingRow],
    confirms: Vec<lapin::PublisherConfirm>,
) -> (usize, Option<RelayError>) {
    // `confirms` covers a prefix of `rows` (publishing may have stopped
    // early): only rows with a positive confirm count as published.
    let results = futures::future::join_all(confirms).await;
    let in_flight = results.len();
    for (index, (row, result)) in rows.iter().zip(results).enumerate() {
        let failure = match result {
            Ok(Confirmation::Ack(None)) => continue,
            Ok(Confirmation::Ack(Some(_))) => RelayError::Unroutable {
                event_id: row.event_id,
                routing_key: row.routing_key.clone(),
            },
            Ok(Confirmation::Nack(_) | Confirmation::NotRequested) => RelayError::Nacked {
                event_id: row.event_id,
            },
            Err(error) => RelayError::Broker(error),
        };
        return (index, Some(failure));
    }
    (in_flight, None)
}
