//! Black-box tests of analytics-svc: auth, billing and analytics on random
//! ports in one broker namespace; the tracker's events are published as the
//! tracker would, billing's own events flow through its relay.

use popug_bus::{BatchReport, Consumer, Relay, Topology};
use popug_proto::{
    events::Event,
    pb::popug::{
        analytics::v1::{self as pb, analytics_service_client::AnalyticsServiceClient},
        auth::v1 as auth,
        billing::v1::{self as billing, billing_service_client::BillingServiceClient},
        events::{billing::v1 as billing_events, tasks::v1 as tasks_v1, tasks::v2 as tasks_v2},
        ops::v1::{self as ops, ops_service_client::OpsServiceClient},
    },
};
use popug_runtime::Env;
use popug_testing::{
    TestAuth, drain,
    tracker_events::{assigned, completed, created},
    with_token,
};
use prost::Message as _;
use tokio_util::sync::CancellationToken;
use tonic::{Code, transport::Channel};

struct TestApp {
    auth: TestAuth,
    billing: Channel,
    analytics: Channel,
    billing_relay: Relay,
    billing_consumer: Consumer,
    analytics_consumer: Consumer,
    /// analytics' own database, for tests that look under the read model.
    analytics_db: String,
    ledger: billing_svc::store::Ledger,
    channel: lapin::Channel,
    topology: Topology,
    admin_token: String,
    /// Deliveries sent to each consumer's queue and not consumed yet.
    pending: std::collections::HashMap<&'static str, usize>,
    _stop: tokio_util::sync::DropGuard,
}

async fn spawn_app() -> TestApp {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let namespace = popug_testing::namespace();
    let stop = CancellationToken::new();
    let (billing_db, analytics_db) = (popug_testing::database_url(), popug_testing::database_url());
    let common = [
        ("POPUG_NAMESPACE", namespace.as_str()),
        ("POPUG_QUEUE_TTL", popug_testing::QUEUE_TTL),
    ];
    let auth = TestAuth::spawn(&namespace, &stop).await;
    let auth_url = auth.url();

    let mail = std::env::temp_dir()
        .join(format!("popug-analytics-mail-{id}"))
        .to_string_lossy()
        .into_owned();
    let mut pairs = common.to_vec();
    pairs.extend([
        ("POPUG_BILLING_DATABASE_URL", billing_db.as_str()),
        ("POPUG_BILLING_ADDR", "127.0.0.1:0"),
        ("POPUG_AUTH_URL", auth_url.as_str()),
        ("POPUG_MAIL_DIR", mail.as_str()),
        ("POPUG_BILLING_AUTO_CLOSE", "false"),
    ]);
    let billing_settings =
        billing_svc::BillingSettings::load(&Env::from_pairs(pairs)).expect("settings");
    let topology = Topology::from_settings(&billing_settings.common);
    let amqp_url = billing_settings.common.amqp_url.clone();
    let mut billing_app = billing_svc::Application::build(billing_settings)
        .await
        .expect("billing");
    let billing_relay = billing_app.take_relay().expect("relay");
    let billing_consumer = billing_app.take_consumer().expect("consumer");
    billing_consumer.declare().await.expect("queue");
    let ledger = billing_app.ledger().clone();
    let billing_addr = billing_app.local_addr();
    let stopping = stop.clone();
    tokio::spawn(billing_app.run_until_stopped(async move { stopping.cancelled().await }));

    let mut pairs = common.to_vec();
    pairs.extend([
        ("POPUG_ANALYTICS_DATABASE_URL", analytics_db.as_str()),
        ("POPUG_ANALYTICS_ADDR", "127.0.0.1:0"),
        ("POPUG_AUTH_URL", auth_url.as_str()),
    ]);
    let mut analytics_app = analytics_svc::Application::build(
        analytics_svc::AnalyticsSettings::load(&Env::from_pairs(pairs)).expect("settings"),
    )
    .await
    .expect("analytics");
    let analytics_consumer = analytics_app.take_consumer().expect("consumer");
    analytics_consumer.declare().await.expect("queue");
    let analytics_addr = analytics_app.local_addr();
    let stopping = stop.clone();
    tokio::spawn(analytics_app.run_until_stopped(async move { stopping.cancelled().await }));

    let connection = lapin::Connection::connect(amqp_url.as_str(), Default::default())
        .await
        .expect("broker");
    let channel = connection.create_channel().await.expect("channel");
    channel
        .confirm_select(Default::default())
        .await
        .expect("confirms");
    std::mem::forget(connection);
    let admin_token = auth.admin_token.clone();
    let mut app = TestApp {
        auth,
        billing: popug_testing::channel(billing_addr).await,
        analytics: popug_testing::channel(analytics_addr).await,
        billing_relay,
        billing_consumer,
        analytics_consumer,
        analytics_db,
        ledger,
        channel,
        topology,
        admin_token,
        pending: std::collections::HashMap::new(),
        _stop: stop.drop_guard(),
    };
    app.settle().await;
    app
}

