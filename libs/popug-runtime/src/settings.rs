//! Typed settings from `POPUG_*` environment variables (their names are
//! part of popug's contract), with defaults that need no configuration on a machine with
//! Postgres and RabbitMQ on their standard local ports.
//!
//! Settings are parsed once, at start; a bad value is an error that names the
//! variable and says what was expected, and the service does not start.

use std::{collections::HashMap, fmt, net::SocketAddr, str::FromStr};

/// The four popug services: their names, databases and default ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    /// auth-svc: accounts and tokens.
    Auth,
    /// tracker-svc: tasks.
    Tracker,
    /// billing-svc: prices, ledger, payouts.
    Billing,
    /// analytics-svc: dashboards.
    Analytics,
}

impl Service {
    /// Every service, in port order.
    pub const ALL: [Service; 4] = [
        Service::Auth,
        Service::Tracker,
        Service::Billing,
        Service::Analytics,
    ];

    /// Short name: the event producer name and the queue prefix.
    pub fn name(self) -> &'static str {
        match self {
            Service::Auth => "auth",
            Service::Tracker => "tracker",
            Service::Billing => "billing",
            Service::Analytics => "analytics",
        }
    }

    /// The service's own database on the Postgres server.
    pub fn database_name(self) -> &'static str {
        match self {
            Service::Auth => "popug_auth",
            Service::Tracker => "popug_tracker",
            Service::Billing => "popug_billing",
            Service::Analytics => "popug_analytics",
        }
    }

    /// Local default listen address (the contract's ports 50051..50054).
    pub fn default_addr(self) -> SocketAddr {
        let port = match self {
            Service::Auth => 50051,
            Service::Tracker => 50052,
            Service::Billing => 50053,
            Service::Analytics => 50054,
        };
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn env_infix(self) -> &'static str {
        match self {
            Service::Auth => "AUTH",
            Service::Tracker => "TRACKER",
            Service::Billing => "BILLING",
            Service::Analytics => "ANALYTICS",
        }
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A setting that could not be used; names the variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("setting {variable}={value:?} is invalid: {reason}")]
pub struct SettingsError {
    /// The environment variable.
    pub variable: String,
    /// Its value as read.
    pub value: String,
    /// What was expected instead.
    pub reason: String,
}

/// Where settings come from: the process environment, or a fixed map in tests.
pub struct Env {
    vars: HashMap<String, String>,
    /// Every name looked up, so tests can hold deployment manifests against
    /// what the binaries really read.
    read: std::cell::RefCell<std::collections::BTreeSet<String>>,
}

impl Env {
    /// The process environment (only `POPUG_*` variables are kept).
    pub fn process() -> Self {
        Self {
            vars: std::env::vars()
                .filter(|(name, _)| name.starts_with("POPUG_"))
                .collect(),
            read: std::cell::RefCell::default(),
        }
    }

