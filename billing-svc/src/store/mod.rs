//! billing-svc's queries: the ledger (every money movement is an entry whose
//! balance update and `TransactionApplied` event commit with it), the day
//! close, the accounts replica and the reads behind the API.
//!
//! Applying an entry takes a shared advisory lock and closing a day an
//! exclusive one, so no entry lands in a day while it closes; an entry whose
//! event belongs to a closed day lands in the first open day after it.

use std::sync::{Arc, Mutex};

use diesel::{
    ExpressionMethods as _, OptionalExtension as _, QueryDsl as _, QueryableByName,
    sql_types::{BigInt, Date, Nullable, Text},
};
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};
use popug_bus::{HandlerError, Outbox};
use popug_runtime::{Clock, database::Pool};
use rand::rngs::StdRng;
use uuid::Uuid;

use crate::{
    domain::{Day, EntryKind, Prices, events, money},
    error::Error,
    schema::{accounts, day_closes, entries, payouts, tasks},
};

/// The advisory lock between applying entries (shared) and closing a day
/// (exclusive): "close" in ASCII.
const CLOSE_LOCK: i64 = 0x00c1_05e0;

/// A namespace for payout keys: `uuid_v5(ns, "<day>/<account>")` is the
/// payout entry's source, so a second payout for the same day cannot exist.
const PAYOUT_NAMESPACE: Uuid = Uuid::from_u128(0x5f1c_9a0e_4b7d_4c3a_9e21_6d8f_0a1b_2c3d);

/// Selects [`EntryLine`]s from `entries e`; callers add the filter and order.
const ENTRY_LINES: &str = "SELECT e.entry_id, e.account_id, e.source_event_id, e.kind, e.amount_cents, \
            e.task_id, e.occurred_at, e.day, \
            CASE WHEN e.kind = 'payout' THEN 'payout for ' || e.day \
                 ELSE (CASE e.kind WHEN 'assignment_fee' THEN 'fee for ' ELSE 'reward for ' END) \
                      || COALESCE(t.key || ' ' || t.title, t.title, 'task ' || e.task_id) END AS description \
     FROM entries e LEFT JOIN tasks t ON t.task_id = e.task_id";

/// One line of an audit log.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct EntryLine {
    /// The entry.
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    pub entry_id: Uuid,
    /// Whose entry.
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    pub account_id: Uuid,
    /// The event it books (for a payout, the key of its day and account).
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    pub source_event_id: Uuid,
    /// Its kind, as stored.
    #[diesel(sql_type = Text)]
    pub kind: String,
    /// Signed cents.
    #[diesel(sql_type = BigInt)]
    pub amount_cents: i64,
    /// The task, if any.
    #[diesel(sql_type = Nullable<diesel::sql_types::Uuid>)]
    pub task_id: Option<Uuid>,
    /// What it was for.
    #[diesel(sql_type = Text)]
    pub description: String,
    /// When it was applied.
    #[diesel(sql_type = diesel::sql_types::Timestamptz)]
    pub occurred_at: chrono::DateTime<chrono::Utc>,
    /// Its billing day.
    #[diesel(sql_type = Date)]
    pub day: Day,
}

#[derive(QueryableByName)]
struct TaskPrices {
    #[diesel(sql_type = BigInt)]
    fee_cents: i64,
    #[diesel(sql_type = BigInt)]
    reward_cents: i64,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    new: bool,
}

#[derive(QueryableByName)]
struct Applied {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    #[allow(dead_code, reason = "the row's presence is the answer")]
    account_id: Uuid,
}

#[derive(QueryableByName)]
struct LastClosed {
    #[diesel(sql_type = Nullable<Date>)]
    day: Option<Day>,
}

/// What a day close did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloseSummary {
    /// The day.
    pub day: Day,
    /// Accounts paid out.
    pub accounts_paid: u32,
    /// Sum of the payouts in cents.
    pub payouts_cents: i64,
    /// The day had been closed before; nothing was paid now.
    pub already_closed: bool,
}

/// Management's earnings on one day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, QueryableByName)]
pub struct DayTotals {
    /// The day.
    #[diesel(sql_type = Date)]
    pub day: Day,
    /// Fees charged, in cents (positive).
    #[diesel(sql_type = BigInt)]
    pub fees_cents: i64,
    /// Rewards paid, in cents.
    #[diesel(sql_type = BigInt)]
    pub rewards_cents: i64,
}

