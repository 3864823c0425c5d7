//! The books: entries nobody changes, balanced transactions with running
//! balances, one reward per task, and the gauges that watch the invariants.

use std::time::Duration;

use popug_proto::pb::popug::{
    auth::v1 as auth, billing::v1 as pb, events::billing::v1 as billing_events,
};
use popug_testing::{
    consume, consume_any,
    tracker_events::{assigned, completed},
    with_token,
};
use prost::{Message as _, Name as _};
use tokio_util::sync::CancellationToken;

use crate::helpers::spawn_app;

#[tokio::test]
async fn ledger_entries_cannot_be_changed_or_removed() {
    let mut app = spawn_app(None).await;
    let (worker, _) = app.account("worker1", auth::Role::Worker).await;
    app.publish(
        &assigned(uuid::Uuid::new_v4(), worker, None),
        chrono::Utc::now(),
    )
    .await;
    consume(&mut app.consumer, 1).await;
    let mut conn = app.ledger.pool().get().await.expect("connection");
    use diesel_async::RunQueryDsl as _;
    for statement in [
        "UPDATE postings SET amount_cents = -1",
        "DELETE FROM postings",
        "TRUNCATE postings CASCADE",
        "UPDATE transactions SET day = day + 1",
        "DELETE FROM transactions",
        "TRUNCATE transactions CASCADE",
        "UPDATE tasks SET fee_cents = 1000, reward_cents = 2000",
        // A leg on its own, or legs that do not sum to zero, never land.
        "INSERT INTO postings (tx_id, account, amount_cents) SELECT tx_id, 'revenue', 100 FROM transactions",
        "INSERT INTO postings (tx_id, account, amount_cents) SELECT tx_id, a, 100 \
         FROM transactions, unnest(ARRAY['revenue', 'payouts']) a",
        // Balanced legs of a transaction that is not in the books, or on a
        // popug billing does not know; a fee for a task it does not know.
        "INSERT INTO postings (tx_id, account, popug_id, amount_cents, balance_after_cents) \
         SELECT '6d9c5d1e-0000-4000-8000-000000000001', a, p, c, b FROM (VALUES \
         ('popug', (SELECT account_id FROM accounts LIMIT 1), -100, -100), \
         ('revenue', NULL, 100, NULL)) v(a, p, c, b)",
        "INSERT INTO postings (tx_id, account, popug_id, amount_cents, balance_after_cents) \
         SELECT (SELECT tx_id FROM transactions LIMIT 1), a, p, c, b FROM (VALUES \
         ('popug', gen_random_uuid(), -100, -100), ('revenue', NULL, 100, NULL)) v(a, p, c, b)",
        "INSERT INTO transactions (tx_id, kind, task_id, source_event_id, day, reason) VALUES \
         (gen_random_uuid(), 'assignment_fee', gen_random_uuid(), gen_random_uuid(), current_date, 'created')",
        // What the books refer to stays.
        "DELETE FROM tasks",
        "TRUNCATE tasks CASCADE",
        "DELETE FROM accounts",
        "TRUNCATE accounts CASCADE",
        // And keeps its id.
        "UPDATE tasks SET task_id = gen_random_uuid()",
        "UPDATE accounts SET account_id = gen_random_uuid()",
    ] {
        let error = diesel::sql_query(statement)
            .execute(&mut conn)
            .await
            .expect_err(statement);
        assert!(
            [
                "immutable",
                "fixed",
                "does not balance",
                "not in the books",
                "has no account",
                "does not know",
                "never deleted",
                "the id is fixed"
            ]
            .iter()
            .any(|said| error.to_string().contains(said)),
            "{statement}: {error}"
        );
    }
    drop(conn);
    app.assert_invariants().await;
}

/// One reward per task, whatever arrives on the bus: a second completion of
/// a paid task, with an event id of its own, moves no money and goes to the
/// dead letters naming the task, alone, while the fresh events beside it in
/// the same batch are booked.
#[tokio::test]
async fn a_second_completion_of_a_paid_task_moves_no_money_and_is_dead_lettered_alone() {
    use diesel_async::RunQueryDsl as _;
    let mut app = spawn_app(None).await;
    let (worker, _) = app.account("worker1", auth::Role::Worker).await;
    let now = chrono::Utc::now();
    let (task, other) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    app.publish(&assigned(task, worker, None), now).await;
    app.publish(&completed(task, worker), now).await;
    consume(&mut app.consumer, 2).await;
    let paid = app.balance(worker).await;

    // In one batch: the forged second completion between two fresh events.
    app.publish(&assigned(other, worker, None), now).await;
    app.publish(&completed(task, worker), now).await;
    app.publish(&completed(other, worker), now).await;
    let report = consume_any(&mut app.consumer, 3).await;
    assert_eq!((report.applied, report.dead_lettered), (2, 1), "{report:?}");

    let mut conn = app.ledger.pool().get().await.expect("connection");
    let rewards: i64 = diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(&format!(
        "(SELECT count(*) FROM transactions WHERE kind = 'completion_reward' AND task_id = '{task}')"
    )))
    .get_result(&mut conn)
    .await
    .expect("count");
    assert_eq!(rewards, 1, "the task is rewarded once");
    let error: String = diesel::select(diesel::dsl::sql::<diesel::sql_types::Text>(
        "(SELECT error FROM failed_events WHERE consumer = 'billing')",
    ))
    .get_result(&mut conn)
    .await
    .expect("one dead letter");
    assert!(
        error.contains(&task.to_string()) && error.contains("rewarded already"),
        "{error}"
    );
    drop(conn);
    // The other task's fee and reward were booked beside it.
    let statement = app.statement(worker, "", "").await;
    let other_lines = statement
        .lines
        .iter()
        .filter(|line| {
            line.entry
                .as_ref()
                .is_some_and(|e| e.task_id == other.to_string())
        })
        .count();
    assert_eq!(other_lines, 2);
    assert_ne!(app.balance(worker).await, paid);
    app.assert_invariants().await;
}

