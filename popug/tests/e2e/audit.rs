//! `popug audit` tells a missing dead-letter queue from a broker that is
//! down, and names a dead letter.

use std::time::Duration;

use popug_testing::ADMIN_PASSWORD;

use crate::{helpers::World, support::scrape};

#[tokio::test]
async fn a_missing_dead_letter_queue_is_told_from_a_broker_that_is_down() {
    // A queue deleted under a running mesh is declared again by the next
    // producer or consumer to connect, so the check is made on a consumer
    // whose queues nobody declares: the broker is up, the queue is missing.
    let world = Box::pin(World::start()).await;
    let missing = popug_bus::dead_letters::queue_depth(&world.broker, "nobody")
        .await
        .expect_err("no such queue");
    assert!(
        popug_bus::dead_letters::is_missing_queue(&missing),
        "{missing:?}"
    );
    let down = popug_bus::Broker::new(
        "amqp://guest:guest@127.0.0.1:1/%2f".parse().expect("url"),
        world.broker.topology().clone(),
        "e2e",
    );
    let unreachable = popug_bus::dead_letters::queue_depth(&down, "billing")
        .await
        .expect_err("nothing listens on port 1");
    assert!(!popug_bus::dead_letters::is_missing_queue(&unreachable));
    // The live queues' dead-letter queue is there and answers.
    world
        .channels
        .ops(popug_runtime::Service::Billing, &world.admin)
        .list_dead_letters(popug_proto::pb::popug::ops::v1::ListDeadLettersRequest::default())
        .await
        .expect("billing's dead-letter queue exists");
}

#[tokio::test]
async fn popug_audit_names_a_dead_letter_and_exits_non_zero() {
    let world = Box::pin(World::start()).await;
    let config = tempfile::tempdir().expect("config dir");
    let popug = |args: &[&str]| {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_popug"));
        command
            .args(args)
            .env("POPUG_CONFIG_DIR", config.path())
            .env("POPUG_AUTH_URL", &world.endpoints.auth)
            .env("POPUG_TRACKER_URL", &world.endpoints.tracker)
            .env("POPUG_BILLING_URL", &world.endpoints.billing)
            .env("POPUG_ANALYTICS_URL", &world.endpoints.analytics);
        async move { command.output().await.expect("popug runs") }
    };
    let login = popug(&["login", "--login", "admin", "--password", ADMIN_PASSWORD]).await;
    assert!(login.status.success());
    let clean = popug(&["audit", "--wait", "10"]).await;
    assert!(
        clean.status.success(),
        "{}",
        String::from_utf8_lossy(&clean.stdout)
    );
    assert!(String::from_utf8_lossy(&clean.stdout).starts_with("audit: clean"));

    // Bytes that are no event reach billing and analytics: each records a
    // dead letter, which the audit must not let pass.
    crate::support::publish_non_event(&world.broker).await;
    let dirty = popug(&["audit", "--wait", "3"]).await;
    let report = String::from_utf8_lossy(&dirty.stdout);
    assert!(!dirty.status.success(), "{report}");
    assert!(
        report.contains("billing has 1 unresolved dead letter"),
        "{report}"
    );
    assert!(
        report.contains("analytics has 1 unresolved dead letter"),
        "{report}"
    );
    assert!(String::from_utf8_lossy(&dirty.stderr).contains("the books do not agree"));

    // Metrics tell the same: billing's unresolved dead letters gauge is 1.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let billing = scrape(world.metrics[2]).await;
        if billing.lines().any(|line| {
            line.starts_with("popug_dead_letters_unresolved{")
                && line.contains(r#"service="billing""#)
                && line.ends_with(" 1")
        }) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{billing}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
