//! A whole popug of the suite's own: a private Postgres cluster and RabbitMQ
//! node, and each service as a separate process of its own binary, with
//! logs in the run's directory. Processes can be killed, paused, restarted
//! and doubled (a second billing replica), as an operator's mishaps would.

use std::{
    collections::BTreeMap,
    fs::File,
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use anyhow::{Context as _, bail};
use popug::client::{Bearer, Channels, Endpoints, sign_in};
use popug_runtime::Service;
use popug_testing::private::{PrivateBroker, PrivatePostgres, free_port};
use tokio::process::{Child, Command};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

/// The first admin's password in every run.
const ADMIN_PASSWORD: &str = "faults-admin-password";

/// One service process (or a spare replica), restartable with the same
/// settings.
pub struct Process {
    /// What it runs.
    pub service: Service,
    /// Its name in the table and its log file's, e.g. `billing-2`.
    pub name: String,
    binary: PathBuf,
    env: BTreeMap<String, String>,
    addr: String,
    log: PathBuf,
    child: Option<Child>,
}

impl Process {
    /// Starts it and waits until its health check answers SERVING.
    pub async fn start(&mut self) -> anyhow::Result<()> {
        let log = File::options()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("opening {}", self.log.display()))?;
        let child = Command::new(&self.binary)
            .env_clear()
            .envs(std::env::vars().filter(|(name, _)| !name.starts_with("POPUG_")))
            .envs(&self.env)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", self.binary.display()))?;
        self.child = Some(child);
        self.await_serving(Duration::from_secs(60)).await
    }

    /// Waits until its health check answers SERVING (a paused or restarted
    /// process takes a moment).
    pub async fn await_serving(&mut self, within: Duration) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|child| child.try_wait().ok().flatten())
            {
                bail!(
                    "{} exited ({status}) while starting; see {}",
                    self.name,
                    self.log.display()
                );
            }
            if self.serving().await {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                bail!(
                    "{} did not serve within {within:?}; see {}",
                    self.name,
                    self.log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn serving(&self) -> bool {
        let Ok(channel) = popug::client::connect(&format!("http://{}", self.addr)).await else {
            return false;
        };
        HealthClient::new(channel)
            .check(HealthCheckRequest::default())
            .await
            .is_ok_and(|answer| answer.into_inner().status == ServingStatus::Serving as i32)
    }

    /// `kill -9`: no shutdown, no goodbye.
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            child
                .kill()
                .await
                .with_context(|| format!("killing {}", self.name))?;
        }
        Ok(())
    }

    /// Sends `signal` (e.g. `STOP`, `CONT`, `TERM`) with `kill`.
    pub fn signal(&self, signal: &str) -> anyhow::Result<()> {
        let pid = self
            .child
            .as_ref()
            .and_then(Child::id)
            .with_context(|| format!("{} is not running", self.name))?;
        let status = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &pid.to_string()])
            .status()?;
        if !status.success() {
            bail!("kill -{signal} {} failed", self.name);
        }
        Ok(())
    }

    /// Whether it exited by itself (a crash the suite did not cause).
    pub fn exited(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|child| child.try_wait().ok().flatten().is_some())
    }

    /// Stops it gracefully (SIGTERM) and waits.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        if self.child.is_some() {
            self.signal("TERM").ok();
            if let Some(mut child) = self.child.take()
                && tokio::time::timeout(Duration::from_secs(20), child.wait())
                    .await
                    .is_err()
            {
                child.kill().await.ok();
            }
        }
        Ok(())
    }
}

/// The servers and services of one run.
pub struct Cluster {
    /// The service processes, by name (`auth`, `billing`, `billing-2`, ...);
    /// first, so that dropped they are killed before their servers stop.
    pub processes: BTreeMap<String, Process>,
    /// The private Postgres cluster.
    pub postgres: PrivatePostgres,
    /// The private RabbitMQ node.
    pub broker: PrivateBroker,
    /// Where every service answers.
    pub endpoints: Endpoints,
    /// The company's time zone (a fixed offset, see [`Cluster::start`]).
    pub timezone: popug_runtime::Timezone,
    dir: PathBuf,
    binaries: PathBuf,
    common: BTreeMap<String, String>,
}

