//! billing-svc's queries: the double-entry ledger (every money movement is a
//! balanced transaction whose balance update and `TransactionApplied` event
//! commit with it), the day close, the accounts replica and the reads behind
//! the API.
//!
//! Booking is set-based: a batch of events of one kind is priced, placed in
//! its days and booked with a fixed number of statements, whatever its size.
//! Balances move in one upsert per batch, in account id order; the workers
//! (partitions by account) and replicas take turns on the accounts they
//! share through the sorted advisory locks their batches take first (see
//! `handlers`).
//!
//! Booking takes the close lock shared and closing a day takes it
//! exclusively, so no entry lands in a day while it closes; an entry whose
//! event belongs to a closed day lands in the first open day after it.

mod close;
pub mod replica;
mod reports;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use diesel::{
    QueryableByName,
    sql_types::{Array, BigInt, Date, Nullable, Text},
};
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};
use popug_bus::{HandlerError, Outbox, OutboxError};
use popug_runtime::{Clock, advisory_locks::DAY_CLOSE, database::Pool};
use rand::rngs::StdRng;
use uuid::Uuid;

pub use close::CloseSummary;
pub use reports::{BalanceLine, DayTotals, EntryLine, Statement};

use crate::domain::{
    Day, EntryKind, FeeReason, Prices, Transfer, events,
    ledger::{POPUG_ACCOUNT, landing_day},
    money,
};

/// A fee or reward to book: what the tracker's event says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Booking {
    /// `AssignmentFee` or `CompletionReward`.
    pub kind: EntryKind,
    /// Why a fee is charged (the assignment's reason); `None` for a reward.
    /// The database refuses a fee without one.
    pub reason: Option<FeeReason>,
    /// The task whose price is charged or paid.
    pub task_id: Uuid,
    /// The assignee.
    pub popug: Uuid,
    /// The event that announced the assignment or completion.
    pub source_event_id: Uuid,
    /// When the tracker committed it.
    pub at: chrono::DateTime<chrono::Utc>,
}

/// A task's display fields, from `TaskCreated`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskDescription {
    /// The task.
    pub task_id: Uuid,
    /// `POPUG-<n>`, if known.
    pub key: String,
    /// Its title.
    pub title: String,
    /// Its jira id, if any.
    pub jira_id: String,
}

#[derive(QueryableByName)]
struct TaskPrices {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    task_id: Uuid,
    #[diesel(sql_type = BigInt)]
    fee_cents: i64,
    #[diesel(sql_type = BigInt)]
    reward_cents: i64,
}

#[derive(QueryableByName)]
struct LastClosed {
    #[diesel(sql_type = Nullable<Date>)]
    day: Option<Day>,
}

#[derive(QueryableByName)]
struct Booked {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    tx_id: Uuid,
    #[diesel(sql_type = Nullable<BigInt>)]
    balance_after_cents: Option<i64>,
}

/// billing-svc's ledger.
#[derive(Clone)]
pub struct Ledger {
    pool: Pool,
    outbox: Outbox,
    timezone: popug_runtime::Timezone,
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
        timezone: popug_runtime::Timezone,
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
    pub fn timezone(&self) -> popug_runtime::Timezone {
        self.timezone
    }

    /// Today in the company's time zone.
    pub fn today(&self) -> Day {
        money::day_of(self.clock.now(), self.timezone)
    }

