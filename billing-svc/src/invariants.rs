//! The money invariants, checked by the tests after every money-moving test
//! and by `AuditLedger` / `popug audit`: each query lists what breaks a rule;
//! none is good.

use diesel::QueryableByName;
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};

#[derive(QueryableByName)]
struct Violation {
    #[diesel(sql_type = diesel::sql_types::Text)]
    what: String,
}

const CHECKS: [(&str, &str); 12] = [
    (
        "every transaction balances: its postings sum to zero",
        "SELECT 'transaction ' || tx_id || ' sums to ' || sum(amount_cents) AS what \
         FROM postings GROUP BY tx_id HAVING sum(amount_cents) <> 0",
    ),
    (
        "every transaction has one popug leg and one leg on its kind's company account, with the kind's signs",
        "SELECT 'transaction ' || t.tx_id || ' (' || t.kind || ') has legs ' || \
                COALESCE(string_agg(p.account || ' ' || p.amount_cents, ', ' ORDER BY p.seq), 'none') AS what \
         FROM transactions t LEFT JOIN postings p ON p.tx_id = t.tx_id GROUP BY t.tx_id, t.kind \
         HAVING count(*) FILTER (WHERE p.account = 'popug' AND \
                    CASE t.kind WHEN 'completion_reward' THEN p.amount_cents > 0 ELSE p.amount_cents < 0 END) <> 1 \
             OR count(*) FILTER (WHERE p.account = CASE t.kind WHEN 'assignment_fee' THEN 'revenue' \
                    WHEN 'completion_reward' THEN 'expense' ELSE 'payouts' END) <> 1 \
             OR count(p.seq) <> 2",
    ),
    (
        "the books sum to zero: every popug's balance plus every company account",
        "SELECT 'popug balances ' || p.cents || ' + company accounts ' || c.cents || ' <> 0' AS what \
         FROM (SELECT COALESCE(sum(balance_cents), 0) AS cents FROM accounts) p, \
              (SELECT COALESCE(sum(amount_cents), 0) AS cents FROM postings WHERE popug_id IS NULL) c \
         WHERE p.cents + c.cents <> 0",
    ),
    (
        "every posting belongs to a transaction, every popug leg to a known popug, every \
         transaction's task to a known task",
        "SELECT 'posting ' || p.seq || ' of unknown transaction ' || p.tx_id AS what FROM postings p \
         WHERE NOT EXISTS (SELECT 1 FROM transactions t WHERE t.tx_id = p.tx_id) \
         UNION ALL SELECT 'posting ' || p.seq || ' to unknown popug ' || p.popug_id FROM postings p \
         WHERE p.popug_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM accounts a WHERE a.account_id = p.popug_id) \
         UNION ALL SELECT 'transaction ' || t.tx_id || ' of unknown task ' || t.task_id FROM transactions t \
         WHERE t.task_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM tasks k WHERE k.task_id = t.task_id)",
    ),
    (
        "every balance equals the sum of its entries",
        "SELECT 'account ' || a.account_id || ': balance ' || a.balance_cents || ' <> entries ' || COALESCE(e.total, 0) AS what \
         FROM accounts a LEFT JOIN (SELECT account_id, sum(amount_cents) AS total FROM entries GROUP BY account_id) e \
         USING (account_id) WHERE a.balance_cents <> COALESCE(e.total, 0)",
    ),
    (
        "every entry's balance after it is the running sum of its account's entries",
        "SELECT 'entry ' || entry_id || ' says balance ' || balance_after_cents || ', the running sum is ' || running AS what \
         FROM (SELECT entry_id, balance_after_cents, \
                      sum(amount_cents) OVER (PARTITION BY account_id ORDER BY seq) AS running FROM entries) e \
         WHERE balance_after_cents <> running",
    ),
    (
        "one fee per TaskAssigned event, one reward per task",
        "SELECT 'event ' || source_event_id || ' has ' || count(*) || ' ' || kind || ' entries' AS what \
         FROM transactions GROUP BY source_event_id, kind HAVING count(*) > 1 \
         UNION ALL SELECT 'task ' || task_id || ' was rewarded ' || count(*) || ' times' FROM transactions \
         WHERE kind = 'completion_reward' GROUP BY task_id HAVING count(*) > 1",
    ),
    (
        "every fee and reward comes from an applied event",
        "SELECT 'transaction ' || t.tx_id || ' has no applied source event' AS what FROM transactions t \
         WHERE t.kind <> 'payout' AND NOT EXISTS \
             (SELECT 1 FROM inbox i WHERE i.consumer = 'billing' AND i.event_id = t.source_event_id)",
    ),
    (
        "one payout per (account, day), of a positive amount, matching its entry",
        "SELECT 'payout ' || p.payout_id || ' does not match its entry' AS what FROM payouts p \
         LEFT JOIN entries e ON e.entry_id = p.entry_id \
         WHERE e.entry_id IS NULL OR e.kind <> 'payout' OR e.amount_cents <> -p.amount_cents \
            OR e.account_id <> p.account_id OR e.day <> p.day \
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
    (
        "each close paid exactly the balances at the end of its day: after it, no popug has a positive \
         balance through that day, and every popug paid has none at all",
        "SELECT 'account ' || b.account_id || ' ends closed day ' || c.day || ' with ' || b.cents AS what \
         FROM day_closes c CROSS JOIN LATERAL ( \
             SELECT account_id, sum(amount_cents) AS cents FROM entries WHERE day <= c.day GROUP BY account_id \
         ) b \
         WHERE b.cents > 0 OR (b.cents <> 0 AND EXISTS \
             (SELECT 1 FROM payouts p WHERE p.account_id = b.account_id AND p.day = c.day))",
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
