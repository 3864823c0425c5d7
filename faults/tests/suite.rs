//! The fault-injection suite, short run: every fault once, against the
//! service binaries of this build. Its own Postgres and RabbitMQ take the
//! faults, so it disturbs no other test; it runs alone all the same (its
//! convergence times are its figures).

use std::process::Command;

#[test]
fn every_fault_heals_by_itself_with_nothing_lost_duplicated_or_unexpected() {
    // The services' binaries, as `cargo nextest run --workspace` builds
    // them (the same build: nothing to do then; run alone, it builds them).
    let built = Command::new(env!("CARGO"))
        .args(["test", "--no-run", "--workspace", "--locked", "--quiet"])
        .status()
        .expect("cargo runs");
    assert!(built.success(), "the services build");
    let out = Command::new(env!("CARGO_BIN_EXE_popug-faults"))
        .output()
        .expect("the suite runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    #[allow(clippy::print_stdout)] // the table is the run's figures (nextest shows them)
    {
        println!("{stdout}");
    }
    assert!(
        out.status.success(),
        "the fault suite failed:\n{stdout}\n{stderr}"
    );
    for fault in [
        "kill-auth",
        "kill-tracker",
        "kill-billing",
        "kill-analytics",
        "broker-connections-closed",
        "broker-stopped",
        "postgres-restarted",
        "every-message-twice",
        "poison-messages",
        "pause-billing",
        "billing-replica-killed",
        "midnight-without-postgres",
        "midnight-without-broker",
    ] {
        assert!(
            stdout.contains(fault),
            "the table has a row for {fault}:\n{stdout}"
        );
    }
}
