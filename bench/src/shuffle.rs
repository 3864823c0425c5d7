//! `bench shuffle`: the tracker's shuffle of many open tasks against one
//! `UPDATE` of every open task, and the relay publishing its events against
//! raw publishing of the same envelope size.

use std::time::Instant;

use anyhow::Context as _;
use diesel_async::RunQueryDsl as _;
use popug_bus::{Broker, Step, Topology};
use prost::Message as _;

use crate::{
    bus::publish_all,
    raw::{rate, raw_publish_rate},
    sandbox::Sandbox,
};

/// Runs the benchmark.
pub(crate) async fn run(
    postgres: &url::Url,
    amqp: &url::Url,
    tasks: usize,
    workers: usize,
) -> anyhow::Result<()> {
    let Sandbox {
        database,
        namespace,
    } = Sandbox::new(postgres);
    let amqp_url = amqp.to_string();
    let settings = tracker_svc::TrackerSettings::load(&popug_runtime::Env::from_pairs([
        ("POPUG_TRACKER_DATABASE_URL", database.as_str()),
        ("POPUG_NAMESPACE", namespace.as_str()),
        ("POPUG_QUEUE_TTL", "300"),
        ("POPUG_AMQP_URL", amqp_url.as_str()),
        ("POPUG_TRACKER_ADDR", "127.0.0.1:0"),
    ]))?;
    let topology = Topology::from_settings(&settings.common);
    let mut app = tracker_svc::Application::build(settings).await?;
    let mut relay = app.take_relay().context("relay")?;
    // Connect and declare the topology before timing.
    anyhow::ensure!(
        relay.publish_pending().await? == Step::Idle,
        "the outbox starts empty"
    );
    let store = app.store().clone();

    // Workers in the replica and open tasks, written straight to the table.
    let pool = popug_runtime::database::connect(&database.parse()?, 2, &[]).await?;
    let mut conn = pool.get().await?;
    diesel::sql_query(format!(
        "INSERT INTO accounts (account_id, login, role, role_version, active) \
         SELECT gen_random_uuid(), 'worker' || n, 'worker', 1, TRUE FROM generate_series(1, {workers}) n"
    ))
    .execute(&mut conn)
    .await?;
    diesel::sql_query(format!(
        "INSERT INTO tasks (task_id, title, description, status, assignee_id, created_by) \
         SELECT gen_random_uuid(), 'Task ' || n, '', 'open', \
                (SELECT account_id FROM accounts ORDER BY account_id LIMIT 1), gen_random_uuid() \
         FROM generate_series(1, {tasks}) n"
    ))
    .execute(&mut conn)
    .await?;
    diesel::sql_query("VACUUM ANALYZE tasks")
        .execute(&mut conn)
        .await?;
    println!("shuffle benchmark: {tasks} open tasks, {workers} active workers");

    // Raw limit: touching every open task once, in one statement.
    let started = Instant::now();
    diesel::sql_query("UPDATE tasks SET assignee_id = assignee_id WHERE status = 'open'")
        .execute(&mut conn)
        .await?;
    let raw_update = started.elapsed();
    drop(conn);

    let started = Instant::now();
    let moved = store.shuffle(0.5).await?.len();
    let shuffle_time = started.elapsed();
    anyhow::ensure!(moved == tasks, "the shuffle moved {moved} of {tasks} tasks");

    let started = Instant::now();
    let published = publish_all(&mut relay).await?;
    let relay_rate = rate(published, started);
    anyhow::ensure!(
        published == tasks,
        "the relay published {published} of {tasks} events"
    );

    let broker = Broker::new(amqp.clone(), topology.clone(), "bench");
    let sample = popug_bus::envelope::wrap(
        &tracker_svc::domain::events::reassigned(
            uuid::Uuid::new_v4(),
            uuid::Uuid::new_v4(),
            uuid::Uuid::new_v4(),
        ),
        "tracker",
        chrono::Utc::now(),
    )
    .encode_to_vec();
    let raw_publish = raw_publish_rate(
        &broker,
        &sample,
        20_000,
        1_000,
        <popug_proto::pb::popug::events::tasks::v1::TaskAssigned as popug_proto::events::Event>::ROUTING_KEY,
        &[],
    )
    .await?;

    // The events landed in the billing and analytics queues; drop them.
    let (connection, channel) = broker.confirm_channel().await?;
    Sandbox::delete_queues(&channel, &topology).await;
    connection.close(200, "done".into()).await.ok();

    println!();
    println!("{:<58} {:>12}", "measurement", "result");
    println!(
        "{:<58} {:>10.0}ms",
        "raw: UPDATE of every open task, one statement",
        raw_update.as_secs_f64() * 1000.0
    );
    println!(
        "{:<58} {:>10.0}ms",
        "popug: ShuffleTasks transaction (draws + events enqueued)",
        shuffle_time.as_secs_f64() * 1000.0
    );
    println!(
        "{:<58} {:>10.0}/s",
        "popug: events enqueued by the shuffle",
        moved as f64 / shuffle_time.as_secs_f64()
    );
    println!(
        "{:<58} {:>10.0}/s",
        "raw: lapin publish with confirms, same envelope size", raw_publish
    );
    println!(
        "{:<58} {:>10.0}/s",
        "popug: relay publishing the shuffle's events", relay_rate
    );
    println!();
    println!(
        "shuffle / raw update     = {:.1}x the time",
        shuffle_time.as_secs_f64() / raw_update.as_secs_f64()
    );
    println!("relay / raw publish      = {:.2}", relay_rate / raw_publish);
    Ok(())
}
