//! `popug simulate` ends with a clean audit, even when it outlives its
//! queues' TTL.

use std::time::Duration;

use serde_json::Value;

/// Runs `popug simulate ... --json` as a user would.
async fn simulate(seed: &str) -> Value {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_popug"))
        .args(["simulate", "--popugs", "6", "--tasks", "10", "--days", "2"])
        .args(["--seed", seed, "--json"])
        .output()
        .await
        .expect("popug runs");
    assert!(
        output.status.success(),
        "popug simulate failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("JSON")
}

#[tokio::test]
async fn a_small_simulation_ends_with_a_clean_audit_twice() {
    let first = simulate("7").await;
    assert_eq!(first["audit"]["clean"], true, "{first}");
    let days = first["days"].as_array().expect("days");
    assert_eq!(days.len(), 2);
    for day in days {
        assert_eq!(day["created"], 10, "{day}");
    }
    // The same seed plays the same days; the books are clean again.
    let second = simulate("7").await;
    assert_eq!(second["audit"]["clean"], true, "{second}");
    let dates = |run: &Value| -> Vec<(Value, Value)> {
        run["days"]
            .as_array()
            .expect("days")
            .iter()
            .map(|day| (day["date"].clone(), day["created"].clone()))
            .collect()
    };
    assert_eq!(dates(&first), dates(&second));
}

#[tokio::test]
async fn a_simulation_longer_than_its_queue_ttl_ends_with_a_clean_audit() {
    // Nobody consumes a dead-letter queue; while dead-letter queues had the
    // namespace's TTL, the audit of any simulation longer than it read one
    // that had expired under the running services.
    let ttl = Duration::from_secs(2);
    let started = tokio::time::Instant::now();
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_popug"))
        .args(["simulate", "--popugs", "8", "--tasks", "40", "--days", "3"])
        .args(["--seed", "11", "--json"])
        .env("POPUG_QUEUE_TTL", ttl.as_secs().to_string())
        .output()
        .await
        .expect("popug runs");
    let elapsed = started.elapsed();
    assert!(
        output.status.success(),
        "popug simulate failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(report["audit"]["clean"], true, "{report}");
    // Several times the TTL (about 10 s on an idle machine, more when
    // busy): a queue that could expire would have.
    assert!(
        elapsed > ttl * 3,
        "the simulation took {elapsed:?}: too short to outlive a TTL of {ttl:?}"
    );
}
