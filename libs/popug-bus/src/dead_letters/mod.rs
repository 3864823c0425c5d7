//! Dead letters: the `failed_events` record of what a consumer could not
//! handle, and replay.
//!
//! A failed message lives in two places: its row in `failed_events` (queue,
//! consumer, error, body, time, and where it came from: the routing key it
//! was published with and the broker user that published it) and the
//! message itself in the consumer's dead-letter queue. Replay moves messages
//! from the dead-letter queue back to the live queue, each marked with the
//! id of its row ([`DEAD_LETTER_ID_HEADER`]). A replayed message travels
//! under the live queue's name and as the replaying service's own user, so
//! the consumer holds it against the origin its row recorded instead, and
//! believes the mark only when the row's body is the message's body: replay
//! marks let nobody, not even a holder of the consumer's own credentials,
//! claim an origin for a message the consumer never saw. The normal
//! idempotent consumer applies a replayed message and resolves its row in
//! the same transaction, or, if it fails again, counts the failure on that
//! same row. Replaying twice is harmless: the inbox absorbs it.
//!
//! One row holds one message: a second failure of the same bytes counts on
//! it; a different message claiming an event id that an open row holds gets
//! a row of its own, without the id.
//!
//! Errors are kept short ([`bounded`]) in rows, answers and log lines; the
//! full body stays in the row.
//!
//! This file keeps the rows (record, resolve, list, count); `replay.rs`
//! moves the messages.
//!
//! An operator can also select what to replay (by row ids or a [`Filter`]):
//! [`replay_only`] takes one pass over the dead-letter queue, moving the
//! selected messages and putting the others back at its tail. A message of a
//! discarded row (see [`crate::discard`]) is never moved: every pass drops
//! it from the queue. Two passes at once are safe: the broker hands each
//! message to one of them, and a message moved twice (a pass that died
//! between the publish and the ack) is a duplicate the inbox absorbs.

mod replay;

use std::borrow::Cow;

use diesel::{
    ExpressionMethods as _, OptionalExtension as _, PgTextExpressionMethods as _, QueryDsl as _,
    Queryable, QueryableByName, Selectable, SelectableHelper as _,
    sql_types::{BigInt, Bytea, Nullable, Text},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use uuid::Uuid;

pub use crate::dead_letter_filter::{
    DiscardNote, ErrorCount, Filter, MAX_ERROR_GROUPS, discard_notes, error_counts, matching,
    select_unresolved,
};
use crate::{envelope::EventMeta, schema::failed_events};

pub use replay::{
    Pass, ReplayError, drop_discarded, is_missing_queue, queue_depth, replay, replay_all,
    replay_only,
};

/// Header marking a message moved back from the dead-letter queue.
pub const REPLAYED_HEADER: &str = "x-popug-replayed";
/// Header of a replayed message: the id of its `failed_events` row.
pub const DEAD_LETTER_ID_HEADER: &str = "x-popug-dead-letter-id";

/// Most characters of an error kept in a row, an answer or a log line.
pub const MAX_ERROR_CHARS: usize = 1_000;

/// `text` cut to at most [`MAX_ERROR_CHARS`] characters, with a marker
/// saying how much was cut. An error may quote the hostile payload that
/// caused it (a ten-million-character field), and must not carry it into
/// rows, answers and logs.
pub fn bounded(text: &str) -> Cow<'_, str> {
    let Some((cut_at, _)) = text.char_indices().nth(MAX_ERROR_CHARS) else {
        return Cow::Borrowed(text);
    };
    // Room for the marker inside the limit.
    let total = text.chars().count();
    let marker = |kept: usize| format!("… [cut: {} more characters]", total - kept);
    let room = MAX_ERROR_CHARS - marker(0).chars().count();
    let kept_end = text.char_indices().nth(room).map_or(cut_at, |(at, _)| at);
    Cow::Owned(format!("{}{}", &text[..kept_end], marker(room)))
}