/// billing-svc's ledger.
#[derive(Clone)]
pub struct Ledger {
    pool: Pool,
    outbox: Outbox,
    timezone: chrono_tz::Tz,
    /// Business time: which day is today.
    clock: Clock,
    rng: Arc<Mutex<StdRng>>,
}

impl Ledger {
    /// The ledger over `pool`, in the company's `timezone`, telling the
    /// time by `clock` and drawing prices from `rng`.
    pub fn new(
        pool: Pool,
        outbox: Outbox,
        timezone: chrono_tz::Tz,
        clock: Clock,
        rng: StdRng,
    ) -> Self {
        Self {
            pool,
            outbox,
            timezone,
            clock,
            rng: Arc::new(Mutex::new(rng)),
        }
    }

    /// The business time now.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }

    /// The company's time zone.
    pub fn timezone(&self) -> chrono_tz::Tz {
        self.timezone
    }

    /// Today in the company's time zone.
    pub fn today(&self) -> Day {
        money::day_of(self.clock.now(), self.timezone)
    }

    /// The task's prices, drawing and storing them (and enqueuing
    /// `TaskPriced`) if billing hears of the task for the first time.
    pub async fn ensure_task(
        &self,
        conn: &mut AsyncPgConnection,
        task_id: Uuid,
    ) -> Result<Prices, HandlerError> {
        let drawn = {
            let mut rng = self
                .rng
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            Prices::draw(&mut *rng)
        };
        // One round trip as a rule: insert the drawn prices, or read the
        // stored ones.
        let found: Option<TaskPrices> = diesel::sql_query(
            "WITH inserted AS ( \
                 INSERT INTO tasks (task_id, fee_cents, reward_cents) VALUES ($1, $2, $3) \
                 ON CONFLICT (task_id) DO NOTHING RETURNING fee_cents, reward_cents \
             ) \
             SELECT fee_cents, reward_cents, TRUE AS new FROM inserted \
             UNION ALL \
             SELECT fee_cents, reward_cents, FALSE FROM tasks \
             WHERE task_id = $1 AND NOT EXISTS (SELECT 1 FROM inserted)",
        )
        .bind::<diesel::sql_types::Uuid, _>(task_id)
        .bind::<BigInt, _>(drawn.fee_cents)
        .bind::<BigInt, _>(drawn.reward_cents)
        .get_result(conn)
        .await
        .optional()?;
        // Nothing comes back when a concurrent transaction (another worker or
        // replica) inserted the task and committed while the insert waited on
        // it: the statement's snapshot predates that commit. A new statement
        // sees it.
        let stored =
            match found {
                Some(stored) => stored,
                None => diesel::sql_query(
                    "SELECT fee_cents, reward_cents, FALSE AS new FROM tasks WHERE task_id = $1",
                )
                .bind::<diesel::sql_types::Uuid, _>(task_id)
                .get_result(conn)
                .await?,
            };
        let prices = Prices {
            fee_cents: stored.fee_cents,
            reward_cents: stored.reward_cents,
        };
        if stored.new {
            self.outbox
                .enqueue(conn, &events::priced(task_id, prices))
                .await?;
        }
        Ok(prices)
    }

    /// Fills in a task's display fields (from TaskCreated, v2 or upcast v1).
    pub async fn describe_task(
        &self,
        conn: &mut AsyncPgConnection,
        task_id: Uuid,
        key: &str,
        title: &str,
        jira_id: &str,
    ) -> Result<(), HandlerError> {
        self.ensure_task(conn, task_id).await?;
        let optional = |value: &str| (!value.is_empty()).then(|| value.to_owned());
        diesel::update(tasks::table.find(task_id))
            .set((
                tasks::key.eq(optional(key)),
                tasks::title.eq(title),
                tasks::jira_id.eq(optional(jira_id)),
            ))
            .execute(conn)
            .await?;
        Ok(())
    }

