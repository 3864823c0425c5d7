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

fn described(event: &tasks_v2::TaskCreated) -> Result<store::Described, HandlerError> {
    Ok(store::Described {
        task_id: fields::uuid("task_id", &event.task_id)?,
        key: event.key.clone(),
        title: event.title.clone(),
    })
}

fn entry(event: &billing_v1::TransactionApplied) -> Result<store::Entry, HandlerError> {
    Ok(store::Entry {
        entry_id: fields::uuid("entry_id", &event.entry_id)?,
        account_id: fields::uuid("account_id", &event.account_id)?,
        kind: kind(event.kind)?,
        amount_cents: event.amount_cents,
        task_id: fields::optional_uuid("task_id", &event.task_id)?,
        day: fields::day("day", &event.day)?,
    })
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
        // Tasks and entries arrive by the hundred: each type's events of a
        // batch go in with one statement.
        .on_batch::<tasks_v2::TaskCreated, _>(|conn, events| {
            Box::pin(async move {
                let described = events
                    .iter()
                    .map(|d| described(d.event))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(store::tasks_described(conn, described).await?)
            })
        })
        .on_batch::<tasks_v1::TaskCreated, _>(|conn, events| {
            Box::pin(async move {
                let described = events
                    .iter()
                    .map(|d| described(&upcast::task_created_v1(d.event.clone())))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(store::tasks_described(conn, described).await?)
            })
        })
        // Money comes from billing's entries; an assignment needs no record here.
        .on::<tasks_v1::TaskAssigned, _>(|_, _, _| Box::pin(async { Ok(()) }))
        .on_batch::<tasks_v1::TaskCompleted, _>(move |conn, events| {
            Box::pin(async move {
                let completed = events
                    .iter()
                    .map(|d| {
                        Ok(store::Completed {
                            task_id: fields::uuid("task_id", &d.event.task_id)?,
                            assignee_id: fields::uuid("assignee_id", &d.event.assignee_id)?,
                            at: d.meta.occurred_at,
                            day: popug_runtime::calendar::day_of(d.meta.occurred_at, timezone),
                        })
                    })
                    .collect::<Result<Vec<_>, HandlerError>>()?;
                Ok(store::tasks_completed(conn, completed).await?)
            })
        })
        .on_batch::<billing_v1::TaskPriced, _>(|conn, events| {
            Box::pin(async move {
                let priced = events
                    .iter()
                    .map(|d| {
                        Ok((
                            fields::uuid("task_id", &d.event.task_id)?,
                            d.event.fee_cents,
                            d.event.reward_cents,
                        ))
                    })
                    .collect::<Result<Vec<_>, HandlerError>>()?;
                Ok(store::tasks_priced(conn, priced).await?)
            })
        })
        .on_batch::<billing_v1::TransactionApplied, _>(|conn, events| {
            Box::pin(async move {
                let entries = events
                    .iter()
                    .map(|d| entry(d.event))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(store::transactions(conn, entries).await?)
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
