//! Rebuilding from the event history: a consumer that lost its database
//! replays the history stream through its handlers and ends where the
//! history ended, once.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize},
    },
    time::Duration,
};

use popug_bus::{Broker, Handlers};
use popug_testing::consume_any;
use tokio_util::sync::CancellationToken;

use crate::helpers::{AMQP, World, account, recording_handlers};

impl World {
    /// The same world, keeping every event in the history stream.
    fn keeping_history(mut self) -> Self {
        let topology = self
            .broker
            .topology()
            .clone()
            .with_history(Duration::from_secs(86_400));
        self.broker = Broker::new(AMQP.parse().expect("url"), topology, "bus-test");
        self
    }
}

#[tokio::test]
async fn a_consumer_with_a_new_database_rebuilds_itself_from_the_history() {
    let world = World::new().await.keeping_history();
    let calls = Arc::new(AtomicUsize::new(0));
    let handlers = || recording_handlers(Arc::new(AtomicBool::new(false)), Arc::clone(&calls));
    let mut first = world.declared_consumer(handlers()).await;
    // The relay declares the catalog, the history stream with it.
    let mut relay = world.relay();
    assert_eq!(world.drain_relay(&mut relay).await, 0);
    for i in 0..7 {
        world.publish_account(&account(&format!("h{i}"))).await;
    }
    assert_eq!(consume_any(&mut first, 7).await.applied, 7);

    // The database is lost; the consumer starts again on a new one.
    drop(first);
    let rebuilt = world.with_new_database().await;
    let mut second = rebuilt.consumer(handlers());
    let token = CancellationToken::new();
    let report = second
        .replay_history(&token)
        .await
        .expect("the replay")
        .expect("a replay ran");
    assert_eq!(
        (report.applied, report.duplicates, report.dead_lettered),
        (7, 0, 0)
    );
    assert_eq!(report.first_offset, Some(0), "the history was whole");
    assert_eq!(rebuilt.count("SELECT count(*) AS n FROM accounts").await, 7);
    assert_eq!(
        world.count("SELECT count(*) AS n FROM accounts").await,
        rebuilt.count("SELECT count(*) AS n FROM accounts").await
    );

    // Once: a second start does not replay again.
    assert_eq!(
        second.replay_history(&token).await.expect("no replay"),
        None
    );
    // Events after the rebuild reach it through its queue as usual.
    world.publish_account(&account("later")).await;
    assert_eq!(consume_any(&mut second, 1).await.applied, 1);
    assert_eq!(rebuilt.count("SELECT count(*) AS n FROM accounts").await, 8);
}

#[tokio::test]
async fn without_history_there_is_nothing_to_rebuild_from() {
    let world = World::new().await;
    let mut consumer = world.declared_consumer(Handlers::new()).await;
    let token = CancellationToken::new();
    assert_eq!(
        consumer.replay_history(&token).await.expect("no error"),
        None
    );
}