    /// A fixed set of variables, for tests.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Self {
            vars: pairs
                .into_iter()
                .map(|(name, value)| (name.to_owned(), value.to_owned()))
                .collect(),
            read: std::cell::RefCell::default(),
        }
    }

    /// The same variables with `name` set to `value` (replacing any value).
    #[must_use]
    pub fn with(mut self, name: &str, value: impl Into<String>) -> Self {
        self.vars.insert(name.to_owned(), value.into());
        self
    }

    /// The same variables, giving each service of a private mesh (a test, a
    /// simulation, a benchmark) its own fresh database `<prefix>_<service>`
    /// on the Postgres server these variables name, and a random port.
    /// Returns the databases too, so the caller can drop them.
    pub fn with_private_databases(
        mut self,
        prefix: &str,
    ) -> Result<(Self, Vec<url::Url>), SettingsError> {
        let mut server = Settings::load(Service::Auth, &self)?.database_url;
        let mut databases = Vec::new();
        for service in Service::ALL {
            let infix = service.env_infix();
            server.set_path(&format!("{prefix}_{}", service.name()));
            self = self
                .with(&format!("POPUG_{infix}_DATABASE_URL"), server.as_str())
                .with(&format!("POPUG_{infix}_ADDR"), "127.0.0.1:0");
            databases.push(server.clone());
        }
        Ok((self, databases))
    }

    /// Every variable, e.g. to pass them on to a child process.
    pub fn vars(&self) -> impl Iterator<Item = (&str, &str)> {
        self.vars
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
    }

    /// The raw value of `name`, if set.
    pub fn raw(&self, name: &str) -> Option<&str> {
        self.read.borrow_mut().insert(name.to_owned());
        self.vars.get(name).map(String::as_str)
    }

    /// Every variable name looked up so far, set or not.
    pub fn names_read(&self) -> std::collections::BTreeSet<String> {
        self.read.borrow().clone()
    }

    /// `name` parsed, or `None` when unset.
    pub fn optional<T>(&self, name: &str) -> Result<Option<T>, SettingsError>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        self.raw(name)
            .map(|value| {
                value.parse().map_err(|error: T::Err| SettingsError {
                    variable: name.to_owned(),
                    value: value.to_owned(),
                    reason: error.to_string(),
                })
            })
            .transpose()
    }

    /// `name` parsed, or `default` when unset.
    pub fn parse_or<T>(&self, name: &str, default: T) -> Result<T, SettingsError>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        Ok(self.optional(name)?.unwrap_or(default))
    }

    /// `name` parsed as a number within `range`, or `default` when unset.
    pub fn parse_within<T>(
        &self,
        name: &str,
        default: T,
        range: std::ops::RangeInclusive<T>,
    ) -> Result<T, SettingsError>
    where
        T: FromStr + PartialOrd + fmt::Display,
        T::Err: fmt::Display,
    {
        let value = self.parse_or(name, default)?;
        if range.contains(&value) {
            Ok(value)
        } else {
            Err(self.invalid(
                name,
                format!("expected {} to {}", range.start(), range.end()),
            ))
        }
    }

    /// An error for a secret `name` (a key, a password): its value is not shown.
    pub fn invalid_secret(&self, name: &str, reason: impl Into<String>) -> SettingsError {
        SettingsError {
            variable: name.to_owned(),
            value: "(secret, not shown)".to_owned(),
            reason: reason.into(),
        }
    }

    /// An error for `name` with a reason, for checks beyond parsing.
    pub fn invalid(&self, name: &str, reason: impl Into<String>) -> SettingsError {
        SettingsError {
            variable: name.to_owned(),
            value: self.raw(name).unwrap_or_default().to_owned(),
            reason: reason.into(),
        }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines, for a terminal.
    Pretty,
    /// One JSON object per line, for log collectors.
    Json,
}

impl FromStr for LogFormat {
    type Err = String;
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value {
            "pretty" => Ok(LogFormat::Pretty),
            "json" => Ok(LogFormat::Json),
            _ => Err("expected `pretty` or `json`".into()),
        }
    }
}

/// Parses `name` as a URL with one of `schemes`.
fn url_setting(
    env: &Env,
    name: &str,
    default: &str,
    schemes: &[&str],
) -> Result<url::Url, SettingsError> {
    let value = env.raw(name).unwrap_or(default);
    let parsed = url::Url::parse(value).map_err(|error| env.invalid(name, error.to_string()))?;
    if !schemes.contains(&parsed.scheme()) {
        return Err(env.invalid(name, format!("expected a {} URL", schemes.join(" or "))));
    }
    Ok(parsed)
}

/// A name prefix for the exchange and queues, so environments share a broker.
fn namespace_setting(env: &Env) -> Result<Option<String>, SettingsError> {
    const NAME: &str = "POPUG_NAMESPACE";
    match env.raw(NAME) {
        None | Some("") => Ok(None),
        Some(value)
            if value.len() <= 64
                && value
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') =>
        {
            Ok(Some(value.to_owned()))
        }
        Some(_) => Err(env.invalid(NAME, "expected at most 64 letters, digits, `-` or `_`")),
    }
}

/// The broker user each event-producing service publishes as
/// (`POPUG_AMQP_PRODUCER_USERS`, e.g.
/// `auth=popug-auth,tracker=popug-tracker,billing=popug-billing`). With it,
/// consumers accept an event only from its producer's user, which the broker
/// itself vouches for (the AMQP `user_id` property).
///
/// Every producer of the event catalog is named exactly once, each with a
/// user of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerUsers {
    /// Producer (`auth`, ...) to broker user, in catalog order.
    users: Vec<(&'static str, String)>,
}

impl ProducerUsers {
    /// The broker user of `producer` (a service name such as `tracker`).
    pub fn user_of(&self, producer: &str) -> Option<&str> {
        self.users
            .iter()
            .find(|(name, _)| *name == producer)
            .map(|(_, user)| user.as_str())
    }

