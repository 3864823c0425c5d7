//! `popug audit`: the cross-service money check ([`popug::audit`]) against
//! the running services, and how its report is printed.

use std::time::Duration;

use anyhow::bail;
use popug::client::Channels;
use serde_json::json;

use crate::{config, output, session};

/// Audits the books; fails unless they agree.
pub(crate) async fn run(json: bool, wait: u64) -> anyhow::Result<()> {
    let (_, bearer) = session::signed_in().await?;
    let channels = Channels::connect(config::endpoints()).await?;
    let report = popug::audit::audit(&channels, &bearer, Duration::from_secs(wait)).await?;
    print_report(json, &report);
    if report.is_clean() {
        Ok(())
    } else {
        bail!("the books do not agree")
    }
}

/// Prints an audit's report: its text, or with `--json` its figures and problems.
pub(crate) fn print_report(json: bool, report: &popug::audit::AuditReport) {
    if json {
        output::print_json(json!({
            "clean": report.is_clean(), "tracker_facts": report.tracker_facts,
            "ledger_entries": report.ledger_entries, "days": report.days, "problems": report.problems,
        }));
    } else {
        #[allow(clippy::print_stdout)] // the report is the command's output
        {
            println!("{report}");
        }
    }
}
