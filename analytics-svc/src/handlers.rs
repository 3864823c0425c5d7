//! What analytics does with each event it consumes: it keeps its own read
//! model, from events only. Every write is keyed by the event's subject or
//! id, so duplicates and any arrival order give the same model.

use popug_bus::{HandlerError, Handlers};
use popug_proto::{
    events::upcast,
    pb::popug::events::{
        accounts::v1 as accounts_v1,
        billing::v1 as billing_v1,
        tasks::{v1 as tasks_v1, v2 as tasks_v2},
    },
};
use popug_token::Standings;
use uuid::Uuid;

use crate::store;

fn id(field: &str, value: &str) -> Result<Uuid, HandlerError> {
    Uuid::try_parse(value)
        .map_err(|_| HandlerError::Rejected(format!("{field} `{value}` is not a UUID")))
}

/// An event's day, by the one day rule (the event's `Validate` checked it).
fn day(value: &str) -> Result<chrono::NaiveDate, HandlerError> {
    popug_input::day::parse("day", value).map_err(|error| HandlerError::Rejected(error.to_string()))
}

fn role(value: i32) -> Result<&'static str, HandlerError> {
    popug_token::Role::from_event(value)
        .map_err(HandlerError::Rejected)
        .map(popug_token::Role::as_str)
}

fn version(value: u64) -> Result<i64, HandlerError> {
    i64::try_from(value)
        .map_err(|_| HandlerError::Rejected(format!("version {value} is out of range")))
}

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
    let (created, changed, deactivated) = (standings.clone(), standings.clone(), standings.clone());
    Handlers::new()
        // Roles and activity do not enter the figures; they decide who may
        // read them.
        .on::<accounts_v1::AccountCreated, _>(move |conn, _, event| {
            let standings = created.clone();
            Box::pin(async move {
                let account_id = id("account_id", &event.account_id)?;
                standings.forget(account_id);
                Ok(store::account(
                    conn,
                    account_id,
                    &event.login,
                    role(event.role)?,
                    event.active,
                    version(event.version)?,
                )
                .await?)
            })
        })
        // The profile does not enter the figures.
        .on::<accounts_v1::AccountUpdated, _>(|_, _, _| Box::pin(async { Ok(()) }))
        .on::<accounts_v1::AccountRoleChanged, _>(move |conn, _, event| {
            let standings = changed.clone();
            Box::pin(async move {
                let account_id = id("account_id", &event.account_id)?;
                standings.forget(account_id);
                Ok(store::role_changed(
                    conn,
                    account_id,
                    role(event.role)?,
                    version(event.version)?,
                )
                .await?)
            })
        })
        .on::<accounts_v1::AccountDeactivated, _>(move |conn, _, event| {
            let standings = deactivated.clone();
            Box::pin(async move {
                let account_id = id("account_id", &event.account_id)?;
                standings.forget(account_id);
                Ok(store::deactivated(conn, account_id).await?)
            })
        })
        .on::<tasks_v2::TaskCreated, _>(|conn, _, event| {
            Box::pin(async move {
                Ok(store::task_described(
                    conn,
                    id("task_id", &event.task_id)?,
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
                    id("task_id", &event.task_id)?,
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
                    id("task_id", &event.task_id)?,
                    id("assignee_id", &event.assignee_id)?,
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
                    id("task_id", &event.task_id)?,
                    event.fee_cents,
                    event.reward_cents,
                )
                .await?)
            })
        })
        .on::<billing_v1::TransactionApplied, _>(|conn, _, event| {
            Box::pin(async move {
                let task_id = if event.task_id.is_empty() {
                    None
                } else {
                    Some(id("task_id", &event.task_id)?)
                };
                store::transaction(
                    conn,
                    id("entry_id", &event.entry_id)?,
                    id("account_id", &event.account_id)?,
                    kind(event.kind)?,
                    event.amount_cents,
                    task_id,
                    day(&event.day)?,
                )
                .await?;
                Ok(())
            })
        })
        .on::<billing_v1::BillingCycleClosed, _>(|conn, _, event| {
            Box::pin(async move {
                let paid = i32::try_from(event.accounts_paid)
                    .map_err(|_| HandlerError::Rejected("accounts_paid is out of range".into()))?;
                Ok(store::day_closed(conn, day(&event.day)?, paid, event.payouts_cents).await?)
            })
        })
        .on::<billing_v1::PaymentSent, _>(|conn, _, event| {
            Box::pin(async move {
                Ok(store::payment(
                    conn,
                    id("payout_id", &event.payout_id)?,
                    id("account_id", &event.account_id)?,
                    event.amount_cents,
                    day(&event.day)?,
                )
                .await?)
            })
        })
        // The rows competing workers and replicas upsert: accounts and tasks.
        .locking::<accounts_v1::AccountCreated, _>(|event| {
            vec![format!("account:{}", event.account_id)]
        })
        .locking::<accounts_v1::AccountRoleChanged, _>(|event| {
            vec![format!("account:{}", event.account_id)]
        })
        .locking::<accounts_v1::AccountDeactivated, _>(|event| {
            vec![format!("account:{}", event.account_id)]
        })
        .locking::<tasks_v2::TaskCreated, _>(|event| vec![format!("task:{}", event.task_id)])
        .locking::<tasks_v1::TaskCreated, _>(|event| vec![format!("task:{}", event.task_id)])
        .locking::<tasks_v1::TaskCompleted, _>(|event| vec![format!("task:{}", event.task_id)])
        .locking::<billing_v1::TaskPriced, _>(|event| vec![format!("task:{}", event.task_id)])
}
