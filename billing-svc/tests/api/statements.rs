//! Statements: whose a caller may read, and what an account billing never
//! heard of shows.

use popug_proto::pb::popug::{auth::v1 as auth, billing::v1 as pb};
use popug_testing::{assert_invalid, consume, tracker_events::assigned, with_token};
use tonic::Code;

use crate::helpers::spawn_app;

#[tokio::test]
async fn an_account_billing_never_heard_of_is_not_found_but_a_new_caller_sees_zero() {
    let mut app = spawn_app(None).await;
    let (known, _) = app.account("worker1", auth::Role::Worker).await;
    let (_, accountant) = app.account("counter", auth::Role::Accountant).await;
    let get = |account_id: String, date: &str| pb::GetAccountRequest {
        account_id,
        date: date.into(),
    };
    let stranger = uuid::Uuid::new_v4();
    for token in [&app.admin_token, &accountant] {
        let status = app
            .billing()
            .get_account(with_token(get(stranger.to_string(), ""), token))
            .await
            .expect_err("unknown account");
        assert_eq!(status.code(), Code::NotFound, "{status:?}");
        assert!(
            status.message().contains(&stranger.to_string()),
            "{status:?}"
        );
    }
    // A bad date is still the date's fault, whoever the account.
    assert_invalid(
        app.billing()
            .get_account(with_token(
                get(stranger.to_string(), "2026-99-99"),
                &accountant,
            ))
            .await,
        "date",
        "GetAccount of a stranger on a bad day",
    );
    let seen = app
        .billing()
        .get_account(with_token(get(known.to_string(), ""), &accountant))
        .await
        .expect("a known account")
        .into_inner();
    assert_eq!((seen.balance_cents, seen.entries.len()), (0, 0));

    // A caller whose AccountCreated has not reached billing yet sees a zero
    // balance of its own, not an error; others see it once it has.
    let (newcomer, newcomer_token) = app.auth.account("newcomer", auth::Role::Worker).await;
    let mine = app
        .billing()
        .get_my_account(with_token(
            pb::GetMyAccountRequest::default(),
            &newcomer_token,
        ))
        .await
        .expect("a caller billing has not heard of yet")
        .into_inner();
    assert_eq!(
        (mine.account_id, mine.balance_cents, mine.entries.len()),
        (newcomer.to_string(), 0, 0)
    );
    let early = app
        .billing()
        .get_account(with_token(get(newcomer.to_string(), ""), &accountant))
        .await;
    assert_eq!(early.expect_err("not heard of yet").code(), Code::NotFound);
    app.sync_accounts().await;
    app.billing()
        .get_account(with_token(get(newcomer.to_string(), ""), &accountant))
        .await
        .expect("heard of now");
    app.assert_invariants().await;
}

/// Statements: the owner reads its own, accountants and admins anyone's; an
/// unknown account is NOT_FOUND, a bad range names the field.
#[tokio::test]
async fn statements_are_for_the_owner_accountants_and_admins() {
    let mut app = spawn_app(None).await;
    let (worker, worker_token) = app.account("worker1", auth::Role::Worker).await;
    let (other, _) = app.account("other", auth::Role::Worker).await;
    app.publish(
        &assigned(uuid::Uuid::new_v4(), worker, None),
        chrono::Utc::now(),
    )
    .await;
    consume(&mut app.consumer, 1).await;
    let statement = |token: &str, account: String, from: &str| {
        let mut client = app.billing();
        let request = with_token(
            pb::GetStatementRequest {
                account_id: account,
                from: from.into(),
                to: String::new(),
            },
            token,
        );
        async move { client.get_statement(request).await }
    };
    let own = statement(&worker_token, String::new(), "")
        .await
        .expect("own")
        .into_inner();
    assert_eq!(own.account_id, worker.to_string());
    assert_eq!(own.lines.len(), 1);
    let code = |result: Result<tonic::Response<pb::GetStatementResponse>, tonic::Status>| {
        result.expect_err("refused").code()
    };
    assert_eq!(
        code(statement(&worker_token, other.to_string(), "").await),
        Code::PermissionDenied
    );
    assert_eq!(
        code(statement(&app.admin_token, uuid::Uuid::new_v4().to_string(), "").await),
        Code::NotFound
    );
    assert_eq!(
        code(statement(&app.admin_token, "kesha".into(), "").await),
        Code::InvalidArgument
    );
    assert_eq!(
        code(statement(&app.admin_token, worker.to_string(), "2026-99-01").await),
        Code::InvalidArgument
    );
    let income = app
        .billing()
        .get_income_statement(with_token(
            pb::GetIncomeStatementRequest::default(),
            &worker_token,
        ))
        .await;
    assert_eq!(
        income.expect_err("workers see no income").code(),
        Code::PermissionDenied
    );
    app.assert_invariants().await;
}
