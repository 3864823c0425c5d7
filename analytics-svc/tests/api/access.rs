//! Who may call what (admins only), and requests refused naming the field.

use popug_proto::pb::popug::{analytics::v1 as pb, auth::v1 as auth};
use popug_testing::{assert_invalid, with_token};
use tonic::Code;

use crate::helpers::spawn_app;

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
