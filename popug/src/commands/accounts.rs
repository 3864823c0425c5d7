//! `popug accounts ...`: accounts through auth-svc's admin RPCs, and the
//! account row every command that answers with an account prints.

use clap::Subcommand;
use popug::client::{all_pages, answer};
use popug_proto::pb::popug::auth::v1 as auth;
use serde_json::{Value, json};

use super::{answer_naming, names};
use crate::{output, session};

#[derive(Subcommand)]
pub(crate) enum AccountsCommand {
    /// Creates an account.
    Create {
        /// Login (3 to 32 of a-z, 0-9, `.`, `_`, `-`).
        #[arg(long)]
        login: String,
        /// Password (8 to 128 characters).
        #[arg(long)]
        password: String,
        /// Display name.
        #[arg(long)]
        name: String,
        /// Email address.
        #[arg(long)]
        email: String,
        /// worker, manager, accountant or admin.
        #[arg(long, default_value = "worker")]
        role: String,
    },
    /// Lists every account.
    List,
    /// Changes an account's name or email.
    Update {
        /// The account's login or id.
        account: String,
        /// New display name.
        #[arg(long)]
        name: Option<String>,
        /// New email address.
        #[arg(long)]
        email: Option<String>,
    },
    /// Gives an account a new role.
    Role {
        /// The account's login or id.
        account: String,
        /// worker, manager, accountant or admin.
        role: String,
    },
    /// Deactivates an account.
    Deactivate {
        /// The account's login or id.
        account: String,
    },
    /// Sets another account's password and ends its sessions.
    SetPassword {
        /// The account's login or id.
        account: String,
        /// The new password, 8 to 128 characters (asked for twice when not given).
        #[arg(long, env = "POPUG_NEW_PASSWORD", hide_env_values = true)]
        password: Option<String>,
    },
}

/// The columns of an account's row.
pub(crate) const ACCOUNT_COLUMNS: &[&str] =
    &["account_id", "login", "name", "email", "role", "active"];

/// How `accounts create` and `signup` name the account fields.
pub(crate) const ACCOUNT_FLAGS: &[(&str, &str)] = &[
    ("login", "--login"),
    ("password", "--password"),
    ("name", "--name"),
    ("email", "--email"),
    ("role", "--role"),
];

/// An account as a row of [`ACCOUNT_COLUMNS`] (and its creation time).
pub(crate) fn account_row(account: &auth::Account) -> Value {
    let role = auth::Role::try_from(account.role).unwrap_or(auth::Role::Unspecified);
    json!({
        "account_id": account.account_id,
        "login": account.login,
        "name": account.name,
        "email": account.email,
        "role": role.as_str_name().trim_start_matches("ROLE_").to_lowercase(),
        "active": account.active,
        "created_at": output::time(account.created_at.as_ref()),
    })
}

/// Prints the one account a command answered with.
pub(crate) fn print_account(json: bool, account: Option<auth::Account>) {
    output::print(
        json,
        ACCOUNT_COLUMNS,
        &[account_row(&account.unwrap_or_default())],
    );
}

fn role(value: &str) -> anyhow::Result<i32> {
    auth::Role::from_str_name(&format!("ROLE_{}", value.to_uppercase()))
        .filter(|role| *role != auth::Role::Unspecified)
        .map(Into::into)
        .ok_or_else(|| {
            anyhow::anyhow!("`{value}` is not a role: worker, manager, accountant or admin")
        })
}

/// Runs one `popug accounts` command.
pub(crate) async fn run(json: bool, command: AccountsCommand) -> anyhow::Result<()> {
    let (mut client, _) = session::auth_client().await?;
    let account = match command {
        AccountsCommand::Create {
            login,
            password,
            name,
            email,
            role: wanted,
        } => {
            let request = auth::CreateAccountRequest {
                login,
                password,
                name,
                email,
                role: role(&wanted)?,
            };
            answer_naming(client.create_account(request), ACCOUNT_FLAGS)
                .await?
                .account
        }
        AccountsCommand::Update {
            account,
            name,
            email,
        } => {
            let account_id = names::account_id(&mut client, &account).await?;
            let request = auth::UpdateAccountRequest {
                account_id,
                name,
                email,
            };
            let flags = [("name", "--name"), ("email", "--email")];
            answer_naming(client.update_account(request), &flags)
                .await?
                .account
        }
        AccountsCommand::Role {
            account,
            role: wanted,
        } => {
            let account_id = names::account_id(&mut client, &account).await?;
            let request = auth::ChangeRoleRequest {
                account_id,
                role: role(&wanted)?,
            };
            answer(client.change_role(request)).await?.account
        }
        AccountsCommand::SetPassword { account, password } => {
            return super::password::set(json, &account, password).await;
        }
        AccountsCommand::Deactivate { account } => {
            let account_id = names::account_id(&mut client, &account).await?;
            let request = auth::DeactivateAccountRequest { account_id };
            answer(client.deactivate_account(request)).await?.account
        }
        AccountsCommand::List => {
            let rows = all_pages(|page_token| {
                let mut client = client.clone();
                async move {
                    let request = auth::ListAccountsRequest {
                        page_size: 1000,
                        page_token,
                    };
                    let page = answer(client.list_accounts(request)).await?;
                    Ok((
                        page.accounts.iter().map(account_row).collect(),
                        page.next_page_token,
                    ))
                }
            })
            .await?;
            output::print_list(json, ACCOUNT_COLUMNS, rows);
            return Ok(());
        }
    };
    print_account(json, account);
    Ok(())
}
