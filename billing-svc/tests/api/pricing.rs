//! Prices: every assignment charges its fee and every completion pays its
//! reward, drawn once per task, whatever order or how often events come.

use std::time::Duration;

use popug_bus::{Consumer, ConsumerConfig};
use popug_proto::{
    events::Event,
    pb::popug::{
        auth::v1 as auth,
        billing::v1 as pb,
        events::{billing::v1 as billing_events, tasks::v1 as tasks_v1},
    },
};
use popug_testing::{
    consume,
    tracker_events::{assigned, completed, created},
    with_token,
};
use prost::{Message as _, Name as _};
use tokio_util::sync::CancellationToken;

use crate::helpers::spawn_app;

fn prices_of(events: &[(String, Vec<u8>)]) -> Vec<billing_events::TaskPriced> {
    events
        .iter()
        .filter(|(kind, _)| *kind == billing_events::TaskPriced::full_name())
        .map(|(_, payload)| {
            billing_events::TaskPriced::decode(payload.as_slice()).expect("payload")
        })
        .collect()
}

#[tokio::test]
async fn every_assignment_charges_and_completion_pays_at_fixed_prices() {
    let mut app = spawn_app(None).await;
    let (w1, _) = app.account("worker1", auth::Role::Worker).await;
    let (w2, w2_token) = app.account("worker2", auth::Role::Worker).await;
    let task = uuid::Uuid::new_v4();
    let now = chrono::Utc::now();
    app.publish(&created(task, 1), now).await;
    app.publish(&assigned(task, w1, None), now).await;
    app.publish(&assigned(task, w2, Some(w1)), now).await;
    app.publish(&completed(task, w2), now).await;
    assert_eq!(consume(&mut app.consumer, 4).await.applied, 4);

    let events = app.billing_events().await;
    let prices = prices_of(&events);
    assert_eq!(prices.len(), 1, "priced once");
    let (fee, reward) = (prices[0].fee_cents, prices[0].reward_cents);
    assert_eq!(
        app.balance(w1).await,
        -fee,
        "charged at assignment, no refund after the shuffle"
    );
    assert_eq!(app.balance(w2).await, reward - fee);
    let applied = events
        .iter()
        .filter(|(kind, _)| *kind == billing_events::TransactionApplied::full_name())
        .count();
    assert_eq!(applied, 3, "one TransactionApplied per entry");

    let mine = app
        .billing()
        .get_my_account(with_token(pb::GetMyAccountRequest::default(), &w2_token))
        .await
        .expect("mine")
        .into_inner();
    assert_eq!(mine.balance_cents, reward - fee);
    let kinds: Vec<i32> = mine.entries.iter().map(|entry| entry.kind).collect();
    assert_eq!(
        kinds,
        [
            pb::EntryKind::AssignmentFee as i32,
            pb::EntryKind::CompletionReward as i32
        ]
    );
    assert!(
        mine.entries
            .iter()
            .all(|entry| entry.description.contains("POPUG-1 Task 1")),
        "{:?}",
        mine.entries
    );

    let earnings = app
        .billing()
        .get_management_earnings(with_token(
            pb::GetManagementEarningsRequest::default(),
            &app.admin_token,
        ))
        .await
        .expect("earnings")
        .into_inner()
        .days;
    assert_eq!(earnings.len(), 1);
    assert_eq!(earnings[0].earnings_cents, 2 * fee - reward);
    app.assert_invariants().await;
}

#[tokio::test]
async fn prices_are_drawn_once_per_task_within_their_ranges() {
    let mut app = spawn_app(None).await;
    let (worker, _) = app.account("worker1", auth::Role::Worker).await;
    let now = chrono::Utc::now();
    let tasks: Vec<uuid::Uuid> = (0..150).map(|_| uuid::Uuid::new_v4()).collect();
    for (i, task) in tasks.iter().enumerate() {
        // Whichever event comes first prices the task: here the assignment.
        app.publish(&assigned(*task, worker, None), now).await;
        app.publish(&created(*task, i + 1), now).await;
    }
    consume(&mut app.consumer, 300).await;
    let prices = prices_of(&app.billing_events().await);
    assert_eq!(prices.len(), 150);
    assert!(prices.iter().all(
        |p| (1_000..=2_000).contains(&p.fee_cents) && (2_000..=4_000).contains(&p.reward_cents)
    ));
    let distinct: std::collections::HashSet<i64> = prices.iter().map(|p| p.fee_cents).collect();
    assert!(
        distinct.len() > 50,
        "fees vary: {} distinct of 150",
        distinct.len()
    );
    let charged: i64 = prices.iter().map(|p| p.fee_cents).sum();
    assert_eq!(app.balance(worker).await, -charged);
    app.assert_invariants().await;
}

