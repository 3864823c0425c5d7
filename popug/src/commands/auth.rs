//! Signing in and out against auth-svc: `popug login` (saves the session),
//! `signup`, `logout`, `keys` (the public keys tokens are verified with) and
//! `whoami`.

use clap::Args;
use popug::client::{answer, connect};
use popug_proto::pb::popug::auth::v1::{self as auth, auth_service_client::AuthServiceClient};
use serde_json::{Value, json};

use super::{
    accounts::{ACCOUNT_FLAGS, print_account},
    answer_naming,
    password::password_or_prompt,
};
use crate::{
    config, output,
    session::{self, Session},
};

/// The options of `popug login`.
#[derive(Args)]
pub(crate) struct Login {
    /// Your login.
    #[arg(long)]
    login: String,
    /// Your password (asked for when not given).
    #[arg(long, env = "POPUG_PASSWORD", hide_env_values = true)]
    password: Option<String>,
}

/// The options of `popug signup`.
#[derive(Args)]
pub(crate) struct Signup {
    /// Login (3 to 32 of a-z, 0-9, `.`, `_`, `-`).
    #[arg(long)]
    login: String,
    /// Password (asked for when not given).
    #[arg(long, env = "POPUG_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    /// Display name.
    #[arg(long)]
    name: String,
    /// Email address.
    #[arg(long)]
    email: String,
}

/// `popug login`: signs in and saves the session.
pub(crate) async fn login(json: bool, Login { login, password }: Login) -> anyhow::Result<()> {
    let auth_url = config::endpoints().auth.clone();
    let password = password_or_prompt(password, format!("password for {login}: "))?;
    let request = auth::LoginRequest {
        login: login.clone(),
        password,
    };
    let response = answer(AuthServiceClient::new(connect(&auth_url).await?).login(request)).await?;
    let account = response.account.clone().unwrap_or_default();
    Session {
        auth_url,
        login: account.login.clone(),
        access_token: response.access_token,
        refresh_token: response.refresh_token,
        expires_at: chrono::Utc::now().timestamp() + response.expires_in,
    }
    .save()?;
    print_account(json, Some(account));
    Ok(())
}

/// `popug signup`: creates a worker account for oneself.
pub(crate) async fn signup(json: bool, signup: Signup) -> anyhow::Result<()> {
    let Signup {
        login,
        password,
        name,
        email,
    } = signup;
    let password = password_or_prompt(password, format!("new password for {login}: "))?;
    let request = auth::SignUpRequest {
        login,
        password,
        name,
        email,
    };
    let mut client = AuthServiceClient::new(connect(&config::endpoints().auth).await?);
    let account = answer_naming(client.sign_up(request), ACCOUNT_FLAGS)
        .await?
        .account;
    print_account(json, account);
    Ok(())
}

/// `popug keys`: the public keys tokens are verified with.
pub(crate) async fn keys(json: bool) -> anyhow::Result<()> {
    let mut client = AuthServiceClient::new(connect(&config::endpoints().auth).await?);
    let keys = answer(client.get_jwks(auth::GetJwksRequest {})).await?.keys;
    let rows: Vec<Value> = keys
        .iter()
        .map(|key| json!({ "kid": key.kid, "alg": key.alg, "crv": key.crv, "x": key.x }))
        .collect();
    output::print_list(json, &["kid", "alg", "crv", "x"], rows);
    Ok(())
}

/// `popug whoami`: the signed-in account.
pub(crate) async fn whoami(json: bool) -> anyhow::Result<()> {
    let (mut client, _) = session::auth_client().await?;
    let account = answer(client.who_am_i(auth::WhoAmIRequest {}))
        .await?
        .account;
    print_account(json, account);
    Ok(())
}
