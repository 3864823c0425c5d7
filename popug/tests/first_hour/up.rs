//! `popug up` itself: a restart that ignores a new admin password, broker
//! credentials refused told from a broker that is down, a dead letter that
//! outlives the queue TTL.

use std::{process::Stdio, time::Duration};

use popug_testing::ADMIN_PASSWORD;
use tokio::{io::AsyncBufReadExt as _, process::Command};

use crate::helpers::World;

#[tokio::test]
async fn a_restarted_popug_up_warns_that_a_new_admin_password_is_ignored_and_logs_plain_text() {
    let (env, _databases) = popug_testing::mesh_env();
    let vars: Vec<(String, String)> = env
        .vars()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    // Runs `popug up` until it prints its endpoints, then stops it; returns
    // what it printed (logs go to stdout, not a terminal here).
    let up = |password: &'static str| {
        let vars = vars.clone();
        async move {
            let mut child = Command::new(env!("CARGO_BIN_EXE_popug"))
                .arg("up")
                .envs(vars)
                .env("POPUG_ADMIN_PASSWORD", password)
                .env_remove("NO_COLOR")
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .expect("popug up starts");
            let mut lines = tokio::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
            let mut printed = String::new();
            tokio::time::timeout(Duration::from_secs(60), async {
                while let Some(line) = lines.next_line().await.expect("read") {
                    printed.push_str(&line);
                    printed.push('\n');
                    if line.trim().starts_with("analytics-svc") {
                        return;
                    }
                }
                panic!("popug up exited early: {printed}");
            })
            .await
            .expect("popug up prints its endpoints");
            let pid = child.id().expect("running").to_string();
            std::process::Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .expect("kill");
            child.wait().await.expect("stops");
            printed
        }
    };
    let first = up("first-password").await;
    assert!(!first.contains("is ignored"), "{first}");
    assert!(
        !first.contains('\u{1b}'),
        "logs to a pipe carry no ANSI colours: {first}"
    );
    let same = up("first-password").await;
    assert!(!same.contains("is ignored"), "{same}");
    let second = up("second-password").await;
    assert!(
        second.contains("POPUG_ADMIN_PASSWORD is set, but the admin `admin` already exists")
            && second.contains("popug admin reset-password"),
        "{second}"
    );
}

#[tokio::test]
async fn refused_broker_credentials_are_told_from_a_broker_that_is_down() {
    let (env, _databases) = popug_testing::mesh_env();
    let output = Command::new(env!("CARGO_BIN_EXE_popug"))
        .arg("up")
        .envs(env.vars())
        .env(
            "POPUG_AMQP_URL",
            "amqp://guest:not-the-password@127.0.0.1:5672/%2f",
        )
        .output()
        .await
        .expect("popug up runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("refused the user or password of POPUG_AMQP_URL")
            && !stderr.contains("unreachable"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_dead_letter_outlives_the_queue_ttl_while_its_service_runs() {
    // A queue TTL of 2 s: a dead-letter queue whose lease were not renewed
    // would expire with its message (and could come back empty).
    let (env, databases) = popug_testing::mesh_env();
    let world = World::start_with(env.with("POPUG_QUEUE_TTL", "2"), databases).await;
    let admin = world.user();
    admin.login("admin", ADMIN_PASSWORD).await;
    let namespace = world.var("POPUG_NAMESPACE");
    let connection = lapin::Connection::connect(
        "amqp://guest:guest@127.0.0.1:5672/%2f",
        lapin::ConnectionProperties::default(),
    )
    .await
    .expect("broker");
    let channel = connection.create_channel().await.expect("channel");
    channel
        .basic_publish(
            format!("{namespace}.popug.events").as_str().into(),
            "task.assigned.v1".into(),
            lapin::options::BasicPublishOptions::default(),
            b"\xff not an event",
            lapin::BasicProperties::default().with_message_id("garbage".into()),
        )
        .await
        .expect("published");
    connection.close(200, "done".into()).await.ok();
    let depth = || async {
        admin
            .json(&["ops", "dead-letters", "--service", "billing"])
            .await["dead_letter_queue_depth"]
            .as_u64()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while depth().await != Some(1) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "billing never dead-lettered the message"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Six TTLs later, the dead letter is still in its queue.
    tokio::time::sleep(Duration::from_secs(12)).await;
    assert_eq!(depth().await, Some(1));
}
