//! `popug`: runs the system locally (`popug up`) and calls every RPC through
//! the generated client stubs, signing in once (`popug login`).

mod commands;
mod config;
mod dead_letters;
mod output;
mod session;

use std::{collections::HashMap, process::ExitCode, time::Duration};

use anyhow::{Context as _, anyhow, bail};
use clap::{Parser, Subcommand};
use popug::{
    client::{
        Authorized, Bearer, Channels, all_pages, connect, ledger_entries, rpc_error, task_history,
    },
    mesh::{Mesh, MeshSettings, preflight},
};
use popug_proto::pb::popug::{
    analytics::v1::{self as analytics, analytics_service_client::AnalyticsServiceClient},
    auth::v1::{self as auth, auth_service_client::AuthServiceClient},
    billing::v1::{self as billing, billing_service_client::BillingServiceClient},
    ops::v1::{self as ops, ops_service_client::OpsServiceClient},
    tracker::v1::{self as tracker, tracker_service_client::TrackerServiceClient},
};
use popug_runtime::Service;
use serde_json::{Value, json};
use session::Session;

#[derive(Parser)]
#[command(
    name = "popug",
    version,
    about = "The popug task exchange: run it, and use it from the command line",
    after_help = config::HELP
)]
struct Cli {
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(flatten)]
    urls: config::UrlFlags,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs every popug service in this process on the local defaults.
    Up,
    /// Signs in and saves the session for later commands.
    Login {
        /// Your login.
        #[arg(long)]
        login: String,
        /// Your password (asked for when not given).
        #[arg(long, env = "POPUG_PASSWORD", hide_env_values = true)]
        password: Option<String>,
    },
    /// Creates a worker account for yourself (when sign-up is enabled).
    Signup {
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
    },
    /// Forgets the saved session.
    Logout,
    /// The public keys tokens are verified with.
    Keys,
    /// Shows the signed-in account.
    Whoami,
    /// Changes your own password (asks for the current and the new one);
    /// this session goes on, every other one ends.
    Password {
        /// Your current password (asked for when not given).
        #[arg(long, env = "POPUG_PASSWORD", hide_env_values = true)]
        old: Option<String>,
        /// The new password, 8 to 128 characters (asked for twice when not given).
        #[arg(long, env = "POPUG_NEW_PASSWORD", hide_env_values = true)]
        new: Option<String>,
    },
    /// Local operator tools that work on the databases directly, with no
    /// service running and no sign-in.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Each service's health, version, outbox, dead letters and queued
    /// events; who is signed in; the web app's address.
    Status,
    /// Drops the local databases and the namespace's queues and exchange
    /// (after asking; refuses while a service answers). For starting over.
    Reset {
        /// Do not ask.
        #[arg(long)]
        yes: bool,
    },
    /// Prints a shell completion script, e.g. `popug completions bash >
    /// ~/.local/share/bash-completion/completions/popug`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Watches the events on the exchange (the local broker settings:
    /// POPUG_AMQP_URL, POPUG_NAMESPACE).
    #[command(subcommand)]
    Events(EventsCommand),
    /// Manages accounts (admin).
    #[command(subcommand)]
    Accounts(AccountsCommand),
    /// Creates, lists, completes and shuffles tasks.
    #[command(subcommand)]
    Tasks(TasksCommand),
    /// Balances, audit logs, management's earnings, day close.
    #[command(subcommand)]
    Billing(BillingCommand),
    /// Admin dashboards.
    #[command(subcommand)]
    Analytics(AnalyticsCommand),
    /// Looks at a service's event flow (admin).
    #[command(subcommand)]
    Ops(OpsCommand),
    /// Checks the books across every service; exits non-zero on any
    /// discrepancy (admin).
    Audit {
        /// How long to wait for events still flowing, in seconds.
        #[arg(long, default_value_t = 30)]
        wait: u64,
    },
    /// Plays whole working days of a popug company on a private mesh (fresh
    /// databases, a simulated clock), closes each day and audits the books.
    Simulate {
        /// People besides the admin (a tenth managers, a twentieth accountants, the rest workers).
        #[arg(long, default_value_t = 20)]
        popugs: usize,
        /// Tasks created per day.
        #[arg(long, default_value_t = 50)]
        tasks: usize,
        /// Working days.
        #[arg(long, default_value_t = 3)]
        days: usize,
        /// Seeds every choice: the same seed plays the same company.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Requests in flight at once.
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        /// Keep the simulation's databases afterwards.
        #[arg(long)]
        keep: bool,
    },
}

