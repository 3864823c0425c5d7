//! The accounts replica's writes; each is idempotent and commutes with the
//! others (versions order the changes), so order and duplicates do not matter.
//! [`Replica`] gives them to the bus's shared account handlers
//! (`popug_bus::accounts`): billing keeps the email too, and locks first.

use diesel::{
    QueryResult,
    sql_types::{BigInt, Text},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use futures::future::BoxFuture;
use popug_bus::accounts::{AccountReplica, NewAccount};
use popug_token::Role;
use uuid::Uuid;

use popug_runtime::advisory_locks::DAY_CLOSE;

/// Account rows are what a day close locks to pay them. Like an entry, a
/// replica write first takes the close lock shared: a batch holding an
/// account row must never wait for a close that waits for that row.
async fn share_close_lock(conn: &mut AsyncPgConnection) -> Result<(), diesel::result::Error> {
    diesel::sql_query(format!("SELECT pg_advisory_xact_lock_shared({DAY_CLOSE})"))
        .execute(conn)
        .await
        .map(drop)
}

/// `AccountCreated`.
pub async fn created(
    conn: &mut AsyncPgConnection,
    account_id: Uuid,
    login: &str,
    email: &str,
    role: &str,
    active: bool,
    version: i64,
) -> Result<(), diesel::result::Error> {
    share_close_lock(conn).await?;
    diesel::sql_query(
        "INSERT INTO accounts (account_id, login, email, role, role_version, profile_version, active) \
         VALUES ($1, $2, $3, $4, $5, $5, $6) \
         ON CONFLICT (account_id) DO UPDATE SET login = EXCLUDED.login, \
             email = CASE WHEN accounts.profile_version IS NULL OR accounts.profile_version <= EXCLUDED.profile_version \
                          THEN EXCLUDED.email ELSE accounts.email END, \
             profile_version = GREATEST(accounts.profile_version, EXCLUDED.profile_version), \
             role = CASE WHEN accounts.role_version IS NULL OR accounts.role_version <= EXCLUDED.role_version \
                         THEN EXCLUDED.role ELSE accounts.role END, \
             role_version = GREATEST(accounts.role_version, EXCLUDED.role_version), \
             active = accounts.active AND EXCLUDED.active",
    )
    .bind::<diesel::sql_types::Uuid, _>(account_id)
    .bind::<Text, _>(login)
    .bind::<Text, _>(email)
    .bind::<Text, _>(role)
    .bind::<BigInt, _>(version)
    .bind::<diesel::sql_types::Bool, _>(active)
    .execute(conn)
    .await
    .map(drop)
}

/// `AccountUpdated`: the email, unless a newer one is known.
pub async fn updated(
    conn: &mut AsyncPgConnection,
    account_id: Uuid,
    email: &str,
    version: i64,
) -> Result<(), diesel::result::Error> {
    share_close_lock(conn).await?;
    diesel::sql_query(
        "INSERT INTO accounts (account_id, email, profile_version) VALUES ($1, $2, $3) \
         ON CONFLICT (account_id) DO UPDATE SET \
             email = CASE WHEN accounts.profile_version IS NULL OR accounts.profile_version <= EXCLUDED.profile_version \
                          THEN EXCLUDED.email ELSE accounts.email END, \
             profile_version = GREATEST(accounts.profile_version, EXCLUDED.profile_version)",
    )
    .bind::<diesel::sql_types::Uuid, _>(account_id)
    .bind::<Text, _>(email)
    .bind::<BigInt, _>(version)
    .execute(conn)
    .await
    .map(drop)
}

/// `AccountRoleChanged`: the role, unless a newer one is known.
pub async fn role_changed(
    conn: &mut AsyncPgConnection,
    account_id: Uuid,
    role: &str,
    version: i64,
) -> Result<(), diesel::result::Error> {
    share_close_lock(conn).await?;
    popug_runtime::directory::record_role(conn, account_id, role, version).await
}

/// `AccountDeactivated`: for good. The balance stays and closes as usual.
pub async fn deactivated(
    conn: &mut AsyncPgConnection,
    account_id: Uuid,
) -> Result<(), diesel::result::Error> {
    share_close_lock(conn).await?;
    popug_runtime::directory::record_deactivation(conn, account_id).await
}

/// Billing's accounts replica: the shared columns and the email, each write
/// after the close lock shared (see `share_close_lock`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Replica;

impl AccountReplica for Replica {
    fn created<'c>(
        &'c self,
        conn: &'c mut AsyncPgConnection,
        account: NewAccount<'c>,
    ) -> BoxFuture<'c, QueryResult<()>> {
        Box::pin(created(
            conn,
            account.account_id,
            account.login,
            account.email,
            account.role.as_str(),
            account.active,
            account.version,
        ))
    }

    fn updated<'c>(
        &'c self,
        conn: &'c mut AsyncPgConnection,
        account_id: Uuid,
        email: &'c str,
        version: i64,
    ) -> BoxFuture<'c, QueryResult<()>> {
        Box::pin(updated(conn, account_id, email, version))
    }

    fn role_changed<'c>(
        &'c self,
        conn: &'c mut AsyncPgConnection,
        account_id: Uuid,
        role: Role,
        version: i64,
    ) -> BoxFuture<'c, QueryResult<()>> {
        Box::pin(role_changed(conn, account_id, role.as_str(), version))
    }

    fn deactivated<'c>(
        &'c self,
        conn: &'c mut AsyncPgConnection,
        account_id: Uuid,
    ) -> BoxFuture<'c, QueryResult<()>> {
        Box::pin(deactivated(conn, account_id))
    }
}
