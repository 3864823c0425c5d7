//! Managing accounts: only admins create, update, change roles, deactivate
//! and list; the directory finds accounts without their emails.

use popug_proto::pb::popug::{auth::v1 as pb, events::accounts::v1 as events};
use prost::{Message as _, Name as _};

use tonic::Code;

use popug_testing::{code, with_token};

use crate::helpers::spawn_app;

#[tokio::test]
async fn only_admins_manage_accounts() {
    let app = spawn_app().await;
    let (worker, _) = app.signed_in("worker1", pb::Role::Worker).await;
    let mut tokens = Vec::new();
    for (login, role) in [
        ("worker2", pb::Role::Worker),
        ("manager1", pb::Role::Manager),
        ("accountant1", pb::Role::Accountant),
    ] {
        tokens.push(app.signed_in(login, role).await.1.access_token);
    }
    let id = worker.account_id.clone();
    for token in &tokens {
        let mut client = app.client();
        assert_eq!(
            code(
                client
                    .create_account(with_token(
                        pb::CreateAccountRequest {
                            login: "x-new".into(),
                            password: "x-password".into(),
                            name: "X".into(),
                            email: "x@popug.inc".into(),
                            role: pb::Role::Admin.into()
                        },
                        token
                    ))
                    .await
            ),
            Code::PermissionDenied
        );
        assert_eq!(
            code(
                client
                    .update_account(with_token(
                        pb::UpdateAccountRequest {
                            account_id: id.clone(),
                            name: Some("Y".into()),
                            email: None
                        },
                        token
                    ))
                    .await
            ),
            Code::PermissionDenied
        );
        assert_eq!(
            code(
                client
                    .change_role(with_token(
                        pb::ChangeRoleRequest {
                            account_id: id.clone(),
                            role: pb::Role::Admin.into()
                        },
                        token
                    ))
                    .await
            ),
            Code::PermissionDenied
        );
        assert_eq!(
            code(
                client
                    .deactivate_account(with_token(
                        pb::DeactivateAccountRequest {
                            account_id: id.clone()
                        },
                        token
                    ))
                    .await
            ),
            Code::PermissionDenied
        );
        assert_eq!(
            code(
                client
                    .list_accounts(with_token(pb::ListAccountsRequest::default(), token))
                    .await
            ),
            Code::PermissionDenied
        );
        // ...but everyone signed in may ask who they are.
        client
            .who_am_i(with_token(pb::WhoAmIRequest {}, token))
            .await
            .expect("who am i");
    }
    // Without a token, every protected call is unauthenticated.
    let mut client = app.client();
    assert_eq!(
        code(
            client
                .list_accounts(pb::ListAccountsRequest::default())
                .await
        ),
        Code::Unauthenticated
    );
    assert_eq!(
        code(client.who_am_i(pb::WhoAmIRequest {}).await),
        Code::Unauthenticated
    );
    assert_eq!(
        code(
            client
                .deactivate_account(pb::DeactivateAccountRequest {
                    account_id: id.clone()
                })
                .await
        ),
        Code::Unauthenticated
    );
    // GetJwks is public.
    let jwks = client
        .get_jwks(pb::GetJwksRequest {})
        .await
        .expect("jwks")
        .into_inner();
    assert_eq!(jwks.keys.len(), 1);
    assert_eq!(
        (
            jwks.keys[0].kty.as_str(),
            jwks.keys[0].crv.as_str(),
            jwks.keys[0].alg.as_str()
        ),
        ("OKP", "Ed25519", "EdDSA")
    );
}