    /// The producer whose user `user` is, if any.
    pub fn producer_of(&self, user: &str) -> Option<&'static str> {
        self.users
            .iter()
            .find(|(_, mapped)| mapped == user)
            .map(|(producer, _)| *producer)
    }

    /// Every producer and its user, in catalog order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.users
            .iter()
            .map(|(producer, user)| (*producer, user.as_str()))
    }
}

impl fmt::Display for ProducerUsers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, (producer, user)) in self.iter().enumerate() {
            if index > 0 {
                f.write_str(",")?;
            }
            write!(f, "{producer}={user}")?;
        }
        Ok(())
    }
}

impl FromStr for ProducerUsers {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let producers = popug_proto::events::producers();
        let mut given: Vec<(&'static str, String)> = Vec::new();
        for pair in value
            .split(',')
            .map(str::trim)
            .filter(|pair| !pair.is_empty())
        {
            let (service, user) = pair
                .split_once('=')
                .map(|(service, user)| (service.trim(), user.trim()))
                .ok_or_else(|| format!("`{pair}` is not `service=user`"))?;
            let producer = producers
                .iter()
                .find(|producer| **producer == service)
                .ok_or_else(|| {
                    format!(
                        "`{service}` produces no events; the producers are {}",
                        producers.join(", ")
                    )
                })?;
            if user.is_empty() || user.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(format!("`{user}` is not a broker user name for {service}"));
            }
            if given.iter().any(|(named, _)| named == producer) {
                return Err(format!("{service} is named twice"));
            }
            if let Some((other, _)) = given.iter().find(|(_, named)| named == user) {
                return Err(format!(
                    "{other} and {service} share the user `{user}`; each producer needs its own, or either could publish as the other"
                ));
            }
            given.push((producer, user.to_owned()));
        }
        let missing: Vec<&str> = producers
            .iter()
            .filter(|producer| !given.iter().any(|(named, _)| named == *producer))
            .copied()
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "every producer needs a user; missing {}",
                missing.join(", ")
            ));
        }
        given.sort_by_key(|(producer, _)| producers.iter().position(|p| p == producer));
        Ok(Self { users: given })
    }
}

/// Settings every service shares, plus the ones of the service being started.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Which service these settings are for.
    pub service: Service,
    /// Where its gRPC server listens (`POPUG_<SERVICE>_ADDR`).
    pub addr: SocketAddr,
    /// Its own database (`POPUG_<SERVICE>_DATABASE_URL`, or derived from
    /// `POPUG_POSTGRES_URL` and the service's database name).
    pub database_url: url::Url,
    /// Most connections in its pool (`POPUG_DATABASE_POOL_SIZE`).
    pub database_pool_size: u32,
    /// How long its sessions may wait for a lock, run a statement or idle in
    /// a transaction (`POPUG_DATABASE_LOCK_TIMEOUT`, default 5 s;
    /// `POPUG_DATABASE_STATEMENT_TIMEOUT`, 60 s;
    /// `POPUG_DATABASE_IDLE_IN_TRANSACTION_TIMEOUT`, 15 s; in milliseconds).
    /// [`Settings::limited_database_url`] carries them as session options.
    pub database_limits: crate::database::SessionLimits,
    /// RabbitMQ (`POPUG_AMQP_URL`); its user is the one this service
    /// connects, publishes and replays as.
    pub amqp_url: url::Url,
    /// The broker user of each event producer (`POPUG_AMQP_PRODUCER_USERS`);
    /// unset (the local default, one shared user) means consumers cannot
    /// tell producers apart and check envelopes only.
    pub amqp_producer_users: Option<ProducerUsers>,
    /// Prefix for exchange and queue names (`POPUG_NAMESPACE`).
    pub namespace: Option<String>,
    /// Queues unused this long are deleted by the broker
    /// (`POPUG_QUEUE_TTL`, seconds; for test and demo namespaces only).
    pub queue_ttl: Option<std::time::Duration>,
    /// How long the broker keeps every event in the history stream that
    /// rebuilds a read model (`POPUG_EVENT_HISTORY_DAYS`, 0 for none; by
    /// default 400 days, and none in namespaces whose queues expire, since a
    /// stream cannot).
    pub event_history: Option<std::time::Duration>,
    /// Where token keys are fetched (`POPUG_AUTH_URL`).
    pub auth_url: url::Url,
    /// The company's time zone; a billing day is a day there (`POPUG_TIMEZONE`).
    pub timezone: crate::Timezone,
    /// SMTP server for emails; `None` writes them to the mail directory (`POPUG_SMTP_URL`).
    pub smtp_url: Option<url::Url>,
    /// Log line format (`POPUG_LOG_FORMAT`: `pretty` or `json`).
    pub log_format: LogFormat,
    /// Where the Prometheus `/metrics` endpoint listens
    /// (`POPUG_<SERVICE>_METRICS_ADDR`; by default a free local port, logged
    /// at start).
    pub metrics_addr: SocketAddr,
    /// OTLP/gRPC collector spans are exported to (`POPUG_OTLP_ENDPOINT`);
    /// unset means no export.
    pub otlp_endpoint: Option<url::Url>,
    /// Calls one client connection may have in flight before further ones
    /// are refused at once with `RESOURCE_EXHAUSTED`
    /// (`POPUG_MAX_CONCURRENT_REQUESTS`, 1 to 100,000, default 256).
    pub max_concurrent_requests: usize,
    /// The longest a call may take before it is cancelled
    /// (`POPUG_REQUEST_TIMEOUT`, seconds, 1 to 3,600, default 30).
    pub request_timeout: std::time::Duration,
    /// How long the inbox remembers an applied event's id, so that a late
    /// duplicate of it changes nothing (`POPUG_INBOX_RETENTION_DAYS`, 1 to
    /// 3,650, default 30). Rows whose event has an unresolved dead letter
    /// are kept whatever their age.
    pub inbox_retention: std::time::Duration,
    /// How long a dead letter is kept once resolved (replayed and applied)
    /// or discarded (`POPUG_DEAD_LETTER_RETENTION_DAYS`, 1 to 3,650, default
    /// 30). Unresolved ones are kept until someone decides.
    pub dead_letter_retention: std::time::Duration,
    /// Business time: the system clock, unless a simulation sets its own
    /// (never from the environment).
    pub clock: crate::Clock,
}

