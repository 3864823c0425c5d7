//! auth-svc's queries. Every change to an account commits together with its
//! event in the outbox.

use diesel::{
    BoolExpressionMethods as _, ExpressionMethods as _, OptionalExtension as _, QueryDsl as _,
    Queryable, Selectable, SelectableHelper as _,
};
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};
use popug_bus::Outbox;
use popug_runtime::database::Pool;
use popug_token::Role;
use uuid::Uuid;

use crate::{
    domain::{Account, Email, Name, NewAccount, events},
    error::Error,
    schema::{accounts, refresh_tokens, signing_keys},
};

#[derive(Queryable, Selectable)]
#[diesel(table_name = accounts)]
struct AccountRow {
    account_id: Uuid,
    login: String,
    name: String,
    email: String,
    role: String,
    active: bool,
    created_at: chrono::DateTime<chrono::Utc>,
    version: i64,
}

impl TryFrom<AccountRow> for Account {
    type Error = Error;
    fn try_from(row: AccountRow) -> Result<Self, Error> {
        Ok(Account {
            account_id: row.account_id,
            role: row.role.parse().map_err(Error::internal)?,
            login: row.login,
            name: row.name,
            email: row.email,
            active: row.active,
            created_at: row.created_at,
            version: row.version,
        })
    }
}

/// What spending a refresh token found.
#[derive(Debug)]
pub enum Spent {
    /// Valid: revoked now and replaced by the new one.
    Rotated(Account),
    /// Unknown token.
    Unknown,
    /// Expired.
    Expired,
    /// Already used: every session of the account was revoked (token theft).
    Reused,
    /// The account is deactivated.
    Inactive,
}

/// auth-svc's database.
#[derive(Clone)]
pub struct Store {
    pool: Pool,
    outbox: Outbox,
}

impl Store {
    /// The store over `pool`, writing events to `outbox`.
    pub fn new(pool: Pool, outbox: Outbox) -> Self {
        Self { pool, outbox }
    }

