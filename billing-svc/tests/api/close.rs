//! Closing a day: positive balances paid once and emailed, the payout
//! bound, the day's balance not later bookings, and retries through SMTP
//! and database outages.

use std::time::Duration;

use popug_proto::pb::popug::{
    auth::v1 as auth, billing::v1 as pb, events::billing::v1 as billing_events,
};
use popug_testing::{
    consume,
    tracker_events::{assigned, completed},
    with_token,
};
use prost::Name as _;
use tokio_util::sync::CancellationToken;
use tonic::Code;

use crate::helpers::{SmtpSink, free_port, spawn_app};

#[tokio::test]
async fn closing_a_day_pays_positive_balances_once_and_emails_them() {
    let mut sink = SmtpSink::start().await;
    let mut app = spawn_app(Some(sink.url.clone())).await;
    let (earner, earner_token) = app.account("earner", auth::Role::Worker).await;
    let (debtor, _) = app.account("debtor", auth::Role::Worker).await;
    let (idle, _) = app.account("idle", auth::Role::Worker).await;
    let (_, accountant) = app.account("counter", auth::Role::Accountant).await;
    let yesterday_at = chrono::Utc::now() - chrono::Duration::days(1);
    let yesterday = yesterday_at.date_naive().to_string();
    let (paid_task, debt_task) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    app.publish(&assigned(paid_task, earner, None), yesterday_at)
        .await;
    app.publish(&completed(paid_task, earner), yesterday_at)
        .await;
    app.publish(&assigned(debt_task, debtor, None), yesterday_at)
        .await;
    consume(&mut app.consumer, 3).await;
    let earned = app.balance(earner).await;
    let owed = app.balance(debtor).await;
    assert!(earned > 0 && owed < 0);

    // Only admins close days.
    let close = |token: String, date: String| {
        let mut client = app.billing();
        async move {
            client
                .close_day(with_token(pb::CloseDayRequest { date }, &token))
                .await
        }
    };
    assert_eq!(
        close(accountant.clone(), yesterday.clone())
            .await
            .expect_err("accountant")
            .code(),
        Code::PermissionDenied
    );
    assert_eq!(
        close(app.admin_token.clone(), "tomorrow".into())
            .await
            .expect_err("bad date")
            .code(),
        Code::InvalidArgument
    );
    let today = chrono::Utc::now().date_naive().to_string();
    let not_over = close(app.admin_token.clone(), today)
        .await
        .expect_err("not over");
    assert_eq!(not_over.code(), Code::FailedPrecondition);
    assert_eq!(
        popug_runtime::error::reason(&not_over).as_deref(),
        Some(billing_svc::error::DAY_NOT_ENDED)
    );

    // Two admins close the same day at once: one pays, the other reports it closed.
    let (first, second) = tokio::join!(
        close(app.admin_token.clone(), yesterday.clone()),
        close(app.admin_token.clone(), yesterday.clone())
    );
    let (first, second) = (
        first.expect("close").into_inner(),
        second.expect("close").into_inner(),
    );
    assert_eq!(
        [first.already_closed, second.already_closed]
            .iter()
            .filter(|closed| **closed)
            .count(),
        1
    );
    for summary in [&first, &second] {
        assert_eq!(
            (summary.accounts_closed, summary.payouts_cents),
            (1, earned)
        );
    }
    let again = close(app.admin_token.clone(), yesterday.clone())
        .await
        .expect("close again")
        .into_inner();
    assert!(again.already_closed);
    // Closing an earlier day now is refused with the same code as a day
    // that has not ended; the reason, not the message, tells them apart.
    let day_before = (yesterday_at - chrono::Duration::days(1))
        .date_naive()
        .to_string();
    let out_of_order = close(app.admin_token.clone(), day_before)
        .await
        .expect_err("days close in order");
    assert_eq!(out_of_order.code(), Code::FailedPrecondition);
    assert_eq!(
        popug_runtime::error::reason(&out_of_order).as_deref(),
        Some(billing_svc::error::DAYS_CLOSE_IN_ORDER)
    );

    assert_eq!(app.balance(earner).await, 0, "paid out exactly its balance");
    assert_eq!(
        app.balance(debtor).await,
        owed,
        "a negative balance carries over"
    );
    assert_eq!(app.balance(idle).await, 0);
    let history = app
        .billing()
        .get_my_account(with_token(
            pb::GetMyAccountRequest {
                date: yesterday.clone(),
            },
            &earner_token,
        ))
        .await
        .expect("history")
        .into_inner();
    let payout = history
        .entries
        .iter()
        .find(|entry| entry.kind == pb::EntryKind::Payout as i32)
        .expect("payout entry");
    assert_eq!(payout.amount_cents, -earned);

    // The email went through SMTP once, with the amount.
    assert_eq!(
        app.mailer.send_pending().await.expect("send"),
        0,
        "sent already, never twice"
    );
    let messages = sink.messages();
    assert_eq!(messages.len(), 1, "one email for one payout");
    let amount = format!("${}.{:02}", earned / 100, earned % 100);
    assert!(
        messages[0].contains("earner@popug.inc") && messages[0].contains(&amount),
        "{}",
        messages[0]
    );

    // An event of the closed day arriving late lands in the next open day.
    app.publish(&assigned(uuid::Uuid::new_v4(), earner, None), yesterday_at)
        .await;
    consume(&mut app.consumer, 1).await;
    let late = app
        .billing()
        .get_my_account(with_token(
            pb::GetMyAccountRequest::default(),
            &earner_token,
        ))
        .await
        .expect("today")
        .into_inner();
    assert_eq!(late.entries.len(), 1, "the late fee is in today's log");

    let events = app.billing_events().await;
    let count = |name: String| events.iter().filter(|(kind, _)| *kind == name).count();
    assert_eq!(count(billing_events::PaymentSent::full_name()), 1);
    assert_eq!(count(billing_events::BillingCycleClosed::full_name()), 1);
    app.assert_invariants().await;
    sink.child.kill().await.ok();
}