#[tokio::test]
async fn admins_update_change_roles_deactivate_and_list() {
    let mut app = spawn_app().await;
    let kesha = app.create("kesha", pb::Role::Worker).await;
    let id = kesha.account_id.clone();
    let mut client = app.client();
    let admin = &app.admin_token;

    let updated = client
        .update_account(with_token(
            pb::UpdateAccountRequest {
                account_id: id.clone(),
                name: Some("Kesha the Great".into()),
                email: None,
            },
            admin,
        ))
        .await
        .expect("update")
        .into_inner()
        .account
        .expect("account");
    assert_eq!(
        (updated.name.as_str(), updated.email.as_str()),
        ("Kesha the Great", "kesha@popug.inc")
    );
    let nothing = client
        .update_account(with_token(
            pb::UpdateAccountRequest {
                account_id: id.clone(),
                name: None,
                email: None,
            },
            admin,
        ))
        .await;
    assert_eq!(code(nothing), Code::InvalidArgument);

    let promoted = client
        .change_role(with_token(
            pb::ChangeRoleRequest {
                account_id: id.clone(),
                role: pb::Role::Manager.into(),
            },
            admin,
        ))
        .await
        .expect("role")
        .into_inner()
        .account
        .expect("account");
    assert_eq!(promoted.role, pb::Role::Manager as i32);
    // The same role again is no change, and emits nothing.
    client
        .change_role(with_token(
            pb::ChangeRoleRequest {
                account_id: id.clone(),
                role: pb::Role::Manager.into(),
            },
            admin,
        ))
        .await
        .expect("same role");

    let me = client
        .who_am_i(with_token(pb::WhoAmIRequest {}, admin))
        .await
        .expect("me")
        .into_inner()
        .account
        .expect("account");
    let own_role = client
        .change_role(with_token(
            pb::ChangeRoleRequest {
                account_id: me.account_id.clone(),
                role: pb::Role::Worker.into(),
            },
            admin,
        ))
        .await;
    let own_role = own_role.expect_err("an admin's own role stays");
    assert_eq!(own_role.code(), Code::FailedPrecondition);
    assert_eq!(
        popug_runtime::error::reason(&own_role).as_deref(),
        Some("OWN_ROLE")
    );
    let own_deactivation = client
        .deactivate_account(with_token(
            pb::DeactivateAccountRequest {
                account_id: me.account_id,
            },
            admin,
        ))
        .await;
    let own_deactivation = own_deactivation.expect_err("an admin stays active");
    assert_eq!(own_deactivation.code(), Code::FailedPrecondition);
    assert_eq!(
        popug_runtime::error::reason(&own_deactivation).as_deref(),
        Some("OWN_DEACTIVATION")
    );

    let deactivated = client
        .deactivate_account(with_token(
            pb::DeactivateAccountRequest {
                account_id: id.clone(),
            },
            admin,
        ))
        .await
        .expect("deactivate")
        .into_inner()
        .account
        .expect("account");
    assert!(!deactivated.active);
    client
        .deactivate_account(with_token(
            pb::DeactivateAccountRequest {
                account_id: id.clone(),
            },
            admin,
        ))
        .await
        .expect("deactivating again changes nothing");

    for login in ["anna", "boris", "clara"] {
        app.create(login, pb::Role::Worker).await;
    }
    let mut logins = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_accounts(with_token(
                pb::ListAccountsRequest {
                    page_size: 2,
                    page_token: page_token.clone(),
                },
                admin,
            ))
            .await
            .expect("list")
            .into_inner();
        logins.extend(page.accounts.into_iter().map(|account| account.login));
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    assert_eq!(logins, ["admin", "anna", "boris", "clara", "kesha"]);

    // Each real change emitted exactly one event; the no-ops emitted none.
    let published = app.published_events().await;
    let kinds: Vec<&str> = published.iter().map(|(kind, _)| kind.as_str()).collect();
    let created = events::AccountCreated::full_name();
    assert_eq!(
        kinds,
        [
            created.as_str(), // admin
            created.as_str(), // kesha
            &events::AccountUpdated::full_name(),
            &events::AccountRoleChanged::full_name(),
            &events::AccountDeactivated::full_name(),
            created.as_str(),
            created.as_str(),
            created.as_str(),
        ]
    );
    let role_changed =
        events::AccountRoleChanged::decode(published[3].1.as_slice()).expect("payload");
    assert_eq!(role_changed.account_id, id);
    assert_eq!(
        (role_changed.role, role_changed.previous_role),
        (events::Role::Manager as i32, events::Role::Worker as i32)
    );
    let deactivated =
        events::AccountDeactivated::decode(published[4].1.as_slice()).expect("payload");
    assert_eq!(deactivated.account_id, id);
    // Versions count the changes (the no-ops counted none): replicas order by them.
    let updated = events::AccountUpdated::decode(published[2].1.as_slice()).expect("payload");
    assert_eq!(
        (updated.version, role_changed.version, deactivated.version),
        (2, 3, 4)
    );
    let kesha_created = events::AccountCreated::decode(published[1].1.as_slice()).expect("payload");
    assert_eq!(kesha_created.version, 1);
    assert_eq!(
        (kesha_created.login.as_str(), kesha_created.active),
        ("kesha", true)
    );
}

#[tokio::test]
async fn the_directory_finds_accounts_by_login_and_id_without_emails() {
    let app = spawn_app().await;
    let (kesha, session) = app.signed_in("kesha", pb::Role::Worker).await;
    let found = app
        .client()
        .lookup_accounts(with_token(
            pb::LookupAccountsRequest {
                account_ids: vec![kesha.account_id.clone()],
                logins: vec!["ADMIN".into(), "nobody".into()],
            },
            &session.access_token,
        ))
        .await
        .expect("any signed-in popug may look")
        .into_inner()
        .accounts;
    let logins: Vec<&str> = found.iter().map(|entry| entry.login.as_str()).collect();
    assert_eq!(logins, ["admin", "kesha"]);
    assert_eq!(
        code(
            app.client()
                .lookup_accounts(pb::LookupAccountsRequest::default())
                .await
        ),
        Code::Unauthenticated
    );
    let invalid = app
        .client()
        .lookup_accounts(with_token(
            pb::LookupAccountsRequest {
                account_ids: vec!["kesha".into()],
                logins: Vec::new(),
            },
            &session.access_token,
        ))
        .await
        .expect_err("not an id");
    assert!(invalid.message().contains("`account_ids`"), "{invalid:?}");
}