/// Many events in one batch are booked set-based: every entry carries the
/// running balance, `TransactionApplied` carries the same, and the company's
/// accounts hold the other legs.
#[tokio::test]
async fn a_batch_books_balanced_transactions_with_running_balances() {
    let mut app = spawn_app(None).await;
    let (first, _) = app.account("first", auth::Role::Worker).await;
    let (second, _) = app.account("second", auth::Role::Worker).await;
    let now = chrono::Utc::now();
    let tasks: Vec<uuid::Uuid> = (0..40).map(|_| uuid::Uuid::new_v4()).collect();
    for (i, task) in tasks.iter().enumerate() {
        let popug = if i % 2 == 0 { first } else { second };
        app.publish(&assigned(*task, popug, None), now).await;
        if i % 3 == 0 {
            app.publish(&completed(*task, popug), now).await;
        }
    }
    let published = tasks.len() + tasks.len().div_ceil(3);
    consume(&mut app.consumer, published).await;

    // TransactionApplied carries each entry's balance after it.
    let events = app.billing_events().await;
    let applied: Vec<billing_events::TransactionApplied> = events
        .iter()
        .filter(|(kind, _)| *kind == billing_events::TransactionApplied::full_name())
        .map(|(_, payload)| {
            billing_events::TransactionApplied::decode(payload.as_slice()).expect("payload")
        })
        .collect();
    assert_eq!(applied.len(), published);
    for popug in [first, second] {
        let statement = app.statement(popug, "", "").await;
        assert_eq!(statement.opening_balance_cents, 0);
        let mut running = 0;
        for line in &statement.lines {
            let entry = line.entry.as_ref().expect("entry");
            running += entry.amount_cents;
            assert_eq!(line.balance_after_cents, running);
            assert_eq!(entry.balance_after_cents, running, "booked in this order");
            let event = applied
                .iter()
                .find(|e| e.entry_id == entry.entry_id)
                .expect("announced");
            assert_eq!(event.balance_after_cents, running);
        }
        assert_eq!(statement.closing_balance_cents, running);
        assert_eq!(app.balance(popug).await, running);
    }

    // The company's side: revenue took every fee, expense paid every reward.
    let income = app
        .billing()
        .get_income_statement(with_token(
            pb::GetIncomeStatementRequest::default(),
            &app.admin_token,
        ))
        .await
        .expect("income")
        .into_inner();
    let total = income.total.expect("total");
    let fees: i64 = applied
        .iter()
        .filter(|e| e.kind == billing_events::EntryKind::AssignmentFee as i32)
        .map(|e| -e.amount_cents)
        .sum();
    let rewards: i64 = applied
        .iter()
        .filter(|e| e.kind == billing_events::EntryKind::CompletionReward as i32)
        .map(|e| e.amount_cents)
        .sum();
    assert_eq!(
        (total.revenue_cents, total.expense_cents, total.net_cents),
        (fees, rewards, fees - rewards)
    );
    let earnings = app
        .billing()
        .get_management_earnings(with_token(
            pb::GetManagementEarningsRequest::default(),
            &app.admin_token,
        ))
        .await
        .expect("earnings")
        .into_inner();
    assert_eq!(earnings.days[0].earnings_cents, fees - rewards);
    app.assert_invariants().await;
}

/// The value of the unlabelled gauge `name` after one round of
/// `gauge_books` (with a token already cancelled, it measures once).
async fn books_gauge(ledger: &billing_svc::store::Ledger, name: &str) -> f64 {
    let stopped = CancellationToken::new();
    stopped.cancel();
    ledger
        .clone()
        .gauge_books(Duration::from_secs(60), stopped)
        .await;
    let rendered = popug_runtime::telemetry::metrics_handle().render();
    rendered
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{name} ")))
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("{name} is not exported: {rendered}"))
}

#[tokio::test]
async fn the_books_gauges_count_invariant_violations_and_ended_days_left_open() {
    use diesel_async::RunQueryDsl as _;
    let mut app = spawn_app(None).await;
    let (worker, _) = app.account("worker1", auth::Role::Worker).await;
    // Days close by hand here (POPUG_BILLING_AUTO_CLOSE=false): yesterday is open.
    assert_eq!(
        books_gauge(&app.ledger, "popug_billing_days_unclosed").await,
        1.0
    );
    assert_eq!(
        books_gauge(&app.ledger, "popug_ledger_invariant_violations").await,
        0.0
    );
    app.billing()
        .close_day(with_token(pb::CloseDayRequest::default(), &app.admin_token))
        .await
        .expect("close yesterday");
    assert_eq!(
        books_gauge(&app.ledger, "popug_billing_days_unclosed").await,
        0.0
    );
    // A balance that is not the sum of its entries (put in by hand).
    let mut conn = app.ledger.pool().get().await.expect("connection");
    diesel::sql_query(format!(
        "UPDATE accounts SET balance_cents = 7 WHERE account_id = '{worker}'"
    ))
    .execute(&mut conn)
    .await
    .expect("a forged balance");
    drop(conn);
    assert!(books_gauge(&app.ledger, "popug_ledger_invariant_violations").await >= 1.0);
}
