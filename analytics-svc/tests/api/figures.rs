//! The dashboards' figures: right whatever the order and however often
//! events come, and equal to billing's books to the cent over a day.

use popug_proto::{
    events::Event,
    pb::popug::{
        analytics::v1 as pb,
        auth::v1 as auth,
        billing::v1::{self as billing, billing_service_client::BillingServiceClient},
        events::{billing::v1 as billing_events, tasks::v1 as tasks_v1, tasks::v2 as tasks_v2},
    },
};
use popug_testing::{
    tracker_events::{assigned, completed, created},
    with_token,
};
use prost::Message as _;

use crate::helpers::spawn_app;

#[tokio::test]
async fn figures_are_right_whatever_the_order_and_however_often_events_come() {
    let mut app = spawn_app().await;
    let now = chrono::Utc::now();
    let (worker, task_a, task_b) = (
        uuid::Uuid::new_v4(),
        uuid::Uuid::new_v4(),
        uuid::Uuid::new_v4(),
    );
    let entry = |kind: billing_events::EntryKind, amount: i64, task: uuid::Uuid| {
        billing_events::TransactionApplied {
            entry_id: uuid::Uuid::new_v4().to_string(),
            account_id: worker.to_string(),
            kind: kind.into(),
            amount_cents: amount,
            task_id: task.to_string(),
            day: now.date_naive().to_string(),
            balance_after_cents: amount,
        }
    };
    // Completions before prices and descriptions; every event twice.
    let events: Vec<(&str, Vec<u8>)> = vec![
        (
            tasks_v1::TaskCompleted::ROUTING_KEY,
            popug_bus::envelope::wrap(&completed(task_a, worker), "tracker", now).encode_to_vec(),
        ),
        (
            tasks_v1::TaskCompleted::ROUTING_KEY,
            popug_bus::envelope::wrap(&completed(task_b, worker), "tracker", now).encode_to_vec(),
        ),
        (
            billing_events::TransactionApplied::ROUTING_KEY,
            popug_bus::envelope::wrap(
                &entry(billing_events::EntryKind::CompletionReward, 3_500, task_a),
                "billing",
                now,
            )
            .encode_to_vec(),
        ),
        (
            billing_events::TransactionApplied::ROUTING_KEY,
            popug_bus::envelope::wrap(
                &entry(billing_events::EntryKind::AssignmentFee, -1_500, task_a),
                "billing",
                now,
            )
            .encode_to_vec(),
        ),
        (
            billing_events::TransactionApplied::ROUTING_KEY,
            popug_bus::envelope::wrap(
                &entry(billing_events::EntryKind::AssignmentFee, -1_900, task_b),
                "billing",
                now,
            )
            .encode_to_vec(),
        ),
        (
            billing_events::TaskPriced::ROUTING_KEY,
            popug_bus::envelope::wrap(
                &billing_events::TaskPriced {
                    task_id: task_a.to_string(),
                    fee_cents: 1_500,
                    reward_cents: 3_500,
                },
                "billing",
                now,
            )
            .encode_to_vec(),
        ),
        (
            billing_events::TaskPriced::ROUTING_KEY,
            popug_bus::envelope::wrap(
                &billing_events::TaskPriced {
                    task_id: task_b.to_string(),
                    fee_cents: 1_900,
                    reward_cents: 3_500,
                },
                "billing",
                now,
            )
            .encode_to_vec(),
        ),
        (
            tasks_v2::TaskCreated::ROUTING_KEY,
            popug_bus::envelope::wrap(&created(task_a, 1), "tracker", now).encode_to_vec(),
        ),
        (
            tasks_v2::TaskCreated::ROUTING_KEY,
            popug_bus::envelope::wrap(&created(task_b, 2), "tracker", now).encode_to_vec(),
        ),
    ];
    for (key, body) in events.iter().chain(events.iter()) {
        app.publish_bytes(key, body).await;
    }
    // Analytics alone: billing would price and pay these tasks by itself.
    app.consume_analytics().await;

    let today = app.dashboard("").await;
    assert_eq!(today.management_earnings_cents, 1_500 + 1_900 - 3_500);
    assert_eq!(
        today.negative_balance_popugs, 0,
        "3500 - 1500 - 1900 = +100: not in the red"
    );
    let top = app.most_expensive_today().await.expect("a task");
    // Both rewards are 3500: the tie goes to the earlier completion, then the smaller id.
    let expected = if task_a < task_b {
        ("POPUG-1", task_a)
    } else {
        ("POPUG-2", task_b)
    };
    assert_eq!(
        (top.reward_cents, top.task_id.clone()),
        (3_500, expected.1.to_string()),
        "{top:?}"
    );
    assert_eq!(top.key, expected.0);
    let week = app
        .analytics()
        .get_daily_stats(with_token(
            pb::GetDailyStatsRequest {
                from: (now.date_naive() - chrono::Days::new(6)).to_string(),
                to: String::new(),
            },
            &app.admin_token,
        ))
        .await
        .expect("stats")
        .into_inner()
        .days;
    assert_eq!(week.len(), 7);
    assert_eq!(week[6].management_earnings_cents, 1_500 + 1_900 - 3_500);
    assert!(
        week[..6]
            .iter()
            .all(|day| day.management_earnings_cents == 0 && day.negative_balance_popugs == 0)
    );
}