impl Cluster {
    /// Starts Postgres, RabbitMQ and the four services (from the binaries
    /// in `binaries`), one after the other, with the company's day in
    /// `timezone`; logs go under `dir`.
    pub async fn start(
        binaries: &Path,
        dir: &Path,
        timezone: popug_runtime::Timezone,
    ) -> anyhow::Result<Self> {
        for service in Service::ALL {
            let binary = binaries.join(binary_name(service));
            if !binary.exists() {
                bail!(
                    "{} is missing: build the services first (cargo build -p auth-svc -p tracker-svc \
                     -p billing-svc -p analytics-svc) or pass --binaries",
                    binary.display()
                );
            }
        }
        std::fs::create_dir_all(dir.join("mail"))?;
        let postgres = PrivatePostgres::start()
            .await
            .context("starting Postgres")?;
        let broker = PrivateBroker::start().await.context("starting RabbitMQ")?;
        let addrs: BTreeMap<&str, String> = Service::ALL
            .into_iter()
            .map(|service| (service.name(), format!("127.0.0.1:{}", free_port())))
            .collect();
        let mut common = BTreeMap::from([
            ("POPUG_POSTGRES_URL".to_owned(), postgres.url()),
            ("POPUG_AMQP_URL".to_owned(), broker.url()),
            (
                "POPUG_AUTH_URL".to_owned(),
                format!("http://{}", addrs[Service::Auth.name()]),
            ),
            ("POPUG_ADMIN_PASSWORD".to_owned(), ADMIN_PASSWORD.to_owned()),
            ("POPUG_AUTH_ACCESS_TOKEN_TTL".to_owned(), "86400".to_owned()),
            ("POPUG_TIMEZONE".to_owned(), timezone.to_string()),
            (
                "POPUG_MAIL_DIR".to_owned(),
                dir.join("mail").to_string_lossy().into_owned(),
            ),
            ("POPUG_LOG_FORMAT".to_owned(), "json".to_owned()),
        ]);
        for (name, addr) in &addrs {
            common.insert(format!("POPUG_{}_ADDR", name.to_uppercase()), addr.clone());
        }
        let url = |service: Service| format!("http://{}", addrs[service.name()]);
        let mut cluster = Self {
            processes: BTreeMap::new(),
            postgres,
            broker,
            endpoints: Endpoints {
                auth: url(Service::Auth),
                tracker: url(Service::Tracker),
                billing: url(Service::Billing),
                analytics: url(Service::Analytics),
            },
            timezone,
            dir: dir.to_owned(),
            binaries: binaries.to_owned(),
            common,
        };
        // One at a time: the first declares the broker's topology before
        // the others would race to declare the same quorum queues.
        for service in Service::ALL {
            cluster
                .spawn(service, service.name(), &addrs[service.name()])
                .await?;
        }
        Ok(cluster)
    }

    /// Starts a process of `service` named `name` listening on `addr`.
    async fn spawn(&mut self, service: Service, name: &str, addr: &str) -> anyhow::Result<()> {
        let mut env = self.common.clone();
        env.insert(format!("POPUG_{}_ADDR", infix(service)), addr.to_owned());
        let mut process = Process {
            service,
            name: name.to_owned(),
            binary: self.binaries.join(binary_name(service)),
            env,
            addr: addr.to_owned(),
            log: self.dir.join(format!("{name}.log")),
            child: None,
        };
        process.start().await?;
        self.processes.insert(name.to_owned(), process);
        Ok(())
    }

    /// Starts a second billing replica on the same database (`billing-2`).
    pub async fn add_billing_replica(&mut self) -> anyhow::Result<()> {
        let addr = format!("127.0.0.1:{}", free_port());
        self.spawn(Service::Billing, "billing-2", &addr).await
    }

    /// Stops and forgets the second billing replica.
    pub async fn remove_billing_replica(&mut self) -> anyhow::Result<()> {
        if let Some(mut replica) = self.processes.remove("billing-2") {
            replica.stop().await?;
        }
        Ok(())
    }

    /// The process named `name`.
    pub fn process(&mut self, name: &str) -> anyhow::Result<&mut Process> {
        self.processes
            .get_mut(name)
            .with_context(|| format!("no process named {name}"))
    }

    /// Connects to the services and signs in as the first admin.
    pub async fn admin(&self) -> anyhow::Result<(Channels, Bearer)> {
        let channels = Channels::connect(&self.endpoints).await?;
        let admin = sign_in(&channels, "admin", ADMIN_PASSWORD).await?;
        Ok((channels, admin))
    }

    /// A connection string to `service`'s database.
    pub fn database_url(&self, service: Service) -> String {
        format!("{}/{}", self.postgres.url(), service.database_name())
    }

    /// Stops every service gracefully (the servers stop when dropped).
    pub async fn stop(&mut self) {
        for process in self.processes.values_mut() {
            process.stop().await.ok();
        }
    }
}

fn binary_name(service: Service) -> String {
    format!("{}-svc", service.name())
}

fn infix(service: Service) -> String {
    service.name().to_uppercase()
}
