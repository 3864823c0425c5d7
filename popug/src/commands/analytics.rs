//! `popug analytics ...`: the admin dashboards of analytics-svc (a day's
//! management earnings and popugs in the red, day by day, the top task).

use anyhow::bail;
use clap::Subcommand;
use popug::client::{answer, connect};
use popug_proto::pb::popug::analytics::v1::{
    self as analytics, analytics_service_client::AnalyticsServiceClient,
};
use serde_json::{Value, json};

use crate::{
    config,
    output::{self, dollars},
    session,
};

#[derive(Subcommand)]
pub(crate) enum AnalyticsCommand {
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

const DAY_COLUMNS: &[&str] = &["date", "management_earnings", "negative_balance_popugs"];

fn day_row(date: &str, earnings: i64, negative: u32) -> Value {
    json!({
        "date": date, "management_earnings_cents": earnings, "management_earnings": dollars(earnings),
        "negative_balance_popugs": negative,
    })
}

/// Runs one `popug analytics` command.
pub(crate) async fn run(json: bool, command: AnalyticsCommand) -> anyhow::Result<()> {
    let (_, bearer) = session::signed_in().await?;
    let mut client = AnalyticsServiceClient::with_interceptor(
        connect(&config::endpoints().analytics).await?,
        bearer,
    );
    match command {
        AnalyticsCommand::Dashboard { date } => {
            let day = answer(client.get_dashboard(analytics::GetDashboardRequest { date })).await?;
            output::print(
                json,
                DAY_COLUMNS,
                &[day_row(
                    &day.date,
                    day.management_earnings_cents,
                    day.negative_balance_popugs,
                )],
            );
        }
        AnalyticsCommand::Daily { from, to } => {
            let request = analytics::GetDailyStatsRequest { from, to };
            let days = answer(client.get_daily_stats(request)).await?.days;
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
            output::print_list(json, DAY_COLUMNS, rows);
        }
        AnalyticsCommand::TopTask { period, from, to } => {
            let period = match period.as_deref() {
                None => analytics::Period::Unspecified,
                Some("day") => analytics::Period::Day,
                Some("week") => analytics::Period::Week,
                Some("month") => analytics::Period::Month,
                Some(other) => bail!("`{other}` is not a period: day, week or month"),
            };
            let request = analytics::GetMostExpensiveTaskRequest {
                period: period.into(),
                from,
                to,
            };
            let task = answer(client.get_most_expensive_task(request)).await?.task;
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
            output::print_list(json, &["key", "title", "reward", "completed_at"], rows);
        }
    }
    Ok(())
}
