//! The ledger's reads: a popug's day, the whole ledger page by page, a
//! popug's statement, the company's books per day, the gauges and the
//! invariant checks.

use diesel::{
    OptionalExtension as _, QueryDsl as _, QueryableByName,
    sql_types::{BigInt, Date, Nullable, Text},
};
use diesel_async::RunQueryDsl as _;
use uuid::Uuid;

use super::Ledger;
use crate::{domain::Day, error::Error, schema::accounts};

/// Selects [`EntryLine`]s from `entries e` (the popug side of each
/// transaction); callers add the filter and order. A fee's description
/// ends with why it was charged (`FeeReason`), so two fees of one task (a
/// shuffle that kept it with its popug) read apart; a fee booked before
/// reasons were recorded has none.
const ENTRY_LINES: &str = "SELECT e.entry_id, e.account_id, e.source_event_id, e.kind, e.amount_cents, \
            e.task_id, e.occurred_at, e.day, e.balance_after_cents, \
            CASE WHEN e.kind = 'payout' THEN 'payout for ' || e.day \
                 ELSE (CASE e.kind WHEN 'assignment_fee' THEN 'fee for ' ELSE 'reward for ' END) \
                      || COALESCE(t.key || ' ' || t.title, t.title, 'task ' || e.task_id) \
                      || COALESCE(' (' || CASE e.reason \
                             WHEN 'created' THEN 'assigned at creation' \
                             WHEN 'shuffled' THEN 'reassigned by a shuffle' \
                             WHEN 'shuffled_to_same' THEN 'reassigned by a shuffle to the same popug' \
                         END || ')', '') END AS description \
     FROM entries e LEFT JOIN tasks t ON t.task_id = e.task_id";

/// One line of an audit log: a transaction as its popug sees it.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct EntryLine {
    /// The entry (the transaction's id).
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
    /// Signed cents, from the popug's side.
    #[diesel(sql_type = BigInt)]
    pub amount_cents: i64,
    /// The task, if any.
    #[diesel(sql_type = Nullable<diesel::sql_types::Uuid>)]
    pub task_id: Option<Uuid>,
    /// What it was for.
    #[diesel(sql_type = Text)]
    pub description: String,
    /// When it was booked.
    #[diesel(sql_type = diesel::sql_types::Timestamptz)]
    pub occurred_at: chrono::DateTime<chrono::Utc>,
    /// Its billing day.
    #[diesel(sql_type = Date)]
    pub day: Day,
    /// The popug's balance right after it was booked.
    #[diesel(sql_type = BigInt)]
    pub balance_after_cents: i64,
}

/// The company's books on one day, from its own accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, QueryableByName)]
pub struct DayTotals {
    /// The day.
    #[diesel(sql_type = Date)]
    pub day: Day,
    /// Fees charged, in cents: what the revenue account took in.
    #[diesel(sql_type = BigInt)]
    pub fees_cents: i64,
    /// Rewards paid, in cents: what the expense account gave.
    #[diesel(sql_type = BigInt)]
    pub rewards_cents: i64,
    /// Balances paid out at the day's close, in cents.
    #[diesel(sql_type = BigInt)]
    pub payouts_cents: i64,
}

impl DayTotals {
    /// Management's earnings: fees charged minus rewards paid.
    pub fn earnings_cents(&self) -> i64 {
        self.fees_cents - self.rewards_cents
    }
}

/// One popug's statement over days.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// The balance before the first day.
    pub opening_cents: i64,
    /// Every entry of the days, by day and then as booked, each with the
    /// balance after it counted from the opening balance in that order.
    pub lines: Vec<(EntryLine, i64)>,
    /// The balance after the last day.
    pub closing_cents: i64,
}

/// One popug's balance now, with what billing knows of it.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct BalanceLine {
    /// The popug.
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    pub account_id: Uuid,
    /// Its login, unknown until its account event arrived.
    #[diesel(sql_type = Nullable<Text>)]
    pub login: Option<String>,
    /// Its role as stored (`worker`, ...), unknown likewise.
    #[diesel(sql_type = Nullable<Text>)]
    pub role: Option<String>,
    /// False once deactivated.
    #[diesel(sql_type = diesel::sql_types::Bool)]
    pub active: bool,
    /// The balance now.
    #[diesel(sql_type = BigInt)]
    pub balance_cents: i64,
}

#[derive(QueryableByName)]
struct Sum {
    #[diesel(sql_type = BigInt)]
    cents: i64,
}