    /// The pool, for the mailer and the invariant checks.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// The prices of `task_ids`, drawing and storing them (and enqueuing
    /// `TaskPriced`) for tasks billing hears of for the first time.
    ///
    /// New prices are stored and announced in a short transaction of their
    /// own, committed before the caller's batch goes on: a price is set once
    /// whether or not the batch that first met the task commits, and a batch
    /// never holds a new task's row while it waits for accounts, so two
    /// batches meeting the same tasks and accounts cannot wait for each
    /// other in a circle. The caller's connection then reads every price.
    pub async fn ensure_tasks(
        &self,
        conn: &mut AsyncPgConnection,
        task_ids: &[Uuid],
    ) -> Result<HashMap<Uuid, Prices>, HandlerError> {
        let mut ids = task_ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        let known: Vec<TaskPrices> = popug_runtime::sql::query(
            "SELECT task_id, fee_cents, reward_cents FROM tasks WHERE task_id = ANY($1)",
        )
        .bind::<Array<diesel::sql_types::Uuid>, _>(&ids)
        .load(conn)
        .await?;
        if known.len() == ids.len() {
            return Ok(prices_of(known));
        }
        let new: Vec<Uuid> = ids
            .iter()
            .filter(|id| !known.iter().any(|row| row.task_id == **id))
            .copied()
            .collect();
        self.price(&new).await?;
        let stored: Vec<TaskPrices> = popug_runtime::sql::query(
            "SELECT task_id, fee_cents, reward_cents FROM tasks WHERE task_id = ANY($1)",
        )
        .bind::<Array<diesel::sql_types::Uuid>, _>(&ids)
        .load(conn)
        .await?;
        Ok(prices_of(stored))
    }

    /// Draws, stores and announces prices of the tasks of `task_ids` that no
    /// one priced yet, in a transaction of its own (see [`Self::ensure_tasks`]).
    async fn price(&self, task_ids: &[Uuid]) -> Result<(), HandlerError> {
        let drawn: Vec<Prices> = {
            let mut rng = self
                .rng
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            task_ids.iter().map(|_| Prices::draw(&mut *rng)).collect()
        };
        // No connection in time is as transient as a lost one: the batch is
        // retried, never dead-lettered.
        let mut conn = self.pool.get().await.map_err(|error| {
            HandlerError::Database(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::ClosedConnection,
                Box::new(format!("no connection to price tasks: {error}")),
            ))
        })?;
        let outbox = &self.outbox;
        conn.transaction::<_, HandlerError, _>(async |conn| {
            // Sorted, so competing pricings insert the same tasks in one order.
            let new: Vec<TaskPrices> = popug_runtime::sql::query(
                "INSERT INTO tasks (task_id, fee_cents, reward_cents) \
                 SELECT * FROM unnest($1::uuid[], $2::int8[], $3::int8[]) \
                 ON CONFLICT (task_id) DO NOTHING RETURNING task_id, fee_cents, reward_cents",
            )
            .bind::<Array<diesel::sql_types::Uuid>, _>(task_ids)
            .bind::<Array<BigInt>, _>(drawn.iter().map(|p| p.fee_cents).collect::<Vec<_>>())
            .bind::<Array<BigInt>, _>(drawn.iter().map(|p| p.reward_cents).collect::<Vec<_>>())
            .load(conn)
            .await?;
            let priced: Vec<_> = prices_of(new)
                .into_iter()
                .map(|(task_id, prices)| events::priced(task_id, prices))
                .collect();
            if !priced.is_empty() {
                outbox.enqueue_all(conn, &priced).await?;
            }
            Ok(())
        })
        .await
    }

    /// Fills in tasks' display fields (from TaskCreated, v2 or upcast v1),
    /// pricing the tasks first if needed.
    pub async fn describe_tasks(
        &self,
        conn: &mut AsyncPgConnection,
        tasks: &[TaskDescription],
    ) -> Result<(), HandlerError> {
        let ids: Vec<Uuid> = tasks.iter().map(|task| task.task_id).collect();
        self.ensure_tasks(conn, &ids).await?;
        let optional = |value: &str| (!value.is_empty()).then(|| value.to_owned());
        popug_runtime::sql::query(
            "UPDATE tasks SET key = d.key, title = d.title, jira_id = d.jira_id \
             FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[]) AS d(task_id, key, title, jira_id) \
             WHERE tasks.task_id = d.task_id",
        )
        .bind::<Array<diesel::sql_types::Uuid>, _>(&ids)
        .bind::<Array<Nullable<Text>>, _>(tasks.iter().map(|t| optional(&t.key)).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(tasks.iter().map(|t| t.title.clone()).collect::<Vec<_>>())
        .bind::<Array<Nullable<Text>>, _>(tasks.iter().map(|t| optional(&t.jira_id)).collect::<Vec<_>>())
        .execute(conn)
        .await?;
        Ok(())
    }

    /// Books fees and rewards: prices the tasks, places each entry in its
    /// day and books every transaction, with its `TransactionApplied`.
    /// A second reward for a task is [`HandlerError::Rejected`].
    pub async fn book(
        &self,
        conn: &mut AsyncPgConnection,
        bookings: &[Booking],
    ) -> Result<(), HandlerError> {
        if bookings.is_empty() {
            return Ok(());
        }
        let task_ids: Vec<Uuid> = bookings.iter().map(|b| b.task_id).collect();
        let prices = self.ensure_tasks(conn, &task_ids).await?;
        let last_closed = last_closed_shared(conn).await?;
        let transfers = bookings
            .iter()
            .map(|booking| {
                let price = prices.get(&booking.task_id).ok_or_else(|| {
                    HandlerError::Failed(format!("task {} has no price", booking.task_id))
                })?;
                let magnitude = match booking.kind {
                    EntryKind::CompletionReward => price.reward_cents,
                    EntryKind::AssignmentFee | EntryKind::Payout => price.fee_cents,
                };
                let day = landing_day(money::day_of(booking.at, self.timezone), last_closed);
                Ok(Transfer {
                    reason: booking.reason,
                    ..Transfer::new(
                        booking.kind,
                        booking.popug,
                        Some(booking.task_id),
                        booking.source_event_id,
                        day,
                        magnitude,
                    )
                })
            })
            .collect::<Result<Vec<_>, HandlerError>>()?;
        let balances = post(conn, &transfers).await.map_err(|error| {
            if is_second_reward(&error) {
                HandlerError::Rejected(second_reward_message(bookings))
            } else {
                HandlerError::Database(error)
            }
        })?;
        self.announce(conn, &transfers, &balances).await?;
        Ok(())
    }

    /// Enqueues `TransactionApplied` for every transfer booked, each with
    /// the popug's balance right after it.
    async fn announce(
        &self,
        conn: &mut AsyncPgConnection,
        transfers: &[Transfer],
        balances_after: &[i64],
    ) -> Result<(), OutboxError> {
        let applied: Vec<_> = transfers
            .iter()
            .zip(balances_after)
            .map(|(transfer, balance_after)| events::applied(transfer, *balance_after))
            .collect();
        self.outbox.enqueue_all(conn, &applied).await?;
        Ok(())
    }
}