/// What a consumer knows about a message that it dead-letters.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Failure<'a> {
    /// The consumer that failed.
    pub consumer: &'a str,
    /// The queue the message came from.
    pub queue: &'a str,
    /// The routing key it was published with, when known.
    pub routing_key: Option<&'a str>,
    /// The broker user that published it, when known.
    pub user_id: Option<&'a str>,
    /// Its row, when it is a replay of an earlier failure.
    pub dead_letter_id: Option<i64>,
    /// The envelope, when it could be read.
    pub meta: Option<&'a EventMeta>,
    /// The message body as received.
    pub body: &'a [u8],
    /// Why it failed; cut to [`MAX_ERROR_CHARS`] here.
    pub error: &'a str,
}

/// Records a failure. The same message failing again (a replay that names
/// its row, or the same bytes under an open row of its event id) counts on
/// that row, so one message has one open row however often it is replayed.
pub(crate) async fn record(
    conn: &mut AsyncPgConnection,
    failure: Failure<'_>,
) -> Result<(), diesel::result::Error> {
    // Postgres text cannot hold NUL, and the error may quote hostile bytes.
    let error = bounded(failure.error).replace('\0', "\\0");
    let event_id = failure.meta.map(|meta| meta.event_id);
    let event_type = failure.meta.map(|meta| meta.event_type.as_str());
    // Its own row: by id after a replay, else by event id; the body must be
    // the same, or it is another message.
    let again = diesel::sql_query(
        "UPDATE failed_events SET error = $4, queue = $5, failures = failures + 1, \
             failed_at = now(), event_type = COALESCE(event_type, $6) \
         WHERE consumer = $1 AND resolved_at IS NULL AND body = $7 \
           AND (id = $2 OR event_id = $3)",
    )
    .bind::<Text, _>(failure.consumer)
    .bind::<Nullable<BigInt>, _>(failure.dead_letter_id)
    .bind::<Nullable<diesel::sql_types::Uuid>, _>(event_id)
    .bind::<Text, _>(&error)
    .bind::<Text, _>(failure.queue)
    .bind::<Nullable<Text>, _>(event_type)
    .bind::<Bytea, _>(failure.body)
    .execute(conn)
    .await?;
    if again > 0 {
        return Ok(());
    }
    // A new row; if an open row holds this event id for other bytes, this
    // one keeps no id (one open row per event id), and says so.
    diesel::sql_query(
        "INSERT INTO failed_events \
             (consumer, queue, routing_key, user_id, event_id, event_type, error, body) \
         SELECT $1, $2, $3, $4, taken.free_id, $6, \
                CASE WHEN taken.free_id IS NULL AND $5 IS NOT NULL \
                     THEN 'another dead letter holds event id ' || $5 || '; ' || $7 \
                     ELSE $7 END, \
                $8 \
         FROM (SELECT CASE WHEN EXISTS (SELECT 1 FROM failed_events \
                   WHERE consumer = $1 AND event_id = $5 AND resolved_at IS NULL) \
               THEN NULL ELSE $5 END AS free_id) AS taken",
    )
    .bind::<Text, _>(failure.consumer)
    .bind::<Text, _>(failure.queue)
    .bind::<Nullable<Text>, _>(failure.routing_key)
    .bind::<Nullable<Text>, _>(failure.user_id)
    .bind::<Nullable<diesel::sql_types::Uuid>, _>(event_id)
    .bind::<Nullable<Text>, _>(event_type)
    .bind::<Text, _>(&error)
    .bind::<Bytea, _>(failure.body)
    .execute(conn)
    .await?;
    Ok(())
}

/// Where a dead-lettered message came from, as its row recorded it.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub(crate) struct Origin {
    /// Its row.
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    /// The routing key it was first published with.
    #[diesel(sql_type = Nullable<Text>)]
    pub routing_key: Option<String>,
    /// The broker user that first published it.
    #[diesel(sql_type = Nullable<Text>)]
    pub user_id: Option<String>,
}