    /// Applies one entry caused by `source_event_id` (once: a second try is a
    /// no-op), moving the balance and enqueuing `TransactionApplied`.
    #[allow(clippy::too_many_arguments, reason = "an entry has this many facts")]
    async fn apply(
        &self,
        conn: &mut AsyncPgConnection,
        account_id: Uuid,
        kind: EntryKind,
        amount_cents: i64,
        task_id: Option<Uuid>,
        source_event_id: Uuid,
        event_day: Day,
    ) -> Result<Option<Uuid>, HandlerError> {
        // Reads the closed days only once the lock is held (see the
        // migration that defines the function).
        let last_closed: LastClosed = diesel::sql_query(format!(
            "SELECT last_closed_day_locked({CLOSE_LOCK}) AS day"
        ))
        .get_result(conn)
        .await?;
        // A closed day takes no more entries: late ones land in the next open day.
        let day = match last_closed.day {
            Some(closed) if event_day <= closed => closed.succ_opt().unwrap_or(closed),
            _ => event_day,
        };
        // One statement: the entry (at most once per source event and kind)
        // and, only if it was new, the balance it moves; an unknown account
        // starts as a placeholder. It returns a row exactly when applied.
        let entry_id = Uuid::now_v7();
        let applied: Vec<Applied> = diesel::sql_query(
            "WITH entry AS ( \
                 INSERT INTO entries (entry_id, account_id, kind, amount_cents, task_id, source_event_id, day) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (source_event_id, kind) DO NOTHING \
                 RETURNING account_id, amount_cents \
             ) \
             INSERT INTO accounts (account_id, balance_cents) SELECT account_id, amount_cents FROM entry \
             ON CONFLICT (account_id) DO UPDATE SET balance_cents = accounts.balance_cents + EXCLUDED.balance_cents \
             RETURNING account_id",
        )
        .bind::<diesel::sql_types::Uuid, _>(entry_id)
        .bind::<diesel::sql_types::Uuid, _>(account_id)
        .bind::<Text, _>(kind.as_str())
        .bind::<BigInt, _>(amount_cents)
        .bind::<Nullable<diesel::sql_types::Uuid>, _>(task_id)
        .bind::<diesel::sql_types::Uuid, _>(source_event_id)
        .bind::<Date, _>(day)
        .load(conn)
        .await?;
        if applied.is_empty() {
            return Ok(None);
        }
        self.outbox
            .enqueue(
                conn,
                &events::applied(entry_id, account_id, kind, amount_cents, task_id, day),
            )
            .await?;
        Ok(Some(entry_id))
    }

    /// Charges the assignee the task's fee for the assignment `source_event_id`.
    pub async fn charge_fee(
        &self,
        conn: &mut AsyncPgConnection,
        task_id: Uuid,
        assignee: Uuid,
        source_event_id: Uuid,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), HandlerError> {
        let prices = self.ensure_task(conn, task_id).await?;
        let day = money::day_of(at, self.timezone);
        self.apply(
            conn,
            assignee,
            EntryKind::AssignmentFee,
            -prices.fee_cents,
            Some(task_id),
            source_event_id,
            day,
        )
        .await?;
        Ok(())
    }

    /// Pays the assignee the task's reward for the completion `source_event_id`.
    pub async fn pay_reward(
        &self,
        conn: &mut AsyncPgConnection,
        task_id: Uuid,
        assignee: Uuid,
        source_event_id: Uuid,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), HandlerError> {
        let prices = self.ensure_task(conn, task_id).await?;
        let day = money::day_of(at, self.timezone);
        self.apply(
            conn,
            assignee,
            EntryKind::CompletionReward,
            prices.reward_cents,
            Some(task_id),
            source_event_id,
            day,
        )
        .await?;
        Ok(())
    }

