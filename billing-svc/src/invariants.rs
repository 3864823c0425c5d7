//! The money invariants, checked by the tests after every money-moving test
//! and by `popug audit`: each query lists what breaks a rule; none is good.

use diesel::QueryableByName;
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};

#[derive(QueryableByName)]
struct Violation {
    #[diesel(sql_type = diesel::sql_types::Text)]
    what: String,
}

const CHECKS: [(&str, &str); 6] = [
    (
        "every balance equals the sum of its entries",
        "SELECT 'account ' || a.account_id || ': balance ' || a.balance_cents || ' <> entries ' || COALESCE(e.total, 0) AS what \
         FROM accounts a LEFT JOIN (SELECT account_id, sum(amount_cents) AS total FROM entries GROUP BY account_id) e \
         USING (account_id) WHERE a.balance_cents <> COALESCE(e.total, 0)",
    ),
    (
        "one fee entry per TaskAssigned event, one reward per TaskCompleted",
        "SELECT 'event ' || source_event_id || ' has ' || count(*) || ' ' || kind || ' entries' AS what \
         FROM entries GROUP BY source_event_id, kind HAVING count(*) > 1",
    ),
    (
        "every fee and reward comes from an applied event",
        "SELECT 'entry ' || e.entry_id || ' has no applied source event' AS what FROM entries e \
         WHERE e.kind <> 'payout' AND NOT EXISTS \
             (SELECT 1 FROM inbox i WHERE i.consumer = 'billing' AND i.event_id = e.source_event_id)",
    ),
    (
        "one payout per (account, day), of a positive amount, matching its entry",
        "SELECT 'payout ' || p.payout_id || ' does not match its entry' AS what FROM payouts p \
         JOIN entries e ON e.entry_id = p.entry_id \
         WHERE e.kind <> 'payout' OR e.amount_cents <> -p.amount_cents OR e.account_id <> p.account_id OR e.day <> p.day \
         UNION ALL SELECT 'payout entry ' || e.entry_id || ' has no payout row' FROM entries e \
         WHERE e.kind = 'payout' AND NOT EXISTS (SELECT 1 FROM payouts p WHERE p.entry_id = e.entry_id)",
    ),
    (
        "every closed day's payouts add up to its close",
        "SELECT 'day ' || c.day || ' closed with ' || c.payouts_cents || ' but paid ' || COALESCE(sum(p.amount_cents), 0) AS what \
         FROM day_closes c LEFT JOIN payouts p ON p.day = c.day GROUP BY c.day, c.payouts_cents, c.accounts_paid \
         HAVING c.payouts_cents <> COALESCE(sum(p.amount_cents), 0) OR c.accounts_paid <> count(p.payout_id)",
    ),
    (
        "no entry lands in a closed day after its close",
        "SELECT 'entry ' || e.entry_id || ' landed in closed day ' || e.day AS what FROM entries e \
         JOIN day_closes c ON c.day = e.day WHERE e.occurred_at > c.closed_at",
    ),
];

/// Every violation of the money invariants, as readable lines.
pub async fn violations(
    conn: &mut AsyncPgConnection,
) -> Result<Vec<String>, diesel::result::Error> {
    let mut found = Vec::new();
    for (rule, query) in CHECKS {
        let rows: Vec<Violation> = diesel::sql_query(query).load(conn).await?;
        found.extend(rows.into_iter().map(|row| format!("{rule}: {}", row.what)));
    }
    Ok(found)
}