/// The consumers the catalog binds to `routing_key`.
fn consumers_of(routing_key: &str) -> &'static [&'static str] {
    popug_proto::events::catalog()
        .into_iter()
        .find(|info| info.routing_key == routing_key)
        .map_or(&[], |info| info.consumers)
}

impl TestApp {
    fn expect(&mut self, consumers: &[&'static str], count: usize) {
        for consumer in consumers {
            *self.pending.entry(consumer).or_default() += count;
        }
    }

    /// Steps analytics' consumer over what waits in its queue, dead letters
    /// allowed; returns what it did.
    async fn consume_analytics_report(&mut self) -> BatchReport {
        let deliveries = self.pending.remove("analytics").unwrap_or(0);
        let token = CancellationToken::new();
        let mut total = BatchReport::default();
        while total.settled() < deliveries {
            let report = tokio::time::timeout(
                std::time::Duration::from_secs(60),
                self.analytics_consumer.process_batch(&token),
            )
            .await
            .expect("the events arrive")
            .expect("batch")
            .expect("not cancelled");
            total.applied += report.applied;
            total.duplicates += report.duplicates;
            total.retried += report.retried;
            total.dead_lettered += report.dead_lettered;
        }
        total
    }

    /// Applies what waits in analytics' queue only (billing does not run).
    async fn consume_analytics(&mut self) {
        let analytics = self.pending.remove("analytics").unwrap_or(0);
        popug_testing::consume(&mut self.analytics_consumer, analytics).await;
    }

    /// Lets every event flow until nothing is pending: auth's events and the
    /// test's tracker events to billing and analytics, billing's to analytics.
    async fn settle(&mut self) {
        // Every account event goes to tracker, billing and analytics.
        let accounts = drain(&mut self.auth.relay).await;
        self.expect(consumers_of("account.created.v1"), accounts);
        let billing = self.pending.remove("billing").unwrap_or(0);
        popug_testing::consume(&mut self.billing_consumer, billing).await;
        // Every billing event goes to analytics.
        let produced = drain(&mut self.billing_relay).await;
        self.expect(&["analytics"], produced);
        let analytics = self.pending.remove("analytics").unwrap_or(0);
        popug_testing::consume(&mut self.analytics_consumer, analytics).await;
    }

    async fn account(&mut self, login: &str, role: auth::Role) -> (uuid::Uuid, String) {
        self.auth.account(login, role).await
    }

    async fn publish<E: Event>(&mut self, event: &E, at: chrono::DateTime<chrono::Utc>) -> Vec<u8> {
        let body = popug_bus::envelope::wrap(event, E::PRODUCER, at).encode_to_vec();
        self.publish_bytes(E::ROUTING_KEY, &body).await;
        body
    }

    async fn publish_bytes(&mut self, routing_key: &str, body: &[u8]) {
        let confirm = self
            .channel
            .basic_publish(
                self.topology.exchange().into(),
                routing_key.into(),
                Default::default(),
                body,
                Default::default(),
            )
            .await
            .expect("publish")
            .await
            .expect("confirm");
        assert!(confirm.is_ack());
        self.expect(consumers_of(routing_key), 1);
    }

    fn analytics(&self) -> AnalyticsServiceClient<Channel> {
        AnalyticsServiceClient::new(self.analytics.clone())
    }

    async fn dashboard(&self, date: &str) -> pb::GetDashboardResponse {
        self.analytics()
            .get_dashboard(with_token(
                pb::GetDashboardRequest { date: date.into() },
                &self.admin_token,
            ))
            .await
            .expect("dashboard")
            .into_inner()
    }
}

#[tokio::test]
async fn every_method_is_for_admins_only() {
    let mut app = spawn_app().await;
    let mut tokens = Vec::new();
    for (login, role) in [
        ("worker1", auth::Role::Worker),
        ("manager1", auth::Role::Manager),
        ("accountant1", auth::Role::Accountant),
    ] {
        tokens.push(app.account(login, role).await.1);
    }
    app.settle().await;
    let mut client = app.analytics();
    for token in &tokens {
        assert_eq!(
            client
                .get_dashboard(with_token(pb::GetDashboardRequest::default(), token))
                .await
                .expect_err("no")
                .code(),
            Code::PermissionDenied
        );
        assert_eq!(
            client
                .get_most_expensive_task(with_token(
                    pb::GetMostExpensiveTaskRequest {
                        period: pb::Period::Day.into(),
                        ..Default::default()
                    },
                    token
                ))
                .await
                .expect_err("no")
                .code(),
            Code::PermissionDenied
        );
        assert_eq!(
            client
                .get_daily_stats(with_token(pb::GetDailyStatsRequest::default(), token))
                .await
                .expect_err("no")
                .code(),
            Code::PermissionDenied
        );
    }
    assert_eq!(
        client
            .get_dashboard(pb::GetDashboardRequest::default())
            .await
            .expect_err("anonymous")
            .code(),
        Code::Unauthenticated
    );
    let empty = client
        .get_most_expensive_task(with_token(
            pb::GetMostExpensiveTaskRequest {
                period: pb::Period::Month.into(),
                ..Default::default()
            },
            &app.admin_token,
        ))
        .await
        .expect("admin")
        .into_inner();
    assert!(empty.task.is_none(), "no completed task: an empty answer");
    let bad = client
        .get_most_expensive_task(with_token(
            pb::GetMostExpensiveTaskRequest::default(),
            &app.admin_token,
        ))
        .await
        .expect_err("no period");
    assert!(bad.code() == Code::InvalidArgument && bad.message().contains("`period`"));
    let bad = client
        .get_dashboard(with_token(
            pb::GetDashboardRequest {
                date: "yesterday".into(),
            },
            &app.admin_token,
        ))
        .await
        .expect_err("bad date");
    assert!(bad.code() == Code::InvalidArgument && bad.message().contains("`date`"));
    let today = app.dashboard("").await;
    assert_eq!(
        (
            today.management_earnings_cents,
            today.negative_balance_popugs
        ),
        (0, 0)
    );
}

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
    let top = app
        .analytics()
        .get_most_expensive_task(with_token(
            pb::GetMostExpensiveTaskRequest {
                period: pb::Period::Day.into(),
                ..Default::default()
            },
            &app.admin_token,
        ))
        .await
        .expect("top")
        .into_inner()
        .task
        .expect("a task");
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

/// `result` is INVALID_ARGUMENT naming `field` (never INTERNAL).
fn assert_invalid<T: std::fmt::Debug>(result: Result<T, tonic::Status>, field: &str, case: &str) {
    let status = result.expect_err(case);
    assert_eq!(status.code(), Code::InvalidArgument, "{case}: {status:?}");
    assert!(
        status.message().contains(&format!("`{field}`")),
        "{case}: {}",
        status.message()
    );
}

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
    let mut conn = diesel_async::AsyncPgConnection::establish(&app.analytics_db)
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

#[tokio::test]
async fn every_date_taking_method_refuses_a_bad_day_naming_the_field() {
    let app = spawn_app().await;
    let mut client = app.analytics();
    let token = app.admin_token.clone();
    for day in popug_testing::hostile_days() {
        let shown: String = day.chars().take(24).collect();
        assert_invalid(
            client
                .get_dashboard(with_token(
                    pb::GetDashboardRequest { date: day.clone() },
                    &token,
                ))
                .await,
            "date",
            &format!("GetDashboard {shown:?}"),
        );
        for (field, from, to) in [
            ("from", day.clone(), String::new()),
            ("to", String::new(), day.clone()),
        ] {
            assert_invalid(
                client
                    .get_daily_stats(with_token(
                        pb::GetDailyStatsRequest {
                            from: from.clone(),
                            to: to.clone(),
                        },
                        &token,
                    ))
                    .await,
                field,
                &format!("GetDailyStats {field} {shown:?}"),
            );
            assert_invalid(
                client
                    .get_most_expensive_task(with_token(
                        pb::GetMostExpensiveTaskRequest {
                            period: pb::Period::Unspecified.into(),
                            from,
                            to,
                        },
                        &token,
                    ))
                    .await,
                field,
                &format!("GetMostExpensiveTask {field} {shown:?}"),
            );
        }
    }
    // The ends of the range are days like any other.
    for (from, to, days) in [
        ("2000-01-01", "2000-12-31", 366),
        ("2999-01-01", "2999-12-31", 365),
    ] {
        let stats = client
            .get_daily_stats(with_token(
                pb::GetDailyStatsRequest {
                    from: from.into(),
                    to: to.into(),
                },
                &token,
            ))
            .await
            .expect("a year at an end of the range")
            .into_inner()
            .days;
        assert_eq!(stats.len(), days);
        client
            .get_most_expensive_task(with_token(
                pb::GetMostExpensiveTaskRequest {
                    period: pb::Period::Unspecified.into(),
                    from: from.into(),
                    to: to.into(),
                },
                &token,
            ))
            .await
            .expect("no task, no error");
    }
    app.dashboard("2999-12-31").await;
    app.dashboard("2000-01-01").await;
}
