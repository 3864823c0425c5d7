//! Connecting to RabbitMQ, who we are there and whom we believe. The retry
//! schedule of everything that waits for it to come back is
//! [`popug_runtime::backoff::Backoff`], re-exported here.
//!
//! The broker authenticates every connection, and RabbitMQ refuses a
//! message whose `user_id` property is not the connection's user. So the
//! relay stamps every event with its connection's user, and a consumer that
//! knows each producer's user ([`ProducerUsers`]) can tell who really
//! published an event, whatever its envelope says.

use std::time::Duration;

use lapin::{Channel, Connection, ConnectionProperties, options::ConfirmSelectOptions};
pub use popug_runtime::backoff::Backoff;
use popug_runtime::{ProducerUsers, Settings, SettingsError};

use tokio_util::sync::CancellationToken;

use crate::topology::Topology;

/// How often [`Broker::pause_until_back`] knocks on the broker's port.
pub const PROBE_EVERY: Duration = Duration::from_secs(1);

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

    /// Waits `pause` before another attempt to reach the broker, or less:
    /// while waiting it knocks on the broker's port every [`PROBE_EVERY`],
    /// and once a port that could not be reached (by the failed attempt,
    /// `unreachable`, or by a knock) answers, the wait ends at once. So a client
    /// reconnects within about a second of the broker's return instead of at
    /// the end of a pause of up to 30 s. A broker whose port answers all
    /// along (it refused us for another reason) gets the whole pause.
    /// Returns early, too, when `token` is cancelled.
    pub async fn pause_until_back(
        &self,
        pause: Duration,
        unreachable: bool,
        token: &CancellationToken,
    ) {
        let deadline = tokio::time::Instant::now() + pause;
        let mut refused = unreachable;
        loop {
            let knock = tokio::time::sleep(
                PROBE_EVERY.min(deadline.saturating_duration_since(tokio::time::Instant::now())),
            );
            tokio::select! {
                () = knock => {},
                () = token.cancelled() => return,
            }
            if tokio::time::Instant::now() >= deadline {
                return;
            }
            let open = self.port_open().await;
            if open && refused {
                tracing::info!(broker = %self.redacted_url(), "the broker is back; reconnecting now");
                return;
            }
            refused |= !open;
        }
    }

    /// Whether the broker's port accepts a TCP connection.
    async fn port_open(&self) -> bool {
        let (Some(host), port) = (self.url.host_str(), self.url.port().unwrap_or(5672)) else {
            return false;
        };
        matches!(
            tokio::time::timeout(PROBE_EVERY, tokio::net::TcpStream::connect((host, port))).await,
            Ok(Ok(_))
        )
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

/// Whether `error` is a failure to reach the broker at all (connection
/// refused, reset, timed out), as opposed to the broker answering no.
pub fn is_unreachable(error: &lapin::Error) -> bool {
    matches!(error.kind(), lapin::ErrorKind::IOError(_))
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
