//! The raw limits of this machine that popug's figures are set against:
//! lapin publishing with pipelined confirms, and one-row insert
//! transactions; and [`rate`], how every figure is counted.

use std::{collections::VecDeque, time::Instant};

use anyhow::Context as _;
use diesel_async::{AsyncConnection as _, RunQueryDsl as _};
use lapin::{BasicProperties, options::BasicPublishOptions};
use popug_bus::Broker;

/// Raw limit: lapin publishing `count` persistent copies of `sample` with
/// `window` confirms in flight, with `routing_key`: the same queues (and so
/// the same fan-out) as popug's own events of that key, plus the queues of
/// `also_bound`. Those queues are purged afterwards.
pub(crate) async fn raw_publish_rate(
    broker: &Broker,
    sample: &[u8],
    count: usize,
    window: usize,
    routing_key: &str,
    also_bound: &[&str],
) -> anyhow::Result<f64> {
    let topology = broker.topology();
    let (connection, channel) = broker.confirm_channel().await?;
    let started = Instant::now();
    let mut in_flight = VecDeque::with_capacity(window);
    for _ in 0..count {
        if in_flight.len() == window {
            let confirm: lapin::PublisherConfirm = in_flight.pop_front().context("window")?;
            confirm.await?;
        }
        let confirm = channel
            .basic_publish(
                topology.exchange().into(),
                routing_key.into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..BasicPublishOptions::default()
                },
                sample,
                BasicProperties::default().with_delivery_mode(2),
            )
            .await?;
        in_flight.push_back(confirm);
    }
    for confirm in in_flight {
        confirm.await?;
    }
    let rate = rate(count, started);
    let bound: Vec<&str> = popug_proto::events::catalog()
        .iter()
        .filter(|info| info.routing_key == routing_key)
        .flat_map(|info| info.consumers.iter().copied())
        .chain(also_bound.iter().copied())
        .collect();
    for consumer in bound {
        channel
            .queue_purge(topology.queue(consumer).into(), Default::default())
            .await?;
    }
    connection.close(200, "done".into()).await.ok();
    Ok(rate)
}

/// Raw limit: `count` one-row insert transactions of `sample`, 8 at once,
/// through `pool` (one event applied per transaction, with nothing else).
pub(crate) async fn raw_commit_rate(
    pool: &popug_runtime::database::Pool,
    sample: &[u8],
    count: usize,
) -> anyhow::Result<f64> {
    let mut conn = pool.get().await?;
    diesel::sql_query(
        "CREATE TABLE IF NOT EXISTS raw_commits (id UUID PRIMARY KEY, body BYTEA NOT NULL)",
    )
    .execute(&mut conn)
    .await?;
    drop(conn);
    let started = Instant::now();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let pool = pool.clone();
            let sample = sample.to_vec();
            tokio::spawn(async move {
                for _ in 0..count / 8 {
                    let mut conn = pool.get().await?;
                    conn.transaction::<_, diesel::result::Error, _>(async |conn| {
                        diesel::sql_query("INSERT INTO raw_commits (id, body) VALUES ($1, $2)")
                            .bind::<diesel::sql_types::Uuid, _>(uuid::Uuid::new_v4())
                            .bind::<diesel::sql_types::Bytea, _>(&sample)
                            .execute(conn)
                            .await
                    })
                    .await?;
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    Ok(rate(count / 8 * 8, started))
}

/// Operations per second: `count` since `started`.
pub(crate) fn rate(count: usize, started: Instant) -> f64 {
    count as f64 / started.elapsed().as_secs_f64()
}
