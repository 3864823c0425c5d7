//! Names and declarations of popug's broker objects.
//!
//! One durable topic exchange, `popug.events`, carries every event. Each
//! consuming service owns one durable quorum queue, `<service>.events`, bound
//! to the routing keys it handles, and its own dead-letter queue,
//! `<service>.events.dlq`. A namespace prefixes every name so that tests and
//! environments can share one broker. Declaring is idempotent: every service
//! declares what it uses at start, in any order.
//!
//! When history is kept, a stream, `popug.events.history`, bound to every
//! routing key, keeps each event for a configured age: a read model that
//! lost its database (analytics) rebuilds itself from it
//! ([`crate::Consumer::replay_history`]).

use lapin::{
    Channel, ExchangeKind,
    options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions},
    types::{AMQPValue, FieldTable, ShortString},
};

/// Names of the broker objects in one namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    namespace: Option<String>,
    /// Queues are deleted after this long unused; test namespaces only.
    queue_expiry: Option<std::time::Duration>,
    /// How long the history stream keeps events; `None`: no history.
    history: Option<std::time::Duration>,
}

impl Topology {
    /// The names in `namespace` (none: the plain names the contract fixes).
    pub fn new(namespace: Option<String>) -> Self {
        Self {
            namespace,
            queue_expiry: None,
            history: None,
        }
    }

    /// The names and queue expiry `settings` ask for.
    pub fn from_settings(settings: &popug_runtime::Settings) -> Self {
        Self {
            namespace: settings.namespace.clone(),
            queue_expiry: settings.queue_ttl,
            history: settings.event_history,
        }
    }

    /// Every event is kept for `age` in the history stream.
    #[must_use]
    pub fn with_history(mut self, age: std::time::Duration) -> Self {
        self.history = Some(age);
        self
    }

    /// How long the history stream keeps events; `None` when none is kept.
    pub fn history_age(&self) -> Option<std::time::Duration> {
        self.history
    }

    /// Queues of this namespace vanish after `expiry` unused (for tests, so
    /// their namespaces clean up after themselves).
    #[must_use]
    pub fn with_queue_expiry(mut self, expiry: std::time::Duration) -> Self {
        self.queue_expiry = Some(expiry);
        self
    }

    /// How long a live queue of this namespace may stay unused before the
    /// broker deletes it, if ever. Dead-letter queues never expire (see
    /// [`declare_queue`]).
    pub fn queue_expiry(&self) -> Option<std::time::Duration> {
        self.queue_expiry
    }

    fn prefixed(&self, name: &str) -> String {
        match &self.namespace {
            Some(namespace) => format!("{namespace}.{name}"),
            None => name.to_owned(),
        }
    }

    /// The topic exchange every event is published to.
    pub fn exchange(&self) -> String {
        self.prefixed("popug.events")
    }

    /// The live queue of `consumer`.
    pub fn queue(&self, consumer: &str) -> String {
        self.prefixed(&format!("{consumer}.events"))
    }

    /// The stream that keeps every event, when history is kept.
    pub fn history_stream(&self) -> String {
        self.prefixed("popug.events.history")
    }

    /// The dead-letter queue of `consumer`.
    pub fn dead_letter_queue(&self, consumer: &str) -> String {
        self.prefixed(&format!("{consumer}.events.dlq"))
    }
}

/// How a consumer's queue is declared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueSpec {
    /// The consuming service, e.g. `billing`.
    pub consumer: String,
    /// Routing keys bound to the queue.
    pub bindings: Vec<String>,
    /// Deliveries after which the broker dead-letters a message by itself; a
    /// safety net above the consumer's own retry limit (RabbitMQ 3.10 has no default).
    pub delivery_limit: u32,
    /// Messages the queue holds before it rejects publishes (back-pressure to
    /// the relay instead of dropping: `overflow = reject-publish`).
    pub max_length: u32,
}

impl QueueSpec {
    /// A queue for `consumer` with popug's limits.
    pub fn new(consumer: impl Into<String>, bindings: Vec<String>) -> Self {
        Self {
            consumer: consumer.into(),
            bindings,
            delivery_limit: 20,
            max_length: 5_000_000,
        }
    }
}

/// Declares the exchange and the queue of every consumer in the event
/// catalog, bound to the events it consumes. Producers call this before they
/// publish, so the mandatory flag's "some queue took it" means "every
/// consumer's queue took it", and events wait for a consumer not yet running.
pub async fn declare_catalog(channel: &Channel, topology: &Topology) -> lapin::Result<()> {
    let catalog = popug_proto::events::catalog();
    let consumers = consumers();
    declare_exchange(channel, topology).await?;
    for consumer in consumers {
        let bindings = catalog
            .iter()
            .filter(|info| info.consumers.contains(&consumer))
            .map(|info| info.routing_key.to_owned())
            .collect();
        declare_queue(channel, topology, &QueueSpec::new(consumer, bindings)).await?;
    }
    if let Some(age) = topology.history {
        declare_history(channel, topology, age).await?;
    }
    Ok(())
}

