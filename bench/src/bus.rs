//! `bench bus`: the event bus. Raw: lapin publishing with pipelined
//! confirms, and one-row insert transactions through the same pool. popug:
//! the outbox relay's publish rate, and the consumer's apply rate with the
//! inbox (batched transactions).

use std::time::Instant;

use anyhow::{Context as _, bail};
use diesel_async::{AsyncConnection as _, RunQueryDsl as _};
use popug_bus::{
    Broker, Consumer, ConsumerConfig, Handlers, Outbox, OutboxError, Relay, RelayConfig, Step,
    Topology,
};
use popug_proto::pb::popug::events::accounts::v1::{AccountCreated, Role};
use prost::Message as _;
use tokio_util::sync::CancellationToken;

use crate::raw::{rate, raw_commit_rate, raw_publish_rate};

/// The `i`th worker account to create.
fn account(i: usize) -> AccountCreated {
    AccountCreated {
        account_id: uuid::Uuid::new_v4().to_string(),
        login: format!("popug{i}"),
        name: format!("Popug number {i}"),
        email: format!("popug{i}@popug.inc"),
        role: Role::Worker.into(),
        active: true,
        version: 1,
    }
}

/// Runs the benchmark.
pub(crate) async fn run(
    postgres: &url::Url,
    amqp: &url::Url,
    events: usize,
    window: usize,
) -> anyhow::Result<()> {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let mut database = postgres.clone();
    database.set_path(&format!("popug_bench_{id}"));
    let pool = popug_runtime::database::connect(&database, 8, &[&popug_bus::MIGRATIONS])
        .await
        .context("bench database")?;
    let topology = Topology::new(Some(format!("bench-{}", &id[..12])))
        .with_queue_expiry(std::time::Duration::from_secs(300));
    let broker = Broker::new(amqp.clone(), topology.clone(), "bench");
    // Account events come from auth; consumers refuse them from anyone else.
    let sample = popug_bus::envelope::wrap(&account(0), "auth", chrono::Utc::now()).encode_to_vec();
    println!(
        "bus benchmark: {events} events of {} bytes, {window} confirms in flight",
        sample.len()
    );

    // Raw limit 2: one-row insert transactions through the same pool, 8 at once.
    let raw_commit = raw_commit_rate(&pool, &sample, events / 4).await?;

    // popug 1: the relay publishing a committed backlog to a consumer's queue.
    let mut conn = pool.get().await?;
    diesel::sql_query("CREATE TABLE accounts (id UUID PRIMARY KEY, login TEXT NOT NULL)")
        .execute(&mut conn)
        .await?;
    drop(conn);
    let handlers = Handlers::new().on::<AccountCreated, _>(|conn, meta, event| {
        Box::pin(async move {
            diesel::sql_query("INSERT INTO accounts (id, login) VALUES ($1, $2)")
                .bind::<diesel::sql_types::Uuid, _>(meta.event_id)
                .bind::<diesel::sql_types::Text, _>(&event.login)
                .execute(conn)
                .await?;
            Ok(())
        })
    });
    let consumer = Consumer::new(
        pool.clone(),
        broker.clone(),
        "bench",
        handlers,
        ConsumerConfig::default(),
    );
    consumer.declare().await?;
    let workers = ConsumerConfig::default().workers;
    let mut relay = Relay::new(
        pool.clone(),
        broker.clone(),
        "auth",
        RelayConfig {
            batch_size: i64::try_from(window)?,
            ..RelayConfig::default()
        },
    );
    // Connect and declare the topology before timing: the rate is the steady
    // state, not the first connection.
    anyhow::ensure!(
        relay.publish_pending().await? == Step::Idle,
        "the outbox starts empty"
    );
    // Raw limit 1: lapin publishing with pipelined confirms, to the same
    // queues the relay's events go to.
    let raw_publish = raw_publish_rate(
        &broker,
        &sample,
        events,
        window,
        <AccountCreated as popug_proto::events::Event>::ROUTING_KEY,
        &["bench"],
    )
    .await?;
    let outbox = Outbox::new("auth");
    let batch: Vec<AccountCreated> = (0..events).map(account).collect();
    let mut conn = pool.get().await?;
    conn.transaction::<_, OutboxError, _>(async |conn| outbox.enqueue_all(conn, &batch).await)
        .await?;
    drop(conn);
    let started = Instant::now();
    let published = publish_all(&mut relay).await?;
    let relay_rate = rate(published, started);
    if published != events {
        bail!("the relay published {published} of {events} events");
    }

    // popug 2: the consumer applying those events with the inbox, one row
    // written per event by the handler, several deliveries per transaction.
    let token = CancellationToken::new();
    let started = Instant::now();
    let running = tokio::spawn(consumer.run(token.clone()));
    let mut applied = 0;
    while applied < events {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        let mut conn = pool.get().await?;
        applied = usize::try_from(
            diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
                "(SELECT count(*) FROM accounts)",
            ))
            .get_result::<i64>(&mut conn)
            .await?,
        )?;
    }
    let consume_rate = rate(applied, started);
    token.cancel();
    running.await?;

    println!();
    println!("{:<58} {:>12}", "measurement", "per second");
    println!(
        "{:<58} {:>12.0}",
        "raw: lapin publish, persistent, pipelined confirms", raw_publish
    );
    println!(
        "{:<58} {:>12.0}",
        "raw: one-row insert transactions, pool of 8", raw_commit
    );
    println!("{:<58} {:>12.0}", "popug: outbox relay publish", relay_rate);
    println!(
        "{:<58} {:>12.0}",
        &format!("popug: consumer apply with inbox ({workers} workers, batched)"),
        consume_rate
    );
    println!();
    println!(
        "relay / raw publish      = {:.2}  (target >= 0.80)",
        relay_rate / raw_publish
    );
    println!(
        "consumer / raw commit    = {:.2}  (target >= 1.50)",
        consume_rate / raw_commit
    );
    Ok(())
}

/// Steps `relay` until its outbox is empty; the events it published.
pub(crate) async fn publish_all(relay: &mut Relay) -> anyhow::Result<usize> {
    let mut published = 0;
    loop {
        match relay.publish_pending().await? {
            Step::Published(n) => published += n,
            Step::Idle => return Ok(published),
            Step::Standby => bail!("another relay holds the lock"),
        }
    }
}
