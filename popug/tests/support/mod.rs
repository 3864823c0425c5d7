//! What the `popug` binary's black-box tests share: a whole mesh in this
//! process, with its relays and consumers running, and the binary pointed at
//! it from a config directory of its own (one person at a terminal), and what
//! several binaries do to a mesh: scrape `/metrics`, publish a non-event.

#![allow(
    dead_code,
    reason = "each test binary uses the part of the harness it needs"
)]

use std::process::Stdio;

use tokio::process::Command;

/// A running mesh and the `popug` binary pointed at it.
pub(crate) struct Cli {
    /// Its config directory (the session lives there).
    pub(crate) config: tempfile::TempDir,
    /// Where each service answers.
    pub(crate) endpoints: popug::client::Endpoints,
    /// The mesh's broker namespace.
    pub(crate) namespace: String,
    _stop: tokio_util::sync::DropGuard,
    /// The mesh's databases, dropped after it stopped.
    _databases: Vec<popug_testing::TestDatabase>,
}

impl Cli {
    /// Starts a mesh on test settings (fresh databases and namespace).
    pub(crate) async fn start() -> Self {
        let (env, databases) = popug_testing::mesh_env();
        let namespace = env.raw("POPUG_NAMESPACE").expect("a namespace").to_owned();
        let settings = popug::mesh::MeshSettings::load(&env).expect("settings");
        let mesh = popug::mesh::Mesh::start(settings)
            .await
            .expect("the mesh starts");
        let endpoints = mesh.endpoints();
        let stop = tokio_util::sync::CancellationToken::new();
        drop(mesh.spawn(&stop));
        Self {
            config: tempfile::tempdir().expect("config dir"),
            endpoints,
            namespace,
            _stop: stop.drop_guard(),
            _databases: databases,
        }
    }

    /// Runs `popug args...`; returns (success, stdout, stderr).
    pub(crate) async fn run(&self, args: &[&str]) -> (bool, String, String) {
        let output = Command::new(env!("CARGO_BIN_EXE_popug"))
            .args(args)
            .env("POPUG_CONFIG_DIR", self.config.path())
            .env("POPUG_AUTH_URL", &self.endpoints.auth)
            .env("POPUG_TRACKER_URL", &self.endpoints.tracker)
            .env("POPUG_BILLING_URL", &self.endpoints.billing)
            .env("POPUG_ANALYTICS_URL", &self.endpoints.analytics)
            .stdin(Stdio::null())
            .output()
            .await
            .expect("popug runs");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    /// Runs `popug args... --json`, which must succeed; returns its JSON.
    pub(crate) async fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = args.to_vec();
        all.push("--json");
        let (ok, stdout, stderr) = self.run(&all).await;
        assert!(ok, "popug {args:?} failed: {stderr}");
        serde_json::from_str(&stdout)
            .unwrap_or_else(|_| panic!("popug {args:?} printed no JSON: {stdout}"))
    }
}

/// Publishes bytes that are no event as the tracker's `TaskAssigned`, for a
/// test of what a dead letter does: billing and analytics each record one.
pub(crate) async fn publish_non_event(broker: &popug_bus::Broker) {
    let (connection, channel) = broker.confirm_channel().await.expect("broker");
    let confirm = channel
        .basic_publish(
            broker.topology().exchange().into(),
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
}

/// `GET /metrics` over plain HTTP/1.1, as Prometheus scrapes it (`addr` is
/// a service's metrics port).
pub(crate) async fn scrape(addr: std::net::SocketAddr) -> String {
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
