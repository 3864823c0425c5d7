//! Closing a day: every popug whose balance at the end of that day is
//! positive is paid exactly that balance, whatever has been booked since;
//! negative balances carry over.

use diesel::{
    ExpressionMethods as _, OptionalExtension as _, QueryDsl as _, QueryableByName,
    sql_types::{Array, BigInt, Date},
};
use diesel_async::{AsyncConnection as _, RunQueryDsl as _};
use popug_runtime::advisory_locks::DAY_CLOSE;
use uuid::Uuid;

use super::{Ledger, post};
use crate::{
    domain::{ClosePlan, Day, EntryKind, Transfer, events, ledger},
    error::Error,
    schema::day_closes,
};

/// A namespace for payout keys: `uuid_v5(ns, "<day>/<account>")` is the
/// payout transaction's source, so a second payout for the same day cannot exist.
const PAYOUT_NAMESPACE: Uuid = Uuid::from_u128(0x5f1c_9a0e_4b7d_4c3a_9e21_6d8f_0a1b_2c3d);

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

#[derive(QueryableByName)]
struct DayEndBalance {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    account_id: Uuid,
    #[diesel(sql_type = BigInt)]
    balance_cents: i64,
}

impl Ledger {
    /// Closes `day`: each positive balance at the end of that day becomes a
    /// payout (a transaction dated that day, a payout row, an email to send
    /// and `PaymentSent`); negative balances carry over. Idempotent: a closed
    /// day answers its first close's summary and pays nobody again.
    pub async fn close_day(&self, day: Day) -> Result<CloseSummary, Error> {
        let today = self.today();
        ledger::may_close(day, today, None)?;
        let mut conn = popug_runtime::database::conn(&self.pool).await?;
        conn.transaction::<_, Error, _>(async |conn| {
            // One closer at a time, and no entry is booked meanwhile. The
            // close waits for the batches in flight (each bounded in time)
            // longer than a batch would wait for a lock.
            diesel::sql_query("SET LOCAL lock_timeout = '60s'")
                .execute(conn)
                .await?;
            diesel::sql_query(format!("SELECT pg_advisory_xact_lock({DAY_CLOSE})"))
                .execute(conn)
                .await?;
            let last_closed: Option<Day> = day_closes::table
                .select(diesel::dsl::max(day_closes::day))
                .first(conn)
                .await?;
            if !ledger::may_close(day, today, last_closed)? {
                let (accounts_paid, payouts_cents): (i32, i64) = day_closes::table
                    .find(day)
                    .select((day_closes::accounts_paid, day_closes::payouts_cents))
                    .first(conn)
                    .await?;
                return Ok(CloseSummary {
                    day,
                    accounts_paid: u32::try_from(accounts_paid).unwrap_or(0),
                    payouts_cents,
                    already_closed: true,
                });
            }
            // A balance at the end of the day: today's balance less what was
            // booked in later days (few rows: those since midnight).
            let balances: Vec<DayEndBalance> = diesel::sql_query(
                "SELECT a.account_id, (a.balance_cents - COALESCE(later.cents, 0))::bigint AS balance_cents \
                 FROM accounts a LEFT JOIN ( \
                     SELECT account_id, sum(amount_cents) AS cents FROM entries WHERE day > $1 GROUP BY account_id \
                 ) later USING (account_id) \
                 WHERE a.balance_cents - COALESCE(later.cents, 0) <> 0",
            )
            .bind::<Date, _>(day)
            .load(conn)
            .await?;
            let plan = ClosePlan::new(balances.iter().map(|b| (b.account_id, b.balance_cents)));
            plan.check()?;
            let transfers: Vec<Transfer> = plan
                .payouts
                .iter()
                .map(|&(popug, cents)| {
                    let source = Uuid::new_v5(&PAYOUT_NAMESPACE, format!("{day}/{popug}").as_bytes());
                    Transfer::new(EntryKind::Payout, popug, None, source, day, cents)
                })
                .collect();
            let payout_ids: Vec<Uuid> = transfers.iter().map(|_| Uuid::now_v7()).collect();
            if !transfers.is_empty() {
                let balances = post(conn, &transfers).await?;
                diesel::sql_query(
                    "WITH paid AS ( \
                         INSERT INTO payouts (payout_id, account_id, day, amount_cents, entry_id) \
                         SELECT payout_id, account_id, $1, amount_cents, entry_id \
                         FROM unnest($2::uuid[], $3::uuid[], $4::int8[], $5::uuid[]) \
                             AS p(payout_id, account_id, amount_cents, entry_id) \
                         RETURNING payout_id \
                     ) \
                     INSERT INTO emails (payout_id) SELECT payout_id FROM paid",
                )
                .bind::<Date, _>(day)
                .bind::<Array<diesel::sql_types::Uuid>, _>(&payout_ids)
                .bind::<Array<diesel::sql_types::Uuid>, _>(plan.payouts.iter().map(|p| p.0).collect::<Vec<_>>())
                .bind::<Array<BigInt>, _>(plan.payouts.iter().map(|p| p.1).collect::<Vec<_>>())
                .bind::<Array<diesel::sql_types::Uuid>, _>(transfers.iter().map(|t| t.tx_id).collect::<Vec<_>>())
                .execute(conn)
                .await?;
                self.announce(conn, &transfers, &balances).await?;
                let sent: Vec<_> = payout_ids
                    .iter()
                    .zip(&plan.payouts)
                    .map(|(payout_id, &(popug, cents))| events::payment_sent(*payout_id, popug, cents, day))
                    .collect();
                self.outbox.enqueue_all(conn, &sent).await?;
            }
            let accounts_paid = u32::try_from(plan.payouts.len()).unwrap_or(u32::MAX);
            let payouts_cents = plan.total_cents();
            diesel::insert_into(day_closes::table)
                .values((
                    day_closes::day.eq(day),
                    day_closes::accounts_paid.eq(i32::try_from(accounts_paid).unwrap_or(i32::MAX)),
                    day_closes::payouts_cents.eq(payouts_cents),
                ))
                .execute(conn)
                .await?;
            self.outbox
                .enqueue(conn, &events::cycle_closed(day, accounts_paid, payouts_cents))
                .await?;
            tracing::info!(%day, accounts_paid, payouts_cents, carried_over = plan.carried_over.len(), "billing day closed");
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
            .await
            .optional()?
            .flatten())
    }
}
