//! The faults, one at a time, each with its recovery: what an operator's
//! worst day holds.

use std::{fmt, time::Duration};

use anyhow::Context as _;
use futures::StreamExt as _;
use lapin::{
    BasicProperties, Connection, ConnectionProperties,
    options::{
        BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions,
        QueueBindOptions, QueueDeclareOptions,
    },
    types::FieldTable,
};
use popug::client::rpc_error;
use popug_proto::pb::popug::ops::v1 as ops;
use popug_runtime::Service;

use crate::cluster::Cluster;

/// One fault of the suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// `kill -9` of a service mid-stream, restarted two seconds later.
    Kill(Service),
    /// The broker closes every client connection.
    CloseConnections,
    /// The broker stops (its application; the node keeps its data) and
    /// starts again.
    StopBroker,
    /// Postgres stops (fast: open transactions rolled back, connections
    /// closed) and starts again.
    RestartPostgres,
    /// Every message of the phase is published a second time.
    Duplicates,
    /// A message that is not an event, on every consumed routing key.
    Poison,
    /// A service is paused (SIGSTOP), then resumed.
    Pause(Service),
    /// A second billing replica joins; the first is killed mid-stream and
    /// restarted; the second leaves.
    BillingReplicas,
    /// The company's midnight falls while Postgres is down (a cluster of
    /// its own, its time zone chosen for that).
    MidnightWithoutPostgres,
    /// The company's midnight falls while the broker is down.
    MidnightWithoutBroker,
}

impl Fault {
    /// Every fault, in the order the suite injects them.
    pub fn all() -> Vec<Fault> {
        let mut faults: Vec<Fault> = Service::ALL.into_iter().map(Fault::Kill).collect();
        faults.extend([
            Fault::CloseConnections,
            Fault::StopBroker,
            Fault::RestartPostgres,
            Fault::Duplicates,
            Fault::Poison,
            Fault::Pause(Service::Billing),
            Fault::BillingReplicas,
            Fault::MidnightWithoutPostgres,
            Fault::MidnightWithoutBroker,
        ]);
        faults
    }

    /// Whether it needs a cluster of its own whose midnight falls inside
    /// the run.
    pub fn at_midnight(self) -> bool {
        matches!(
            self,
            Fault::MidnightWithoutPostgres | Fault::MidnightWithoutBroker
        )
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Kill(service) => write!(f, "kill-{service}"),
            Fault::CloseConnections => f.write_str("broker-connections-closed"),
            Fault::StopBroker => f.write_str("broker-stopped"),
            Fault::RestartPostgres => f.write_str("postgres-restarted"),
            Fault::Duplicates => f.write_str("every-message-twice"),
            Fault::Poison => f.write_str("poison-messages"),
            Fault::Pause(service) => write!(f, "pause-{service}"),
            Fault::BillingReplicas => f.write_str("billing-replica-killed"),
            Fault::MidnightWithoutPostgres => f.write_str("midnight-without-postgres"),
            Fault::MidnightWithoutBroker => f.write_str("midnight-without-broker"),
        }
    }
}

/// How long the faults last.
#[derive(Debug, Clone, Copy)]
pub struct Durations {
    /// The broker's and Postgres' outages.
    pub outage: Duration,
    /// A paused service's pause.
    pub pause: Duration,
    /// The workload before and after each fault.
    pub workload: Duration,
}

/// A poison message's body: no envelope, nothing a consumer can read.
const POISON: &[u8] = b"\xff\xfe not an event";

/// The exchange every event goes through (no namespace in a private broker).
fn exchange() -> String {
    popug_bus::Topology::new(None).exchange()
}

/// A fault under way: the state its recovery or its check needs.
pub enum Injected {
    /// Nothing to remember.
    Done,
    /// Poison published: this many dead letters are expected, per service.
    Poison(Vec<(Service, usize)>),
}

/// Injects `fault` into `cluster` while the workload runs (after a while
/// of it), and recovers from it.
pub async fn inject(
    cluster: &mut Cluster,
    fault: Fault,
    durations: Durations,
) -> anyhow::Result<Injected> {
    let during = durations.workload;
    match fault {
        Fault::Kill(service) => {
            tokio::time::sleep(during).await;
            let process = cluster.process(service.name())?;
            process.kill().await?;
            tokio::time::sleep(Duration::from_secs(2)).await;
            process.start().await?;
        }
        Fault::CloseConnections => {
            tokio::time::sleep(during).await;
            cluster.broker.ctl(&[
                "close_all_connections",
                "the fault suite closes every connection",
            ])?;
        }
        Fault::StopBroker => {
            tokio::time::sleep(during).await;
            cluster.broker.stop_app()?;
            tokio::time::sleep(durations.outage).await;
            cluster.broker.start_app()?;
        }
        Fault::RestartPostgres => {
            tokio::time::sleep(during).await;
            cluster.postgres.stop()?;
            tokio::time::sleep(durations.outage.min(Duration::from_secs(5))).await;
            cluster.postgres.resume()?;
        }
        Fault::Duplicates => publish_twice(cluster, during).await?,
        Fault::Poison => {
            tokio::time::sleep(during).await;
            return Ok(Injected::Poison(poison(cluster).await?));
        }
        Fault::Pause(service) => {
            tokio::time::sleep(during).await;
            let process = cluster.process(service.name())?;
            process.signal("STOP")?;
            tokio::time::sleep(durations.pause).await;
            process.signal("CONT")?;
            process.await_serving(Duration::from_secs(60)).await?;
        }
        Fault::BillingReplicas => {
            cluster.add_billing_replica().await?;
            tokio::time::sleep(during).await;
            let first = cluster.process("billing")?;
            first.kill().await?;
            tokio::time::sleep(during).await;
            first.start().await?;
            tokio::time::sleep(during).await;
            cluster.remove_billing_replica().await?;
        }
        Fault::MidnightWithoutPostgres | Fault::MidnightWithoutBroker => {
            anyhow::bail!("{fault} runs on a cluster of its own (see crate::midnight)")
        }
    }
    Ok(Injected::Done)
}

