//! `popug-faults`: the fault-injection suite's command line (see the
//! library's documentation for what it does).

use std::{path::PathBuf, process::ExitCode, time::Duration};

use anyhow::Context as _;
use clap::Parser;
use popug_faults::{
    fault::Durations,
    suite::{self, Options, Row},
};

/// Injects faults into a private popug and checks that no money is lost.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Only these faults (by their names in the table, e.g. kill-billing);
    /// all by default.
    #[arg(long = "only", value_name = "FAULT")]
    only: Vec<String>,
    /// Seconds of workload before and after each fault.
    #[arg(long, default_value_t = 3)]
    workload_secs: u64,
    /// Seconds the broker stays stopped (Postgres: at most 5; at midnight,
    /// either: 10 to 15).
    #[arg(long, default_value_t = 20)]
    outage_secs: u64,
    /// Seconds a paused service stays paused.
    #[arg(long, default_value_t = 30)]
    pause_secs: u64,
    /// Seconds the system may take to settle after a fault.
    #[arg(long, default_value_t = 90)]
    settle_secs: u64,
    /// Milliseconds each workload caller waits between calls.
    #[arg(long, default_value_t = 20)]
    pace_ms: u64,
    /// Where the service binaries are; by default beside this one.
    #[arg(long)]
    binaries: Option<PathBuf>,
    /// Keep the services' logs (their directory is printed).
    #[arg(long)]
    keep_logs: bool,
}

#[tokio::main]
#[allow(clippy::print_stdout, clippy::print_stderr)] // the verdict and its reasons are the output
async fn main() -> ExitCode {
    let args = Args::parse();
    let options = match options(&args) {
        Ok(options) => options,
        Err(error) => {
            eprintln!("popug-faults: {error:#}");
            return ExitCode::FAILURE;
        }
    };
    println!("logs in {}", options.logs.display());
    // Interrupted, the run is dropped: its servers and services stop.
    let ran = tokio::select! {
        ran = suite::run(&options) => ran,
        () = popug_runtime::shutdown::signal() => {
            eprintln!("popug-faults: interrupted; logs in {}", options.logs.display());
            return ExitCode::FAILURE;
        }
    };
    let rows = match ran {
        Ok(rows) => rows,
        Err(error) => {
            eprintln!(
                "popug-faults: {error:#} (logs in {})",
                options.logs.display()
            );
            return ExitCode::FAILURE;
        }
    };
    suite::print_table(&rows);
    if rows.iter().all(Row::passed) {
        println!(
            "\nall {} faults healed by themselves: nothing lost, duplicated or unexpected",
            rows.len()
        );
        if !args.keep_logs {
            std::fs::remove_dir_all(&options.logs).ok();
        }
        return ExitCode::SUCCESS;
    }
    for row in rows.iter().filter(|row| !row.passed()) {
        println!("\n{}: {} problem(s)", row.fault, row.books.problems.len());
        for problem in row.books.problems.iter().take(20) {
            println!("  - {problem}");
        }
    }
    println!("logs in {}", options.logs.display());
    ExitCode::FAILURE
}

fn options(args: &Args) -> anyhow::Result<Options> {
    let binaries = match &args.binaries {
        Some(dir) => dir.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("this binary's directory")?
            .to_owned(),
    };
    Ok(Options {
        only: args.only.clone(),
        durations: Durations {
            outage: Duration::from_secs(args.outage_secs),
            pause: Duration::from_secs(args.pause_secs),
            workload: Duration::from_secs(args.workload_secs),
        },
        settle: Duration::from_secs(args.settle_secs),
        pace: Duration::from_millis(args.pace_ms),
        binaries,
        logs: std::env::temp_dir().join(format!(
            "popug-faults-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        )),
    })
}
