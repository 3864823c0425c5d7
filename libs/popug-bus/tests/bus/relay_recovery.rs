//! The running relay against a database that goes away under it. The
//! relay reaches Postgres through a proxy the test can cut, as a database
//! restart or a network failure cuts it: the connection it listens for
//! commits on ends with no word from the server. The relay carries on.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use diesel_async::RunQueryDsl as _;
use popug_bus::{Relay, RelayConfig};
use tokio_util::sync::CancellationToken;

use crate::helpers::{World, account, fast_backoff};

/// A TCP proxy to the test Postgres whose connections the test can cut.
struct Proxy {
    addr: std::net::SocketAddr,
    open: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Proxy {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let open: Arc<Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let tracked = Arc::clone(&open);
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let piped = tokio::spawn(async move {
                    let mut server = tokio::net::TcpStream::connect("127.0.0.1:5432")
                        .await
                        .expect("the test Postgres");
                    tokio::io::copy_bidirectional(&mut client, &mut server)
                        .await
                        .ok();
                });
                tracked.lock().expect("lock").push(piped.abort_handle());
            }
        });
        Self { addr, open }
    }

    /// Drops every connection open through the proxy, mid-stream.
    fn cut(&self) -> usize {
        let open = std::mem::take(&mut *self.open.lock().expect("lock"));
        for connection in &open {
            connection.abort();
        }
        open.len()
    }
}

#[tokio::test]
async fn the_relay_keeps_publishing_after_its_database_connections_are_cut() {
    #[derive(diesel::QueryableByName)]
    struct Name {
        #[diesel(sql_type = diesel::sql_types::Text)]
        name: String,
    }
    let world = World::new().await;
    let probe = world.probe().await;
    let database = diesel::sql_query("SELECT current_database() AS name")
        .get_result::<Name>(&mut world.pool.get().await.expect("connection"))
        .await
        .expect("the database's name")
        .name;
    let proxy = Proxy::start().await;
    let proxied = format!("postgres://postgres@{}/{database}", proxy.addr)
        .parse()
        .expect("url");
    let pool = popug_runtime::database::connect(&proxied, 4, &[&popug_bus::MIGRATIONS])
        .await
        .expect("a pool through the proxy");
    let relay = Relay::new(
        pool,
        world.broker.clone(),
        "test",
        RelayConfig {
            backoff: fast_backoff(),
            poll_interval: Duration::from_millis(200),
            ..RelayConfig::default()
        },
    );
    let token = CancellationToken::new();
    let running = tokio::spawn(relay.run(token.clone()));

    world.enqueue(&[account("before")]).await;
    assert_eq!(
        world.take(&probe, 1, Duration::from_secs(20)).await.len(),
        1
    );

    // Cuts at different moments after a commit: before its notification
    // reaches the relay, while it does, while the relay publishes. A
    // notification and the cut can then reach the relay together.
    let mut cut = 0;
    for round in 0..20 {
        world.enqueue(&[account(&format!("cut{round}"))]).await;
        tokio::time::sleep(Duration::from_millis(round)).await;
        // None when the relay had not reconnected since the last cut.
        cut += proxy.cut();
        assert_eq!(
            world.take(&probe, 1, Duration::from_secs(20)).await.len(),
            1,
            "round {round}: the event committed before the cut arrived"
        );
        world.enqueue(&[account(&format!("after{round}"))]).await;
        assert_eq!(
            world.take(&probe, 1, Duration::from_secs(20)).await.len(),
            1,
            "round {round}: the relay still publishes"
        );
        assert!(
            !running.is_finished(),
            "round {round}: the relay still runs"
        );
    }
    assert!(cut >= 20, "the relay's connections were cut {cut} times");
    token.cancel();
    running.await.expect("the relay stops without a panic");
}