impl Ledger {
    /// An account's balance and its entries of `day`, as booked; `None` if
    /// billing has never heard of the account.
    pub async fn account(
        &self,
        account_id: Uuid,
        day: Day,
    ) -> Result<Option<(i64, Vec<EntryLine>)>, Error> {
        let mut conn = popug_runtime::database::conn(&self.pool).await?;
        let balance: Option<i64> = accounts::table
            .find(account_id)
            .select(accounts::balance_cents)
            .first(&mut conn)
            .await
            .optional()?;
        let Some(balance) = balance else {
            return Ok(None);
        };
        let lines = diesel::sql_query(format!(
            "{ENTRY_LINES} WHERE e.account_id = $1 AND e.day = $2 ORDER BY e.seq"
        ))
        .bind::<diesel::sql_types::Uuid, _>(account_id)
        .bind::<Date, _>(day)
        .load(&mut conn)
        .await?;
        Ok(Some((balance, lines)))
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

    /// Up to `limit` popugs' balances after the account `after`, in account
    /// id order.
    pub async fn balances(
        &self,
        after: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<BalanceLine>, Error> {
        let mut conn = popug_runtime::database::conn(&self.pool).await?;
        Ok(diesel::sql_query(
            "SELECT account_id, login, role, active, balance_cents FROM accounts \
             WHERE $1::uuid IS NULL OR account_id > $1 ORDER BY account_id LIMIT $2",
        )
        .bind::<Nullable<diesel::sql_types::Uuid>, _>(after)
        .bind::<BigInt, _>(limit)
        .load(&mut conn)
        .await?)
    }

    /// `account_id`'s statement from `from` to `to`; `None` if billing has
    /// never heard of the account.
    pub async fn statement(
        &self,
        account_id: Uuid,
        from: Day,
        to: Day,
    ) -> Result<Option<Statement>, Error> {
        let mut conn = popug_runtime::database::conn(&self.pool).await?;
        let known: Option<Uuid> = accounts::table
            .find(account_id)
            .select(accounts::account_id)
            .first(&mut conn)
            .await
            .optional()?;
        if known.is_none() {
            return Ok(None);
        }
        let opening: Sum = diesel::sql_query(
            "SELECT COALESCE(sum(amount_cents), 0)::bigint AS cents FROM entries WHERE account_id = $1 AND day < $2",
        )
        .bind::<diesel::sql_types::Uuid, _>(account_id)
        .bind::<Date, _>(from)
        .get_result(&mut conn)
        .await?;
        let entries: Vec<EntryLine> = diesel::sql_query(format!(
            "{ENTRY_LINES} WHERE e.account_id = $1 AND e.day BETWEEN $2 AND $3 ORDER BY e.day, e.seq"
        ))
        .bind::<diesel::sql_types::Uuid, _>(account_id)
        .bind::<Date, _>(from)
        .bind::<Date, _>(to)
        .load(&mut conn)
        .await?;
        let mut balance = opening.cents;
        let lines = entries
            .into_iter()
            .map(|line| {
                balance += line.amount_cents;
                (line, balance)
            })
            .collect();
        Ok(Some(Statement {
            opening_cents: opening.cents,
            lines,
            closing_cents: balance,
        }))
    }

    /// The company's books for every day from `from` to `to` (days without
    /// entries are zero), summed from its revenue, expense and payouts
    /// accounts.
    pub async fn earnings(&self, from: Day, to: Day) -> Result<Vec<DayTotals>, Error> {
        let mut conn = popug_runtime::database::conn(&self.pool).await?;
        Ok(diesel::sql_query(
            "SELECT d::date AS day, \
                    COALESCE(sum(p.amount_cents) FILTER (WHERE p.account = 'revenue'), 0)::bigint AS fees_cents, \
                    COALESCE(-sum(p.amount_cents) FILTER (WHERE p.account = 'expense'), 0)::bigint AS rewards_cents, \
                    COALESCE(sum(p.amount_cents) FILTER (WHERE p.account = 'payouts'), 0)::bigint AS payouts_cents \
             FROM generate_series($1::date, $2::date, interval '1 day') d \
             LEFT JOIN transactions t ON t.day = d::date \
             LEFT JOIN postings p ON p.tx_id = t.tx_id AND p.popug_id IS NULL \
             GROUP BY d ORDER BY d",
        )
        .bind::<Date, _>(from)
        .bind::<Date, _>(to)
        .load(&mut conn)
        .await?)
    }

    /// Every violation of the money invariants (none is good).
    pub async fn violations(&self) -> Result<Vec<String>, Error> {
        let mut conn = popug_runtime::database::conn(&self.pool).await?;
        Ok(crate::invariants::violations(&mut conn).await?)
    }

    /// Sets the gauges the money alerts watch, every `period` until `token`
    /// is cancelled:
    /// - `popug_ledger_invariant_violations`: how many lines
    ///   [`crate::invariants::violations`] (`AuditLedger`) reports; never
    ///   above zero in a healthy ledger;
    /// - `popug_billing_days_unclosed`: days that have ended in the
    ///   company's time zone after the last closed day (yesterday counts when
    ///   no day was ever closed); above zero for more than a few seconds
    ///   after midnight only when a close failed.
    ///
    /// A gauge keeps its last value while the database is away.
    pub async fn gauge_books(
        self,
        period: std::time::Duration,
        token: tokio_util::sync::CancellationToken,
    ) {
        loop {
            match self.violations().await {
                Ok(found) => {
                    metrics::gauge!("popug_ledger_invariant_violations").set(found.len() as f64);
                    if !found.is_empty() {
                        tracing::error!(violations = found.len(), first = %found[0], "ALERT: the ledger breaks its invariants; see `popug billing check`");
                    }
                }
                Err(error) => tracing::warn!(%error, "ledger invariants not checked"),
            }
            match self.last_closed().await {
                Ok(last) => {
                    metrics::gauge!("popug_billing_days_unclosed").set(days_unclosed(
                        self.today(),
                        last,
                    )
                        as f64);
                }
                Err(error) => tracing::warn!(%error, "last closed day not read"),
            }
            tokio::select! {
                () = tokio::time::sleep(period) => {},
                () = token.cancelled() => return,
            }
        }
    }

    /// Sets the ledger gauges every `period` until `token` is cancelled:
    /// `popug_ledger_entries` and `popug_ledger_amount_cents` by entry kind,
    /// `popug_ledger_balance_cents`, the sum of every popug's balance, and
    /// `popug_ledger_company_balance_cents` by company account.
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
        loop {
            let totals = async {
                let mut conn = popug_runtime::database::conn(&self.pool).await?;
                let kinds: Vec<Total> = diesel::sql_query(
                    "SELECT kind, count(*) AS entries, COALESCE(sum(amount_cents), 0)::bigint AS cents \
                     FROM entries GROUP BY kind",
                )
                .load(&mut conn)
                .await?;
                let company: Vec<Total> = diesel::sql_query(
                    "SELECT account AS kind, count(*) AS entries, COALESCE(sum(amount_cents), 0)::bigint AS cents \
                     FROM postings WHERE popug_id IS NULL GROUP BY account",
                )
                .load(&mut conn)
                .await?;
                let popugs: Sum = diesel::sql_query(
                    "SELECT COALESCE(sum(balance_cents), 0)::bigint AS cents FROM accounts",
                )
                .get_result(&mut conn)
                .await?;
                Ok::<_, Error>((kinds, company, popugs.cents))
            }
            .await;
            match totals {
                Ok((kinds, company, popugs)) => {
                    for total in kinds {
                        metrics::gauge!("popug_ledger_entries", "kind" => total.kind.clone())
                            .set(total.entries as f64);
                        metrics::gauge!("popug_ledger_amount_cents", "kind" => total.kind)
                            .set(total.cents as f64);
                    }
                    for total in company {
                        metrics::gauge!("popug_ledger_company_balance_cents", "account" => total.kind)
                            .set(total.cents as f64);
                    }
                    metrics::gauge!("popug_ledger_balance_cents").set(popugs as f64);
                }
                Err(error) => tracing::warn!(%error, "ledger totals not measured"),
            }
            tokio::select! {
                () = tokio::time::sleep(period) => {},
                () = token.cancelled() => return,
            }
        }
    }
}

/// Days that have ended by `today` (so up to yesterday) and come after
/// `last_closed`; yesterday alone when no day was ever closed.
pub(crate) fn days_unclosed(today: Day, last_closed: Option<Day>) -> i64 {
    let Some(yesterday) = today.pred_opt() else {
        return 0;
    };
    match last_closed {
        Some(last) => (yesterday - last).num_days().max(0),
        None => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> Day {
        text.parse().expect("a day")
    }

    #[test]
    fn days_unclosed_counts_the_ended_days_after_the_last_close() {
        let today = day("2026-12-02");
        assert_eq!(days_unclosed(today, Some(day("2026-12-01"))), 0);
        assert_eq!(days_unclosed(today, Some(day("2026-11-30"))), 1);
        assert_eq!(days_unclosed(today, Some(day("2026-11-28"))), 3);
        // Closed ahead (a test clock moved back): nothing is late.
        assert_eq!(days_unclosed(today, Some(day("2026-12-05"))), 0);
        assert_eq!(days_unclosed(today, None), 1);
    }
}
