//! The accounts replica's event handlers: auth's account events keep the
//! tracker's view of who is an active worker. Each write commutes with the
//! others (see `store::replica`): roles are ordered by the account's version
//! in the events, so events may come in any order, or twice.

use popug_bus::{HandlerError, Handlers};
use popug_proto::pb::popug::events::accounts::v1 as accounts_v1;
use popug_token::{Role, Standings};
use uuid::Uuid;

use crate::store::replica;

fn account_id(value: &str) -> Result<Uuid, HandlerError> {
    // Validated by the bus already; a failure here is a bug, not bad input.
    Uuid::try_parse(value)
        .map_err(|_| HandlerError::Rejected(format!("`{value}` is not an account id")))
}

fn version(value: u64) -> Result<i64, HandlerError> {
    i64::try_from(value)
        .map_err(|_| HandlerError::Rejected(format!("version {value} is out of range")))
}

fn role(value: i32) -> Result<Role, HandlerError> {
    Role::from_event(value).map_err(HandlerError::Rejected)
}

/// The handlers of every account event the tracker consumes; each change
/// also clears the account from `standings`, so its next call is judged by it.
pub fn handlers(standings: &Standings) -> Handlers {
    let (created, changed, deactivated) = (standings.clone(), standings.clone(), standings.clone());
    Handlers::new()
        .on::<accounts_v1::AccountCreated, _>(move |conn, _, event| {
            let standings = created.clone();
            Box::pin(async move {
                let account_id = account_id(&event.account_id)?;
                standings.forget(account_id);
                replica::created(
                    conn,
                    account_id,
                    &event.login,
                    role(event.role)?,
                    event.active,
                    version(event.version)?,
                )
                .await?;
                Ok(())
            })
        })
        // The tracker keeps no profile fields; the event is consumed and dropped.
        .on::<accounts_v1::AccountUpdated, _>(|_, _, _| Box::pin(async { Ok(()) }))
        .on::<accounts_v1::AccountRoleChanged, _>(move |conn, _, event| {
            let standings = changed.clone();
            Box::pin(async move {
                let account_id = account_id(&event.account_id)?;
                standings.forget(account_id);
                replica::role_changed(conn, account_id, role(event.role)?, version(event.version)?)
                    .await?;
                Ok(())
            })
        })
        .on::<accounts_v1::AccountDeactivated, _>(move |conn, _, event| {
            let standings = deactivated.clone();
            Box::pin(async move {
                let account_id = account_id(&event.account_id)?;
                standings.forget(account_id);
                replica::deactivated(conn, account_id).await?;
                Ok(())
            })
        })
        // Competing workers and replicas upsert the same account rows.
        .locking::<accounts_v1::AccountCreated, _>(|event| {
            vec![format!("account:{}", event.account_id)]
        })
        .locking::<accounts_v1::AccountRoleChanged, _>(|event| {
            vec![format!("account:{}", event.account_id)]
        })
        .locking::<accounts_v1::AccountDeactivated, _>(|event| {
            vec![format!("account:{}", event.account_id)]
        })
}
