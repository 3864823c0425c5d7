//! The inbox transaction, the one way an event is applied: its
//! `(consumer, event_id)` row goes into the inbox, and only if that row is
//! new do its handlers run, in the same transaction; so an event applies at
//! most once per consumer, and a redelivery changes nothing. Both paths of
//! the apply step run it: the fast path once for a whole batch, the careful
//! path once per event, inside a savepoint.

use std::collections::HashSet;

use diesel_async::{AsyncPgConnection, RunQueryDsl as _};

use super::{
    Consumer, Outcome,
    delivery::{Item, Parsed},
};
use crate::{dead_letters, handlers::HandlerError};

/// Why the inbox transaction failed.
#[derive(Debug, thiserror::Error)]
pub(super) enum InboxError {
    /// The database failed outside a handler.
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
    /// A handler failed, or left the transaction unusable.
    #[error(transparent)]
    Handler(HandlerError),
}

impl From<InboxError> for HandlerError {
    fn from(error: InboxError) -> Self {
        match error {
            InboxError::Database(error) => Self::Database(error),
            InboxError::Handler(error) => error,
        }
    }
}

/// How the inbox transaction runs the handlers of its fresh events.
#[derive(Debug, Clone, Copy)]
pub(super) enum Handling {
    /// Per-event handlers in order, each batch handler once with all of its
    /// type's events (the fast path).
    Together,
    /// Every event by itself (the careful path, one event at a time).
    Alone,
}

impl Consumer {
    /// Inserts `parsed` into the inbox with one statement and runs the
    /// handlers of the events that were new (a second copy in the same
    /// call is a duplicate), then probes that the handlers left the
    /// transaction usable. Runs in the caller's transaction; per event,
    /// whether it applied.
    pub(super) async fn claim_and_apply(
        &self,
        conn: &mut AsyncPgConnection,
        parsed: &[&Parsed],
        handling: Handling,
    ) -> Result<Vec<Outcome>, InboxError> {
        #[derive(diesel::QueryableByName)]
        struct Fresh {
            #[diesel(sql_type = diesel::sql_types::Uuid)]
            event_id: uuid::Uuid,
        }
        let ids: Vec<uuid::Uuid> = parsed.iter().map(|p| p.meta.event_id).collect();
        let mut fresh: HashSet<uuid::Uuid> = popug_runtime::sql::query(
            "INSERT INTO inbox (consumer, event_id) SELECT $1, unnest($2::uuid[]) \
             ON CONFLICT DO NOTHING RETURNING event_id",
        )
        .bind::<diesel::sql_types::Text, _>(&self.name)
        .bind::<diesel::sql_types::Array<diesel::sql_types::Uuid>, _>(ids)
        .load::<Fresh>(conn)
        .await?
        .into_iter()
        .map(|row| row.event_id)
        .collect();
        // `remove`: a second copy of an event in the same batch is a duplicate.
        let outcomes: Vec<Outcome> = parsed
            .iter()
            .map(|p| {
                if fresh.remove(&p.meta.event_id) {
                    Outcome::Applied
                } else {
                    Outcome::Duplicate
                }
            })
            .collect();
        let applied: Vec<_> = parsed
            .iter()
            .zip(&outcomes)
            .filter(|(_, outcome)| **outcome == Outcome::Applied)
            .map(|(p, _)| (&p.meta, &p.decoded))
            .collect();
        if applied.is_empty() {
            return Ok(outcomes);
        }
        let handled = match handling {
            Handling::Together => self.handlers.apply_all(conn, &applied).await,
            Handling::Alone => {
                let mut handled = Ok(());
                for (meta, decoded) in &applied {
                    handled = self.handlers.apply(conn, meta, decoded).await;
                    if handled.is_err() {
                        break;
                    }
                }
                handled
            }
        };
        handled.map_err(InboxError::Handler)?;
        // A handler that swallowed a database error leaves the transaction
        // aborted, and Postgres would answer our COMMIT with a silent
        // ROLLBACK; this probe turns that into an error instead.
        ensure_usable(conn).await.map_err(InboxError::Handler)?;
        Ok(outcomes)
    }

    /// A believed replay, applied now or before: its dead-letter row is
    /// resolved in the same transaction.
    pub(super) async fn resolve_replay(
        &self,
        conn: &mut AsyncPgConnection,
        item: &Item,
        parsed: &Parsed,
    ) -> Result<(), diesel::result::Error> {
        let Some(replay) = &item.replay else {
            return Ok(());
        };
        dead_letters::resolve(
            conn,
            &self.name,
            parsed.meta.event_id,
            Some(replay.dead_letter_id),
        )
        .await
    }
}

/// Fails when the transaction was aborted by an error a handler swallowed.
async fn ensure_usable(conn: &mut AsyncPgConnection) -> Result<(), HandlerError> {
    popug_runtime::sql::query("SELECT 1")
        .execute(conn)
        .await
        .map(drop)
        .map_err(|error| {
            HandlerError::Failed(format!(
                "the handler returned Ok but left the transaction unusable: {error}"
            ))
        })
}
