//! `popug events tail`: a live, decoded view of the events on the exchange,
//! one line per event: the time it occurred, its routing key, its producer
//! and its payload as JSON (`--json`: one JSON object per line).
//!
//! It reads the broker directly, with the local settings (`POPUG_AMQP_URL`,
//! `POPUG_NAMESPACE`), through a private queue of its own (exclusive,
//! deleted when it disconnects) bound to every routing key; so it sees
//! events published from the moment it starts and takes nothing from the
//! services' queues. A `--filter` is a glob on the routing key, where `*`
//! matches any run of characters, dots included (`task.*` matches
//! `task.created.v2`), as people expect; not AMQP's one-word `*`.

use anyhow::{Context as _, anyhow};
use futures::StreamExt as _;
use lapin::{
    options::{BasicConsumeOptions, QueueBindOptions, QueueDeclareOptions},
    types::FieldTable,
};
use popug_proto::pb::popug::events::v1::Envelope;
use prost::Message as _;
use prost_reflect::{DescriptorPool, DynamicMessage, SerializeOptions};
use serde_json::{Value, json};

#[derive(clap::Subcommand)]
pub(crate) enum EventsCommand {
    /// Prints each event as it is published: time, routing key, producer and
    /// payload as JSON (with --json, one JSON object per line).
    Tail {
        /// Only routing keys matching this glob, where `*` matches anything
        /// (`task.*`, `*.created.*`); may be given more than once.
        #[arg(long)]
        filter: Vec<String>,
        /// Stop after this many events.
        #[arg(long)]
        count: Option<u64>,
    },
}

/// Runs one `popug events` command.
pub(crate) async fn run(json: bool, command: EventsCommand) -> anyhow::Result<()> {
    match command {
        EventsCommand::Tail { filter, count } => {
            tail(Tail {
                filters: filter,
                count,
                json,
            })
            .await
        }
    }
}

/// What `events tail` was asked for.
struct Tail {
    /// Routing-key globs (`task.*`, `*.created.*`); every event when empty.
    pub(crate) filters: Vec<String>,
    /// Stop after this many events (for scripts and tests).
    pub(crate) count: Option<u64>,
    /// One JSON object per line.
    pub(crate) json: bool,
}

/// Decodes the events' payloads by their type URLs.
struct Decoder {
    pool: DescriptorPool,
}

impl Decoder {
    fn new() -> anyhow::Result<Self> {
        Ok(Self {
            pool: DescriptorPool::decode(popug_proto::FILE_DESCRIPTOR_SET)
                .context("the embedded descriptor set does not decode")?,
        })
    }

