//! What billing does with each event it consumes: account events keep the
//! replica; task events price tasks and move money. Every handler works on
//! the consumer's transaction, so its effects commit with the inbox record.

use popug_bus::{EventMeta, HandlerError, Handlers, fields};
use popug_proto::{
    events::upcast,
    pb::popug::events::tasks::{v1 as tasks_v1, v2 as tasks_v2},
};
use popug_token::Standings;

use crate::{
    domain::{EntryKind, FeeReason},
    store::{Booking, Ledger, TaskDescription, replica},
};

/// The handlers of every event billing consumes.
///
/// Each account change also clears the account from `standings`, so its next
/// call is judged by it.
pub fn handlers(ledger: &Ledger, standings: &Standings) -> Handlers {
    let created_v2 = ledger.clone();
    let created_v1 = ledger.clone();
    let assigned = ledger.clone();
    let completed = ledger.clone();
    Handlers::new()
        .with_accounts(replica::Replica, standings)
        .on_batch::<tasks_v2::TaskCreated, _>(move |conn, events| {
            let ledger = created_v2.clone();
            Box::pin(async move {
                let tasks = events
                    .iter()
                    .map(|d| description(d.event))
                    .collect::<Result<Vec<_>, _>>()?;
                ledger.describe_tasks(conn, &tasks).await
            })
        })
        .on_batch::<tasks_v1::TaskCreated, _>(move |conn, events| {
            let ledger = created_v1.clone();
            Box::pin(async move {
                let tasks = events
                    .iter()
                    .map(|d| description(&upcast::task_created_v1(d.event.clone())))
                    .collect::<Result<Vec<_>, _>>()?;
                ledger.describe_tasks(conn, &tasks).await
            })
        })
        .on_batch::<tasks_v1::TaskAssigned, _>(move |conn, events| {
            let ledger = assigned.clone();
            Box::pin(async move {
                let bookings = events
                    .iter()
                    .map(|d| {
                        Ok(Booking {
                            reason: Some(fee_reason(d.event)?),
                            ..booking(
                                EntryKind::AssignmentFee,
                                d.meta,
                                &d.event.task_id,
                                &d.event.assignee_id,
                            )?
                        })
                    })
                    .collect::<Result<Vec<_>, HandlerError>>()?;
                ledger.book(conn, &bookings).await
            })
        })
        .on_batch::<tasks_v1::TaskCompleted, _>(move |conn, events| {
            let ledger = completed.clone();
            Box::pin(async move {
                let bookings = events
                    .iter()
                    .map(|d| {
                        booking(
                            EntryKind::CompletionReward,
                            d.meta,
                            &d.event.task_id,
                            &d.event.assignee_id,
                        )
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                ledger.book(conn, &bookings).await
            })
        })
        // What competing workers and replicas write: the account replica's
        // rows (locked by `with_accounts`) and balances, and tasks' display
        // fields. Each batch takes
        // these keys as sorted advisory locks before anything else, so
        // batches that meet the same accounts take turns in one order and
        // can never wait for each other in a circle (prices are stored in
        // a transaction of their own; see `Ledger::ensure_tasks`).
        .locking::<tasks_v2::TaskCreated, _>(|event| vec![task_key(&event.task_id)])
        .locking::<tasks_v1::TaskCreated, _>(|event| vec![task_key(&event.task_id)])
        .locking::<tasks_v1::TaskAssigned, _>(|event| vec![account_key(&event.assignee_id)])
        .locking::<tasks_v1::TaskCompleted, _>(|event| vec![account_key(&event.assignee_id)])
}

fn description(event: &tasks_v2::TaskCreated) -> Result<TaskDescription, HandlerError> {
    Ok(TaskDescription {
        task_id: fields::uuid("task_id", &event.task_id)?,
        key: event.key.clone(),
        title: event.title.clone(),
        jira_id: event.jira_id.clone(),
    })
}

/// A booking of `kind` (with no fee reason) from an event's fields.
fn booking(
    kind: EntryKind,
    meta: &EventMeta,
    task_id: &str,
    assignee_id: &str,
) -> Result<Booking, HandlerError> {
    Ok(Booking {
        kind,
        reason: None,
        task_id: fields::uuid("task_id", task_id)?,
        popug: fields::uuid("assignee_id", assignee_id)?,
        source_event_id: meta.event_id,
        at: meta.occurred_at,
    })
}

/// Why an assignment's fee is charged, as its event says: at creation, or
/// by a shuffle, which may have drawn the task's own assignee again.
fn fee_reason(event: &tasks_v1::TaskAssigned) -> Result<FeeReason, HandlerError> {
    match tasks_v1::AssignmentReason::try_from(event.reason) {
        Ok(tasks_v1::AssignmentReason::Created) => Ok(FeeReason::Created),
        Ok(tasks_v1::AssignmentReason::Shuffled) => Ok(FeeReason::of_shuffle(
            fields::uuid("previous_assignee_id", &event.previous_assignee_id)?,
            fields::uuid("assignee_id", &event.assignee_id)?,
        )),
        Ok(tasks_v1::AssignmentReason::Unspecified) | Err(_) => Err(HandlerError::Rejected(
            format!("reason {} is not a known assignment reason", event.reason),
        )),
    }
}

fn task_key(task_id: &str) -> String {
    format!("task:{task_id}")
}

fn account_key(account_id: &str) -> String {
    format!("account:{account_id}")
}
