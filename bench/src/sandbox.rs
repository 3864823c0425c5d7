//! A benchmark's own database and broker namespace, fresh for each run, so
//! runs never meet each other or a running popug.

use popug_bus::Topology;

/// Where one benchmark run keeps its data.
pub(crate) struct Sandbox {
    /// A database of its own on the benchmark's Postgres server.
    pub(crate) database: String,
    /// A broker namespace of its own.
    pub(crate) namespace: String,
}

impl Sandbox {
    /// A fresh database name on `postgres` and a fresh namespace.
    pub(crate) fn new(postgres: &url::Url) -> Self {
        let id = uuid::Uuid::new_v4().simple().to_string();
        Self {
            database: format!(
                "{}/popug_bench_{id}",
                postgres.as_str().trim_end_matches('/')
            ),
            namespace: format!("bench-{}", &id[..12]),
        }
    }

    /// Deletes the services' queues and dead-letter queues of `topology`,
    /// where a run's events landed.
    pub(crate) async fn delete_queues(channel: &lapin::Channel, topology: &Topology) {
        for consumer in ["tracker", "billing", "analytics"] {
            for queue in [
                topology.queue(consumer),
                topology.dead_letter_queue(consumer),
            ] {
                channel
                    .queue_delete(queue.as_str().into(), Default::default())
                    .await
                    .ok();
            }
        }
    }
}
