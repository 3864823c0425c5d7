//! Names and declarations of popug's broker objects.
//!
//! One durable topic exchange, `popug.events`, carries every event. Each
//! consuming service owns one durable quorum queue, `<service>.events`, bound
//! to the routing keys it handles, and its own dead-letter queue,
//! `<service>.events.dlq`. A namespace prefixes every name so that tests and
//! environments can share one broker. Declaring is idempotent: every service
//! declares what it uses at start, in any order.

use lapin::{
    Channel, ExchangeKind,
    options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions},
    types::{AMQPValue, FieldTable, ShortString},
};

/// Names of the broker objects in one namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    namespace: Option<String>,
}

impl Topology {
    /// The names in `namespace` (none: the plain names of CONTRACT.md).
    pub fn new(namespace: Option<String>) -> Self {
        Self { namespace }
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
    /// Delete the queues after this long unused; for test namespaces only.
    pub expires: Option<std::time::Duration>,
}

impl QueueSpec {
    /// A production queue for `consumer` with popug's limits.
    pub fn new(consumer: impl Into<String>, bindings: Vec<String>) -> Self {
        Self {
            consumer: consumer.into(),
            bindings,
            delivery_limit: 20,
            max_length: 5_000_000,
            expires: None,
        }
    }
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
    channel
        .queue_declare(name(&dead_letter_queue), durable, quorum_arguments(spec))
        .await?;

    let mut arguments = quorum_arguments(spec);
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

fn quorum_arguments(spec: &QueueSpec) -> FieldTable {
    let mut arguments = FieldTable::default();
    arguments.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    if let Some(expires) = spec.expires {
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
