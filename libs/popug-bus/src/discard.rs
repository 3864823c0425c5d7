//! Discarding dead letters: an admin's decision that a message must never be
//! applied, recorded with who decided and why.
//!
//! [`discard`] is one transaction, safe to run from two terminals at once
//! and idempotent:
//! 1. the event ids of the open rows go into the consumer's inbox, so that
//!    no copy of the event (a replay already on its way, a stale copy in a
//!    queue, a duplicate from the producer) is ever applied: the consumer
//!    takes it for a duplicate. The consumer inserts into the inbox first
//!    too, so the two wait for each other instead of deadlocking, and
//!    whichever commits first wins: an event the consumer applied first
//!    stays applied and its row resolved, and the discard reports it closed;
//! 2. the rows still open are closed (`resolved_at` and `discarded_at`) by a
//!    conditional update, which takes their row locks: of two discards of one
//!    row, only the first changes it;
//! 3. each row closed gets its audit record in `dead_letter_discards` (the
//!    admin's account id, the reason, and what the message was), which
//!    outlives the row when retention prunes it.
//!
//! The message itself stays in the dead-letter queue until a pass over it
//! drops it ([`crate::dead_letters::drop_discarded`], which the ops API
//! runs right after; any replay drops it too).

use std::collections::BTreeSet;

use diesel::{
    QueryableByName,
    sql_types::{Array, BigInt, Text},
};
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};

/// What [`discard`] did with each id it was given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Discarded {
    /// Closed by this call, each with its audit record.
    pub discarded: Vec<i64>,
    /// Closed before (resolved by a replay, or discarded already): unchanged.
    pub already_closed: Vec<i64>,
    /// No dead letter of this consumer has the id.
    pub not_found: Vec<i64>,
}

#[derive(QueryableByName)]
struct Id {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

/// Discards `consumer`'s dead letters `ids`, as `by` (the admin's account
/// id) for `reason`; see the module docs.
pub async fn discard(
    conn: &mut AsyncPgConnection,
    consumer: &str,
    ids: &[i64],
    by: &str,
    reason: &str,
) -> Result<Discarded, diesel::result::Error> {
    let ids: Vec<i64> = ids
        .iter()
        .copied()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    conn.transaction(async |conn| {
        diesel::sql_query(
            "INSERT INTO inbox (consumer, event_id) \
             SELECT consumer, event_id FROM failed_events \
             WHERE consumer = $1 AND id = ANY($2) AND resolved_at IS NULL AND event_id IS NOT NULL \
             ORDER BY event_id \
             ON CONFLICT DO NOTHING",
        )
        .bind::<Text, _>(consumer)
        .bind::<Array<BigInt>, _>(&ids)
        .execute(conn)
        .await?;
        let discarded: Vec<Id> = diesel::sql_query(
            "WITH closed AS ( \
                 UPDATE failed_events SET resolved_at = now(), discarded_at = now() \
                 WHERE consumer = $1 AND id = ANY($2) AND resolved_at IS NULL \
                 RETURNING id, consumer, event_id, event_type, routing_key, error, body) \
             INSERT INTO dead_letter_discards \
                 (failed_event_id, consumer, event_id, event_type, routing_key, error, \
                  body_sha256, body_size, discarded_by, reason) \
             SELECT id, consumer, event_id, event_type, routing_key, error, \
                    sha256(body), octet_length(body), $3, $4 \
             FROM closed \
             RETURNING failed_event_id AS id",
        )
        .bind::<Text, _>(consumer)
        .bind::<Array<BigInt>, _>(&ids)
        .bind::<Text, _>(by)
        .bind::<Text, _>(reason)
        .load(conn)
        .await?;
        let existing: Vec<Id> =
            diesel::sql_query("SELECT id FROM failed_events WHERE consumer = $1 AND id = ANY($2)")
                .bind::<Text, _>(consumer)
                .bind::<Array<BigInt>, _>(&ids)
                .load(conn)
                .await?;
        let discarded: BTreeSet<i64> = discarded.into_iter().map(|row| row.id).collect();
        let existing: BTreeSet<i64> = existing.into_iter().map(|row| row.id).collect();
        for id in &discarded {
            tracing::warn!(%consumer, dead_letter_id = id, %by, %reason, "dead letter discarded");
        }
        Ok(Discarded {
            discarded: discarded.iter().copied().collect(),
            already_closed: existing.difference(&discarded).copied().collect(),
            not_found: ids
                .iter()
                .copied()
                .filter(|id| !existing.contains(id))
                .collect(),
        })
    })
    .await
}
