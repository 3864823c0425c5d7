//! Passwords through the API: `popug password` changes your own
//! (`ChangePassword`: the old one, then the new one; the session is renewed
//! and every other one ends), `popug accounts set-password` sets another
//! account's (`SetPassword`, admins).

use anyhow::{Context as _, bail};
use popug::client::connect;
use popug_proto::pb::popug::auth::v1::{self as auth, auth_service_client::AuthServiceClient};

use super::{accounts::print_account, answer_naming, names};
use crate::session::{self, Session};

/// The password given on the command line, or else asked for without echo.
pub(crate) fn password_or_prompt(
    password: Option<String>,
    prompt: String,
) -> anyhow::Result<String> {
    match password {
        Some(password) => Ok(password),
        None => rpassword::prompt_password(prompt).context("cannot read the password"),
    }
}

/// A new password from the command line, or asked for twice without echo.
pub(crate) fn new_password(given: Option<String>, whose: &str) -> anyhow::Result<String> {
    if let Some(password) = given {
        return Ok(password);
    }
    let first = rpassword::prompt_password(format!("new password for {whose}: "))
        .context("cannot read the password")?;
    let second =
        rpassword::prompt_password("the same again: ").context("cannot read the password")?;
    if first != second {
        bail!("the two passwords differ; nothing was changed");
    }
    Ok(first)
}

/// `popug password`: changes the signed-in account's password and keeps
/// this session (with its new tokens).
pub(crate) async fn change(
    json: bool,
    old: Option<String>,
    new: Option<String>,
) -> anyhow::Result<()> {
    let (mut session, bearer) = session::signed_in().await?;
    let old = password_or_prompt(old, format!("current password for {}: ", session.login))?;
    let new = new_password(new, &session.login)?;
    let mut client = AuthServiceClient::with_interceptor(connect(&session.auth_url).await?, bearer);
    let request = auth::ChangePasswordRequest {
        old_password: old,
        new_password: new,
    };
    let flags = [("old_password", "--old"), ("new_password", "--new")];
    let changed = answer_naming(client.change_password(request), &flags).await?;
    session = Session {
        access_token: changed.access_token,
        refresh_token: changed.refresh_token,
        expires_at: chrono::Utc::now().timestamp() + changed.expires_in,
        ..session
    };
    session.save()?;
    if !json {
        eprintln!("password changed; every other session of this account has ended");
    }
    print_account(json, changed.account);
    Ok(())
}

/// `popug accounts set-password`: an admin sets another account's password.
pub(crate) async fn set(json: bool, account: &str, password: Option<String>) -> anyhow::Result<()> {
    let (mut client, _) = session::auth_client().await?;
    let account_id = names::account_id(&mut client, account).await?;
    let password = new_password(password, account)?;
    let request = auth::SetPasswordRequest {
        account_id,
        password,
    };
    let account = answer_naming(client.set_password(request), &[("password", "--password")])
        .await?
        .account;
    if !json {
        eprintln!("password set; the account's sessions have ended");
    }
    print_account(json, account);
    Ok(())
}
