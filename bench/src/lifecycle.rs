//! `cargo run --release -p bench -- lifecycle`: task lifecycles end to end
//! through the whole mesh in this process. A lifecycle is: a task created
//! (and so assigned), completed by its assignee, both ledger entries applied
//! by billing, both transactions seen by analytics.
//!
//! Two measurements:
//! - a fixed rate (500 lifecycles/s by default) for some seconds: the lag
//!   from the tracker's transaction to billing's entry, p50 and p99;
//! - saturation: as many lifecycles as 64 callers drive, until analytics has
//!   seen the last one: sustained lifecycles per second, and the lag there.
//!
//! Beside them, the raw limit of the same Postgres: one-row commits per
//! second through a pool of 8. The lag is measured from the tracker's
//! history row (stamped when its transaction starts) to billing's entry
//! (stamped when the row is written, just before its commit).
//!
//! The callers run on a runtime of their own, so the CPU they spend (on the
//! client side of the gRPC calls) is shown apart from the system's.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};
use futures::{StreamExt as _, TryStreamExt as _, stream};
use popug::{
    client::{Bearer, Channels, sign_in},
    mesh::{Mesh, MeshSettings, drop_databases},
};
use popug_proto::pb::popug::{auth::v1 as auth, tracker::v1 as tracker};
use tokio_util::sync::CancellationToken;

/// What to run.
pub(crate) struct Options {
    pub(crate) tasks: usize,
    pub(crate) rate: usize,
    pub(crate) seconds: u64,
    pub(crate) concurrency: usize,
    pub(crate) workers: usize,
}

const ADMIN_PASSWORD: &str = "bench-admin-password";

/// The mesh under load and what drives it; clones share the workers.
#[derive(Clone)]
struct Rig {
    channels: Channels,
    admin: Bearer,
    workers: Arc<HashMap<String, Bearer>>,
    databases: HashMap<&'static str, url::Url>,
}

/// The load generator's runtime, on threads named `cpu::LOAD_THREADS`; shut
/// down without waiting when dropped (a runtime may not simply be dropped
/// inside another, as on an early error).
struct LoadRuntime(Option<tokio::runtime::Runtime>);

impl LoadRuntime {
    fn new() -> std::io::Result<Self> {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name(crate::cpu::LOAD_THREADS)
            .enable_all()
            .build()
            .map(|runtime| Self(Some(runtime)))
    }

    fn spawn<F>(&self, future: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.0
            .as_ref()
            .expect("the runtime lives until dropped")
            .spawn(future)
    }
}

impl Drop for LoadRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// Lag percentiles in milliseconds.
struct Lags {
    p50: f64,
    p99: f64,
    max: f64,
    count: usize,
}

