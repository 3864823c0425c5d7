//! The commands that show and reset the system (`status`, `events tail`,
//! `reset`, `completions`), and where service URLs come from.

use std::{process::Stdio, time::Duration};

use popug_testing::ADMIN_PASSWORD;
use serde_json::Value;
use tokio::{io::AsyncBufReadExt as _, process::Command};

use crate::helpers::{World, create_worker};

#[tokio::test]
async fn status_events_tail_reset_and_completions() {
    let world = World::start().await;
    let admin = world.user();

    // Status before signing in: the services, no session.
    let (ok, stdout, stderr) = admin.run(&["status"]).await;
    assert!(ok, "{stderr}");
    assert!(stdout.contains("not signed in"), "{stdout}");
    admin.login("admin", ADMIN_PASSWORD).await;
    let status = admin.json(&["status"]).await;
    let services = status["services"].as_array().expect("services");
    assert_eq!(services.len(), 4, "{status}");
    for service in services {
        assert_eq!(service["health"], "serving", "{service}");
        assert_eq!(service["version"], env!("CARGO_PKG_VERSION"), "{service}");
        assert!(service["outbox_pending"].is_u64(), "{service}");
    }
    assert!(services[2]["dead_letters_unresolved"].is_u64(), "{status}");
    assert!(services[2]["queued"].is_u64(), "{status}");
    assert_eq!(status["signed_in"]["login"], "admin");
    assert_eq!(status["signed_in"]["role"], "admin");
    assert!(status["web"].is_null(), "{status}");

    // Events tail: the account.* events, decoded, as they are published.
    let mut tail = admin
        .command(&[
            "events",
            "tail",
            "--filter",
            "account.*",
            "--count",
            "1",
            "--json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("tail starts");
    let mut said = tokio::io::BufReader::new(tail.stderr.take().expect("stderr")).lines();
    let first = tokio::time::timeout(Duration::from_secs(30), said.next_line())
        .await
        .expect("tail says what it follows")
        .expect("read")
        .expect("a line");
    assert!(first.starts_with("following"), "{first}");
    create_worker(&admin, "chick").await;
    let output = tokio::time::timeout(Duration::from_secs(30), tail.wait_with_output())
        .await
        .expect("one event arrives")
        .expect("tail ends");
    assert!(output.status.success());
    let event: Value = serde_json::from_slice(&output.stdout).expect("one JSON line");
    assert_eq!(event["routing_key"], "account.created.v1", "{event}");
    assert_eq!(event["producer"], "auth", "{event}");
    assert_eq!(event["payload"]["login"], "chick", "{event}");
    assert!(event["occurred_at"].is_string(), "{event}");

    // Completions for a shell.
    let script = admin.ok(&["completions", "bash"]).await;
    assert!(
        script.contains("_popug") && script.contains("reset-password"),
        "{script:.200}"
    );
    admin.fails(&["completions", "cobol"]).await;

    // Reset: never without a confirmation; then everything is gone.
    world.stop().await;
    let stderr = admin.fails(&["reset"]).await;
    assert!(stderr.contains("nothing was removed"), "{stderr}");
    let removed = admin.json(&["reset", "--yes"]).await;
    let removed = removed.as_array().expect("rows");
    assert_eq!(
        removed
            .iter()
            .filter(|row| row["kind"] == "database")
            .count(),
        4,
        "{removed:?}"
    );
    // Each consumer's live and dead-letter queue, and the history stream.
    assert_eq!(
        removed.iter().filter(|row| row["kind"] == "queue").count(),
        7,
        "{removed:?}"
    );
    let database = world.var("POPUG_AUTH_DATABASE_URL");
    let name = database.rsplit('/').next().expect("a name");
    let listed = std::process::Command::new("psql")
        .args(["-h", "127.0.0.1", "-U", "postgres", "-Atc"])
        .arg(format!(
            "SELECT count(*) FROM pg_database WHERE datname = '{name}'"
        ))
        .output()
        .expect("psql runs");
    assert_eq!(String::from_utf8_lossy(&listed.stdout).trim(), "0");
    let namespace = world.var("POPUG_NAMESPACE");
    let connection = lapin::Connection::connect(
        "amqp://guest:guest@127.0.0.1:5672/%2f",
        lapin::ConnectionProperties::default(),
    )
    .await
    .expect("broker");
    let channel = connection.create_channel().await.expect("channel");
    let gone = channel
        .queue_declare(
            format!("{namespace}.billing.events.dlq").as_str().into(),
            lapin::options::QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            lapin::types::FieldTable::default(),
        )
        .await;
    assert!(gone.is_err(), "the dead-letter queue is deleted");
}

#[tokio::test]
async fn service_urls_come_from_flags_or_the_config_file_and_help_is_clean() {
    let world = World::start().await;
    let user = world.user();
    user.login("admin", ADMIN_PASSWORD).await;
    // No POPUG_TRACKER_URL: the config file says where the tracker is.
    let tasks = |command: &mut Command| {
        command.env_remove("POPUG_TRACKER_URL");
    };
    let mut command = user.command(&["tasks", "list"]);
    tasks(&mut command);
    let output = command.output().await.expect("runs");
    assert!(
        !output.status.success()
            && String::from_utf8_lossy(&output.stderr).contains("127.0.0.1:50052"),
        "without a setting, the local default: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::write(
        user.config.path().join("config.toml"),
        format!("tracker_url = \"{}\"\n", world.endpoints.tracker),
    )
    .expect("config");
    let mut command = user.command(&["tasks", "list"]);
    tasks(&mut command);
    let output = command.output().await.expect("runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // A flag wins over the variable and the file.
    let stderr = user
        .fails(&["tasks", "list", "--tracker-url", "http://127.0.0.1:1"])
        .await;
    assert!(stderr.contains("http://127.0.0.1:1"), "{stderr}");
    // A mistyped key is refused, not silently ignored.
    std::fs::write(
        user.config.path().join("config.toml"),
        "traker_url = \"http://x\"\n",
    )
    .expect("config");
    let stderr = user.fails(&["tasks", "list"]).await;
    assert!(
        stderr.contains("config.toml") && stderr.contains("traker_url"),
        "{stderr}"
    );

    // Help shows neither empty defaults nor empty variables.
    for args in [
        &["--help"][..],
        &["billing", "me", "--help"],
        &["billing", "earnings", "--help"],
        &["login", "--help"],
    ] {
        let help = user.ok(args).await;
        assert!(
            !help.contains("[default: ]")
                && !help.contains("[default: \"\"]")
                && !help.contains("=]"),
            "{help}"
        );
    }
    assert!(user.ok(&["--help"]).await.contains("config.toml"));
}
