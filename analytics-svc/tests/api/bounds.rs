//! Out-of-range input: forged billing events dead-lettered, and stored
//! rows that cannot overflow the dashboards.

use popug_proto::{
    events::Event,
    pb::popug::{
        analytics::v1 as pb,
        events::billing::v1 as billing_events,
        ops::v1::{self as ops, ops_service_client::OpsServiceClient},
    },
};
use popug_testing::with_token;
use prost::Message as _;

use crate::helpers::spawn_app;

#[tokio::test]
async fn forged_out_of_range_billing_events_are_dead_lettered_and_the_dashboards_still_answer() {
    let mut app = spawn_app().await;
    let now = chrono::Utc::now();
    let today = now.date_naive().to_string();
    let (popug, task) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    let entry = |kind: billing_events::EntryKind, amount_cents: i64, balance_after_cents: i64| {
        billing_events::TransactionApplied {
            entry_id: uuid::Uuid::new_v4().to_string(),
            account_id: popug.to_string(),
            kind: kind.into(),
            amount_cents,
            task_id: if kind == billing_events::EntryKind::Payout {
                String::new()
            } else {
                task.to_string()
            },
            day: today.clone(),
            balance_after_cents,
        }
    };
    use billing_events::EntryKind::{AssignmentFee, CompletionReward, Payout};
    // Issue 13's forgery first: one fee of i64::MIN cents used to be stored,
    // and every dashboard of its day answered INTERNAL from then on.
    let forged_entries = [
        ("amount_cents", entry(AssignmentFee, i64::MIN, 0)),
        ("amount_cents", entry(AssignmentFee, i64::MAX, 0)),
        ("amount_cents", entry(CompletionReward, 4_001, 0)),
        ("amount_cents", entry(Payout, -100_000_001, 0)),
        (
            "balance_after_cents",
            entry(AssignmentFee, -1_500, i64::MIN),
        ),
        (
            "day",
            billing_events::TransactionApplied {
                day: "2026-99-99".into(),
                ..entry(AssignmentFee, -1_500, 0)
            },
        ),
    ];
    let mut forged_fields = Vec::new();
    for (field, event) in &forged_entries {
        let body = popug_bus::envelope::wrap(event, "billing", now).encode_to_vec();
        app.publish_bytes(billing_events::TransactionApplied::ROUTING_KEY, &body)
            .await;
        forged_fields.push(*field);
    }
    let payment = billing_events::PaymentSent {
        payout_id: uuid::Uuid::new_v4().to_string(),
        account_id: popug.to_string(),
        amount_cents: i64::MAX,
        day: today.clone(),
    };
    let closed = billing_events::BillingCycleClosed {
        day: today.clone(),
        accounts_paid: 1,
        payouts_cents: i64::MAX,
    };
    let priced = billing_events::TaskPriced {
        task_id: task.to_string(),
        fee_cents: 1_500,
        reward_cents: i64::MIN,
    };
    for (key, body) in [
        (
            billing_events::PaymentSent::ROUTING_KEY,
            popug_bus::envelope::wrap(&payment, "billing", now).encode_to_vec(),
        ),
        (
            billing_events::BillingCycleClosed::ROUTING_KEY,
            popug_bus::envelope::wrap(&closed, "billing", now).encode_to_vec(),
        ),
        (
            billing_events::TaskPriced::ROUTING_KEY,
            popug_bus::envelope::wrap(&priced, "billing", now).encode_to_vec(),
        ),
    ] {
        app.publish_bytes(key, &body).await;
    }
    forged_fields.extend(["amount_cents", "payouts_cents", "reward_cents"]);
    // Genuine entries at the very bounds of the rules are applied.
    for event in [
        entry(AssignmentFee, -2_000, -2_000),
        entry(CompletionReward, 4_000, 1_000_000_000_000),
        entry(Payout, -100_000_000, -1_000_000_000_000),
    ] {
        let body = popug_bus::envelope::wrap(&event, "billing", now).encode_to_vec();
        app.publish_bytes(billing_events::TransactionApplied::ROUTING_KEY, &body)
            .await;
    }
    let report = app.consume_analytics_report().await;
    assert_eq!(
        (report.dead_lettered, report.applied),
        (forged_fields.len(), 3),
        "{report:?}"
    );

    // Each forgery is recorded with the field it broke, for an operator.
    let dead = OpsServiceClient::new(app.analytics.clone())
        .list_dead_letters(with_token(
            ops::ListDeadLettersRequest::default(),
            &app.admin_token,
        ))
        .await
        .expect("dead letters")
        .into_inner();
    assert_eq!(dead.unresolved, forged_fields.len() as u64);
    let mut named: Vec<&str> = dead
        .dead_letters
        .iter()
        .filter_map(|letter| letter.error.split_once("invalid `")?.1.split_once('`'))
        .map(|(field, _)| field)
        .collect();
    named.sort_unstable();
    forged_fields.sort_unstable();
    assert_eq!(named, forged_fields, "{:?}", dead.dead_letters);

    // The dashboards answer, with the genuine figures only.
    let dashboard = app.dashboard("").await;
    assert_eq!(
        (
            dashboard.management_earnings_cents,
            dashboard.negative_balance_popugs
        ),
        (2_000 - 4_000, 1)
    );
    let week = app
        .analytics()
        .get_daily_stats(with_token(
            pb::GetDailyStatsRequest {
                from: (now.date_naive() - chrono::Days::new(6)).to_string(),
                to: today.clone(),
            },
            &app.admin_token,
        ))
        .await
        .expect("daily stats")
        .into_inner()
        .days;
    assert_eq!(week.len(), 7);
    assert_eq!(week[6].management_earnings_cents, -2_000);
}

#[tokio::test]
async fn the_dashboards_cannot_overflow_whatever_rows_are_stored() {
    use diesel_async::{AsyncConnection as _, RunQueryDsl as _};
    let app = spawn_app().await;
    // Rows no event may carry any more, as a read model filled before the
    // rules were bounded could hold: their sums overflow bigint.
    let mut conn = diesel_async::AsyncPgConnection::establish(app.analytics_db.url())
        .await
        .expect("analytics' database");
    let (a, b) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    for (account, kind, cents, day) in [
        (a, "assignment_fee", i64::MIN, "2026-03-01"),
        (a, "assignment_fee", -1_000, "2026-03-01"),
        (b, "completion_reward", i64::MAX, "2026-03-02"),
        (b, "completion_reward", i64::MAX, "2026-03-02"),
    ] {
        diesel::sql_query(format!(
            "INSERT INTO transactions (entry_id, account_id, kind, amount_cents, task_id, day) \
             VALUES ('{}', '{account}', '{kind}', {cents}, NULL, '{day}')",
            uuid::Uuid::new_v4()
        ))
        .execute(&mut conn)
        .await
        .expect("a stored row");
    }
    let days = app
        .analytics()
        .get_daily_stats(with_token(
            pb::GetDailyStatsRequest {
                from: "2026-02-28".into(),
                to: "2026-03-03".into(),
            },
            &app.admin_token,
        ))
        .await
        .expect("the figures answer")
        .into_inner()
        .days;
    let figures: Vec<(i64, u32)> = days
        .iter()
        .map(|day| (day.management_earnings_cents, day.negative_balance_popugs))
        .collect();
    // Earnings clamp at the ends of i64; the popug with the fees stays in the red.
    assert_eq!(figures, [(0, 0), (i64::MAX, 1), (i64::MIN, 1), (0, 1)]);
    assert_eq!(
        app.dashboard("2026-03-01").await.management_earnings_cents,
        i64::MAX
    );
}
