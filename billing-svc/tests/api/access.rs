//! Who may call what: the roles' rules, and requests refused naming the
//! field.

use popug_proto::pb::popug::{auth::v1 as auth, billing::v1 as pb};
use popug_testing::{assert_invalid, with_token};
use tonic::Code;

use crate::helpers::spawn_app;

#[tokio::test]
async fn roles_decide_who_sees_and_closes_what() {
    let mut app = spawn_app(None).await;
    let (worker, worker_token) = app.account("worker1", auth::Role::Worker).await;
    let (_, manager) = app.account("boss", auth::Role::Manager).await;
    let (_, accountant) = app.account("counter", auth::Role::Accountant).await;
    let mut client = app.billing();
    let someone = pb::GetAccountRequest {
        account_id: worker.to_string(),
        date: String::new(),
    };
    for token in [&worker_token, &manager] {
        assert_eq!(
            client
                .get_account(with_token(someone.clone(), token))
                .await
                .expect_err("not theirs")
                .code(),
            Code::PermissionDenied
        );
        assert_eq!(
            client
                .get_management_earnings(with_token(
                    pb::GetManagementEarningsRequest::default(),
                    token
                ))
                .await
                .expect_err("no")
                .code(),
            Code::PermissionDenied
        );
        assert_eq!(
            client
                .close_day(with_token(pb::CloseDayRequest::default(), token))
                .await
                .expect_err("no")
                .code(),
            Code::PermissionDenied
        );
        client
            .get_my_account(with_token(pb::GetMyAccountRequest::default(), token))
            .await
            .expect("own account");
        assert_eq!(
            client
                .list_balances(with_token(pb::ListBalancesRequest::default(), token))
                .await
                .expect_err("not every balance")
                .code(),
            Code::PermissionDenied
        );
    }
    client
        .get_account(with_token(someone.clone(), &accountant))
        .await
        .expect("accountants see any account");
    // Every popug's balance, page by page in account id order.
    let mut balances = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_balances(with_token(
                pb::ListBalancesRequest {
                    page_size: 2,
                    page_token,
                },
                &accountant,
            ))
            .await
            .expect("accountants see every balance")
            .into_inner();
        balances.extend(page.balances);
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    let mut logins: Vec<&str> = balances.iter().map(|b| b.login.as_str()).collect();
    logins.sort_unstable();
    assert_eq!(logins, ["admin", "boss", "counter", "worker1"]);
    let listed = balances
        .iter()
        .find(|balance| balance.account_id == worker.to_string())
        .expect("the worker is listed");
    assert_eq!(
        (listed.role(), listed.active, listed.balance_cents),
        (auth::Role::Worker, true, 0)
    );
    assert_invalid(
        client
            .list_balances(with_token(
                pb::ListBalancesRequest {
                    page_size: 0,
                    page_token: "not a token".into(),
                },
                &accountant,
            ))
            .await,
        "page_token",
        "a made-up page token",
    );
    client
        .get_management_earnings(with_token(
            pb::GetManagementEarningsRequest::default(),
            &accountant,
        ))
        .await
        .expect("and earnings");
    assert_eq!(
        client
            .get_my_account(pb::GetMyAccountRequest::default())
            .await
            .expect_err("anonymous")
            .code(),
        Code::Unauthenticated
    );
    let bad = client
        .get_management_earnings(with_token(
            pb::GetManagementEarningsRequest {
                from: "2026-12-01".into(),
                to: "2026-11-01".into(),
            },
            &accountant,
        ))
        .await
        .expect_err("reversed range");
    assert!(bad.code() == Code::InvalidArgument && bad.message().contains("`from`"));
    app.assert_invariants().await;
}

/// `result` is INVALID_ARGUMENT naming `field` (never INTERNAL).
#[tokio::test]
async fn every_date_taking_method_refuses_a_bad_day_naming_the_field() {
    let mut app = spawn_app(None).await;
    let (worker, worker_token) = app.account("worker1", auth::Role::Worker).await;
    let admin = app.admin_token.clone();
    let mut client = app.billing();
    let range = |from: &str, to: &str| (from.to_owned(), to.to_owned());
    for day in popug_testing::hostile_days() {
        let shown: String = day.chars().take(24).collect();
        let case = |method: &str| format!("{method} {shown:?}");
        assert_invalid(
            client
                .get_my_account(with_token(
                    pb::GetMyAccountRequest { date: day.clone() },
                    &worker_token,
                ))
                .await,
            "date",
            &case("GetMyAccount"),
        );
        assert_invalid(
            client
                .get_account(with_token(
                    pb::GetAccountRequest {
                        account_id: worker.to_string(),
                        date: day.clone(),
                    },
                    &admin,
                ))
                .await,
            "date",
            &case("GetAccount"),
        );
        assert_invalid(
            client
                .close_day(with_token(
                    pb::CloseDayRequest { date: day.clone() },
                    &admin,
                ))
                .await,
            "date",
            &case("CloseDay"),
        );
        for (field, (from, to)) in [("from", range(&day, "")), ("to", range("", &day))] {
            assert_invalid(
                client
                    .get_management_earnings(with_token(
                        pb::GetManagementEarningsRequest {
                            from: from.clone(),
                            to: to.clone(),
                        },
                        &admin,
                    ))
                    .await,
                field,
                &case("GetManagementEarnings"),
            );
            assert_invalid(
                client
                    .get_income_statement(with_token(
                        pb::GetIncomeStatementRequest {
                            from: from.clone(),
                            to: to.clone(),
                        },
                        &admin,
                    ))
                    .await,
                field,
                &case("GetIncomeStatement"),
            );
            assert_invalid(
                client
                    .get_statement(with_token(
                        pb::GetStatementRequest {
                            account_id: String::new(),
                            from,
                            to,
                        },
                        &worker_token,
                    ))
                    .await,
                field,
                &case("GetStatement"),
            );
        }
    }

    // The ends of the range are days like any other.
    let year_2000 = client
        .get_management_earnings(with_token(
            pb::GetManagementEarningsRequest {
                from: "2000-01-01".into(),
                to: "2000-12-31".into(),
            },
            &admin,
        ))
        .await
        .expect("the first year")
        .into_inner()
        .days;
    assert_eq!(year_2000.len(), 366);
    let last_year = client
        .get_income_statement(with_token(
            pb::GetIncomeStatementRequest {
                from: "2999-01-01".into(),
                to: "2999-12-31".into(),
            },
            &admin,
        ))
        .await
        .expect("the last year")
        .into_inner()
        .days;
    assert_eq!(last_year.len(), 365);
    client
        .get_statement(with_token(
            pb::GetStatementRequest {
                account_id: String::new(),
                from: "2999-12-31".into(),
                to: "2999-12-31".into(),
            },
            &worker_token,
        ))
        .await
        .expect("the last day");
    let first_day = client
        .get_account(with_token(
            pb::GetAccountRequest {
                account_id: worker.to_string(),
                date: "2000-01-01".into(),
            },
            &admin,
        ))
        .await
        .expect("the first day")
        .into_inner();
    assert!(first_day.entries.is_empty());
    let not_yet = client
        .close_day(with_token(
            pb::CloseDayRequest {
                date: "2999-12-31".into(),
            },
            &admin,
        ))
        .await;
    assert_eq!(
        not_yet.expect_err("not ended").code(),
        Code::FailedPrecondition
    );
    app.assert_invariants().await;
}