    async fn conn(&self) -> Result<popug_runtime::database::PooledConnection<'_>, Error> {
        Ok(popug_runtime::database::conn(&self.pool).await?)
    }

    /// Inserts `new` with its password hash and enqueues `AccountCreated`.
    pub async fn create_account(
        &self,
        new: &NewAccount,
        password_hash: &str,
    ) -> Result<Account, Error> {
        let mut conn = self.conn().await?;
        let outbox = &self.outbox;
        conn.transaction::<_, Error, _>(async |conn| {
            let inserted = diesel::insert_into(accounts::table)
                .values((
                    accounts::account_id.eq(Uuid::new_v4()),
                    accounts::login.eq(new.login.as_str()),
                    accounts::name.eq(new.name.as_str()),
                    accounts::email.eq(new.email.as_str()),
                    accounts::role.eq(new.role.as_str()),
                    accounts::password_hash.eq(password_hash),
                ))
                .on_conflict(accounts::login)
                .do_nothing()
                .returning(AccountRow::as_returning())
                .get_result(conn)
                .await
                .optional()?;
            let account = Account::try_from(
                inserted.ok_or_else(|| Error::LoginTaken(new.login.as_str().to_owned()))?,
            )?;
            outbox.enqueue(conn, &events::created(&account)).await?;
            Ok(account)
        })
        .await
    }

    /// The account `account_id`, if it exists.
    pub async fn account(&self, account_id: Uuid) -> Result<Option<Account>, Error> {
        let mut conn = self.conn().await?;
        accounts::table
            .find(account_id)
            .select(AccountRow::as_select())
            .first(&mut conn)
            .await
            .optional()?
            .map(Account::try_from)
            .transpose()
    }

    /// The account with `login` and its password hash.
    pub async fn credentials(&self, login: &str) -> Result<Option<(Account, String)>, Error> {
        let mut conn = self.conn().await?;
        let row: Option<(AccountRow, String)> = accounts::table
            .filter(accounts::login.eq(login))
            .select((AccountRow::as_select(), accounts::password_hash))
            .first(&mut conn)
            .await
            .optional()?;
        row.map(|(account, hash)| Ok((Account::try_from(account)?, hash)))
            .transpose()
    }

    async fn locked(conn: &mut AsyncPgConnection, account_id: Uuid) -> Result<Account, Error> {
        accounts::table
            .find(account_id)
            .select(AccountRow::as_select())
            .for_update()
            .first(conn)
            .await
            .optional()?
            .map(Account::try_from)
            .transpose()?
            .ok_or(Error::NoSuchAccount(account_id))
    }

    /// Changes the given profile fields and enqueues `AccountUpdated` if
    /// anything changed.
    pub async fn update_profile(
        &self,
        account_id: Uuid,
        name: Option<&Name>,
        email: Option<&Email>,
    ) -> Result<Account, Error> {
        let mut conn = self.conn().await?;
        let outbox = &self.outbox;
        conn.transaction::<_, Error, _>(async |conn| {
            let before = Self::locked(conn, account_id).await?;
            let name = name.map_or(before.name.as_str(), Name::as_str);
            let email = email.map_or(before.email.as_str(), Email::as_str);
            if name == before.name && email == before.email {
                return Ok(before);
            }
            let row = diesel::update(accounts::table.find(account_id))
                .set((
                    accounts::name.eq(name),
                    accounts::email.eq(email),
                    accounts::updated_at.eq(diesel::dsl::now),
                    accounts::version.eq(accounts::version + 1),
                ))
                .returning(AccountRow::as_returning())
                .get_result(conn)
                .await?;
            let account = Account::try_from(row)?;
            outbox.enqueue(conn, &events::updated(&account)).await?;
            Ok(account)
        })
        .await
    }

    /// Gives the account `role` and enqueues `AccountRoleChanged` if it changed.
    pub async fn change_role(&self, account_id: Uuid, role: Role) -> Result<Account, Error> {
        let mut conn = self.conn().await?;
        let outbox = &self.outbox;
        conn.transaction::<_, Error, _>(async |conn| {
            let before = Self::locked(conn, account_id).await?;
            if before.role == role {
                return Ok(before);
            }
            let row = diesel::update(accounts::table.find(account_id))
                .set((
                    accounts::role.eq(role.as_str()),
                    accounts::updated_at.eq(diesel::dsl::now),
                    accounts::version.eq(accounts::version + 1),
                ))
                .returning(AccountRow::as_returning())
                .get_result(conn)
                .await?;
            let account = Account::try_from(row)?;
            outbox
                .enqueue(conn, &events::role_changed(&account, before.role))
                .await?;
            Ok(account)
        })
        .await
    }

    /// Deactivates the account, revokes its refresh tokens and enqueues
    /// `AccountDeactivated`; an inactive account is left as it is.
    pub async fn deactivate(&self, account_id: Uuid) -> Result<Account, Error> {
        let mut conn = self.conn().await?;
        let outbox = &self.outbox;
        conn.transaction::<_, Error, _>(async |conn| {
            let before = Self::locked(conn, account_id).await?;
            if !before.active {
                return Ok(before);
            }
            let row = diesel::update(accounts::table.find(account_id))
                .set((
                    accounts::active.eq(false),
                    accounts::updated_at.eq(diesel::dsl::now),
                    accounts::version.eq(accounts::version + 1),
                ))
                .returning(AccountRow::as_returning())
                .get_result(conn)
                .await?;
            revoke_all(conn, account_id).await?;
            let account = Account::try_from(row)?;
            outbox.enqueue(conn, &events::deactivated(&account)).await?;
            Ok(account)
        })
        .await
    }

    /// Replaces the account's password hash and deletes every refresh token
    /// it holds, so each of its sessions must sign in again (or, for the
    /// caller of `ChangePassword`, take the new one it is given). Deleted,
    /// not marked revoked: an old session refreshing afterwards is not a
    /// theft, and must not end the new session as a reused token would. No
    /// event: a password is auth's alone; no other service holds it.
    pub async fn set_password(
        &self,
        account_id: Uuid,
        password_hash: &str,
    ) -> Result<Account, Error> {
        let mut conn = self.conn().await?;
        conn.transaction::<_, Error, _>(async |conn| {
            let account = Self::locked(conn, account_id).await?;
            diesel::update(accounts::table.find(account_id))
                .set((
                    accounts::password_hash.eq(password_hash),
                    accounts::updated_at.eq(diesel::dsl::now),
                ))
                .execute(conn)
                .await?;
            diesel::delete(refresh_tokens::table.filter(refresh_tokens::account_id.eq(account_id)))
                .execute(conn)
                .await?;
            Ok(account)
        })
        .await
    }

    /// The account's password hash.
    pub async fn password_hash(&self, account_id: Uuid) -> Result<Option<String>, Error> {
        let mut conn = self.conn().await?;
        Ok(accounts::table
            .find(account_id)
            .select(accounts::password_hash)
            .first(&mut conn)
            .await
            .optional()?)
    }

    /// The accounts with any of `ids` or `logins`, in login order.
    pub async fn lookup(&self, ids: &[Uuid], logins: &[String]) -> Result<Vec<Account>, Error> {
        let mut conn = self.conn().await?;
        let rows: Vec<AccountRow> = accounts::table
            .filter(
                accounts::account_id
                    .eq_any(ids)
                    .or(accounts::login.eq_any(logins)),
            )
            .order(accounts::login)
            .select(AccountRow::as_select())
            .load(&mut conn)
            .await?;
        rows.into_iter().map(Account::try_from).collect()
    }

    /// Up to `limit` accounts with logins after `after`, in login order.
    pub async fn list(&self, after: &str, limit: i64) -> Result<Vec<Account>, Error> {
        let mut conn = self.conn().await?;
        let rows: Vec<AccountRow> = accounts::table
            .filter(accounts::login.gt(after))
            .order(accounts::login)
            .limit(limit)
            .select(AccountRow::as_select())
            .load(&mut conn)
            .await?;
        rows.into_iter().map(Account::try_from).collect()
    }

    /// Stores a new refresh token's hash.
    pub async fn store_refresh(
        &self,
        account_id: Uuid,
        token_hash: &[u8],
        expires_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), Error> {
        let mut conn = self.conn().await?;
        insert_refresh(&mut conn, account_id, token_hash, expires_at).await
    }

    /// Spends the refresh token `token_hash`, storing `next_hash` in its place.
    pub async fn spend_refresh(
        &self,
        token_hash: &[u8],
        next_hash: &[u8],
        next_expires_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<Spent, Error> {
        let mut conn = self.conn().await?;
        conn.transaction::<_, Error, _>(async |conn| {
            // The account is locked before its token, in the order
            // `deactivate` locks them, so the two cannot deadlock.
            let owner: Option<Uuid> = refresh_tokens::table
                .find(token_hash)
                .select(refresh_tokens::account_id)
                .first(conn)
                .await
                .optional()?;
            let Some(owner) = owner else {
                return Ok(Spent::Unknown);
            };
            let account = Self::locked(conn, owner).await?;
            let (account_id, expires_at, revoked_at): (
                Uuid,
                chrono::DateTime<chrono::Utc>,
                Option<chrono::DateTime<chrono::Utc>>,
            ) = refresh_tokens::table
                .find(token_hash)
                .select((
                    refresh_tokens::account_id,
                    refresh_tokens::expires_at,
                    refresh_tokens::revoked_at,
                ))
                .for_update()
                .first(conn)
                .await?;
            if revoked_at.is_some() {
                revoke_all(conn, account_id).await?;
                return Ok(Spent::Reused);
            }
            if expires_at <= chrono::Utc::now() {
                return Ok(Spent::Expired);
            }
            diesel::update(refresh_tokens::table.find(token_hash))
                .set(refresh_tokens::revoked_at.eq(diesel::dsl::now))
                .execute(conn)
                .await?;
            if !account.active {
                return Ok(Spent::Inactive);
            }
            insert_refresh(conn, account_id, next_hash, next_expires_at).await?;
            Ok(Spent::Rotated(account))
        })
        .await
    }

    /// Signing keys kept by local runs, newest first.
    pub async fn signing_keys(&self) -> Result<Vec<String>, Error> {
        let mut conn = self.conn().await?;
        Ok(signing_keys::table
            .order(signing_keys::created_at.desc())
            .select(signing_keys::private_key_pem)
            .load(&mut conn)
            .await?)
    }

    /// Keeps a generated signing key.
    pub async fn keep_signing_key(&self, kid: &str, pem: &str) -> Result<(), Error> {
        let mut conn = self.conn().await?;
        diesel::insert_into(signing_keys::table)
            .values((
                signing_keys::kid.eq(kid),
                signing_keys::private_key_pem.eq(pem),
            ))
            .on_conflict_do_nothing()
            .execute(&mut conn)
            .await?;
        Ok(())
    }
}

async fn insert_refresh(
    conn: &mut AsyncPgConnection,
    account_id: Uuid,
    token_hash: &[u8],
    expires_at: chrono::DateTime<chrono::Utc>,
) -> Result<(), Error> {
    diesel::insert_into(refresh_tokens::table)
        .values((
            refresh_tokens::token_hash.eq(token_hash),
            refresh_tokens::account_id.eq(account_id),
            refresh_tokens::expires_at.eq(expires_at),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

async fn revoke_all(conn: &mut AsyncPgConnection, account_id: Uuid) -> Result<(), Error> {
    diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::account_id.eq(account_id))
            .filter(refresh_tokens::revoked_at.is_null()),
    )
    .set(refresh_tokens::revoked_at.eq(diesel::dsl::now))
    .execute(conn)
    .await?;
    Ok(())
}