/// Analytics applies each event type of a batch with one statement; several
/// events about one task in one batch end as if applied one by one: a later
/// title wins (a v1 event without a key keeps the key), a later price wins,
/// the first completion stands.
#[tokio::test]
async fn one_batch_with_many_events_of_one_task_ends_as_one_by_one() {
    let mut app = spawn_app().await;
    let now = chrono::Utc::now();
    let (first, second, task) = (
        uuid::Uuid::new_v4(),
        uuid::Uuid::new_v4(),
        uuid::Uuid::new_v4(),
    );
    let priced = |fee_cents, reward_cents| billing_events::TaskPriced {
        task_id: task.to_string(),
        fee_cents,
        reward_cents,
    };
    let renamed = tasks_v1::TaskCreated {
        task_id: task.to_string(),
        title: "Renamed".into(),
        description: String::new(),
    };
    let later = now + chrono::Duration::seconds(5);
    let events: Vec<(&str, Vec<u8>)> = vec![
        (
            tasks_v2::TaskCreated::ROUTING_KEY,
            popug_bus::envelope::wrap(&created(task, 7), "tracker", now).encode_to_vec(),
        ),
        (
            tasks_v1::TaskCreated::ROUTING_KEY,
            popug_bus::envelope::wrap(&renamed, "tracker", now).encode_to_vec(),
        ),
        (
            billing_events::TaskPriced::ROUTING_KEY,
            popug_bus::envelope::wrap(&priced(1_000, 2_000), "billing", now).encode_to_vec(),
        ),
        (
            billing_events::TaskPriced::ROUTING_KEY,
            popug_bus::envelope::wrap(&priced(1_100, 3_100), "billing", now).encode_to_vec(),
        ),
        (
            tasks_v1::TaskCompleted::ROUTING_KEY,
            popug_bus::envelope::wrap(&completed(task, first), "tracker", now).encode_to_vec(),
        ),
        (
            tasks_v1::TaskCompleted::ROUTING_KEY,
            popug_bus::envelope::wrap(&completed(task, second), "tracker", later).encode_to_vec(),
        ),
    ];
    for (key, body) in &events {
        app.publish_bytes(key, body).await;
    }
    let report = app.consume_analytics_report().await;
    assert_eq!(report.applied, events.len(), "{report:?}");

    let top = app.most_expensive_today().await.expect("the task");
    assert_eq!(
        (
            top.task_id.as_str(),
            top.key.as_str(),
            top.title.as_str(),
            top.reward_cents
        ),
        (task.to_string().as_str(), "POPUG-7", "Renamed", 3_100),
        "{top:?}"
    );
    assert_eq!(
        top.completed_at.map(|at| at.seconds),
        Some(now.timestamp()),
        "the first completion stands: {top:?}"
    );
}

