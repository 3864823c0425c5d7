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

type KeysFn = Box<dyn Fn(&Decoded) -> Vec<String> + Send + Sync>;

struct Route {
    routing_key: &'static str,
    decode: DecodeFn,
    apply: ApplyFn,
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
                apply,
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

    /// Runs the handler of `meta.event_type`.
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
        match self.routes.get(&meta.event_type) {
            // A panicking handler is a failed event, not a dead worker.
            Some(route) => Box::pin(
                std::panic::AssertUnwindSafe((route.apply)(conn, meta, decoded).instrument(span))
                    .catch_unwind()
                    .map(|outcome| {
                        outcome.unwrap_or_else(|_| {
                            Err(HandlerError::Failed(format!(
                                "the handler of {} panicked",
                                meta.event_type
                            )))
                        })
                    }),
            ),
            None => Box::pin(async move {
                Err(HandlerError::Rejected(format!(
                    "no handler for {}",
                    meta.event_type
                )))
            }),
        }
    }
}
