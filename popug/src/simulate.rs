//! `popug simulate`: plays whole working days of a popug company through
//! the public gRPC APIs, closes each day, reports the days and audits the
//! books.
//!
//! It runs its own mesh (fresh databases and a fresh broker namespace, on
//! random ports) on a simulated clock that starts `days` days ago, so each
//! day really ends and can be closed, and a week passes in a minute. The same
//! seed gives the same company and the same choices: who creates which task
//! in which round, when managers shuffle, and the chance of each open task
//! being completed. The services' own draws (assignees, prices) are seeded
//! from it too, but they follow the order in which requests and events
//! arrive, which timing decides; so money figures can differ between runs
//! of one seed, while the audit must be clean in every run.

use std::time::Duration;

use anyhow::{Context as _, bail};
use chrono::NaiveDate;
use futures::{StreamExt as _, TryStreamExt as _, stream};
use indicatif::{ProgressBar, ProgressStyle};
use popug_proto::pb::popug::{
    analytics::v1 as analytics, auth::v1 as auth, billing::v1 as billing, tracker::v1 as tracker,
};
use popug_runtime::{Clock, Env};
use rand::{Rng as _, SeedableRng as _, rngs::StdRng, seq::SliceRandom as _};
use tokio_util::sync::CancellationToken;

use crate::{
    audit::{AuditReport, audit},
    client::{Bearer, Channels, rpc_error, sign_in},
    mesh::{Mesh, MeshSettings, drop_databases, preflight},
};

/// What to simulate.
#[derive(Debug, Clone)]
pub struct Options {
    /// People in the company besides the admin: some managers and
    /// accountants, the rest workers.
    pub popugs: usize,
    /// Tasks created per day.
    pub tasks: usize,
    /// Working days.
    pub days: usize,
    /// Seeds every choice.
    pub seed: u64,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Keep the simulation's databases afterwards (they are dropped otherwise).
    pub keep: bool,
    /// Show a progress bar.
    pub progress: bool,
}

/// One simulated day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayReport {
    /// The day.
    pub date: NaiveDate,
    /// Tasks created.
    pub created: usize,
    /// Tasks reassigned by shuffles.
    pub reassigned: u64,
    /// Tasks completed.
    pub completed: usize,
    /// Management's earnings (billing).
    pub earnings_cents: i64,
    /// Paid out at the close.
    pub payouts_cents: i64,
    /// Popugs paid out at the close.
    pub paid_popugs: u32,
    /// Popugs in the red at the end of the day (analytics).
    pub negative_popugs: u32,
    /// The day's most expensive completed task and its reward (analytics).
    pub top_task: Option<(String, i64)>,
}

/// What the simulation did and what the audit found.
#[derive(Debug, Clone)]
pub struct Report {
    /// Each day.
    pub days: Vec<DayReport>,
    /// The audit after the last close.
    pub audit: AuditReport,
}

/// Rounds per day: each creates a share of the day's tasks, may shuffle,
/// then lets workers complete some of their tasks.
const ROUNDS: usize = 4;

/// A member of the simulated company.
struct Popug {
    role: auth::Role,
    bearer: Bearer,
}

