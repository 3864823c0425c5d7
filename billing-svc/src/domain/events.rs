//! The events each ledger change produces.

use popug_proto::pb::popug::events::billing::v1 as events;
use uuid::Uuid;

use super::{Day, EntryKind, Prices};

/// `TaskPriced`.
pub fn priced(task_id: Uuid, prices: Prices) -> events::TaskPriced {
    events::TaskPriced {
        task_id: task_id.to_string(),
        fee_cents: prices.fee_cents,
        reward_cents: prices.reward_cents,
    }
}

/// `TransactionApplied` for one entry.
pub fn applied(
    entry_id: Uuid,
    account_id: Uuid,
    kind: EntryKind,
    amount_cents: i64,
    task_id: Option<Uuid>,
    day: Day,
) -> events::TransactionApplied {
    events::TransactionApplied {
        entry_id: entry_id.to_string(),
        account_id: account_id.to_string(),
        kind: match kind {
            EntryKind::AssignmentFee => events::EntryKind::AssignmentFee,
            EntryKind::CompletionReward => events::EntryKind::CompletionReward,
            EntryKind::Payout => events::EntryKind::Payout,
        }
        .into(),
        amount_cents,
        task_id: task_id.map(|id| id.to_string()).unwrap_or_default(),
        day: day.to_string(),
    }
}

/// `PaymentSent`.
pub fn payment_sent(
    payout_id: Uuid,
    account_id: Uuid,
    amount_cents: i64,
    day: Day,
) -> events::PaymentSent {
    events::PaymentSent {
        payout_id: payout_id.to_string(),
        account_id: account_id.to_string(),
        amount_cents,
        day: day.to_string(),
    }
}

/// `BillingCycleClosed`.
pub fn cycle_closed(
    day: Day,
    accounts_paid: u32,
    payouts_cents: i64,
) -> events::BillingCycleClosed {
    events::BillingCycleClosed {
        day: day.to_string(),
        accounts_paid,
        payouts_cents,
    }
}