#[tokio::test]
async fn out_of_order_events_still_charge_once_at_the_right_price() {
    let mut app = spawn_app(None).await;
    let now = chrono::Utc::now();
    let task = uuid::Uuid::new_v4();
    // A task and an assignee billing has never heard of: the assignment
    // arrives before the task's creation and before the account exists.
    let stranger = uuid::Uuid::new_v4();
    app.publish(&assigned(task, stranger, None), now).await;
    app.publish(&completed(task, stranger), now).await;
    consume(&mut app.consumer, 2).await;
    app.publish(&created(task, 9), now).await;
    let account_created = popug_proto::pb::popug::events::accounts::v1::AccountCreated {
        account_id: stranger.to_string(),
        login: "stranger".into(),
        name: "Stranger".into(),
        email: "stranger@popug.inc".into(),
        role: popug_proto::pb::popug::events::accounts::v1::Role::Worker.into(),
        active: true,
        version: 1,
    };
    app.publish(&account_created, now).await;
    consume(&mut app.consumer, 2).await;
    let prices = prices_of(&app.billing_events().await);
    assert_eq!(prices.len(), 1);
    assert_eq!(
        app.balance(stranger).await,
        prices[0].reward_cents - prices[0].fee_cents
    );
    let entries = app
        .billing()
        .get_account(with_token(
            pb::GetAccountRequest {
                account_id: stranger.to_string(),
                date: String::new(),
            },
            &app.admin_token,
        ))
        .await
        .expect("account")
        .into_inner()
        .entries;
    assert!(
        entries
            .iter()
            .all(|entry| entry.description.contains("POPUG-9")),
        "filled in later: {entries:?}"
    );
    app.assert_invariants().await;
}

#[tokio::test]
async fn a_duplicated_event_gives_exactly_one_entry_even_concurrently() {
    let mut app = spawn_app(None).await;
    let (worker, _) = app.account("worker1", auth::Role::Worker).await;
    let task = uuid::Uuid::new_v4();
    let body = app
        .publish(&assigned(task, worker, None), chrono::Utc::now())
        .await;
    for _ in 0..4 {
        app.publish_bytes(tasks_v1::TaskAssigned::ROUTING_KEY, &body)
            .await;
    }
    // A second billing consumer competes for the five copies.
    let broker = popug_bus::Broker::new(
        "amqp://guest:guest@127.0.0.1:5672/%2f"
            .parse()
            .expect("url"),
        app.topology.clone(),
        "billing-2",
    );
    let mut second = Consumer::new(
        app.ledger.pool().clone(),
        broker,
        "billing",
        billing_svc::handlers::handlers(
            &app.ledger,
            &popug_token::Standings::new(std::sync::Arc::new(
                popug_runtime::directory::AccountsDirectory::new(app.ledger.pool().clone()),
            )),
        ),
        ConsumerConfig::default(),
    );
    // Both run until the five copies are settled between them; cancelling
    // only ever interrupts a wait for a delivery, never a batch in hand.
    let token = CancellationToken::new();
    let settled = std::sync::atomic::AtomicUsize::new(0);
    async fn compete(
        consumer: &mut Consumer,
        settled: &std::sync::atomic::AtomicUsize,
        token: &CancellationToken,
    ) {
        while let Some(report) = consumer.process_batch(token).await.expect("batch") {
            assert_eq!(report.dead_lettered, 0);
            if settled.fetch_add(report.settled(), std::sync::atomic::Ordering::SeqCst)
                + report.settled()
                >= 5
            {
                token.cancel();
            }
        }
    }
    tokio::time::timeout(Duration::from_secs(30), async {
        tokio::join!(
            compete(&mut app.consumer, &settled, &token),
            compete(&mut second, &settled, &token)
        )
    })
    .await
    .expect("the five copies are settled");
    let prices = prices_of(&app.billing_events().await);
    assert_eq!(prices.len(), 1);
    assert_eq!(
        app.balance(worker).await,
        -prices[0].fee_cents,
        "charged once"
    );
    app.assert_invariants().await;
}

