//! Replay: messages moved from a consumer's dead-letter queue back to its
//! live queue, each marked with the id and origin of its `failed_events`
//! row and acknowledged in the dead-letter queue only once the live queue
//! confirmed it; all of them, or one pass that moves a selection and puts
//! the rest back at the tail. Messages of discarded rows are dropped.

use diesel::{
    OptionalExtension as _, QueryableByName,
    sql_types::{BigInt, Bool, Bytea, Text},
};
use diesel_async::RunQueryDsl as _;
use lapin::{
    BasicProperties, Confirmation,
    options::{
        BasicAckOptions, BasicGetOptions, BasicNackOptions, BasicPublishOptions,
        QueueDeclareOptions,
    },
    types::{AMQPValue, FieldTable},
};
use popug_runtime::database::Pool;

use super::{DEAD_LETTER_ID_HEADER, Failure, REPLAYED_HEADER, record};
use crate::broker::Broker;

/// Whether `error` is the broker saying a queue does not exist (AMQP 404
/// `NOT_FOUND`): a queue deleted by hand, or expired through
/// `POPUG_QUEUE_TTL` while nothing renewed it, not a broker that is down.
pub fn is_missing_queue(error: &lapin::Error) -> bool {
    matches!(
        error.kind(),
        lapin::ErrorKind::ProtocolError(amqp)
            if matches!(amqp.kind(), lapin::protocol::AMQPErrorKind::Soft(lapin::protocol::AMQPSoftError::NOTFOUND))
    )
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
    /// The message's row could not be looked up; it stays in the dead-letter queue.
    #[error("database error: {0}")]
    Database(String),
}

/// Moves up to `limit` messages (all present when the call starts, if
/// `None`) from `consumer`'s dead-letter queue back to its live queue. Each
/// is acknowledged in the dead-letter queue only after the live queue
/// confirmed it, so a failure mid-way loses nothing. Each carries the id and
/// original routing key of its `failed_events` row, looked up in `pool`
/// afresh (headers the message brought along are not believed). Messages of
/// discarded rows are dropped instead. Returns how many moved.
pub async fn replay(
    pool: &Pool,
    broker: &Broker,
    consumer: &str,
    limit: Option<u32>,
) -> Result<u32, ReplayError> {
    Ok(replay_all(pool, broker, consumer, limit).await?.moved)
}

/// [`replay`], saying also how many messages of discarded rows it dropped.
pub async fn replay_all(
    pool: &Pool,
    broker: &Broker,
    consumer: &str,
    limit: Option<u32>,
) -> Result<Pass, ReplayError> {
    pass(pool, broker, consumer, Plan::All { limit }).await
}

/// Moves the messages of the rows `ids` from `consumer`'s dead-letter queue
/// back to its live queue, in one pass over the queue: every other message
/// goes back to the queue's tail (messages of discarded rows are dropped).
/// Stops early once every selected message moved.
pub async fn replay_only(
    pool: &Pool,
    broker: &Broker,
    consumer: &str,
    ids: &std::collections::BTreeSet<i64>,
) -> Result<Pass, ReplayError> {
    if ids.is_empty() {
        return Ok(Pass::default());
    }
    pass(pool, broker, consumer, Plan::Only(ids)).await
}

/// Drops the messages of discarded rows from `consumer`'s dead-letter queue,
/// in one pass over it; every other message goes back to the queue's tail.
/// Returns how many were dropped.
pub async fn drop_discarded(
    pool: &Pool,
    broker: &Broker,
    consumer: &str,
) -> Result<u32, ReplayError> {
    let pass = pass(pool, broker, consumer, Plan::Sweep).await?;
    Ok(pass.dropped_discarded)
}

/// What a pass over a dead-letter queue did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pass {
    /// Messages moved to the live queue.
    pub moved: u32,
    /// The rows of the messages moved (those with a row), in order.
    pub moved_ids: Vec<i64>,
    /// Messages of discarded rows dropped from the queue.
    pub dropped_discarded: u32,
}

