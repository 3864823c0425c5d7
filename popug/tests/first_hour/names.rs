//! People's names: task keys and logins wherever an id was wanted.

use popug_testing::ADMIN_PASSWORD;

use crate::helpers::{World, create_worker, eventually};

#[tokio::test]
async fn tasks_and_accounts_are_named_by_key_and_login_everywhere() {
    let world = World::start().await;
    let admin = world.user();
    admin.login("admin", ADMIN_PASSWORD).await;
    let kesha_id = create_worker(&admin, "kesha").await["account_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let task = eventually(
        &admin,
        &[
            "tasks",
            "create",
            "--title",
            "Feed the chicks",
            "--jira-id",
            "UBERPOP-42",
        ],
    )
    .await;
    assert_eq!(task["key"], "POPUG-1");
    assert_eq!(task["assignee"], "kesha");

    // Tables show keys and logins, not ids.
    let table = admin.ok(&["tasks", "list"]).await;
    assert!(table.starts_with("KEY"), "{table}");
    assert!(
        table.contains("POPUG-1") && table.contains("kesha") && !table.contains(&kesha_id),
        "{table}"
    );
    assert_eq!(
        admin.json(&["tasks", "get", "POPUG-1"]).await["title"],
        "Feed the chicks"
    );
    assert_eq!(
        admin.json(&["tasks", "get", "popug-1"]).await["key"],
        "POPUG-1"
    );
    let stderr = admin.fails(&["tasks", "get", "POPUG-99"]).await;
    assert!(
        stderr.contains("NotFound") && stderr.contains("POPUG-99"),
        "{stderr}"
    );
    let stderr = admin.fails(&["tasks", "get", "banana"]).await;
    assert!(stderr.contains("neither a task key"), "{stderr}");
    // Errors name the command line's flags, not the API's fields.
    let stderr = admin
        .fails(&[
            "tasks",
            "create",
            "--title",
            "Feed",
            "--jira-id",
            "bad id\u{7}",
        ])
        .await;
    assert!(
        stderr.contains("`--jira-id`") && !stderr.contains("`jira_id`"),
        "{stderr}"
    );

    let kesha = world.user();
    kesha.login("kesha", "kesha-password").await;
    assert_eq!(
        kesha.json(&["tasks", "complete", "POPUG-1"]).await["status"],
        "done"
    );

    assert_eq!(
        admin
            .json(&["accounts", "update", "kesha", "--name", "Kesha II"])
            .await["name"],
        "Kesha II"
    );
    let account = eventually(&admin, &["billing", "account", "kesha"]).await;
    assert_eq!(account["account_id"], kesha_id.as_str());
    let ledger = admin.ok(&["billing", "entries"]).await;
    assert!(
        ledger.contains("kesha") && !ledger.contains(&kesha_id),
        "{ledger}"
    );
    let statement = admin
        .json(&["billing", "statement", "--account", "kesha"])
        .await;
    assert_eq!(statement["account_id"], kesha_id.as_str());
    // One unit per table: dollars with cents.
    let earnings = admin.ok(&["billing", "earnings"]).await;
    assert!(
        earnings.starts_with("DATE") && earnings.contains("FEES") && !earnings.contains("CENTS"),
        "{earnings}"
    );
    assert!(
        earnings.lines().nth(1).is_some_and(|row| row.contains('.')),
        "{earnings}"
    );
    // A clean ledger says so.
    let check = admin.ok(&["billing", "check"]).await;
    assert!(check.starts_with("clean"), "{check}");
    // Analytics has no relay by design: not a disconnected one.
    let outbox = admin.ok(&["ops", "outbox", "--service", "analytics"]).await;
    assert!(
        outbox.contains("none (analytics publishes no events)"),
        "{outbox}"
    );
    assert_eq!(
        admin.json(&["accounts", "role", "kesha", "manager"]).await["role"],
        "manager"
    );
    assert_eq!(
        admin.json(&["accounts", "deactivate", "kesha"]).await["active"],
        false
    );
}
