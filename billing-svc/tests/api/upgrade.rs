//! The single-entry ledger of the first schema upgrades to double entry in
//! place.

use popug_proto::pb::popug::billing::v1 as pb;
use popug_testing::with_token;

use crate::helpers::spawn_app_on;

/// The first billing schema, as main wrote it before the double-entry books.
const SINGLE_ENTRY_SCHEMA: &str = "2026112200000002";

/// A ledger written by the single-entry code upgrades in place: every entry
/// becomes a balanced transaction; balances, days, earnings and payouts stay
/// what they were, and the invariants hold.
#[tokio::test]
async fn a_single_entry_ledger_upgrades_to_double_entry_in_place() {
    use diesel::{Connection as _, RunQueryDsl as _};
    use diesel_migrations::MigrationHarness as _;
    // A blocking connection without libpq, as the service migrates.
    type PgConnection = diesel_async::async_connection_wrapper::AsyncConnectionWrapper<
        diesel_async::AsyncPgConnection,
    >;
    let database = popug_testing::TestDatabase::fresh();
    let url = database.url().to_owned();
    let (server, name) = url.rsplit_once('/').expect("a database url");
    let (popugs, tasks) = (
        [
            uuid::Uuid::new_v4(),
            uuid::Uuid::new_v4(),
            uuid::Uuid::new_v4(),
        ],
        30,
    );
    let before = {
        let (url, server, name) = (url.clone(), server.to_owned(), name.to_owned());
        tokio::task::spawn_blocking(move || {
            let mut admin = PgConnection::establish(&server).expect("server");
            diesel::sql_query(format!("CREATE DATABASE {name}")).execute(&mut admin).expect("create");
            let mut conn = PgConnection::establish(&url).expect("database");
            conn.run_pending_migrations(popug_bus::MIGRATIONS).expect("bus migrations");
            let all = diesel::migration::MigrationSource::<diesel::pg::Pg>::migrations(
                &billing_svc::startup::MIGRATIONS,
            )
            .expect("migrations");
            for migration in all {
                if migration.name().version().to_string().as_str() <= SINGLE_ENTRY_SCHEMA {
                    conn.run_migration(&*migration).expect("old migration");
                }
            }
            // What the old code wrote: entries with their balances, the inbox
            // records of their events, and yesterday's close with a payout.
            diesel::sql_query(format!(
                "INSERT INTO accounts (account_id, login, balance_cents) VALUES \
                 ('{}', 'first', 0), ('{}', 'second', 0), ('{}', 'third', 0)",
                popugs[0], popugs[1], popugs[2]
            ))
            .execute(&mut conn)
            .expect("accounts");
            diesel::sql_query(format!(
                "WITH t AS (INSERT INTO tasks (task_id, fee_cents, reward_cents, title) \
                     SELECT gen_random_uuid(), 1000 + 31 * n, 2000 + 57 * n, 'task ' || n FROM generate_series(1, {tasks}) n \
                     RETURNING task_id, fee_cents, reward_cents, title), \
                 numbered AS (SELECT t.*, row_number() OVER (ORDER BY title) AS n FROM t), \
                 moves AS ( \
                     SELECT task_id, 'assignment_fee' AS kind, -fee_cents AS cents, n, \
                            (ARRAY['{a}', '{b}', '{c}']::uuid[])[1 + n % 3] AS popug FROM numbered \
                     UNION ALL SELECT task_id, 'completion_reward', reward_cents, n, \
                            (ARRAY['{a}', '{b}', '{c}']::uuid[])[1 + n % 3] FROM numbered WHERE n % 2 = 0 OR n % 3 = 2 \
                 ), booked AS ( \
                     INSERT INTO entries (entry_id, account_id, kind, amount_cents, task_id, source_event_id, day, occurred_at) \
                     SELECT gen_random_uuid(), popug, kind, cents, task_id, gen_random_uuid(), \
                            current_date - (n % 3)::int, now() - make_interval(secs => 1000 - n) FROM moves \
                     RETURNING account_id, amount_cents, source_event_id \
                 ), inboxed AS (INSERT INTO inbox (consumer, event_id) SELECT 'billing', source_event_id FROM booked) \
                 UPDATE accounts a SET balance_cents = s.total \
                 FROM (SELECT account_id, sum(amount_cents) AS total FROM booked GROUP BY account_id) s \
                 WHERE a.account_id = s.account_id",
                a = popugs[0], b = popugs[1], c = popugs[2]
            ))
            .execute(&mut conn)
            .expect("entries");
            diesel::sql_query(
                "WITH paid AS ( \
                     SELECT account_id, sum(amount_cents) AS cents FROM entries WHERE day < current_date - 1 \
                     GROUP BY account_id HAVING sum(amount_cents) > 0 \
                 ), payout AS ( \
                     INSERT INTO entries (entry_id, account_id, kind, amount_cents, source_event_id, day) \
                     SELECT gen_random_uuid(), account_id, 'payout', -cents, gen_random_uuid(), current_date - 2 FROM paid \
                     RETURNING entry_id, account_id, amount_cents \
                 ), rows AS ( \
                     INSERT INTO payouts (payout_id, account_id, day, amount_cents, entry_id) \
                     SELECT gen_random_uuid(), account_id, current_date - 2, -amount_cents, entry_id FROM payout \
                     RETURNING amount_cents \
                 ), closed AS ( \
                     INSERT INTO day_closes (day, accounts_paid, payouts_cents) \
                     SELECT current_date - 2, count(*), COALESCE(sum(amount_cents), 0) FROM rows \
                 ) \
                 UPDATE accounts a SET balance_cents = a.balance_cents + p.amount_cents FROM payout p \
                 WHERE a.account_id = p.account_id",
            )
            .execute(&mut conn)
            .expect("yesterday's close");
            #[derive(diesel::QueryableByName, Debug, PartialEq, Eq)]
            struct Figure {
                #[diesel(sql_type = diesel::sql_types::Text)]
                what: String,
                #[diesel(sql_type = diesel::sql_types::BigInt)]
                cents: i64,
            }
            let figures: Vec<Figure> = diesel::sql_query(
                "SELECT 'balance ' || login AS what, balance_cents AS cents FROM accounts \
                 UNION ALL SELECT 'fees ' || day, -sum(amount_cents)::bigint FROM entries WHERE kind = 'assignment_fee' GROUP BY day \
                 UNION ALL SELECT 'rewards ' || day, sum(amount_cents)::bigint FROM entries WHERE kind = 'completion_reward' GROUP BY day \
                 UNION ALL SELECT 'payouts ' || day, -sum(amount_cents)::bigint FROM entries WHERE kind = 'payout' GROUP BY day \
                 UNION ALL SELECT 'entries', count(*) FROM entries ORDER BY 1",
            )
            .load(&mut conn)
            .expect("figures");
            figures.into_iter().map(|f| (f.what, f.cents)).collect::<Vec<_>>()
        })
        .await
        .expect("the old ledger")
    };
    assert!(
        before
            .iter()
            .any(|(what, cents)| what.starts_with("payouts") && *cents > 0),
        "{before:?}"
    );

    // Today's code starts on it and upgrades it.
    let app = spawn_app_on(url, None).await;
    app.assert_invariants().await;
    let today = chrono::Utc::now().date_naive();
    let earnings = app
        .billing()
        .get_income_statement(with_token(
            pb::GetIncomeStatementRequest {
                from: (today - chrono::Duration::days(2)).to_string(),
                to: today.to_string(),
            },
            &app.admin_token,
        ))
        .await
        .expect("income")
        .into_inner();
    let mut after: Vec<(String, i64)> = Vec::new();
    for (login, popug) in ["first", "second", "third"].iter().zip(popugs) {
        let balance = app.balance(popug).await;
        after.push((format!("balance {login}"), balance));
        let statement = app
            .statement(popug, &(today - chrono::Duration::days(2)).to_string(), "")
            .await;
        assert_eq!(
            statement.closing_balance_cents, balance,
            "{login}'s statement ends at the balance"
        );
    }
    let mut entries = 0;
    for day in &earnings.days {
        for (what, cents) in [
            ("fees", day.revenue_cents),
            ("rewards", day.expense_cents),
            ("payouts", day.payouts_cents),
        ] {
            if cents != 0 {
                after.push((format!("{what} {}", day.date), cents));
            }
        }
    }
    let mut page_token = String::new();
    loop {
        let page = app
            .billing()
            .list_entries(with_token(
                pb::ListEntriesRequest {
                    page_size: 1000,
                    page_token: page_token.clone(),
                },
                &app.admin_token,
            ))
            .await
            .expect("entries")
            .into_inner();
        entries += page.entries.len();
        // Fees booked before their reasons were recorded read as they did.
        for entry in &page.entries {
            assert!(!entry.description.contains('('), "{}", entry.description);
        }
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    after.push(("entries".into(), i64::try_from(entries).expect("count")));
    after.sort();
    assert_eq!(after, before, "every figure survives the upgrade");
}
