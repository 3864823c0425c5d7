//! `bench billing`: billing's apply rate, assignments charged through the
//! inbox in batches, on a fresh ledger per consumer worker count; with the
//! commits, rows and CPU time each event costs, against raw one-row commits.

use std::{collections::VecDeque, time::Instant};

use anyhow::Context as _;
use diesel_async::RunQueryDsl as _;
use lapin::{BasicProperties, options::BasicPublishOptions};
use popug_bus::{Broker, Topology};
use prost::Message as _;
use tokio_util::sync::CancellationToken;

use crate::{
    cpu,
    raw::{rate, raw_commit_rate},
    sandbox::Sandbox,
};

/// What one billing measurement saw.
struct BillingRun {
    workers: usize,
    rate: f64,
    cpu: cpu::Cpu,
    /// Committed transactions and rows written per event, from Postgres's
    /// own statistics.
    commits_per_event: f64,
    rows_per_event: f64,
}

/// Runs the benchmark.
pub(crate) async fn run(
    postgres: &url::Url,
    amqp: &url::Url,
    events: usize,
    workers: &[usize],
) -> anyhow::Result<()> {
    println!(
        "billing benchmark: {events} TaskAssigned events over {} tasks and 100 popugs, \
         with {workers:?} consumer workers",
        events / 4
    );
    let mut runs = Vec::new();
    let mut raw_commit = None;
    for &count in workers {
        let (run, raw) = billing_run(postgres, amqp, events, count, raw_commit.is_none()).await?;
        raw_commit = raw_commit.or(raw);
        runs.push(run);
    }
    let raw_commit = raw_commit.context("a raw measurement")?;
    println!();
    println!(
        "{:<44} {:>11} {:>9} {:>8} {:>7}  cpu ms/event (popug + postgres + rabbitmq)",
        "measurement", "per second", "vs raw", "commits", "rows"
    );
    println!(
        "{:<44} {:>11.0} {:>9}",
        "raw: one-row insert transactions, pool of 8", raw_commit, "1.00"
    );
    for run in &runs {
        println!(
            "{:<44} {:>11.0} {:>9.2} {:>8.3} {:>7.2}  {}",
            format!("popug: billing, {} worker(s)", run.workers),
            run.rate,
            run.rate / raw_commit,
            run.commits_per_event,
            run.rows_per_event,
            run.cpu.per(events),
        );
    }
    println!();
    println!("invariants checked after every run: clean; commits and rows are per event");
    Ok(())
}

