//! A delivery, parsed before the batch's transaction: its envelope opened
//! and held against the catalog ([`crate::trust::admit`]), its payload
//! decoded, its delivery count read, and, for a replay from the dead-letter
//! queue, where it first came from as its dead-letter row recorded it.

use lapin::{
    message::Delivery,
    types::{AMQPValue, FieldTable},
};
use tokio_util::sync::CancellationToken;

use super::Consumer;
use crate::{
    dead_letters::{self, DEAD_LETTER_ID_HEADER, Failure, Origin, REPLAYED_HEADER, bounded},
    envelope::EventMeta,
    trust::{self, Received},
};

/// A delivery, parsed before the transaction so that bad bytes cost no I/O
/// (a replayed one costs a look-up of its dead-letter row).
pub(crate) struct Item {
    pub(crate) delivery: Delivery,
    pub(super) parsed: Result<Parsed, Unusable>,
    /// Earlier deliveries of this message (the quorum queue's `x-delivery-count`).
    pub(crate) earlier_deliveries: u32,
    /// Set when the replay moved this message back from the dead-letter
    /// queue (its mark believed: its row holds exactly its bytes).
    pub(super) replay: Option<Replay>,
    /// The routing key the message was published with: the delivery's own,
    /// or for a replay the one its dead-letter row kept (`None`: unknown).
    pub(super) routing_key: Option<String>,
    /// The broker user that published it: the delivery's `user_id`, or for a
    /// replay the one its dead-letter row kept.
    pub(super) user_id: Option<String>,
}

/// A delivery that may apply: its envelope and its decoded payload.
pub(super) struct Parsed {
    pub(super) meta: EventMeta,
    pub(super) decoded: Box<dyn std::any::Any + Send + Sync>,
}

/// A message that will never apply: why, and its envelope if it could be read.
pub(super) struct Unusable {
    pub(super) meta: Option<EventMeta>,
    pub(super) reason: String,
    /// Its producer's broker user did not publish it.
    pub(super) unauthenticated: bool,
}

/// A replayed message whose mark was believed (see `replay_origin`).
pub(super) struct Replay {
    /// The message's `failed_events` row.
    pub(super) dead_letter_id: i64,
}

impl Consumer {
    /// For a delivery that says it is a replay, the origin its dead-letter
    /// row recorded, if that row holds exactly this body (a mark without
    /// such a row is not believed). `None` when `token` was cancelled while
    /// the database was away.
    pub(super) async fn replay_origin(
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

    /// `delivery` parsed and held against the catalog; `origin` is where a
    /// believed replay first came from.
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
    pub(super) fn failure<'a>(
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

/// A header's unsigned integer of any width (`x-delivery-count`).
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
