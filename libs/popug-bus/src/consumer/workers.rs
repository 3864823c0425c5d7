//! Running a consumer: competing workers on the same queue, each with its
//! own channel and database connection, reconnecting with backoff; the
//! history rebuild first when configured; and the gauge of unresolved dead
//! letters.

use std::sync::Arc;

use popug_runtime::database::Pool;
use tokio_util::sync::CancellationToken;

use super::{Consumer, ConsumerError, classify::unreachable};
use crate::{broker::Backoff, dead_letters};

impl Consumer {
    /// The consumer as an essential background task of a service.
    pub fn into_task(self) -> popug_runtime::BackgroundTask {
        popug_runtime::BackgroundTask::new("consumer", move |token| self.worker().run(token))
            .essential()
    }

    /// Runs `config.workers` workers (competing, or partitioned by lock key:
    /// see `partitions`) until `token` is cancelled,
    /// reconnecting with backoff when the broker goes away. Returns once every
    /// worker has settled the batch in hand. A worker that dies stops the
    /// others, and the panic goes on to the caller (the supervisor restarts
    /// the whole consumer), so a consumer never runs short of workers.
    pub async fn run(mut self, token: CancellationToken) {
        if self.config.rebuild_from_history {
            let mut backoff = self.config.backoff.clone();
            loop {
                match self.replay_history(&token).await {
                    Ok(_) => break,
                    Err(error) => {
                        let pause = backoff.next_pause();
                        tracing::error!(consumer = %self.name, %error, retry_in = ?pause,
                            "ALERT: rebuilding from the event history failed; retrying");
                        self.broker
                            .pause_until_back(pause, unreachable(&error), &token)
                            .await;
                    }
                }
                if token.is_cancelled() {
                    return;
                }
            }
        }
        let stop = token.child_token();
        let mut running = tokio::task::JoinSet::new();
        if self.partitioned() {
            running.spawn(self.worker().run_partitioned(stop.clone()));
        } else {
            for _ in 0..self.config.workers.max(1) {
                running.spawn(self.worker().run_worker(stop.clone()));
            }
        }
        running.spawn(gauge_dead_letters(
            self.pool.clone(),
            self.name.clone(),
            stop.clone(),
        ));
        let mut panic = None;
        while let Some(joined) = running.join_next().await {
            // Workers end only when stopped: one that ends early stops all.
            stop.cancel();
            if let Err(error) = joined
                && error.is_panic()
            {
                panic.get_or_insert(error.into_panic());
            }
        }
        if let Some(panic) = panic {
            std::panic::resume_unwind(panic);
        }
    }

    /// Another worker on the same queue, with its own connection.
    pub(super) fn worker(&self) -> Self {
        Self {
            pool: self.pool.clone(),
            broker: self.broker.clone(),
            name: self.name.clone(),
            handlers: Arc::clone(&self.handlers),
            config: self.config.clone(),
            link: None,
        }
    }

    async fn run_worker(mut self, token: CancellationToken) {
        let mut backoff = self.config.backoff.clone();
        while !token.is_cancelled() {
            match self.process_batch(&token).await {
                Ok(_) => backoff.reset(),
                Err(error) => self.reconnect_after(&error, &mut backoff, &token).await,
            }
        }
        self.close_link().await;
    }

    /// After the broker failed: drops the link, says so, and waits out the
    /// next pause of `backoff`, or less if the broker comes back first.
    pub(super) async fn reconnect_after(
        &mut self,
        error: &ConsumerError,
        backoff: &mut Backoff,
        token: &CancellationToken,
    ) {
        self.link = None;
        let pause = backoff.next_pause();
        tracing::error!(
            consumer = %self.name, broker = %self.broker.redacted_url(), %error, retry_in = ?pause,
            "ALERT: consumer lost the broker; reconnecting"
        );
        self.broker
            .pause_until_back(pause, unreachable(error), token)
            .await;
    }

    /// Closes the link, if any, on the way out.
    pub(super) async fn close_link(&mut self) {
        if let Some(link) = self.link.take() {
            link.connection
                .close(200, "shutting down".into())
                .await
                .ok();
        }
    }
}

/// How often the unresolved dead letters are counted.
const DEAD_LETTER_GAUGE_PERIOD: std::time::Duration = std::time::Duration::from_secs(5);

/// `popug_dead_letters_unresolved`: the dead letters nobody has replayed yet,
/// counted from the database every few seconds. Unlike the `dead_lettered`
/// outcome counter it survives restarts, so "above zero" is an alert rule.
async fn gauge_dead_letters(pool: Pool, service: String, token: CancellationToken) {
    let gauge = metrics::gauge!("popug_dead_letters_unresolved", "service" => service.clone());
    while !token.is_cancelled() {
        let count = async {
            match pool.get().await {
                Ok(mut conn) => dead_letters::unresolved(&mut conn)
                    .await
                    .map_err(|error| error.to_string()),
                Err(error) => Err(error.to_string()),
            }
        };
        // A database that is down must not hold up shutdown.
        let counted = tokio::select! {
            counted = count => counted,
            () = token.cancelled() => return,
        };
        match counted {
            Ok(unresolved) => gauge.set(unresolved as f64),
            Err(error) => {
                tracing::warn!(%service, %error, "cannot count the unresolved dead letters");
            }
        }
        tokio::select! {
            () = tokio::time::sleep(DEAD_LETTER_GAUGE_PERIOD) => {},
            () = token.cancelled() => {},
        }
    }
}
