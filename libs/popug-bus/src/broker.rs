//! Connecting to RabbitMQ, and the retry schedule shared by everything that
//! waits for it to come back.

use std::time::Duration;

use lapin::{Channel, Connection, ConnectionProperties, options::ConfirmSelectOptions};

use crate::topology::Topology;

/// Where the broker is and which namespace of it this service uses.
#[derive(Debug, Clone)]
pub struct Broker {
    url: url::Url,
    topology: Topology,
    /// Shown in the broker's connection list, e.g. `billing`.
    client_name: String,
}

impl Broker {
    /// A broker at `url`, using the names of `topology`.
    pub fn new(url: url::Url, topology: Topology, client_name: impl Into<String>) -> Self {
        Self {
            url,
            topology,
            client_name: client_name.into(),
        }
    }

    /// The names of the broker objects.
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// The broker URL with its password masked, for messages.
    pub fn redacted_url(&self) -> String {
        popug_runtime::database::redacted(&self.url)
    }

    /// Opens a new connection.
    pub async fn connect(&self) -> lapin::Result<Connection> {
        let properties =
            ConnectionProperties::default().with_connection_name(self.client_name.clone().into());
        Connection::connect(self.url.as_str(), properties).await
    }

    /// Opens a connection and a channel in publisher-confirm mode.
    pub async fn confirm_channel(&self) -> lapin::Result<(Connection, Channel)> {
        let connection = self.connect().await?;
        let channel = connection.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        Ok((connection, channel))
    }
}

/// Growing pauses between retries: 1, 3, 5, 10, 30 s, then every 30 s
/// (REQUIREMENTS.md, Failure handling).
#[derive(Debug, Clone)]
pub struct Backoff {
    schedule: Vec<Duration>,
    attempt: usize,
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new([1, 3, 5, 10, 30].map(Duration::from_secs).to_vec())
    }
}

impl Backoff {
    /// A schedule; its last pause repeats. Tests use a faster one.
    pub fn new(schedule: Vec<Duration>) -> Self {
        assert!(
            !schedule.is_empty(),
            "a retry schedule needs at least one pause"
        );
        Self {
            schedule,
            attempt: 0,
        }
    }

    /// The pause before the next retry.
    pub fn next_pause(&mut self) -> Duration {
        let pause = self.schedule[self.attempt.min(self.schedule.len() - 1)];
        self.attempt += 1;
        pause
    }

    /// Failures in a row so far.
    pub fn failures(&self) -> usize {
        self.attempt
    }

    /// Back to the first pause, after a success.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_grows_then_repeats_its_last_pause() {
        let mut backoff = Backoff::default();
        let pauses: Vec<u64> = (0..7).map(|_| backoff.next_pause().as_secs()).collect();
        assert_eq!(pauses, [1, 3, 5, 10, 30, 30, 30]);
        backoff.reset();
        assert_eq!(backoff.next_pause().as_secs(), 1);
    }
}
