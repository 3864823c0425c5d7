//! Passwords: changed, set by an admin, reset on the database by a local
//! operator.

use popug_testing::ADMIN_PASSWORD;
use serde_json::Value;

use crate::helpers::{World, create_worker};

#[tokio::test]
async fn passwords_are_changed_set_by_an_admin_and_reset_by_the_operator() {
    let world = World::start().await;
    let admin = world.user();
    admin.login("admin", ADMIN_PASSWORD).await;
    create_worker(&admin, "kesha").await;

    // An admin sets another account's password, by its login.
    admin
        .json(&[
            "accounts",
            "set-password",
            "kesha",
            "--password",
            "set-by-admin",
        ])
        .await;
    let stderr = admin
        .fails(&["login", "--login", "kesha", "--password", "kesha-password"])
        .await;
    assert!(stderr.contains("Unauthenticated"), "{stderr}");
    let stderr = admin
        .fails(&[
            "accounts",
            "set-password",
            "admin",
            "--password",
            "whatever-1",
        ])
        .await;
    assert!(
        stderr.contains("FailedPrecondition") && stderr.contains("popug password"),
        "an admin changes its own with ChangePassword: {stderr}"
    );
    let stderr = admin
        .fails(&["accounts", "set-password", "kesha", "--password", "short"])
        .await;
    assert!(
        stderr.contains("InvalidArgument") && stderr.contains("`--password`"),
        "{stderr}"
    );
    let stderr = admin
        .fails(&[
            "accounts",
            "set-password",
            "nobody",
            "--password",
            "long-enough",
        ])
        .await;
    assert!(
        stderr.contains("no account has the login `nobody`"),
        "{stderr}"
    );

    // Kesha changes its own: the old one must be right; this session goes on.
    let kesha = world.user();
    kesha.login("kesha", "set-by-admin").await;
    let other_session = world.user();
    other_session.login("kesha", "set-by-admin").await;
    let stderr = kesha
        .fails(&[
            "password",
            "--old",
            "not-it-at-all",
            "--new",
            "kesha-chosen",
        ])
        .await;
    assert!(
        stderr.contains("InvalidArgument") && stderr.contains("`--old`"),
        "{stderr}"
    );
    kesha
        .json(&["password", "--old", "set-by-admin", "--new", "kesha-chosen"])
        .await;
    assert_eq!(kesha.json(&["whoami"]).await["login"], "kesha");
    kesha.login("kesha", "kesha-chosen").await;
    // The other session's refresh token was revoked.
    let mut session: Value = serde_json::from_str(
        &std::fs::read_to_string(other_session.config.path().join("session.json"))
            .expect("session"),
    )
    .expect("JSON");
    session["expires_at"] = 0.into();
    std::fs::write(
        other_session.config.path().join("session.json"),
        session.to_string(),
    )
    .expect("write");
    let stderr = other_session.fails(&["whoami"]).await;
    assert!(stderr.contains("popug login"), "{stderr}");

    // The operator lost the admin's password: reset on the database the
    // local settings name, saying so; no sign-in needed.
    let operator = world.user();
    let (ok, stdout, stderr) = operator
        .run(&["admin", "reset-password", "--password", "recovered-1"])
        .await;
    assert!(ok, "{stderr}");
    let database = world.var("POPUG_AUTH_DATABASE_URL");
    assert!(
        stderr.contains("directly in the auth database") && stderr.contains(database),
        "{stderr}"
    );
    assert!(stdout.contains("`admin`"), "{stdout}");
    operator.login("admin", "recovered-1").await;
    admin
        .fails(&["login", "--login", "admin", "--password", ADMIN_PASSWORD])
        .await;
    // Without --password, one is generated and shown once.
    let reset = operator
        .json(&["admin", "reset-password", "--login", "kesha"])
        .await;
    let generated = reset["password"].as_str().expect("a generated password");
    assert_eq!(generated.len(), 20);
    operator.login("kesha", generated).await;
    let stderr = operator
        .fails(&[
            "admin",
            "reset-password",
            "--login",
            "ghost",
            "--password",
            "long-enough",
        ])
        .await;
    assert!(stderr.contains("no account `ghost`"), "{stderr}");
    let missing = {
        let mut command =
            operator.command(&["admin", "reset-password", "--password", "long-enough"]);
        command.env(
            "POPUG_AUTH_DATABASE_URL",
            "postgres://postgres@127.0.0.1:5432/popug_test_never_created",
        );
        command.output().await.expect("runs")
    };
    assert!(!missing.status.success());
    let said = String::from_utf8_lossy(&missing.stderr);
    assert!(
        said.contains("there is no auth database `popug_test_never_created`"),
        "{said}"
    );
}
