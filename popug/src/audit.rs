//! `popug audit`: the cross-service money check, through the public APIs and
//! the ops endpoints only (an auditor holds the services' own answers
//! against each other; it never reads their databases).
//!
//! It checks that:
//! - every assignment and completion the tracker committed is exactly one
//!   billing entry, for the right account and task, and nothing else is booked;
//! - each task is priced once, within the rules' ranges;
//! - billing's own invariants hold;
//! - analytics agrees with billing to the cent, day by day;
//! - no outbox holds events, and no dead letter is left unresolved.
//!
//! Events take a moment to flow, so the check is repeated until it passes or
//! the wait is over; the report is that of the last attempt.

use std::{
    collections::{BTreeMap, HashMap},
    fmt,
    time::Duration,
};

use chrono::NaiveDate;
use popug_proto::{
    events::rules,
    pb::popug::{
        analytics::v1 as analytics, billing::v1 as billing, ops::v1 as ops, tracker::v1 as tracker,
    },
};
use popug_runtime::Service;

use crate::client::{Bearer, Channels, answer, ledger_entries, task_history};

/// What an audit found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditReport {
    /// Assignments and completions the tracker committed.
    pub tracker_facts: usize,
    /// Entries in billing's ledger, payouts included.
    pub ledger_entries: usize,
    /// Days compared between billing and analytics.
    pub days: usize,
    /// Every discrepancy, as a readable line; empty when the books agree.
    pub problems: Vec<String>,
}

impl AuditReport {
    /// Whether the books agree everywhere.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

/// The most problems printed; the count says how many more there were.
const SHOWN: usize = 50;

impl fmt::Display for AuditReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let checked = format!(
            "{} tracker facts, {} ledger entries, {} days compared",
            self.tracker_facts, self.ledger_entries, self.days
        );
        if self.is_clean() {
            return write!(f, "audit: clean ({checked})");
        }
        writeln!(f, "audit: {} problem(s) ({checked}):", self.problems.len())?;
        for problem in self.problems.iter().take(SHOWN) {
            writeln!(f, "  - {problem}")?;
        }
        if self.problems.len() > SHOWN {
            writeln!(f, "  ... and {} more", self.problems.len() - SHOWN)?;
        }
        Ok(())
    }
}