fn prices_of(rows: Vec<TaskPrices>) -> HashMap<Uuid, Prices> {
    rows.into_iter()
        .map(|row| {
            (
                row.task_id,
                Prices {
                    fee_cents: row.fee_cents,
                    reward_cents: row.reward_cents,
                },
            )
        })
        .collect()
}

/// Takes the close lock shared and reads the last closed day after it is
/// held (see the migration that defines the function).
async fn last_closed_shared(
    conn: &mut AsyncPgConnection,
) -> Result<Option<Day>, diesel::result::Error> {
    let last: LastClosed =
        popug_runtime::sql::query(format!("SELECT last_closed_day_locked({DAY_CLOSE}) AS day"))
            .get_result(conn)
            .await?;
    Ok(last.day)
}

/// Books `transfers` in one statement: the transactions (a fee with its
/// reason), both legs of each (checked to balance by the database), and
/// every popug's balance, moved once per account in id order (a popug
/// billing has not heard of yet starts as a placeholder). Returns the
/// popug's balance right after each transfer, in the order of `transfers`.
async fn post(
    conn: &mut AsyncPgConnection,
    transfers: &[Transfer],
) -> Result<Vec<i64>, diesel::result::Error> {
    let booked: Vec<Booked> = popug_runtime::sql::query(
        "WITH input AS ( \
             SELECT * FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::uuid[], $5::date[], \
                                  $6::uuid[], $7::int8[], $8::text[], $9::text[]) \
                 WITH ORDINALITY AS i(tx_id, kind, task_id, source_event_id, day, popug_id, amount_cents, company, reason, ord) \
         ), moved AS ( \
             INSERT INTO accounts AS a (account_id, balance_cents) \
             SELECT popug_id, sum(amount_cents) FROM input GROUP BY popug_id ORDER BY popug_id \
             ON CONFLICT (account_id) DO UPDATE SET balance_cents = a.balance_cents + EXCLUDED.balance_cents \
             RETURNING a.account_id, a.balance_cents AS closing \
         ), headers AS ( \
             INSERT INTO transactions (tx_id, kind, task_id, source_event_id, day, reason) \
             SELECT tx_id, kind, task_id, source_event_id, day, reason FROM input ORDER BY ord \
         ), legs AS ( \
             SELECT i.tx_id, $10::text AS account, i.popug_id, i.amount_cents, \
                    m.closing - sum(i.amount_cents) OVER (PARTITION BY i.popug_id) \
                      + sum(i.amount_cents) OVER (PARTITION BY i.popug_id ORDER BY i.ord) AS balance_after_cents, \
                    0 AS leg, i.ord \
             FROM input i JOIN moved m ON m.account_id = i.popug_id \
             UNION ALL \
             SELECT tx_id, company, NULL, -amount_cents, NULL, 1, ord FROM input \
         ) \
         INSERT INTO postings (tx_id, account, popug_id, amount_cents, balance_after_cents) \
         SELECT tx_id, account, popug_id, amount_cents, balance_after_cents FROM legs \
         ORDER BY leg, popug_id, ord \
         RETURNING tx_id, balance_after_cents",
    )
    .bind::<Array<diesel::sql_types::Uuid>, _>(transfers.iter().map(|t| t.tx_id).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(transfers.iter().map(|t| t.kind.as_str()).collect::<Vec<_>>())
    .bind::<Array<Nullable<diesel::sql_types::Uuid>>, _>(transfers.iter().map(|t| t.task_id).collect::<Vec<_>>())
    .bind::<Array<diesel::sql_types::Uuid>, _>(transfers.iter().map(|t| t.source_event_id).collect::<Vec<_>>())
    .bind::<Array<Date>, _>(transfers.iter().map(|t| t.day).collect::<Vec<_>>())
    .bind::<Array<diesel::sql_types::Uuid>, _>(transfers.iter().map(|t| t.popug).collect::<Vec<_>>())
    .bind::<Array<BigInt>, _>(transfers.iter().map(|t| t.popug_cents).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(transfers.iter().map(|t| t.kind.company_account().code()).collect::<Vec<_>>())
    .bind::<Array<Nullable<Text>>, _>(transfers.iter().map(|t| t.reason.map(FeeReason::as_str)).collect::<Vec<_>>())
    .bind::<Text, _>(POPUG_ACCOUNT)
    .load(conn)
    .await?;
    let balances: HashMap<Uuid, i64> = booked
        .into_iter()
        .filter_map(|row| Some((row.tx_id, row.balance_after_cents?)))
        .collect();
    transfers
        .iter()
        .map(|transfer| {
            balances.get(&transfer.tx_id).copied().ok_or_else(|| {
                diesel::result::Error::QueryBuilderError(
                    format!("transaction {} has no popug leg", transfer.tx_id).into(),
                )
            })
        })
        .collect()
}

/// The unique index that lets a task's reward be paid only once.
fn is_second_reward(error: &diesel::result::Error) -> bool {
    matches!(
        error,
        diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, info)
            if info.constraint_name() == Some("one_reward_per_task")
    )
}

fn second_reward_message(bookings: &[Booking]) -> String {
    let rewarded: Vec<String> = bookings
        .iter()
        .filter(|b| b.kind == EntryKind::CompletionReward)
        .map(|b| b.task_id.to_string())
        .collect();
    match rewarded.as_slice() {
        [task] => format!("task {task} was rewarded already: a second completion moves no money"),
        _ => format!(
            "one of tasks {} was rewarded already: a second completion moves no money",
            rewarded.join(", ")
        ),
    }
}
