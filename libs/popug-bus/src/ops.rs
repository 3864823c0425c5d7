//! `popug.ops.v1.OpsService`, written once and served by every service:
//! the outbox backlog, and the dead-letter console: list (filtered, with
//! counts by error), show one (its envelope as JSON), replay (all, by id or
//! by filter) and discard (with an audit record naming the admin).
//!
//! Requests are checked here, at the edge: a bad field is
//! `INVALID_ARGUMENT` naming it, never `INTERNAL`. Refusals are
//! [`OpsError`]s ([`error`]), answered through the shared mapping of
//! `popug-runtime`; nothing here builds a `Status`.

pub mod error;

use std::{collections::BTreeSet, sync::Arc};

use popug_proto::pb::popug::ops::v1::{
    DeadLetter, DeadLetterFilter, DiscardDeadLettersRequest, DiscardDeadLettersResponse,
    ErrorCount, GetDeadLetterRequest, GetDeadLetterResponse, GetOutboxStatusRequest,
    GetOutboxStatusResponse, ListDeadLettersRequest, ListDeadLettersResponse,
    ReplayDeadLettersRequest, ReplayDeadLettersResponse,
    ops_service_server::{OpsService, OpsServiceServer},
};
use popug_runtime::{ApiError, database::Pool};
use tonic::{Request, Response, Status};

pub use error::OpsError;

use crate::{
    broker::Broker,
    dead_letters::{self, DiscardNote, Filter, ListQuery},
    discard,
    envelope::timestamp,
    outbox,
    readable::readable,
    relay::RelayHealth,
};

/// Decides whether a request may use the ops API (admins only); the token
/// verification layer supplies the real check, tests their own.
pub type Guard = Arc<dyn Fn(&tonic::Extensions) -> Result<(), Status> + Send + Sync>;

/// Who is calling, for the records of who did what (a discard's audit
/// record): the admin's account id from the verified token, which the
/// services read from the request's extensions; `None` when unknown.
pub type Identify =
    Arc<dyn Fn(&tonic::metadata::MetadataMap, &tonic::Extensions) -> Option<String> + Send + Sync>;

/// Most ids one replay or discard names.
pub const MAX_IDS: usize = 1_000;
/// Most dead letters one filtered replay selects.
pub const MAX_SELECTED: u32 = 10_000;
/// Longest filter text and discard reason, in characters.
const MAX_FILTER_CHARS: usize = 200;
const MAX_REASON_CHARS: usize = 1_000;

/// The ops API of one service.
#[derive(Clone)]
pub struct Ops {
    pool: Pool,
    broker: Broker,
    /// The service's consumer, if it consumes events (auth does not).
    consumer: Option<String>,
    relay: Arc<RelayHealth>,
    guard: Guard,
    identify: Identify,
}

impl Ops {
    /// The ops API over `pool`'s bus tables, `consumer`'s queues and `relay`.
    /// Nobody is identified until [`Ops::with_identity`] says how.
    pub fn new(
        pool: Pool,
        broker: Broker,
        consumer: Option<String>,
        relay: Arc<RelayHealth>,
        guard: Guard,
    ) -> Self {
        Self {
            pool,
            broker,
            consumer,
            relay,
            guard,
            identify: Arc::new(|_, _| None),
        }
    }

    /// Names callers with `identify` in the records they leave.
    #[must_use]
    pub fn with_identity(mut self, identify: Identify) -> Self {
        self.identify = identify;
        self
    }

    /// The generated server around this API.
    pub fn into_server(self) -> OpsServiceServer<Self> {
        OpsServiceServer::new(self)
    }

    fn consumer(&self) -> Result<&str, OpsError> {
        self.consumer.as_deref().ok_or(OpsError::NoConsumer)
    }
}

