//! A new user's first hour, as the `popug` binary: passwords (changed, set by
//! an admin, reset on the database by a local operator), people's names
//! (task keys and logins wherever an id was wanted), and the commands that
//! show and reset the system (`status`, `events tail`, `reset`,
//! `completions`).

use std::{process::Stdio, time::Duration};

use popug_testing::ADMIN_PASSWORD;
use serde_json::Value;
use tokio::{io::AsyncBufReadExt as _, process::Command};

/// A whole mesh in this process, and the `popug` binary pointed at it with
/// the same settings (so commands that read the local settings, such as
/// `admin reset-password`, `events tail` and `reset`, find its databases,
/// broker namespace and endpoints).
struct World {
    env: Vec<(String, String)>,
    endpoints: popug::client::Endpoints,
    /// Stops the mesh when dropped or taken.
    running: std::sync::Mutex<Option<Running>>,
    /// The mesh's databases, dropped after it stopped.
    _databases: Vec<popug_testing::TestDatabase>,
}

struct Running {
    stop: tokio_util::sync::DropGuard,
    serving: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// One person at a terminal: their own config directory (session).
struct User<'a> {
    world: &'a World,
    config: tempfile::TempDir,
}

impl World {
    async fn start() -> Self {
        let (env, databases) = popug_testing::mesh_env();
        Self::start_with(env, databases).await
    }

    async fn start_with(
        env: popug_runtime::Env,
        databases: Vec<popug_testing::TestDatabase>,
    ) -> Self {
        let settings = popug::mesh::MeshSettings::load(&env).expect("settings");
        let mesh = popug::mesh::Mesh::start(settings)
            .await
            .expect("the mesh starts");
        let endpoints = mesh.endpoints();
        let stop = tokio_util::sync::CancellationToken::new();
        let serving = mesh.spawn(&stop);
        Self {
            env: env
                .vars()
                .map(|(name, value)| (name.to_owned(), value.to_owned()))
                .collect(),
            endpoints,
            running: std::sync::Mutex::new(Some(Running {
                stop: stop.drop_guard(),
                serving,
            })),
            _databases: databases,
        }
    }

    fn var(&self, name: &str) -> &str {
        self.env
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
            .unwrap_or_else(|| panic!("{name} is set"))
    }

    /// Stops the mesh and waits until it has.
    async fn stop(&self) {
        let running = self.running.lock().expect("not poisoned").take();
        if let Some(Running { stop, serving }) = running {
            drop(stop);
            serving.await.expect("joined").expect("stopped cleanly");
        }
    }

    fn user(&self) -> User<'_> {
        User {
            world: self,
            config: tempfile::tempdir().expect("config dir"),
        }
    }
}

impl User<'_> {
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_popug"));
        command
            .args(args)
            .envs(self.world.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("POPUG_CONFIG_DIR", self.config.path())
            .env("POPUG_AUTH_URL", &self.world.endpoints.auth)
            .env("POPUG_TRACKER_URL", &self.world.endpoints.tracker)
            .env("POPUG_BILLING_URL", &self.world.endpoints.billing)
            .env("POPUG_ANALYTICS_URL", &self.world.endpoints.analytics)
            .env("POPUG_WEB_ADDR", "127.0.0.1:1")
            .stdin(Stdio::null());
        command
    }

    /// Runs `popug args...`; returns (success, stdout, stderr).
    async fn run(&self, args: &[&str]) -> (bool, String, String) {
        let output = self.command(args).output().await.expect("popug runs");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    async fn ok(&self, args: &[&str]) -> String {
        let (ok, stdout, stderr) = self.run(args).await;
        assert!(ok, "popug {args:?} failed: {stderr}");
        stdout
    }

    async fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let stdout = self.ok(&all).await;
        serde_json::from_str(&stdout)
            .unwrap_or_else(|_| panic!("popug {args:?} printed no JSON: {stdout}"))
    }

    async fn fails(&self, args: &[&str]) -> String {
        let (ok, stdout, stderr) = self.run(args).await;
        assert!(!ok, "popug {args:?} must fail: {stdout}");
        stderr
    }

    async fn login(&self, login: &str, password: &str) {
        self.json(&["login", "--login", login, "--password", password])
            .await;
    }
}

