//! Retention: old inbox rows and closed dead letters are pruned; recent ones,
//! unresolved dead letters, the inbox rows those still need, and the discard
//! audit records are kept.

use std::time::Duration;

use diesel_async::RunQueryDsl as _;
use popug_bus::retention::{self, RetentionConfig};

use crate::helpers::World;

const DAY: Duration = Duration::from_secs(86_400);

impl World {
    async fn sql(&self, statement: &str) {
        let mut conn = self.pool.get().await.expect("connection");
        diesel::sql_query(statement)
            .execute(&mut conn)
            .await
            .expect(statement);
    }
}

#[tokio::test]
async fn old_inbox_rows_and_closed_dead_letters_are_pruned_and_recent_and_open_ones_kept() {
    let world = World::new().await;
    // Inbox: an old row, a recent one, and an old one whose event still has
    // an unresolved dead letter (a copy waiting in the dead-letter queue).
    world
        .sql(
            "INSERT INTO inbox (consumer, event_id, applied_at) VALUES \
             ('c', '00000000-0000-0000-0000-000000000001', now() - interval '31 days'), \
             ('c', '00000000-0000-0000-0000-000000000002', now() - interval '29 days'), \
             ('c', '00000000-0000-0000-0000-000000000003', now() - interval '400 days')",
        )
        .await;
    // Dead letters: resolved long ago, resolved lately, unresolved and old,
    // and discarded long ago (with its audit record).
    world
        .sql(
            "INSERT INTO failed_events (id, consumer, queue, event_id, error, body, failed_at, resolved_at, discarded_at) VALUES \
             (1, 'c', 'q', NULL, 'old, resolved', 'a', now() - interval '40 days', now() - interval '31 days', NULL), \
             (2, 'c', 'q', NULL, 'recent, resolved', 'b', now() - interval '40 days', now() - interval '29 days', NULL), \
             (3, 'c', 'q', '00000000-0000-0000-0000-000000000003', 'old, open', 'c', now() - interval '400 days', NULL, NULL), \
             (4, 'c', 'q', NULL, 'old, discarded', 'd', now() - interval '40 days', now() - interval '35 days', now() - interval '35 days')",
        )
        .await;
    world
        .sql(
            "INSERT INTO dead_letter_discards (failed_event_id, consumer, error, body_sha256, body_size, discarded_by, reason) \
             VALUES (4, 'c', 'old, discarded', sha256('d'), 1, 'admin-1', 'junk')",
        )
        .await;

    let config = RetentionConfig {
        inbox: 30 * DAY,
        dead_letters: 30 * DAY,
    };
    let mut conn = world.pool.get().await.expect("connection");
    let pruned = retention::prune(&mut conn, config, chrono::Utc::now())
        .await
        .expect("prune");
    drop(conn);
    assert_eq!(
        pruned,
        retention::Pruned {
            inbox: 1,
            dead_letters: 2
        }
    );
    assert_eq!(
        world
            .count(
                "SELECT count(*) AS n FROM inbox WHERE event_id IN \
                 ('00000000-0000-0000-0000-000000000002', '00000000-0000-0000-0000-000000000003')"
            )
            .await,
        2,
        "the recent row and the one an open dead letter needs stay"
    );
    assert_eq!(world.count("SELECT count(*) AS n FROM inbox").await, 2);
    assert_eq!(
        world
            .count("SELECT count(*) AS n FROM failed_events WHERE id IN (2, 3)")
            .await,
        2
    );
    assert_eq!(
        world.count("SELECT count(*) AS n FROM failed_events").await,
        2
    );
    assert_eq!(
        world
            .count("SELECT count(*) AS n FROM dead_letter_discards")
            .await,
        1,
        "the audit record outlives its row"
    );

    // Once the open letter is resolved, its inbox row goes too; a shorter
    // period prunes the rest. Pruning is a background task's step.
    world
        .sql("UPDATE failed_events SET resolved_at = now() WHERE id = 3")
        .await;
    let task = popug_bus::Retention::new(
        world.pool.clone(),
        "test",
        RetentionConfig {
            inbox: DAY,
            dead_letters: DAY,
        },
    );
    let pruned = task.run_once().await.expect("prune");
    assert_eq!(
        pruned,
        retention::Pruned {
            inbox: 2,
            dead_letters: 1
        }
    );
    assert_eq!(
        world
            .count("SELECT count(*) AS n FROM failed_events WHERE id = 3")
            .await,
        1,
        "resolved just now, it stays"
    );
    assert_eq!(
        world.count("SELECT count(*) AS n FROM failed_events").await,
        1
    );
}

#[tokio::test]
async fn pruning_many_rows_takes_several_batches_and_leaves_none_behind() {
    let world = World::new().await;
    let old = retention::BATCH * 2 + 17;
    world
        .sql(&format!(
            "INSERT INTO inbox (consumer, event_id, applied_at) \
             SELECT 'c', gen_random_uuid(), now() - interval '60 days' FROM generate_series(1, {old})"
        ))
        .await;
    world
        .sql(
            "INSERT INTO inbox (consumer, event_id, applied_at) \
             SELECT 'c', gen_random_uuid(), now() FROM generate_series(1, 5)",
        )
        .await;
    let mut conn = world.pool.get().await.expect("connection");
    let pruned = retention::prune(
        &mut conn,
        RetentionConfig {
            inbox: 30 * DAY,
            dead_letters: 30 * DAY,
        },
        chrono::Utc::now(),
    )
    .await
    .expect("prune");
    drop(conn);
    assert_eq!(pruned.inbox, u64::try_from(old).expect("count"));
    assert_eq!(world.count("SELECT count(*) AS n FROM inbox").await, 5);
}
