//! The read model's writes (one statement per event type of a batch; each
//! idempotent and order-independent) and the queries behind the dashboards.
//!
//! The dashboards' sums cannot overflow or fail: Postgres sums `bigint` as
//! `numeric`, and each figure is clamped into `bigint` (`clamped`) before
//! it leaves. The event rules bound every amount a row can hold (a fee or
//! reward is at most 4,000 cents, a payout 100,000,000), so a real figure
//! is never near the clamp; it only keeps a forged or corrupt row from
//! turning every dashboard of its day into an error.

use diesel::{
    QueryableByName,
    sql_types::{Array, BigInt, Date, Nullable, Text, Timestamptz},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use popug_runtime::database::Pool;
use uuid::Uuid;

use crate::error::Error;

type Day = chrono::NaiveDate;

/// A task's description from TaskCreated (v2, or v1 upcast).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Described {
    /// The task.
    pub task_id: Uuid,
    /// Its key, `POPUG-<n>` (empty in v1 events, which leave it as it was).
    pub key: String,
    /// Its title.
    pub title: String,
}

/// A task's completion from TaskCompleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Completed {
    /// The task.
    pub task_id: Uuid,
    /// Who completed it.
    pub assignee_id: Uuid,
    /// When.
    pub at: chrono::DateTime<chrono::Utc>,
    /// The day of `at` in the company's time zone.
    pub day: Day,
}

/// A ledger entry from TransactionApplied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The entry, which keys the row.
    pub entry_id: Uuid,
    /// The popug whose balance it moved.
    pub account_id: Uuid,
    /// `assignment_fee`, `completion_reward` or `payout`.
    pub kind: &'static str,
    /// Signed, as billing booked it.
    pub amount_cents: i64,
    /// The task, for fees and rewards.
    pub task_id: Option<Uuid>,
    /// The business day it landed in.
    pub day: Day,
}

/// Each task's rows of one statement, sorted by task id (so competing
/// statements take rows in one order), several events for one task folded
/// into one row by `fold` (an upsert may touch a row once per statement).
fn by_task<T>(
    rows: impl IntoIterator<Item = T>,
    task_id: impl Fn(&T) -> Uuid,
    fold: impl Fn(&mut T, T),
) -> Vec<T> {
    let mut tasks: std::collections::BTreeMap<Uuid, T> = std::collections::BTreeMap::new();
    for row in rows {
        match tasks.entry(task_id(&row)) {
            std::collections::btree_map::Entry::Vacant(vacant) => {
                vacant.insert(row);
            }
            std::collections::btree_map::Entry::Occupied(mut occupied) => {
                fold(occupied.get_mut(), row);
            }
        }
    }
    tasks.into_values().collect()
}