/// A text field of a filter: one line, at most [`MAX_FILTER_CHARS`]; empty
/// means unset.
fn filter_text(field: &'static str, value: String) -> Result<Option<String>, ApiError> {
    popug_input::text::single_line(field, &value)?;
    if value.chars().count() > MAX_FILTER_CHARS {
        return Err(ApiError::invalid(
            field,
            format!("is longer than {MAX_FILTER_CHARS} characters"),
        ));
    }
    Ok((!value.is_empty()).then_some(value))
}

fn filter_time(
    field: &'static str,
    value: Option<prost_types::Timestamp>,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, ApiError> {
    value
        .map(|time| {
            u32::try_from(time.nanos)
                .ok()
                .filter(|nanos| *nanos < 1_000_000_000)
                .and_then(|nanos| chrono::DateTime::from_timestamp(time.seconds, nanos))
                .ok_or_else(|| ApiError::invalid(field, "is not a valid time"))
        })
        .transpose()
}

/// A request's filter, checked.
fn filter(request: Option<DeadLetterFilter>) -> Result<Filter, ApiError> {
    let request = request.unwrap_or_default();
    let filter = Filter {
        event_type: filter_text("filter.event_type", request.event_type)?,
        error_contains: filter_text("filter.error_contains", request.error_contains)?,
        failed_after: filter_time("filter.failed_after", request.failed_after)?,
        failed_before: filter_time("filter.failed_before", request.failed_before)?,
    };
    if let (Some(after), Some(before)) = (filter.failed_after, filter.failed_before)
        && after >= before
    {
        return Err(ApiError::invalid(
            "filter.failed_before",
            "must be later than `filter.failed_after`",
        ));
    }
    Ok(filter)
}

/// A request's ids: each a row id (positive), at most [`MAX_IDS`].
fn ids(ids: &[i64]) -> Result<BTreeSet<i64>, ApiError> {
    if ids.len() > MAX_IDS {
        return Err(ApiError::invalid(
            "ids",
            format!(
                "names {} dead letters; at most {MAX_IDS} at a time",
                ids.len()
            ),
        ));
    }
    if let Some(bad) = ids.iter().find(|id| **id <= 0) {
        return Err(ApiError::invalid(
            "ids",
            format!("{bad} is not a dead letter's id"),
        ));
    }
    Ok(ids.iter().copied().collect())
}

fn dead_letter(
    row: dead_letters::FailedEvent,
    body_size: u64,
    body: Option<Vec<u8>>,
    body_omitted: bool,
    discard: Option<DiscardNote>,
) -> DeadLetter {
    let (discarded_by, discard_reason) = discard
        .map(|note| (note.by, note.reason))
        .unwrap_or_default();
    DeadLetter {
        id: row.id,
        consumer: row.consumer,
        queue: row.queue,
        event_id: row.event_id.map(|id| id.to_string()).unwrap_or_default(),
        event_type: row.event_type.unwrap_or_default(),
        error: row.error,
        failures: u32::try_from(row.failures).unwrap_or(0),
        failed_at: Some(timestamp(row.failed_at)),
        resolved_at: row.resolved_at.map(timestamp),
        routing_key: row.routing_key.unwrap_or_default(),
        body_size,
        body: body.unwrap_or_default(),
        body_omitted,
        discarded_at: row.discarded_at.map(timestamp),
        discarded_by,
        discard_reason,
    }
}

#[tonic::async_trait]
impl OpsService for Ops {
    async fn list_dead_letters(
        &self,
        request: Request<ListDeadLettersRequest>,
    ) -> Result<Response<ListDeadLettersResponse>, Status> {
        (self.guard)(request.extensions())?;
        let request = request.into_inner();
        let page = popug_runtime::paging::page::<i64>(request.page_size, &request.page_token)?;
        let filter = filter(request.filter)?;
        let mut conn = popug_runtime::database::conn(&self.pool).await?;
        let listed = dead_letters::list(
            &mut conn,
            ListQuery {
                size: page.size,
                after: page.after,
                include_resolved: request.include_resolved,
                include_bodies: request.include_bodies,
                filter: filter.clone(),
            },
        )
        .await
        .map_err(ApiError::from)?;
        let unresolved = dead_letters::unresolved(&mut conn)
            .await
            .map_err(ApiError::from)?;
        let matching = dead_letters::matching(&mut conn, &filter, request.include_resolved)
            .await
            .map_err(ApiError::from)?;
        let error_counts = dead_letters::error_counts(&mut conn, &filter, request.include_resolved)
            .await
            .map_err(ApiError::from)?;
        drop(conn);
        let dead_letter_queue_depth = match &self.consumer {
            Some(consumer) => dead_letters::queue_depth(&self.broker, consumer)
                .await
                .map_err(|error| OpsError::queue(&self.broker, consumer, &error))?,
            None => 0,
        };
        Ok(Response::new(ListDeadLettersResponse {
            dead_letters: listed
                .rows
                .into_iter()
                .map(|listed| {
                    dead_letter(
                        listed.failure,
                        listed.body_size,
                        listed.body,
                        listed.body_omitted,
                        listed.discard,
                    )
                })
                .collect(),
            unresolved,
            dead_letter_queue_depth: u64::from(dead_letter_queue_depth),
            next_page_token: listed
                .next_after
                .map(|id| id.to_string())
                .unwrap_or_default(),
            matching,
            error_counts: error_counts
                .into_iter()
                .map(|count| ErrorCount {
                    error: count.error,
                    count: u64::try_from(count.count).unwrap_or(0),
                    last_failed_at: Some(timestamp(count.last_failed_at)),
                })
                .collect(),
        }))
    }

    async fn replay_dead_letters(
        &self,
        request: Request<ReplayDeadLettersRequest>,
    ) -> Result<Response<ReplayDeadLettersResponse>, Status> {
        (self.guard)(request.extensions())?;
        let request = request.into_inner();
        let asked = ids(&request.ids)?;
        let selecting = !asked.is_empty() || request.filter.is_some();
        let filter = filter(request.filter)?;
        let consumer = self.consumer()?;
        if !selecting {
            let limit = (request.limit > 0).then_some(request.limit);
            let pass = dead_letters::replay_all(&self.pool, &self.broker, consumer, limit)
                .await
                .map_err(|error| OpsError::replay(&self.broker, consumer, error))?;
            return Ok(Response::new(ReplayDeadLettersResponse {
                replayed: pass.moved,
                dropped_discarded: pass.dropped_discarded,
                ..ReplayDeadLettersResponse::default()
            }));
        }
        let limit = match request.limit {
            0 => MAX_SELECTED,
            n => n.min(MAX_SELECTED),
        };
        let asked_ids: Vec<i64> = asked.iter().copied().collect();
        let selected: BTreeSet<i64> = {
            let mut conn = popug_runtime::database::conn(&self.pool).await?;
            dead_letters::select_unresolved(
                &mut conn,
                consumer,
                (!asked.is_empty()).then_some(asked_ids.as_slice()),
                &filter,
                i64::from(limit),
            )
            .await
            .map_err(ApiError::from)?
            .into_iter()
            .collect()
        };
        let pass = dead_letters::replay_only(&self.pool, &self.broker, consumer, &selected)
            .await
            .map_err(|error| OpsError::replay(&self.broker, consumer, error))?;
        let moved: BTreeSet<i64> = pass.moved_ids.iter().copied().collect();
        let wanted = if asked.is_empty() { &selected } else { &asked };
        Ok(Response::new(ReplayDeadLettersResponse {
            replayed: pass.moved,
            replayed_ids: pass.moved_ids,
            not_replayed_ids: wanted.difference(&moved).copied().collect(),
            dropped_discarded: pass.dropped_discarded,
        }))
    }

    async fn get_outbox_status(
        &self,
        request: Request<GetOutboxStatusRequest>,
    ) -> Result<Response<GetOutboxStatusResponse>, Status> {
        (self.guard)(request.extensions())?;
        let mut conn = popug_runtime::database::conn(&self.pool).await?;
        let backlog = outbox::backlog(&mut conn).await.map_err(ApiError::from)?;
        let (relay_connected, last_error) = self.relay.snapshot();
        Ok(Response::new(GetOutboxStatusResponse {
            pending: backlog.pending,
            oldest_pending_at: backlog.oldest.map(timestamp),
            oldest_pending_age_ms: u64::try_from(backlog.oldest_age().as_millis())
                .unwrap_or(u64::MAX),
            relay_connected,
            last_error: last_error.unwrap_or_default(),
            relay_blocked: self.relay.blocked(),
        }))
    }

    async fn get_dead_letter(
        &self,
        request: Request<GetDeadLetterRequest>,
    ) -> Result<Response<GetDeadLetterResponse>, Status> {
        (self.guard)(request.extensions())?;
        let request = request.into_inner();
        if request.id <= 0 {
            return Err(ApiError::invalid(
                "id",
                format!("{} is not a dead letter's id", request.id),
            )
            .into());
        }
        let mut conn = popug_runtime::database::conn(&self.pool).await?;
        let Some((row, body)) = dead_letters::get(&mut conn, request.id)
            .await
            .map_err(ApiError::from)?
        else {
            return Err(OpsError::NoSuchDeadLetter(request.id).into());
        };
        let mut notes = dead_letters::discard_notes(&mut conn, &[row.id])
            .await
            .map_err(ApiError::from)?;
        drop(conn);
        let shown = readable(&body);
        let body_size = body.len() as u64;
        let note = notes.remove(&row.id);
        Ok(Response::new(GetDeadLetterResponse {
            dead_letter: Some(dead_letter(
                row,
                body_size,
                request.include_body.then_some(body),
                false,
                note,
            )),
            envelope_json: shown.envelope_json.unwrap_or_default(),
            decode_error: shown.decode_error.unwrap_or_default(),
        }))
    }

    async fn discard_dead_letters(
        &self,
        request: Request<DiscardDeadLettersRequest>,
    ) -> Result<Response<DiscardDeadLettersResponse>, Status> {
        (self.guard)(request.extensions())?;
        let by =
            (self.identify)(request.metadata(), request.extensions()).ok_or(OpsError::Anonymous)?;
        let request = request.into_inner();
        let asked = ids(&request.ids)?;
        if asked.is_empty() {
            return Err(ApiError::invalid("ids", "names no dead letter").into());
        }
        let reason = request.reason.trim();
        popug_input::text::multi_line("reason", reason).map_err(ApiError::from)?;
        if reason.is_empty() {
            return Err(
                ApiError::invalid("reason", "is empty; say why, for the audit record").into(),
            );
        }
        if reason.chars().count() > MAX_REASON_CHARS {
            return Err(ApiError::invalid(
                "reason",
                format!("is longer than {MAX_REASON_CHARS} characters"),
            )
            .into());
        }
        let consumer = self.consumer()?;
        let asked: Vec<i64> = asked.into_iter().collect();
        let discarded = {
            let mut conn = popug_runtime::database::conn(&self.pool).await?;
            discard::discard(&mut conn, consumer, &asked, &by, reason)
                .await
                .map_err(ApiError::from)?
        };
        // The decision is committed; the messages can no longer apply. Drop
        // them from the queue now (any later replay would drop them too).
        let dropped_from_queue = match dead_letters::drop_discarded(
            &self.pool,
            &self.broker,
            consumer,
        )
        .await
        {
            Ok(dropped) => dropped,
            Err(error) => {
                tracing::warn!(%consumer, %error, "discarded dead letters stay in the dead-letter queue until the next replay drops them");
                0
            }
        };
        Ok(Response::new(DiscardDeadLettersResponse {
            discarded_ids: discarded.discarded,
            already_closed_ids: discarded.already_closed,
            not_found_ids: discarded.not_found,
            dropped_from_queue,
        }))
    }
}
