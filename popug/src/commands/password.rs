//! Passwords through the API: `popug password` changes your own
//! (`ChangePassword`: the old one, then the new one; the session is renewed
//! and every other one ends), `popug accounts set-password` sets another
//! account's (`SetPassword`, admins).

use anyhow::{Context as _, bail};
use popug::client::connect;
use popug_proto::pb::popug::auth::v1::{self as auth, auth_service_client::AuthServiceClient};

use crate::{ACCOUNT_COLUMNS, account_row, output, session::Session};

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
    let (mut session, bearer) = crate::signed_in().await?;
    let old = crate::password_or_prompt(old, format!("current password for {}: ", session.login))?;
    let new = new_password(new, &session.login)?;
    let changed = AuthServiceClient::with_interceptor(connect(&session.auth_url).await?, bearer)
        .change_password(auth::ChangePasswordRequest {
            old_password: old,
            new_password: new,
        })
        .await
        .map_err(|status| {
            crate::flag_error(
                status,
                &[("old_password", "--old"), ("new_password", "--new")],
            )
        })?
        .into_inner();
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
    output::print(
        json,
        ACCOUNT_COLUMNS,
        &[account_row(&changed.account.unwrap_or_default())],
    );
    Ok(())
}

/// `popug accounts set-password`: an admin sets another account's password.
pub(crate) async fn set(json: bool, account: &str, password: Option<String>) -> anyhow::Result<()> {
    let (mut client, _) = crate::auth_client().await?;
    let account_id = crate::commands::names::account_id(&mut client, account).await?;
    let password = new_password(password, account)?;
    let account = client
        .set_password(auth::SetPasswordRequest {
            account_id,
            password,
        })
        .await
        .map_err(|status| crate::flag_error(status, &[("password", "--password")]))?
        .into_inner()
        .account;
    if !json {
        eprintln!("password set; the account's sessions have ended");
    }
    output::print(
        json,
        ACCOUNT_COLUMNS,
        &[account_row(&account.unwrap_or_default())],
    );
    Ok(())
}
