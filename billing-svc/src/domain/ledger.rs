//! The double-entry rules, free of SQL: which company account each kind of
//! movement posts against and with which signs, the day an entry lands in,
//! and the plan of a day close. The store carries these decisions out.

use popug_proto::events::rules::PAYOUT_CENTS;
use uuid::Uuid;

use super::{Day, EntryKind, FeeReason};

/// The company's side of the books. Each money movement posts one leg on a
/// popug's account and the opposite leg on one of these, so every
/// transaction sums to zero and so does the whole ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CompanyAccount {
    /// Income from assignment fees.
    Revenue,
    /// Cost of completion rewards.
    Expense,
    /// Cash paid out to popugs at day close.
    Payouts,
}

impl CompanyAccount {
    /// The ledger account's code, as stored in `postings.account`.
    pub fn code(self) -> &'static str {
        match self {
            CompanyAccount::Revenue => "revenue",
            CompanyAccount::Expense => "expense",
            CompanyAccount::Payouts => "payouts",
        }
    }
}

/// The code of every popug leg in `postings.account`.
pub const POPUG_ACCOUNT: &str = "popug";

impl EntryKind {
    /// The company account that takes the other leg of this kind.
    pub fn company_account(self) -> CompanyAccount {
        match self {
            EntryKind::AssignmentFee => CompanyAccount::Revenue,
            EntryKind::CompletionReward => CompanyAccount::Expense,
            EntryKind::Payout => CompanyAccount::Payouts,
        }
    }

    /// The popug's side of a movement of `magnitude` cents: fees and
    /// payouts take money away, rewards bring it.
    pub fn popug_amount(self, magnitude: i64) -> i64 {
        match self {
            EntryKind::CompletionReward => magnitude,
            EntryKind::AssignmentFee | EntryKind::Payout => -magnitude,
        }
    }
}

/// One balanced money movement: the popug leg and the company leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transfer {
    /// The transaction, also the entry id the API shows.
    pub tx_id: Uuid,
    /// Fee, reward or payout.
    pub kind: EntryKind,
    /// Whose balance moves.
    pub popug: Uuid,
    /// The task, for fees and rewards.
    pub task_id: Option<Uuid>,
    /// The event (or, for a payout, the day-and-account key) it books.
    pub source_event_id: Uuid,
    /// The billing day it lands in.
    pub day: Day,
    /// The popug leg in cents; the company leg is its negation.
    pub popug_cents: i64,
    /// Why a fee was charged; `None` for rewards and payouts.
    pub reason: Option<FeeReason>,
}

impl Transfer {
    /// A movement of `magnitude` cents (positive) of `kind`, with no
    /// reason recorded (a fee's is set by its booking).
    pub fn new(
        kind: EntryKind,
        popug: Uuid,
        task_id: Option<Uuid>,
        source_event_id: Uuid,
        day: Day,
        magnitude: i64,
    ) -> Self {
        Self {
            tx_id: Uuid::now_v7(),
            kind,
            popug,
            task_id,
            source_event_id,
            day,
            popug_cents: kind.popug_amount(magnitude),
            reason: None,
        }
    }

    /// Both legs, `(account code, cents)`; they sum to zero.
    pub fn legs(&self) -> [(&'static str, i64); 2] {
        [
            (POPUG_ACCOUNT, self.popug_cents),
            (self.kind.company_account().code(), -self.popug_cents),
        ]
    }
}

/// The day an event's entry lands in: its own day, unless that day is
/// closed already; then the first open day after the last closed one.
pub fn landing_day(event_day: Day, last_closed: Option<Day>) -> Day {
    match last_closed {
        Some(closed) if event_day <= closed => closed.succ_opt().unwrap_or(closed),
        _ => event_day,
    }
}

/// Why a day cannot be closed now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CloseRefusal {
    /// The day is today or later in the company's time zone.
    #[error("{day} has not ended yet in the company's time zone")]
    NotEnded {
        /// The day asked for.
        day: Day,
    },
    /// A later day is closed already; days close in order.
    #[error("days close in order, and {last_closed} is closed already")]
    OutOfOrder {
        /// The latest closed day.
        last_closed: Day,
    },
    /// A popug's balance is more than one payout may be (the event rules'
    /// `PAYOUT_CENTS`): a bug or a fraud to look into, never paid blindly.
    #[error(
        "popug {popug} would be paid {cents} cents, more than a payout may be ({max} cents); \
         nothing is paid until the account is looked into"
    )]
    PayoutTooLarge {
        /// The popug.
        popug: Uuid,
        /// Its balance at the end of the day.
        cents: i64,
        /// The largest payout.
        max: i64,
    },
}

/// Whether `day` may be closed, given `today` and the last closed day.
/// `Ok(false)` means it is closed already (a close is idempotent).
pub fn may_close(day: Day, today: Day, last_closed: Option<Day>) -> Result<bool, CloseRefusal> {
    if day >= today {
        return Err(CloseRefusal::NotEnded { day });
    }
    match last_closed {
        Some(last) if last == day => Ok(false),
        Some(last) if last > day => Err(CloseRefusal::OutOfOrder { last_closed: last }),
        _ => Ok(true),
    }
}

