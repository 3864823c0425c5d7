//! The transactional outbox: events are written in the same transaction as
//! the state change that caused them, so both commit or neither does.
//!
//! [`Outbox::enqueue`] validates the event first: an event that breaks its
//! schema's rules is an error for the caller and never reaches the table.
//! The relay ([`crate::relay`]) publishes the rows afterwards.

use diesel::QueryDsl as _;
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use popug_proto::events::{Event, InvalidEvent};
use prost::Message as _;
use uuid::Uuid;

use crate::{envelope, schema::outbox};

/// Why an event could not be enqueued.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    /// The event breaks its schema's rules.
    #[error("event {event} is invalid: {source}")]
    Invalid {
        /// Name of the event, e.g. `AccountCreated`.
        event: &'static str,
        /// The broken rule.
        source: InvalidEvent,
    },
    /// The insert failed; the caller's transaction should roll back.
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
}

/// Writes one producer's events into its outbox.
#[derive(Debug, Clone)]
pub struct Outbox {
    producer: String,
    /// Stamps each envelope's `occurred_at`: consumers book by it.
    clock: popug_runtime::Clock,
}

/// Rows per INSERT, so that a shuffle of many tasks sends its events in
/// statements of a few megabytes each.
const ROWS_PER_INSERT: usize = 5_000;

impl Outbox {
    /// The outbox of `producer`, e.g. `tracker`.
    pub fn new(producer: impl Into<String>) -> Self {
        Self {
            producer: producer.into(),
            clock: popug_runtime::Clock::system(),
        }
    }

    /// The same outbox, stamping events with business time from `clock`.
    #[must_use]
    pub fn with_clock(mut self, clock: popug_runtime::Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The producer name written into every envelope.
    pub fn producer(&self) -> &str {
        &self.producer
    }

    /// Validates `event` and inserts it, inside the caller's transaction.
    /// Returns the event id.
    pub async fn enqueue<E: Event>(
        &self,
        conn: &mut AsyncPgConnection,
        event: &E,
    ) -> Result<Uuid, OutboxError> {
        let mut ids = self.enqueue_all(conn, std::slice::from_ref(event)).await?;
        Ok(ids.remove(0))
    }

    /// Validates every event, then inserts them all in order with batched
    /// statements; nothing is inserted if any is invalid.
    pub async fn enqueue_all<E: Event>(
        &self,
        conn: &mut AsyncPgConnection,
        events: &[E],
    ) -> Result<Vec<Uuid>, OutboxError> {
        // Every event of the call has the same time and belongs to the same span.
        let (now, trace) = (self.clock.now(), popug_runtime::telemetry::current_trace());
        let prepared = events
            .iter()
            .map(|event| self.wrap(event, now, trace.clone()))
            .collect::<Result<Vec<_>, _>>()?;
        self.enqueue_prepared(conn, prepared).await
    }

    /// Validates `event` and wraps it in its envelope, ready for
    /// [`Outbox::enqueue_prepared`]: for a change whose events are of
    /// different types, so they all go in with one insert.
    pub fn prepare<E: Event>(&self, event: &E) -> Result<Prepared, OutboxError> {
        self.wrap(
            event,
            self.clock.now(),
            popug_runtime::telemetry::current_trace(),
        )
    }

    fn wrap<E: Event>(
        &self,
        event: &E,
        now: chrono::DateTime<chrono::Utc>,
        trace: popug_runtime::telemetry::TraceHeaders,
    ) -> Result<Prepared, OutboxError> {
        event.validate().map_err(|source| OutboxError::Invalid {
            event: E::NAME,
            source,
        })?;
        let envelope = envelope::wrap_traced(event, &self.producer, now, trace);
        Ok(Prepared {
            event_id: Uuid::parse_str(&envelope.event_id)
                .expect("wrap() writes a UUID it generated"),
            routing_key: E::ROUTING_KEY,
            event_type: E::full_name(),
            envelope: envelope.encode_to_vec(),
        })
    }

    /// Inserts prepared events in order, inside the caller's transaction.
    /// Returns their ids.
    pub async fn enqueue_prepared(
        &self,
        conn: &mut AsyncPgConnection,
        prepared: Vec<Prepared>,
    ) -> Result<Vec<Uuid>, OutboxError> {
        use diesel::sql_types::{Array, Bytea, Text};
        for chunk in prepared.chunks(ROWS_PER_INSERT) {
            popug_runtime::sql::query(
                "INSERT INTO outbox (event_id, routing_key, event_type, envelope) \
                 SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::bytea[])",
            )
            .bind::<Array<diesel::sql_types::Uuid>, _>(
                chunk.iter().map(|p| p.event_id).collect::<Vec<_>>(),
            )
            .bind::<Array<Text>, _>(chunk.iter().map(|p| p.routing_key).collect::<Vec<_>>())
            .bind::<Array<Text>, _>(
                chunk
                    .iter()
                    .map(|p| p.event_type.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind::<Array<Bytea>, _>(
                chunk
                    .iter()
                    .map(|p| p.envelope.as_slice())
                    .collect::<Vec<_>>(),
            )
            .execute(conn)
            .await?;
        }
        Ok(prepared.iter().map(Prepared::event_id).collect())
    }
}

/// An event validated and wrapped by [`Outbox::prepare`], not yet inserted:
/// the outbox row to be.
#[derive(Debug)]
pub struct Prepared {
    event_id: Uuid,
    routing_key: &'static str,
    event_type: String,
    /// The encoded envelope, exactly as it will be published.
    envelope: Vec<u8>,
}

impl Prepared {
    /// The id its envelope carries.
    pub fn event_id(&self) -> Uuid {
        self.event_id
    }
}

/// The backlog: events committed but not yet confirmed by the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backlog {
    /// How many rows wait.
    pub pending: u64,
    /// When the oldest waiting row was committed.
    pub oldest: Option<chrono::DateTime<chrono::Utc>>,
}

impl Backlog {
    /// How long the oldest waiting row has waited (zero when none waits).
    pub fn oldest_age(&self) -> std::time::Duration {
        self.oldest
            .and_then(|oldest| (chrono::Utc::now() - oldest).to_std().ok())
            .unwrap_or_default()
    }
}

/// Reads the backlog.
pub async fn backlog(conn: &mut AsyncPgConnection) -> Result<Backlog, diesel::result::Error> {
    let (pending, oldest): (i64, Option<chrono::DateTime<chrono::Utc>>) = outbox::table
        .select((
            diesel::dsl::count_star(),
            diesel::dsl::min(outbox::created_at),
        ))
        .get_result(conn)
        .await?;
    Ok(Backlog {
        pending: u64::try_from(pending).unwrap_or(0),
        oldest,
    })
}

/// An invalid event is a bug (internal); a failed insert is classified like
/// any database error (transient ones are `UNAVAILABLE`).
impl From<OutboxError> for popug_runtime::ApiError {
    fn from(error: OutboxError) -> Self {
        match error {
            OutboxError::Database(error) => error.into(),
            invalid @ OutboxError::Invalid { .. } => popug_runtime::ApiError::internal(invalid),
        }
    }
}

impl From<OutboxError> for crate::HandlerError {
    fn from(error: OutboxError) -> Self {
        match error {
            OutboxError::Database(error) => crate::HandlerError::Database(error),
            // A handler producing an invalid event is a bug: retried, then dead-lettered.
            invalid @ OutboxError::Invalid { .. } => {
                crate::HandlerError::Failed(invalid.to_string())
            }
        }
    }
}