#[tokio::test]
async fn analytics_agrees_with_billing_to_the_cent_over_a_working_day() {
    let mut app = spawn_app().await;
    let mut workers = Vec::new();
    for i in 0..6 {
        workers.push(
            app.account(&format!("worker{i}"), auth::Role::Worker)
                .await
                .0,
        );
    }
    app.settle().await;
    // Yesterday and today: tasks created, shuffled twice, about half completed.
    let mut rng_state = 42_u64;
    let mut next = || {
        rng_state = rng_state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
        usize::try_from(rng_state >> 33).expect("fits")
    };
    for (offset, day) in [(1_i64, "yesterday"), (0, "today")] {
        let at = chrono::Utc::now() - chrono::Duration::days(offset);
        let tasks: Vec<uuid::Uuid> = (0..40).map(|_| uuid::Uuid::new_v4()).collect();
        let mut assignee: Vec<uuid::Uuid> = tasks
            .iter()
            .map(|_| workers[next() % workers.len()])
            .collect();
        for (i, task) in tasks.iter().enumerate() {
            app.publish(
                &created(*task, i + 1 + usize::from(day == "today") * 100),
                at,
            )
            .await;
            app.publish(&assigned(*task, assignee[i], None), at).await;
        }
        for _ in 0..2 {
            for (i, task) in tasks.iter().enumerate().filter(|(i, _)| i % 3 != 0) {
                let to = workers[next() % workers.len()];
                app.publish(&assigned(*task, to, Some(assignee[i])), at)
                    .await;
                assignee[i] = to;
            }
        }
        for (i, task) in tasks.iter().enumerate().filter(|(i, _)| i % 2 == 0) {
            app.publish(&completed(*task, assignee[i]), at).await;
        }
        app.settle().await;
        if day == "yesterday" {
            // Close yesterday in billing; its payouts reach analytics too.
            BillingServiceClient::new(app.billing.clone())
                .close_day(with_token(
                    billing::CloseDayRequest {
                        date: at.date_naive().to_string(),
                    },
                    &app.admin_token,
                ))
                .await
                .expect("close");
            app.settle().await;
        }
    }

    let today = chrono::Utc::now().date_naive();
    let from = today - chrono::Days::new(1);
    let billing_days = BillingServiceClient::new(app.billing.clone())
        .get_management_earnings(with_token(
            billing::GetManagementEarningsRequest {
                from: from.to_string(),
                to: today.to_string(),
            },
            &app.admin_token,
        ))
        .await
        .expect("billing earnings")
        .into_inner()
        .days;
    let analytics_days = app
        .analytics()
        .get_daily_stats(with_token(
            pb::GetDailyStatsRequest {
                from: from.to_string(),
                to: today.to_string(),
            },
            &app.admin_token,
        ))
        .await
        .expect("analytics stats")
        .into_inner()
        .days;
    for (billing_day, analytics_day) in billing_days.iter().zip(&analytics_days) {
        assert_eq!(billing_day.date, analytics_day.date);
        assert_eq!(
            billing_day.earnings_cents, analytics_day.management_earnings_cents,
            "earnings of {}",
            billing_day.date
        );
        assert_ne!(
            billing_day.fees_cents, 0,
            "the day had activity: {billing_days:?}"
        );
    }
    // The popugs in the red now, as billing's balances say.
    let mut conn = app.ledger.pool().get().await.expect("connection");
    use diesel_async::RunQueryDsl as _;
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let negative = diesel::sql_query("SELECT count(*) AS n FROM accounts WHERE balance_cents < 0")
        .get_result::<Count>(&mut conn)
        .await
        .expect("count")
        .n;
    let violations = billing_svc::invariants::violations(&mut conn)
        .await
        .expect("checks");
    assert!(violations.is_empty(), "{violations:?}");
    drop(conn);
    let dashboard = app.dashboard("").await;
    assert_eq!(i64::from(dashboard.negative_balance_popugs), negative);
    assert_eq!(
        dashboard.management_earnings_cents,
        billing_days[1].earnings_cents
    );
}