/// What closing a day does: each popug whose balance at the end of that day
/// is positive is paid exactly that balance; a negative one carries over.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClosePlan {
    /// `(popug, cents)` to pay, by popug id.
    pub payouts: Vec<(Uuid, i64)>,
    /// Popugs whose negative balance carries into the next day.
    pub carried_over: Vec<Uuid>,
}

impl ClosePlan {
    /// The plan from every popug's balance at the end of the day (the sum of
    /// its entries dated on or before it), whatever was booked since.
    pub fn new(day_end_balances: impl IntoIterator<Item = (Uuid, i64)>) -> Self {
        let mut plan = Self::default();
        for (popug, balance) in day_end_balances {
            if balance > 0 {
                plan.payouts.push((popug, balance));
            } else if balance < 0 {
                plan.carried_over.push(popug);
            }
        }
        plan.payouts.sort_unstable();
        plan.carried_over.sort_unstable();
        plan
    }

    /// The sum of the payouts.
    pub fn total_cents(&self) -> i64 {
        self.payouts.iter().map(|(_, cents)| cents).sum()
    }

    /// Refuses a plan with a payout above the rules' bound, which no
    /// `TransactionApplied` or `PaymentSent` may carry.
    pub fn check(&self) -> Result<(), CloseRefusal> {
        let max = *PAYOUT_CENTS.end();
        match self.payouts.iter().find(|(_, cents)| *cents > max) {
            Some(&(popug, cents)) => Err(CloseRefusal::PayoutTooLarge { popug, cents, max }),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> Day {
        text.parse().expect("a date")
    }

    #[test]
    fn every_kind_balances_against_its_company_account() {
        for (kind, company, popug_sign) in [
            (EntryKind::AssignmentFee, CompanyAccount::Revenue, -1),
            (EntryKind::CompletionReward, CompanyAccount::Expense, 1),
            (EntryKind::Payout, CompanyAccount::Payouts, -1),
        ] {
            let transfer = Transfer::new(
                kind,
                Uuid::nil(),
                None,
                Uuid::nil(),
                day("2026-12-01"),
                1_234,
            );
            let [(popug, popug_cents), (other, company_cents)] = transfer.legs();
            assert_eq!(popug, POPUG_ACCOUNT);
            assert_eq!(other, company.code());
            assert_eq!(popug_cents, popug_sign * 1_234, "{kind:?}");
            assert_eq!(popug_cents + company_cents, 0, "{kind:?}");
        }
    }

    #[test]
    fn earnings_are_what_revenue_and_expense_hold() {
        // A fee of 15 $ and a reward of 30 $: management lost 15 $.
        let fee = Transfer::new(
            EntryKind::AssignmentFee,
            Uuid::nil(),
            None,
            Uuid::nil(),
            day("2026-12-01"),
            1_500,
        );
        let reward = Transfer::new(
            EntryKind::CompletionReward,
            Uuid::nil(),
            None,
            Uuid::nil(),
            day("2026-12-01"),
            3_000,
        );
        let company: i64 = [fee, reward].iter().map(|t| t.legs()[1].1).sum();
        assert_eq!(company, 1_500 - 3_000);
    }

    #[test]
    fn late_entries_land_in_the_first_open_day() {
        assert_eq!(landing_day(day("2026-12-01"), None), day("2026-12-01"));
        assert_eq!(
            landing_day(day("2026-12-01"), Some(day("2026-11-30"))),
            day("2026-12-01")
        );
        assert_eq!(
            landing_day(day("2026-12-01"), Some(day("2026-12-01"))),
            day("2026-12-02")
        );
        assert_eq!(
            landing_day(day("2026-11-20"), Some(day("2026-12-01"))),
            day("2026-12-02")
        );
    }

    #[test]
    fn days_close_once_in_order_and_only_when_over() {
        let today = day("2026-12-02");
        assert_eq!(may_close(day("2026-12-01"), today, None), Ok(true));
        assert_eq!(
            may_close(day("2026-12-01"), today, Some(day("2026-11-30"))),
            Ok(true)
        );
        assert_eq!(
            may_close(day("2026-12-01"), today, Some(day("2026-12-01"))),
            Ok(false)
        );
        assert_eq!(
            may_close(day("2026-11-30"), today, Some(day("2026-12-01"))),
            Err(CloseRefusal::OutOfOrder {
                last_closed: day("2026-12-01")
            })
        );
        assert_eq!(
            may_close(today, today, None),
            Err(CloseRefusal::NotEnded { day: today })
        );
    }

    #[test]
    fn a_close_pays_positive_day_end_balances_and_carries_negative_ones() {
        let (a, b, c) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3));
        let plan = ClosePlan::new([(c, 2_500), (b, -700), (a, 0)]);
        assert_eq!(plan.payouts, vec![(c, 2_500)]);
        assert_eq!(plan.carried_over, vec![b]);
        assert_eq!(plan.total_cents(), 2_500);
        assert_eq!(plan.check(), Ok(()));
    }

    #[test]
    fn a_payout_above_the_rules_bound_is_refused_not_paid() {
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        assert_eq!(ClosePlan::new([(a, 100_000_000)]).check(), Ok(()));
        assert_eq!(
            ClosePlan::new([(a, 100), (b, 100_000_001)]).check(),
            Err(CloseRefusal::PayoutTooLarge {
                popug: b,
                cents: 100_000_001,
                max: 100_000_000
            })
        );
    }
}