/// Runs the simulation on a fresh mesh configured from `env` (Postgres and
/// RabbitMQ URLs, time zone; the rest is the simulation's own).
pub async fn run(options: &Options, env: Env) -> anyhow::Result<Report> {
    if options.popugs < 3 {
        bail!("--popugs must be at least 3: a manager, an accountant and a worker");
    }
    if options.days == 0 || options.tasks == 0 || options.concurrency == 0 {
        bail!("--days, --tasks and --concurrency must be at least 1");
    }
    let run_id = &uuid::Uuid::new_v4().simple().to_string()[..10];
    let mail_dir = std::env::temp_dir().join(format!("popug-simulate-{run_id}"));
    let admin_password = format!("simulate-{}", options.seed);
    // The namespace's live queues expire once the simulation is over (a
    // `POPUG_QUEUE_TTL` of the environment is kept, e.g. a short one in
    // tests); its dead-letter queues never expire, so the simulation deletes
    // the namespace when it is done, as it drops its databases.
    let queue_ttl = env.raw("POPUG_QUEUE_TTL").unwrap_or("60").to_owned();
    let env = env
        .with("POPUG_NAMESPACE", format!("sim-{run_id}"))
        .with("POPUG_QUEUE_TTL", queue_ttl)
        .with("POPUG_ADMIN_LOGIN", "admin")
        .with("POPUG_ADMIN_PASSWORD", admin_password.clone())
        .with("POPUG_AUTH_ACCESS_TOKEN_TTL", "86400")
        .with("POPUG_TRACKER_SEED", options.seed.to_string())
        .with("POPUG_BILLING_SEED", options.seed.to_string())
        .with("POPUG_BILLING_AUTO_CLOSE", "false")
        .with("POPUG_MAIL_DIR", mail_dir.to_string_lossy());
    let (env, databases) = env.with_private_databases(&format!("popug_sim_{run_id}"))?;
    let settings = MeshSettings::load(&env)?;
    preflight(settings.common()).await?;
    let timezone = settings.common().timezone;
    let first_day = popug_runtime::calendar::day_of(chrono::Utc::now(), timezone)
        - chrono::Days::new(u64::try_from(options.days).unwrap_or(0));
    let at = |day: NaiveDate, hour: u32| {
        timezone
            .earliest(day.and_hms_opt(hour, 0, 0).unwrap_or_default())
            .context("the time zone skips that hour")
    };
    let clock = Clock::simulated(at(first_day, 8)?);
    let topology = popug_bus::Topology::from_settings(settings.common());
    let amqp_url = settings.common().amqp_url.clone();
    let mesh = Mesh::start(settings.with_clock(&clock)).await?;
    let endpoints = mesh.endpoints();
    let stop = CancellationToken::new();
    let serving = mesh.spawn(&stop);

    let played = async {
        let channels = Channels::connect(&endpoints).await?;
        let company = Company::hire(&channels, options, &admin_password).await?;
        let progress = progress_bar(options);
        let mut days = Vec::new();
        let mut rng = StdRng::seed_from_u64(options.seed);
        for index in 0..options.days {
            let date = first_day + chrono::Days::new(u64::try_from(index).unwrap_or(0));
            progress.set_message(format!("day {}/{} ({date})", index + 1, options.days));
            clock.advance_to(at(date, 9)?)?;
            let mut day = company
                .work(&channels, options, &mut rng, &progress)
                .await?;
            // Everything the day did reaches billing and analytics before
            // the day ends; then the day is closed.
            let settled = audit(&channels, &company.admin, Duration::from_secs(60)).await?;
            if !settled.is_clean() {
                progress.println(format!("{date} did not settle:\n{settled}"));
            }
            clock.advance_to(at(date + chrono::Days::new(1), 0)? + chrono::Duration::seconds(1))?;
            let closed = channels
                .billing(&company.admin)
                .close_day(billing::CloseDayRequest {
                    date: date.to_string(),
                })
                .await
                .map_err(rpc_error)?
                .into_inner();
            day.date = date;
            day.payouts_cents = closed.payouts_cents;
            day.paid_popugs = closed.accounts_closed;
            progress.inc(1);
            days.push(day);
        }
        progress.finish_and_clear();
        let report = audit(&channels, &company.admin, Duration::from_secs(60)).await?;
        company.figures(&channels, &mut days).await?;
        anyhow::Ok(Report {
            days,
            audit: report,
        })
    }
    .await;

    stop.cancel();
    serving.await.context("the mesh stopped")??;
    if options.keep {
        tracing::info!(databases = ?databases, namespace = %format!("sim-{run_id}"), "kept the simulation's databases");
    } else {
        drop_databases(&databases).await?;
        delete_namespace(&amqp_url, &topology).await?;
        std::fs::remove_dir_all(&mail_dir).ok();
    }
    played
}