#[derive(Subcommand)]
enum EventsCommand {
    /// Prints each event as it is published: time, routing key, producer and
    /// payload as JSON (with --json, one JSON object per line).
    Tail {
        /// Only routing keys matching this glob, where `*` matches anything
        /// (`task.*`, `*.created.*`); may be given more than once.
        #[arg(long)]
        filter: Vec<String>,
        /// Stop after this many events.
        #[arg(long)]
        count: Option<u64>,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
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

#[derive(Subcommand)]
enum AccountsCommand {
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

#[derive(Subcommand)]
enum TasksCommand {
    /// Creates a task; it goes to a random active worker.
    Create {
        /// Title (no `[` or `]`: the jira id has its own option).
        #[arg(long)]
        title: String,
        /// Jira id such as UBERPOP-42.
        #[arg(long, default_value = "", hide_default_value = true)]
        jira_id: String,
        /// Free text.
        #[arg(long, default_value = "", hide_default_value = true)]
        description: String,
    },
    /// Your tasks.
    Mine {
        /// open or done (default: both).
        #[arg(long)]
        status: Option<String>,
    },
    /// Every task (manager, admin).
    List {
        /// open or done (default: both).
        #[arg(long)]
        status: Option<String>,
    },
    /// One task.
    Get {
        /// The task's key (POPUG-12) or id.
        task: String,
    },
    /// Marks one of your tasks done.
    Complete {
        /// The task's key (POPUG-12) or id.
        task: String,
    },
    /// Reassigns every open task to a random worker (manager, admin).
    Shuffle,
    /// Every assignment and completion, with its event id (admin).
    History,
}

#[derive(Subcommand)]
enum BillingCommand {
    /// Your balance and a day's audit log.
    Me {
        /// YYYY-MM-DD (default: today).
        #[arg(long, default_value = "", hide_default_value = true)]
        date: String,
    },
    /// Any popug's balance and a day's audit log (accountant, admin).
    Account {
        /// The account's login or id.
        account: String,
        /// YYYY-MM-DD (default: today).
        #[arg(long, default_value = "", hide_default_value = true)]
        date: String,
    },
    /// Fees charged minus rewards paid, day by day (accountant, admin).
    Earnings {
        /// First day, YYYY-MM-DD (default: today).
        #[arg(long, default_value = "", hide_default_value = true)]
        from: String,
        /// Last day, YYYY-MM-DD (default: today).
        #[arg(long, default_value = "", hide_default_value = true)]
        to: String,
    },
    /// Closes a day: pays out positive balances (admin).
    CloseDay {
        /// YYYY-MM-DD (default: yesterday).
        #[arg(long, default_value = "", hide_default_value = true)]
        date: String,
    },
    /// Every entry of every account (accountant, admin).
    Entries,
    /// Checks the ledger's invariants (accountant, admin).
    Check,
    /// A popug's statement: opening balance, every entry with the balance
    /// after it, closing balance (yours; any popug's for accountants, admins).
    Statement {
        /// The account's login or id (default: yours).
        #[arg(long, default_value = "", hide_default_value = true)]
        account: String,
        /// First day, YYYY-MM-DD (default: today).
        #[arg(long, default_value = "", hide_default_value = true)]
        from: String,
        /// Last day, YYYY-MM-DD (default: today).
        #[arg(long, default_value = "", hide_default_value = true)]
        to: String,
        /// Prints CSV (one line per entry) instead of a table.
        #[arg(long, conflicts_with = "json")]
        csv: bool,
    },
    /// The company's books per day: revenue, expense, payouts, net
    /// (accountant, admin).
    Income {
        /// First day, YYYY-MM-DD (default: today).
        #[arg(long, default_value = "", hide_default_value = true)]
        from: String,
        /// Last day, YYYY-MM-DD (default: today).
        #[arg(long, default_value = "", hide_default_value = true)]
        to: String,
    },
}

#[derive(Subcommand)]
enum AnalyticsCommand {
    /// A day's management earnings and popugs in the red.
    Dashboard {
        /// YYYY-MM-DD (default: today).
        #[arg(long, default_value = "", hide_default_value = true)]
        date: String,
    },
    /// The completed task with the highest reward.
    TopTask {
        /// day, week or month (counted back from today); or use --from/--to.
        #[arg(long)]
        period: Option<String>,
        /// First day, YYYY-MM-DD.
        #[arg(long, default_value = "", hide_default_value = true)]
        from: String,
        /// Last day, YYYY-MM-DD.
        #[arg(long, default_value = "", hide_default_value = true)]
        to: String,
    },
    /// The dashboard's figures day by day.
    Daily {
        /// First day, YYYY-MM-DD (default: today).
        #[arg(long, default_value = "", hide_default_value = true)]
        from: String,
        /// Last day, YYYY-MM-DD (default: today).
        #[arg(long, default_value = "", hide_default_value = true)]
        to: String,
    },
}

#[derive(Subcommand)]
enum OpsCommand {
    /// Events waiting in the outbox, and the relay's health.
    Outbox {
        /// auth, tracker, billing or analytics.
        #[arg(long, default_value = "auth")]
        service: String,
    },
    /// Events the service could not handle: list, show, replay, discard.
    DeadLetters(dead_letters::DeadLettersArgs),
    /// Moves dead letters back to the live queue after a fix.
    Replay {
        /// tracker, billing or analytics.
        #[arg(long)]
        service: String,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match Box::pin(run(cli)).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("popug: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// A refusal as a readable line, naming the command line's options where
/// the service named a request field (`jira_id` is `--jira-id` here).
#[allow(
    clippy::needless_pass_by_value,
    reason = "shaped for `map_err(|status| flag_error(status, ...))`"
)]
fn flag_error(status: tonic::Status, flags: &[(&str, &str)]) -> anyhow::Error {
    let mut message = status.message().to_owned();
    for (field, flag) in flags {
        message = message.replace(&format!("`{field}`"), &format!("`{flag}`"));
    }
    anyhow!("{:?}: {message}", status.code())
}

/// How `accounts create` and `signup` name the account fields.
const ACCOUNT_FLAGS: &[(&str, &str)] = &[
    ("login", "--login"),
    ("password", "--password"),
    ("name", "--name"),
    ("email", "--email"),
    ("role", "--role"),
];

/// The password given on the command line, or else asked for without echo.
fn password_or_prompt(password: Option<String>, prompt: String) -> anyhow::Result<String> {
    match password {
        Some(password) => Ok(password),
        None => rpassword::prompt_password(prompt).context("cannot read the password"),
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let json = cli.json;
    config::settle(&cli.urls)?;
    match cli.command {
        Command::Up => Box::pin(up()).await,
        Command::Login { login, password } => {
            let auth_url = config::endpoints().auth.clone();
            let password = password_or_prompt(password, format!("password for {login}: "))?;
            let response = AuthServiceClient::new(connect(&auth_url).await?)
                .login(auth::LoginRequest {
                    login: login.clone(),
                    password,
                })
                .await
                .map_err(rpc_error)?
                .into_inner();
            let account = response.account.clone().unwrap_or_default();
            Session {
                auth_url,
                login: account.login.clone(),
                access_token: response.access_token,
                refresh_token: response.refresh_token,
                expires_at: chrono::Utc::now().timestamp() + response.expires_in,
            }
            .save()?;
            output::print(json, ACCOUNT_COLUMNS, &[account_row(&account)]);
            Ok(())
        }
        Command::Signup {
            login,
            password,
            name,
            email,
        } => {
            let password = password_or_prompt(password, format!("new password for {login}: "))?;
            let account = AuthServiceClient::new(connect(&config::endpoints().auth).await?)
                .sign_up(auth::SignUpRequest {
                    login,
                    password,
                    name,
                    email,
                })
                .await
                .map_err(|status| flag_error(status, ACCOUNT_FLAGS))?
                .into_inner()
                .account;
            output::print(
                json,
                ACCOUNT_COLUMNS,
                &[account_row(&account.unwrap_or_default())],
            );
            Ok(())
        }
        Command::Logout => Session::remove(),
        Command::Keys => {
            let keys = AuthServiceClient::new(connect(&config::endpoints().auth).await?)
                .get_jwks(auth::GetJwksRequest {})
                .await
                .map_err(rpc_error)?
                .into_inner()
                .keys;
            let rows: Vec<Value> = keys
                .iter()
                .map(|key| json!({ "kid": key.kid, "alg": key.alg, "crv": key.crv, "x": key.x }))
                .collect();
            print_list(json, &["kid", "alg", "crv", "x"], rows);
            Ok(())
        }
        Command::Whoami => {
            let (mut client, _) = auth_client().await?;
            let account = client
                .who_am_i(auth::WhoAmIRequest {})
                .await
                .map_err(rpc_error)?
                .into_inner()
                .account;
            output::print(
                json,
                ACCOUNT_COLUMNS,
                &[account_row(&account.unwrap_or_default())],
            );
            Ok(())
        }
        Command::Password { old, new } => commands::password::change(json, old, new).await,
        Command::Admin(AdminCommand::ResetPassword { login, password }) => {
            commands::admin::reset_password(json, login, password).await
        }
        Command::Status => commands::status::status(json).await,
        Command::Reset { yes } => commands::reset::reset(json, yes).await,
        Command::Completions { shell } => {
            use clap::CommandFactory as _;
            clap_complete::generate(shell, &mut Cli::command(), "popug", &mut std::io::stdout());
            Ok(())
        }
        Command::Events(EventsCommand::Tail { filter, count }) => {
            commands::events::tail(commands::events::Tail {
                filters: filter,
                count,
                json,
            })
            .await
        }
        Command::Accounts(command) => accounts(json, command).await,
        Command::Tasks(command) => tasks(json, command).await,
        Command::Billing(command) => billing_command(json, command).await,
        Command::Analytics(command) => analytics_command(json, command).await,
        Command::Ops(command) => ops(json, command).await,
        Command::Audit { wait } => {
            let (_, bearer) = signed_in().await?;
            let channels = Channels::connect(config::endpoints()).await?;
            let report = popug::audit::audit(&channels, &bearer, Duration::from_secs(wait)).await?;
            print_audit(json, &report);
            if report.is_clean() {
                Ok(())
            } else {
                bail!("the books do not agree")
            }
        }
        Command::Simulate {
            popugs,
            tasks,
            days,
            seed,
            concurrency,
            keep,
        } => {
            let options = popug::simulate::Options {
                popugs,
                tasks,
                days,
                seed,
                concurrency,
                keep,
                progress: !json,
            };
            let report = Box::pin(popug::simulate::run(
                &options,
                popug_runtime::Env::process(),
            ))
            .await?;
            print_simulation(json, &report);
            if report.audit.is_clean() {
                Ok(())
            } else {
                bail!("the books do not agree")
            }
        }
    }
}

fn print_audit(json: bool, report: &popug::audit::AuditReport) {
    if json {
        output::print(
            true,
            &[],
            &[json!({
                "clean": report.is_clean(), "tracker_facts": report.tracker_facts,
                "ledger_entries": report.ledger_entries, "days": report.days, "problems": report.problems,
            })],
        );
    } else {
        #[allow(clippy::print_stdout)] // the report is the command's output
        {
            println!("{report}");
        }
    }
}

fn print_simulation(json: bool, report: &popug::simulate::Report) {
    let rows: Vec<Value> = report
        .days
        .iter()
        .map(|day| {
            json!({
                "date": day.date.to_string(), "created": day.created, "reassigned": day.reassigned,
                "completed": day.completed, "earnings_cents": day.earnings_cents,
                "earnings": dollars(day.earnings_cents), "payouts_cents": day.payouts_cents,
                "payouts": dollars(day.payouts_cents), "paid_popugs": day.paid_popugs,
                "negative_popugs": day.negative_popugs,
                "top_task": day.top_task.as_ref().map(|(task, _)| task.clone()),
                "top_reward": day.top_task.as_ref().map(|(_, reward)| dollars(*reward)),
            })
        })
        .collect();
    if json {
        output::print(
            true,
            &[],
            &[json!({
                "days": rows,
                "audit": { "clean": report.audit.is_clean(), "problems": report.audit.problems },
            })],
        );
    } else {
        output::print(
            false,
            &[
                "date",
                "created",
                "reassigned",
                "completed",
                "earnings",
                "payouts",
                "paid_popugs",
                "negative_popugs",
                "top_task",
                "top_reward",
            ],
            &rows,
        );
        print_audit(false, &report.audit);
    }
}

const ACCOUNT_COLUMNS: &[&str] = &["account_id", "login", "name", "email", "role", "active"];

fn account_row(account: &auth::Account) -> Value {
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

fn role(value: &str) -> anyhow::Result<i32> {
    auth::Role::from_str_name(&format!("ROLE_{}", value.to_uppercase()))
        .filter(|role| *role != auth::Role::Unspecified)
        .map(Into::into)
        .ok_or_else(|| anyhow!("`{value}` is not a role: worker, manager, accountant or admin"))
}

/// The saved session, refreshed first if its access token is about to expire.
async fn signed_in() -> anyhow::Result<(Session, Bearer)> {
    let mut session = Session::load()?;
    if session.expires_at - 30 < chrono::Utc::now().timestamp() {
        let refreshed = AuthServiceClient::new(connect(&session.auth_url).await?)
            .refresh(auth::RefreshRequest {
                refresh_token: session.refresh_token.clone(),
            })
            .await
            .map_err(|status| {
                anyhow!(
                    "the session has ended ({}); run `popug login`",
                    status.message()
                )
            })?
            .into_inner();
        session.access_token = refreshed.access_token;
        session.refresh_token = refreshed.refresh_token;
        session.expires_at = chrono::Utc::now().timestamp() + refreshed.expires_in;
        session.save()?;
    }
    let bearer = Bearer::new(&session.access_token)
        .context("the saved access token is unusable; run `popug login`")?;
    Ok((session, bearer))
}

type AuthClient = AuthServiceClient<Authorized>;

async fn auth_client() -> anyhow::Result<(AuthClient, Session)> {
    let (session, bearer) = signed_in().await?;
    let channel = connect(&session.auth_url).await?;
    Ok((
        AuthServiceClient::with_interceptor(channel, bearer),
        session,
    ))
}

async fn accounts(json: bool, command: AccountsCommand) -> anyhow::Result<()> {
    let (mut client, _) = auth_client().await?;
    let account = match command {
        AccountsCommand::Create {
            login,
            password,
            name,
            email,
            role: wanted,
        } => {
            client
                .create_account(auth::CreateAccountRequest {
                    login,
                    password,
                    name,
                    email,
                    role: role(&wanted)?,
                })
                .await
                .map_err(|status| flag_error(status, ACCOUNT_FLAGS))?
                .into_inner()
                .account
        }
        AccountsCommand::Update {
            account,
            name,
            email,
        } => {
            let account_id = commands::names::account_id(&mut client, &account).await?;
            client
                .update_account(auth::UpdateAccountRequest {
                    account_id,
                    name,
                    email,
                })
                .await
                .map_err(|status| flag_error(status, &[("name", "--name"), ("email", "--email")]))?
                .into_inner()
                .account
        }
        AccountsCommand::Role {
            account,
            role: wanted,
        } => {
            let account_id = commands::names::account_id(&mut client, &account).await?;
            client
                .change_role(auth::ChangeRoleRequest {
                    account_id,
                    role: role(&wanted)?,
                })
                .await
                .map_err(rpc_error)?
                .into_inner()
                .account
        }
        AccountsCommand::SetPassword { account, password } => {
            return commands::password::set(json, &account, password).await;
        }
        AccountsCommand::Deactivate { account } => {
            let account_id = commands::names::account_id(&mut client, &account).await?;
            client
                .deactivate_account(auth::DeactivateAccountRequest { account_id })
                .await
                .map_err(rpc_error)?
                .into_inner()
                .account
        }
        AccountsCommand::List => {
            let rows = all_pages(|page_token| {
                let mut client = client.clone();
                async move {
                    let page = client
                        .list_accounts(auth::ListAccountsRequest {
                            page_size: 1000,
                            page_token,
                        })
                        .await
                        .map_err(rpc_error)?
                        .into_inner();
                    Ok((
                        page.accounts.iter().map(account_row).collect(),
                        page.next_page_token,
                    ))
                }
            })
            .await?;
            print_list(json, ACCOUNT_COLUMNS, rows);
            return Ok(());
        }
    };
    output::print(
        json,
        ACCOUNT_COLUMNS,
        &[account_row(&account.unwrap_or_default())],
    );
    Ok(())
}

const TASK_COLUMNS: &[&str] = &[
    "key",
    "title",
    "jira_id",
    "status",
    "assignee",
    "created_at",
];

/// A task's row; `assignee` is the assignee's login when `logins` knows it.
fn task_row(task: &tracker::Task, logins: &HashMap<String, String>) -> Value {
    let status =
        tracker::TaskStatus::try_from(task.status).unwrap_or(tracker::TaskStatus::Unspecified);
    json!({
        "task_id": task.task_id,
        "key": task.key,
        "title": task.title,
        "jira_id": task.jira_id,
        "description": task.description,
        "status": status.as_str_name().trim_start_matches("TASK_STATUS_").to_lowercase(),
        "assignee_id": task.assignee_id,
        "assignee": logins.get(&task.assignee_id).unwrap_or(&task.assignee_id),
        "created_at": output::time(task.created_at.as_ref()),
        "completed_at": output::time(task.completed_at.as_ref()),
    })
}

fn status(value: Option<&str>) -> anyhow::Result<i32> {
    match value {
        None => Ok(tracker::TaskStatus::Unspecified.into()),
        Some("open") => Ok(tracker::TaskStatus::Open.into()),
        Some("done") => Ok(tracker::TaskStatus::Done.into()),
        Some(other) => bail!("`{other}` is not a task status: open or done"),
    }
}

fn print_list(json: bool, columns: &[&str], rows: Vec<Value>) {
    if json {
        output::print(true, columns, &[Value::Array(rows)]);
    } else {
        output::print(false, columns, &rows);
    }
}

async fn tasks(json: bool, command: TasksCommand) -> anyhow::Result<()> {
    let (session, bearer) = signed_in().await?;
    let mut directory = commands::names::directory(&session, &bearer).await?;
    let mut client = TrackerServiceClient::with_interceptor(
        connect(&config::endpoints().tracker).await?,
        bearer,
    );
    // `mine` and `list` page the same way; they differ only in whose tasks.
    let mine = matches!(command, TasksCommand::Mine { .. });
    let task = match command {
        TasksCommand::Create {
            title,
            jira_id,
            description,
        } => {
            client
                .create_task(tracker::CreateTaskRequest {
                    title,
                    jira_id,
                    description,
                })
                .await
                .map_err(|status| {
                    flag_error(
                        status,
                        &[
                            ("title", "--title"),
                            ("jira_id", "--jira-id"),
                            ("description", "--description"),
                        ],
                    )
                })?
                .into_inner()
                .task
        }
        TasksCommand::Get { task } => {
            let task_id = commands::names::task_id(&mut client, &task).await?;
            client
                .get_task(tracker::GetTaskRequest {
                    task_id,
                    key: String::new(),
                })
                .await
                .map_err(rpc_error)?
                .into_inner()
                .task
        }
        TasksCommand::Complete { task } => {
            let task_id = commands::names::task_id(&mut client, &task).await?;
            client
                .complete_task(tracker::CompleteTaskRequest { task_id })
                .await
                .map_err(rpc_error)?
                .into_inner()
                .task
        }
        TasksCommand::Shuffle => {
            let reassigned = client
                .shuffle_tasks(tracker::ShuffleTasksRequest {})
                .await
                .map_err(rpc_error)?
                .into_inner()
                .reassigned;
            output::print(
                json,
                &["reassigned"],
                &[json!({ "reassigned": reassigned })],
            );
            return Ok(());
        }
        TasksCommand::History => {
            let history = task_history(&client).await?;
            let logins = commands::names::logins(
                &mut directory,
                history.iter().map(|entry| entry.account_id.as_str()),
            )
            .await?;
            let rows = history
                .iter()
                .map(|entry| {
                    let kind = tracker::HistoryKind::try_from(entry.kind)
                        .unwrap_or(tracker::HistoryKind::Unspecified);
                    json!({
                        "event_id": entry.event_id, "task_id": entry.task_id,
                        "kind": kind.as_str_name().trim_start_matches("HISTORY_KIND_").to_lowercase(),
                        "account_id": entry.account_id,
                        "account": logins.get(&entry.account_id).unwrap_or(&entry.account_id),
                        "occurred_at": output::time(entry.occurred_at.as_ref()),
                    })
                })
                .collect();
            print_list(
                json,
                &["event_id", "task_id", "kind", "account", "occurred_at"],
                rows,
            );
            return Ok(());
        }
        TasksCommand::Mine { status: wanted } | TasksCommand::List { status: wanted } => {
            let status = status(wanted.as_deref())?;
            let tasks = all_pages(|page_token| {
                let mut client = client.clone();
                async move {
                    let (tasks, next) = if mine {
                        let page = client
                            .list_my_tasks(tracker::ListMyTasksRequest {
                                status,
                                page_size: 1000,
                                page_token,
                            })
                            .await
                            .map_err(rpc_error)?
                            .into_inner();
                        (page.tasks, page.next_page_token)
                    } else {
                        let page = client
                            .list_tasks(tracker::ListTasksRequest {
                                status,
                                page_size: 1000,
                                page_token,
                            })
                            .await
                            .map_err(rpc_error)?
                            .into_inner();
                        (page.tasks, page.next_page_token)
                    };
                    Ok((tasks, next))
                }
            })
            .await?;
            let logins = commands::names::logins(
                &mut directory,
                tasks.iter().map(|task| task.assignee_id.as_str()),
            )
            .await?;
            let rows = tasks.iter().map(|task| task_row(task, &logins)).collect();
            print_list(json, TASK_COLUMNS, rows);
            return Ok(());
        }
    };
    let task = task.unwrap_or_default();
    let logins = commands::names::logins(&mut directory, [task.assignee_id.as_str()]).await?;
    output::print(json, TASK_COLUMNS, &[task_row(&task, &logins)]);
    Ok(())
}

const ENTRY_COLUMNS: &[&str] = &["day", "kind", "amount", "description", "occurred_at"];
const LEDGER_COLUMNS: &[&str] = &["day", "account", "kind", "amount", "description"];

/// Cents as dollars, for people: `-12.05`.
fn dollars(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", cents.abs() / 100, cents.abs() % 100)
}

fn entry_row(entry: &billing::Entry) -> Value {
    let kind = billing::EntryKind::try_from(entry.kind).unwrap_or(billing::EntryKind::Unspecified);
    json!({
        "entry_id": entry.entry_id,
        "day": entry.day,
        "kind": kind.as_str_name().trim_start_matches("ENTRY_KIND_").to_lowercase(),
        "amount_cents": entry.amount_cents,
        "amount": dollars(entry.amount_cents),
        "task_id": entry.task_id,
        "description": entry.description,
        "occurred_at": output::time(entry.occurred_at.as_ref()),
        "account_id": entry.account_id,
        "source_event_id": entry.source_event_id,
        "balance_after_cents": entry.balance_after_cents,
        "balance_after": dollars(entry.balance_after_cents),
    })
}

fn print_account(json: bool, account_id: &str, balance_cents: i64, entries: &[billing::Entry]) {
    if json {
        output::print(
            true,
            &[],
            &[json!({
                "account_id": account_id,
                "balance_cents": balance_cents,
                "entries": entries.iter().map(entry_row).collect::<Vec<_>>(),
            })],
        );
    } else {
        output::print(
            false,
            ENTRY_COLUMNS,
            &entries.iter().map(entry_row).collect::<Vec<_>>(),
        );
        #[allow(clippy::print_stdout)] // the balance closes the table
        {
            println!("balance: {}", dollars(balance_cents));
        }
    }
}

const STATEMENT_COLUMNS: &[&str] = &["day", "kind", "amount", "balance", "description"];

#[allow(clippy::print_stdout)] // the statement is this command's output
fn print_statement(json: bool, csv: bool, statement: &billing::GetStatementResponse) {
    let rows: Vec<Value> = statement
        .lines
        .iter()
        .map(|line| {
            let mut row = entry_row(&line.entry.clone().unwrap_or_default());
            row["balance_cents"] = json!(line.balance_after_cents);
            row["balance"] = json!(dollars(line.balance_after_cents));
            row
        })
        .collect();
    if json {
        output::print(
            true,
            &[],
            &[json!({
                "account_id": statement.account_id, "from": statement.from, "to": statement.to,
                "opening_balance_cents": statement.opening_balance_cents,
                "closing_balance_cents": statement.closing_balance_cents,
                "lines": rows,
            })],
        );
    } else if csv {
        println!("day,entry_id,kind,amount_cents,balance_cents,task_id,description");
        for row in &rows {
            let field = |key: &str| match &row[key] {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            println!(
                "{},{},{},{},{},{},\"{}\"",
                field("day"),
                field("entry_id"),
                field("kind"),
                field("amount_cents"),
                field("balance_cents"),
                field("task_id"),
                field("description").replace('"', "\"\"")
            );
        }
    } else {
        println!(
            "statement of {} from {} to {}",
            statement.account_id, statement.from, statement.to
        );
        println!(
            "opening balance: {}",
            dollars(statement.opening_balance_cents)
        );
        output::print(false, STATEMENT_COLUMNS, &rows);
        println!(
            "closing balance: {}",
            dollars(statement.closing_balance_cents)
        );
    }
}

async fn billing_command(json: bool, command: BillingCommand) -> anyhow::Result<()> {
    let (session, bearer) = signed_in().await?;
    let mut directory = commands::names::directory(&session, &bearer).await?;
    let mut client = BillingServiceClient::with_interceptor(
        connect(&config::endpoints().billing).await?,
        bearer,
    );
    match command {
        BillingCommand::Me { date } => {
            let me = client
                .get_my_account(billing::GetMyAccountRequest { date })
                .await
                .map_err(rpc_error)?
                .into_inner();
            print_account(json, &me.account_id, me.balance_cents, &me.entries);
        }
        BillingCommand::Account { account, date } => {
            let account_id = commands::names::account_id(&mut directory, &account).await?;
            let account = client
                .get_account(billing::GetAccountRequest { account_id, date })
                .await
                .map_err(rpc_error)?
                .into_inner();
            print_account(
                json,
                &account.account_id,
                account.balance_cents,
                &account.entries,
            );
        }
        BillingCommand::Earnings { from, to } => {
            let days = client
                .get_management_earnings(billing::GetManagementEarningsRequest { from, to })
                .await
                .map_err(rpc_error)?
                .into_inner()
                .days;
            let rows: Vec<Value> = days
                .iter()
                .map(|day| {
                    json!({
                        "date": day.date, "earnings_cents": day.earnings_cents, "earnings": dollars(day.earnings_cents),
                        "fees_cents": day.fees_cents, "fees": dollars(day.fees_cents),
                        "rewards_cents": day.rewards_cents, "rewards": dollars(day.rewards_cents),
                    })
                })
                .collect();
            print_list(json, &["date", "fees", "rewards", "earnings"], rows);
        }
        BillingCommand::Entries => {
            let entries = ledger_entries(&client).await?;
            let logins = commands::names::logins(
                &mut directory,
                entries.iter().map(|entry| entry.account_id.as_str()),
            )
            .await?;
            let rows = entries
                .iter()
                .map(|entry| {
                    let mut row = entry_row(entry);
                    row["account"] =
                        json!(logins.get(&entry.account_id).unwrap_or(&entry.account_id));
                    row
                })
                .collect();
            print_list(json, LEDGER_COLUMNS, rows);
        }
        BillingCommand::Check => {
            let violations = client
                .audit_ledger(billing::AuditLedgerRequest {})
                .await
                .map_err(rpc_error)?
                .into_inner()
                .violations;
            let rows: Vec<Value> = violations
                .iter()
                .map(|what| json!({ "violation": what }))
                .collect();
            if json {
                output::print(
                    true,
                    &[],
                    &[json!({ "clean": rows.is_empty(), "violations": violations })],
                );
            } else if rows.is_empty() {
                #[allow(clippy::print_stdout)] // the verdict is this command's output
                {
                    println!("clean: the ledger's invariants hold");
                }
            } else {
                print_list(false, &["violation"], rows);
            }
            if !violations.is_empty() {
                bail!("the ledger breaks its invariants");
            }
        }
        BillingCommand::Statement {
            account,
            from,
            to,
            csv,
        } => {
            let account_id = if account.is_empty() {
                account
            } else {
                commands::names::account_id(&mut directory, &account).await?
            };
            let statement = client
                .get_statement(billing::GetStatementRequest {
                    account_id,
                    from,
                    to,
                })
                .await
                .map_err(rpc_error)?
                .into_inner();
            print_statement(json, csv, &statement);
        }
        BillingCommand::Income { from, to } => {
            let income = client
                .get_income_statement(billing::GetIncomeStatementRequest { from, to })
                .await
                .map_err(rpc_error)?
                .into_inner();
            let row = |day: &billing::IncomeDay| {
                json!({
                    "date": if day.date.is_empty() { "total" } else { day.date.as_str() },
                    "revenue_cents": day.revenue_cents, "revenue": dollars(day.revenue_cents),
                    "expense_cents": day.expense_cents, "expense": dollars(day.expense_cents),
                    "payouts_cents": day.payouts_cents, "payouts": dollars(day.payouts_cents),
                    "net_cents": day.net_cents, "net": dollars(day.net_cents),
                })
            };
            let rows: Vec<Value> = income.days.iter().chain(&income.total).map(row).collect();
            print_list(
                json,
                &["date", "revenue", "expense", "payouts", "net"],
                rows,
            );
        }
        BillingCommand::CloseDay { date } => {
            let closed = client
                .close_day(billing::CloseDayRequest { date })
                .await
                .map_err(rpc_error)?
                .into_inner();
            output::print(
                json,
                &["date", "accounts_closed", "payouts", "already_closed"],
                &[json!({
                    "date": closed.date, "accounts_closed": closed.accounts_closed, "payouts_cents": closed.payouts_cents,
                    "payouts": dollars(closed.payouts_cents), "already_closed": closed.already_closed,
                })],
            );
        }
    }
    Ok(())
}

async fn analytics_command(json: bool, command: AnalyticsCommand) -> anyhow::Result<()> {
    let (_, bearer) = signed_in().await?;
    let mut client = AnalyticsServiceClient::with_interceptor(
        connect(&config::endpoints().analytics).await?,
        bearer,
    );
    let day_row = |date: &str, earnings: i64, negative: u32| {
        json!({
            "date": date, "management_earnings_cents": earnings, "management_earnings": dollars(earnings),
            "negative_balance_popugs": negative,
        })
    };
    let day_columns = ["date", "management_earnings", "negative_balance_popugs"];
    match command {
        AnalyticsCommand::Dashboard { date } => {
            let day = client
                .get_dashboard(analytics::GetDashboardRequest { date })
                .await
                .map_err(rpc_error)?
                .into_inner();
            output::print(
                json,
                &day_columns,
                &[day_row(
                    &day.date,
                    day.management_earnings_cents,
                    day.negative_balance_popugs,
                )],
            );
        }
        AnalyticsCommand::Daily { from, to } => {
            let days = client
                .get_daily_stats(analytics::GetDailyStatsRequest { from, to })
                .await
                .map_err(rpc_error)?
                .into_inner()
                .days;
            let rows = days
                .iter()
                .map(|day| {
                    day_row(
                        &day.date,
                        day.management_earnings_cents,
                        day.negative_balance_popugs,
                    )
                })
                .collect();
            print_list(json, &day_columns, rows);
        }
        AnalyticsCommand::TopTask { period, from, to } => {
            let period = match period.as_deref() {
                None => analytics::Period::Unspecified,
                Some("day") => analytics::Period::Day,
                Some("week") => analytics::Period::Week,
                Some("month") => analytics::Period::Month,
                Some(other) => bail!("`{other}` is not a period: day, week or month"),
            };
            let task = client
                .get_most_expensive_task(analytics::GetMostExpensiveTaskRequest {
                    period: period.into(),
                    from,
                    to,
                })
                .await
                .map_err(rpc_error)?
                .into_inner()
                .task;
            let rows: Vec<Value> = task
                .iter()
                .map(|task| {
                    json!({
                        "task_id": task.task_id, "key": task.key, "title": task.title,
                        "reward_cents": task.reward_cents, "reward": dollars(task.reward_cents),
                        "completed_at": output::time(task.completed_at.as_ref()),
                    })
                })
                .collect();
            print_list(json, &["key", "title", "reward", "completed_at"], rows);
        }
    }
    Ok(())
}

async fn ops(json: bool, command: OpsCommand) -> anyhow::Result<()> {
    let service = match command {
        OpsCommand::Outbox { ref service } | OpsCommand::Replay { ref service } => service.clone(),
        OpsCommand::DeadLetters(args) => return dead_letters::run(json, args).await,
    };
    let (_, bearer) = signed_in().await?;
    let target = match service.as_str() {
        "auth" => Service::Auth,
        "tracker" => Service::Tracker,
        "billing" => Service::Billing,
        "analytics" => Service::Analytics,
        other => bail!("`{other}` is not a service: auth, tracker, billing or analytics"),
    };
    let mut client =
        OpsServiceClient::with_interceptor(connect(config::endpoints().of(target)).await?, bearer);
    match command {
        OpsCommand::Outbox { .. } => {
            let status = client
                .get_outbox_status(ops::GetOutboxStatusRequest {})
                .await
                .map_err(rpc_error)?
                .into_inner();
            let row = json!({
                "service": service,
                "pending": status.pending,
                "oldest_pending_at": output::time(status.oldest_pending_at.as_ref()),
                "oldest_pending_age_ms": status.oldest_pending_age_ms,
                "relay_connected": status.relay_connected,
                "relay_blocked": status.relay_blocked,
                "relay": relay_state(target, status.relay_connected, status.relay_blocked),
                "last_error": status.last_error,
            });
            output::print(
                json,
                &[
                    "service",
                    "pending",
                    "oldest_pending_age_ms",
                    "relay",
                    "last_error",
                ],
                &[row],
            );
        }
        // Answered by `dead_letters::run` above.
        OpsCommand::DeadLetters(_) => {}
        OpsCommand::Replay { .. } => {
            let replayed = client
                .replay_dead_letters(ops::ReplayDeadLettersRequest {
                    limit: 0,
                    ..ops::ReplayDeadLettersRequest::default()
                })
                .await
                .map_err(rpc_error)?
                .into_inner()
                .replayed;
            output::print(
                json,
                &["service", "replayed"],
                &[json!({ "service": service, "replayed": replayed })],
            );
        }
    }
    Ok(())
}

/// The outbox relay of `service` as people read it: analytics publishes no
/// events, so it has no relay at all (not a disconnected one); a connected
/// relay may be blocked by the broker (a memory or disk alarm).
fn relay_state(service: Service, connected: bool, blocked: bool) -> &'static str {
    match (service, connected, blocked) {
        (Service::Analytics, ..) => "none (analytics publishes no events)",
        (_, true, true) => "blocked by the broker",
        (_, true, false) => "connected",
        (_, false, _) => "disconnected",
    }
}

/// Runs the services in this process until Ctrl-C or SIGTERM.
async fn up() -> anyhow::Result<()> {
    let env = popug_runtime::Env::process();
    let settings = MeshSettings::load(&env)?;
    popug_runtime::telemetry::init_with(
        settings.common().log_format,
        settings.common().otlp_endpoint.as_ref(),
        "popug",
    )?;
    preflight(settings.common()).await?;
    // Built first (when missing or stale), so the banner comes at the end.
    let assets = popug::web::local_assets(&web_svc::WebSettings::load(&env)?).await;
    let clock = settings.common().clock.clone();
    let mesh = Mesh::start(settings).await?;
    let web = popug::web::start(&env, &mesh.endpoints(), &clock, assets).await?;
    let [auth_addr, tracker_addr, billing_addr, analytics_addr] = mesh.addrs();
    let [metrics_addr, ..] = mesh.metrics_addrs();
    #[allow(clippy::print_stdout)] // the endpoints are what a person needs to see
    {
        println!("\npopug is up:");
        println!("  web app       http://{}", web.local_addr());
        if let web_svc::assets::Assets::Missing(reason) = web.assets() {
            println!("                (no pages: {reason})");
        }
        println!("  auth-svc      http://{auth_addr}");
        println!("  tracker-svc   http://{tracker_addr}");
        println!("  billing-svc   http://{billing_addr}");
        println!("  analytics-svc http://{analytics_addr}");
        // One registry serves all four in this process (each series has a `service` label).
        println!("  metrics       http://{metrics_addr}/metrics\n");
        println!("Try it:");
        println!(
            "  open http://{} in a browser and sign in as admin",
            web.local_addr()
        );
        println!("  grpcurl -plaintext {auth_addr} list");
        println!(
            "  grpcurl -plaintext -d '{{\"login\":\"admin\",\"password\":\"<password>\"}}' {auth_addr} popug.auth.v1.AuthService/Login"
        );
        println!("  popug login --login admin\n\nCtrl-C stops every service gracefully.\n");
    }
    let stop = tokio_util::sync::CancellationToken::new();
    let stopping = stop.clone();
    tokio::spawn(async move {
        popug_runtime::shutdown::signal().await;
        stopping.cancel();
    });
    let (served, web_served) = tokio::join!(
        Box::pin(mesh.run_until_stopped(stop.clone())),
        web.run_until_stopped(stop.cancelled_owned()),
    );
    popug_runtime::telemetry::shutdown().await;
    served?;
    Ok(web_served?)
}
