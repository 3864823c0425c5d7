//! Servers of a test's own: a RabbitMQ node and a Postgres cluster on free
//! ports with their own data directories, so a test that stops, restarts or
//! alarms them disturbs nothing else on the machine. Each is stopped and its
//! directory removed when dropped.
//!
//! The packaged servers run as their own users (`rabbitmq`, `postgres`); as
//! root, these are started the same way (`setpriv`), with the data directory
//! handed over to that user. Postgres refuses to run as root at all.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Duration,
};

use anyhow::{Context as _, bail};

/// A free TCP port on the loopback interface (free when asked).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map_or(0, |addr| addr.port())
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.trim_ascii() == b"0")
}

/// `program` run as `user` when this process is root, else as itself.
fn as_user(user: &str, program: &str) -> Command {
    if running_as_root() {
        let mut command = Command::new("setpriv");
        command.args([
            &format!("--reuid={user}"),
            &format!("--regid={user}"),
            "--init-groups",
            program,
        ]);
        command
    } else {
        Command::new(program)
    }
}

/// Hands `dir` over to `user` when this process is root.
fn hand_over(dir: &Path, user: &str) -> anyhow::Result<()> {
    if !running_as_root() {
        return Ok(());
    }
    let status = Command::new("chown")
        .args(["-R", &format!("{user}:{user}"), &text(dir)])
        .status()
        .context("running chown")?;
    if !status.success() {
        bail!("chown of {} to {user} failed", dir.display());
    }
    Ok(())
}

