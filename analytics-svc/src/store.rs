//! The read model's writes (one per event; each idempotent and
//! order-independent) and the queries behind the dashboards.
//!
//! The dashboards' sums cannot overflow or fail: Postgres sums `bigint` as
//! `numeric`, and each figure is clamped into `bigint` (`clamped`) before
//! it leaves. The event rules bound every amount a row can hold (a fee or
//! reward is at most 4,000 cents, a payout 100,000,000), so a real figure
//! is never near the clamp; it only keeps a forged or corrupt row from
//! turning every dashboard of its day into an error.

use diesel::{
    QueryableByName,
    sql_types::{BigInt, Date, Nullable, Text, Timestamptz},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use popug_runtime::database::Pool;
use uuid::Uuid;

use crate::error::Error;

type Day = chrono::NaiveDate;

/// TaskCreated (v2, or v1 upcast): the task's key and title.
pub async fn task_described(
    conn: &mut AsyncPgConnection,
    task_id: Uuid,
    key: &str,
    title: &str,
) -> Result<(), diesel::result::Error> {
    diesel::sql_query(
        "INSERT INTO tasks (task_id, key, title) VALUES ($1, NULLIF($2, ''), $3) \
         ON CONFLICT (task_id) DO UPDATE SET key = COALESCE(EXCLUDED.key, tasks.key), title = EXCLUDED.title",
    )
    .bind::<diesel::sql_types::Uuid, _>(task_id)
    .bind::<Text, _>(key)
    .bind::<Text, _>(title)
    .execute(conn)
    .await
    .map(drop)
}

/// TaskPriced: the task's fee and reward (set once by billing).
pub async fn task_priced(
    conn: &mut AsyncPgConnection,
    task_id: Uuid,
    fee_cents: i64,
    reward_cents: i64,
) -> Result<(), diesel::result::Error> {
    diesel::sql_query(
        "INSERT INTO tasks (task_id, fee_cents, reward_cents) VALUES ($1, $2, $3) \
         ON CONFLICT (task_id) DO UPDATE SET fee_cents = EXCLUDED.fee_cents, reward_cents = EXCLUDED.reward_cents",
    )
    .bind::<diesel::sql_types::Uuid, _>(task_id)
    .bind::<BigInt, _>(fee_cents)
    .bind::<BigInt, _>(reward_cents)
    .execute(conn)
    .await
    .map(drop)
}

/// TaskCompleted: when and by whom (a task completes once; the first wins).
pub async fn task_completed(
    conn: &mut AsyncPgConnection,
    task_id: Uuid,
    assignee_id: Uuid,
    at: chrono::DateTime<chrono::Utc>,
    day: Day,
) -> Result<(), diesel::result::Error> {
    diesel::sql_query(
        "INSERT INTO tasks (task_id, assignee_id, completed_at, completed_day) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (task_id) DO UPDATE SET assignee_id = COALESCE(tasks.assignee_id, EXCLUDED.assignee_id), \
             completed_at = COALESCE(tasks.completed_at, EXCLUDED.completed_at), \
             completed_day = COALESCE(tasks.completed_day, EXCLUDED.completed_day)",
    )
    .bind::<diesel::sql_types::Uuid, _>(task_id)
    .bind::<diesel::sql_types::Uuid, _>(assignee_id)
    .bind::<Timestamptz, _>(at)
    .bind::<Date, _>(day)
    .execute(conn)
    .await
    .map(drop)
}

/// TransactionApplied: one ledger entry, keyed by its own id.
pub async fn transaction(
    conn: &mut AsyncPgConnection,
    entry_id: Uuid,
    account_id: Uuid,
    kind: &str,
    amount_cents: i64,
    task_id: Option<Uuid>,
    day: Day,
) -> Result<(), diesel::result::Error> {
    diesel::sql_query(
        "INSERT INTO transactions (entry_id, account_id, kind, amount_cents, task_id, day) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (entry_id) DO NOTHING",
    )
    .bind::<diesel::sql_types::Uuid, _>(entry_id)
    .bind::<diesel::sql_types::Uuid, _>(account_id)
    .bind::<Text, _>(kind)
    .bind::<BigInt, _>(amount_cents)
    .bind::<Nullable<diesel::sql_types::Uuid>, _>(task_id)
    .bind::<Date, _>(day)
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
    diesel::sql_query("INSERT INTO day_closes (day, accounts_paid, payouts_cents) VALUES ($1, $2, $3) ON CONFLICT (day) DO NOTHING")
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
    diesel::sql_query("INSERT INTO payments (payout_id, account_id, amount_cents, day) VALUES ($1, $2, $3, $4) ON CONFLICT (payout_id) DO NOTHING")
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
        Ok(diesel::sql_query(format!(
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
        let mut found: Vec<ExpensiveTask> = diesel::sql_query(
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