/// Deletes the simulation's queues and exchange.
async fn delete_namespace(
    amqp_url: &url::Url,
    topology: &popug_bus::Topology,
) -> anyhow::Result<()> {
    let connection =
        lapin::Connection::connect(amqp_url.as_str(), lapin::ConnectionProperties::default())
            .await?;
    let channel = connection.create_channel().await?;
    popug_bus::topology::delete_all(&channel, topology)
        .await
        .context("deleting the simulation's queues")?;
    connection.close(200, "simulated".into()).await.ok();
    Ok(())
}

fn progress_bar(options: &Options) -> ProgressBar {
    // Each day: its tasks created, plus its close.
    let steps = u64::try_from(options.days * (options.tasks + 1)).unwrap_or(u64::MAX);
    if !options.progress {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(steps);
    bar.set_style(
        ProgressStyle::with_template("{msg:24} [{bar:40}] {pos}/{len} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar
}

/// Creates the account `login` (named `name`, with a password and an email
/// derived from the login) as `admin`, and signs it in.
pub async fn hire_popug(
    channels: &Channels,
    admin: &Bearer,
    login: &str,
    name: &str,
    role: auth::Role,
) -> anyhow::Result<Bearer> {
    let password = format!("{login}-password");
    channels
        .auth(admin)
        .create_account(auth::CreateAccountRequest {
            login: login.to_owned(),
            password: password.clone(),
            name: name.to_owned(),
            email: format!("{login}@popug.example"),
            role: role.into(),
        })
        .await
        .map_err(rpc_error)
        .with_context(|| format!("creating {login}"))?;
    sign_in(channels, login, &password).await
}

/// The people of the simulated company.
struct Company {
    admin: Bearer,
    members: Vec<Popug>,
}

impl Company {
    /// Creates the accounts (a tenth managers, a twentieth accountants, at
    /// least one of each, the rest workers) and signs everyone in.
    async fn hire(
        channels: &Channels,
        options: &Options,
        admin_password: &str,
    ) -> anyhow::Result<Self> {
        let admin = sign_in(channels, "admin", admin_password).await?;
        let managers = (options.popugs / 10).max(1);
        let accountants = (options.popugs / 20).max(1);
        let roles = (0..options.popugs).map(|index| {
            if index < managers {
                auth::Role::Manager
            } else if index < managers + accountants {
                auth::Role::Accountant
            } else {
                auth::Role::Worker
            }
        });
        let members = stream::iter(roles.enumerate())
            .map(|(index, role)| {
                let admin = admin.clone();
                async move {
                    let login = format!(
                        "{}-{index:04}",
                        role.as_str_name()
                            .trim_start_matches("ROLE_")
                            .to_lowercase()
                    );
                    let bearer =
                        hire_popug(channels, &admin, &login, &format!("Popug {index}"), role)
                            .await?;
                    anyhow::Ok(Popug { role, bearer })
                }
            })
            .buffered(options.concurrency)
            .try_collect()
            .await?;
        Ok(Self { admin, members })
    }

    fn with_role(&self, role: auth::Role) -> impl Iterator<Item = &Popug> {
        self.members.iter().filter(move |popug| popug.role == role)
    }

    /// One working day: in each round, people create tasks, a manager may
    /// shuffle, and workers complete some of their open tasks.
    async fn work(
        &self,
        channels: &Channels,
        options: &Options,
        rng: &mut StdRng,
        progress: &ProgressBar,
    ) -> anyhow::Result<DayReport> {
        let mut day = DayReport {
            date: NaiveDate::default(),
            created: 0,
            reassigned: 0,
            completed: 0,
            earnings_cents: 0,
            payouts_cents: 0,
            paid_popugs: 0,
            negative_popugs: 0,
            top_task: None,
        };
        let managers: Vec<&Popug> = self.with_role(auth::Role::Manager).collect();
        let workers: Vec<&Popug> = self.with_role(auth::Role::Worker).collect();
        for round in 0..ROUNDS {
            let share = options.tasks / ROUNDS + usize::from(round < options.tasks % ROUNDS);
            // Anyone creates tasks, whatever the role.
            let creators: Vec<&Popug> = (0..share)
                .map(|_| self.members.choose(rng).context("the company has members"))
                .collect::<anyhow::Result<_>>()?;
            let numbers: Vec<u32> = (0..share).map(|_| rng.gen_range(1..10_000)).collect();
            stream::iter(creators.into_iter().zip(numbers))
                .map(|(creator, number)| async move {
                    let request = tracker::CreateTaskRequest {
                        title: format!("Feed the parrots of cage {number}"),
                        jira_id: format!("UBERPOP-{number}"),
                        description: "simulated".into(),
                    };
                    // Right after hiring, the tracker may not have heard of
                    // any worker yet: it refuses until it has.
                    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
                    loop {
                        match channels
                            .tracker(&creator.bearer)
                            .create_task(request.clone())
                            .await
                        {
                            Ok(_) => break,
                            Err(status)
                                if status.code() == tonic::Code::FailedPrecondition
                                    && tokio::time::Instant::now() < deadline =>
                            {
                                tokio::time::sleep(Duration::from_millis(50)).await;
                            }
                            Err(status) => return Err(rpc_error(status)),
                        }
                    }
                    progress.inc(1);
                    anyhow::Ok(())
                })
                .buffer_unordered(options.concurrency)
                .try_collect::<()>()
                .await?;
            day.created += share;
            // Managers shuffle now and then.
            if rng.gen_bool(0.5) {
                let manager = managers.choose(rng).context("the company has a manager")?;
                day.reassigned += channels
                    .tracker(&manager.bearer)
                    .shuffle_tasks(tracker::ShuffleTasksRequest {})
                    .await
                    .map_err(rpc_error)?
                    .into_inner()
                    .reassigned;
            }
            // Workers complete about half of their open tasks.
            let mut to_complete = Vec::new();
            for worker in &workers {
                let open = channels
                    .tracker(&worker.bearer)
                    .list_my_tasks(tracker::ListMyTasksRequest {
                        status: tracker::TaskStatus::Open.into(),
                        page_size: 1000,
                        page_token: String::new(),
                    })
                    .await
                    .map_err(rpc_error)?
                    .into_inner()
                    .tasks;
                for task in open {
                    if rng.gen_bool(0.5) {
                        to_complete.push((*worker, task.task_id));
                    }
                }
            }
            day.completed += to_complete.len();
            stream::iter(to_complete)
                .map(|(worker, task_id)| async move {
                    channels
                        .tracker(&worker.bearer)
                        .complete_task(tracker::CompleteTaskRequest { task_id })
                        .await
                        .map_err(rpc_error)?;
                    anyhow::Ok(())
                })
                .buffer_unordered(options.concurrency)
                .try_collect::<()>()
                .await?;
        }
        Ok(day)
    }

    /// Fills in each day's figures from billing and analytics.
    async fn figures(&self, channels: &Channels, days: &mut [DayReport]) -> anyhow::Result<()> {
        let mut analytics_client = channels.analytics(&self.admin);
        let mut billing_client = channels.billing(&self.admin);
        for day in days {
            let date = day.date.to_string();
            day.earnings_cents = billing_client
                .get_management_earnings(billing::GetManagementEarningsRequest {
                    from: date.clone(),
                    to: date.clone(),
                })
                .await
                .map_err(rpc_error)?
                .into_inner()
                .days
                .first()
                .map_or(0, |figures| figures.earnings_cents);
            day.negative_popugs = analytics_client
                .get_dashboard(analytics::GetDashboardRequest { date: date.clone() })
                .await
                .map_err(rpc_error)?
                .into_inner()
                .negative_balance_popugs;
            day.top_task = analytics_client
                .get_most_expensive_task(analytics::GetMostExpensiveTaskRequest {
                    period: analytics::Period::Unspecified.into(),
                    from: date.clone(),
                    to: date,
                })
                .await
                .map_err(rpc_error)?
                .into_inner()
                .task
                .map(|task| (format!("{} {}", task.key, task.title), task.reward_cents));
        }
        Ok(())
    }
}
