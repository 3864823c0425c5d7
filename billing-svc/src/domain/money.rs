//! Money is integer cents. Entry kinds (and every conversion of one: stored
//! text, the billing API's enum, the events' enum), why a fee was charged,
//! prices and billing days.

use std::str::FromStr;

use chrono::NaiveDate;
use popug_proto::{
    events::rules::{FEE_CENTS, REWARD_CENTS},
    pb::popug::{billing::v1 as api, events::billing::v1 as events},
};
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

/// The one place an entry kind changes form: its stored text
/// ([`EntryKind::as_str`], [`FromStr`]), the billing API's enum and the
/// events' enum (`From`).
impl EntryKind {
    /// Every kind.
    pub const ALL: [EntryKind; 3] = [
        EntryKind::AssignmentFee,
        EntryKind::CompletionReward,
        EntryKind::Payout,
    ];

    /// As stored (`transactions.kind`, `entries.kind`).
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::AssignmentFee => "assignment_fee",
            EntryKind::CompletionReward => "completion_reward",
            EntryKind::Payout => "payout",
        }
    }
}

/// Stored text that names no entry kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an entry kind")]
pub struct UnknownEntryKind(String);

/// From the stored form.
impl FromStr for EntryKind {
    type Err = UnknownEntryKind;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        EntryKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == value)
            .ok_or_else(|| UnknownEntryKind(value.to_owned()))
    }
}

/// The billing API's form.
impl From<EntryKind> for api::EntryKind {
    fn from(kind: EntryKind) -> Self {
        match kind {
            EntryKind::AssignmentFee => api::EntryKind::AssignmentFee,
            EntryKind::CompletionReward => api::EntryKind::CompletionReward,
            EntryKind::Payout => api::EntryKind::Payout,
        }
    }
}

/// The events' form (`TransactionApplied.kind`).
impl From<EntryKind> for events::EntryKind {
    fn from(kind: EntryKind) -> Self {
        match kind {
            EntryKind::AssignmentFee => events::EntryKind::AssignmentFee,
            EntryKind::CompletionReward => events::EntryKind::CompletionReward,
            EntryKind::Payout => events::EntryKind::Payout,
        }
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
    fn entry_kinds_round_trip_through_their_stored_text_and_match_both_enums() {
        for kind in EntryKind::ALL {
            assert_eq!(kind.as_str().parse::<EntryKind>(), Ok(kind));
            // The three enums spell each kind alike.
            let stored = kind.as_str().to_uppercase();
            assert!(api::EntryKind::from(kind).as_str_name().ends_with(&stored));
            assert!(
                events::EntryKind::from(kind)
                    .as_str_name()
                    .ends_with(&stored)
            );
        }
        assert!("refund".parse::<EntryKind>().is_err());
    }

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
