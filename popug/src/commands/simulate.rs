//! `popug simulate`: whole working days of a popug company on a private
//! mesh ([`popug::simulate`]), printed day by day, with the audit after.

use anyhow::bail;
use clap::Args;
use serde_json::{Value, json};

use crate::output::{self, dollars};

/// The options of `popug simulate`.
#[derive(Args)]
pub(crate) struct Simulate {
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
}

/// Plays the days; fails unless the books agree at the end.
pub(crate) async fn run(json: bool, simulate: Simulate) -> anyhow::Result<()> {
    let options = popug::simulate::Options {
        popugs: simulate.popugs,
        tasks: simulate.tasks,
        days: simulate.days,
        seed: simulate.seed,
        concurrency: simulate.concurrency,
        keep: simulate.keep,
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
        output::print_json(json!({
            "days": rows,
            "audit": { "clean": report.audit.is_clean(), "problems": report.audit.problems },
        }));
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
        super::audit::print_report(false, &report.audit);
    }
}