/// Taps every message published for `during`, then publishes each again
/// exactly as it was (same id, routing key, properties and body).
async fn publish_twice(cluster: &Cluster, during: Duration) -> anyhow::Result<()> {
    let connection =
        Connection::connect(&cluster.broker.url(), ConnectionProperties::default()).await?;
    let channel = connection.create_channel().await?;
    let tap = "fault-suite.tap";
    channel
        .queue_declare(
            tap.into(),
            QueueDeclareOptions {
                exclusive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await?;
    channel
        .queue_bind(
            tap.into(),
            exchange().as_str().into(),
            "#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    tokio::time::sleep(during).await;
    // Unbound first: the copies must not come back to the tap.
    channel
        .queue_unbind(
            tap.into(),
            exchange().as_str().into(),
            "#".into(),
            FieldTable::default(),
        )
        .await?;
    let mut consumer = channel
        .basic_consume(
            tap.into(),
            "fault-suite".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let publisher = connection.create_channel().await?;
    publisher
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let mut copied = 0_usize;
    while let Ok(Some(delivery)) =
        tokio::time::timeout(Duration::from_secs(2), consumer.next()).await
    {
        let delivery = delivery?;
        publisher
            .basic_publish(
                exchange().as_str().into(),
                delivery.routing_key.as_str().into(),
                BasicPublishOptions::default(),
                &delivery.data,
                delivery.properties.clone(),
            )
            .await?
            .await?;
        delivery.ack(BasicAckOptions::default()).await?;
        copied += 1;
    }
    anyhow::ensure!(copied > 0, "the workload published nothing to duplicate");
    crate::suite::progress(format_args!(
        "every-message-twice: published {copied} messages a second time"
    ));
    connection.close(200, "done".into()).await.ok();
    Ok(())
}

/// Publishes one poison message on every routing key of the catalog; the
/// dead letters each consumer should hold.
async fn poison(cluster: &Cluster) -> anyhow::Result<Vec<(Service, usize)>> {
    let connection =
        Connection::connect(&cluster.broker.url(), ConnectionProperties::default()).await?;
    let channel = connection.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let mut expected: Vec<(Service, usize)> = Vec::new();
    for info in popug_proto::events::catalog() {
        channel
            .basic_publish(
                exchange().as_str().into(),
                info.routing_key.into(),
                BasicPublishOptions::default(),
                POISON,
                BasicProperties::default().with_message_id(uuid::Uuid::new_v4().to_string().into()),
            )
            .await?
            .await?;
        for consumer in info.consumers {
            let service = Service::ALL
                .into_iter()
                .find(|service| service.name() == *consumer)
                .with_context(|| format!("no service named {consumer}"))?;
            match expected.iter_mut().find(|(known, _)| *known == service) {
                Some((_, count)) => *count += 1,
                None => expected.push((service, 1)),
            }
        }
    }
    connection.close(200, "done".into()).await.ok();
    crate::suite::progress(format_args!(
        "poison-messages: one on each of {} routing keys, {} dead letters expected",
        popug_proto::events::catalog().len(),
        expected.iter().map(|(_, count)| count).sum::<usize>()
    ));
    Ok(expected)
}

/// Once every poison message is a dead letter (and nothing else is),
/// discards them with a reason, as an operator would; `Ok(false)` while
/// some are still on their way.
pub async fn clear_poison(
    cluster: &Cluster,
    expected: &[(Service, usize)],
) -> anyhow::Result<bool> {
    let (channels, admin) = cluster.admin().await?;
    let mut found = Vec::new();
    for (service, count) in expected {
        let letters = channels
            .ops(*service, &admin)
            .list_dead_letters(ops::ListDeadLettersRequest {
                page_size: 100,
                ..ops::ListDeadLettersRequest::default()
            })
            .await
            .map_err(rpc_error)?
            .into_inner()
            .dead_letters;
        let real: Vec<&ops::DeadLetter> = letters
            .iter()
            .filter(|letter| !letter.event_id.is_empty())
            .collect();
        anyhow::ensure!(
            real.is_empty(),
            "{service} dead-lettered real events, not only the poison: {:?}",
            real.iter()
                .map(|letter| (&letter.event_type, &letter.error))
                .collect::<Vec<_>>()
        );
        if letters.len() < *count {
            return Ok(false);
        }
        anyhow::ensure!(
            letters.len() == *count,
            "{service} holds {} dead letters, {count} poison messages were sent its way",
            letters.len()
        );
        found.push((
            *service,
            letters.iter().map(|letter| letter.id).collect::<Vec<_>>(),
        ));
    }
    for (service, ids) in found {
        channels
            .ops(service, &admin)
            .discard_dead_letters(ops::DiscardDeadLettersRequest {
                ids,
                reason: "poison injected by the fault suite".into(),
            })
            .await
            .map_err(rpc_error)?;
    }
    Ok(true)
}
