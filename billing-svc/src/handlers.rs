//! What billing does with each event it consumes: account events keep the
//! replica; task events price tasks and move money. Every handler works on
//! the consumer's transaction, so its effects commit with the inbox record.

use popug_bus::{HandlerError, Handlers};
use popug_proto::{
    events::upcast,
    pb::popug::events::{
        accounts::v1 as accounts_v1,
        tasks::{v1 as tasks_v1, v2 as tasks_v2},
    },
};
use popug_token::Role;
use uuid::Uuid;

use crate::store::{Ledger, replica};

fn id(field: &str, value: &str) -> Result<Uuid, HandlerError> {
    Uuid::try_parse(value)
        .map_err(|_| HandlerError::Rejected(format!("{field} `{value}` is not a UUID")))
}

fn version(value: u64) -> Result<i64, HandlerError> {
    i64::try_from(value)
        .map_err(|_| HandlerError::Rejected(format!("version {value} is out of range")))
}

fn role(value: i32) -> Result<&'static str, HandlerError> {
    accounts_v1::Role::try_from(value)
        .map_err(|_| HandlerError::Rejected(format!("{value} is not a role")))
        .and_then(|role| Role::try_from(role).map_err(HandlerError::Rejected))
        .map(Role::as_str)
}

/// The handlers of every event billing consumes.
pub fn handlers(ledger: &Ledger) -> Handlers {
    let created_v2 = ledger.clone();
    let created_v1 = ledger.clone();
    let assigned = ledger.clone();
    let completed = ledger.clone();
    Handlers::new()
        .on::<accounts_v1::AccountCreated, _>(|conn, _, event| {
            Box::pin(async move {
                let account_id = id("account_id", &event.account_id)?;
                replica::created(
                    conn,
                    account_id,
                    &event.login,
                    &event.email,
                    role(event.role)?,
                    event.active,
                    version(event.version)?,
                )
                .await?;
                Ok(())
            })
        })
        .on::<accounts_v1::AccountUpdated, _>(|conn, _, event| {
            Box::pin(async move {
                replica::updated(
                    conn,
                    id("account_id", &event.account_id)?,
                    &event.email,
                    version(event.version)?,
                )
                .await?;
                Ok(())
            })
        })
        .on::<accounts_v1::AccountRoleChanged, _>(|conn, _, event| {
            Box::pin(async move {
                replica::role_changed(
                    conn,
                    id("account_id", &event.account_id)?,
                    role(event.role)?,
                    version(event.version)?,
                )
                .await?;
                Ok(())
            })
        })
        .on::<accounts_v1::AccountDeactivated, _>(|conn, _, event| {
            Box::pin(async move {
                replica::deactivated(conn, id("account_id", &event.account_id)?).await?;
                Ok(())
            })
        })
        .on::<tasks_v2::TaskCreated, _>(move |conn, _, event| {
            let ledger = created_v2.clone();
            Box::pin(async move {
                ledger
                    .describe_task(
                        conn,
                        id("task_id", &event.task_id)?,
                        &event.key,
                        &event.title,
                        &event.jira_id,
                    )
                    .await
            })
        })
        .on::<tasks_v1::TaskCreated, _>(move |conn, _, event| {
            let ledger = created_v1.clone();
            Box::pin(async move {
                let event = upcast::task_created_v1(event.clone());
                ledger
                    .describe_task(
                        conn,
                        id("task_id", &event.task_id)?,
                        &event.key,
                        &event.title,
                        &event.jira_id,
                    )
                    .await
            })
        })
        .on::<tasks_v1::TaskAssigned, _>(move |conn, meta, event| {
            let ledger = assigned.clone();
            Box::pin(async move {
                let task_id = id("task_id", &event.task_id)?;
                let assignee = id("assignee_id", &event.assignee_id)?;
                ledger
                    .charge_fee(conn, task_id, assignee, meta.event_id, meta.occurred_at)
                    .await
            })
        })
        .on::<tasks_v1::TaskCompleted, _>(move |conn, meta, event| {
            let ledger = completed.clone();
            Box::pin(async move {
                let task_id = id("task_id", &event.task_id)?;
                let assignee = id("assignee_id", &event.assignee_id)?;
                ledger
                    .pay_reward(conn, task_id, assignee, meta.event_id, meta.occurred_at)
                    .await
            })
        })
        // The rows competing workers and replicas write: a task's prices and
        // an account's replica and balance.
        .locking::<accounts_v1::AccountCreated, _>(|event| vec![account_key(&event.account_id)])
        .locking::<accounts_v1::AccountUpdated, _>(|event| vec![account_key(&event.account_id)])
        .locking::<accounts_v1::AccountRoleChanged, _>(|event| vec![account_key(&event.account_id)])
        .locking::<accounts_v1::AccountDeactivated, _>(|event| vec![account_key(&event.account_id)])
        .locking::<tasks_v2::TaskCreated, _>(|event| vec![task_key(&event.task_id)])
        .locking::<tasks_v1::TaskCreated, _>(|event| vec![task_key(&event.task_id)])
        .locking::<tasks_v1::TaskAssigned, _>(|event| {
            vec![task_key(&event.task_id), account_key(&event.assignee_id)]
        })
        .locking::<tasks_v1::TaskCompleted, _>(|event| {
            vec![task_key(&event.task_id), account_key(&event.assignee_id)]
        })
}

fn task_key(task_id: &str) -> String {
    format!("task:{task_id}")
}

fn account_key(account_id: &str) -> String {
    format!("account:{account_id}")
}
