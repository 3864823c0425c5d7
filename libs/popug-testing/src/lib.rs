//! What popug's black-box tests share, so each service's test binary holds
//! only what is its own: a fresh database URL per service per test, bearer
//! tokens, and deterministic stepping of relays and consumers (no sleeps for
//! correctness). It depends on no service: the running auth-svc the other
//! services' tests sign in with is auth-svc's own fixture,
//! `auth_svc::testing::TestAuth` (its `testing` feature).

mod database;
pub mod private;
mod probe;

pub use database::TestDatabase;
pub use probe::{Probe, Probed};

use std::{net::SocketAddr, time::Duration};

use popug_bus::{BatchReport, Consumer, Relay, Step};
use tokio_util::sync::CancellationToken;
use tonic::{Request, transport::Channel};

/// The first admin's password in every test.
pub const ADMIN_PASSWORD: &str = "admin-password";

/// The test Postgres server's maintenance database, for what a test does
/// to a service's database from outside it.
pub fn server_url() -> String {
    "postgres://postgres@127.0.0.1:5432/postgres".to_owned()
}

/// Seconds a test namespace's live queues outlive their last use. Short:
/// every quorum queue holds file handles in the broker, and a whole suite's
/// worth at once can exhaust a broker's limit (it then refuses connections).
/// Dead-letter queues never expire (nobody consumes them, so a TTL would
/// delete them under a running service); `.ci/run` deletes what earlier runs
/// left.
pub const QUEUE_TTL: &str = "60";

/// A fresh broker namespace (its queues expire after [`QUEUE_TTL`]).
pub fn namespace() -> String {
    format!("test-{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

/// Settings for a whole mesh in one test: a fresh database per service, a
/// fresh broker namespace, random ports, the test admin's password, a
/// private mail directory, and days closed only when the test says so; and
/// the databases, dropped when the test drops them.
pub fn mesh_env() -> (popug_runtime::Env, Vec<TestDatabase>) {
    let env = popug_runtime::Env::from_pairs([])
        .with("POPUG_NAMESPACE", namespace())
        .with("POPUG_QUEUE_TTL", QUEUE_TTL)
        .with("POPUG_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .with("POPUG_BILLING_AUTO_CLOSE", "false")
        .with(
            "POPUG_MAIL_DIR",
            std::env::temp_dir()
                .join(format!("popug-test-mail-{}", uuid::Uuid::new_v4().simple()))
                .to_string_lossy(),
        );
    let prefix = format!("popug_test_{}", uuid::Uuid::new_v4().simple());
    let (env, databases) = env
        .with_private_databases(&prefix)
        .expect("the default Postgres URL is valid");
    (
        env,
        databases.into_iter().map(TestDatabase::adopt).collect(),
    )
}

/// `message` with `authorization: Bearer <token>`.
pub fn with_token<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}")
            .parse()
            .expect("a token is header text"),
    );
    request
}

/// A gRPC channel to `addr`.
pub async fn channel(addr: SocketAddr) -> Channel {
    tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .connect()
        .await
        .expect("the service accepts connections")
}

/// Publishes everything in `relay`'s outbox; returns how many events.
pub async fn drain(relay: &mut Relay) -> usize {
    let mut published = 0;
    loop {
        match relay.publish_pending().await.expect("relay step") {
            Step::Published(n) => published += n,
            Step::Idle => return published,
            Step::Standby => panic!("no other relay runs in a test"),
        }
    }
}

/// Steps `consumer` until `deliveries` were settled; none may be dead-lettered.
pub async fn consume(consumer: &mut Consumer, deliveries: usize) -> BatchReport {
    let total = consume_any(consumer, deliveries).await;
    assert_eq!(total.dead_lettered, 0, "no event may be dead-lettered");
    total
}

/// Steps `consumer` until `deliveries` were settled, dead letters allowed.
pub async fn consume_any(consumer: &mut Consumer, deliveries: usize) -> BatchReport {
    let token = CancellationToken::new();
    let mut total = BatchReport::default();
    while total.settled() < deliveries {
        let report = tokio::time::timeout(Duration::from_secs(60), consumer.process_batch(&token))
            .await
            .expect("the events arrive")
            .expect("batch")
            .expect("not cancelled");
        total.applied += report.applied;
        total.duplicates += report.duplicates;
        total.retried += report.retried;
        total.dead_lettered += report.dead_lettered;
    }
    total
}