#[tokio::test]
async fn a_v1_task_created_is_understood() {
    let mut app = spawn_app(None).await;
    let (worker, _) = app.account("worker1", auth::Role::Worker).await;
    let task = uuid::Uuid::new_v4();
    let legacy = tasks_v1::TaskCreated {
        task_id: task.to_string(),
        title: "[UBERPOP-42] Fix the old nest".into(),
        description: String::new(),
    };
    app.publish(&legacy, chrono::Utc::now()).await;
    app.publish(&assigned(task, worker, None), chrono::Utc::now())
        .await;
    assert_eq!(consume(&mut app.consumer, 2).await.applied, 2);
    let entries = app
        .billing()
        .get_account(with_token(
            pb::GetAccountRequest {
                account_id: worker.to_string(),
                date: String::new(),
            },
            &app.admin_token,
        ))
        .await
        .expect("account")
        .into_inner()
        .entries;
    assert_eq!(entries.len(), 1);
    assert!(
        entries[0]
            .description
            .ends_with(" Fix the old nest (assigned at creation)"),
        "{}",
        entries[0].description
    );
    app.assert_invariants().await;
}

/// Every assignment charges its fee, so a shuffle that leaves a task with
/// its popug charges it again: the popug's statement shows two fees of the
/// same amount, told apart by their reasons (at creation, by the shuffle
/// that kept the task), and a shuffle to another popug says so too. The
/// database refuses a fee that does not say why it was charged.
#[tokio::test]
async fn a_shuffle_that_keeps_a_task_shows_two_fees_with_their_reasons() {
    let mut app = spawn_app(None).await;
    let (worker, _) = app.account("worker1", auth::Role::Worker).await;
    let (other, _) = app.account("worker2", auth::Role::Worker).await;
    let task = uuid::Uuid::new_v4();
    let now = chrono::Utc::now();
    app.publish(&created(task, 7), now).await;
    app.publish(&assigned(task, worker, None), now).await;
    app.publish(&assigned(task, worker, Some(worker)), now)
        .await;
    app.publish(&assigned(task, other, Some(worker)), now).await;
    assert_eq!(consume(&mut app.consumer, 4).await.applied, 4);

    // Each fee line of a statement, as (amount, description), sorted.
    let fees = async |account: uuid::Uuid| {
        let mut lines: Vec<(i64, String)> = app
            .statement(account, "", "")
            .await
            .lines
            .into_iter()
            .map(|line| {
                let entry = line.entry.expect("an entry");
                assert_eq!(entry.kind, pb::EntryKind::AssignmentFee as i32);
                (entry.amount_cents, entry.description)
            })
            .collect();
        lines.sort();
        lines
    };
    let kept = fees(worker).await;
    let fee = kept.iter().map(|(cents, _)| *cents).next().expect("a fee");
    assert_eq!(
        kept,
        [
            (
                fee,
                "fee for POPUG-7 Task 7 (assigned at creation)".to_owned()
            ),
            (
                fee,
                "fee for POPUG-7 Task 7 (reassigned by a shuffle to the same popug)".to_owned()
            ),
        ]
    );
    assert_eq!(
        fees(other).await,
        [(
            fee,
            "fee for POPUG-7 Task 7 (reassigned by a shuffle)".to_owned()
        )]
    );
    let mine = app
        .billing()
        .get_account(with_token(
            pb::GetAccountRequest {
                account_id: worker.to_string(),
                date: String::new(),
            },
            &app.admin_token,
        ))
        .await
        .expect("account")
        .into_inner();
    let mut described: Vec<String> = mine.entries.into_iter().map(|e| e.description).collect();
    described.sort();
    assert_eq!(
        described,
        kept.into_iter().map(|(_, text)| text).collect::<Vec<_>>(),
        "the audit log says the same"
    );

    use diesel_async::RunQueryDsl as _;
    let mut conn = app.ledger.pool().get().await.expect("connection");
    let error = diesel::sql_query(
        "INSERT INTO transactions (tx_id, kind, task_id, source_event_id, day) \
         VALUES (gen_random_uuid(), 'assignment_fee', $1, gen_random_uuid(), current_date)",
    )
    .bind::<diesel::sql_types::Uuid, _>(task)
    .execute(&mut conn)
    .await
    .expect_err("a fee without its reason");
    assert!(
        error
            .to_string()
            .contains("transactions_fees_have_a_reason"),
        "{error}"
    );
    drop(conn);
    app.assert_invariants().await;
}
