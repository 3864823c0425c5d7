//! The books, checked straight from the services' databases (as only an
//! operator can) and through `popug audit` (as a client sees them).
//!
//! In Jepsen's terms, each fact the tracker committed (an assignment or a
//! completion, in its `task_history`) must be exactly one ledger entry of
//! the right kind, popug and amount: a fact without one is **lost**, a fact
//! booked twice is **duplicated**, and an entry that books no fact, or books
//! one wrongly, is **unexpected**.

use std::collections::HashMap;

use anyhow::Context as _;
use popug_runtime::Service;
use tokio_postgres::NoTls;

use crate::cluster::Cluster;

/// What one look at the books found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Books {
    /// Assignments and completions the tracker committed.
    pub facts: usize,
    /// Fee and reward entries in billing's ledger.
    pub entries: usize,
    /// Payout entries.
    pub payouts: usize,
    /// Days closed.
    pub closed_days: Vec<chrono::NaiveDate>,
    /// Facts with no entry.
    pub lost: usize,
    /// Facts with more than one entry.
    pub duplicated: usize,
    /// Entries that book no fact, or book one wrongly.
    pub unexpected: usize,
    /// Every other discrepancy, readable: balances, outboxes, payouts, and
    /// whatever `popug audit` reports.
    pub problems: Vec<String>,
}

impl Books {
    /// Whether everything agrees.
    pub fn is_clean(&self) -> bool {
        self.lost == 0 && self.duplicated == 0 && self.unexpected == 0 && self.problems.is_empty()
    }
}

async fn connect(url: &str) -> anyhow::Result<tokio_postgres::Client> {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .with_context(|| format!("connecting to {url}"))?;
    tokio::spawn(connection);
    Ok(client)
}