/// Declares the history stream, bound to every routing key, keeping events
/// for `age` (whole days).
pub(crate) async fn declare_history(
    channel: &Channel,
    topology: &Topology,
    age: std::time::Duration,
) -> lapin::Result<()> {
    let stream = topology.history_stream();
    let mut arguments = FieldTable::default();
    arguments.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("stream".into()),
    );
    arguments.insert(
        "x-max-age".into(),
        AMQPValue::LongString(format!("{}D", (age.as_secs() / 86_400).max(1)).into()),
    );
    channel
        .queue_declare(
            name(&stream),
            QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            },
            arguments,
        )
        .await?;
    channel
        .queue_bind(
            name(&stream),
            name(&topology.exchange()),
            name("#"),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
}

/// Every consuming service of the event catalog, e.g. `billing`.
pub fn consumers() -> Vec<&'static str> {
    let mut consumers: Vec<&str> = popug_proto::events::catalog()
        .iter()
        .flat_map(|info| info.consumers.iter().copied())
        .collect();
    consumers.sort_unstable();
    consumers.dedup();
    consumers
}

/// Every broker object of `topology`'s namespace: each consumer's live and
/// dead-letter queue and the history stream, then the exchange.
pub fn objects(topology: &Topology) -> (Vec<String>, String) {
    let queues = consumers()
        .into_iter()
        .flat_map(|consumer| {
            [
                topology.queue(consumer),
                topology.dead_letter_queue(consumer),
            ]
        })
        .chain(std::iter::once(topology.history_stream()))
        .collect();
    (queues, topology.exchange())
}

/// Deletes every broker object of `topology`'s namespace, with the messages
/// they hold (`popug reset`); objects already gone are no error. Returns how
/// many messages each deleted queue held.
pub async fn delete_all(
    channel: &Channel,
    topology: &Topology,
) -> lapin::Result<Vec<(String, u32)>> {
    let (queues, exchange) = objects(topology);
    let mut deleted = Vec::new();
    for queue in queues {
        let held = channel
            .queue_delete(name(&queue), lapin::options::QueueDeleteOptions::default())
            .await?;
        deleted.push((queue, held));
    }
    channel
        .exchange_delete(
            name(&exchange),
            lapin::options::ExchangeDeleteOptions::default(),
        )
        .await?;
    Ok(deleted)
}

fn name(value: &str) -> ShortString {
    value.into()
}

/// Declares the durable topic exchange.
pub async fn declare_exchange(channel: &Channel, topology: &Topology) -> lapin::Result<()> {
    channel
        .exchange_declare(
            name(&topology.exchange()),
            ExchangeKind::Topic,
            ExchangeDeclareOptions {
                durable: true,
                ..ExchangeDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
}

/// Declares the exchange, `spec`'s dead-letter queue, its live quorum queue
/// and the queue's bindings.
pub async fn declare_queue(
    channel: &Channel,
    topology: &Topology,
    spec: &QueueSpec,
) -> lapin::Result<()> {
    declare_exchange(channel, topology).await?;
    let durable = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    let dead_letter_queue = topology.dead_letter_queue(&spec.consumer);
    // Never an expiry on a dead-letter queue: nobody consumes it (the ops
    // API reads it), and a quorum queue without a consumer expires even while
    // it is redeclared or read with `basic.get` (checked on RabbitMQ 3.10.8),
    // so a TTL would delete it, its dead letters with it, under a running
    // service. A throwaway namespace deletes its queues when it is done
    // (`popug simulate`, `popug reset`; `.ci/run` for test namespaces).
    channel
        .queue_declare(name(&dead_letter_queue), durable, quorum_arguments(None))
        .await?;

    let mut arguments = quorum_arguments(topology.queue_expiry);
    let live = [
        (
            "x-delivery-limit",
            AMQPValue::LongLongInt(i64::from(spec.delivery_limit)),
        ),
        // At-least-once dead-lettering needs reject-publish overflow; with it
        // a message is removed from this queue only once the DLQ confirmed it.
        (
            "x-dead-letter-strategy",
            AMQPValue::LongString("at-least-once".into()),
        ),
        ("x-overflow", AMQPValue::LongString("reject-publish".into())),
        ("x-dead-letter-exchange", AMQPValue::LongString("".into())),
        (
            "x-dead-letter-routing-key",
            AMQPValue::LongString(dead_letter_queue.into()),
        ),
        (
            "x-max-length",
            AMQPValue::LongLongInt(i64::from(spec.max_length)),
        ),
    ];
    for (key, value) in live {
        arguments.insert(key.into(), value);
    }
    let queue = topology.queue(&spec.consumer);
    channel
        .queue_declare(name(&queue), durable, arguments)
        .await?;
    for routing_key in &spec.bindings {
        channel
            .queue_bind(
                name(&queue),
                name(&topology.exchange()),
                name(routing_key),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
    }
    Ok(())
}

fn quorum_arguments(expiry: Option<std::time::Duration>) -> FieldTable {
    let mut arguments = FieldTable::default();
    arguments.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    if let Some(expires) = expiry {
        let millis = i64::try_from(expires.as_millis()).unwrap_or(i64::MAX);
        arguments.insert("x-expires".into(), AMQPValue::LongLongInt(millis));
    }
    arguments
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_contract() {
        let plain = Topology::new(None);
        assert_eq!(plain.exchange(), "popug.events");
        assert_eq!(plain.queue("billing"), "billing.events");
        assert_eq!(plain.dead_letter_queue("billing"), "billing.events.dlq");
        let namespaced = Topology::new(Some("staging".into()));
        assert_eq!(namespaced.exchange(), "staging.popug.events");
        assert_eq!(namespaced.queue("billing"), "staging.billing.events");
    }
}
