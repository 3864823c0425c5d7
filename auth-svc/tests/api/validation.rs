//! Requests refused naming the field, control characters in every text
//! field included.

use popug_proto::pb::popug::auth::v1 as pb;

use tonic::Code;

use popug_testing::{assert_invalid, code, with_token};

use crate::helpers::spawn_app;

#[tokio::test]
async fn bad_requests_name_the_field() {
    let app = spawn_app().await;
    let cases = [
        (
            "login",
            pb::CreateAccountRequest {
                login: "a b".into(),
                password: "long-enough".into(),
                name: "N".into(),
                email: "n@popug.inc".into(),
                role: pb::Role::Worker.into(),
            },
        ),
        (
            "password",
            pb::CreateAccountRequest {
                login: "newbie".into(),
                password: "short".into(),
                name: "N".into(),
                email: "n@popug.inc".into(),
                role: pb::Role::Worker.into(),
            },
        ),
        (
            "name",
            pb::CreateAccountRequest {
                login: "newbie".into(),
                password: "long-enough".into(),
                name: " ".into(),
                email: "n@popug.inc".into(),
                role: pb::Role::Worker.into(),
            },
        ),
        (
            "email",
            pb::CreateAccountRequest {
                login: "newbie".into(),
                password: "long-enough".into(),
                name: "N".into(),
                email: "nowhere".into(),
                role: pb::Role::Worker.into(),
            },
        ),
        (
            "role",
            pb::CreateAccountRequest {
                login: "newbie".into(),
                password: "long-enough".into(),
                name: "N".into(),
                email: "n@popug.inc".into(),
                role: 0,
            },
        ),
        (
            "role",
            pb::CreateAccountRequest {
                login: "newbie".into(),
                password: "long-enough".into(),
                name: "N".into(),
                email: "n@popug.inc".into(),
                role: 42,
            },
        ),
    ];
    for (field, request) in cases {
        let status = app
            .client()
            .create_account(with_token(request, &app.admin_token))
            .await
            .expect_err(field);
        assert_eq!(status.code(), Code::InvalidArgument, "{field}");
        assert!(
            status.message().contains(&format!("`{field}`")),
            "{field}: {}",
            status.message()
        );
    }
    let status = app
        .client()
        .change_role(with_token(
            pb::ChangeRoleRequest {
                account_id: "42".into(),
                role: pb::Role::Manager.into(),
            },
            &app.admin_token,
        ))
        .await
        .expect_err("bad id");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("`account_id`"));
    let missing = app
        .client()
        .change_role(with_token(
            pb::ChangeRoleRequest {
                account_id: uuid::Uuid::new_v4().to_string(),
                role: pb::Role::Manager.into(),
            },
            &app.admin_token,
        ))
        .await;
    assert_eq!(code(missing), Code::NotFound);
}

/// Control characters a hostile client sends: NUL (Postgres refuses it in
/// text), BEL, an ESC sequence, CR/LF, a C1 control and a line separator.
/// Inside the text: leading and trailing white space is trimmed, as ever.
const HOSTILE: [&str; 7] = [
    "n\0ul",
    "be\u{7}ll",
    "e\u{1b}[2Jsc",
    "cr\r\nlf",
    "c\u{85}one",
    "c\u{9b}31m",
    "line\u{2028}break",
];

#[tokio::test]
async fn nul_and_control_characters_are_refused_in_every_text_field() {
    let mut app = spawn_app().await;
    let (kesha, session) = app.signed_in("kesha", pb::Role::Worker).await;
    assert_eq!(
        app.published_events().await.len(),
        2,
        "the admin's and kesha's"
    );
    let request = |login: &str, password: &str, name: &str, email: &str| pb::CreateAccountRequest {
        login: login.into(),
        password: password.into(),
        name: name.into(),
        email: email.into(),
        role: pb::Role::Worker.into(),
    };
    for hostile in HOSTILE {
        let password = format!("{hostile}-password");
        let email = format!("x{hostile}@popug.inc");
        for (field, create) in [
            ("login", request(hostile, "long-enough", "N", "n@popug.inc")),
            ("password", request("newbie", &password, "N", "n@popug.inc")),
            (
                "name",
                request("newbie", "long-enough", hostile, "n@popug.inc"),
            ),
            ("email", request("newbie", "long-enough", "N", &email)),
        ] {
            let case = format!("CreateAccount {field} {hostile:?}");
            assert_invalid(
                app.client()
                    .create_account(with_token(create.clone(), &app.admin_token))
                    .await,
                field,
                &case,
            );
            assert_invalid(
                app.client()
                    .sign_up(pb::SignUpRequest {
                        login: create.login,
                        password: create.password,
                        name: create.name,
                        email: create.email,
                    })
                    .await,
                field,
                &format!("Sign{case}"),
            );
        }
        for (field, update) in [
            ("name", (Some(hostile.to_owned()), None)),
            ("email", (None, Some(email.clone()))),
        ] {
            assert_invalid(
                app.client()
                    .update_account(with_token(
                        pb::UpdateAccountRequest {
                            account_id: kesha.account_id.clone(),
                            name: update.0,
                            email: update.1,
                        },
                        &app.admin_token,
                    ))
                    .await,
                field,
                &format!("UpdateAccount {field} {hostile:?}"),
            );
        }
        for (field, login, password) in [
            ("login", hostile, "kesha-password"),
            ("password", "kesha", password.as_str()),
        ] {
            assert_invalid(
                app.client()
                    .login(pb::LoginRequest {
                        login: login.into(),
                        password: password.into(),
                    })
                    .await,
                field,
                &format!("Login {field} {hostile:?}"),
            );
        }
        assert_invalid(
            app.client()
                .refresh(pb::RefreshRequest {
                    refresh_token: format!("{}{hostile}", session.refresh_token),
                })
                .await,
            "refresh_token",
            &format!("Refresh {hostile:?}"),
        );
        assert_invalid(
            app.client()
                .list_accounts(with_token(
                    pb::ListAccountsRequest {
                        page_size: 10,
                        page_token: hostile.into(),
                    },
                    &app.admin_token,
                ))
                .await,
            "page_token",
            &format!("ListAccounts {hostile:?}"),
        );
        assert_invalid(
            app.client()
                .deactivate_account(with_token(
                    pb::DeactivateAccountRequest {
                        account_id: format!("{}{hostile}", kesha.account_id),
                    },
                    &app.admin_token,
                ))
                .await,
            "account_id",
            &format!("DeactivateAccount {hostile:?}"),
        );
    }

    // Nothing hostile was stored or announced, and kesha is as she was.
    let accounts = app
        .client()
        .list_accounts(with_token(
            pb::ListAccountsRequest::default(),
            &app.admin_token,
        ))
        .await
        .expect("list")
        .into_inner()
        .accounts;
    let logins: Vec<&str> = accounts.iter().map(|a| a.login.as_str()).collect();
    assert_eq!(logins, ["admin", "kesha"]);
    assert!(accounts[1].name == kesha.name && accounts[1].email == kesha.email);
    assert!(
        app.published_events().await.is_empty(),
        "no event for a refused change"
    );
    // Printable text of any script, and a password of any printable characters, pass.
    app.client()
        .create_account(with_token(
            request(
                "kesha.2",
                "pässwörd ✓ with spaces",
                "Кеша 🦜",
                "kesha2@popug.inc",
            ),
            &app.admin_token,
        ))
        .await
        .expect("printable text passes");
    app.login("kesha.2", "pässwörd ✓ with spaces").await;
}
