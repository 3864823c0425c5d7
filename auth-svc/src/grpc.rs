//! `popug.auth.v1.AuthService`: converts requests into domain values, calls
//! the store, converts back. Who may call what is stated at the top of each
//! method.

use std::sync::Arc;

use base64::Engine as _;
use popug_proto::pb::popug::auth::v1::{self as pb, auth_service_server::AuthService};
use popug_runtime::paging::{self, Page};
use popug_token::{Role, Standings, check_role, require_signed_in};
use rand::RngCore as _;
use sha2::Digest as _;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::{
    config::AuthSettings,
    domain::{Account, Credentials, Email, Name, NewAccount, Password, password},
    error::Error,
    guard::Guard,
    keys::KeyRing,
    store::{Spent, Store},
};

/// The AuthService implementation.
#[derive(Clone)]
pub struct AuthApi {
    store: Store,
    keys: Arc<KeyRing>,
    settings: Arc<AuthSettings>,
    guard: Guard,
    /// The callers' standing the auth layer judges by; cleared for an
    /// account when it changes here.
    standings: Standings,
}

fn account_message(account: &Account) -> pb::Account {
    pb::Account {
        account_id: account.account_id.to_string(),
        login: account.login.clone(),
        name: account.name.clone(),
        email: account.email.clone(),
        role: pb::Role::from(account.role).into(),
        active: account.active,
        created_at: Some(popug_bus::envelope::timestamp(account.created_at)),
    }
}

fn account_id(field: &'static str, value: &str) -> Result<Uuid, Error> {
    Uuid::try_parse(value)
        .map_err(|_| Error::invalid(field, format!("`{value}` is not an account id")))
}

fn role(field: &'static str, value: i32) -> Result<Role, Error> {
    let proto = pb::Role::try_from(value)
        .map_err(|_| Error::invalid(field, format!("{value} is not a role")))?;
    Role::try_from(proto).map_err(|reason| Error::invalid(field, reason))
}

fn unix_now() -> u64 {
    u64::try_from(chrono::Utc::now().timestamp()).unwrap_or(0)
}