/// Reads every database and audits through the APIs.
pub async fn books(cluster: &Cluster) -> anyhow::Result<Books> {
    let tracker = connect(&cluster.database_url(Service::Tracker)).await?;
    let billing = connect(&cluster.database_url(Service::Billing)).await?;
    let mut books = Books::default();

    // Billing's entries, then the tracker's facts: an entry is never of a
    // fact committed after the facts were read, so a fact committed in
    // between can only look lost for a moment (which settling waits out),
    // never make an entry look unexpected.
    let rows = billing
        .query(
            "SELECT source_event_id::text, kind, task_id::text, account_id::text, amount_cents FROM entries \
             WHERE kind <> 'payout'",
            &[],
        )
        .await?;
    let prices: HashMap<String, (i64, i64)> = billing
        .query(
            "SELECT task_id::text, fee_cents, reward_cents FROM tasks",
            &[],
        )
        .await?
        .iter()
        .map(|row| (row.get(0), (row.get(1), row.get(2))))
        .collect();
    let facts: HashMap<String, (String, String, String)> = tracker
        .query(
            "SELECT event_id::text, kind, task_id::text, account_id::text FROM task_history",
            &[],
        )
        .await?
        .iter()
        .map(|row| (row.get(0), (row.get(1), row.get(2), row.get(3))))
        .collect();
    books.facts = facts.len();
    books.entries = rows.len();
    let mut booked: HashMap<String, usize> = HashMap::new();
    for row in &rows {
        let (source, kind, task, account, amount): (String, String, Option<String>, String, i64) =
            (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4));
        *booked.entry(source.clone()).or_default() += 1;
        let right = facts
            .get(&source)
            .is_some_and(|(fact, fact_task, fact_account)| {
                let price = prices
                    .get(fact_task)
                    .map(|(fee, reward)| match fact.as_str() {
                        "assigned" => ("assignment_fee", -fee),
                        _ => ("completion_reward", *reward),
                    });
                task.as_ref() == Some(fact_task)
                    && account == *fact_account
                    && price == Some((kind.as_str(), amount))
            });
        if !right {
            books.unexpected += 1;
        }
    }
    for source in facts.keys() {
        match booked.get(source).copied().unwrap_or(0) {
            0 => books.lost += 1,
            1 => {}
            _ => books.duplicated += 1,
        }
    }

    // Each popug's balance is the sum of its postings.
    for row in billing
        .query(
            "SELECT a.account_id::text, a.balance_cents, coalesce(p.total, 0)::int8 FROM accounts a \
             LEFT JOIN (SELECT popug_id, sum(amount_cents) AS total FROM postings \
                        WHERE popug_id IS NOT NULL GROUP BY popug_id) p ON p.popug_id = a.account_id \
             WHERE a.balance_cents <> coalesce(p.total, 0)",
            &[],
        )
        .await?
    {
        let (account, balance, total): (String, i64, i64) = (row.get(0), row.get(1), row.get(2));
        books
            .problems
            .push(format!("popug {account} has a balance of {balance} cents, its postings sum to {total}"));
    }

    // At each close, every positive balance is paid once, in full, and
    // nobody else is paid.
    books.closed_days = billing
        .query("SELECT day::text FROM day_closes ORDER BY day", &[])
        .await?
        .iter()
        .filter_map(|row| row.get::<_, String>(0).parse().ok())
        .collect();
    books.payouts = billing
        .query_one("SELECT count(*) FROM entries WHERE kind = 'payout'", &[])
        .await?
        .get::<_, i64>(0)
        .try_into()
        .unwrap_or(usize::MAX);
    for row in billing
        .query(
            "WITH owed AS ( \
                 SELECT c.day, e.account_id, \
                        coalesce(sum(e.amount_cents) FILTER (WHERE NOT (e.kind = 'payout' AND e.day = c.day)), 0)::int8 AS owed, \
                        count(*) FILTER (WHERE e.kind = 'payout' AND e.day = c.day) AS paid_entries, \
                        coalesce(sum(e.amount_cents) FILTER (WHERE e.kind = 'payout' AND e.day = c.day), 0)::int8 AS paid \
                 FROM day_closes c JOIN entries e ON e.day <= c.day \
                 GROUP BY c.day, e.account_id) \
             SELECT day::text, account_id::text, owed, paid_entries, paid, \
                    (SELECT count(*) FROM payouts p WHERE p.account_id = owed.account_id AND p.day = owed.day) \
             FROM owed \
             WHERE NOT ((owed > 0 AND paid_entries = 1 AND paid = -owed) OR (owed <= 0 AND paid_entries = 0)) \
                OR (SELECT count(*) FROM payouts p WHERE p.account_id = owed.account_id AND p.day = owed.day) <> paid_entries",
            &[],
        )
        .await?
    {
        let (day, account, owed, entries, paid, payouts): (String, String, i64, i64, i64, i64) =
            (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4), row.get(5));
        books.problems.push(format!(
            "the close of {day} owed popug {account} {owed} cents and paid {paid} in {entries} entries \
             ({payouts} payout rows)"
        ));
    }

    // Every outbox is empty: all that was committed was published.
    for service in Service::ALL {
        let db = connect(&cluster.database_url(service)).await?;
        let has_outbox: bool = db
            .query_one("SELECT to_regclass('outbox') IS NOT NULL", &[])
            .await?
            .get(0);
        if !has_outbox {
            continue;
        }
        let pending: i64 = db
            .query_one("SELECT count(*) FROM outbox", &[])
            .await?
            .get(0);
        if pending > 0 {
            books.problems.push(format!(
                "{service}'s outbox holds {pending} unpublished event(s)"
            ));
        }
    }

    // And as a client sees it: billing's invariants, analytics against
    // billing day by day, dead letters, outboxes.
    let (channels, admin) = cluster.admin().await?;
    let audit = popug::audit::audit(&channels, &admin, std::time::Duration::ZERO).await?;
    books.problems.extend(
        audit
            .problems
            .into_iter()
            .map(|problem| format!("audit: {problem}")),
    );
    Ok(books)
}
