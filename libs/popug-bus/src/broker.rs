//! Connecting to RabbitMQ, who we are there, whom we believe, and the retry
//! schedule shared by everything that waits for it to come back.
//!
//! The broker authenticates every connection, and RabbitMQ refuses a
//! message whose `user_id` property is not the connection's user. So the
//! relay stamps every event with its connection's user, and a consumer that
//! knows each producer's user ([`ProducerUsers`]) can tell who really
//! published an event, whatever its envelope says.

use std::time::Duration;

use lapin::{Channel, Connection, ConnectionProperties, options::ConfirmSelectOptions};
use popug_runtime::{ProducerUsers, Settings, SettingsError};

use crate::topology::Topology;

/// Where the broker is and which namespace of it this service uses.
#[derive(Debug, Clone)]
pub struct Broker {
    url: url::Url,
    topology: Topology,
    /// Shown in the broker's connection list, e.g. `billing`.
    client_name: String,
    /// The user the broker knows our connections as (the URL's; RabbitMQ's
    /// `guest` when it names none). Every message we publish says so.
    user: String,
    /// Each producer's broker user; `None` when all share one, and then
    /// consumers cannot tell producers apart.
    producer_users: Option<ProducerUsers>,
}

impl Broker {
    /// A broker at `url`, using the names of `topology`.
    pub fn new(url: url::Url, topology: Topology, client_name: impl Into<String>) -> Self {
        let user = <lapin::uri::AMQPUri as std::str::FromStr>::from_str(url.as_str())
            .map(|uri| uri.authority.userinfo.username)
            .unwrap_or_else(|_| "guest".to_owned());
        Self {
            url,
            topology,
            client_name: client_name.into(),
            user,
            producer_users: None,
        }
    }

    /// The broker of a service, from its settings: its URL, names and
    /// producer users. When producer users are set, a producer must connect
    /// as its own mapped user and any other service as a user that is no
    /// producer's (else it could publish as that producer, or vouch for
    /// replays in its name): anything else is a [`SettingsError`] naming
    /// `POPUG_AMQP_PRODUCER_USERS`.
    pub fn from_settings(settings: &Settings) -> Result<Self, SettingsError> {
        let service = settings.service.name();
        let broker = Self::new(
            settings.amqp_url.clone(),
            Topology::from_settings(settings),
            service,
        );
        let Some(users) = settings.amqp_producer_users.clone() else {
            return Ok(broker);
        };
        let invalid = |reason: String| SettingsError {
            variable: "POPUG_AMQP_PRODUCER_USERS".into(),
            value: users.to_string(),
            reason,
        };
        match (users.user_of(service), users.producer_of(&broker.user)) {
            (Some(mapped), _) if mapped != broker.user => {
                return Err(invalid(format!(
                    "{service} connects to the broker as `{}` (POPUG_AMQP_URL), but publishes as `{mapped}` here",
                    broker.user
                )));
            }
            (None, Some(producer)) => {
                return Err(invalid(format!(
                    "{service} connects to the broker as `{}` (POPUG_AMQP_URL), the user of {producer}; give it a user of its own",
                    broker.user
                )));
            }
            _ => {}
        }
        Ok(broker.with_producer_users(users))
    }

    /// The same broker, believing an event only from its producer's user
    /// (no checks of our own user; see [`Broker::from_settings`]).
    #[must_use]
    pub fn with_producer_users(mut self, users: ProducerUsers) -> Self {
        self.producer_users = Some(users);
        self
    }

    /// The user our connections authenticate as.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// Each producer's broker user, when they have their own.
    pub fn producer_users(&self) -> Option<&ProducerUsers> {
        self.producer_users.as_ref()
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
/// (as the business asked for publishing).
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

/// Whether `error` is the broker refusing the connection's user or password
/// (AMQP 403 `ACCESS_REFUSED`), not a broker that is down or unreachable.
pub fn is_access_refused(error: &lapin::Error) -> bool {
    let refused =
        matches!(error.kind(), lapin::ErrorKind::ProtocolError(amqp) if amqp.get_id() == 403);
    let text = error.to_string();
    refused
        || text.contains("ACCESS_REFUSED")
        || text.contains("ACCESS-REFUSED")
        || text.contains("Login was refused")
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
