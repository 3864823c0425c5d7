//! Sessions: refresh tokens rotate, a reused one revokes the session, and
//! deactivation or demotion count at once.

use popug_proto::pb::popug::auth::v1 as pb;

use tonic::Code;

use popug_testing::{code, with_token};

use crate::helpers::spawn_app;

#[tokio::test]
async fn refresh_tokens_rotate_and_a_reused_one_revokes_the_session() {
    let app = spawn_app().await;
    let (_, session) = app.signed_in("kesha", pb::Role::Worker).await;
    let mut client = app.client();
    let refreshed = client
        .refresh(pb::RefreshRequest {
            refresh_token: session.refresh_token.clone(),
        })
        .await
        .expect("refresh")
        .into_inner();
    assert_ne!(refreshed.refresh_token, session.refresh_token);
    client
        .who_am_i(with_token(pb::WhoAmIRequest {}, &refreshed.access_token))
        .await
        .expect("new token works");
    // The spent token again: theft is assumed, every session is revoked.
    assert_eq!(
        code(
            client
                .refresh(pb::RefreshRequest {
                    refresh_token: session.refresh_token
                })
                .await
        ),
        Code::Unauthenticated
    );
    assert_eq!(
        code(
            client
                .refresh(pb::RefreshRequest {
                    refresh_token: refreshed.refresh_token
                })
                .await
        ),
        Code::Unauthenticated
    );
    assert_eq!(
        code(
            client
                .refresh(pb::RefreshRequest {
                    refresh_token: "made-up".into()
                })
                .await
        ),
        Code::Unauthenticated
    );
    assert_eq!(
        code(
            client
                .refresh(pb::RefreshRequest {
                    refresh_token: String::new()
                })
                .await
        ),
        Code::InvalidArgument
    );
}

#[tokio::test]
async fn a_deactivated_account_is_locked_out_at_once() {
    let app = spawn_app().await;
    let (account, session) = app.signed_in("leaving", pb::Role::Worker).await;
    let mut client = app.client();
    client
        .deactivate_account(with_token(
            pb::DeactivateAccountRequest {
                account_id: account.account_id,
            },
            &app.admin_token,
        ))
        .await
        .expect("deactivate");
    // The access token is still within its lifetime, yet auth refuses it now;
    // other services accept it until it expires (at most 15 minutes).
    assert_eq!(
        code(
            client
                .who_am_i(with_token(pb::WhoAmIRequest {}, &session.access_token))
                .await
        ),
        Code::Unauthenticated
    );
    assert_eq!(
        code(
            client
                .refresh(pb::RefreshRequest {
                    refresh_token: session.refresh_token
                })
                .await
        ),
        Code::Unauthenticated
    );
    assert_eq!(
        code(
            client
                .login(pb::LoginRequest {
                    login: "leaving".into(),
                    password: "leaving-password".into()
                })
                .await
        ),
        Code::Unauthenticated
    );
}

#[tokio::test]
async fn a_demoted_admin_loses_admin_rights_at_once() {
    let app = spawn_app().await;
    let (second, session) = app.signed_in("second-admin", pb::Role::Admin).await;
    let mut client = app.client();
    client
        .list_accounts(with_token(
            pb::ListAccountsRequest::default(),
            &session.access_token,
        ))
        .await
        .expect("an admin lists accounts");
    client
        .change_role(with_token(
            pb::ChangeRoleRequest {
                account_id: second.account_id,
                role: pb::Role::Worker.into(),
            },
            &app.admin_token,
        ))
        .await
        .expect("demote");
    // The token still says admin, but auth-svc checks the role it has now.
    let status = client
        .create_account(with_token(
            pb::CreateAccountRequest {
                login: "sneaky".into(),
                password: "sneaky-password".into(),
                name: "Sneaky".into(),
                email: "sneaky@popug.inc".into(),
                role: pb::Role::Admin.into(),
            },
            &session.access_token,
        ))
        .await
        .expect_err("no longer an admin");
    assert_eq!(status.code(), Code::PermissionDenied);
}
