//! popug's benchmarks. Each one measures the raw limit of this machine first
//! (the same broker, the same database, the same message size) and then
//! popug's own mechanism, and prints both figures and their ratio.
//!
//! `cargo run --release -p bench -- bus` measures the event bus:
//! - raw: lapin publishing with pipelined confirms; one-row insert
//!   transactions through the same pool;
//! - popug: the outbox relay's publish rate; the consumer's apply rate with
//!   the inbox (batched transactions).
//!
//! `cargo run --release -p bench -- auth` measures token verification: the
//! same cheap RPC (`GetJwks`) on the same server, without and with a bearer
//! token that the auth layer verifies, 64 calls in flight.
//!
//! `cargo run --release -p bench -- lifecycle` measures task lifecycles end
//! to end through the whole mesh (see [`lifecycle`]).
//!
//! This file parses the arguments and dispatches; each mode has a file of its
//! own ([`bus`], [`auth`], [`shuffle`], [`billing`], [`lifecycle`],
//! [`flood`]), and what several share has one too: [`raw`] (the raw limits
//! and how a rate is counted), [`sandbox`] (a run's own database and
//! namespace), [`auth_server`] (auth-svc in this process) and [`cpu`] (CPU
//! time per process).

#![allow(clippy::print_stdout)] // printing the figures is this program's job

mod auth;
mod auth_server;
mod billing;
mod bus;
mod cpu;
mod flood;
mod lifecycle;
mod raw;
mod sandbox;
mod shuffle;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "popug benchmarks, side by side with this machine's raw limits")]
struct Cli {
    /// Postgres server (a fresh database is created on it).
    #[arg(
        long,
        env = "POPUG_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:5432"
    )]
    postgres_url: url::Url,
    /// RabbitMQ (a fresh namespace is used on it).
    #[arg(
        long,
        env = "POPUG_AMQP_URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f"
    )]
    amqp_url: url::Url,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The event bus: relay and consumer against raw publish and commit rates.
    Bus {
        /// Events per measurement.
        #[arg(long, default_value_t = 20_000)]
        events: usize,
        /// Confirms in flight for the raw publish measurement (the relay's batch size too).
        #[arg(long, default_value_t = 1_000)]
        window: usize,
    },
    /// The tracker's shuffle of many open tasks, and the relay publishing its events.
    Shuffle {
        /// Open tasks to shuffle.
        #[arg(long, default_value_t = 100_000)]
        tasks: usize,
        /// Active workers to draw from.
        #[arg(long, default_value_t = 50)]
        workers: usize,
    },
    /// Billing's apply rate: assignments charged through the inbox, batched.
    Billing {
        /// TaskAssigned events to apply.
        #[arg(long, default_value_t = 20_000)]
        events: usize,
        /// Consumer worker counts to measure, each on a fresh ledger.
        #[arg(long, value_delimiter = ',', default_value = "1,4")]
        workers: Vec<usize>,
    },
    /// Task lifecycles end to end through the whole mesh: sustained rate and event lag.
    Lifecycle {
        /// Lifecycles at saturation.
        #[arg(long, default_value_t = 3_000)]
        tasks: usize,
        /// Lifecycles per second for the fixed-rate lag measurement.
        #[arg(long, default_value_t = 500)]
        rate: usize,
        /// Seconds at the fixed rate.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Lifecycles in flight at saturation.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// Workers to assign tasks to.
        #[arg(long, default_value_t = 50)]
        workers: usize,
    },
    /// A flood of wrong-password sign-ins against auth-svc: memory, the
    /// latency of legitimate calls beside it, and recovery.
    Flood {
        /// Sign-ins in flight.
        #[arg(long, default_value_t = 1_000)]
        concurrency: usize,
        /// Seconds the flood lasts.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    /// The attacking side of `flood`, run by it as a process of its own.
    #[command(hide = true)]
    FloodAttack {
        /// auth-svc's address.
        #[arg(long)]
        addr: std::net::SocketAddr,
        /// Sign-ins in flight.
        #[arg(long)]
        concurrency: usize,
        /// Seconds the flood lasts.
        #[arg(long)]
        seconds: u64,
    },
    /// Token verification: authenticated against unauthenticated calls.
    Auth {
        /// Calls per measurement.
        #[arg(long, default_value_t = 50_000)]
        calls: usize,
        /// Calls in flight.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    popug_runtime::telemetry::init(popug_runtime::settings::LogFormat::Pretty);
    match cli.command {
        Command::Bus { events, window } => {
            bus::run(&cli.postgres_url, &cli.amqp_url, events, window).await
        }
        Command::Auth { calls, concurrency } => {
            auth::run(&cli.postgres_url, calls, concurrency).await
        }
        Command::FloodAttack {
            addr,
            concurrency,
            seconds,
        } => flood::attack(addr, concurrency, seconds).await,
        Command::Flood {
            concurrency,
            seconds,
        } => {
            flood::run(
                &cli.postgres_url,
                &flood::Options {
                    concurrency,
                    seconds,
                },
            )
            .await
        }
        Command::Shuffle { tasks, workers } => {
            shuffle::run(&cli.postgres_url, &cli.amqp_url, tasks, workers).await
        }
        Command::Billing { events, workers } => {
            billing::run(&cli.postgres_url, &cli.amqp_url, events, &workers).await
        }
        Command::Lifecycle {
            tasks,
            rate,
            seconds,
            concurrency,
            workers,
        } => {
            let options = lifecycle::Options {
                tasks,
                rate,
                seconds,
                concurrency,
                workers,
            };
            Box::pin(lifecycle::run(&cli.postgres_url, &cli.amqp_url, &options)).await
        }
    }
}