impl Settings {
    /// The service's database URL with its session limits: what its pool
    /// connects to.
    pub fn limited_database_url(&self) -> url::Url {
        self.database_limits.apply(&self.database_url)
    }

    /// Reads the settings of `service` from `env`.
    pub fn load(service: Service, env: &Env) -> Result<Self, SettingsError> {
        let infix = service.env_infix();
        let postgres_url = url_setting(
            env,
            "POPUG_POSTGRES_URL",
            "postgres://postgres@127.0.0.1:5432",
            &["postgres", "postgresql"],
        )?;
        let database_var = format!("POPUG_{infix}_DATABASE_URL");
        let database_url = if env.raw(&database_var).is_some() {
            url_setting(env, &database_var, "", &["postgres", "postgresql"])?
        } else {
            let mut derived = postgres_url;
            derived.set_path(service.database_name());
            derived
        };
        let millis = |name: &str, default: u64| {
            env.parse_within(name, default, 1..=86_400_000)
                .map(std::time::Duration::from_millis)
        };
        let database_limits = crate::database::SessionLimits {
            lock_timeout: millis("POPUG_DATABASE_LOCK_TIMEOUT", 5_000)?,
            statement_timeout: millis("POPUG_DATABASE_STATEMENT_TIMEOUT", 60_000)?,
            idle_in_transaction: millis("POPUG_DATABASE_IDLE_IN_TRANSACTION_TIMEOUT", 15_000)?,
        };
        let database_pool_size: u32 = env.parse_or("POPUG_DATABASE_POOL_SIZE", 16)?;
        if database_pool_size == 0 {
            return Err(env.invalid("POPUG_DATABASE_POOL_SIZE", "must be at least 1"));
        }
        let smtp_url = match env.raw("POPUG_SMTP_URL") {
            None | Some("") => None,
            Some(_) => Some(url_setting(env, "POPUG_SMTP_URL", "", &["smtp", "smtps"])?),
        };
        Ok(Self {
            service,
            addr: env.parse_or(&format!("POPUG_{infix}_ADDR"), service.default_addr())?,
            database_url,
            database_pool_size,
            database_limits,
            amqp_url: url_setting(
                env,
                "POPUG_AMQP_URL",
                "amqp://guest:guest@127.0.0.1:5672/%2f",
                &["amqp", "amqps"],
            )?,
            amqp_producer_users: match env.raw("POPUG_AMQP_PRODUCER_USERS") {
                None => None,
                Some(value) if value.trim().is_empty() => None,
                Some(_) => env.optional("POPUG_AMQP_PRODUCER_USERS")?,
            },
            namespace: namespace_setting(env)?,
            queue_ttl: env
                .optional::<u64>("POPUG_QUEUE_TTL")?
                .map(std::time::Duration::from_secs),
            event_history: {
                let default = if env.raw("POPUG_QUEUE_TTL").is_some() {
                    0
                } else {
                    400
                };
                match env.parse_within("POPUG_EVENT_HISTORY_DAYS", default, 0_u64..=36_500)? {
                    0 => None,
                    days => Some(std::time::Duration::from_secs(days * 86_400)),
                }
            },
            auth_url: url_setting(
                env,
                "POPUG_AUTH_URL",
                "http://127.0.0.1:50051",
                &["http", "https"],
            )?,
            timezone: env.parse_or("POPUG_TIMEZONE", crate::Timezone::UTC)?,
            smtp_url,
            log_format: env.parse_or("POPUG_LOG_FORMAT", LogFormat::Pretty)?,
            metrics_addr: env.parse_or(
                &format!("POPUG_{infix}_METRICS_ADDR"),
                SocketAddr::from(([127, 0, 0, 1], 0)),
            )?,
            otlp_endpoint: match env.raw("POPUG_OTLP_ENDPOINT") {
                None | Some("") => None,
                Some(_) => Some(url_setting(
                    env,
                    "POPUG_OTLP_ENDPOINT",
                    "",
                    &["http", "https"],
                )?),
            },
            max_concurrent_requests: env.parse_within(
                "POPUG_MAX_CONCURRENT_REQUESTS",
                256,
                1..=100_000,
            )?,
            request_timeout: std::time::Duration::from_secs(env.parse_within(
                "POPUG_REQUEST_TIMEOUT",
                30,
                1..=3_600,
            )?),
            inbox_retention: days(env, "POPUG_INBOX_RETENTION_DAYS")?,
            dead_letter_retention: days(env, "POPUG_DEAD_LETTER_RETENTION_DAYS")?,
            clock: crate::Clock::system(),
        })
    }
}