    /// Closes `day`: every positive balance becomes a payout entry (the
    /// balance returns to zero) with a payout row, an email to send and
    /// `PaymentSent`; negative balances carry over. Idempotent: a closed day
    /// answers its first close's summary and pays nobody again.
    pub async fn close_day(&self, day: Day) -> Result<CloseSummary, Error> {
        if day >= self.today() {
            return Err(Error::FailedPrecondition(format!(
                "{day} has not ended yet in the company's time zone"
            )));
        }
        let mut conn = popug_runtime::database::conn(&self.pool).await?;
        let outbox = &self.outbox;
        conn.transaction::<_, Error, _>(async |conn| {
            // One closer at a time, and no entry is applied meanwhile.
            diesel::sql_query(format!("SELECT pg_advisory_xact_lock({CLOSE_LOCK})"))
                .execute(conn)
                .await?;
            let closed: Option<(i32, i64)> = day_closes::table
                .find(day)
                .select((day_closes::accounts_paid, day_closes::payouts_cents))
                .first(conn)
                .await
                .optional()?;
            if let Some((accounts_paid, payouts_cents)) = closed {
                return Ok(CloseSummary {
                    day,
                    accounts_paid: u32::try_from(accounts_paid).unwrap_or(0),
                    payouts_cents,
                    already_closed: true,
                });
            }
            let last_closed: Option<Day> = day_closes::table
                .select(diesel::dsl::max(day_closes::day))
                .first(conn)
                .await?;
            if let Some(last) = last_closed
                && last > day
            {
                return Err(Error::FailedPrecondition(format!(
                    "days close in order, and {last} is closed already"
                )));
            }
            let positive: Vec<(Uuid, i64)> = accounts::table
                .filter(accounts::balance_cents.gt(0))
                .order(accounts::account_id)
                .select((accounts::account_id, accounts::balance_cents))
                .for_update()
                .load(conn)
                .await?;
            let mut payouts_cents = 0;
            for (account_id, balance) in &positive {
                let entry_id = Uuid::now_v7();
                let payout_id = Uuid::now_v7();
                let source =
                    Uuid::new_v5(&PAYOUT_NAMESPACE, format!("{day}/{account_id}").as_bytes());
                diesel::insert_into(entries::table)
                    .values((
                        entries::entry_id.eq(entry_id),
                        entries::account_id.eq(account_id),
                        entries::kind.eq(EntryKind::Payout.as_str()),
                        entries::amount_cents.eq(-balance),
                        entries::source_event_id.eq(source),
                        entries::day.eq(day),
                    ))
                    .execute(conn)
                    .await?;
                diesel::insert_into(payouts::table)
                    .values((
                        payouts::payout_id.eq(payout_id),
                        payouts::account_id.eq(account_id),
                        payouts::day.eq(day),
                        payouts::amount_cents.eq(balance),
                        payouts::entry_id.eq(entry_id),
                    ))
                    .execute(conn)
                    .await?;
                diesel::update(accounts::table.find(account_id))
                    .set(accounts::balance_cents.eq(accounts::balance_cents - balance))
                    .execute(conn)
                    .await?;
                diesel::insert_into(crate::schema::emails::table)
                    .values(crate::schema::emails::payout_id.eq(payout_id))
                    .execute(conn)
                    .await?;
                outbox
                    .enqueue(
                        conn,
                        &events::applied(
                            entry_id,
                            *account_id,
                            EntryKind::Payout,
                            -balance,
                            None,
                            day,
                        ),
                    )
                    .await?;
                outbox
                    .enqueue(
                        conn,
                        &events::payment_sent(payout_id, *account_id, *balance, day),
                    )
                    .await?;
                payouts_cents += balance;
            }
            let accounts_paid = u32::try_from(positive.len()).unwrap_or(u32::MAX);
            diesel::insert_into(day_closes::table)
                .values((
                    day_closes::day.eq(day),
                    day_closes::accounts_paid.eq(i32::try_from(accounts_paid).unwrap_or(i32::MAX)),
                    day_closes::payouts_cents.eq(payouts_cents),
                ))
                .execute(conn)
                .await?;
            outbox
                .enqueue(
                    conn,
                    &events::cycle_closed(day, accounts_paid, payouts_cents),
                )
                .await?;
            tracing::info!(%day, accounts_paid, payouts_cents, "billing day closed");
            Ok(CloseSummary {
                day,
                accounts_paid,
                payouts_cents,
                already_closed: false,
            })
        })
        .await
    }

    /// The last closed day, if any.
    pub async fn last_closed(&self) -> Result<Option<Day>, Error> {
        let mut conn = popug_runtime::database::conn(&self.pool).await?;
        Ok(day_closes::table
            .select(diesel::dsl::max(day_closes::day))
            .first(&mut conn)
            .await?)
    }

    /// An account's balance (zero if billing never heard of it) and its
    /// entries of `day`, oldest first.
    pub async fn account(
        &self,
        account_id: Uuid,
        day: Day,
    ) -> Result<(i64, Vec<EntryLine>), Error> {
        let mut conn = popug_runtime::database::conn(&self.pool).await?;
        let balance: Option<i64> = accounts::table
            .find(account_id)
            .select(accounts::balance_cents)
            .first(&mut conn)
            .await
            .optional()?;
        let lines = diesel::sql_query(
            format!("{ENTRY_LINES} WHERE e.account_id = $1 AND e.day = $2 ORDER BY e.occurred_at, e.entry_id"),
        )
        .bind::<diesel::sql_types::Uuid, _>(account_id)
        .bind::<Date, _>(day)
        .load(&mut conn)
        .await?;
        Ok((balance.unwrap_or(0), lines))
    }

