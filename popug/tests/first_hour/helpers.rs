//! The harness: a whole mesh in this process and the `popug` binary pointed
//! at it, one person at a terminal each.

use std::{process::Stdio, time::Duration};

use serde_json::Value;
use tokio::process::Command;

/// A whole mesh in this process, and the `popug` binary pointed at it with
/// the same settings (so commands that read the local settings, such as
/// `admin reset-password`, `events tail` and `reset`, find its databases,
/// broker namespace and endpoints).
pub(crate) struct World {
    pub(crate) env: Vec<(String, String)>,
    pub(crate) endpoints: popug::client::Endpoints,
    /// Stops the mesh when dropped or taken.
    pub(crate) running: std::sync::Mutex<Option<Running>>,
    /// The mesh's databases, dropped after it stopped.
    pub(crate) _databases: Vec<popug_testing::TestDatabase>,
}

pub(crate) struct Running {
    pub(crate) stop: tokio_util::sync::DropGuard,
    pub(crate) serving: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// One person at a terminal: their own config directory (session).
pub(crate) struct User<'a> {
    pub(crate) world: &'a World,
    pub(crate) config: tempfile::TempDir,
}

impl World {
    pub(crate) async fn start() -> Self {
        let (env, databases) = popug_testing::mesh_env();
        Self::start_with(env, databases).await
    }

    pub(crate) async fn start_with(
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

    pub(crate) fn var(&self, name: &str) -> &str {
        self.env
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
            .unwrap_or_else(|| panic!("{name} is set"))
    }

    /// Stops the mesh and waits until it has.
    pub(crate) async fn stop(&self) {
        let running = self.running.lock().expect("not poisoned").take();
        if let Some(Running { stop, serving }) = running {
            drop(stop);
            serving.await.expect("joined").expect("stopped cleanly");
        }
    }

    pub(crate) fn user(&self) -> User<'_> {
        User {
            world: self,
            config: tempfile::tempdir().expect("config dir"),
        }
    }
}

impl User<'_> {
    pub(crate) fn command(&self, args: &[&str]) -> Command {
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
    pub(crate) async fn run(&self, args: &[&str]) -> (bool, String, String) {
        let output = self.command(args).output().await.expect("popug runs");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    pub(crate) async fn ok(&self, args: &[&str]) -> String {
        let (ok, stdout, stderr) = self.run(args).await;
        assert!(ok, "popug {args:?} failed: {stderr}");
        stdout
    }

    pub(crate) async fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let stdout = self.ok(&all).await;
        serde_json::from_str(&stdout)
            .unwrap_or_else(|_| panic!("popug {args:?} printed no JSON: {stdout}"))
    }

    pub(crate) async fn fails(&self, args: &[&str]) -> String {
        let (ok, stdout, stderr) = self.run(args).await;
        assert!(!ok, "popug {args:?} must fail: {stdout}");
        stderr
    }

    pub(crate) async fn login(&self, login: &str, password: &str) {
        self.json(&["login", "--login", login, "--password", password])
            .await;
    }
}

/// Retries `popug args` until it succeeds (events reach other services).
pub(crate) async fn eventually(user: &User<'_>, args: &[&str]) -> Value {
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

pub(crate) async fn create_worker(admin: &User<'_>, login: &str) -> Value {
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
