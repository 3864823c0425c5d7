//! The events each ledger change produces.

use popug_proto::pb::popug::events::billing::v1 as events;
use uuid::Uuid;

use super::{Day, Prices, Transfer};

/// `TaskPriced`.
pub fn priced(task_id: Uuid, prices: Prices) -> events::TaskPriced {
    events::TaskPriced {
        task_id: task_id.to_string(),
        fee_cents: prices.fee_cents,
        reward_cents: prices.reward_cents,
    }
}

/// `TransactionApplied` for one booked transfer: its popug leg, with the
/// popug's balance right after it.
pub fn applied(transfer: &Transfer, balance_after_cents: i64) -> events::TransactionApplied {
    events::TransactionApplied {
        entry_id: transfer.tx_id.to_string(),
        account_id: transfer.popug.to_string(),
        kind: events::EntryKind::from(transfer.kind).into(),
        amount_cents: transfer.popug_cents,
        task_id: transfer
            .task_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        day: transfer.day.to_string(),
        balance_after_cents,
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
