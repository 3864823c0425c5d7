//! Money is integer cents. Entry kinds, why a fee was charged, prices and
//! billing days.

use chrono::NaiveDate;
use popug_proto::events::rules::{FEE_CENTS, REWARD_CENTS};
use rand::Rng;
use uuid::Uuid;

/// What a ledger entry is for, and the sign of its amount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A task was assigned: its fee is charged (negative).
    AssignmentFee,
    /// A task was completed: its reward is paid (positive).
    CompletionReward,
    /// The day's positive balance was paid out (negative).
    Payout,
}

impl EntryKind {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::AssignmentFee => "assignment_fee",
            EntryKind::CompletionReward => "completion_reward",
            EntryKind::Payout => "payout",
        }
    }

    /// From the stored form.
    pub fn parse(value: &str) -> Option<Self> {
        [
            EntryKind::AssignmentFee,
            EntryKind::CompletionReward,
            EntryKind::Payout,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == value)
    }
}

/// Why an assignment fee was charged: how the task came to its popug.
/// Every assignment costs the fee, so a shuffle that leaves a task with its
/// assignee charges it again; the reason tells the two fees apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeeReason {
    /// The task was assigned when it was created.
    Created,
    /// A shuffle gave the task to this popug.
    Shuffled,
    /// A shuffle drew the task's own assignee again: the task stayed.
    ShuffledToSame,
}

impl FeeReason {
    /// The reason of a shuffle's assignment, from the assignee before it
    /// and the one after.
    pub fn of_shuffle(previous: Uuid, assignee: Uuid) -> Self {
        if previous == assignee {
            FeeReason::ShuffledToSame
        } else {
            FeeReason::Shuffled
        }
    }

    /// As stored in `transactions.reason` (the statement's words for it are
    /// in the store's entry query).
    pub fn as_str(self) -> &'static str {
        match self {
            FeeReason::Created => "created",
            FeeReason::Shuffled => "shuffled",
            FeeReason::ShuffledToSame => "shuffled_to_same",
        }
    }
}

/// A task's prices, drawn once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prices {
    /// Charged at every assignment, in cents.
    pub fee_cents: i64,
    /// Paid at completion, in cents.
    pub reward_cents: i64,
}

impl Prices {
    /// Draws a fee uniformly from 10..=20 $ and a reward from 20..=40 $, in cents.
    pub fn draw(rng: &mut impl Rng) -> Self {
        Self {
            fee_cents: rng.gen_range(FEE_CENTS),
            reward_cents: rng.gen_range(REWARD_CENTS),
        }
    }
}

/// A billing day: a calendar date in the company's time zone.
pub type Day = NaiveDate;

pub use popug_runtime::calendar::{day_of, next_midnight, parse_day};

#[cfg(test)]
mod tests {
    use super::*;
    use popug_runtime::ApiError;
    use rand::SeedableRng as _;

    #[test]
    fn prices_stay_in_range_and_cover_it() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let prices: Vec<Prices> = (0..20_000).map(|_| Prices::draw(&mut rng)).collect();
        assert!(prices.iter().all(|p| FEE_CENTS.contains(&p.fee_cents) && REWARD_CENTS.contains(&p.reward_cents)));
        assert_eq!(prices.iter().map(|p| p.fee_cents).min(), Some(1_000));
        assert_eq!(prices.iter().map(|p| p.fee_cents).max(), Some(2_000));
        assert_eq!(prices.iter().map(|p| p.reward_cents).min(), Some(2_000));
        assert_eq!(prices.iter().map(|p| p.reward_cents).max(), Some(4_000));
    }

    #[test]
    fn a_shuffle_that_keeps_the_assignee_is_told_apart() {
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        assert_eq!(FeeReason::of_shuffle(a, b), FeeReason::Shuffled);
        assert_eq!(FeeReason::of_shuffle(a, a), FeeReason::ShuffledToSame);
        let stored: Vec<&str> = [
            FeeReason::Created,
            FeeReason::Shuffled,
            FeeReason::ShuffledToSame,
        ]
        .map(FeeReason::as_str)
        .to_vec();
        assert_eq!(stored, ["created", "shuffled", "shuffled_to_same"]);
    }

    #[test]
    fn days_follow_the_company_time_zone() {
        let at = chrono::DateTime::parse_from_rfc3339("2026-11-22T23:30:00Z")
            .expect("time")
            .to_utc();
        assert_eq!(
            day_of(at, popug_runtime::Timezone::UTC).to_string(),
            "2026-11-22"
        );
        assert_eq!(
            day_of(
                at,
                popug_runtime::Timezone::Named(chrono_tz::Europe::Berlin)
            )
            .to_string(),
            "2026-11-23"
        );
        let midnight = next_midnight(
            at,
            popug_runtime::Timezone::Named(chrono_tz::Europe::Berlin),
        );
        assert_eq!(midnight.to_rfc3339(), "2026-11-23T23:00:00+00:00");
        assert!(matches!(
            parse_day("date", "22.11.2026", at.date_naive()),
            Err(ApiError::InvalidArgument { field: "date", .. })
        ));
    }
}
