//! Concurrent batches and day closes: no deadlock, one price per task, and
//! a hung replica's locks bounded in time.

use std::time::Duration;

use billing_svc::{
    domain::{EntryKind, FeeReason},
    store::Booking,
};
use popug_proto::pb::popug::auth::v1 as auth;
use popug_testing::{
    consume,
    tracker_events::{assigned, completed},
};

use crate::helpers::{spawn_app, spawn_app_with};

/// Returns once a session of the pool's database waits on a lock.
async fn awaiting_a_lock(pool: &popug_runtime::database::Pool) {
    use diesel_async::RunQueryDsl as _;
    let mut conn = pool.get().await.expect("connection");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let waiting: i64 = diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
            "(SELECT count(*) FROM pg_stat_activity \
              WHERE datname = current_database() AND wait_event_type = 'Lock')",
        ))
        .get_result(&mut conn)
        .await
        .expect("activity");
        if waiting > 0 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "nobody waits on a lock"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A batch that updates an account's replica and then books an entry for it
/// runs into a day close that pays that account: the close waits for the
/// batch, never the other way round (before, each waited for the other and
/// Postgres aborted one of them).
#[tokio::test]
async fn an_account_update_and_a_day_close_wait_for_each_other_without_deadlock() {
    use diesel_async::RunQueryDsl as _;
    let app = spawn_app(None).await;
    let worker = uuid::Uuid::new_v4();
    let yesterday = chrono::Utc::now() - chrono::Duration::days(1);
    let day = popug_runtime::calendar::day_of(yesterday, popug_runtime::Timezone::UTC);
    let pool = app.ledger.pool().clone();
    let mut conn = pool.get().await.expect("connection");
    // Entries as the consumer books them: with their events in the inbox.
    let applied = async |conn: &mut diesel_async::AsyncPgConnection, event_id: uuid::Uuid| {
        diesel::sql_query("INSERT INTO inbox (consumer, event_id) VALUES ('billing', $1)")
            .bind::<diesel::sql_types::Uuid, _>(event_id)
            .execute(conn)
            .await
            .expect("inbox");
    };
    let reward_event = uuid::Uuid::new_v4();
    applied(&mut conn, reward_event).await;
    app.ledger
        .book(
            &mut conn,
            &[Booking {
                kind: EntryKind::CompletionReward,
                reason: None,
                task_id: uuid::Uuid::new_v4(),
                popug: worker,
                source_event_id: reward_event,
                at: yesterday,
            }],
        )
        .await
        .expect("a reward to pay at the close");

    diesel::sql_query("BEGIN")
        .execute(&mut conn)
        .await
        .expect("begin");
    billing_svc::store::replica::role_changed(&mut conn, worker, "worker", 2)
        .await
        .expect("replica");
    let ledger = app.ledger.clone();
    let close = tokio::spawn(async move { ledger.close_day(day).await });
    // The close waits on the batch's shared lock (before the fix, on the
    // account row).
    awaiting_a_lock(&pool).await;
    let fee_event = uuid::Uuid::new_v4();
    applied(&mut conn, fee_event).await;
    app.ledger
        .book(
            &mut conn,
            &[Booking {
                kind: EntryKind::AssignmentFee,
                reason: Some(FeeReason::Created),
                task_id: uuid::Uuid::new_v4(),
                popug: worker,
                source_event_id: fee_event,
                at: chrono::Utc::now(),
            }],
        )
        .await
        .expect("the batch goes on");
    diesel::sql_query("COMMIT")
        .execute(&mut conn)
        .await
        .expect("the batch commits");
    let closed = close.await.expect("joined").expect("the close succeeds");
    assert_eq!(closed.accounts_paid, 1);
    app.assert_invariants().await;
}

/// Two workers (or replicas) meet a new task at once, each inside its batch:
/// the task is priced once (in a short transaction of its own, so neither
/// batch holds the task's row while it goes on) and both read that price.
#[tokio::test]
async fn a_task_met_by_two_batches_at_once_is_priced_once() {
    use diesel_async::RunQueryDsl as _;
    let app = spawn_app(None).await;
    let task = uuid::Uuid::new_v4();
    let pool = app.ledger.pool().clone();
    let meet = |ledger: billing_svc::store::Ledger| async move {
        let mut conn = ledger.pool().get().await.expect("connection");
        diesel::sql_query("BEGIN")
            .execute(&mut conn)
            .await
            .expect("begin");
        let prices = ledger.ensure_tasks(&mut conn, &[task]).await;
        // The batch is still open while the other one prices the task.
        tokio::time::sleep(Duration::from_millis(200)).await;
        diesel::sql_query("COMMIT")
            .execute(&mut conn)
            .await
            .expect("commit");
        prices.expect("priced")
    };
    let (first, second) = tokio::join!(meet(app.ledger.clone()), meet(app.ledger.clone()));
    assert_eq!(first, second);
    let mut conn = pool.get().await.expect("connection");
    let announced: i64 = diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
        "(SELECT count(*) FROM outbox WHERE event_type LIKE '%TaskPriced')",
    ))
    .get_result(&mut conn)
    .await
    .expect("count");
    assert_eq!(announced, 1, "the price is announced once");
}

/// A replica that hangs mid-batch (paused, holding an account row in an open
/// transaction) holds it only for a bounded time: the server ends its idle
/// transaction, the running replica's lock waits give up and are retried
/// (never dead-lettered), and booking goes on within seconds.
#[tokio::test]
async fn a_hung_replica_holds_its_locks_only_for_a_bounded_time() {
    use diesel_async::{AsyncConnection as _, RunQueryDsl as _};
    let database = popug_testing::TestDatabase::fresh();
    let mut app = spawn_app_with(
        database.url().to_owned(),
        None,
        &[
            ("POPUG_DATABASE_LOCK_TIMEOUT", "300"),
            ("POPUG_DATABASE_IDLE_IN_TRANSACTION_TIMEOUT", "2000"),
        ],
    )
    .await;
    let (worker, _) = app.account("worker1", auth::Role::Worker).await;
    // The hung replica: a session of the service (same limits) that took the
    // worker's account row in a transaction, then stopped.
    let mut hung = diesel_async::AsyncPgConnection::establish(app.database_url.as_str())
        .await
        .expect("a session");
    diesel::sql_query("BEGIN")
        .execute(&mut hung)
        .await
        .expect("begin");
    diesel::sql_query(format!(
        "SELECT 1 FROM accounts WHERE account_id = '{worker}' FOR UPDATE"
    ))
    .execute(&mut hung)
    .await
    .expect("the row is held");

    let task = uuid::Uuid::new_v4();
    app.publish(&assigned(task, worker, None), chrono::Utc::now())
        .await;
    app.publish(&completed(task, worker), chrono::Utc::now())
        .await;
    let started = std::time::Instant::now();
    let report = consume(&mut app.consumer, 2).await;
    assert_eq!(report.applied, 2, "booked once the hung transaction ended");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "booking waited {:?}",
        started.elapsed()
    );
    // The server ended the hung session's transaction.
    let ended = diesel::sql_query("COMMIT").execute(&mut hung).await;
    assert!(ended.is_err(), "the idle transaction was terminated");
    assert_ne!(app.balance(worker).await, 0);
    app.assert_invariants().await;
}
