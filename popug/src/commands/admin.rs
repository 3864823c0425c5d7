//! `popug admin reset-password`: for the operator of a local installation
//! who lost the admin's password. No service is called and no sign-in is
//! needed: the password is set straight in the auth database that the local
//! settings name (`POPUG_AUTH_DATABASE_URL`, else `popug_auth` on
//! `POPUG_POSTGRES_URL`), which the command says before it does anything.

use anyhow::Context as _;
use rand::Rng as _;
use serde_json::json;

use crate::output;

#[derive(clap::Subcommand)]
pub(crate) enum AdminCommand {
    /// Sets an account's password (the first admin's by default) straight in
    /// the auth database the local settings name (POPUG_AUTH_DATABASE_URL,
    /// else popug_auth on POPUG_POSTGRES_URL), for an operator who lost it.
    /// Ends the account's sessions.
    ResetPassword {
        /// The account's login (default: POPUG_ADMIN_LOGIN, else admin).
        #[arg(long)]
        login: Option<String>,
        /// The new password, 8 to 128 characters (default: a generated one,
        /// printed once).
        #[arg(long, env = "POPUG_NEW_PASSWORD", hide_env_values = true)]
        password: Option<String>,
    },
}

/// Runs one `popug admin` command.
pub(crate) async fn run(json: bool, command: AdminCommand) -> anyhow::Result<()> {
    match command {
        AdminCommand::ResetPassword { login, password } => {
            reset_password(json, login, password).await
        }
    }
}

/// Sets `login`'s password (`password`, or a generated one, printed once).
async fn reset_password(
    json: bool,
    login: Option<String>,
    password: Option<String>,
) -> anyhow::Result<()> {
    let settings = auth_svc::AuthSettings::load(&popug_runtime::Env::process())?;
    let login = login.unwrap_or_else(|| settings.admin_login.as_str().to_owned());
    let database = auth_svc::recovery::database_shown(&settings);
    eprintln!(
        "Resetting the password of `{login}` directly in the auth database {database}\n\
         (named by the local settings POPUG_AUTH_DATABASE_URL / POPUG_POSTGRES_URL; no service is called)."
    );
    let (password, generated) = match password {
        Some(password) => (password, false),
        None => (
            rand::thread_rng()
                .sample_iter(&rand::distributions::Alphanumeric)
                .take(20)
                .map(char::from)
                .collect(),
            true,
        ),
    };
    let parsed = auth_svc::domain::Password::parse("--password", &password)
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    let account = auth_svc::recovery::reset_password(&settings, &login, &parsed)
        .await
        .with_context(|| format!("cannot reset the password of `{login}`"))?;
    let row = json!({
        "login": account.login,
        "account_id": account.account_id.to_string(),
        "database": database,
        "password": if generated { Some(password.as_str()) } else { None },
    });
    if json {
        output::print(true, &[], &[row]);
    } else {
        #[allow(clippy::print_stdout)] // the new password is this command's output
        {
            if generated {
                println!(
                    "The password of `{}` is now `{password}` (shown once). Its sessions have ended; sign in again: popug login --login {}",
                    account.login, account.login
                );
            } else {
                println!(
                    "The password of `{}` is set. Its sessions have ended; sign in again: popug login --login {}",
                    account.login, account.login
                );
            }
        }
    }
    Ok(())
}