/// Day strings a hostile client sends to a date-taking method: the probes
/// of issue 13 (`-5000-01-01` answered INTERNAL), days outside 2000..=2999,
/// days not in the calendar, other forms, control characters, a long
/// string, then 48 strings drawn from a fixed seed (day-shaped digits and
/// arbitrary text). None is a day popug accepts.
pub fn hostile_days() -> Vec<String> {
    use rand::{Rng as _, SeedableRng as _};
    let mut days: Vec<String> = [
        "-5000-01-01",
        "+2026-11-22",
        "-0001-12-31",
        "0000-01-01",
        "1999-12-31",
        "3000-01-01",
        "9999-12-31",
        "2026-99-99",
        "2026-02-30",
        "2027-02-29",
        "2026-00-01",
        "2026-1-5",
        " 2026-11-22",
        "2026-11-22\n",
        "2026-11-22\0",
        "2026\u{1b}-11-22",
        "22.11.2026",
        "yesterday",
        "２０２６-１１-２２",
    ]
    .map(String::from)
    .into();
    days.push("2".repeat(100_000));
    let mut rng = rand::rngs::StdRng::seed_from_u64(13);
    for _ in 0..24 {
        // Day-shaped, but a year before 2000 or after 2999, or no such day.
        let (year, month, day) = match rng.gen_range(0..3) {
            0 => (
                rng.gen_range(0..2000),
                rng.gen_range(1..=12),
                rng.gen_range(1..=28),
            ),
            1 => (
                rng.gen_range(3000..=9999),
                rng.gen_range(1..=12),
                rng.gen_range(1..=28),
            ),
            _ => (
                rng.gen_range(2000..=2999),
                rng.gen_range(13..=99),
                rng.gen_range(32..=99),
            ),
        };
        days.push(format!("{year:04}-{month:02}-{day:02}"));
    }
    for _ in 0..24 {
        let length = rng.gen_range(0..40);
        days.push((0..length).map(|_| rng.r#gen::<char>()).collect());
    }
    days.retain(|day| !day.is_empty());
    days
}

/// The tracker's events, as a test publishes them in the tracker's place.
pub mod tracker_events {
    use popug_proto::pb::popug::events::tasks::{v1 as tasks_v1, v2 as tasks_v2};
    use uuid::Uuid;

    /// `TaskCreated` v2 of task `number` (`POPUG-<number>`, titled `Task <number>`).
    pub fn created(task: Uuid, number: usize) -> tasks_v2::TaskCreated {
        tasks_v2::TaskCreated {
            task_id: task.to_string(),
            key: format!("POPUG-{number}"),
            title: format!("Task {number}"),
            jira_id: String::new(),
            description: String::new(),
        }
    }

    /// `TaskAssigned`: at creation without `previous`, else by a shuffle.
    pub fn assigned(task: Uuid, assignee: Uuid, previous: Option<Uuid>) -> tasks_v1::TaskAssigned {
        tasks_v1::TaskAssigned {
            task_id: task.to_string(),
            assignee_id: assignee.to_string(),
            previous_assignee_id: previous.map(|p| p.to_string()).unwrap_or_default(),
            reason: if previous.is_some() {
                tasks_v1::AssignmentReason::Shuffled
            } else {
                tasks_v1::AssignmentReason::Created
            }
            .into(),
        }
    }

    /// `TaskCompleted`.
    pub fn completed(task: Uuid, assignee: Uuid) -> tasks_v1::TaskCompleted {
        tasks_v1::TaskCompleted {
            task_id: task.to_string(),
            assignee_id: assignee.to_string(),
        }
    }
}

/// The code of a call that must fail.
pub fn code<T: std::fmt::Debug>(result: Result<T, tonic::Status>) -> tonic::Code {
    result.expect_err("the call must fail").code()
}

/// Asserts that a call was refused as `INVALID_ARGUMENT` naming `field` (in
/// backticks, as every service names a field); `case` tells which input.
pub fn assert_invalid<T: std::fmt::Debug>(
    result: Result<T, tonic::Status>,
    field: &str,
    case: &str,
) {
    let status = result.expect_err(case);
    assert_eq!(
        status.code(),
        tonic::Code::InvalidArgument,
        "{case}: {status:?}"
    );
    assert!(
        status.message().contains(&format!("`{field}`")),
        "{case}: {}",
        status.message()
    );
}
