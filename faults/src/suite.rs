//! The run: which faults, on which clusters, how long, and the table.

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::Context as _;
use popug_runtime::Timezone;

use crate::{
    check::{self, Books},
    cluster::Cluster,
    fault::{self, Durations, Fault, Injected},
    workload::{Company, Workload},
};

/// What to run, and for how long.
#[derive(Debug, Clone)]
pub struct Options {
    /// Only these faults (by their names in the table); all when empty.
    pub only: Vec<String>,
    /// How long the faults and the workload around them last.
    pub durations: Durations,
    /// How long the system may take to settle after a fault.
    pub settle: Duration,
    /// The pause between each workload caller's calls.
    pub pace: Duration,
    /// Where the service binaries are.
    pub binaries: PathBuf,
    /// Where the services' logs go.
    pub logs: PathBuf,
}

/// One row of the table.
pub struct Row {
    /// The fault.
    pub fault: Fault,
    /// The books once settled (or when the wait was over).
    pub books: Books,
    /// Facts the phase added.
    pub new_facts: usize,
    /// Fee and reward entries the phase added.
    pub new_entries: usize,
    /// Seconds from the fault's recovery (the workload goes on for a while
    /// after it) to clean books; `None` if never.
    pub converged: Option<f64>,
    /// Services the suite had to restart for the books to settle.
    pub restarted: Vec<String>,
    /// Workload calls that succeeded and failed in the phase.
    pub calls: (u64, u64),
}

impl Row {
    /// Whether the fault healed by itself with the books clean.
    /// The phase must also have done something: a fault met by no
    /// workload proves nothing.
    pub fn passed(&self) -> bool {
        self.books.is_clean()
            && self.converged.is_some()
            && self.restarted.is_empty()
            && self.new_facts > 0
            && self.calls.0 > 0
    }
}

