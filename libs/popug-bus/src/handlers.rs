//! Typed event handlers, registered by event type and dispatched by the
//! payload's protobuf full name (which carries the version).
//!
//! A service registers one function per event it consumes:
//!
//! ```ignore
//! let handlers = Handlers::new().on::<AccountCreated, _>(move |conn, meta, event| {
//!     let replica = replica.clone();
//!     Box::pin(async move { replica.upsert(conn, meta, event).await })
//! });
//! ```
//!
//! The handler runs inside the consumer's transaction, together with the
//! inbox insert; it must do all its work through `conn`.
//!
//! A handler that can apply many events at once with a fixed number of
//! statements registers with [`Handlers::on_batch`] instead: it receives every
//! fresh event of its type in the consumer's batch together. If the batch
//! fails, the consumer applies it again one event per savepoint, and the
//! batch handler is called with one event at a time, so a bad event is
//! isolated and dead-lettered alone. Handlers of different types in a batch
//! must commute (events arrive in any order anyway).

use std::{any::Any, collections::BTreeMap};

use diesel_async::AsyncPgConnection;
use futures::{FutureExt as _, future::BoxFuture};
use popug_proto::events::Event;
use tracing::Instrument as _;

use crate::envelope::EventMeta;

/// Why a handler did not apply an event.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// The event can never be applied (it breaks a rule the schema cannot
    /// express): dead-lettered at once.
    #[error("rejected: {0}")]
    Rejected(String),
    /// Applying failed for a reason that may pass (or a bug): retried up to
    /// the consumer's attempt limit, then dead-lettered.
    #[error("failed: {0}")]
    Failed(String),
    /// A database error; connection-level ones are transient and retried
    /// without counting as attempts, others count as [`HandlerError::Failed`].
    #[error("database error: {0}")]
    Database(#[from] diesel::result::Error),
}

/// The result of a handler.
pub type HandlerResult = Result<(), HandlerError>;

type Decoded = Box<dyn Any + Send + Sync>;
type DecodeFn = fn(&[u8]) -> Result<Decoded, String>;
type ApplyFn = Box<
    dyn for<'c> Fn(
            &'c mut AsyncPgConnection,
            &'c EventMeta,
            &'c Decoded,
        ) -> BoxFuture<'c, HandlerResult>
        + Send
        + Sync,
>;

/// One fresh event of a batch, as a batch handler receives it.
#[derive(Debug)]
pub struct Delivered<'a, E> {
    /// The envelope's facts.
    pub meta: &'a EventMeta,
    /// The decoded, validated payload.
    pub event: &'a E,
}

type ApplyBatchFn = Box<
    dyn for<'c> Fn(
            &'c mut AsyncPgConnection,
            &'c [(&'c EventMeta, &'c Decoded)],
        ) -> BoxFuture<'c, HandlerResult>
        + Send
        + Sync,
>;

type KeysFn = Box<dyn Fn(&Decoded) -> Vec<String> + Send + Sync>;

/// How a route applies its events.
enum Apply {
    /// One call per event.
    One(ApplyFn),
    /// One call for every event of the type in a batch.
    Batch(ApplyBatchFn),
}

struct Route {
    routing_key: &'static str,
    decode: DecodeFn,
    apply: Apply,
    keys: Option<KeysFn>,
}

/// The events one consumer handles, and how.
#[derive(Default)]
pub struct Handlers {
    routes: BTreeMap<String, Route>,
}

fn decode<E: Event>(bytes: &[u8]) -> Result<Decoded, String> {
    let event = E::decode(bytes)
        .map_err(|error| format!("payload is not a {}: {error}", E::full_name()))?;
    event
        .validate()
        .map_err(|error| format!("{} {error}", E::full_name()))?;
    Ok(Box::new(event))
}

