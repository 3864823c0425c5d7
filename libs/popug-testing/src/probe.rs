//! A probe: a queue of the test's own in a service's namespace, bound to the
//! routing keys the test watches, so it sees what the service published.

use lapin::options::BasicGetOptions;
use popug_bus::{QueueSpec, Topology, topology};

/// One event taken from a probe.
#[derive(Debug)]
pub struct Probed {
    /// The routing key it was published with.
    pub routing_key: String,
    /// Its envelope's event type.
    pub event_type: String,
    /// Its payload (the encoded event).
    pub payload: Vec<u8>,
}

/// The queue `probe` in a namespace, and a channel that reads it (and may
/// publish, as a test does in another service's place).
pub struct Probe {
    channel: lapin::Channel,
    queue: String,
}

impl Probe {
    /// Declares `probe` in `topology`'s namespace, bound to `routing_keys`,
    /// on a connection of its own to `amqp_url` that lives as long as the
    /// test.
    pub async fn declare(amqp_url: &str, topology: &Topology, routing_keys: &[&str]) -> Self {
        let connection = lapin::Connection::connect(amqp_url, Default::default())
            .await
            .expect("the broker accepts connections");
        let channel = connection.create_channel().await.expect("channel");
        // The channel closes with its connection; both outlive the test.
        std::mem::forget(connection);
        let spec = QueueSpec::new(
            "probe",
            routing_keys.iter().map(|key| (*key).to_owned()).collect(),
        );
        topology::declare_queue(&channel, topology, &spec)
            .await
            .expect("probe queue");
        Self {
            channel,
            queue: topology.queue("probe"),
        }
    }

    /// Its channel.
    pub fn channel(&self) -> &lapin::Channel {
        &self.channel
    }

    /// Its queue's full name.
    pub fn queue(&self) -> &str {
        &self.queue
    }

    /// Everything waiting in the queue, in order, acknowledged as taken.
    pub async fn take(&self) -> Vec<Probed> {
        let mut events = Vec::new();
        while let Some(message) = self
            .channel
            .basic_get(self.queue.as_str().into(), BasicGetOptions { no_ack: true })
            .await
            .expect("get")
        {
            let opened = popug_bus::envelope::open(&message.delivery.data).expect("envelope");
            events.push(Probed {
                routing_key: message.delivery.routing_key.to_string(),
                event_type: opened.meta.event_type,
                payload: opened.payload,
            });
        }
        events
    }
}