/// Runs the faults `options` names; a row per fault.
pub async fn run(options: &Options) -> anyhow::Result<Vec<Row>> {
    let faults: Vec<Fault> = Fault::all()
        .into_iter()
        .filter(|fault| options.only.is_empty() || options.only.contains(&fault.to_string()))
        .collect();
    anyhow::ensure!(
        !faults.is_empty(),
        "--only names no fault; the faults are: {}",
        Fault::all()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut rows = Vec::new();
    let (anytime, midnight): (Vec<Fault>, Vec<Fault>) =
        faults.into_iter().partition(|fault| !fault.at_midnight());
    if !anytime.is_empty() {
        // A company day that is nowhere near its end for the whole run.
        let timezone = timezone_with_midnight_in(Duration::from_secs(12 * 3600))?;
        let mut cluster =
            Cluster::start(&options.binaries, &options.logs.join("main"), timezone).await?;
        let played = options.play(&mut cluster, &anytime, &mut rows).await;
        cluster.stop().await;
        played?;
    }
    for fault in midnight {
        rows.push(
            options
                .midnight(fault, &options.logs.join(fault.to_string()))
                .await?,
        );
    }
    Ok(rows)
}

/// A fixed-offset time zone whose next midnight is `after` from now.
fn timezone_with_midnight_in(after: Duration) -> anyhow::Result<Timezone> {
    let midnight = chrono::Utc::now() + chrono::Duration::from_std(after)?;
    let since_utc_midnight = midnight
        .time()
        .signed_duration_since(chrono::NaiveTime::MIN)
        .num_seconds();
    let offset = i32::try_from((86_400 - since_utc_midnight) % 86_400)?;
    let offset = chrono::FixedOffset::east_opt(offset).context("an offset within a day")?;
    Ok(Timezone::Fixed(offset))
}

/// What a phase leaves for its settling.
struct Phase {
    fault: Fault,
    injected: Injected,
    /// The books when the phase began.
    before: Books,
    /// The workload's calls that succeeded and failed.
    calls: (u64, u64),
    /// When the fault was recovered from.
    recovered: Instant,
    /// The day whose close the books must show, if any.
    closes: Option<chrono::NaiveDate>,
}

impl Options {
    /// Plays `faults` one after the other on `cluster`, under a workload.
    async fn play(
        &self,
        cluster: &mut Cluster,
        faults: &[Fault],
        rows: &mut Vec<Row>,
    ) -> anyhow::Result<()> {
        let (channels, admin) = cluster.admin().await?;
        let company = Company::hire(&channels, &admin).await?;
        for (index, fault) in faults.iter().enumerate() {
            progress(format_args!("{fault}: injecting"));
            let before = check::books(cluster).await?;
            let workload = Workload::start(&channels, &company, self.pace, index as u64);
            let injected = fault::inject(cluster, *fault, self.durations).await;
            let recovered = Instant::now();
            if injected.is_ok() {
                tokio::time::sleep(self.durations.workload).await;
            }
            let calls = workload.counts();
            workload.stop().await;
            let injected = injected.with_context(|| format!("injecting {fault}"))?;
            let row = self
                .settle(
                    cluster,
                    Phase {
                        fault: *fault,
                        injected,
                        before,
                        calls,
                        recovered,
                        closes: None,
                    },
                )
                .await?;
            progress(format_args!(
                "{fault}: {}",
                if row.passed() { "healed" } else { "NOT healed" }
            ));
            rows.push(row);
        }
        Ok(())
    }

    /// Waits for the books to come clean after the phase's fault (poison
    /// discarded once it is all dead-lettered, the day closed if it must
    /// be); if they do not within the settle time, restarts what died, or
    /// else every service, and waits once more.
    async fn settle(&self, cluster: &mut Cluster, phase: Phase) -> anyhow::Result<Row> {
        let Phase {
            fault,
            injected,
            before,
            calls,
            recovered,
            closes,
        } = phase;
        let within = self.settle;
        let mut restarted = Vec::new();
        let mut converged = None;
        let mut books = Books::default();
        for attempt in 0..2 {
            let deadline = Instant::now() + within;
            let mut poison_cleared = !matches!(injected, Injected::Poison(_));
            loop {
                if let Injected::Poison(expected) = &injected
                    && !poison_cleared
                {
                    poison_cleared = fault::clear_poison(cluster, expected).await?;
                }
                // A look that fails (a service still coming back) is a look
                // at books not yet settled.
                books = check::books(cluster).await.unwrap_or_else(|error| Books {
                    problems: vec![format!("the books could not be read: {error:#}")],
                    ..Books::default()
                });
                let closed = closes.is_none_or(|day| books.closed_days.contains(&day));
                if poison_cleared && books.is_clean() && closed {
                    converged = Some(recovered.elapsed().as_secs_f64());
                    break;
                }
                if Instant::now() >= deadline {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            if converged.is_some() || attempt == 1 {
                break;
            }
            // Not healed by itself: what an operator would do.
            let dead: Vec<String> = cluster
                .processes
                .iter_mut()
                .filter_map(|(name, process)| process.exited().then(|| name.clone()))
                .collect();
            let names = if dead.is_empty() {
                cluster.processes.keys().cloned().collect()
            } else {
                dead
            };
            for name in &names {
                let process = cluster.process(name)?;
                process.kill().await?;
                process.start().await?;
            }
            restarted = names;
        }
        Ok(Row {
            fault,
            new_facts: books.facts.saturating_sub(before.facts),
            new_entries: books.entries.saturating_sub(before.entries),
            books,
            converged: if restarted.is_empty() {
                converged
            } else {
                None
            },
            restarted,
            calls,
        })
    }

    /// A cluster of its own whose company midnight falls while Postgres or
    /// the broker is down; the day must close once it is back, paying each
    /// positive balance once.
    async fn midnight(&self, fault: Fault, logs: &Path) -> anyhow::Result<Row> {
        // Long enough for the servers and services to start and the
        // workload to book something before the day ends.
        let lead = Duration::from_secs(40) + self.durations.workload;
        let timezone = timezone_with_midnight_in(lead)?;
        let midnight = tokio::time::Instant::now() + lead;
        let mut cluster = Cluster::start(&self.binaries, logs, timezone).await?;
        let played = async {
            let (channels, admin) = cluster.admin().await?;
            let company = Company::hire(&channels, &admin).await?;
            let before = Books::default();
            let day = popug_runtime::calendar::day_of(chrono::Utc::now(), timezone);
            let down_at = midnight - Duration::from_secs(5);
            anyhow::ensure!(
                tokio::time::Instant::now() < down_at,
                "the cluster took too long to start: midnight is too close to inject {fault} before it"
            );
            progress(format_args!("{fault}: the day {day} ends in {:?}", midnight - tokio::time::Instant::now()));
            let workload = Workload::start(&channels, &company, self.pace, 7);
            tokio::time::sleep_until(down_at).await;
            // Down from 5 s before midnight to at least 5 s after it.
            let outage = self
                .durations
                .outage
                .clamp(Duration::from_secs(10), Duration::from_secs(15));
            match fault {
                Fault::MidnightWithoutPostgres => cluster.postgres.stop()?,
                _ => cluster.broker.stop_app()?,
            }
            tokio::time::sleep(outage).await;
            match fault {
                Fault::MidnightWithoutPostgres => cluster.postgres.resume()?,
                _ => cluster.broker.start_app()?,
            }
            let recovered = Instant::now();
            tokio::time::sleep(self.durations.workload).await;
            let calls = workload.counts();
            workload.stop().await;
            let mut row = self
                .settle(
                    &mut cluster,
                    Phase {
                        fault,
                        injected: Injected::Done,
                        before,
                        calls,
                        recovered,
                        closes: Some(day),
                    },
                )
                .await?;
            if !row.books.closed_days.contains(&day) {
                row.books.problems.push(format!("the day {day} was not closed after its midnight"));
                row.converged = None;
            } else if row.books.payouts == 0 {
                row.books.problems.push(format!("the close of {day} paid nobody"));
            }
            anyhow::Ok(row)
        }
        .await;
        cluster.stop().await;
        played
    }
}

/// Prints the table of `rows`.
#[allow(clippy::print_stdout)] // the table is the suite's output
pub fn print_table(rows: &[Row]) {
    println!(
        "\n{:<28} {:>6} {:>8} {:>5} {:>5} {:>5} {:>10} {:>9} {:>7} {:>9}  RESTARTED",
        "FAULT",
        "FACTS",
        "ENTRIES",
        "LOST",
        "DUP",
        "UNEXP",
        "CONVERGED",
        "CALLS OK",
        "FAILED",
        "PAYOUTS",
    );
    for row in rows {
        println!(
            "{:<28} {:>6} {:>8} {:>5} {:>5} {:>5} {:>10} {:>9} {:>7} {:>9}  {}",
            row.fault.to_string(),
            row.new_facts,
            row.new_entries,
            row.books.lost,
            row.books.duplicated,
            row.books.unexpected,
            row.converged
                .map_or_else(|| "never".to_owned(), |seconds| format!("{seconds:.1} s")),
            row.calls.0,
            row.calls.1,
            row.books.payouts,
            if row.restarted.is_empty() {
                "-".to_owned()
            } else {
                row.restarted.join(",")
            },
        );
    }
}

/// Prints a line of progress (stdout: what the suite is doing is its
/// output, and a test shows it when the suite fails).
#[allow(clippy::print_stdout)]
pub(crate) fn progress(line: std::fmt::Arguments<'_>) {
    println!("{line}");
}