/// Audits the mesh behind `channels` as `admin` (an admin's token), retrying
/// for up to `wait` while events are still flowing.
pub async fn audit(
    channels: &Channels,
    admin: &Bearer,
    wait: Duration,
) -> anyhow::Result<AuditReport> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let report = check(&Snapshot::take(channels, admin).await?);
        if report.is_clean() || tokio::time::Instant::now() >= deadline {
            return Ok(report);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Everything the audit compares, read from the services.
struct Snapshot {
    history: Vec<tracker::HistoryEntry>,
    entries: Vec<billing::Entry>,
    violations: Vec<String>,
    /// Billing's and analytics' figures over the ledger's days.
    days: Vec<(billing::DayEarnings, analytics::DayStats)>,
    /// Analytics' most expensive task over the ledger's days.
    top_reward: Option<i64>,
    outboxes: Vec<(Service, ops::GetOutboxStatusResponse)>,
    dead_letters: Vec<(Service, ops::ListDeadLettersResponse)>,
}

impl Snapshot {
    async fn take(channels: &Channels, admin: &Bearer) -> anyhow::Result<Self> {
        // Outboxes first: when they are empty, everything below was published.
        let mut outboxes = Vec::new();
        for service in Service::ALL {
            let mut ops_client = channels.ops(service, admin);
            let status =
                answer(ops_client.get_outbox_status(ops::GetOutboxStatusRequest {})).await?;
            outboxes.push((service, status));
        }
        let mut dead_letters = Vec::new();
        for service in [Service::Tracker, Service::Billing, Service::Analytics] {
            let request = ops::ListDeadLettersRequest {
                page_size: 100,
                include_resolved: false,
                ..ops::ListDeadLettersRequest::default()
            };
            let listed = answer(channels.ops(service, admin).list_dead_letters(request)).await?;
            dead_letters.push((service, listed));
        }
        let history = task_history(&channels.tracker(admin)).await?;
        let entries = ledger_entries(&channels.billing(admin)).await?;
        let mut billing_client = channels.billing(admin);
        let violations = answer(billing_client.audit_ledger(billing::AuditLedgerRequest {}))
            .await?
            .violations;
        let (days, top_reward) = match ledger_days(&entries) {
            None => (Vec::new(), None),
            Some((from, to)) => {
                let (from, to) = (from.to_string(), to.to_string());
                let request = billing::GetManagementEarningsRequest {
                    from: from.clone(),
                    to: to.clone(),
                };
                let earnings = answer(billing_client.get_management_earnings(request))
                    .await?
                    .days;
                let mut analytics_client = channels.analytics(admin);
                let request = analytics::GetDailyStatsRequest {
                    from: from.clone(),
                    to: to.clone(),
                };
                let stats = answer(analytics_client.get_daily_stats(request))
                    .await?
                    .days;
                let request = analytics::GetMostExpensiveTaskRequest {
                    period: analytics::Period::Unspecified.into(),
                    from,
                    to,
                };
                let top = answer(analytics_client.get_most_expensive_task(request))
                    .await?
                    .task;
                (
                    earnings.into_iter().zip(stats).collect(),
                    top.map(|task| task.reward_cents),
                )
            }
        };
        Ok(Self {
            history,
            entries,
            violations,
            days,
            top_reward,
            outboxes,
            dead_letters,
        })
    }
}

fn day(entry: &billing::Entry) -> Option<NaiveDate> {
    entry.day.parse().ok()
}

/// The first and last day with entries.
fn ledger_days(entries: &[billing::Entry]) -> Option<(NaiveDate, NaiveDate)> {
    let days = entries.iter().filter_map(day);
    Some((days.clone().min()?, days.max()?))
}

fn kind(entry: &billing::Entry) -> billing::EntryKind {
    billing::EntryKind::try_from(entry.kind).unwrap_or(billing::EntryKind::Unspecified)
}

/// Every discrepancy in `snapshot`.
fn check(snapshot: &Snapshot) -> AuditReport {
    let mut problems = Vec::new();
    for (service, status) in &snapshot.outboxes {
        if status.pending > 0 {
            problems.push(format!(
                "{service}'s outbox holds {} unpublished event(s), the oldest {} ms old{}",
                status.pending,
                status.oldest_pending_age_ms,
                if status.last_error.is_empty() {
                    String::new()
                } else {
                    format!(" (relay: {})", status.last_error)
                }
            ));
        }
    }
    for (service, listed) in &snapshot.dead_letters {
        if listed.unresolved > 0 || listed.dead_letter_queue_depth > 0 {
            let shown: Vec<String> = listed
                .dead_letters
                .iter()
                .take(5)
                .map(|dead| format!("{} {}: {}", dead.event_type, dead.event_id, dead.error))
                .collect();
            problems.push(format!(
                "{service} has {} unresolved dead letter(s), {} in its dead-letter queue: {}",
                listed.unresolved,
                listed.dead_letter_queue_depth,
                shown.join("; ")
            ));
        }
    }
    problems.extend(
        snapshot
            .violations
            .iter()
            .map(|violation| format!("billing invariant broken: {violation}")),
    );
    problems.extend(match_facts(&snapshot.history, &snapshot.entries));
    problems.extend(check_prices(&snapshot.entries));
    problems.extend(compare_analytics(snapshot));
    AuditReport {
        tracker_facts: snapshot.history.len(),
        ledger_entries: snapshot.entries.len(),
        days: snapshot.days.len(),
        problems,
    }
}

/// Each tracker fact is exactly one entry of the matching kind, account and
/// task; each fee or reward books a fact.
fn match_facts(history: &[tracker::HistoryEntry], entries: &[billing::Entry]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut booked: HashMap<(&str, billing::EntryKind), Vec<&billing::Entry>> = HashMap::new();
    for entry in entries {
        booked
            .entry((entry.source_event_id.as_str(), kind(entry)))
            .or_default()
            .push(entry);
    }
    let mut facts: HashMap<&str, &tracker::HistoryEntry> = HashMap::new();
    for fact in history {
        facts.insert(fact.event_id.as_str(), fact);
        let (wanted, what) = match tracker::HistoryKind::try_from(fact.kind) {
            Ok(tracker::HistoryKind::Assigned) => (billing::EntryKind::AssignmentFee, "assignment"),
            Ok(tracker::HistoryKind::Completed) => {
                (billing::EntryKind::CompletionReward, "completion")
            }
            _ => {
                problems.push(format!("tracker fact {} has no kind", fact.event_id));
                continue;
            }
        };
        match booked
            .get(&(fact.event_id.as_str(), wanted))
            .map(Vec::as_slice)
        {
            None | Some([]) => problems.push(format!(
                "the {what} {} of task {} to {} has no billing entry (lost)",
                fact.event_id, fact.task_id, fact.account_id
            )),
            Some([entry]) => {
                if entry.account_id != fact.account_id || entry.task_id != fact.task_id {
                    problems.push(format!(
                        "the {what} {} (task {}, account {}) is booked as task {}, account {}",
                        fact.event_id,
                        fact.task_id,
                        fact.account_id,
                        entry.task_id,
                        entry.account_id
                    ));
                }
            }
            Some(many) => problems.push(format!(
                "the {what} {} is booked {} times",
                fact.event_id,
                many.len()
            )),
        }
    }
    for entry in entries {
        if kind(entry) != billing::EntryKind::Payout
            && !facts.contains_key(entry.source_event_id.as_str())
        {
            problems.push(format!(
                "billing entry {} ({} cents) books event {}, which the tracker never committed",
                entry.entry_id, entry.amount_cents, entry.source_event_id
            ));
        }
    }
    problems
}

/// Every fee of a task is the same amount, as is every reward, within the
/// rules' ranges.
fn check_prices(entries: &[billing::Entry]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut prices: HashMap<(&str, billing::EntryKind), i64> = HashMap::new();
    for entry in entries {
        let (range, amount) = match kind(entry) {
            billing::EntryKind::AssignmentFee => (rules::FEE_CENTS, -entry.amount_cents),
            billing::EntryKind::CompletionReward => (rules::REWARD_CENTS, entry.amount_cents),
            _ => continue,
        };
        if !range.contains(&amount) {
            problems.push(format!(
                "entry {} of task {} is {amount} cents, outside {range:?}",
                entry.entry_id, entry.task_id
            ));
        }
        let price = *prices
            .entry((entry.task_id.as_str(), kind(entry)))
            .or_insert(amount);
        if price != amount {
            problems.push(format!(
                "task {} was charged {price} and {amount} cents for the same thing",
                entry.task_id
            ));
        }
    }
    problems
}

/// Analytics' figures equal billing's, and both equal the ledger's own sums.
fn compare_analytics(snapshot: &Snapshot) -> Vec<String> {
    let mut problems = Vec::new();
    // Fees minus rewards, and each account's running balance, per day.
    let mut earnings: BTreeMap<NaiveDate, i64> = BTreeMap::new();
    let mut movements: BTreeMap<NaiveDate, Vec<(&str, i64)>> = BTreeMap::new();
    let mut top_reward = None;
    for entry in &snapshot.entries {
        let Some(day) = day(entry) else { continue };
        movements
            .entry(day)
            .or_default()
            .push((entry.account_id.as_str(), entry.amount_cents));
        match kind(entry) {
            billing::EntryKind::AssignmentFee | billing::EntryKind::CompletionReward => {
                *earnings.entry(day).or_default() -= entry.amount_cents;
            }
            _ => {}
        }
        if kind(entry) == billing::EntryKind::CompletionReward {
            top_reward = top_reward.max(Some(entry.amount_cents));
        }
    }
    let mut balances: HashMap<&str, i64> = HashMap::new();
    let mut in_the_red: BTreeMap<NaiveDate, u32> = BTreeMap::new();
    for (day, moves) in &movements {
        for (account, amount) in moves {
            *balances.entry(account).or_default() += amount;
        }
        let red = balances.values().filter(|balance| **balance < 0).count();
        in_the_red.insert(*day, u32::try_from(red).unwrap_or(u32::MAX));
    }
    for (billed, seen) in &snapshot.days {
        let Ok(date) = billed.date.parse::<NaiveDate>() else {
            problems.push(format!("billing answered a day `{}`", billed.date));
            continue;
        };
        if billed.date != seen.date {
            problems.push(format!(
                "billing's day {} is analytics' day {}",
                billed.date, seen.date
            ));
            continue;
        }
        let ledger = earnings.get(&date).copied().unwrap_or(0);
        if billed.earnings_cents != ledger {
            problems.push(format!(
                "{date}: billing reports earnings of {} cents, its entries sum to {ledger}",
                billed.earnings_cents
            ));
        }
        if seen.management_earnings_cents != billed.earnings_cents {
            problems.push(format!(
                "{date}: analytics shows earnings of {} cents, billing {}",
                seen.management_earnings_cents, billed.earnings_cents
            ));
        }
        // Days without entries carry the previous day's count forward.
        let red = in_the_red
            .range(..=date)
            .next_back()
            .map_or(0, |(_, red)| *red);
        if seen.negative_balance_popugs != red {
            problems.push(format!(
                "{date}: analytics counts {} popugs in the red, billing's entries {red}",
                seen.negative_balance_popugs
            ));
        }
    }
    if snapshot.top_reward != top_reward {
        problems.push(format!(
            "analytics' most expensive task pays {:?} cents, billing's largest reward is {top_reward:?}",
            snapshot.top_reward
        ));
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fact(event: &str, kind: tracker::HistoryKind) -> tracker::HistoryEntry {
        tracker::HistoryEntry {
            event_id: event.into(),
            task_id: "t1".into(),
            kind: kind.into(),
            account_id: "a1".into(),
            occurred_at: None,
        }
    }

    fn entry(id: &str, source: &str, kind: billing::EntryKind, amount: i64) -> billing::Entry {
        billing::Entry {
            entry_id: id.into(),
            kind: kind.into(),
            amount_cents: amount,
            task_id: "t1".into(),
            account_id: "a1".into(),
            source_event_id: source.into(),
            day: "2026-01-05".into(),
            ..billing::Entry::default()
        }
    }

    #[test]
    fn lost_double_and_phantom_entries_are_named() {
        use billing::EntryKind::{AssignmentFee, CompletionReward};
        let history = [
            fact("e1", tracker::HistoryKind::Assigned),
            fact("e2", tracker::HistoryKind::Assigned),
            fact("e3", tracker::HistoryKind::Completed),
        ];
        let entries = [
            entry("x1", "e1", AssignmentFee, -1500),
            entry("x2", "e1", AssignmentFee, -1500),
            entry("x3", "e3", CompletionReward, 3000),
            entry("x4", "e9", CompletionReward, 3000),
        ];
        let problems = match_facts(&history, &entries);
        assert_eq!(problems.len(), 3, "{problems:#?}");
        assert!(problems[0].contains("e1 is booked 2 times"));
        assert!(problems[1].contains("e2") && problems[1].contains("lost"));
        assert!(problems[2].contains("e9"));
        assert!(match_facts(&history[..1], &entries[..1]).is_empty());
    }

    #[test]
    fn a_task_priced_twice_or_out_of_range_is_named() {
        use billing::EntryKind::AssignmentFee;
        let problems = check_prices(&[
            entry("x1", "e1", AssignmentFee, -1500),
            entry("x2", "e2", AssignmentFee, -1600),
            entry("x3", "e3", AssignmentFee, -900),
        ]);
        assert_eq!(problems.len(), 3, "{problems:#?}");
    }
}
