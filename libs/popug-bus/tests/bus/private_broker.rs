//! The relay against a broker that goes away and one that blocks it. Both
//! run on a private RabbitMQ node of the test's own (its own port, data
//! directory and node name), so stopping it or raising its memory alarm
//! disturbs nobody else on the machine.

use std::{path::PathBuf, process::Command};

use super::*;

/// A RabbitMQ node of one test's own, stopped and removed when dropped.
struct PrivateBroker {
    node: String,
    dir: PathBuf,
    port: u16,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.trim_ascii() == b"0")
}

impl PrivateBroker {
    /// Starts the node and waits until it accepts connections.
    async fn start() -> Self {
        let id = &uuid::Uuid::new_v4().simple().to_string()[..12];
        let node = format!("popug-test-{id}@localhost");
        let dir = std::env::temp_dir().join(format!("popug-test-rabbit-{id}"));
        let port = free_port();
        std::fs::create_dir_all(dir.join("mnesia")).expect("node directory");
        std::fs::create_dir_all(dir.join("log")).expect("node directory");
        std::fs::write(
            dir.join("rabbitmq.conf"),
            format!("listeners.tcp.local = 127.0.0.1:{port}\n"),
        )
        .expect("node config");
        std::fs::write(dir.join("enabled_plugins"), "[].\n").expect("node plugins");
        let env = [
            ("RABBITMQ_NODENAME", node.clone()),
            ("RABBITMQ_NODE_PORT", port.to_string()),
            ("RABBITMQ_DIST_PORT", free_port().to_string()),
            ("RABBITMQ_CONFIG_FILE", path(&dir.join("rabbitmq.conf"))),
            (
                "RABBITMQ_ENABLED_PLUGINS_FILE",
                path(&dir.join("enabled_plugins")),
            ),
            ("RABBITMQ_MNESIA_BASE", path(&dir.join("mnesia"))),
            ("RABBITMQ_LOG_BASE", path(&dir.join("log"))),
            ("RABBITMQ_PID_FILE", path(&dir.join("pid"))),
        ];
        // The packaged broker runs as its own user, with that user's cookie
        // (which rabbitmqctl uses too); as root, start it the same way.
        let mut server = if running_as_root() {
            let status = Command::new("chown")
                .args(["-R", "rabbitmq:rabbitmq", &path(&dir)])
                .status()
                .expect("chown runs");
            assert!(status.success(), "chown of the node directory failed");
            let mut command = Command::new("setpriv");
            command.args([
                "--reuid=rabbitmq",
                "--regid=rabbitmq",
                "--init-groups",
                "env",
                "HOME=/var/lib/rabbitmq",
                "/usr/lib/rabbitmq/bin/rabbitmq-server",
                "-detached",
            ]);
            command.current_dir("/var/lib/rabbitmq");
            command
        } else {
            let mut command = Command::new("rabbitmq-server");
            command.arg("-detached");
            command
        };
        let status = server.envs(env).status().expect("rabbitmq-server runs");
        assert!(status.success(), "rabbitmq-server did not start");
        let broker = Self { node, dir, port };
        // `await_startup` fails at once until the node has registered.
        for _ in 0..60 {
            if broker.try_ctl(&["-t", "5", "await_startup"]) {
                return broker;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        panic!("the private broker {} did not start", broker.node);
    }

    fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    fn try_ctl(&self, args: &[&str]) -> bool {
        Command::new("rabbitmqctl")
            .args(["-q", "-n", &self.node])
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    }

    fn ctl(&self, args: &[&str]) {
        assert!(self.try_ctl(args), "rabbitmqctl {args:?} failed");
    }
}

impl Drop for PrivateBroker {
    fn drop(&mut self) {
        self.try_ctl(&["stop"]);
        std::fs::remove_dir_all(&self.dir).ok();
    }
}

fn path(path: &std::path::Path) -> String {
    path.to_string_lossy().into_owned()
}

/// Waits up to `within` for `done`.
async fn eventually(within: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < deadline {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    done()
}

#[tokio::test]
async fn the_relay_reconnects_within_seconds_of_the_broker_returning() {
    let broker = PrivateBroker::start().await;
    let world = World::on_broker(&broker.url()).await;
    let probe = world.probe().await;
    // The production schedule: 1, 3, 5, 10, 30 s.
    let relay = Relay::new(
        world.pool.clone(),
        world.broker.clone(),
        "test",
        RelayConfig::default(),
    );
    let health = relay.health();
    let token = CancellationToken::new();
    let running = tokio::spawn(relay.run(token.clone()));
    world.enqueue(&[account("before")]).await;
    assert_eq!(
        world.take(&probe, 1, Duration::from_secs(20)).await.len(),
        1
    );

    broker.ctl(&["stop_app"]);
    world.enqueue(&[account("during")]).await;
    assert!(
        eventually(Duration::from_secs(10), || !health.snapshot().0).await,
        "the relay notices the outage"
    );
    // Past the 1, 3, 5 and 10 s pauses: the next one on the schedule would
    // end about 30 s after this.
    tokio::time::sleep(Duration::from_secs(20)).await;
    broker.ctl(&["start_app"]);
    let back = std::time::Instant::now();
    let arrived = world.take(&probe, 1, Duration::from_secs(40)).await;
    let reconnected_in = back.elapsed();
    token.cancel();
    running.await.expect("the relay stops");
    assert_eq!(arrived.len(), 1, "the event waiting in the outbox arrived");
    assert!(
        reconnected_in < Duration::from_secs(8),
        "the relay reconnected {reconnected_in:?} after the broker came back"
    );
}

#[tokio::test]
async fn a_blocked_relay_says_so_and_publishes_once_the_alarm_clears() {
    let broker = PrivateBroker::start().await;
    let world = World::on_broker(&broker.url()).await;
    let probe = world.probe().await;
    let relay = world.relay();
    let health = relay.health();
    let token = CancellationToken::new();
    let running = tokio::spawn(relay.run(token.clone()));
    world.enqueue(&[account("before")]).await;
    assert_eq!(
        world.take(&probe, 1, Duration::from_secs(20)).await.len(),
        1
    );

    // A memory high watermark of 0 raises the memory alarm at once.
    broker.ctl(&["set_vm_memory_high_watermark", "0"]);
    world.enqueue(&[account("during")]).await;
    assert!(
        eventually(Duration::from_secs(20), || health.blocked()).await,
        "the relay reports that the broker blocks it"
    );
    let (connected, last_error) = health.snapshot();
    assert!(connected, "a blocked relay is still connected");
    let last_error = last_error.expect("the reason");
    assert!(
        last_error.contains("not accepting events"),
        "the reason is given: {last_error}"
    );
    let backlog = outbox::backlog(&mut world.pool.get().await.expect("connection"))
        .await
        .expect("backlog");
    assert_eq!(backlog.pending, 1, "the event waits in the outbox");

    broker.ctl(&["set_vm_memory_high_watermark", "0.4"]);
    let arrived = world.take(&probe, 1, Duration::from_secs(30)).await;
    assert!(
        eventually(Duration::from_secs(10), || !health.blocked()).await,
        "the relay no longer reports a block"
    );
    token.cancel();
    running.await.expect("the relay stops");
    assert!(!arrived.is_empty(), "the waiting event arrived");
    assert_eq!(world.count("SELECT count(*) AS n FROM outbox").await, 0);
}