/// One measurement on a fresh ledger and namespace; the raw commit rate of
/// the same database too when `measure_raw`.
async fn billing_run(
    postgres: &url::Url,
    amqp: &url::Url,
    events: usize,
    consumer_workers: usize,
    measure_raw: bool,
) -> anyhow::Result<(BillingRun, Option<f64>)> {
    use popug_proto::pb::popug::events::tasks::v1 as tasks_v1;
    let Sandbox {
        database,
        namespace,
    } = Sandbox::new(postgres);
    let amqp_url = amqp.to_string();
    let workers_setting = consumer_workers.to_string();
    let settings = billing_svc::BillingSettings::load(&popug_runtime::Env::from_pairs([
        ("POPUG_BILLING_DATABASE_URL", database.as_str()),
        ("POPUG_NAMESPACE", namespace.as_str()),
        ("POPUG_QUEUE_TTL", "300"),
        ("POPUG_AMQP_URL", amqp_url.as_str()),
        ("POPUG_BILLING_ADDR", "127.0.0.1:0"),
        ("POPUG_BILLING_AUTO_CLOSE", "false"),
        ("POPUG_BILLING_CONSUMER_WORKERS", workers_setting.as_str()),
    ]))?;
    let topology = Topology::from_settings(&settings.common);
    let mut app = billing_svc::Application::build(settings).await?;
    let consumer = app.take_consumer().context("consumer")?;
    consumer.declare().await?;
    let pool = app.ledger().pool().clone();
    // The tracker's events, published up front (not timed): each task is
    // assigned four times, so most events find the task already priced.
    let workers: Vec<uuid::Uuid> = (0..100).map(|_| uuid::Uuid::new_v4()).collect();
    let tasks: Vec<uuid::Uuid> = (0..events / 4).map(|_| uuid::Uuid::new_v4()).collect();
    let broker = Broker::new(amqp.clone(), topology.clone(), "bench");
    let (connection, channel) = broker.confirm_channel().await?;
    let mut sample = Vec::new();
    let mut confirms = VecDeque::new();
    for round in 0..4 {
        for (i, task) in tasks.iter().enumerate() {
            let event = tasks_v1::TaskAssigned {
                task_id: task.to_string(),
                assignee_id: workers[(i + round) % workers.len()].to_string(),
                previous_assignee_id: if round == 0 {
                    String::new()
                } else {
                    workers[(i + round - 1) % workers.len()].to_string()
                },
                reason: if round == 0 {
                    tasks_v1::AssignmentReason::Created
                } else {
                    tasks_v1::AssignmentReason::Shuffled
                }
                .into(),
            };
            let body =
                popug_bus::envelope::wrap(&event, "tracker", chrono::Utc::now()).encode_to_vec();
            if confirms.len() == 1_000 {
                let confirm: lapin::PublisherConfirm = confirms.pop_front().context("window")?;
                confirm.await?;
            }
            confirms.push_back(
                channel
                    .basic_publish(
                        topology.exchange().into(),
                        <tasks_v1::TaskAssigned as popug_proto::events::Event>::ROUTING_KEY.into(),
                        BasicPublishOptions::default(),
                        &body,
                        BasicProperties::default().with_delivery_mode(2),
                    )
                    .await?,
            );
            sample = body;
        }
    }
    for confirm in confirms {
        confirm.await?;
    }

    let stats_before = database_stats(&pool).await?;
    let token = CancellationToken::new();
    let cpu_before = cpu::Cpu::now();
    let started = Instant::now();
    let running = tokio::spawn(consumer.run(token.clone()));
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        let mut conn = pool.get().await?;
        let applied: i64 = diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
            "(SELECT count(*) FROM transactions)",
        ))
        .get_result(&mut conn)
        .await?;
        if usize::try_from(applied)? >= events {
            break;
        }
    }
    let rate = rate(events, started);
    let cpu = cpu::Cpu::now().since(cpu_before);
    token.cancel();
    running.await?;
    let mut conn = pool.get().await?;
    let violations = billing_svc::invariants::violations(&mut conn).await?;
    anyhow::ensure!(violations.is_empty(), "invariants broken: {violations:?}");
    drop(conn);
    // Postgres's statistics are flushed when the consumer's sessions end.
    drop(app);
    drop(pool);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let pool = popug_runtime::database::connect(&url::Url::parse(&database)?, 8, &[]).await?;
    let stats = database_stats(&pool).await?.since(stats_before);

    let raw_commit = if measure_raw {
        Some(raw_commit_rate(&pool, &sample, 5_000).await?)
    } else {
        None
    };
    Sandbox::delete_queues(&channel, &topology).await;
    connection.close(200, "done".into()).await.ok();
    drop(pool);
    popug::mesh::drop_databases(&[url::Url::parse(&database)?]).await?;
    let per_event = |count: i64| count as f64 / events as f64;
    Ok((
        BillingRun {
            workers: consumer_workers,
            rate,
            cpu,
            commits_per_event: per_event(stats.commits),
            rows_per_event: per_event(stats.rows),
        },
        raw_commit,
    ))
}

/// Committed transactions and rows written in the current database.
#[derive(Debug, Clone, Copy, diesel::QueryableByName)]
struct DatabaseStats {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    commits: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    rows: i64,
}

impl DatabaseStats {
    /// What happened between `earlier` and `self`.
    fn since(self, earlier: Self) -> Self {
        Self {
            commits: self.commits - earlier.commits,
            rows: self.rows - earlier.rows,
        }
    }
}

/// The current database's statistics now.
async fn database_stats(pool: &popug_runtime::database::Pool) -> anyhow::Result<DatabaseStats> {
    let mut conn = pool.get().await?;
    Ok(diesel::sql_query(
        "SELECT xact_commit AS commits, tup_inserted + tup_updated + tup_deleted AS rows \
         FROM pg_stat_database WHERE datname = current_database()",
    )
    .get_result(&mut conn)
    .await?)
}
