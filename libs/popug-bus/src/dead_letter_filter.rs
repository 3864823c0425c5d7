//! Which dead letters an operator means: a [`Filter`] (payload type, error
//! text, time), how many match, their counts by error, the unresolved ones a
//! replay selects, and who discarded which. Listing itself is
//! [`crate::dead_letters::list`].

use diesel::{
    ExpressionMethods as _, QueryDsl as _, QueryableByName,
    sql_types::{BigInt, Bool, Nullable, Text, Timestamptz},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};

use crate::dead_letters::bounded;

#[derive(QueryableByName)]
struct RowId {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

/// Which dead letters to list, count or replay: every field that is set
/// must match. Built from a request at the edge ([`crate::ops`]), which
/// checks its text and times.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// The payload's full type name, exactly.
    pub event_type: Option<String>,
    /// Text the error contains, ignoring case (taken literally: `%` and `_`
    /// are no wildcards).
    pub error_contains: Option<String>,
    /// Failed (last) at or after this time.
    pub failed_after: Option<chrono::DateTime<chrono::Utc>>,
    /// Failed (last) before this time.
    pub failed_before: Option<chrono::DateTime<chrono::Utc>>,
}

impl Filter {
    /// `error_contains` as an `ILIKE` pattern, its wildcards escaped.
    pub(crate) fn error_pattern(&self) -> Option<String> {
        self.error_contains.as_ref().map(|text| {
            let escaped = text
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            format!("%{escaped}%")
        })
    }
}

/// The condition a [`Filter`] puts on `failed_events`, with `include_resolved`
/// as `$5` (binds `$1`..`$5`, see [`bind_filter`]).
const FILTER_SQL: &str = "($1::text IS NULL OR event_type = $1) \
    AND ($2::text IS NULL OR error ILIKE $2) \
    AND ($3::timestamptz IS NULL OR failed_at >= $3) \
    AND ($4::timestamptz IS NULL OR failed_at < $4) \
    AND ($5::bool OR resolved_at IS NULL)";

type FilterQuery<'f> =
    diesel::query_builder::BoxedSqlQuery<'f, diesel::pg::Pg, diesel::query_builder::SqlQuery>;

/// `sql` with `$1`..`$5` of [`FILTER_SQL`] bound.
fn bind_filter<'f>(sql: String, filter: &Filter, include_resolved: bool) -> FilterQuery<'f> {
    diesel::sql_query(sql)
        .into_boxed::<diesel::pg::Pg>()
        .bind::<Nullable<Text>, _>(filter.event_type.clone())
        .bind::<Nullable<Text>, _>(filter.error_pattern())
        .bind::<Nullable<Timestamptz>, _>(filter.failed_after)
        .bind::<Nullable<Timestamptz>, _>(filter.failed_before)
        .bind::<Bool, _>(include_resolved)
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// How many dead letters match `filter` (closed ones too with
/// `include_resolved`).
pub async fn matching(
    conn: &mut AsyncPgConnection,
    filter: &Filter,
    include_resolved: bool,
) -> Result<u64, diesel::result::Error> {
    let count: Count = bind_filter(
        format!("SELECT count(*) AS n FROM failed_events WHERE {FILTER_SQL}"),
        filter,
        include_resolved,
    )
    .get_result(conn)
    .await?;
    Ok(u64::try_from(count.n).unwrap_or(0))
}

/// Dead letters that failed with one error.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct ErrorCount {
    /// The error, cut to [`crate::dead_letters::MAX_ERROR_CHARS`].
    #[diesel(sql_type = Text)]
    pub error: String,
    /// How many.
    #[diesel(sql_type = BigInt)]
    pub count: i64,
    /// When the latest of them failed.
    #[diesel(sql_type = Timestamptz)]
    pub last_failed_at: chrono::DateTime<chrono::Utc>,
}

/// Most groups [`error_counts`] returns.
pub const MAX_ERROR_GROUPS: i64 = 50;

/// The dead letters matching `filter`, grouped by their error, most
/// frequent first (ties: the latest failure first), at most
/// [`MAX_ERROR_GROUPS`] groups.
pub async fn error_counts(
    conn: &mut AsyncPgConnection,
    filter: &Filter,
    include_resolved: bool,
) -> Result<Vec<ErrorCount>, diesel::result::Error> {
    let mut counts: Vec<ErrorCount> = bind_filter(
        format!(
            "SELECT error, count(*) AS count, max(failed_at) AS last_failed_at \
             FROM failed_events WHERE {FILTER_SQL} \
             GROUP BY error ORDER BY count(*) DESC, max(failed_at) DESC, error LIMIT $6"
        ),
        filter,
        include_resolved,
    )
    .bind::<BigInt, _>(MAX_ERROR_GROUPS)
    .load(conn)
    .await?;
    for count in &mut counts {
        count.error = bounded(&count.error).into_owned();
    }
    Ok(counts)
}

/// The unresolved dead letters of `consumer` to replay: those of `ids` (all
/// when `None`) that match `filter`, oldest first, at most `limit`.
pub async fn select_unresolved(
    conn: &mut AsyncPgConnection,
    consumer: &str,
    ids: Option<&[i64]>,
    filter: &Filter,
    limit: i64,
) -> Result<Vec<i64>, diesel::result::Error> {
    Ok(bind_filter(
        format!(
            "SELECT id FROM failed_events WHERE {FILTER_SQL} \
               AND consumer = $6 AND ($7::int8[] IS NULL OR id = ANY($7)) \
             ORDER BY id LIMIT $8"
        ),
        filter,
        false,
    )
    .bind::<Text, _>(consumer.to_owned())
    .bind::<Nullable<diesel::sql_types::Array<BigInt>>, _>(ids.map(<[i64]>::to_vec))
    .bind::<BigInt, _>(limit)
    .load::<RowId>(conn)
    .await?
    .into_iter()
    .map(|row| row.id)
    .collect())
}

/// Who discarded a dead letter, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscardNote {
    /// The admin's account id.
    pub by: String,
    /// Their reason.
    pub reason: String,
}

/// The discard notes of the rows `ids` that have one.
pub async fn discard_notes(
    conn: &mut AsyncPgConnection,
    ids: &[i64],
) -> Result<std::collections::HashMap<i64, DiscardNote>, diesel::result::Error> {
    use crate::schema::dead_letter_discards as discards;
    if ids.is_empty() {
        return Ok(std::collections::HashMap::new());
    }
    Ok(discards::table
        .select((
            discards::failed_event_id,
            discards::discarded_by,
            discards::reason,
        ))
        .filter(discards::failed_event_id.eq_any(ids))
        .load::<(i64, String, String)>(conn)
        .await?
        .into_iter()
        .map(|(id, by, reason)| (id, DiscardNote { by, reason }))
        .collect())
}
