//! The `popug` binary, run as a user would, against the real services.

use std::{process::Stdio, time::Duration};

use tokio::{io::AsyncBufReadExt as _, process::Command};

use popug_testing::ADMIN_PASSWORD;

/// A whole mesh's settings, for `popug up` as a child process.
/// The databases are dropped with the returned guards.
fn test_env() -> (Vec<(String, String)>, Vec<popug_testing::TestDatabase>) {
    let (env, databases) = popug_testing::mesh_env();
    let vars = env
        .vars()
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect();
    (vars, databases)
}

mod support;

use support::Cli;

#[tokio::test]
async fn an_admin_manages_accounts_from_the_command_line() {
    let cli = Cli::start().await;
    let (ok, _, stderr) = cli.run(&["whoami"]).await;
    assert!(!ok && stderr.contains("popug login"), "{stderr}");

    let me = cli
        .json(&["login", "--login", "admin", "--password", ADMIN_PASSWORD])
        .await;
    assert_eq!(me["login"], "admin");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(cli.config.path().join("session.json"))
            .expect("session")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the session is private");
    }
    assert_eq!(cli.json(&["whoami"]).await["role"], "admin");

    let kesha = cli
        .json(&[
            "accounts",
            "create",
            "--login",
            "kesha",
            "--password",
            "kesha-password",
            "--name",
            "Kesha",
            "--email",
            "kesha@popug.inc",
        ])
        .await;
    let id = kesha["account_id"].as_str().expect("id").to_owned();
    assert_eq!(kesha["role"], "worker");
    let listed = cli.json(&["accounts", "list"]).await;
    let logins: Vec<&str> = listed
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|a| a["login"].as_str())
        .collect();
    assert_eq!(logins, ["admin", "kesha"]);
    assert_eq!(
        cli.json(&["accounts", "update", &id, "--name", "Kesha II"])
            .await["name"],
        "Kesha II"
    );
    assert_eq!(
        cli.json(&["accounts", "role", &id, "manager"]).await["role"],
        "manager"
    );
    assert_eq!(
        cli.json(&["accounts", "deactivate", &id]).await["active"],
        false
    );

    let (ok, table, _) = cli.run(&["accounts", "list"]).await;
    assert!(ok);
    assert!(table.starts_with("ACCOUNT_ID"), "{table}");
    assert!(
        table.contains("kesha") && table.contains("manager"),
        "{table}"
    );

    let (ok, _, stderr) = cli.run(&["accounts", "role", &id, "boss"]).await;
    assert!(!ok && stderr.contains("`boss` is not a role"), "{stderr}");
    let (ok, _, stderr) = cli
        .run(&[
            "accounts",
            "create",
            "--login",
            "x",
            "--password",
            "long-enough",
            "--name",
            "X",
            "--email",
            "x@popug.inc",
        ])
        .await;
    assert!(
        !ok && stderr.contains("InvalidArgument") && stderr.contains("`--login`"),
        "{stderr}"
    );

    // Tasks: a worker appears in the tracker once its AccountCreated arrives.
    let worker = cli
        .json(&[
            "accounts",
            "create",
            "--login",
            "worker",
            "--password",
            "worker-password",
            "--name",
            "Worker",
            "--email",
            "worker@popug.inc",
        ])
        .await;
    let worker_id = worker["account_id"].as_str().expect("id").to_owned();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let task = loop {
        let (ok, stdout, stderr) = cli
            .run(&[
                "tasks",
                "create",
                "--title",
                "Feed the chicks",
                "--jira-id",
                "UBERPOP-7",
                "--json",
            ])
            .await;
        if ok {
            break serde_json::from_str::<serde_json::Value>(&stdout).expect("json");
        }
        assert!(stderr.contains("no active worker"), "{stderr}");
        assert!(
            tokio::time::Instant::now() < deadline,
            "the worker never reached the tracker"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        (task["key"].as_str(), task["assignee_id"].as_str()),
        (Some("POPUG-1"), Some(worker_id.as_str()))
    );
    let task_id = task["task_id"].as_str().expect("id").to_owned();
    let (ok, _, stderr) = cli
        .run(&["tasks", "create", "--title", "[UBERPOP-8] old habits"])
        .await;
    assert!(!ok && stderr.contains("`--title`"), "{stderr}");
    assert_eq!(
        cli.json(&["tasks", "list"]).await.as_array().map(Vec::len),
        Some(1)
    );
    assert_eq!(
        cli.json(&["tasks", "get", &task_id]).await["title"],
        "Feed the chicks"
    );
    assert_eq!(cli.json(&["tasks", "shuffle"]).await["reassigned"], 1);
    let (ok, _, stderr) = cli.run(&["tasks", "complete", &task_id]).await;
    assert!(
        !ok && stderr.contains("PermissionDenied"),
        "only the assignee completes: {stderr}"
    );
    assert_eq!(
        cli.json(&["tasks", "mine"]).await.as_array().map(Vec::len),
        Some(0)
    );

    let outbox = cli.json(&["ops", "outbox", "--service", "auth"]).await;
    assert!(outbox["pending"].as_u64().is_some(), "{outbox}");

    cli.json(&[
        "login",
        "--login",
        "worker",
        "--password",
        "worker-password",
    ])
    .await;
    let mine = cli.json(&["tasks", "mine", "--status", "open"]).await;
    assert_eq!(mine.as_array().map(Vec::len), Some(1));
    assert_eq!(
        cli.json(&["tasks", "complete", &task_id]).await["status"],
        "done"
    );
    let (ok, _, stderr) = cli.run(&["tasks", "complete", &task_id]).await;
    assert!(
        !ok && stderr.contains("FailedPrecondition") && stderr.contains("already done"),
        "{stderr}"
    );
    let (ok, _, stderr) = cli.run(&["tasks", "shuffle"]).await;
    assert!(!ok && stderr.contains("PermissionDenied"), "{stderr}");

    // Billing charged the worker at assignment and at the shuffle, and paid
    // the reward at completion, once the events flowed through the bus.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let me = loop {
        let me = cli.json(&["billing", "me"]).await;
        if me["entries"].as_array().map(Vec::len) == Some(3) {
            break me;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "billing never saw the task's events: {me}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let kinds: Vec<&str> = me["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert_eq!(
        kinds,
        ["assignment_fee", "assignment_fee", "completion_reward"]
    );
    let sum: i64 = me["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|e| e["amount_cents"].as_i64())
        .sum();
    assert_eq!(me["balance_cents"].as_i64(), Some(sum));
    let (ok, _, stderr) = cli.run(&["billing", "earnings"]).await;
    assert!(
        !ok && stderr.contains("PermissionDenied"),
        "workers do not see earnings: {stderr}"
    );

    cli.json(&["login", "--login", "admin", "--password", ADMIN_PASSWORD])
        .await;
    let account = cli.json(&["billing", "account", &worker_id]).await;
    assert_eq!(account["balance_cents"], me["balance_cents"]);
    // The tracker's history and billing's ledger tell the same three facts.
    let history = cli.json(&["tasks", "history"]).await;
    let facts: Vec<(&str, &str)> = history
        .as_array()
        .expect("history")
        .iter()
        .filter_map(|fact| Some((fact["kind"].as_str()?, fact["task_id"].as_str()?)))
        .collect();
    assert_eq!(
        facts,
        [
            ("assigned", task_id.as_str()),
            ("assigned", task_id.as_str()),
            ("completed", task_id.as_str())
        ]
    );
    let entries = cli.json(&["billing", "entries"]).await;
    let mut sources: Vec<&str> = entries
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|entry| entry["source_event_id"].as_str())
        .collect();
    let mut events: Vec<&str> = history
        .as_array()
        .expect("history")
        .iter()
        .filter_map(|fact| fact["event_id"].as_str())
        .collect();
    sources.sort_unstable();
    events.sort_unstable();
    assert_eq!(sources, events, "one ledger entry per tracker fact");
    assert_eq!(
        cli.json(&["billing", "check"]).await,
        serde_json::json!({ "clean": true, "violations": [] })
    );
    let earnings = cli.json(&["billing", "earnings"]).await;
    assert_eq!(earnings.as_array().map(Vec::len), Some(1));
    // The worker's statement ends at its balance, line by line; the
    // company's income statement nets to the same earnings.
    let statement = cli
        .json(&["billing", "statement", "--account", &worker_id])
        .await;
    assert_eq!(statement["closing_balance_cents"], me["balance_cents"]);
    assert_eq!(statement["lines"].as_array().map(Vec::len), Some(3));
    // The shuffle kept the task with the only worker, who paid its fee
    // twice: each fee line says why.
    let mut described: Vec<&str> = statement["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .filter_map(|line| line["description"].as_str())
        .collect();
    described.sort_unstable();
    assert_eq!(
        described,
        [
            "fee for POPUG-1 Feed the chicks (assigned at creation)",
            "fee for POPUG-1 Feed the chicks (reassigned by a shuffle to the same popug)",
            "reward for POPUG-1 Feed the chicks",
        ]
    );
    let (ok, table, stderr) = cli
        .run(&["billing", "statement", "--account", &worker_id])
        .await;
    assert!(
        ok && table.contains("(assigned at creation)")
            && table.contains("(reassigned by a shuffle to the same popug)"),
        "{table}{stderr}"
    );
    let (ok, csv, stderr) = cli
        .run(&["billing", "statement", "--account", &worker_id, "--csv"])
        .await;
    assert!(ok && csv.lines().count() == 4, "{csv}{stderr}");
    let income = cli.json(&["billing", "income"]).await;
    let total = income
        .as_array()
        .and_then(|rows| rows.last())
        .expect("a total row");
    assert_eq!(total["date"], "total");
    assert_eq!(total["net_cents"], earnings[0]["earnings_cents"]);
    // Analytics saw the same money, from events only.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let dashboard = cli.json(&["analytics", "dashboard"]).await;
        if dashboard["management_earnings_cents"] == earnings[0]["earnings_cents"] {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "analytics never caught up: {dashboard} vs {earnings}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let top = cli
        .json(&["analytics", "top-task", "--period", "week"])
        .await;
    assert_eq!(top[0]["key"], "POPUG-1", "{top}");
    assert_eq!(
        cli.json(&["analytics", "daily"])
            .await
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    let closed = cli.json(&["billing", "close-day"]).await;
    assert_eq!(closed["already_closed"], false);
    assert_eq!(
        cli.json(&["billing", "close-day"]).await["already_closed"],
        true
    );

    let (ok, _, _) = cli.run(&["logout"]).await;
    assert!(ok);
    let (ok, _, stderr) = cli.run(&["whoami"]).await;
    assert!(!ok && stderr.contains("not signed in"), "{stderr}");
    let (ok, _, stderr) = cli
        .run(&["login", "--login", "admin", "--password", "wrong-password"])
        .await;
    assert!(!ok && stderr.contains("Unauthenticated"), "{stderr}");
}

#[tokio::test]
async fn popug_up_serves_until_sigterm() {
    let (env, _databases) = test_env();
    let mut child = Command::new(env!("CARGO_BIN_EXE_popug"))
        .arg("up")
        .envs(env)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("popug up starts");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
    let addr = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.expect("read") {
            if let Some(url) = line.trim().strip_prefix("auth-svc") {
                let auth = url.trim().trim_start_matches("http://").to_owned();
                let tracker_line = lines
                    .next_line()
                    .await
                    .expect("read")
                    .expect("tracker line");
                assert!(
                    tracker_line
                        .trim()
                        .starts_with("tracker-svc   http://127.0.0.1:"),
                    "{tracker_line}"
                );
                return auth;
            }
        }
        panic!("popug up exited without printing its endpoints");
    })
    .await
    .expect("popug up prints its endpoints");

    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    let login =
        popug_proto::pb::popug::auth::v1::auth_service_client::AuthServiceClient::new(channel)
            .login(popug_proto::pb::popug::auth::v1::LoginRequest {
                login: "admin".into(),
                password: ADMIN_PASSWORD.into(),
            })
            .await
            .expect("the first admin signs in");
    assert!(!login.into_inner().access_token.is_empty());

    let pid = child.id().expect("running");
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let exit = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("stops in time")
        .expect("exit");
    assert!(exit.success(), "popug up stops cleanly on SIGTERM: {exit}");
}

#[tokio::test]
async fn popug_up_names_an_unreachable_postgres() {
    let (env, _databases) = test_env();
    let output = Command::new(env!("CARGO_BIN_EXE_popug"))
        .arg("up")
        .envs(env.clone())
        .env("POPUG_POSTGRES_URL", "postgres://postgres@127.0.0.1:1")
        .env(
            "POPUG_AUTH_DATABASE_URL",
            "postgres://postgres@127.0.0.1:1/popug_auth",
        )
        .output()
        .await
        .expect("popug up runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("Postgres is unreachable at postgres://postgres@127.0.0.1:1/postgres"),
        "{stderr}"
    );
    assert!(stderr.contains("pg_ctlcluster"), "{stderr}");

    let output = Command::new(env!("CARGO_BIN_EXE_popug"))
        .arg("up")
        .envs(env.clone())
        .env("POPUG_AMQP_URL", "amqp://guest:guest@127.0.0.1:1/%2f")
        .output()
        .await
        .expect("popug up runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("RabbitMQ is unreachable at amqp://guest:***@127.0.0.1:1/%2f"),
        "{stderr}"
    );

    let output = Command::new(env!("CARGO_BIN_EXE_popug"))
        .arg("up")
        .envs(env.clone())
        .env("POPUG_AUTH_ADDR", "not-an-address")
        .output()
        .await
        .expect("popug up runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("POPUG_AUTH_ADDR"), "{stderr}");
}
