//! Dead letters handled from two terminals at once: concurrent replays and
//! discards apply each message at most once, and never one that was
//! discarded.

use std::collections::BTreeSet;
use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use popug_bus::{Consumer, dead_letters};
use popug_testing::consume_any;

use crate::helpers::{World, account, recording_handlers};

/// A world whose consumer fails every `poison-*` account until `broken` is
/// cleared, with `count` of them dead-lettered.
struct Poisoned {
    world: World,
    consumer: Consumer,
    broken: Arc<AtomicBool>,
    /// The dead letters' rows' ids.
    ids: Vec<i64>,
}

async fn poisoned(count: usize) -> Poisoned {
    let world = World::new().await;
    let broken = Arc::new(AtomicBool::new(true));
    let mut consumer = world
        .declared_consumer(recording_handlers(Arc::clone(&broken), Arc::default()))
        .await;
    for n in 0..count {
        world
            .publish_account(&account(&format!("poison-{n}")))
            .await;
    }
    let report = consume_any(&mut consumer, 3 * count).await;
    assert_eq!(report.dead_lettered, count);
    world
        .await_dead_letter_depth(u32::try_from(count).expect("count"))
        .await;
    let ids = world
        .dead_letter_rows()
        .await
        .iter()
        .map(|row| row.id)
        .collect();
    Poisoned {
        world,
        consumer,
        broken,
        ids,
    }
}

#[tokio::test]
async fn two_replays_at_once_move_each_message_once_and_apply_it_once() {
    let Poisoned {
        world,
        mut consumer,
        broken,
        ids,
    } = poisoned(8).await;
    broken.store(false, Ordering::SeqCst);
    let selected: BTreeSet<i64> = ids.iter().copied().collect();
    let (first, second) = tokio::join!(
        dead_letters::replay_only(&world.pool, &world.broker, "accounts-test", &selected),
        dead_letters::replay_only(&world.pool, &world.broker, "accounts-test", &selected),
    );
    let (first, second) = (first.expect("first replay"), second.expect("second replay"));
    let mut moved: Vec<i64> = first
        .moved_ids
        .iter()
        .chain(&second.moved_ids)
        .copied()
        .collect();
    moved.sort_unstable();
    assert_eq!(moved, ids, "each message moved by exactly one of them");
    let report = consume_any(&mut consumer, ids.len()).await;
    assert_eq!((report.applied, report.dead_lettered), (ids.len(), 0));
    assert_eq!(
        world.count("SELECT count(*) AS n FROM accounts").await,
        i64::try_from(ids.len()).expect("count")
    );
    assert!(
        world
            .dead_letter_rows()
            .await
            .iter()
            .all(|row| row.resolved)
    );
    assert_eq!(world.dead_letter_depth().await, 0);
}

#[tokio::test]
async fn two_discards_at_once_close_each_letter_once_with_one_audit_record() {
    let Poisoned { world, ids, .. } = poisoned(6).await;
    let (mut one, mut two) = (
        world.pool.get().await.expect("connection"),
        world.pool.get().await.expect("connection"),
    );
    let (first, second) = tokio::join!(
        popug_bus::discard::discard(&mut one, "accounts-test", &ids, "admin-1", "first terminal"),
        popug_bus::discard::discard(
            &mut two,
            "accounts-test",
            &ids,
            "admin-2",
            "second terminal"
        ),
    );
    let (first, second) = (first.expect("first"), second.expect("second"));
    let mut discarded: Vec<i64> = first
        .discarded
        .iter()
        .chain(&second.discarded)
        .copied()
        .collect();
    discarded.sort_unstable();
    assert_eq!(discarded, ids, "each letter discarded by exactly one");
    assert_eq!(
        first.already_closed.len() + second.already_closed.len(),
        ids.len()
    );
    assert_eq!(
        world
            .count("SELECT count(*) AS n FROM dead_letter_discards")
            .await,
        i64::try_from(ids.len()).expect("count")
    );
    drop((one, two));
    // Their messages are dropped from the queue, never applied.
    assert_eq!(
        dead_letters::drop_discarded(&world.pool, &world.broker, "accounts-test")
            .await
            .expect("pass"),
        u32::try_from(ids.len()).expect("count")
    );
    assert_eq!(world.dead_letter_depth().await, 0);
    assert_eq!(world.count("SELECT count(*) AS n FROM accounts").await, 0);
}

#[tokio::test]
async fn a_replay_racing_a_discard_applies_or_discards_each_letter_never_both() {
    let Poisoned {
        world,
        mut consumer,
        broken,
        ids,
    } = poisoned(8).await;
    broken.store(false, Ordering::SeqCst);
    let selected: BTreeSet<i64> = ids.iter().copied().collect();
    let mut conn = world.pool.get().await.expect("connection");
    // The replay moves messages while the discard closes their rows; the
    // consumer then sees whatever was moved.
    let (replayed, discarded) = tokio::join!(
        dead_letters::replay_only(&world.pool, &world.broker, "accounts-test", &selected),
        popug_bus::discard::discard(&mut conn, "accounts-test", &ids, "admin-1", "racing"),
    );
    drop(conn);
    let (replayed, discarded) = (replayed.expect("replay"), discarded.expect("discard"));
    assert_eq!(
        discarded.discarded, ids,
        "every row was still open for the discard"
    );
    let report = consume_any(
        &mut consumer,
        usize::try_from(replayed.moved).expect("moved"),
    )
    .await;
    assert_eq!(
        report.applied, 0,
        "a discarded letter is never applied: {report:?}"
    );
    assert_eq!(
        report.duplicates,
        usize::try_from(replayed.moved).expect("moved")
    );
    assert_eq!(world.count("SELECT count(*) AS n FROM accounts").await, 0);
    // Whatever the replay did not move is dropped by the next pass.
    dead_letters::drop_discarded(&world.pool, &world.broker, "accounts-test")
        .await
        .expect("pass");
    assert_eq!(world.dead_letter_depth().await, 0);
    assert_eq!(world.count("SELECT count(*) AS n FROM accounts").await, 0);
}

#[tokio::test]
async fn a_discard_after_the_replay_applied_a_letter_leaves_it_applied_and_says_so() {
    let Poisoned {
        world,
        mut consumer,
        broken,
        ids,
    } = poisoned(1).await;
    broken.store(false, Ordering::SeqCst);
    assert_eq!(world.replay().await, 1);
    assert_eq!(consume_any(&mut consumer, 1).await.applied, 1);
    let mut conn = world.pool.get().await.expect("connection");
    let discarded =
        popug_bus::discard::discard(&mut conn, "accounts-test", &ids, "admin-1", "too late")
            .await
            .expect("discard");
    assert!(discarded.discarded.is_empty());
    assert_eq!(discarded.already_closed, ids);
    assert_eq!(
        world
            .count("SELECT count(*) AS n FROM dead_letter_discards")
            .await,
        0
    );
    assert_eq!(world.count("SELECT count(*) AS n FROM accounts").await, 1);
}
