//! A steady workload through the public APIs, as a company at work: people
//! create tasks, workers complete their own, a manager shuffles now and
//! then. It runs in the background through every fault; a call that fails
//! (a service killed, paused or cut off) is counted and the work goes on,
//! since what matters is that whatever the tracker did commit is booked.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use anyhow::Context as _;
use popug::{
    client::{Bearer, Channels, rpc_error},
    simulate::hire_popug,
};
use popug_proto::pb::popug::{auth::v1 as auth, tracker::v1 as tracker};
use rand::{Rng as _, SeedableRng as _, rngs::StdRng, seq::SliceRandom as _};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Calls made and refused so far.
#[derive(Debug, Default)]
struct Counts {
    ok: AtomicU64,
    failed: AtomicU64,
}

/// The people of the company.
#[derive(Clone)]
pub struct Company {
    managers: Vec<Bearer>,
    workers: Vec<Bearer>,
}

/// The running workload; [`Workload::stop`] ends it.
pub struct Workload {
    stop: CancellationToken,
    loops: JoinSet<()>,
    counts: Arc<Counts>,
}

/// Workers in the company (and so the tracker's choice at each assignment).
const WORKERS: usize = 6;
/// Managers, who shuffle.
const MANAGERS: usize = 2;
/// Concurrent callers.
const CALLERS: usize = 3;

impl Workload {
    /// Starts the callers of `company`, each making a call about every
    /// `pace`.
    pub fn start(channels: &Channels, company: &Company, pace: Duration, seed: u64) -> Self {
        let stop = CancellationToken::new();
        let counts = Arc::new(Counts::default());
        let mut loops = JoinSet::new();
        for caller in 0..CALLERS {
            let (channels, company, stop, counts) = (
                channels.clone(),
                company.clone(),
                stop.clone(),
                counts.clone(),
            );
            let mut rng = StdRng::seed_from_u64(seed * 100 + caller as u64);
            loops.spawn(async move {
                while !stop.is_cancelled() {
                    let done = step(&channels, &company, &mut rng, caller == 0).await;
                    let counter = if done.is_ok() {
                        &counts.ok
                    } else {
                        &counts.failed
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                    if done.is_err() {
                        // A refused call: the fault is at work; do not spin.
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    tokio::time::sleep(pace).await;
                }
            });
        }
        Self {
            stop,
            loops,
            counts,
        }
    }

    /// Calls that succeeded and failed so far.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.counts.ok.load(Ordering::Relaxed),
            self.counts.failed.load(Ordering::Relaxed),
        )
    }

    /// Stops the callers and waits for their calls in flight.
    pub async fn stop(mut self) {
        self.stop.cancel();
        while self.loops.join_next().await.is_some() {}
    }
}

impl Company {
    /// Creates the accounts and signs everyone in, then waits until the
    /// tracker has heard of them (a task can be created).
    pub async fn hire(channels: &Channels, admin: &Bearer) -> anyhow::Result<Company> {
        let run = &uuid::Uuid::new_v4().simple().to_string()[..6];
        let mut company = Company {
            managers: Vec::new(),
            workers: Vec::new(),
        };
        for (index, role) in std::iter::repeat_n(auth::Role::Manager, MANAGERS)
            .chain(std::iter::repeat_n(auth::Role::Worker, WORKERS))
            .enumerate()
        {
            let login = format!("popug-{run}-{index}");
            let bearer =
                hire_popug(channels, admin, &login, &format!("Popug {index}"), role).await?;
            match role {
                auth::Role::Manager => company.managers.push(bearer),
                _ => company.workers.push(bearer),
            }
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        let manager = company.managers.first().context("a manager")?;
        loop {
            match create(channels, manager).await {
                Ok(()) => return Ok(company),
                // The tracker has not heard of the accounts yet.
                Err(_) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(error) => return Err(error.context("the tracker never accepted a task")),
            }
        }
    }
}

async fn create(channels: &Channels, who: &Bearer) -> anyhow::Result<()> {
    let number: u32 = rand::thread_rng().gen_range(1..100_000);
    channels
        .tracker(who)
        .create_task(tracker::CreateTaskRequest {
            title: format!("Clean cage {number}"),
            jira_id: format!("FAULT-{number}"),
            description: "the fault suite's workload".into(),
        })
        .await
        .map_err(rpc_error)?;
    Ok(())
}

/// One call: mostly creations and completions; the first caller also
/// shuffles now and then.
async fn step(
    channels: &Channels,
    company: &Company,
    rng: &mut StdRng,
    may_shuffle: bool,
) -> anyhow::Result<()> {
    let roll: f64 = rng.r#gen();
    if may_shuffle && roll < 0.01 {
        let manager = company.managers.choose(rng).context("a manager")?;
        channels
            .tracker(manager)
            .shuffle_tasks(tracker::ShuffleTasksRequest {})
            .await
            .map_err(rpc_error)?;
        return Ok(());
    }
    if roll < 0.45 {
        let who = if rng.gen_bool(0.5) {
            company.managers.choose(rng)
        } else {
            company.workers.choose(rng)
        };
        return create(channels, who.context("a member")?).await;
    }
    let worker = company.workers.choose(rng).context("a worker")?;
    let open = channels
        .tracker(worker)
        .list_my_tasks(tracker::ListMyTasksRequest {
            status: tracker::TaskStatus::Open.into(),
            page_size: 20,
            page_token: String::new(),
        })
        .await
        .map_err(rpc_error)?
        .into_inner()
        .tasks;
    if let Some(task) = open.choose(rng) {
        channels
            .tracker(worker)
            .complete_task(tracker::CompleteTaskRequest {
                task_id: task.task_id.clone(),
            })
            .await
            .map_err(rpc_error)?;
    }
    Ok(())
}
