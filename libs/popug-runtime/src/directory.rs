//! Every service's [`Directory`] of callers: its `accounts` table, which in
//! auth-svc is the accounts themselves and elsewhere the replica fed by
//! auth's account events. Each has the columns `account_id`, `role` (text,
//! null while a replica knows only of a deactivation) and `active`; the
//! replicas also keep `login` and `role_version`, and write a new account,
//! role changes and deactivations with [`record_account`], [`record_role`]
//! and [`record_deactivation`].

use diesel::{OptionalExtension as _, QueryableByName, sql_types};
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use futures::future::BoxFuture;
use popug_token::{Directory, Standing};
use uuid::Uuid;

use crate::database::Pool;

/// Callers' standing from the service's own `accounts` table.
#[derive(Clone)]
pub struct AccountsDirectory {
    pool: Pool,
}

impl AccountsDirectory {
    /// The directory over `pool`'s `accounts` table.
    pub fn new(pool: Pool) -> Self {
        Self { pool }
    }
}

#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = sql_types::Nullable<sql_types::Text>)]
    role: Option<String>,
    #[diesel(sql_type = sql_types::Bool)]
    active: bool,
}

impl Directory for AccountsDirectory {
    fn standing(&self, account_id: Uuid) -> BoxFuture<'_, Result<Option<Standing>, String>> {
        Box::pin(async move {
            let mut conn = self.pool.get().await.map_err(|error| error.to_string())?;
            let row: Option<Row> =
                crate::sql::query("SELECT role, active FROM accounts WHERE account_id = $1")
                    .bind::<sql_types::Uuid, _>(account_id)
                    .get_result(&mut conn)
                    .await
                    .optional()
                    .map_err(|error| error.to_string())?;
            Ok(row.map(|row| Standing {
                role: row.role.and_then(|role| role.parse().ok()),
                active: row.active,
            }))
        })
    }
}

/// `AccountCreated` (version `version`) in a replica: login, role and
/// active flag; a newer role, or a deactivation, already known stays.
pub async fn record_account(
    conn: &mut AsyncPgConnection,
    account_id: Uuid,
    login: &str,
    role: &str,
    active: bool,
    version: i64,
) -> Result<(), diesel::result::Error> {
    crate::sql::query(
        "INSERT INTO accounts (account_id, login, role, role_version, active) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (account_id) DO UPDATE SET login = EXCLUDED.login, \
             role = CASE WHEN accounts.role_version IS NULL OR accounts.role_version <= EXCLUDED.role_version \
                         THEN EXCLUDED.role ELSE accounts.role END, \
             role_version = GREATEST(accounts.role_version, EXCLUDED.role_version), \
             active = accounts.active AND EXCLUDED.active",
    )
    .bind::<sql_types::Uuid, _>(account_id)
    .bind::<sql_types::Text, _>(login)
    .bind::<sql_types::Text, _>(role)
    .bind::<sql_types::BigInt, _>(version)
    .bind::<sql_types::Bool, _>(active)
    .execute(conn)
    .await
    .map(drop)
}

/// `AccountRoleChanged` in a replica: the role, unless a newer one is known
/// (versions order the changes, so order and duplicates do not matter).
pub async fn record_role(
    conn: &mut AsyncPgConnection,
    account_id: Uuid,
    role: &str,
    version: i64,
) -> Result<(), diesel::result::Error> {
    crate::sql::query(
        "INSERT INTO accounts (account_id, role, role_version) VALUES ($1, $2, $3) \
         ON CONFLICT (account_id) DO UPDATE SET \
             role = CASE WHEN accounts.role_version IS NULL OR accounts.role_version <= EXCLUDED.role_version \
                         THEN EXCLUDED.role ELSE accounts.role END, \
             role_version = GREATEST(accounts.role_version, EXCLUDED.role_version)",
    )
    .bind::<sql_types::Uuid, _>(account_id)
    .bind::<sql_types::Text, _>(role)
    .bind::<sql_types::BigInt, _>(version)
    .execute(conn)
    .await
    .map(drop)
}

/// `AccountDeactivated` in a replica: for good.
pub async fn record_deactivation(
    conn: &mut AsyncPgConnection,
    account_id: Uuid,
) -> Result<(), diesel::result::Error> {
    crate::sql::query(
        "INSERT INTO accounts (account_id, active) VALUES ($1, FALSE) \
         ON CONFLICT (account_id) DO UPDATE SET active = FALSE",
    )
    .bind::<sql_types::Uuid, _>(account_id)
    .execute(conn)
    .await
    .map(drop)
}