/// The origin that row `id` of `consumer` recorded, if the row holds exactly
/// `body`: what makes a replay mark believable.
pub(crate) async fn origin_of(
    conn: &mut AsyncPgConnection,
    consumer: &str,
    id: i64,
    body: &[u8],
) -> Result<Option<Origin>, diesel::result::Error> {
    diesel::sql_query(
        "SELECT id, routing_key, user_id FROM failed_events \
         WHERE consumer = $1 AND id = $2 AND body = $3",
    )
    .bind::<Text, _>(consumer)
    .bind::<BigInt, _>(id)
    .bind::<Bytea, _>(body)
    .get_result(conn)
    .await
    .optional()
}

/// Resolves the open failure of a replayed event that was applied (or found
/// applied already): its row by id when the replay named it, and any open
/// row of its event id.
pub(crate) async fn resolve(
    conn: &mut AsyncPgConnection,
    consumer: &str,
    event_id: Uuid,
    dead_letter_id: Option<i64>,
) -> Result<(), diesel::result::Error> {
    diesel::sql_query(
        "UPDATE failed_events SET resolved_at = now() \
         WHERE consumer = $1 AND resolved_at IS NULL AND (event_id = $2 OR id = $3)",
    )
    .bind::<Text, _>(consumer)
    .bind::<diesel::sql_types::Uuid, _>(event_id)
    .bind::<Nullable<BigInt>, _>(dead_letter_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// One row of `failed_events`.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = failed_events)]
pub struct FailedEvent {
    /// Row id.
    pub id: i64,
    /// The consumer that failed.
    pub consumer: String,
    /// The queue the message came from.
    pub queue: String,
    /// The routing key the message was published with (unknown for rows
    /// recorded before it was kept).
    pub routing_key: Option<String>,
    /// The broker user that published it (the AMQP `user_id`), when known.
    pub user_id: Option<String>,
    /// The event id, when the envelope could be read.
    pub event_id: Option<Uuid>,
    /// The payload type, when the envelope could be read.
    pub event_type: Option<String>,
    /// Why it failed (the last time).
    pub error: String,
    /// How many times it failed.
    pub failures: i32,
    /// When it last failed.
    pub failed_at: chrono::DateTime<chrono::Utc>,
    /// When it was closed: a replay applied it, or an admin discarded it.
    pub resolved_at: Option<chrono::DateTime<chrono::Utc>>,
    /// When an admin discarded it (see [`crate::discard`]).
    pub discarded_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// About how many bytes of errors and bodies one page of failures holds.
/// A gRPC client accepts 4 MiB by default; a page stays well below.
pub const MAX_PAGE_BYTES: u64 = 1 << 20;

/// Bytes a listed row costs beside its error and body (ids, names, times).
const ROW_OVERHEAD: u64 = 256;

/// Which failures to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    /// Most rows.
    pub size: i64,
    /// List only rows older than this id (the previous page's last).
    pub after: Option<i64>,
    /// Also rows already resolved.
    pub include_resolved: bool,
    /// Also the bodies.
    pub include_bodies: bool,
    /// Only rows matching this.
    pub filter: Filter,
}

/// One listed failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// The row, its error cut to [`MAX_ERROR_CHARS`].
    pub failure: FailedEvent,
    /// Size of the body in bytes.
    pub body_size: u64,
    /// The body, when asked for and it fits the page.
    pub body: Option<Vec<u8>>,
    /// The body was asked for but alone exceeds [`MAX_PAGE_BYTES`].
    pub body_omitted: bool,
    /// Who discarded it and why, when it was discarded.
    pub discard: Option<DiscardNote>,
}

/// A page of failures, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListPage {
    /// The failures.
    pub rows: Vec<Listed>,
    /// Where the next page starts (pass it as [`ListQuery::after`]), if any.
    pub next_after: Option<i64>,
}

