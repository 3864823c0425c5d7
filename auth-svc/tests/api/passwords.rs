//! Passwords change with the old one; admins set others'.

use popug_proto::pb::popug::auth::v1 as pb;

use tonic::Code;

use popug_testing::{ADMIN_PASSWORD, code, with_token};

use crate::helpers::spawn_app;

#[tokio::test]
async fn passwords_change_with_the_old_one_and_admins_set_others() {
    let mut app = spawn_app().await;
    let (kesha, session) = app.signed_in("kesha", pb::Role::Worker).await;
    let (_, manager) = app.signed_in("boss", pb::Role::Manager).await;
    app.published_events().await;
    let mut client = app.client();
    let change = |old: &str, new: &str, token: &str| {
        with_token(
            pb::ChangePasswordRequest {
                old_password: old.into(),
                new_password: new.into(),
            },
            token,
        )
    };
    // Wrong old password, short new one: refused naming the field.
    let wrong = client
        .change_password(change("not-the-one", "kesha-second", &session.access_token))
        .await
        .expect_err("wrong old password");
    assert_eq!(wrong.code(), Code::InvalidArgument);
    assert!(wrong.message().contains("`old_password`"), "{wrong:?}");
    let short = client
        .change_password(change("kesha-password", "short", &session.access_token))
        .await
        .expect_err("too short");
    assert!(short.message().contains("`new_password`"), "{short:?}");
    assert_eq!(
        code(
            client
                .change_password(pb::ChangePasswordRequest {
                    old_password: "kesha-password".into(),
                    new_password: "kesha-second".into(),
                })
                .await
        ),
        Code::Unauthenticated
    );
    // Changed: a fresh session; the earlier refresh token is gone, and
    // presenting it does not end the new session (it is no theft).
    let changed = client
        .change_password(change(
            "kesha-password",
            "kesha-second",
            &session.access_token,
        ))
        .await
        .expect("changed")
        .into_inner();
    assert_eq!(changed.account.expect("account").login, "kesha");
    client
        .who_am_i(with_token(pb::WhoAmIRequest {}, &changed.access_token))
        .await
        .expect("the new session works");
    assert_eq!(
        code(
            client
                .refresh(pb::RefreshRequest {
                    refresh_token: session.refresh_token.clone()
                })
                .await
        ),
        Code::Unauthenticated
    );
    client
        .refresh(pb::RefreshRequest {
            refresh_token: changed.refresh_token,
        })
        .await
        .expect("the new refresh token works");
    app.login("kesha", "kesha-second").await;

    // SetPassword: admins only, never their own, for an account that exists.
    let set = |account_id: &str, token: &str| {
        with_token(
            pb::SetPasswordRequest {
                account_id: account_id.into(),
                password: "set-by-admin".into(),
            },
            token,
        )
    };
    assert_eq!(
        code(
            client
                .set_password(set(&kesha.account_id, &manager.access_token))
                .await
        ),
        Code::PermissionDenied
    );
    let admin_id = app
        .login("admin", ADMIN_PASSWORD)
        .await
        .account
        .expect("account")
        .account_id;
    assert_eq!(
        code(client.set_password(set(&admin_id, &app.admin_token)).await),
        Code::FailedPrecondition
    );
    assert_eq!(
        code(
            client
                .set_password(set(&uuid::Uuid::new_v4().to_string(), &app.admin_token))
                .await
        ),
        Code::NotFound
    );
    let invalid = client
        .set_password(set("kesha", &app.admin_token))
        .await
        .expect_err("not an id");
    assert!(invalid.message().contains("`account_id`"), "{invalid:?}");
    client
        .set_password(set(&kesha.account_id, &app.admin_token))
        .await
        .expect("set");
    app.login("kesha", "set-by-admin").await;
    // A password is auth's alone: no account event tells the others.
    assert!(app.published_events().await.is_empty());
}
