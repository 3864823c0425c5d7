//! The accounts replica every consuming service keeps (tracker, billing,
//! analytics) from auth's account events, handled once: each event's fields
//! parsed ([`crate::fields`]), the write done through the service's
//! [`AccountReplica`], and the account cleared from the service's
//! [`Standings`], so its next call is judged by the change. The writes
//! commute (versions order a role; a deactivation is for good), so events
//! may come in any order, or twice; competing workers and replicas take the
//! account's lock key first.

use std::sync::Arc;

use diesel::QueryResult;
use diesel_async::AsyncPgConnection;
use futures::future::BoxFuture;
use popug_proto::pb::popug::events::accounts::v1 as accounts_v1;
use popug_runtime::directory;
use popug_token::{Role, Standings};
use uuid::Uuid;

use crate::{Handlers, fields};

/// An account as `AccountCreated` tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewAccount<'e> {
    /// Its public id.
    pub account_id: Uuid,
    /// Its login.
    pub login: &'e str,
    /// Its email.
    pub email: &'e str,
    /// Its role.
    pub role: Role,
    /// Whether it may sign in.
    pub active: bool,
    /// The account's version in auth, which orders role changes.
    pub version: i64,
}

/// Where a service writes its replica. The defaults write the columns every
/// replica's `accounts` table has ([`popug_runtime::directory`]); a service
/// that keeps more (billing keeps the email) or must lock first overrides
/// them.
pub trait AccountReplica: Send + Sync + 'static {
    /// `AccountCreated`.
    fn created<'c>(
        &'c self,
        conn: &'c mut AsyncPgConnection,
        account: NewAccount<'c>,
    ) -> BoxFuture<'c, QueryResult<()>> {
        Box::pin(directory::record_account(
            conn,
            account.account_id,
            account.login,
            account.role.as_str(),
            account.active,
            account.version,
        ))
    }

    /// `AccountUpdated` (the profile, at `version`); by default not kept.
    fn updated<'c>(
        &'c self,
        _conn: &'c mut AsyncPgConnection,
        _account_id: Uuid,
        _email: &'c str,
        _version: i64,
    ) -> BoxFuture<'c, QueryResult<()>> {
        Box::pin(async { Ok(()) })
    }

    /// `AccountRoleChanged` (at `version`).
    fn role_changed<'c>(
        &'c self,
        conn: &'c mut AsyncPgConnection,
        account_id: Uuid,
        role: Role,
        version: i64,
    ) -> BoxFuture<'c, QueryResult<()>> {
        Box::pin(directory::record_role(
            conn,
            account_id,
            role.as_str(),
            version,
        ))
    }

    /// `AccountDeactivated`: for good.
    fn deactivated<'c>(
        &'c self,
        conn: &'c mut AsyncPgConnection,
        account_id: Uuid,
    ) -> BoxFuture<'c, QueryResult<()>> {
        Box::pin(directory::record_deactivation(conn, account_id))
    }
}

/// The replica of the shared columns only, as the tracker and analytics
/// keep it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Directory;

impl AccountReplica for Directory {}

/// The lock key of an account's replica row.
fn key(account_id: &str) -> Vec<String> {
    vec![format!("account:{account_id}")]
}

impl Handlers {
    /// Adds the handlers of the four account events, writing through
    /// `replica` and clearing each changed account from `standings`.
    #[must_use]
    pub fn with_accounts(self, replica: impl AccountReplica, standings: &Standings) -> Self {
        let replica = Arc::new(replica);
        let (on_created, on_updated, on_changed, on_deactivated) = (
            Arc::clone(&replica),
            Arc::clone(&replica),
            Arc::clone(&replica),
            replica,
        );
        let (created, changed, deactivated) =
            (standings.clone(), standings.clone(), standings.clone());
        self.on::<accounts_v1::AccountCreated, _>(move |conn, _, event| {
            let (replica, standings) = (Arc::clone(&on_created), created.clone());
            Box::pin(async move {
                let account = NewAccount {
                    account_id: fields::uuid("account_id", &event.account_id)?,
                    login: &event.login,
                    email: &event.email,
                    role: fields::role(event.role)?,
                    active: event.active,
                    version: fields::version(event.version)?,
                };
                standings.forget(account.account_id);
                replica.created(conn, account).await?;
                Ok(())
            })
        })
        .on::<accounts_v1::AccountUpdated, _>(move |conn, _, event| {
            let replica = Arc::clone(&on_updated);
            Box::pin(async move {
                let account_id = fields::uuid("account_id", &event.account_id)?;
                let version = fields::version(event.version)?;
                replica
                    .updated(conn, account_id, &event.email, version)
                    .await?;
                Ok(())
            })
        })
        .on::<accounts_v1::AccountRoleChanged, _>(move |conn, _, event| {
            let (replica, standings) = (Arc::clone(&on_changed), changed.clone());
            Box::pin(async move {
                let account_id = fields::uuid("account_id", &event.account_id)?;
                let role = fields::role(event.role)?;
                let version = fields::version(event.version)?;
                standings.forget(account_id);
                replica
                    .role_changed(conn, account_id, role, version)
                    .await?;
                Ok(())
            })
        })
        .on::<accounts_v1::AccountDeactivated, _>(move |conn, _, event| {
            let (replica, standings) = (Arc::clone(&on_deactivated), deactivated.clone());
            Box::pin(async move {
                let account_id = fields::uuid("account_id", &event.account_id)?;
                standings.forget(account_id);
                replica.deactivated(conn, account_id).await?;
                Ok(())
            })
        })
        .locking::<accounts_v1::AccountCreated, _>(|event| key(&event.account_id))
        .locking::<accounts_v1::AccountUpdated, _>(|event| key(&event.account_id))
        .locking::<accounts_v1::AccountRoleChanged, _>(|event| key(&event.account_id))
        .locking::<accounts_v1::AccountDeactivated, _>(|event| key(&event.account_id))
    }
}