/// A refresh token and the hash that is stored in its place.
fn new_refresh_token() -> (String, Vec<u8>) {
    let mut bytes = [0_u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let hash = refresh_hash(&token);
    (token, hash)
}

fn refresh_hash(token: &str) -> Vec<u8> {
    sha2::Sha256::digest(token.as_bytes()).to_vec()
}

struct Session {
    access_token: String,
    refresh_token: String,
    expires_in: i64,
}

impl AuthApi {
    /// The API over `store`, signing with `keys`.
    pub fn new(
        store: Store,
        keys: Arc<KeyRing>,
        settings: Arc<AuthSettings>,
        standings: Standings,
    ) -> Self {
        let guard = Guard::new(settings.hash_concurrency, settings.hash_queue);
        Self {
            store,
            keys,
            settings,
            guard,
            standings,
        }
    }

    fn access_token(&self, account: &Account) -> (String, i64) {
        let ttl = self.settings.access_token_ttl;
        let token = self
            .keys
            .current()
            .sign(account.account_id, account.role, unix_now(), ttl);
        (token, i64::try_from(ttl).unwrap_or(i64::MAX))
    }

    fn refresh_expiry(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now()
            + chrono::Duration::seconds(
                i64::try_from(self.settings.refresh_token_ttl).unwrap_or(i64::MAX),
            )
    }

    async fn open_session(&self, account: &Account) -> Result<Session, Error> {
        let (refresh_token, hash) = new_refresh_token();
        self.store
            .store_refresh(account.account_id, &hash, self.refresh_expiry())
            .await?;
        let (access_token, expires_in) = self.access_token(account);
        Ok(Session {
            access_token,
            refresh_token,
            expires_in,
        })
    }

    /// The caller's account, which must still exist and be active, with one
    /// of `roles` as it stands in the database now: a deactivated or demoted
    /// account loses its rights here at once, whatever its token still says.
    async fn caller<T>(&self, request: &Request<T>, roles: &[Role]) -> Result<Account, Status> {
        let claims = require_signed_in(request)?;
        let account = match self.store.account(claims.account_id).await? {
            Some(account) if account.active => account,
            _ => return Err(Error::CallerGone.into()),
        };
        check_role(account.role, roles)?;
        Ok(account)
    }

    async fn create(&self, new: NewAccount) -> Result<Account, Status> {
        let password = new.password.clone();
        let hash = self
            .guard
            .hashing(move || password::hash(&password))
            .await?;
        let account = self.store.create_account(&new, &hash).await?;
        tracing::info!(account_id = %account.account_id, login = %account.login, role = %account.role, "account created");
        Ok(account)
    }
}

#[tonic::async_trait]
impl AuthService for AuthApi {
    async fn sign_up(
        &self,
        request: Request<pb::SignUpRequest>,
    ) -> Result<Response<pb::SignUpResponse>, Status> {
        if !self.settings.signup_enabled {
            return Err(Error::SignUpDisabled.into());
        }
        let request = request.into_inner();
        let new = NewAccount::parse(
            &request.login,
            &request.password,
            &request.name,
            &request.email,
            Role::Worker,
        )?;
        let account = self.create(new).await?;
        Ok(Response::new(pb::SignUpResponse {
            account: Some(account_message(&account)),
        }))
    }

    async fn login(
        &self,
        request: Request<pb::LoginRequest>,
    ) -> Result<Response<pb::LoginResponse>, Status> {
        let client = request.remote_addr().map(|addr| addr.ip());
        let request = request.into_inner();
        let Credentials {
            login,
            password: given,
        } = Credentials::parse(&request.login, &request.password)?;
        self.guard.admit(&login, client).await?;
        // A place to hash first: a caller refused for a full queue costs no
        // database read.
        let permit = self.guard.hash_permit().await?;
        // Failures while this call waited may have locked the login since.
        let permit = self.guard.admit_holding(&login, client, permit).await?;
        let found = self.store.credentials(&login).await?;
        // Unknown logins cost a hash check too, so timing does not tell them apart.
        let hash = found.as_ref().map_or_else(
            || password::dummy_hash().to_owned(),
            |(_, hash)| hash.clone(),
        );
        let matches = self
            .guard
            .run(permit, move || password::verify(&hash, &given))
            .await?;
        self.guard.record(&login, client, matches);
        let account = match found {
            Some((account, _)) if matches => account,
            _ => return Err(Error::WrongCredentials.into()),
        };
        if !account.active {
            return Err(Error::Deactivated.into());
        }
        let session = self.open_session(&account).await?;
        Ok(Response::new(pb::LoginResponse {
            access_token: session.access_token,
            refresh_token: session.refresh_token,
            expires_in: session.expires_in,
            account: Some(account_message(&account)),
        }))
    }

    async fn refresh(
        &self,
        request: Request<pb::RefreshRequest>,
    ) -> Result<Response<pb::RefreshResponse>, Status> {
        let token = request.into_inner().refresh_token;
        if token.is_empty() {
            return Err(Error::invalid("refresh_token", "must not be empty").into());
        }
        popug_input::text::single_line("refresh_token", &token).map_err(Error::from)?;
        let (next_token, next_hash) = new_refresh_token();
        let account = match self
            .store
            .spend_refresh(&refresh_hash(&token), &next_hash, self.refresh_expiry())
            .await?
        {
            Spent::Rotated(account) => account,
            Spent::Unknown => return Err(Error::UnknownRefreshToken.into()),
            Spent::Expired => return Err(Error::RefreshTokenExpired.into()),
            Spent::Inactive => return Err(Error::Deactivated.into()),
            Spent::Reused => {
                tracing::warn!(
                    "a spent refresh token was presented again; every session of its account is revoked"
                );
                return Err(Error::RefreshTokenReused.into());
            }
        };
        let (access_token, expires_in) = self.access_token(&account);
        Ok(Response::new(pb::RefreshResponse {
            access_token,
            refresh_token: next_token,
            expires_in,
            account: Some(account_message(&account)),
        }))
    }

    async fn who_am_i(
        &self,
        request: Request<pb::WhoAmIRequest>,
    ) -> Result<Response<pb::WhoAmIResponse>, Status> {
        let account = self.caller(&request, &Role::ALL).await?;
        Ok(Response::new(pb::WhoAmIResponse {
            account: Some(account_message(&account)),
        }))
    }

    async fn create_account(
        &self,
        request: Request<pb::CreateAccountRequest>,
    ) -> Result<Response<pb::CreateAccountResponse>, Status> {
        self.caller(&request, &[Role::Admin]).await?;
        let request = request.into_inner();
        let role = role("role", request.role)?;
        let new = NewAccount::parse(
            &request.login,
            &request.password,
            &request.name,
            &request.email,
            role,
        )?;
        let account = self.create(new).await?;
        Ok(Response::new(pb::CreateAccountResponse {
            account: Some(account_message(&account)),
        }))
    }

    async fn update_account(
        &self,
        request: Request<pb::UpdateAccountRequest>,
    ) -> Result<Response<pb::UpdateAccountResponse>, Status> {
        self.caller(&request, &[Role::Admin]).await?;
        let request = request.into_inner();
        let target = account_id("account_id", &request.account_id)?;
        let name = request
            .name
            .as_deref()
            .map(|name| Name::parse("name", name))
            .transpose()?;
        let email = request
            .email
            .as_deref()
            .map(|email| Email::parse("email", email))
            .transpose()?;
        if name.is_none() && email.is_none() {
            return Err(
                Error::invalid("name", "give `name` or `email` (or both) to change").into(),
            );
        }
        let account = self
            .store
            .update_profile(target, name.as_ref(), email.as_ref())
            .await?;
        Ok(Response::new(pb::UpdateAccountResponse {
            account: Some(account_message(&account)),
        }))
    }

    async fn change_role(
        &self,
        request: Request<pb::ChangeRoleRequest>,
    ) -> Result<Response<pb::ChangeRoleResponse>, Status> {
        let caller = self.caller(&request, &[Role::Admin]).await?;
        let request = request.into_inner();
        let target = account_id("account_id", &request.account_id)?;
        let role = role("role", request.role)?;
        if target == caller.account_id {
            return Err(Error::OwnRole.into());
        }
        let account = self.store.change_role(target, role).await?;
        self.standings.forget(target);
        Ok(Response::new(pb::ChangeRoleResponse {
            account: Some(account_message(&account)),
        }))
    }

    async fn deactivate_account(
        &self,
        request: Request<pb::DeactivateAccountRequest>,
    ) -> Result<Response<pb::DeactivateAccountResponse>, Status> {
        let caller = self.caller(&request, &[Role::Admin]).await?;
        let target = account_id("account_id", &request.into_inner().account_id)?;
        if target == caller.account_id {
            return Err(Error::OwnDeactivation.into());
        }
        let account = self.store.deactivate(target).await?;
        self.standings.forget(target);
        Ok(Response::new(pb::DeactivateAccountResponse {
            account: Some(account_message(&account)),
        }))
    }

    async fn list_accounts(
        &self,
        request: Request<pb::ListAccountsRequest>,
    ) -> Result<Response<pb::ListAccountsResponse>, Status> {
        self.caller(&request, &[Role::Admin]).await?;
        let request = request.into_inner();
        let Page { size, after } = paging::page::<String>(request.page_size, &request.page_token)?;
        let accounts = self
            .store
            .list(after.as_deref().unwrap_or_default(), size)
            .await?;
        let next_page_token = paging::next_token(&accounts, size, |account| account.login.clone());
        Ok(Response::new(pb::ListAccountsResponse {
            accounts: accounts.iter().map(account_message).collect(),
            next_page_token,
        }))
    }

    async fn change_password(
        &self,
        request: Request<pb::ChangePasswordRequest>,
    ) -> Result<Response<pb::ChangePasswordResponse>, Status> {
        let account = self.caller(&request, &Role::ALL).await?;
        let client = request.remote_addr().map(|addr| addr.ip());
        let request = request.into_inner();
        popug_input::text::single_line("old_password", &request.old_password)
            .map_err(Error::from)?;
        let new = Password::parse("new_password", &request.new_password)?;
        // Checking the old password is a sign-in attempt: it is throttled
        // and counted like one, so a stolen token cannot guess it.
        self.guard.admit(&account.login, client).await?;
        let hash = self
            .store
            .password_hash(account.account_id)
            .await?
            .ok_or(Error::CallerGone)?;
        let old = request.old_password;
        let permit = self.guard.hash_permit().await?;
        let matches = self
            .guard
            .run(permit, move || password::verify(&hash, &old))
            .await?;
        self.guard.record(&account.login, client, matches);
        if !matches {
            return Err(Error::invalid("old_password", "is not the current password").into());
        }
        let hash = self.guard.hashing(move || password::hash(&new)).await?;
        let account = self.store.set_password(account.account_id, &hash).await?;
        tracing::info!(account_id = %account.account_id, login = %account.login, "password changed; other sessions ended");
        let session = self.open_session(&account).await?;
        Ok(Response::new(pb::ChangePasswordResponse {
            access_token: session.access_token,
            refresh_token: session.refresh_token,
            expires_in: session.expires_in,
            account: Some(account_message(&account)),
        }))
    }

    async fn set_password(
        &self,
        request: Request<pb::SetPasswordRequest>,
    ) -> Result<Response<pb::SetPasswordResponse>, Status> {
        let caller = self.caller(&request, &[Role::Admin]).await?;
        let request = request.into_inner();
        let target = account_id("account_id", &request.account_id)?;
        let password = Password::parse("password", &request.password)?;
        if target == caller.account_id {
            return Err(Error::OwnPassword.into());
        }
        if self.store.account(target).await?.is_none() {
            return Err(Error::NoSuchAccount(target).into());
        }
        let hash = self
            .guard
            .hashing(move || password::hash(&password))
            .await?;
        let account = self.store.set_password(target, &hash).await?;
        tracing::info!(account_id = %account.account_id, login = %account.login, by = %caller.login, "password set by an admin; sessions ended");
        Ok(Response::new(pb::SetPasswordResponse {
            account: Some(account_message(&account)),
        }))
    }

    async fn lookup_accounts(
        &self,
        request: Request<pb::LookupAccountsRequest>,
    ) -> Result<Response<pb::LookupAccountsResponse>, Status> {
        self.caller(&request, &Role::ALL).await?;
        let request = request.into_inner();
        if request.account_ids.len() + request.logins.len() > 1000 {
            return Err(Error::invalid("logins", "at most 1000 ids and logins in all").into());
        }
        let ids = request
            .account_ids
            .iter()
            .map(|id| account_id("account_ids", id))
            .collect::<Result<Vec<_>, _>>()?;
        let logins = request
            .logins
            .iter()
            .map(|login| {
                popug_input::text::single_line("logins", login)?;
                Ok(login.trim().to_lowercase())
            })
            .collect::<Result<Vec<_>, Error>>()?;
        let accounts = self.store.lookup(&ids, &logins).await?;
        Ok(Response::new(pb::LookupAccountsResponse {
            accounts: accounts
                .iter()
                .map(|account| pb::DirectoryEntry {
                    account_id: account.account_id.to_string(),
                    login: account.login.clone(),
                    name: account.name.clone(),
                    role: pb::Role::from(account.role).into(),
                    active: account.active,
                })
                .collect(),
        }))
    }

    async fn get_jwks(
        &self,
        _request: Request<pb::GetJwksRequest>,
    ) -> Result<Response<pb::GetJwksResponse>, Status> {
        Ok(Response::new(pb::GetJwksResponse {
            keys: self.keys.jwks(),
        }))
    }
}