    /// Up to `limit` entries of every account after the entry `after`, in
    /// entry id order (ids grow with time, so pages are stable).
    pub async fn entries(&self, after: Option<Uuid>, limit: i64) -> Result<Vec<EntryLine>, Error> {
        let mut conn = popug_runtime::database::conn(&self.pool).await?;
        Ok(diesel::sql_query(format!(
            "{ENTRY_LINES} WHERE $1::uuid IS NULL OR e.entry_id > $1 ORDER BY e.entry_id LIMIT $2"
        ))
        .bind::<Nullable<diesel::sql_types::Uuid>, _>(after)
        .bind::<BigInt, _>(limit)
        .load(&mut conn)
        .await?)
    }

    /// Sets the ledger gauges every `period` until `token` is cancelled:
    /// `popug_ledger_entries` and `popug_ledger_amount_cents` by entry kind,
    /// and `popug_ledger_balance_cents`, the sum of every balance.
    pub async fn gauge_totals(
        self,
        period: std::time::Duration,
        token: tokio_util::sync::CancellationToken,
    ) {
        #[derive(QueryableByName)]
        struct Total {
            #[diesel(sql_type = Text)]
            kind: String,
            #[diesel(sql_type = BigInt)]
            entries: i64,
            #[diesel(sql_type = BigInt)]
            cents: i64,
        }
        #[derive(QueryableByName)]
        struct Balance {
            #[diesel(sql_type = BigInt)]
            cents: i64,
        }
        loop {
            let totals = async {
                let mut conn = popug_runtime::database::conn(&self.pool).await?;
                let totals: Vec<Total> = diesel::sql_query(
                    "SELECT kind, count(*) AS entries, COALESCE(sum(amount_cents), 0)::bigint AS cents \
                     FROM entries GROUP BY kind",
                )
                .load(&mut conn)
                .await?;
                let balance: Balance = diesel::sql_query(
                    "SELECT COALESCE(sum(balance_cents), 0)::bigint AS cents FROM accounts",
                )
                .get_result(&mut conn)
                .await?;
                Ok::<_, Error>((totals, balance.cents))
            }
            .await;
            match totals {
                Ok((totals, balance)) => {
                    for total in totals {
                        metrics::gauge!("popug_ledger_entries", "kind" => total.kind.clone())
                            .set(total.entries as f64);
                        metrics::gauge!("popug_ledger_amount_cents", "kind" => total.kind)
                            .set(total.cents as f64);
                    }
                    metrics::gauge!("popug_ledger_balance_cents").set(balance as f64);
                }
                Err(error) => tracing::warn!(%error, "ledger totals not measured"),
            }
            tokio::select! {
                () = tokio::time::sleep(period) => {},
                () = token.cancelled() => return,
            }
        }
    }

    /// Every violation of the money invariants (none is good).
    pub async fn violations(&self) -> Result<Vec<String>, Error> {
        let mut conn = popug_runtime::database::conn(&self.pool).await?;
        Ok(crate::invariants::violations(&mut conn).await?)
    }

    /// Fees charged and rewards paid per day, for every day from `from` to
    /// `to` (days without entries are zero).
    pub async fn earnings(&self, from: Day, to: Day) -> Result<Vec<DayTotals>, Error> {
        let mut conn = popug_runtime::database::conn(&self.pool).await?;
        Ok(diesel::sql_query(
            "SELECT d::date AS day, \
                    COALESCE(-sum(e.amount_cents) FILTER (WHERE e.kind = 'assignment_fee'), 0)::bigint AS fees_cents, \
                    COALESCE(sum(e.amount_cents) FILTER (WHERE e.kind = 'completion_reward'), 0)::bigint AS rewards_cents \
             FROM generate_series($1::date, $2::date, interval '1 day') d \
             LEFT JOIN entries e ON e.day = d::date \
             GROUP BY d ORDER BY d",
        )
        .bind::<Date, _>(from)
        .bind::<Date, _>(to)
        .load(&mut conn)
        .await?)
    }

    /// The pool, for the mailer and the invariant checks.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }
}

/// The accounts replica's writes; each is idempotent and commutes with the
/// others (versions order the changes), so order and duplicates do not matter.
pub mod replica {
    use super::*;