/// Retries `popug args` until it succeeds (events reach other services).
async fn eventually(user: &User<'_>, args: &[&str]) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mut all = args.to_vec();
        all.push("--json");
        let (ok, stdout, stderr) = user.run(&all).await;
        if ok {
            return serde_json::from_str(&stdout).expect("JSON");
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "popug {args:?} never succeeded: {stderr}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn create_worker(admin: &User<'_>, login: &str) -> Value {
    admin
        .json(&[
            "accounts",
            "create",
            "--login",
            login,
            "--password",
            &format!("{login}-password"),
            "--name",
            login,
            "--email",
            &format!("{login}@popug.example"),
        ])
        .await
}

#[tokio::test]
async fn passwords_are_changed_set_by_an_admin_and_reset_by_the_operator() {
    let world = World::start().await;
    let admin = world.user();
    admin.login("admin", ADMIN_PASSWORD).await;
    create_worker(&admin, "kesha").await;

    // An admin sets another account's password, by its login.
    admin
        .json(&[
            "accounts",
            "set-password",
            "kesha",
            "--password",
            "set-by-admin",
        ])
        .await;
    let stderr = admin
        .fails(&["login", "--login", "kesha", "--password", "kesha-password"])
        .await;
    assert!(stderr.contains("Unauthenticated"), "{stderr}");
    let stderr = admin
        .fails(&[
            "accounts",
            "set-password",
            "admin",
            "--password",
            "whatever-1",
        ])
        .await;
    assert!(
        stderr.contains("FailedPrecondition") && stderr.contains("popug password"),
        "an admin changes its own with ChangePassword: {stderr}"
    );
    let stderr = admin
        .fails(&["accounts", "set-password", "kesha", "--password", "short"])
        .await;
    assert!(
        stderr.contains("InvalidArgument") && stderr.contains("`--password`"),
        "{stderr}"
    );
    let stderr = admin
        .fails(&[
            "accounts",
            "set-password",
            "nobody",
            "--password",
            "long-enough",
        ])
        .await;
    assert!(
        stderr.contains("no account has the login `nobody`"),
        "{stderr}"
    );

    // Kesha changes its own: the old one must be right; this session goes on.
    let kesha = world.user();
    kesha.login("kesha", "set-by-admin").await;
    let other_session = world.user();
    other_session.login("kesha", "set-by-admin").await;
    let stderr = kesha
        .fails(&[
            "password",
            "--old",
            "not-it-at-all",
            "--new",
            "kesha-chosen",
        ])
        .await;
    assert!(
        stderr.contains("InvalidArgument") && stderr.contains("`--old`"),
        "{stderr}"
    );
    kesha
        .json(&["password", "--old", "set-by-admin", "--new", "kesha-chosen"])
        .await;
    assert_eq!(kesha.json(&["whoami"]).await["login"], "kesha");
    kesha.login("kesha", "kesha-chosen").await;
    // The other session's refresh token was revoked.
    let mut session: Value = serde_json::from_str(
        &std::fs::read_to_string(other_session.config.path().join("session.json"))
            .expect("session"),
    )
    .expect("JSON");
    session["expires_at"] = 0.into();
    std::fs::write(
        other_session.config.path().join("session.json"),
        session.to_string(),
    )
    .expect("write");
    let stderr = other_session.fails(&["whoami"]).await;
    assert!(stderr.contains("popug login"), "{stderr}");

    // The operator lost the admin's password: reset on the database the
    // local settings name, saying so; no sign-in needed.
    let operator = world.user();
    let (ok, stdout, stderr) = operator
        .run(&["admin", "reset-password", "--password", "recovered-1"])
        .await;
    assert!(ok, "{stderr}");
    let database = world.var("POPUG_AUTH_DATABASE_URL");
    assert!(
        stderr.contains("directly in the auth database") && stderr.contains(database),
        "{stderr}"
    );
    assert!(stdout.contains("`admin`"), "{stdout}");
    operator.login("admin", "recovered-1").await;
    admin
        .fails(&["login", "--login", "admin", "--password", ADMIN_PASSWORD])
        .await;
    // Without --password, one is generated and shown once.
    let reset = operator
        .json(&["admin", "reset-password", "--login", "kesha"])
        .await;
    let generated = reset["password"].as_str().expect("a generated password");
    assert_eq!(generated.len(), 20);
    operator.login("kesha", generated).await;
    let stderr = operator
        .fails(&[
            "admin",
            "reset-password",
            "--login",
            "ghost",
            "--password",
            "long-enough",
        ])
        .await;
    assert!(stderr.contains("no account `ghost`"), "{stderr}");
    let missing = {
        let mut command =
            operator.command(&["admin", "reset-password", "--password", "long-enough"]);
        command.env(
            "POPUG_AUTH_DATABASE_URL",
            "postgres://postgres@127.0.0.1:5432/popug_test_never_created",
        );
        command.output().await.expect("runs")
    };
    assert!(!missing.status.success());
    let said = String::from_utf8_lossy(&missing.stderr);
    assert!(
        said.contains("there is no auth database `popug_test_never_created`"),
        "{said}"
    );
}

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