pub(crate) async fn run(
    postgres: &url::Url,
    amqp: &url::Url,
    options: &Options,
) -> anyhow::Result<()> {
    let id = &uuid::Uuid::new_v4().simple().to_string()[..12];
    let env = popug_runtime::Env::from_pairs([])
        .with("POPUG_POSTGRES_URL", postgres.as_str())
        .with("POPUG_AMQP_URL", amqp.as_str())
        .with("POPUG_NAMESPACE", format!("bench-{id}"))
        .with("POPUG_QUEUE_TTL", "300")
        .with("POPUG_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .with("POPUG_AUTH_ACCESS_TOKEN_TTL", "86400")
        .with("POPUG_BILLING_AUTO_CLOSE", "false")
        .with(
            "POPUG_MAIL_DIR",
            std::env::temp_dir()
                .join(format!("popug-bench-{id}"))
                .to_string_lossy(),
        );
    let (env, urls) = env.with_private_databases(&format!("popug_bench_{id}"))?;
    let databases: HashMap<&'static str, url::Url> = popug_runtime::Service::ALL
        .iter()
        .map(|service| service.name())
        .zip(urls.iter().cloned())
        .collect();
    let mesh = Box::pin(Mesh::start(MeshSettings::load(&env)?)).await?;
    let endpoints = mesh.endpoints();
    let stop = CancellationToken::new();
    let serving = mesh.spawn(&stop);
    // The load generator (the callers and their gRPC connections) runs on
    // threads of its own, so its CPU is told apart from the mesh's.
    let load = LoadRuntime::new()?;
    let channels = load
        .spawn(async move { Channels::connect(&endpoints).await })
        .await??;
    let rig = Rig::hire(channels, databases, options).await?;
    println!(
        "lifecycle benchmark: {} workers; {}/s for {} s, then {} lifecycles with {} in flight",
        options.workers, options.rate, options.seconds, options.tasks, options.concurrency
    );

    let fixed_count = options.rate * usize::try_from(options.seconds)?;
    let started = chrono::Utc::now();
    let fixed = Instant::now();
    let (completed, failure) = {
        let (rig, rate) = (rig.clone(), options.rate);
        load.spawn(async move { rig.at_fixed_rate(rate, fixed_count).await })
            .await??
    };
    let offered = crate::raw::rate(fixed_count, fixed);
    // The warm-up lifecycle, plus those that completed.
    rig.settle(1 + completed).await?;
    let fixed_lags = rig.lags(started).await?;

    let started = chrono::Utc::now();
    let cpu_before = crate::cpu::Cpu::now();
    let saturated = Instant::now();
    {
        let (rig, tasks, concurrency) = (rig.clone(), options.tasks, options.concurrency);
        load.spawn(async move { rig.saturate(tasks, concurrency).await })
            .await??;
    }
    let rpc_rate = crate::raw::rate(options.tasks, saturated);
    rig.settle(1 + completed + options.tasks).await?;
    let sustained = crate::raw::rate(options.tasks, saturated);
    let cpu = crate::cpu::Cpu::now().since(cpu_before);
    let saturated_lags = rig.lags(started).await?;

    let report = popug::audit::audit(&rig.channels, &rig.admin, Duration::from_secs(120)).await?;
    anyhow::ensure!(report.is_clean(), "{report}");
    let pool = popug_runtime::database::connect(&rig.databases["billing"], 8, &[]).await?;
    let raw_commit = crate::raw::raw_commit_rate(&pool, &[0; 231], 5_000).await?;
    drop(load);
    stop.cancel();
    serving.await??;
    drop(pool);
    drop_databases(&urls).await?;

    println!();
    println!("{:<62} {:>10}", "measurement", "value");
    println!(
        "{:<62} {:>10.0}",
        "raw: one-row insert transactions per second, pool of 8", raw_commit
    );
    println!(
        "{:<62} {:>10.0}",
        "fixed rate: lifecycles offered per second", offered
    );
    println!(
        "{:<62} {:>10}",
        "fixed rate: lifecycles completed / offered",
        format!("{completed} / {fixed_count}")
    );
    if let Some(failure) = failure {
        println!("  the first refused lifecycle: {failure}");
    }
    print_lags("fixed rate", &fixed_lags);
    println!(
        "{:<62} {:>10.0}",
        "saturation: create + complete RPC pairs per second", rpc_rate
    );
    println!(
        "{:<62} {:>10.0}",
        "saturation: lifecycles per second, until analytics has all", sustained
    );
    print_lags("saturation", &saturated_lags);
    println!(
        "{:<62} {:>10}",
        "saturation: cpu ms per lifecycle (popug + postgres + rabbitmq)",
        cpu.per(options.tasks)
    );
    let ms = |seconds: f64| crate::cpu::ms_per(seconds, options.tasks);
    println!(
        "{:<62} {:>10}",
        "saturation: of which the load generator (gRPC callers), ms",
        format!("{:.3}", ms(cpu.load))
    );
    println!(
        "{:<62} {:>10}",
        "saturation: cpu ms per lifecycle of the system alone",
        format!("{:.3}", ms(cpu.total() - cpu.load))
    );
    println!();
    println!(
        "sustained lifecycles / raw commit = {:.3}  (audit after the run: {report})",
        sustained / raw_commit
    );
    Ok(())
}

fn print_lags(phase: &str, lags: &Lags) {
    println!(
        "{:<62} {:>10}",
        format!(
            "{phase}: tracker -> billing lag p50 / p99 / max, ms ({} events)",
            lags.count
        ),
        format!("{:.0} / {:.0} / {:.0}", lags.p50, lags.p99, lags.max)
    );
}

impl Rig {
    /// Signs the admin in and creates `workers` workers, signed in too.
    async fn hire(
        channels: Channels,
        databases: HashMap<&'static str, url::Url>,
        options: &Options,
    ) -> anyhow::Result<Self> {
        let admin = sign_in(&channels, "admin", ADMIN_PASSWORD).await?;
        let workers: HashMap<String, Bearer> = stream::iter(0..options.workers)
            .map(|index| {
                let channels = channels.clone();
                let admin = admin.clone();
                async move {
                    let login = format!("worker-{index:04}");
                    let account = channels
                        .auth(&admin)
                        .create_account(auth::CreateAccountRequest {
                            login: login.clone(),
                            password: format!("{login}-password"),
                            name: login.clone(),
                            email: format!("{login}@popug.example"),
                            role: auth::Role::Worker.into(),
                        })
                        .await?
                        .into_inner()
                        .account
                        .context("an account")?;
                    let bearer = sign_in(&channels, &login, &format!("{login}-password")).await?;
                    anyhow::Ok((account.account_id, bearer))
                }
            })
            .buffer_unordered(8)
            .try_collect()
            .await?;
        let rig = Self {
            channels,
            admin,
            workers: Arc::new(workers),
            databases,
        };
        // The tracker hears of the workers through auth's events.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match rig.lifecycle().await {
                Ok(()) => break,
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(error) => return Err(error),
            }
        }
        rig.settle(1).await?;
        Ok(rig)
    }

    /// One lifecycle's calls: the admin creates a task, its assignee completes it.
    async fn lifecycle(&self) -> anyhow::Result<()> {
        let task = self
            .channels
            .tracker(&self.admin)
            .create_task(tracker::CreateTaskRequest {
                title: "Feed the parrots".into(),
                jira_id: String::new(),
                description: "bench".into(),
            })
            .await?
            .into_inner()
            .task
            .context("a task")?;
        let assignee = self
            .workers
            .get(&task.assignee_id)
            .context("the assignee is one of the workers")?;
        self.channels
            .tracker(assignee)
            .complete_task(tracker::CompleteTaskRequest {
                task_id: task.task_id,
            })
            .await?;
        Ok(())
    }

    /// `count` lifecycles started at `rate` per second, whatever the replies
    /// (an open-loop load: a slow system gets no respite). Returns how many
    /// completed, and the first error of those that did not.
    async fn at_fixed_rate(
        &self,
        rate: usize,
        count: usize,
    ) -> anyhow::Result<(usize, Option<String>)> {
        let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let mut running = tokio::task::JoinSet::new();
        for _ in 0..count {
            ticks.tick().await;
            let rig = self.clone();
            running.spawn(async move { rig.lifecycle().await });
        }
        let (mut completed, mut failure) = (0, None);
        while let Some(done) = running.join_next().await {
            match done? {
                Ok(()) => completed += 1,
                Err(error) => {
                    failure.get_or_insert_with(|| format!("{error:#}"));
                }
            }
        }
        Ok((completed, failure))
    }

    /// `count` lifecycles, `concurrency` at a time.
    async fn saturate(&self, count: usize, concurrency: usize) -> anyhow::Result<()> {
        stream::iter(0..count)
            .map(|_| self.lifecycle())
            .buffer_unordered(concurrency)
            .try_collect::<()>()
            .await
    }

    /// Waits until billing has both entries and analytics both transactions
    /// of `lifecycles` lifecycles.
    async fn settle(&self, lifecycles: usize) -> anyhow::Result<()> {
        let expected = i64::try_from(lifecycles * 2)?;
        let mut billing = AsyncPgConnection::establish(self.databases["billing"].as_str()).await?;
        let mut analytics =
            AsyncPgConnection::establish(self.databases["analytics"].as_str()).await?;
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            let entries = count(
                &mut billing,
                "SELECT count(*) AS n FROM entries WHERE kind <> 'payout'",
            )
            .await?;
            let seen = count(
                &mut analytics,
                "SELECT count(*) AS n FROM transactions WHERE kind <> 'payout'",
            )
            .await?;
            if entries >= expected && seen >= expected {
                return Ok(());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "billing has {entries}, analytics {seen} of {expected}"
            );
            // Each look counts two tables; looking more often would add its
            // own Postgres CPU to the figures measured.
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// The tracker-to-billing lag of every event since `since`.
    async fn lags(&self, since: chrono::DateTime<chrono::Utc>) -> anyhow::Result<Lags> {
        #[derive(diesel::QueryableByName)]
        struct Stamp {
            #[diesel(sql_type = diesel::sql_types::Uuid)]
            event_id: uuid::Uuid,
            #[diesel(sql_type = diesel::sql_types::Timestamptz)]
            at: chrono::DateTime<chrono::Utc>,
        }
        let mut tracker = AsyncPgConnection::establish(self.databases["tracker"].as_str()).await?;
        let mut billing = AsyncPgConnection::establish(self.databases["billing"].as_str()).await?;
        let committed: Vec<Stamp> = diesel::sql_query(
            "SELECT event_id, occurred_at AS at FROM task_history WHERE occurred_at >= $1",
        )
        .bind::<diesel::sql_types::Timestamptz, _>(since)
        .load(&mut tracker)
        .await?;
        let applied: HashMap<uuid::Uuid, chrono::DateTime<chrono::Utc>> = diesel::sql_query(
            "SELECT source_event_id AS event_id, occurred_at AS at FROM entries WHERE occurred_at >= $1",
        )
        .bind::<diesel::sql_types::Timestamptz, _>(since)
        .load::<Stamp>(&mut billing)
        .await?
        .into_iter()
        .map(|stamp| (stamp.event_id, stamp.at))
        .collect();
        let mut lags: Vec<f64> = committed
            .iter()
            .filter_map(|stamp| {
                let applied = applied.get(&stamp.event_id)?;
                Some((*applied - stamp.at).num_microseconds()? as f64 / 1000.0)
            })
            .collect();
        anyhow::ensure!(!lags.is_empty(), "no lags measured");
        lags.sort_by(f64::total_cmp);
        let at = |quantile: f64| lags[((lags.len() - 1) as f64 * quantile).round() as usize];
        Ok(Lags {
            p50: at(0.50),
            p99: at(0.99),
            max: at(1.0),
            count: lags.len(),
        })
    }
}

async fn count(conn: &mut AsyncPgConnection, query: &str) -> anyhow::Result<i64> {
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    Ok(diesel::sql_query(query).get_result::<Count>(conn).await?.n)
}