/// Failures, newest first, a page at a time: at most `query.size` rows, and
/// no more than fit [`MAX_PAGE_BYTES`] with their errors and (if asked)
/// bodies. A page always holds at least one row; a body that alone is larger
/// than a page is left out and marked so. Bodies are read only for the rows
/// that fit.
pub async fn list(
    conn: &mut AsyncPgConnection,
    query: ListQuery,
) -> Result<ListPage, diesel::result::Error> {
    use diesel::dsl::sql;
    let mut rows = failed_events::table
        .select((
            FailedEvent::as_select(),
            // The stored size: no body is read for it.
            sql::<BigInt>("octet_length(body)::bigint"),
        ))
        .order(failed_events::id.desc())
        .limit(query.size.saturating_add(1))
        .into_boxed();
    if !query.include_resolved {
        rows = rows.filter(failed_events::resolved_at.is_null());
    }
    if let Some(after) = query.after {
        rows = rows.filter(failed_events::id.lt(after));
    }
    let filter = &query.filter;
    if let Some(event_type) = &filter.event_type {
        rows = rows.filter(failed_events::event_type.eq(event_type.clone()));
    }
    if let Some(pattern) = filter.error_pattern() {
        rows = rows.filter(failed_events::error.ilike(pattern));
    }
    if let Some(after) = filter.failed_after {
        rows = rows.filter(failed_events::failed_at.ge(after));
    }
    if let Some(before) = filter.failed_before {
        rows = rows.filter(failed_events::failed_at.lt(before));
    }
    let found: Vec<(FailedEvent, i64)> = rows.load(conn).await?;
    let mut page = Vec::new();
    let mut bytes = 0;
    for (mut failure, body_size) in found
        .iter()
        .take(usize::try_from(query.size).unwrap_or(0))
        .cloned()
    {
        failure.error = bounded(&failure.error).into_owned();
        let body_size = u64::try_from(body_size).unwrap_or(0);
        let cost = ROW_OVERHEAD + failure.error.len() as u64;
        let wanted = if query.include_bodies { body_size } else { 0 };
        if !page.is_empty() && bytes + cost + wanted > MAX_PAGE_BYTES {
            break;
        }
        let body_omitted = query.include_bodies && cost + body_size > MAX_PAGE_BYTES;
        bytes += cost + if body_omitted { 0 } else { wanted };
        page.push(Listed {
            failure,
            body_size,
            body: None,
            body_omitted,
            discard: None,
        });
    }
    let next_after = (page.len() < found.len())
        .then(|| page.last().map(|listed| listed.failure.id))
        .flatten();
    if query.include_bodies {
        let ids: Vec<i64> = page
            .iter()
            .filter(|listed| !listed.body_omitted)
            .map(|listed| listed.failure.id)
            .collect();
        let bodies: std::collections::HashMap<i64, Vec<u8>> = failed_events::table
            .select((failed_events::id, failed_events::body))
            .filter(failed_events::id.eq_any(&ids))
            .load::<(i64, Vec<u8>)>(conn)
            .await?
            .into_iter()
            .collect();
        for listed in &mut page {
            listed.body = bodies.get(&listed.failure.id).cloned();
        }
    }
    let discarded: Vec<i64> = page
        .iter()
        .filter(|listed| listed.failure.discarded_at.is_some())
        .map(|listed| listed.failure.id)
        .collect();
    let mut notes = discard_notes(conn, &discarded).await?;
    for listed in &mut page {
        listed.discard = notes.remove(&listed.failure.id);
    }
    Ok(ListPage {
        rows: page,
        next_after,
    })
}

/// Row `id` and its body, if there is one.
pub async fn get(
    conn: &mut AsyncPgConnection,
    id: i64,
) -> Result<Option<(FailedEvent, Vec<u8>)>, diesel::result::Error> {
    failed_events::table
        .select((FailedEvent::as_select(), failed_events::body))
        .filter(failed_events::id.eq(id))
        .first(conn)
        .await
        .optional()
}

/// How many failures are not resolved.
pub async fn unresolved(conn: &mut AsyncPgConnection) -> Result<u64, diesel::result::Error> {
    let count: i64 = failed_events::table
        .filter(failed_events::resolved_at.is_null())
        .count()
        .get_result(conn)
        .await?;
    Ok(u64::try_from(count).unwrap_or(0))
}
