//! popug's benchmarks. Each one measures the raw limit of this machine first
//! (the same broker, the same database, the same message size) and then
//! popug's own mechanism, and prints both figures and their ratio.
//!
//! `cargo run --release -p bench -- bus` measures the event bus:
//! - raw: lapin publishing with pipelined confirms; one-row insert
//!   transactions through the same pool;
//! - popug: the outbox relay's publish rate; the consumer's apply rate with
//!   the inbox (batched transactions).
//!
//! `cargo run --release -p bench -- auth` measures token verification: the
//! same cheap RPC (`GetJwks`) on the same server, without and with a bearer
//! token that the auth layer verifies, 64 calls in flight.
//!
//! `cargo run --release -p bench -- lifecycle` measures task lifecycles end
//! to end through the whole mesh (see [`lifecycle`]).

#![allow(clippy::print_stdout)] // printing the figures is this program's job

mod cpu;
mod flood;
mod lifecycle;

use std::{collections::VecDeque, time::Instant};

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};
use diesel_async::{AsyncConnection as _, RunQueryDsl as _};
use lapin::{BasicProperties, options::BasicPublishOptions};
use popug_bus::{
    Broker, Consumer, ConsumerConfig, Handlers, Outbox, OutboxError, Relay, RelayConfig, Step,
    Topology,
};
use popug_proto::pb::popug::events::accounts::v1::{AccountCreated, Role};
use prost::Message as _;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(about = "popug benchmarks, side by side with this machine's raw limits")]
struct Cli {
    /// Postgres server (a fresh database is created on it).
    #[arg(
        long,
        env = "POPUG_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:5432"
    )]
    postgres_url: url::Url,
    /// RabbitMQ (a fresh namespace is used on it).
    #[arg(
        long,
        env = "POPUG_AMQP_URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f"
    )]
    amqp_url: url::Url,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The event bus: relay and consumer against raw publish and commit rates.
    Bus {
        /// Events per measurement.
        #[arg(long, default_value_t = 20_000)]
        events: usize,
        /// Confirms in flight for the raw publish measurement (the relay's batch size too).
        #[arg(long, default_value_t = 1_000)]
        window: usize,
    },
    /// The tracker's shuffle of many open tasks, and the relay publishing its events.
    Shuffle {
        /// Open tasks to shuffle.
        #[arg(long, default_value_t = 100_000)]
        tasks: usize,
        /// Active workers to draw from.
        #[arg(long, default_value_t = 50)]
        workers: usize,
    },
    /// Billing's apply rate: assignments charged through the inbox, batched.
    Billing {
        /// TaskAssigned events to apply.
        #[arg(long, default_value_t = 20_000)]
        events: usize,
        /// Consumer worker counts to measure, each on a fresh ledger.
        #[arg(long, value_delimiter = ',', default_value = "1,4")]
        workers: Vec<usize>,
    },
    /// Task lifecycles end to end through the whole mesh: sustained rate and event lag.
    Lifecycle {
        /// Lifecycles at saturation.
        #[arg(long, default_value_t = 3_000)]
        tasks: usize,
        /// Lifecycles per second for the fixed-rate lag measurement.
        #[arg(long, default_value_t = 500)]
        rate: usize,
        /// Seconds at the fixed rate.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Lifecycles in flight at saturation.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// Workers to assign tasks to.
        #[arg(long, default_value_t = 50)]
        workers: usize,
    },
    /// A flood of wrong-password sign-ins against auth-svc: memory, the
    /// latency of legitimate calls beside it, and recovery.
    Flood {
        /// Sign-ins in flight.
        #[arg(long, default_value_t = 1_000)]
        concurrency: usize,
        /// Seconds the flood lasts.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    /// The attacking side of `flood`, run by it as a process of its own.
    #[command(hide = true)]
    FloodAttack {
        /// auth-svc's address.
        #[arg(long)]
        addr: std::net::SocketAddr,
        /// Sign-ins in flight.
        #[arg(long)]
        concurrency: usize,
        /// Seconds the flood lasts.
        #[arg(long)]
        seconds: u64,
    },
    /// Token verification: authenticated against unauthenticated calls.
    Auth {
        /// Calls per measurement.
        #[arg(long, default_value_t = 50_000)]
        calls: usize,
        /// Calls in flight.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    popug_runtime::telemetry::init(popug_runtime::settings::LogFormat::Pretty);
    match cli.command {
        Command::Bus { events, window } => {
            bus(&cli.postgres_url, &cli.amqp_url, events, window).await
        }
        Command::Auth { calls, concurrency } => auth(&cli.postgres_url, calls, concurrency).await,
        Command::FloodAttack {
            addr,
            concurrency,
            seconds,
        } => flood::attack(addr, concurrency, seconds).await,
        Command::Flood {
            concurrency,
            seconds,
        } => {
            flood::run(
                &cli.postgres_url,
                &flood::Options {
                    concurrency,
                    seconds,
                },
            )
            .await
        }
        Command::Shuffle { tasks, workers } => {
            shuffle(&cli.postgres_url, &cli.amqp_url, tasks, workers).await
        }
        Command::Billing { events, workers } => {
            billing(&cli.postgres_url, &cli.amqp_url, events, &workers).await
        }
        Command::Lifecycle {
            tasks,
            rate,
            seconds,
            concurrency,
            workers,
        } => {
            let options = lifecycle::Options {
                tasks,
                rate,
                seconds,
                concurrency,
                workers,
            };
            Box::pin(lifecycle::run(&cli.postgres_url, &cli.amqp_url, &options)).await
        }
    }
}

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

/// Raw limit: lapin publishing `count` persistent copies of `sample` with
/// `window` confirms in flight, with `routing_key`: the same queues (and so
/// the same fan-out) as popug's own events of that key, plus the queues of
/// `also_bound`. Those queues are purged afterwards.
async fn raw_publish_rate(
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
async fn raw_commit_rate(
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

fn rate(count: usize, started: Instant) -> f64 {
    count as f64 / started.elapsed().as_secs_f64()
}

async fn bus(
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
    let mut published = 0;
    loop {
        match relay.publish_pending().await? {
            Step::Published(n) => published += n,
            Step::Idle => break,
            Step::Standby => bail!("another relay holds the lock"),
        }
    }
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

/// `calls` GetJwks calls, `concurrency` at once, with `token` if given.
async fn get_jwks_rate(
    channel: &tonic::transport::Channel,
    token: Option<&str>,
    calls: usize,
    concurrency: usize,
) -> anyhow::Result<f64> {
    get_jwks_rate_with(channel, "authorization", token, calls, concurrency).await
}

async fn get_jwks_rate_with(
    channel: &tonic::transport::Channel,
    name: &'static str,
    token: Option<&str>,
    calls: usize,
    concurrency: usize,
) -> anyhow::Result<f64> {
    use popug_proto::pb::popug::auth::v1::{
        GetJwksRequest, auth_service_client::AuthServiceClient,
    };
    let started = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let mut client = AuthServiceClient::new(channel.clone());
            let header: Option<tonic::metadata::MetadataValue<_>> = token
                .map(|token| format!("Bearer {token}").parse())
                .transpose()?;
            anyhow::Ok(tokio::spawn(async move {
                for _ in 0..calls / concurrency {
                    let mut request = tonic::Request::new(GetJwksRequest {});
                    if let Some(header) = &header {
                        request.metadata_mut().insert(name, header.clone());
                    }
                    client.get_jwks(request).await?;
                }
                anyhow::Ok(())
            }))
        })
        .collect::<Result<_, _>>()?;
    for task in tasks {
        task.await??;
    }
    Ok(rate(calls / concurrency * concurrency, started))
}

/// auth-svc running in this process on a fresh database, for a benchmark.
struct AuthServer {
    addr: std::net::SocketAddr,
    admin_token: String,
    database: url::Url,
    stop: CancellationToken,
    server: tokio::task::JoinHandle<Result<(), popug_runtime::server::ServeError>>,
}

impl AuthServer {
    async fn start(postgres: &url::Url) -> anyhow::Result<Self> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let database = format!(
            "{}/popug_bench_{id}",
            postgres.as_str().trim_end_matches('/')
        );
        let namespace = format!("bench-{}", &id[..12]);
        let settings = auth_svc::AuthSettings::load(&popug_runtime::Env::from_pairs([
            ("POPUG_AUTH_DATABASE_URL", database.as_str()),
            ("POPUG_NAMESPACE", namespace.as_str()),
            ("POPUG_QUEUE_TTL", "300"),
            ("POPUG_AUTH_ADDR", "127.0.0.1:0"),
            ("POPUG_ADMIN_PASSWORD", "bench-password"),
        ]))?;
        let app = auth_svc::Application::build(settings).await?;
        let addr = app.local_addr();
        let stop = CancellationToken::new();
        let stopping = stop.clone();
        let server = tokio::spawn(app.run_until_stopped(async move { stopping.cancelled().await }));
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?
            .connect()
            .await?;
        let admin_token =
            popug_proto::pb::popug::auth::v1::auth_service_client::AuthServiceClient::new(channel)
                .login(popug_proto::pb::popug::auth::v1::LoginRequest {
                    login: "admin".into(),
                    password: "bench-password".into(),
                })
                .await?
                .into_inner()
                .access_token;
        Ok(Self {
            addr,
            admin_token,
            database: url::Url::parse(&database)?,
            stop,
            server,
        })
    }

    /// A new connection to it.
    async fn channel(&self) -> anyhow::Result<tonic::transport::Channel> {
        Ok(
            tonic::transport::Endpoint::from_shared(format!("http://{}", self.addr))?
                .connect()
                .await?,
        )
    }

    /// Stops it and drops its database.
    async fn stop(self) -> anyhow::Result<()> {
        self.stop.cancel();
        self.server.await??;
        popug::mesh::drop_databases(&[self.database]).await
    }
}

async fn auth(postgres: &url::Url, calls: usize, concurrency: usize) -> anyhow::Result<()> {
    let auth_server = AuthServer::start(postgres).await?;
    let channel = auth_server.channel().await?;
    let token = auth_server.admin_token.clone();
    println!(
        "auth benchmark: {calls} GetJwks calls per run, {concurrency} in flight, one server; token of {} bytes",
        token.len()
    );

    // Warm up, then alternate the two kinds and keep each one's best run.
    get_jwks_rate(&channel, Some(&token), calls / 10, concurrency).await?;
    let (mut plain, mut authenticated) = (0.0_f64, 0.0_f64);
    // The same bytes in a header HTTP/2 also never compresses, but that
    // nobody verifies: the cost of carrying a token, apart from checking it.
    let mut carried = 0.0_f64;
    for _ in 0..5 {
        plain = plain.max(get_jwks_rate(&channel, None, calls, concurrency).await?);
        authenticated =
            authenticated.max(get_jwks_rate(&channel, Some(&token), calls, concurrency).await?);
        carried = carried
            .max(get_jwks_rate_with(&channel, "cookie", Some(&token), calls, concurrency).await?);
    }

    // What the cache saves: verifying distinct tokens, each one afresh.
    let key = popug_token::keys::SigningKey::generate();
    let published = key.jwk();
    let verifier = popug_token::Verifier::new(move || vec![published.clone()]);
    let now = u64::try_from(chrono::Utc::now().timestamp())?;
    let fresh: Vec<String> = (0..5_000)
        .map(|_| key.sign(uuid::Uuid::new_v4(), popug_token::Role::Worker, now, 600))
        .collect();
    let started = Instant::now();
    for token in &fresh {
        verifier.verify(token).await?;
    }
    let uncached = rate(fresh.len(), started);
    let started = Instant::now();
    for _ in 0..200_000 {
        verifier.verify(&fresh[0]).await?;
    }
    let cached = rate(200_000, started);

    println!();
    println!("{:<58} {:>12}", "measurement", "per second");
    println!("{:<58} {:>12.0}", "raw: GetJwks without a token", plain);
    println!(
        "{:<58} {:>12.0}",
        "raw: GetJwks carrying the token unverified (cookie)", carried
    );
    println!(
        "{:<58} {:>12.0}",
        "popug: GetJwks with a verified bearer token", authenticated
    );
    println!(
        "{:<58} {:>12.0}",
        "popug: fresh token verifications (Ed25519), one core", uncached
    );
    println!(
        "{:<58} {:>12.0}",
        "popug: cached token verifications, one core", cached
    );
    println!();
    println!(
        "authenticated / unauthenticated = {:.2}  (target >= 0.90)",
        authenticated / plain
    );
    println!(
        "authenticated / token carried unverified = {:.2}  (the verification's own cost)",
        authenticated / carried
    );
    auth_server.stop().await
}

async fn shuffle(
    postgres: &url::Url,
    amqp: &url::Url,
    tasks: usize,
    workers: usize,
) -> anyhow::Result<()> {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let database = format!(
        "{}/popug_bench_{id}",
        postgres.as_str().trim_end_matches('/')
    );
    let namespace = format!("bench-{}", &id[..12]);
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
    let mut published = 0;
    loop {
        match relay.publish_pending().await? {
            Step::Published(n) => published += n,
            Step::Idle => break,
            Step::Standby => bail!("another relay holds the lock"),
        }
    }
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

async fn billing(
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
    let id = uuid::Uuid::new_v4().simple().to_string();
    let database = format!(
        "{}/popug_bench_{id}",
        postgres.as_str().trim_end_matches('/')
    );
    let namespace = format!("bench-{}", &id[..12]);
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
    fn since(self, earlier: Self) -> Self {
        Self {
            commits: self.commits - earlier.commits,
            rows: self.rows - earlier.rows,
        }
    }
}

async fn database_stats(pool: &popug_runtime::database::Pool) -> anyhow::Result<DatabaseStats> {
    let mut conn = pool.get().await?;
    Ok(diesel::sql_query(
        "SELECT xact_commit AS commits, tup_inserted + tup_updated + tup_deleted AS rows \
         FROM pg_stat_database WHERE datname = current_database()",
    )
    .get_result(&mut conn)
    .await?)
}
