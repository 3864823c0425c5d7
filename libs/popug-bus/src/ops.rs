//! `popug.ops.v1.OpsService`, written once and served by every service:
//! dead letters, their replay, and the outbox backlog.

use std::sync::Arc;

use popug_proto::pb::popug::ops::v1::{
    DeadLetter, GetOutboxStatusRequest, GetOutboxStatusResponse, ListDeadLettersRequest,
    ListDeadLettersResponse, ReplayDeadLettersRequest, ReplayDeadLettersResponse,
    ops_service_server::{OpsService, OpsServiceServer},
};
use popug_runtime::database::Pool;
use tonic::{Request, Response, Status};

use crate::{
    broker::Broker,
    dead_letters::{self, ListQuery},
    envelope::timestamp,
    outbox,
    relay::RelayHealth,
};

/// Decides whether a request may use the ops API (admins only); the token
/// verification layer supplies the real check, tests their own.
pub type Guard = Arc<dyn Fn(&tonic::Extensions) -> Result<(), Status> + Send + Sync>;

/// The ops API of one service.
#[derive(Clone)]
pub struct Ops {
    pool: Pool,
    broker: Broker,
    /// The service's consumer, if it consumes events (auth does not).
    consumer: Option<String>,
    relay: Arc<RelayHealth>,
    guard: Guard,
}

impl Ops {
    /// The ops API over `pool`'s bus tables, `consumer`'s queues and `relay`.
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
        }
    }

    /// The generated server around this API.
    pub fn into_server(self) -> OpsServiceServer<Self> {
        OpsServiceServer::new(self)
    }

    async fn conn(&self) -> Result<popug_runtime::database::PooledConnection<'_>, Status> {
        self.pool.get().await.map_err(|error| {
            tracing::error!(%error, "ops: no database connection");
            Status::unavailable("the service's database is unavailable")
        })
    }
}

fn database_error(error: &diesel::result::Error) -> Status {
    tracing::error!(%error, "ops: database query failed");
    Status::unavailable("the service's database is unavailable")
}

fn broker_error(error: &dyn std::fmt::Display) -> Status {
    tracing::error!(%error, "ops: broker call failed");
    Status::unavailable(format!("the broker is unavailable: {error}"))
}

/// A failed broker call on `consumer`'s dead-letter queue: a missing queue
/// is reported as missing, anything else as the broker being unavailable.
fn queue_error(broker: &Broker, consumer: &str, error: &lapin::Error) -> Status {
    if dead_letters::is_missing_queue(error) {
        let queue = broker.topology().dead_letter_queue(consumer);
        tracing::warn!(%queue, %error, "ops: the dead-letter queue does not exist");
        return Status::failed_precondition(format!(
            "the dead-letter queue `{queue}` does not exist on the broker (deleted, or expired \
             through POPUG_QUEUE_TTL while no {consumer} service ran); the {consumer} \
             service declares it again when its consumer (re)connects"
        ));
    }
    broker_error(error)
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
        let mut conn = self.conn().await?;
        let listed = dead_letters::list(
            &mut conn,
            ListQuery {
                size: page.size,
                after: page.after,
                include_resolved: request.include_resolved,
                include_bodies: request.include_bodies,
            },
        )
        .await
        .map_err(|error| database_error(&error))?;
        let unresolved = dead_letters::unresolved(&mut conn)
            .await
            .map_err(|error| database_error(&error))?;
        let dead_letter_queue_depth = match &self.consumer {
            Some(consumer) => dead_letters::queue_depth(&self.broker, consumer)
                .await
                .map_err(|error| queue_error(&self.broker, consumer, &error))?,
            None => 0,
        };
        Ok(Response::new(ListDeadLettersResponse {
            dead_letters: listed
                .rows
                .into_iter()
                .map(|listed| {
                    let row = listed.failure;
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
                        body_size: listed.body_size,
                        body: listed.body.unwrap_or_default(),
                        body_omitted: listed.body_omitted,
                    }
                })
                .collect(),
            unresolved,
            dead_letter_queue_depth: u64::from(dead_letter_queue_depth),
            next_page_token: listed
                .next_after
                .map(|id| id.to_string())
                .unwrap_or_default(),
        }))
    }

    async fn replay_dead_letters(
        &self,
        request: Request<ReplayDeadLettersRequest>,
    ) -> Result<Response<ReplayDeadLettersResponse>, Status> {
        (self.guard)(request.extensions())?;
        let Some(consumer) = &self.consumer else {
            return Err(Status::failed_precondition(
                "this service consumes no events, so it has no dead letters",
            ));
        };
        let limit = match request.into_inner().limit {
            0 => None,
            n => Some(n),
        };
        let replayed = dead_letters::replay(&self.pool, &self.broker, consumer, limit)
            .await
            .map_err(|error| match &error {
                dead_letters::ReplayError::Broker(lapin) => {
                    queue_error(&self.broker, consumer, lapin)
                }
                _ => broker_error(&error),
            })?;
        Ok(Response::new(ReplayDeadLettersResponse { replayed }))
    }

    async fn get_outbox_status(
        &self,
        request: Request<GetOutboxStatusRequest>,
    ) -> Result<Response<GetOutboxStatusResponse>, Status> {
        (self.guard)(request.extensions())?;
        let mut conn = self.conn().await?;
        let backlog = outbox::backlog(&mut conn)
            .await
            .map_err(|error| database_error(&error))?;
        let (relay_connected, last_error) = self.relay.snapshot();
        Ok(Response::new(GetOutboxStatusResponse {
            pending: backlog.pending,
            oldest_pending_at: backlog.oldest.map(timestamp),
            oldest_pending_age_ms: u64::try_from(backlog.oldest_age().as_millis())
                .unwrap_or(u64::MAX),
            relay_connected,
            last_error: last_error.unwrap_or_default(),
        }))
    }
}