fn text(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// Runs `command`, failing with its output when it fails.
fn run(mut command: Command, what: &str) -> anyhow::Result<String> {
    let out = command
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("{what}: cannot run it"))?;
    if !out.status.success() {
        bail!(
            "{what} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A fresh directory under the system's temporary one.
fn fresh_dir(kind: &str) -> anyhow::Result<(String, PathBuf)> {
    let id = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
    let dir = std::env::temp_dir().join(format!("popug-{kind}-{id}"));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok((id, dir))
}

/// A RabbitMQ node of one test's own.
pub struct PrivateBroker {
    node: String,
    dir: PathBuf,
    port: u16,
}

impl PrivateBroker {
    /// Starts the node and waits until it accepts connections.
    pub async fn start() -> anyhow::Result<Self> {
        let (id, dir) = fresh_dir("rabbit")?;
        let node = format!("popug-test-{id}@localhost");
        let port = free_port();
        for sub in ["mnesia", "log"] {
            std::fs::create_dir_all(dir.join(sub))?;
        }
        std::fs::write(
            dir.join("rabbitmq.conf"),
            format!("listeners.tcp.local = 127.0.0.1:{port}\n"),
        )?;
        std::fs::write(dir.join("enabled_plugins"), "[].\n")?;
        hand_over(&dir, "rabbitmq")?;
        let mut server = as_user("rabbitmq", "/usr/lib/rabbitmq/bin/rabbitmq-server");
        if running_as_root() {
            // The packaged node's home, where its Erlang cookie (which
            // rabbitmqctl uses too) lives.
            server
                .env("HOME", "/var/lib/rabbitmq")
                .current_dir("/var/lib/rabbitmq");
        }
        server.arg("-detached").envs([
            ("RABBITMQ_NODENAME", node.clone()),
            ("RABBITMQ_NODE_PORT", port.to_string()),
            ("RABBITMQ_DIST_PORT", free_port().to_string()),
            ("RABBITMQ_CONFIG_FILE", text(&dir.join("rabbitmq.conf"))),
            (
                "RABBITMQ_ENABLED_PLUGINS_FILE",
                text(&dir.join("enabled_plugins")),
            ),
            ("RABBITMQ_MNESIA_BASE", text(&dir.join("mnesia"))),
            ("RABBITMQ_LOG_BASE", text(&dir.join("log"))),
            ("RABBITMQ_PID_FILE", text(&dir.join("pid"))),
        ]);
        run(server, "rabbitmq-server")?;
        let broker = Self { node, dir, port };
        // `await_startup` fails at once until the node has registered.
        for _ in 0..60 {
            if broker.ctl(&["-t", "5", "await_startup"]).is_ok() {
                return Ok(broker);
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        bail!("the private broker {} did not start", broker.node)
    }

    /// Its AMQP URL, as the default `guest` user.
    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    /// Its node name, for `rabbitmqctl -n`.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Runs `rabbitmqctl` against it; its standard output.
    pub fn ctl(&self, args: &[&str]) -> anyhow::Result<String> {
        // Debian's wrapper runs only for root (as the rabbitmq user, with
        // its cookie); anyone else calls the tool itself, with their own
        // cookie, which the node they started shares.
        let program = if running_as_root() {
            "rabbitmqctl"
        } else {
            "/usr/lib/rabbitmq/bin/rabbitmqctl"
        };
        let mut command = Command::new(program);
        command.args(["-q", "-n", &self.node]).args(args);
        run(command, &format!("rabbitmqctl {}", args.join(" ")))
    }

    /// Stops the broker application (the node stays, so do its queues and
    /// messages) until [`PrivateBroker::start_app`].
    pub fn stop_app(&self) -> anyhow::Result<()> {
        self.ctl(&["stop_app"]).map(drop)
    }

    /// Starts the application again and waits until it serves.
    pub fn start_app(&self) -> anyhow::Result<()> {
        self.ctl(&["start_app"])?;
        self.ctl(&["-t", "60", "await_startup"]).map(drop)
    }
}

impl Drop for PrivateBroker {
    fn drop(&mut self) {
        self.ctl(&["stop"]).ok();
        std::fs::remove_dir_all(&self.dir).ok();
    }
}

/// A Postgres cluster of one test's own, with trust authentication for
/// `postgres` on 127.0.0.1.
pub struct PrivatePostgres {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
}

impl PrivatePostgres {
    /// Creates the cluster (`initdb`) and starts it.
    pub async fn start() -> anyhow::Result<Self> {
        let bin = postgres_bin()?;
        let (_, dir) = fresh_dir("postgres")?;
        hand_over(&dir, "postgres")?;
        let cluster = Self {
            bin,
            dir,
            port: free_port(),
        };
        let mut initdb = as_user("postgres", &text(&cluster.bin.join("initdb")));
        initdb.args([
            "-D",
            &text(&cluster.data()),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        ]);
        run(initdb, "initdb")?;
        cluster.resume()?;
        Ok(cluster)
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn pg_ctl(&self, args: &[&str]) -> anyhow::Result<()> {
        let mut command = as_user("postgres", &text(&self.bin.join("pg_ctl")));
        command
            .args(["-D", &text(&self.data()), "-w", "-t", "60"])
            .args(args);
        run(command, &format!("pg_ctl {}", args.join(" "))).map(drop)
    }

    /// The server's URL (a database is appended by its user).
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}", self.port)
    }

    /// Starts the stopped server and waits until it accepts connections.
    pub fn resume(&self) -> anyhow::Result<()> {
        // Durability is kept across a clean stop; fsync is only about
        // surviving a crash of the machine, which no test simulates.
        let options = format!(
            "-c port={} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} \
             -c max_connections=300 -c fsync=off -c full_page_writes=off",
            self.port,
            text(&self.dir),
        );
        let log = text(&self.dir.join("postgres.log"));
        self.pg_ctl(&["-l", &log, "-o", &options, "start"])
    }

    /// Stops the server at once, rolling back open transactions and
    /// closing every connection (`pg_ctl stop -m fast`).
    pub fn stop(&self) -> anyhow::Result<()> {
        self.pg_ctl(&["-m", "fast", "stop"])
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        self.pg_ctl(&["-m", "immediate", "stop"]).ok();
        std::fs::remove_dir_all(&self.dir).ok();
    }
}

/// The newest installed Postgres' programs (Debian's layout).
fn postgres_bin() -> anyhow::Result<PathBuf> {
    let root = Path::new("/usr/lib/postgresql");
    let newest = std::fs::read_dir(root)
        .with_context(|| format!("reading {}", root.display()))?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version: u32 = entry.file_name().to_str()?.parse().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, bin)| bin.join("initdb").exists())
        .max_by_key(|(version, _)| *version)
        .map(|(_, bin)| bin);
    newest.with_context(|| format!("no Postgres with initdb under {}", root.display()))
}