impl Handlers {
    /// No handlers yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Handles events of type `E` with `handler`; replaces an earlier one.
    #[must_use]
    pub fn on<E, F>(mut self, handler: F) -> Self
    where
        E: Event,
        F: for<'c> Fn(
                &'c mut AsyncPgConnection,
                &'c EventMeta,
                &'c E,
            ) -> BoxFuture<'c, HandlerResult>
            + Send
            + Sync
            + 'static,
    {
        let apply: ApplyFn =
            Box::new(
                move |conn, meta, decoded| match decoded.downcast_ref::<E>() {
                    Some(event) => handler(conn, meta, event),
                    None => Box::pin(async {
                        Err(HandlerError::Failed(format!(
                            "decoded payload is not a {}",
                            E::full_name()
                        )))
                    }),
                },
            );
        self.routes.insert(
            E::full_name(),
            Route {
                routing_key: E::ROUTING_KEY,
                decode: decode::<E>,
                apply: Apply::One(apply),
                keys: None,
            },
        );
        self
    }

    /// Handles events of type `E` with `handler`, all of a batch's fresh
    /// events of that type in one call (see the module docs); replaces an
    /// earlier handler.
    #[must_use]
    pub fn on_batch<E, F>(mut self, handler: F) -> Self
    where
        E: Event,
        F: for<'c> Fn(
                &'c mut AsyncPgConnection,
                Vec<Delivered<'c, E>>,
            ) -> BoxFuture<'c, HandlerResult>
            + Send
            + Sync
            + 'static,
    {
        let apply: ApplyBatchFn = Box::new(move |conn, events| {
            let typed: Option<Vec<Delivered<'_, E>>> = events
                .iter()
                .map(|(meta, decoded)| {
                    decoded
                        .downcast_ref::<E>()
                        .map(|event| Delivered { meta, event })
                })
                .collect();
            match typed {
                Some(typed) => handler(conn, typed),
                None => Box::pin(async {
                    Err(HandlerError::Failed(format!(
                        "decoded payload is not a {}",
                        E::full_name()
                    )))
                }),
            }
        });
        self.routes.insert(
            E::full_name(),
            Route {
                routing_key: E::ROUTING_KEY,
                decode: decode::<E>,
                apply: Apply::Batch(apply),
                keys: None,
            },
        );
        self
    }

    /// Declares what the handler of `E` writes that a competing worker or
    /// replica may write too, as keys such as `account:<id>`. Before a batch
    /// is applied, its transaction takes an advisory lock per key of the
    /// whole batch, all in one global order, so competing transactions wait
    /// for each other instead of taking rows in different orders and
    /// deadlocking. Register the handler of `E` first.
    ///
    /// # Panics
    /// If no handler of `E` is registered: a programming error.
    #[must_use]
    pub fn locking<E, F>(mut self, keys: F) -> Self
    where
        E: Event,
        F: Fn(&E) -> Vec<String> + Send + Sync + 'static,
    {
        let route = self.routes.get_mut(&E::full_name()).unwrap_or_else(|| {
            panic!(
                "register the handler of {} before its lock keys",
                E::full_name()
            )
        });
        route.keys = Some(Box::new(move |decoded| {
            decoded.downcast_ref::<E>().map(&keys).unwrap_or_default()
        }));
        self
    }

    /// Whether any handler declares lock keys (see [`Handlers::locking`]).
    pub(crate) fn declares_lock_keys(&self) -> bool {
        self.routes.values().any(|route| route.keys.is_some())
    }

    /// The lock keys of one decoded event (see [`Handlers::locking`]).
    pub(crate) fn lock_keys(&self, event_type: &str, decoded: &Decoded) -> Vec<String> {
        self.routes
            .get(event_type)
            .and_then(|route| route.keys.as_ref())
            .map(|keys| keys(decoded))
            .unwrap_or_default()
    }

    /// The routing keys to bind, one per handled event type.
    pub fn routing_keys(&self) -> Vec<String> {
        let keys: std::collections::BTreeSet<&str> = self
            .routes
            .values()
            .map(|route| route.routing_key)
            .collect();
        keys.into_iter().map(str::to_owned).collect()
    }

    /// Decodes and validates a payload of `event_type`.
    pub(crate) fn decode(&self, event_type: &str, payload: &[u8]) -> Result<Decoded, String> {
        let route = self.routes.get(event_type).ok_or_else(|| {
            format!("no handler for event type {event_type} (unknown type or version)")
        })?;
        (route.decode)(payload)
    }

    /// Runs the handler of `meta.event_type` for one event (a batch handler
    /// gets a batch of one).
    pub(crate) fn apply<'c>(
        &'c self,
        conn: &'c mut AsyncPgConnection,
        meta: &'c EventMeta,
        decoded: &'c Decoded,
    ) -> BoxFuture<'c, HandlerResult> {
        // The handler continues the trace of the operation that produced the
        // event; events it enqueues carry that trace on.
        let span = tracing::info_span!(
            "consume",
            otel.name = %meta.event_name,
            otel.kind = "consumer",
            event_id = %meta.event_id,
            producer = %meta.producer,
        );
        popug_runtime::telemetry::continue_trace(&span, &meta.trace);
        let Some(route) = self.routes.get(&meta.event_type) else {
            return Box::pin(async move {
                Err(HandlerError::Rejected(format!(
                    "no handler for {}",
                    meta.event_type
                )))
            });
        };
        let event_type = meta.event_type.as_str();
        match &route.apply {
            Apply::One(apply) => caught(event_type, apply(conn, meta, decoded), span),
            Apply::Batch(apply) => Box::pin(async move {
                let one = [(meta, decoded)];
                caught(event_type, apply(conn, &one), span).await
            }),
        }
    }

    /// Applies a batch of fresh events: per-event handlers in order, and each
    /// batch handler once, with all of its type's events, where the first of
    /// them stands. Stops at the first error.
    pub(crate) async fn apply_all(
        &self,
        conn: &mut AsyncPgConnection,
        events: &[(&EventMeta, &Decoded)],
    ) -> HandlerResult {
        let mut batched = std::collections::HashSet::new();
        for (index, (meta, decoded)) in events.iter().enumerate() {
            let batch_route = match self.routes.get(&meta.event_type) {
                Some(
                    route @ Route {
                        apply: Apply::Batch(_),
                        ..
                    },
                ) => Some(route),
                _ => None,
            };
            let Some(Route {
                apply: Apply::Batch(apply),
                ..
            }) = batch_route
            else {
                self.apply(conn, meta, decoded).await?;
                continue;
            };
            if !batched.insert(meta.event_type.as_str()) {
                continue;
            }
            let same: Vec<(&EventMeta, &Decoded)> = events[index..]
                .iter()
                .filter(|(other, _)| other.event_type == meta.event_type)
                .copied()
                .collect();
            let span = tracing::info_span!(
                "consume",
                otel.name = %meta.event_name,
                otel.kind = "consumer",
                events = same.len(),
            );
            // A batch has many parents; it continues the first one's trace.
            popug_runtime::telemetry::continue_trace(&span, &meta.trace);
            caught(&meta.event_type, apply(conn, &same), span).await?;
        }
        Ok(())
    }
}

/// Runs a handler's future in `span`; a panicking handler is a failed event,
/// not a dead worker.
fn caught<'c>(
    event_type: &'c str,
    future: BoxFuture<'c, HandlerResult>,
    span: tracing::Span,
) -> BoxFuture<'c, HandlerResult> {
    Box::pin(
        std::panic::AssertUnwindSafe(future.instrument(span))
            .catch_unwind()
            .map(move |outcome| {
                outcome.unwrap_or_else(|_| {
                    Err(HandlerError::Failed(format!(
                        "the handler of {event_type} panicked"
                    )))
                })
            }),
    )
}