#[tokio::test]
async fn a_payout_above_the_rules_bound_is_refused_and_nothing_is_paid() {
    use diesel_async::RunQueryDsl as _;
    let mut app = spawn_app(None).await;
    let (worker, _) = app.account("worker1", auth::Role::Worker).await;
    // A balance no day's work reaches (a bug or a fraud), put in by hand.
    let set_balance = |cents: i64| {
        diesel::sql_query(format!(
            "UPDATE accounts SET balance_cents = {cents} WHERE account_id = '{worker}'"
        ))
    };
    let mut conn = app.ledger.pool().get().await.expect("connection");
    set_balance(100_000_001)
        .execute(&mut conn)
        .await
        .expect("a forged balance");
    drop(conn);
    let mut client = app.billing();
    let refused = client
        .close_day(with_token(pb::CloseDayRequest::default(), &app.admin_token))
        .await
        .expect_err("too large a payout");
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert_eq!(
        popug_runtime::error::reason(&refused).as_deref(),
        Some(billing_svc::error::PAYOUT_TOO_LARGE)
    );
    assert!(
        refused.message().contains(&worker.to_string()) && refused.message().contains("100000000"),
        "{}",
        refused.message()
    );
    assert_eq!(app.balance(worker).await, 100_000_001, "nothing was paid");
    assert!(
        app.billing_events().await.is_empty(),
        "no event left billing"
    );
    let mut conn = app.ledger.pool().get().await.expect("connection");
    set_balance(0).execute(&mut conn).await.expect("set back");
    drop(conn);
    let closed = client
        .close_day(with_token(pb::CloseDayRequest::default(), &app.admin_token))
        .await
        .expect("the day closes")
        .into_inner();
    assert_eq!((closed.accounts_closed, closed.already_closed), (0, false));
    app.assert_invariants().await;
}

#[tokio::test]
async fn a_payout_email_waits_for_the_smtp_server_and_goes_out_once() {
    let port = free_port();
    let mut app = spawn_app(Some(format!("smtp://127.0.0.1:{port}"))).await;
    let (earner, _) = app.account("earner", auth::Role::Worker).await;
    let yesterday_at = chrono::Utc::now() - chrono::Duration::days(1);
    let task = uuid::Uuid::new_v4();
    app.publish(&assigned(task, earner, None), yesterday_at)
        .await;
    app.publish(&completed(task, earner), yesterday_at).await;
    consume(&mut app.consumer, 2).await;
    // The day closes while the SMTP server is down: the payout stands, the
    // email waits with its error.
    app.billing()
        .close_day(with_token(
            pb::CloseDayRequest {
                date: yesterday_at.date_naive().to_string(),
            },
            &app.admin_token,
        ))
        .await
        .expect("close");
    assert_eq!(app.balance(earner).await, 0);
    assert_eq!(app.mailer.send_pending().await.expect("round"), 0);
    {
        use diesel_async::RunQueryDsl as _;
        #[derive(diesel::QueryableByName)]
        struct Pending {
            #[diesel(sql_type = diesel::sql_types::Integer)]
            attempts: i32,
            #[diesel(sql_type = diesel::sql_types::Bool)]
            has_error: bool,
        }
        let mut conn = app.ledger.pool().get().await.expect("connection");
        let pending: Vec<Pending> = diesel::sql_query(
            "SELECT attempts, last_error IS NOT NULL AS has_error FROM emails WHERE sent_at IS NULL",
        )
        .load(&mut conn)
        .await
        .expect("emails");
        assert_eq!(pending.len(), 1);
        assert!(pending[0].attempts >= 1 && pending[0].has_error);
    }
    // The server comes up: the next round sends it, and only once.
    let mut sink = SmtpSink::start_on(port).await;
    assert_eq!(app.mailer.send_pending().await.expect("round"), 1);
    assert_eq!(app.mailer.send_pending().await.expect("round"), 0);
    assert_eq!(sink.messages().len(), 1);
    app.assert_invariants().await;
    sink.child.kill().await.ok();
}