/// TaskCreated (v2, or v1 upcast), a batch in one statement: each task's
/// key and title (a later event's title wins; an empty key keeps the key).
pub async fn tasks_described(
    conn: &mut AsyncPgConnection,
    described: Vec<Described>,
) -> Result<(), diesel::result::Error> {
    let rows = by_task(
        described,
        |d| d.task_id,
        |earlier, later| {
            if !later.key.is_empty() {
                earlier.key = later.key;
            }
            earlier.title = later.title;
        },
    );
    popug_runtime::sql::query(
        "INSERT INTO tasks (task_id, key, title) \
         SELECT task_id, NULLIF(key, ''), title FROM unnest($1::uuid[], $2::text[], $3::text[]) AS d(task_id, key, title) \
         ON CONFLICT (task_id) DO UPDATE SET key = COALESCE(EXCLUDED.key, tasks.key), title = EXCLUDED.title",
    )
    .bind::<Array<diesel::sql_types::Uuid>, _>(rows.iter().map(|d| d.task_id).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(rows.iter().map(|d| d.key.as_str()).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(rows.iter().map(|d| d.title.as_str()).collect::<Vec<_>>())
    .execute(conn)
    .await
    .map(drop)
}

/// TaskPriced, a batch in one statement: each task's fee and reward (set
/// once by billing; a later event wins).
pub async fn tasks_priced(
    conn: &mut AsyncPgConnection,
    priced: Vec<(Uuid, i64, i64)>,
) -> Result<(), diesel::result::Error> {
    let rows = by_task(priced, |p| p.0, |earlier, later| *earlier = later);
    popug_runtime::sql::query(
        "INSERT INTO tasks (task_id, fee_cents, reward_cents) \
         SELECT * FROM unnest($1::uuid[], $2::int8[], $3::int8[]) \
         ON CONFLICT (task_id) DO UPDATE SET fee_cents = EXCLUDED.fee_cents, reward_cents = EXCLUDED.reward_cents",
    )
    .bind::<Array<diesel::sql_types::Uuid>, _>(rows.iter().map(|p| p.0).collect::<Vec<_>>())
    .bind::<Array<BigInt>, _>(rows.iter().map(|p| p.1).collect::<Vec<_>>())
    .bind::<Array<BigInt>, _>(rows.iter().map(|p| p.2).collect::<Vec<_>>())
    .execute(conn)
    .await
    .map(drop)
}

/// TaskCompleted, a batch in one statement: when and by whom (a task
/// completes once; the first completion wins, in the table and in the batch).
pub async fn tasks_completed(
    conn: &mut AsyncPgConnection,
    completed: Vec<Completed>,
) -> Result<(), diesel::result::Error> {
    let rows = by_task(completed, |c| c.task_id, |_, _| {});
    popug_runtime::sql::query(
        "INSERT INTO tasks (task_id, assignee_id, completed_at, completed_day) \
         SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::timestamptz[], $4::date[]) \
         ON CONFLICT (task_id) DO UPDATE SET assignee_id = COALESCE(tasks.assignee_id, EXCLUDED.assignee_id), \
             completed_at = COALESCE(tasks.completed_at, EXCLUDED.completed_at), \
             completed_day = COALESCE(tasks.completed_day, EXCLUDED.completed_day)",
    )
    .bind::<Array<diesel::sql_types::Uuid>, _>(rows.iter().map(|c| c.task_id).collect::<Vec<_>>())
    .bind::<Array<diesel::sql_types::Uuid>, _>(rows.iter().map(|c| c.assignee_id).collect::<Vec<_>>())
    .bind::<Array<Timestamptz>, _>(rows.iter().map(|c| c.at).collect::<Vec<_>>())
    .bind::<Array<Date>, _>(rows.iter().map(|c| c.day).collect::<Vec<_>>())
    .execute(conn)
    .await
    .map(drop)
}

/// TransactionApplied, a batch in one statement: each ledger entry, keyed
/// by its own id (a copy already stored changes nothing).
pub async fn transactions(
    conn: &mut AsyncPgConnection,
    mut entries: Vec<Entry>,
) -> Result<(), diesel::result::Error> {
    entries.sort_by_key(|e| e.entry_id);
    popug_runtime::sql::query(
        "INSERT INTO transactions (entry_id, account_id, kind, amount_cents, task_id, day) \
         SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::int8[], $5::uuid[], $6::date[]) \
         ON CONFLICT (entry_id) DO NOTHING",
    )
    .bind::<Array<diesel::sql_types::Uuid>, _>(entries.iter().map(|e| e.entry_id).collect::<Vec<_>>())
    .bind::<Array<diesel::sql_types::Uuid>, _>(entries.iter().map(|e| e.account_id).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(entries.iter().map(|e| e.kind).collect::<Vec<_>>())
    .bind::<Array<BigInt>, _>(entries.iter().map(|e| e.amount_cents).collect::<Vec<_>>())
    .bind::<Array<Nullable<diesel::sql_types::Uuid>>, _>(entries.iter().map(|e| e.task_id).collect::<Vec<_>>())
    .bind::<Array<Date>, _>(entries.iter().map(|e| e.day).collect::<Vec<_>>())
    .execute(conn)
    .await
    .map(drop)
}

/// BillingCycleClosed.
pub async fn day_closed(
    conn: &mut AsyncPgConnection,
    day: Day,
    accounts_paid: i32,
    payouts_cents: i64,
) -> Result<(), diesel::result::Error> {
    popug_runtime::sql::query("INSERT INTO day_closes (day, accounts_paid, payouts_cents) VALUES ($1, $2, $3) ON CONFLICT (day) DO NOTHING")
        .bind::<Date, _>(day)
        .bind::<diesel::sql_types::Integer, _>(accounts_paid)
        .bind::<BigInt, _>(payouts_cents)
        .execute(conn)
        .await
        .map(drop)
}

/// PaymentSent.
pub async fn payment(
    conn: &mut AsyncPgConnection,
    payout_id: Uuid,
    account_id: Uuid,
    amount_cents: i64,
    day: Day,
) -> Result<(), diesel::result::Error> {
    popug_runtime::sql::query("INSERT INTO payments (payout_id, account_id, amount_cents, day) VALUES ($1, $2, $3, $4) ON CONFLICT (payout_id) DO NOTHING")
        .bind::<diesel::sql_types::Uuid, _>(payout_id)
        .bind::<diesel::sql_types::Uuid, _>(account_id)
        .bind::<BigInt, _>(amount_cents)
        .bind::<Date, _>(day)
        .execute(conn)
        .await
        .map(drop)
}

/// The SQL of `numeric`, a sum, clamped into `bigint` (`i64`).
fn clamped(numeric: &str) -> String {
    format!(
        "LEAST(GREATEST({numeric}, {}), {})::bigint",
        i64::MIN,
        i64::MAX
    )
}

/// One day's figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, QueryableByName)]
pub struct DayFigures {
    /// The day.
    #[diesel(sql_type = Date)]
    pub day: Day,
    /// Fees charged minus rewards paid, in cents.
    #[diesel(sql_type = BigInt)]
    pub earnings_cents: i64,
    /// Popugs whose balance was negative at the end of the day.
    #[diesel(sql_type = BigInt)]
    pub negative_popugs: i64,
}

/// The most expensive completed task of a period.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct ExpensiveTask {
    /// The task.
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    pub task_id: Uuid,
    /// Its key.
    #[diesel(sql_type = Nullable<Text>)]
    pub key: Option<String>,
    /// Its title.
    #[diesel(sql_type = Nullable<Text>)]
    pub title: Option<String>,
    /// Its reward.
    #[diesel(sql_type = BigInt)]
    pub reward_cents: i64,
    /// When it was completed.
    #[diesel(sql_type = Timestamptz)]
    pub completed_at: chrono::DateTime<chrono::Utc>,
}

/// The read model's queries.
#[derive(Clone)]
pub struct Dashboards {
    pool: Pool,
}

impl Dashboards {
    /// Queries over `pool`.
    pub fn new(pool: Pool) -> Self {
        Self { pool }
    }

    /// Each day's figures from `from` to `to`. A popug's balance at the end
    /// of a day is the sum of its entries of that day and before, exactly as
    /// billing's balance is the sum of its entries.
    pub async fn days(&self, from: Day, to: Day) -> Result<Vec<DayFigures>, Error> {
        let mut conn = popug_runtime::database::conn(&self.pool).await?;
        let earnings = clamped(
            "COALESCE((SELECT -COALESCE(sum(amount_cents) FILTER (WHERE kind = 'assignment_fee'), 0) \
                              - COALESCE(sum(amount_cents) FILTER (WHERE kind = 'completion_reward'), 0) \
                       FROM transactions WHERE day = d::date), 0)",
        );
        Ok(popug_runtime::sql::query(format!(
            "SELECT d::date AS day, \
                    {earnings} AS earnings_cents, \
                    (SELECT count(*) FROM (SELECT account_id FROM transactions WHERE day <= d::date \
                                           GROUP BY account_id HAVING sum(amount_cents) < 0) negative)::bigint AS negative_popugs \
             FROM generate_series($1::date, $2::date, interval '1 day') d ORDER BY d",
        ))
        .bind::<Date, _>(from)
        .bind::<Date, _>(to)
        .load(&mut conn)
        .await?)
    }

    /// The completed task with the highest reward in `from..=to`; ties go to
    /// the earliest completion, then the smallest task id.
    pub async fn most_expensive(&self, from: Day, to: Day) -> Result<Option<ExpensiveTask>, Error> {
        let mut conn = popug_runtime::database::conn(&self.pool).await?;
        let mut found: Vec<ExpensiveTask> = popug_runtime::sql::query(
            "SELECT task_id, key, title, reward_cents, completed_at FROM tasks \
             WHERE completed_day BETWEEN $1 AND $2 AND reward_cents IS NOT NULL \
             ORDER BY reward_cents DESC, completed_at ASC, task_id ASC LIMIT 1",
        )
        .bind::<Date, _>(from)
        .bind::<Date, _>(to)
        .load(&mut conn)
        .await?;
        Ok(found.pop())
    }
}
