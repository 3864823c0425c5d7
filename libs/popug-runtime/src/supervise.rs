//! Background work that dies is restarted, and says so.
//!
//! A service's long-running jobs (the outbox relay, the consumer, billing's
//! day closer, the mailer, gauges) are [`BackgroundTask`]s: a name and a way
//! to start the job afresh. `supervise` runs one until the service stops.
//! A job that returns or panics while the service is still running is
//! logged as an ALERT, counted in `popug_background_task_restarts_total`,
//! and started again after a growing pause ([`Backoff`]); one that ran for a
//! minute before dying starts again on the first pause.
//!
//! While an *essential* job (one without which the service does not do its
//! work: relay, consumer, day closer) is down, the service's health answers
//! NOT_SERVING, so an orchestrator takes it out of rotation and, if it stays
//! down, restarts it. A job that runs but cannot reach the broker or the
//! database is not down: it retries by itself and reports that in its own
//! metrics, and the service keeps answering the calls it can.

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    time::{Duration, Instant},
};

use tokio_util::sync::CancellationToken;

use crate::backoff::Backoff;

/// One run of a background job; it must return soon after its token is
/// cancelled.
pub type TaskFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A long-running job of a service, started afresh by `supervise` each
/// time it dies.
pub struct BackgroundTask {
    name: &'static str,
    essential: bool,
    start: Box<dyn FnMut(CancellationToken) -> TaskFuture + Send>,
}

impl BackgroundTask {
    /// A job called `name` (in logs and metrics); `start` begins one run.
    pub fn new<F, Fut>(name: &'static str, mut start: F) -> Self
    where
        F: FnMut(CancellationToken) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        Self {
            name,
            essential: false,
            start: Box::new(move |token| Box::pin(start(token))),
        }
    }

    /// Marks the job as one the service cannot do without: while it is
    /// down, health answers NOT_SERVING.
    #[must_use]
    pub fn essential(mut self) -> Self {
        self.essential = true;
        self
    }

    /// The job's name.
    pub fn name(&self) -> &'static str {
        self.name
    }
}

/// What health checks answer while essential jobs are down.
#[derive(Clone)]
pub(crate) struct Readiness {
    reporter: tonic_health::server::HealthReporter,
    /// Every service name health reports, `""` (the whole server) included.
    names: Arc<[&'static str]>,
    down: Arc<tokio::sync::Mutex<usize>>,
}

impl Readiness {
    pub(crate) fn new(
        reporter: tonic_health::server::HealthReporter,
        services: &[&'static str],
    ) -> Self {
        let names: Vec<&'static str> = std::iter::once("")
            .chain(services.iter().copied())
            .collect();
        Self {
            reporter,
            names: names.into(),
            down: Arc::default(),
        }
    }

    async fn mark(&self, status: tonic_health::ServingStatus) {
        for name in self.names.iter() {
            self.reporter.set_service_status(*name, status).await;
        }
    }

    async fn task_down(&self) {
        let mut down = self.down.lock().await;
        *down += 1;
        if *down == 1 {
            self.mark(tonic_health::ServingStatus::NotServing).await;
        }
    }

    async fn task_up(&self) {
        let mut down = self.down.lock().await;
        *down = down.saturating_sub(1);
        if *down == 0 {
            self.mark(tonic_health::ServingStatus::Serving).await;
        }
    }
}

/// How long a run must last for its death to count as a first failure.
const HEALTHY_RUN: Duration = Duration::from_secs(60);

/// Runs `task` until `token` is cancelled, restarting it whenever it dies;
/// see the module docs.
pub(crate) async fn supervise(
    mut task: BackgroundTask,
    service: &'static str,
    mut backoff: Backoff,
    readiness: Readiness,
    token: CancellationToken,
) {
    let up = metrics::gauge!("popug_background_task_up", "service" => service, "task" => task.name);
    let restarts = metrics::counter!("popug_background_task_restarts_total", "service" => service, "task" => task.name);
    loop {
        let started = Instant::now();
        up.set(1.0);
        let run = tokio::spawn((task.start)(token.child_token())).await;
        up.set(0.0);
        let why = match run {
            Ok(()) => "ended".to_owned(),
            Err(error) => match error.try_into_panic() {
                Ok(panic) => format!("panicked: {}", panic_message(panic.as_ref())),
                Err(error) => format!("was aborted: {error}"),
            },
        };
        if token.is_cancelled() {
            if why != "ended" {
                tracing::error!(task = task.name, "background task {why} while stopping");
            }
            return;
        }
        if started.elapsed() >= HEALTHY_RUN {
            backoff.reset();
        }
        let pause = backoff.next_pause();
        restarts.increment(1);
        tracing::error!(
            task = task.name,
            essential = task.essential,
            restart_in = ?pause,
            "ALERT: background task {why}; restarting it"
        );
        if task.essential {
            readiness.task_down().await;
        }
        let stopped = tokio::select! {
            () = tokio::time::sleep(pause) => false,
            () = token.cancelled() => true,
        };
        if task.essential {
            readiness.task_up().await;
        }
        if stopped {
            return;
        }
        tracing::info!(task = task.name, "background task restarted");
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(message) = panic.downcast_ref::<&str>() {
        (*message).to_owned()
    } else if let Some(message) = panic.downcast_ref::<String>() {
        message.clone()
    } else {
        "a non-text panic payload".to_owned()
    }
}
