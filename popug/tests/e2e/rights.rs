//! Revoked rights end at once on every service, the ops APIs included.

use std::time::Duration;

use popug::client::Bearer;
use popug_proto::pb::popug::{
    analytics::v1 as analytics, auth::v1 as auth, billing::v1 as billing, tracker::v1 as tracker,
};
use tonic::Code;

use crate::helpers::{World, eventually, ok};

/// Every admin-only call of every service, the ops APIs included, as `bearer`.
async fn admin_calls(
    world: &World,
    bearer: &Bearer,
    account_id: &str,
) -> Vec<(String, Result<(), tonic::Status>)> {
    let mut calls = vec![
        (
            "auth ListAccounts".to_owned(),
            ok(world
                .channels
                .auth(bearer)
                .list_accounts(auth::ListAccountsRequest::default())
                .await),
        ),
        (
            "tracker ListTasks".to_owned(),
            ok(world
                .channels
                .tracker(bearer)
                .list_tasks(tracker::ListTasksRequest::default())
                .await),
        ),
        (
            "billing GetAccount".to_owned(),
            ok(world
                .channels
                .billing(bearer)
                .get_account(billing::GetAccountRequest {
                    account_id: account_id.into(),
                    date: String::new(),
                })
                .await),
        ),
        (
            "billing GetManagementEarnings".to_owned(),
            ok(world
                .channels
                .billing(bearer)
                .get_management_earnings(billing::GetManagementEarningsRequest::default())
                .await),
        ),
        (
            "billing AuditLedger".to_owned(),
            ok(world
                .channels
                .billing(bearer)
                .audit_ledger(billing::AuditLedgerRequest {})
                .await),
        ),
        (
            "billing ListEntries".to_owned(),
            ok(world
                .channels
                .billing(bearer)
                .list_entries(billing::ListEntriesRequest::default())
                .await),
        ),
        (
            "analytics GetDashboard".to_owned(),
            ok(world
                .channels
                .analytics(bearer)
                .get_dashboard(analytics::GetDashboardRequest::default())
                .await),
        ),
        (
            "analytics GetDailyStats".to_owned(),
            ok(world
                .channels
                .analytics(bearer)
                .get_daily_stats(analytics::GetDailyStatsRequest::default())
                .await),
        ),
    ];
    for service in popug_runtime::Service::ALL {
        calls.push((
            format!("{} OpsService GetOutboxStatus", service.name()),
            ok(world
                .channels
                .ops(service, bearer)
                .get_outbox_status(popug_proto::pb::popug::ops::v1::GetOutboxStatusRequest {})
                .await),
        ));
    }
    calls
}

/// A deactivation or a demotion counts on every service at once, the ops
/// APIs included, not when the caller's unexpired token runs out.
#[tokio::test]
async fn revoked_rights_end_at_once_on_every_service() {
    let world = Box::pin(World::start()).await;
    let (worker_id, worker) = world.hire("kesha", auth::Role::Worker).await;
    let (demoted_id, demoted) = world.hire("second-admin", auth::Role::Admin).await;
    let (gone_id, gone) = world.hire("third-admin", auth::Role::Admin).await;
    // Every replica has heard of them: their rights work everywhere.
    for bearer in [&demoted, &gone] {
        eventually(|| async {
            for (call, result) in admin_calls(&world, bearer, &worker_id).await {
                result.map_err(|status| {
                    tonic::Status::new(status.code(), format!("{call}: {}", status.message()))
                })?;
            }
            Ok(())
        })
        .await;
    }
    eventually(|| async {
        world
            .channels
            .billing(&worker)
            .get_my_account(billing::GetMyAccountRequest::default())
            .await
    })
    .await;

    let admin = world.channels.auth(&world.admin);
    admin
        .clone()
        .change_role(auth::ChangeRoleRequest {
            account_id: demoted_id,
            role: auth::Role::Worker.into(),
        })
        .await
        .expect("demoted");
    admin
        .clone()
        .deactivate_account(auth::DeactivateAccountRequest {
            account_id: gone_id,
        })
        .await
        .expect("deactivated");
    admin
        .clone()
        .deactivate_account(auth::DeactivateAccountRequest {
            account_id: worker_id.clone(),
        })
        .await
        .expect("deactivated");

    // As soon as each service has the events, every call is refused with
    // the same tokens: PERMISSION_DENIED for the demoted, UNAUTHENTICATED
    // for the deactivated.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    for (bearer, expected) in [
        (&demoted, Code::PermissionDenied),
        (&gone, Code::Unauthenticated),
    ] {
        loop {
            let calls = admin_calls(&world, bearer, &worker_id).await;
            let allowed: Vec<&String> = calls
                .iter()
                .filter(|(_, result)| result.as_ref().map_err(tonic::Status::code) != Err(expected))
                .map(|(call, _)| call)
                .collect();
            if allowed.is_empty() {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "still answered ({expected:?} expected): {allowed:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let me = world
            .channels
            .billing(&worker)
            .get_my_account(billing::GetMyAccountRequest::default())
            .await;
        if me.as_ref().map_err(tonic::Status::code).err() == Some(Code::Unauthenticated) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "a deactivated worker still reads its account: {me:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    world.assert_books_agree().await;
}