    /// One delivery as a JSON object; what cannot be decoded says why.
    fn decode(&self, routing_key: &str, body: &[u8]) -> Value {
        let envelope = match Envelope::decode(body) {
            Ok(envelope) => envelope,
            Err(error) => {
                return json!({
                    "routing_key": routing_key,
                    "error": format!("not an event envelope: {error}"),
                    "bytes": body.len(),
                });
            }
        };
        let occurred_at = envelope
            .occurred_at
            .and_then(|ts| {
                chrono::DateTime::from_timestamp(ts.seconds, u32::try_from(ts.nanos).ok()?)
            })
            .map(|time| time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
        let payload = match envelope.payload {
            None => Value::Null,
            Some(any) => self.payload(&any.type_url, &any.value),
        };
        json!({
            "occurred_at": occurred_at,
            "routing_key": routing_key,
            "producer": envelope.producer,
            "event_id": envelope.event_id,
            "event": format!("{}.v{}", envelope.event_name, envelope.event_version),
            "payload": payload,
        })
    }

    fn payload(&self, type_url: &str, bytes: &[u8]) -> Value {
        let name = type_url.rsplit('/').next().unwrap_or(type_url);
        let Some(descriptor) = self.pool.get_message_by_name(name) else {
            return json!({ "@type": type_url, "error": "unknown type" });
        };
        match DynamicMessage::decode(descriptor, bytes) {
            Ok(message) => {
                // Zero fields shown too: a payload reads the same whatever its values.
                let options = SerializeOptions::new().skip_default_fields(false);
                message
                    .serialize_with_options(serde_json::value::Serializer, &options)
                    .unwrap_or_else(
                        |error| json!({ "@type": type_url, "error": error.to_string() }),
                    )
            }
            Err(error) => json!({ "@type": type_url, "error": error.to_string() }),
        }
    }
}

/// Whether `key` matches the glob `pattern`: `*` (or `#`) stands for any
/// run of characters, everything else for itself.
fn matches(pattern: &str, key: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let key: Vec<char> = key.chars().collect();
    // Classic wildcard matching with one backtrack point.
    let (mut p, mut k) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while k < key.len() {
        match pattern.get(p) {
            Some('*' | '#') => {
                star = Some((p, k));
                p += 1;
            }
            Some(c) if *c == key[k] => {
                p += 1;
                k += 1;
            }
            _ => match star {
                Some((star_p, star_k)) => {
                    p = star_p + 1;
                    k = star_k + 1;
                    star = Some((star_p, star_k + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|c| matches!(c, '*' | '#'))
}

/// One event as a line for people: time, routing key, producer, payload.
fn line(event: &Value) -> String {
    let text = |key: &str| event[key].as_str().unwrap_or("-").to_owned();
    if let Some(error) = event["error"].as_str() {
        return format!("{:<24}  {:<26}  {error}", "-", text("routing_key"));
    }
    format!(
        "{:<24}  {:<26}  {:<8}  {}",
        text("occurred_at"),
        text("routing_key"),
        text("producer"),
        event["payload"]
    )
}

/// Follows the exchange until Ctrl-C (or `count` events).
async fn tail(tail: Tail) -> anyhow::Result<()> {
    let env = popug_runtime::Env::process();
    let settings = popug_runtime::Settings::load(popug_runtime::Service::Analytics, &env)?;
    let topology = popug_bus::Topology::from_settings(&settings);
    let shown = popug_runtime::database::redacted(&settings.amqp_url);
    let decoder = Decoder::new()?;
    let connection = lapin::Connection::connect(
        settings.amqp_url.as_str(),
        lapin::ConnectionProperties::default(),
    )
    .await
    .map_err(|error| crate::commands::broker_error(&shown, &error))?;
    let channel = connection.create_channel().await?;
    let exchange = topology.exchange();
    // Passive: tailing a namespace nothing has declared yet is a mistake to
    // name, not an exchange to create.
    channel
        .exchange_declare(
            exchange.as_str().into(),
            lapin::ExchangeKind::Topic,
            lapin::options::ExchangeDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .map_err(|_| {
            anyhow!(
                "there is no exchange `{exchange}` at {shown}: has `popug up` run with these settings (POPUG_NAMESPACE)?"
            )
        })?;
    let channel = connection.create_channel().await?;
    let queue = channel
        .queue_declare(
            "".into(),
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
    let filters = if tail.filters.is_empty() {
        vec!["*".to_owned()]
    } else {
        tail.filters.clone()
    };
    channel
        .queue_bind(
            queue.name().clone(),
            exchange.as_str().into(),
            "#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let mut deliveries = channel
        .basic_consume(
            queue.name().clone(),
            "popug-events-tail".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
    eprintln!(
        "following `{exchange}` at {shown} ({}); Ctrl-C stops",
        filters.join(", ")
    );
    let mut seen = 0;
    let stop = popug_runtime::shutdown::signal();
    tokio::pin!(stop);
    while tail.count.is_none_or(|count| seen < count) {
        let delivery = tokio::select! {
            delivery = deliveries.next() => delivery,
            () = &mut stop => break,
        };
        let Some(delivery) = delivery else { break };
        let delivery = delivery?;
        if !filters
            .iter()
            .any(|filter| matches(filter, delivery.routing_key.as_str()))
        {
            continue;
        }
        let event = decoder.decode(delivery.routing_key.as_str(), &delivery.data);
        #[allow(clippy::print_stdout)] // the events are this command's output
        {
            if tail.json {
                println!("{event}");
            } else {
                println!("{}", line(&event));
            }
        }
        seen += 1;
    }
    connection.close(200, "done".into()).await.ok();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn filters_are_globs_on_the_routing_key() {
        assert!(matches("task.*", "task.created.v2"));
        assert!(matches("*.created.*", "account.created.v1"));
        assert!(matches("#", "billing_cycle.closed.v1"));
        assert!(matches("task.completed.v1", "task.completed.v1"));
        assert!(!matches("task.*", "transaction.applied.v1"));
        assert!(!matches("account.created", "account.created.v1"));
        assert!(matches("*v1", "payment.sent.v1"));
    }
}