/// A payout pays the balance at the end of the day being closed: the next
/// day's entries, booked before the close ran (a late close, or a restart
/// after midnight), stay in the next day.
#[tokio::test]
async fn a_close_pays_the_days_balance_not_what_was_booked_since() {
    let mut app = spawn_app(None).await;
    let (earner, _) = app.account("earner", auth::Role::Worker).await;
    let yesterday_at = chrono::Utc::now() - chrono::Duration::days(1);
    let yesterday = yesterday_at.date_naive().to_string();
    let today_at = chrono::Utc::now();
    let (old, new, newer) = (
        uuid::Uuid::new_v4(),
        uuid::Uuid::new_v4(),
        uuid::Uuid::new_v4(),
    );
    app.publish(&assigned(old, earner, None), yesterday_at)
        .await;
    app.publish(&completed(old, earner), yesterday_at).await;
    // Today's events arrive before yesterday closes.
    app.publish(&assigned(new, earner, None), today_at).await;
    app.publish(&completed(new, earner), today_at).await;
    app.publish(&assigned(newer, earner, None), today_at).await;
    consume(&mut app.consumer, 5).await;
    let day_end = app
        .statement(earner, &yesterday, &yesterday)
        .await
        .closing_balance_cents;
    let today_moves: i64 = app
        .statement(earner, "", "")
        .await
        .lines
        .iter()
        .map(|line| line.entry.as_ref().expect("entry").amount_cents)
        .sum();
    assert!(day_end > 0);

    let closed = app
        .billing()
        .close_day(with_token(
            pb::CloseDayRequest {
                date: yesterday.clone(),
            },
            &app.admin_token,
        ))
        .await
        .expect("close")
        .into_inner();
    assert_eq!(
        closed.payouts_cents, day_end,
        "yesterday's balance, not today's"
    );
    assert_eq!(
        app.balance(earner).await,
        today_moves,
        "today's entries stay today's"
    );
    let after = app.statement(earner, &yesterday, &yesterday).await;
    assert_eq!(after.closing_balance_cents, 0, "yesterday ends paid out");
    app.assert_invariants().await;
}

/// Runs `sql` on the server's maintenance database, outside the service's.
async fn on_server(sql: &str) {
    use diesel_async::{AsyncConnection as _, RunQueryDsl as _};
    let mut conn = diesel_async::AsyncPgConnection::establish(&popug_testing::server_url())
        .await
        .expect("the server");
    diesel::sql_query(sql).execute(&mut conn).await.expect(sql);
}

#[tokio::test]
async fn a_day_close_that_meets_a_database_outage_is_retried_until_it_succeeds() {
    let app = spawn_app(None).await;
    let database = app.database_url.path().trim_start_matches('/').to_owned();
    let yesterday = app.ledger.today().pred_opt().expect("a day before");
    // The database goes away as midnight passes: no new sessions, and the
    // open ones are cut.
    on_server(&format!(
        "ALTER DATABASE \"{database}\" ALLOW_CONNECTIONS false"
    ))
    .await;
    on_server(&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database}'"
    ))
    .await;
    let token = CancellationToken::new();
    let closer = tokio::spawn(billing_svc::closer::run(
        app.ledger.clone(),
        app.mailer.clone(),
        popug_bus::Backoff::new(vec![Duration::from_millis(200), Duration::from_secs(1)]),
        token.clone(),
    ));
    // Longer than a checkout from the pool waits (10 s), so the first
    // attempt fails.
    tokio::time::sleep(Duration::from_secs(12)).await;
    on_server(&format!(
        "ALTER DATABASE \"{database}\" ALLOW_CONNECTIONS true"
    ))
    .await;

    // The close is retried within seconds, not left to the next midnight.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut last_closed = None;
    while last_closed != Some(yesterday) && tokio::time::Instant::now() < deadline {
        last_closed = app.ledger.last_closed().await.ok().flatten();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    token.cancel();
    closer.await.expect("the closer stops");
    assert_eq!(last_closed, Some(yesterday), "yesterday was closed");
    app.assert_invariants().await;
}