/// A retention period in whole days, 1 to 3,650, default 30.
fn days(env: &Env, name: &str) -> Result<std::time::Duration, SettingsError> {
    let days: u64 = env.parse_within(name, 30, 1..=3_650)?;
    Ok(std::time::Duration::from_secs(days * 86_400))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(pairs: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        Settings::load(Service::Billing, &Env::from_pairs(pairs.iter().copied()))
    }

    #[test]
    fn defaults_need_no_configuration() {
        let settings = load(&[]).expect("defaults are valid");
        assert_eq!(settings.addr, "127.0.0.1:50053".parse().expect("address"));
        assert_eq!(
            settings.database_url.as_str(),
            "postgres://postgres@127.0.0.1:5432/popug_billing"
        );
        assert_eq!(
            settings.amqp_url.as_str(),
            "amqp://guest:guest@127.0.0.1:5672/%2f"
        );
        assert_eq!(settings.namespace, None);
        assert_eq!(settings.timezone, crate::Timezone::UTC);
        assert_eq!(settings.smtp_url, None);
    }

    #[test]
    fn retention_periods_default_to_thirty_days_and_are_read_in_days() {
        let defaults = load(&[]).expect("defaults are valid");
        let day = std::time::Duration::from_secs(86_400);
        assert_eq!(defaults.inbox_retention, 30 * day);
        assert_eq!(defaults.dead_letter_retention, 30 * day);
        let set = load(&[
            ("POPUG_INBOX_RETENTION_DAYS", "90"),
            ("POPUG_DEAD_LETTER_RETENTION_DAYS", "7"),
        ])
        .expect("valid");
        assert_eq!(set.inbox_retention, 90 * day);
        assert_eq!(set.dead_letter_retention, 7 * day);
    }

    #[test]
    fn the_service_database_url_overrides_the_server_url() {
        let settings = load(&[
            ("POPUG_POSTGRES_URL", "postgres://pg.example:5433"),
            ("POPUG_BILLING_DATABASE_URL", "postgres://other/ledger"),
        ])
        .expect("valid");
        assert_eq!(settings.database_url.as_str(), "postgres://other/ledger");
        let derived = load(&[("POPUG_POSTGRES_URL", "postgres://pg.example:5433")]).expect("valid");
        assert_eq!(
            derived.database_url.as_str(),
            "postgres://pg.example:5433/popug_billing"
        );
    }

    #[test]
    fn bad_values_name_their_variable() {
        let cases = [
            ("POPUG_BILLING_ADDR", "localhost"),
            ("POPUG_POSTGRES_URL", "mysql://127.0.0.1"),
            ("POPUG_BILLING_DATABASE_URL", "not a url"),
            ("POPUG_AMQP_URL", "http://127.0.0.1:5672"),
            ("POPUG_NAMESPACE", "has spaces"),
            ("POPUG_AUTH_URL", "grpc:/x"),
            ("POPUG_TIMEZONE", "Mars/Olympus_Mons"),
            ("POPUG_SMTP_URL", "mail.example"),
            ("POPUG_LOG_FORMAT", "xml"),
            ("POPUG_DATABASE_POOL_SIZE", "0"),
            ("POPUG_DATABASE_POOL_SIZE", "many"),
            ("POPUG_QUEUE_TTL", "-1"),
            ("POPUG_BILLING_METRICS_ADDR", "9090"),
            ("POPUG_OTLP_ENDPOINT", "collector:4317"),
            ("POPUG_AMQP_PRODUCER_USERS", "auth"),
            ("POPUG_AMQP_PRODUCER_USERS", "auth=a,tracker=t"),
            (
                "POPUG_AMQP_PRODUCER_USERS",
                "auth=a,tracker=t,billing=b,analytics=x",
            ),
            ("POPUG_AMQP_PRODUCER_USERS", "auth=a,tracker=t,billing=a"),
            (
                "POPUG_AMQP_PRODUCER_USERS",
                "auth=a,tracker=t,billing=b,auth=c",
            ),
            ("POPUG_AMQP_PRODUCER_USERS", "auth=a,tracker=,billing=b"),
            ("POPUG_AMQP_PRODUCER_USERS", "auth=a,tracker=t u,billing=b"),
            ("POPUG_INBOX_RETENTION_DAYS", "0"),
            ("POPUG_INBOX_RETENTION_DAYS", "7d"),
            ("POPUG_DEAD_LETTER_RETENTION_DAYS", "9999"),
        ];
        for (variable, value) in cases {
            let error = load(&[(variable, value)]).expect_err(variable);
            assert_eq!(error.variable, variable);
            assert!(
                error
                    .to_string()
                    .starts_with(&format!("setting {variable}=")),
                "{error}"
            );
        }
    }

    #[test]
    fn producer_users_map_every_producer_to_its_own_user() {
        assert_eq!(load(&[]).expect("defaults").amqp_producer_users, None);
        assert_eq!(
            load(&[("POPUG_AMQP_PRODUCER_USERS", " ")])
                .expect("blank")
                .amqp_producer_users,
            None
        );
        let users = load(&[(
            "POPUG_AMQP_PRODUCER_USERS",
            "billing=popug-billing, auth=popug-auth,tracker=popug-tracker",
        )])
        .expect("valid")
        .amqp_producer_users
        .expect("set");
        assert_eq!(users.user_of("tracker"), Some("popug-tracker"));
        assert_eq!(users.user_of("analytics"), None);
        assert_eq!(users.producer_of("popug-billing"), Some("billing"));
        assert_eq!(users.producer_of("guest"), None);
        assert_eq!(
            users.to_string(),
            "auth=popug-auth,tracker=popug-tracker,billing=popug-billing"
        );
        let error = load(&[("POPUG_AMQP_PRODUCER_USERS", "auth=a,tracker=t")])
            .expect_err("billing is missing");
        assert!(error.reason.contains("missing billing"), "{error}");
        let error = load(&[("POPUG_AMQP_PRODUCER_USERS", "auth=a,tracker=t,billing=a")])
            .expect_err("shared");
        assert!(error.reason.contains("share the user `a`"), "{error}");
    }

    #[test]
    fn other_services_settings_are_ignored() {
        let settings =
            load(&[("POPUG_AUTH_ADDR", "nonsense")]).expect("auth's address is not billing's");
        assert_eq!(settings.service, Service::Billing);
    }
}