/// What a pass moves.
#[derive(Debug, Clone, Copy)]
enum Plan<'a> {
    /// Every message, up to a limit.
    All { limit: Option<u32> },
    /// The messages of these rows; the others go back to the tail.
    Only(&'a std::collections::BTreeSet<i64>),
    /// Nothing; the others go back to the tail.
    Sweep,
}

/// One pass over `consumer`'s dead-letter queue: at most the messages in it
/// when the pass starts, each moved, dropped (its row was discarded) or put
/// back at the tail, as `plan` says. A message is acknowledged only after
/// its copy was confirmed where it went, so a failure mid-way loses
/// nothing (at worst a message is in two places; the inbox absorbs it).
async fn pass(
    pool: &Pool,
    broker: &Broker,
    consumer: &str,
    plan: Plan<'_>,
) -> Result<Pass, ReplayError> {
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
    let mut done = Pass::default();
    let mut seen = 0;
    while seen < waiting {
        let finished = match plan {
            Plan::All { limit } => limit.is_some_and(|limit| done.moved >= limit),
            Plan::Only(ids) => done.moved_ids.len() >= ids.len(),
            Plan::Sweep => false,
        };
        if finished {
            break;
        }
        let Some(message) = channel
            .basic_get(
                dead_letter_queue.as_str().into(),
                BasicGetOptions { no_ack: false },
            )
            .await?
        else {
            break;
        };
        seen += 1;
        let delivery = &message.delivery;
        let row = match row_of(pool, consumer, &live_queue, delivery).await {
            Ok(row) => row,
            Err(error) => {
                delivery
                    .acker
                    .nack(BasicNackOptions {
                        requeue: true,
                        multiple: false,
                    })
                    .await?;
                return Err(error);
            }
        };
        if row.is_some_and(|row| row.discarded) {
            // An admin decided it must never apply.
            if !delivery.acker.ack(BasicAckOptions::default()).await? {
                return Err(ReplayError::Refused(dead_letter_queue));
            }
            done.dropped_discarded += 1;
            continue;
        }
        let id = row.map(|row| row.id);
        let selected = match plan {
            Plan::All { .. } => true,
            Plan::Only(ids) => {
                id.is_some_and(|id| ids.contains(&id) && !done.moved_ids.contains(&id))
            }
            Plan::Sweep => false,
        };
        let (exchange_queue, properties) = if selected {
            let mut inner = delivery
                .properties
                .headers()
                .as_ref()
                .map(|headers| headers.inner().clone())
                .unwrap_or_default();
            // A fresh start on the live queue: the consumer counts attempts anew.
            inner.remove("x-delivery-count");
            inner.remove(DEAD_LETTER_ID_HEADER);
            let mut headers = FieldTable::from(inner);
            headers.insert(REPLAYED_HEADER.into(), AMQPValue::Boolean(true));
            if let Some(id) = id {
                headers.insert(DEAD_LETTER_ID_HEADER.into(), AMQPValue::LongLongInt(id));
            }
            (
                &live_queue,
                delivery.properties.clone().with_headers(headers),
            )
        } else {
            // Back to the tail, as it was.
            (&dead_letter_queue, delivery.properties.clone())
        };
        // The broker accepts only our own user as `user_id`; the first
        // publisher stays in the row.
        let properties: BasicProperties = properties.with_user_id(broker.user().into());
        let confirmation = channel
            .basic_publish(
                "".into(),
                exchange_queue.as_str().into(),
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
            return Err(ReplayError::Refused(exchange_queue.clone()));
        }
        if !delivery.acker.ack(BasicAckOptions::default()).await? {
            // Not acknowledged: it stays in the dead-letter queue and its copy
            // is a duplicate, which the inbox absorbs.
            return Err(ReplayError::Refused(dead_letter_queue));
        }
        if selected {
            done.moved += 1;
            if let Some(id) = id {
                done.moved_ids.push(id);
            }
        }
    }
    connection.close(200, "replayed".into()).await.ok();
    tracing::info!(%consumer, moved = done.moved, dropped_discarded = done.dropped_discarded, seen, "dead-letter queue pass");
    Ok(done)
}

