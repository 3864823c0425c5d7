//! What analytics does with each event it consumes: it keeps its own read
//! model, from events only. Every write is keyed by the event's subject or
//! id, so duplicates and any arrival order give the same model.

use popug_bus::{HandlerError, Handlers, accounts::Directory, fields};
use popug_proto::{
    events::upcast,
    pb::popug::events::{
        billing::v1 as billing_v1,
        tasks::{v1 as tasks_v1, v2 as tasks_v2},
    },
};
use popug_token::Standings;

use crate::store;

fn kind(value: i32) -> Result<&'static str, HandlerError> {
    match billing_v1::EntryKind::try_from(value) {
        Ok(billing_v1::EntryKind::AssignmentFee) => Ok("assignment_fee"),
        Ok(billing_v1::EntryKind::CompletionReward) => Ok("completion_reward"),
        Ok(billing_v1::EntryKind::Payout) => Ok("payout"),
        _ => Err(HandlerError::Rejected(format!(
            "{value} is not an entry kind"
        ))),
    }
}

/// The handlers of every event analytics consumes; days of completions are
/// counted in `timezone`.
///
/// Each account change also clears the account from `standings`, so its next
/// call is judged by it.
pub fn handlers(timezone: popug_runtime::Timezone, standings: &Standings) -> Handlers {
    Handlers::new()
        // Roles and activity do not enter the figures; they decide who may
        // read them. The profile does not enter them either.
        .with_accounts(Directory, standings)
        .on::<tasks_v2::TaskCreated, _>(|conn, _, event| {
            Box::pin(async move {
                Ok(store::task_described(
                    conn,
                    fields::uuid("task_id", &event.task_id)?,
                    &event.key,
                    &event.title,
                )
                .await?)
            })
        })
        .on::<tasks_v1::TaskCreated, _>(|conn, _, event| {
            Box::pin(async move {
                let event = upcast::task_created_v1(event.clone());
                Ok(store::task_described(
                    conn,
                    fields::uuid("task_id", &event.task_id)?,
                    &event.key,
                    &event.title,
                )
                .await?)
            })
        })
        // Money comes from billing's entries; an assignment needs no record here.
        .on::<tasks_v1::TaskAssigned, _>(|_, _, _| Box::pin(async { Ok(()) }))
        .on::<tasks_v1::TaskCompleted, _>(move |conn, meta, event| {
            Box::pin(async move {
                let completed_day = popug_runtime::calendar::day_of(meta.occurred_at, timezone);
                store::task_completed(
                    conn,
                    fields::uuid("task_id", &event.task_id)?,
                    fields::uuid("assignee_id", &event.assignee_id)?,
                    meta.occurred_at,
                    completed_day,
                )
                .await?;
                Ok(())
            })
        })
        .on::<billing_v1::TaskPriced, _>(|conn, _, event| {
            Box::pin(async move {
                Ok(store::task_priced(
                    conn,
                    fields::uuid("task_id", &event.task_id)?,
                    event.fee_cents,
                    event.reward_cents,
                )
                .await?)
            })
        })
        .on::<billing_v1::TransactionApplied, _>(|conn, _, event| {
            Box::pin(async move {
                let task_id = fields::optional_uuid("task_id", &event.task_id)?;
                store::transaction(
                    conn,
                    fields::uuid("entry_id", &event.entry_id)?,
                    fields::uuid("account_id", &event.account_id)?,
                    kind(event.kind)?,
                    event.amount_cents,
                    task_id,
                    fields::day("day", &event.day)?,
                )
                .await?;
                Ok(())
            })
        })
        .on::<billing_v1::BillingCycleClosed, _>(|conn, _, event| {
            Box::pin(async move {
                let paid = fields::count("accounts_paid", event.accounts_paid)?;
                let day = fields::day("day", &event.day)?;
                Ok(store::day_closed(conn, day, paid, event.payouts_cents).await?)
            })
        })
        .on::<billing_v1::PaymentSent, _>(|conn, _, event| {
            Box::pin(async move {
                Ok(store::payment(
                    conn,
                    fields::uuid("payout_id", &event.payout_id)?,
                    fields::uuid("account_id", &event.account_id)?,
                    event.amount_cents,
                    fields::day("day", &event.day)?,
                )
                .await?)
            })
        })
        // The rows competing workers and replicas upsert: accounts and tasks.
        .locking::<tasks_v2::TaskCreated, _>(|event| vec![format!("task:{}", event.task_id)])
        .locking::<tasks_v1::TaskCreated, _>(|event| vec![format!("task:{}", event.task_id)])
        .locking::<tasks_v1::TaskCompleted, _>(|event| vec![format!("task:{}", event.task_id)])
        .locking::<billing_v1::TaskPriced, _>(|event| vec![format!("task:{}", event.task_id)])
}
