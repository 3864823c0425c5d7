//! `popug`: runs the system locally (`popug up`) and calls every RPC through
//! the generated client stubs, signing in once (`popug login`).
//!
//! This file parses the command line and hands each command to its group in
//! [`commands`]; [`session`] keeps the sign-in, [`output`] prints, and
//! [`config`] finds the services.

mod commands;
mod config;
mod output;
mod session;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use commands::{
    accounts::AccountsCommand, admin::AdminCommand, analytics::AnalyticsCommand,
    billing::BillingCommand, events::EventsCommand, ops::OpsCommand, tasks::TasksCommand,
};

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
    Login(commands::auth::Login),
    /// Creates a worker account for yourself (when sign-up is enabled).
    Signup(commands::auth::Signup),
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
    Simulate(commands::simulate::Simulate),
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

async fn run(cli: Cli) -> anyhow::Result<()> {
    let json = cli.json;
    config::settle(&cli.urls)?;
    match cli.command {
        Command::Up => Box::pin(commands::up::run()).await,
        Command::Login(login) => commands::auth::login(json, login).await,
        Command::Signup(signup) => commands::auth::signup(json, signup).await,
        Command::Logout => session::Session::remove(),
        Command::Keys => commands::auth::keys(json).await,
        Command::Whoami => commands::auth::whoami(json).await,
        Command::Password { old, new } => commands::password::change(json, old, new).await,
        Command::Admin(command) => commands::admin::run(json, command).await,
        Command::Status => commands::status::status(json).await,
        Command::Reset { yes } => commands::reset::reset(json, yes).await,
        Command::Completions { shell } => {
            use clap::CommandFactory as _;
            clap_complete::generate(shell, &mut Cli::command(), "popug", &mut std::io::stdout());
            Ok(())
        }
        Command::Events(command) => commands::events::run(json, command).await,
        Command::Accounts(command) => commands::accounts::run(json, command).await,
        Command::Tasks(command) => commands::tasks::run(json, command).await,
        Command::Billing(command) => commands::billing::run(json, command).await,
        Command::Analytics(command) => commands::analytics::run(json, command).await,
        Command::Ops(command) => commands::ops::run(json, command).await,
        Command::Audit { wait } => commands::audit::run(json, wait).await,
        Command::Simulate(simulate) => Box::pin(commands::simulate::run(json, simulate)).await,
    }
}