    /// Account rows are what a day close locks to pay them. Like an entry, a
    /// replica write first takes the close lock shared: a batch holding an
    /// account row must never wait for a close that waits for that row.
    async fn share_close_lock(conn: &mut AsyncPgConnection) -> Result<(), diesel::result::Error> {
        diesel::sql_query(format!("SELECT pg_advisory_xact_lock_shared({CLOSE_LOCK})"))
            .execute(conn)
            .await
            .map(drop)
    }

    /// `AccountCreated`.
    pub async fn created(
        conn: &mut AsyncPgConnection,
        account_id: Uuid,
        login: &str,
        email: &str,
        role: &str,
        active: bool,
        version: i64,
    ) -> Result<(), diesel::result::Error> {
        share_close_lock(conn).await?;
        diesel::sql_query(
            "INSERT INTO accounts (account_id, login, email, role, role_version, profile_version, active) \
             VALUES ($1, $2, $3, $4, $5, $5, $6) \
             ON CONFLICT (account_id) DO UPDATE SET login = EXCLUDED.login, \
                 email = CASE WHEN accounts.profile_version IS NULL OR accounts.profile_version <= EXCLUDED.profile_version \
                              THEN EXCLUDED.email ELSE accounts.email END, \
                 profile_version = GREATEST(accounts.profile_version, EXCLUDED.profile_version), \
                 role = CASE WHEN accounts.role_version IS NULL OR accounts.role_version <= EXCLUDED.role_version \
                             THEN EXCLUDED.role ELSE accounts.role END, \
                 role_version = GREATEST(accounts.role_version, EXCLUDED.role_version), \
                 active = accounts.active AND EXCLUDED.active",
        )
        .bind::<diesel::sql_types::Uuid, _>(account_id)
        .bind::<Text, _>(login)
        .bind::<Text, _>(email)
        .bind::<Text, _>(role)
        .bind::<BigInt, _>(version)
        .bind::<diesel::sql_types::Bool, _>(active)
        .execute(conn)
        .await
        .map(drop)
    }

    /// `AccountUpdated`: the email, unless a newer one is known.
    pub async fn updated(
        conn: &mut AsyncPgConnection,
        account_id: Uuid,
        email: &str,
        version: i64,
    ) -> Result<(), diesel::result::Error> {
        share_close_lock(conn).await?;
        diesel::sql_query(
            "INSERT INTO accounts (account_id, email, profile_version) VALUES ($1, $2, $3) \
             ON CONFLICT (account_id) DO UPDATE SET \
                 email = CASE WHEN accounts.profile_version IS NULL OR accounts.profile_version <= EXCLUDED.profile_version \
                              THEN EXCLUDED.email ELSE accounts.email END, \
                 profile_version = GREATEST(accounts.profile_version, EXCLUDED.profile_version)",
        )
        .bind::<diesel::sql_types::Uuid, _>(account_id)
        .bind::<Text, _>(email)
        .bind::<BigInt, _>(version)
        .execute(conn)
        .await
        .map(drop)
    }

    /// `AccountRoleChanged`: the role, unless a newer one is known.
    pub async fn role_changed(
        conn: &mut AsyncPgConnection,
        account_id: Uuid,
        role: &str,
        version: i64,
    ) -> Result<(), diesel::result::Error> {
        share_close_lock(conn).await?;
        diesel::sql_query(
            "INSERT INTO accounts (account_id, role, role_version) VALUES ($1, $2, $3) \
             ON CONFLICT (account_id) DO UPDATE SET \
                 role = CASE WHEN accounts.role_version IS NULL OR accounts.role_version <= EXCLUDED.role_version \
                             THEN EXCLUDED.role ELSE accounts.role END, \
                 role_version = GREATEST(accounts.role_version, EXCLUDED.role_version)",
        )
        .bind::<diesel::sql_types::Uuid, _>(account_id)
        .bind::<Text, _>(role)
        .bind::<BigInt, _>(version)
        .execute(conn)
        .await
        .map(drop)
    }

    /// `AccountDeactivated`: for good. The balance stays and closes as usual.
    pub async fn deactivated(
        conn: &mut AsyncPgConnection,
        account_id: Uuid,
    ) -> Result<(), diesel::result::Error> {
        share_close_lock(conn).await?;
        diesel::sql_query(
            "INSERT INTO accounts (account_id, active) VALUES ($1, FALSE) \
             ON CONFLICT (account_id) DO UPDATE SET active = FALSE",
        )
        .bind::<diesel::sql_types::Uuid, _>(account_id)
        .execute(conn)
        .await
        .map(drop)
    }
}