/// A dead-lettered message's row, and whether it was discarded.
#[derive(Debug, Clone, Copy, QueryableByName)]
struct RowOf {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Bool)]
    discarded: bool,
}

/// The `failed_events` row of a dead-lettered message: the one holding its
/// exact body (open first). A message that has none (the broker dead-letters
/// by itself at the queue's delivery limit) is recorded now, from what the
/// broker says of it: the routing key of its dead-lettering from the live
/// queue (`x-death`) and its validated `user_id`.
async fn row_of(
    pool: &Pool,
    consumer: &str,
    live_queue: &str,
    delivery: &lapin::message::Delivery,
) -> Result<Option<RowOf>, ReplayError> {
    let database = |error: diesel::result::Error| ReplayError::Database(error.to_string());
    let mut conn = pool
        .get()
        .await
        .map_err(|error| ReplayError::Database(error.to_string()))?;
    // `body = $2` compares lengths before contents, so other rows cost little.
    let found = diesel::sql_query(
        "SELECT id, discarded_at IS NOT NULL AS discarded FROM failed_events \
         WHERE consumer = $1 AND body = $2 \
         ORDER BY resolved_at IS NULL DESC, id DESC LIMIT 1",
    )
    .bind::<Text, _>(consumer)
    .bind::<Bytea, _>(&delivery.data)
    .get_result::<RowOf>(&mut conn)
    .await
    .optional()
    .map_err(database)?;
    if let Some(row) = found {
        return Ok(Some(row));
    }
    let opened = crate::envelope::open(&delivery.data).ok();
    let user_id = delivery
        .properties
        .user_id()
        .as_ref()
        .map(|user| user.to_string());
    record(
        &mut conn,
        Failure {
            consumer,
            queue: live_queue,
            routing_key: first_routing_key(delivery, live_queue).as_deref(),
            user_id: user_id.as_deref(),
            dead_letter_id: None,
            meta: opened.as_ref().map(|opened| &opened.meta),
            body: &delivery.data,
            error: "dead-lettered by the broker without a record (at the queue's delivery limit?); recorded at replay",
        },
    )
    .await
    .map_err(database)?;
    diesel::sql_query(
        "SELECT id, discarded_at IS NOT NULL AS discarded FROM failed_events \
         WHERE consumer = $1 AND body = $2 ORDER BY id DESC LIMIT 1",
    )
    .bind::<Text, _>(consumer)
    .bind::<Bytea, _>(&delivery.data)
    .get_result::<RowOf>(&mut conn)
    .await
    .optional()
    .map_err(database)
}

/// The routing key a message had when the broker dead-lettered it from
/// `live_queue` (its `x-death` entry for that queue).
fn first_routing_key(delivery: &lapin::message::Delivery, live_queue: &str) -> Option<String> {
    let headers = delivery.properties.headers().as_ref()?;
    let AMQPValue::FieldArray(deaths) = headers.inner().get("x-death")? else {
        return None;
    };
    deaths.as_slice().iter().find_map(|death| {
        let AMQPValue::FieldTable(death) = death else {
            return None;
        };
        let death = death.inner();
        let queue = match death.get("queue")? {
            AMQPValue::LongString(queue) => queue.to_string(),
            AMQPValue::ShortString(queue) => queue.to_string(),
            _ => return None,
        };
        if queue != live_queue {
            return None;
        }
        let AMQPValue::FieldArray(keys) = death.get("routing-keys")? else {
            return None;
        };
        keys.as_slice().iter().find_map(|key| match key {
            AMQPValue::LongString(key) => Some(key.to_string()),
            AMQPValue::ShortString(key) => Some(key.to_string()),
            _ => None,
        })
    })
}
