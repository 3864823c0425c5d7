//! Dead letters stay usable: short errors and log lines whatever the message
//! held, the envelope's names kept when only the payload failed, one row per
//! message however often it is replayed, and replays that resolve it.

use std::sync::{
    Arc,
    atomic::{AtomicBool, AtomicUsize, Ordering},
};

use diesel_async::RunQueryDsl as _;
use popug_bus::{Handlers, dead_letters, envelope};
use popug_proto::pb::popug::events::tasks::v2::TaskCreated;
use popug_testing::consume_any;
use prost::Message as _;

use crate::helpers::{CapturedLogs, World, account, recording_handlers, serve_ops};

/// One `failed_events` row, as an operator would read it.
#[derive(Debug, diesel::QueryableByName)]
pub(crate) struct Row {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub(crate) id: i64,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Uuid>)]
    pub(crate) event_id: Option<uuid::Uuid>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    pub(crate) event_type: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    pub(crate) routing_key: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub(crate) error: String,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pub(crate) failures: i32,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    pub(crate) resolved: bool,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub(crate) body_size: i64,
}

impl World {
    /// Every `failed_events` row, oldest first.
    pub(crate) async fn dead_letter_rows(&self) -> Vec<Row> {
        let mut conn = self.pool.get().await.expect("connection");
        diesel::sql_query(
            "SELECT id, event_id, event_type, routing_key, error, failures, \
                    resolved_at IS NOT NULL AS resolved, octet_length(body)::bigint AS body_size \
             FROM failed_events ORDER BY id",
        )
        .load(&mut conn)
        .await
        .expect("failed_events")
    }

    pub(crate) async fn replay(&self) -> u32 {
        dead_letters::replay(&self.pool, &self.broker, "accounts-test", None)
            .await
            .expect("replay")
    }
}

/// A task whose jira id is `jira_id`, from the tracker.
fn task(jira_id: String) -> TaskCreated {
    TaskCreated {
        task_id: uuid::Uuid::new_v4().to_string(),
        key: "POPUG-1".into(),
        title: "Feed the popugs".into(),
        jira_id,
        description: String::new(),
    }
}

fn task_handlers(calls: Arc<AtomicUsize>) -> Handlers {
    Handlers::new().on::<TaskCreated, _>(move |_, _, _| {
        calls.fetch_add(1, Ordering::SeqCst);
        Box::pin(async { Ok(()) })
    })
}

#[tokio::test]
async fn a_payload_that_fails_keeps_its_envelope_id_type_and_routing_key() {
    let world = World::new().await;
    let mut consumer = world
        .declared_consumer(recording_handlers(Arc::default(), Arc::default()))
        .await;
    let mut invalid = account("bad");
    invalid.account_id = "42".into();
    let (event_id, _) = world.publish_account(&invalid).await;
    assert_eq!(consume_any(&mut consumer, 1).await.dead_lettered, 1);

    let rows = world.dead_letter_rows().await;
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(row.event_id.map(|id| id.to_string()), Some(event_id));
    assert_eq!(
        row.event_type.as_deref(),
        Some("popug.events.accounts.v1.AccountCreated")
    );
    assert_eq!(row.routing_key.as_deref(), Some("account.created.v1"));
    assert!(row.error.contains("`account_id`"), "{}", row.error);
}

#[tokio::test]
async fn a_ten_million_character_field_leaves_a_short_error_and_log_line_and_the_whole_body() {
    let world = World::new().await;
    let calls = Arc::new(AtomicUsize::new(0));
    let mut consumer = world
        .declared_consumer(task_handlers(Arc::clone(&calls)))
        .await;
    let huge = task("X".repeat(10_000_000));
    let envelope = envelope::wrap(&huge, "tracker", chrono::Utc::now());
    let body = envelope.encode_to_vec();
    world
        .publish_raw("task.created.v2", &body, &envelope.event_id)
        .await;

    let logs = CapturedLogs::start();
    assert_eq!(consume_any(&mut consumer, 1).await.dead_lettered, 1);
    assert_eq!(
        AtomicUsize::load(&calls, Ordering::SeqCst),
        0,
        "never applied"
    );

    let rows = world.dead_letter_rows().await;
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert!(
        row.error.chars().count() <= dead_letters::MAX_ERROR_CHARS,
        "{} characters",
        row.error.chars().count()
    );
    assert!(row.error.contains("`jira_id`"), "{}", &row.error[..200]);
    // The rule's message quotes at most 64 characters of the value, so the
    // error is short by itself; cutting longer ones is covered by
    // `errors_are_cut_to_a_bounded_length_with_a_marker`.
    assert!(row.error.chars().count() < 1_000, "{}", row.error);
    assert_eq!(
        row.body_size,
        i64::try_from(body.len()).expect("size"),
        "the full body stays"
    );
    assert_eq!(
        row.event_id.map(|id| id.to_string()),
        Some(envelope.event_id)
    );

    let lines = logs.lines();
    let alert = lines
        .iter()
        .find(|line| line.contains("ALERT: event dead-lettered"))
        .expect("an alert was logged");
    assert!(alert.contains("`jira_id`"), "{alert}");
    let longest = lines.iter().map(String::len).max().unwrap_or(0);
    assert!(longest < 2_000, "a log line of {longest} bytes");
}

#[tokio::test]
async fn a_replayed_letter_that_fails_again_keeps_one_row_and_a_fixed_handler_resolves_it() {
    let world = World::new().await;
    let broken = Arc::new(AtomicBool::new(true));
    let mut consumer = world
        .declared_consumer(recording_handlers(Arc::clone(&broken), Arc::default()))
        .await;
    let (event_id, _) = world.publish_account(&account("poison-twice")).await;
    assert_eq!(consume_any(&mut consumer, 3).await.dead_lettered, 1);
    let row_id = world.dead_letter_rows().await[0].id;

    // Replayed before the fix: it fails its attempts again, on the same row.
    assert_eq!(world.replay().await, 1);
    let report = consume_any(&mut consumer, 3).await;
    assert_eq!((report.retried, report.dead_lettered), (2, 1));
    let rows = world.dead_letter_rows().await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].id, row_id);
    assert_eq!(rows[0].failures, 2);
    assert!(!rows[0].resolved);
    assert_eq!(rows[0].event_id.map(|id| id.to_string()), Some(event_id));
    assert_eq!(world.dead_letter_depth().await, 1);

    // After the fix, the replay applies it and resolves that row.
    broken.store(false, Ordering::SeqCst);
    assert_eq!(world.replay().await, 1);
    assert_eq!(consume_any(&mut consumer, 1).await.applied, 1);
    let rows = world.dead_letter_rows().await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(rows[0].resolved);
    assert_eq!(world.count("SELECT count(*) AS n FROM accounts").await, 1);
    assert_eq!(world.dead_letter_depth().await, 0);
}

#[tokio::test]
async fn an_unreadable_message_replayed_again_counts_on_its_own_row() {
    let world = World::new().await;
    let mut consumer = world
        .declared_consumer(recording_handlers(Arc::default(), Arc::default()))
        .await;
    world
        .publish_raw("account.created.v1", b"\xff\x00 not protobuf", "garbage")
        .await;
    assert_eq!(consume_any(&mut consumer, 1).await.dead_lettered, 1);
    for replays in 1..=2 {
        assert_eq!(world.replay().await, 1);
        assert_eq!(consume_any(&mut consumer, 1).await.dead_lettered, 1);
        let rows = world.dead_letter_rows().await;
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(rows[0].failures, 1 + replays);
        assert_eq!(rows[0].event_id, None);
        assert_eq!(rows[0].routing_key.as_deref(), Some("account.created.v1"));
    }
}

#[tokio::test]
async fn a_row_without_an_event_id_is_resolved_by_the_replay_that_applies_it() {
    let world = World::new().await;
    let broken = Arc::new(AtomicBool::new(true));
    let mut consumer = world
        .declared_consumer(recording_handlers(Arc::clone(&broken), Arc::default()))
        .await;
    world.publish_account(&account("poison-old-row")).await;
    assert_eq!(consume_any(&mut consumer, 3).await.dead_lettered, 1);
    // As rows recorded before envelopes' ids were kept for every failure.
    let mut conn = world.pool.get().await.expect("connection");
    diesel::sql_query("UPDATE failed_events SET event_id = NULL, event_type = NULL")
        .execute(&mut conn)
        .await
        .expect("forget the id");
    drop(conn);

    broken.store(false, Ordering::SeqCst);
    assert_eq!(world.replay().await, 1);
    assert_eq!(consume_any(&mut consumer, 1).await.applied, 1);
    let rows = world.dead_letter_rows().await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(rows[0].resolved, "found by its body, resolved by its id");
}

#[tokio::test]
async fn a_dead_letter_without_a_row_is_recorded_at_replay_from_the_brokers_word() {
    let world = World::new().await;
    let broken = Arc::new(AtomicBool::new(true));
    let mut consumer = world
        .declared_consumer(recording_handlers(Arc::clone(&broken), Arc::default()))
        .await;
    world.publish_account(&account("poison-unrecorded")).await;
    assert_eq!(consume_any(&mut consumer, 3).await.dead_lettered, 1);
    // As when the broker dead-letters by itself at the queue's delivery limit.
    let mut conn = world.pool.get().await.expect("connection");
    diesel::sql_query("DELETE FROM failed_events")
        .execute(&mut conn)
        .await
        .expect("forget the row");
    drop(conn);

    broken.store(false, Ordering::SeqCst);
    assert_eq!(world.replay().await, 1);
    assert_eq!(consume_any(&mut consumer, 1).await.applied, 1);
    let rows = world.dead_letter_rows().await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(
        rows[0].routing_key.as_deref(),
        Some("account.created.v1"),
        "the routing key of the broker's own record (x-death)"
    );
    assert!(
        rows[0].error.contains("without a record"),
        "{}",
        rows[0].error
    );
    assert!(rows[0].resolved);
}

#[tokio::test]
async fn other_bytes_under_a_dead_letters_event_id_get_a_row_of_their_own() {
    let world = World::new().await;
    let broken = Arc::new(AtomicBool::new(true));
    let mut consumer = world
        .declared_consumer(recording_handlers(Arc::clone(&broken), Arc::default()))
        .await;
    let (event_id, _) = world.publish_account(&account("poison-original")).await;
    assert_eq!(consume_any(&mut consumer, 3).await.dead_lettered, 1);
    // Another message under the same event id: it must not take over the
    // row (and with it the original's recorded origin).
    let mut impostor = envelope::wrap(&account("x"), "auth", chrono::Utc::now());
    impostor.event_id.clone_from(&event_id);
    if let Some(payload) = impostor.payload.as_mut() {
        let mut invalid = account("impostor");
        invalid.account_id = "42".into();
        payload.value = invalid.encode_to_vec();
    }
    world
        .publish_raw("account.created.v1", &impostor.encode_to_vec(), &event_id)
        .await;
    assert_eq!(consume_any(&mut consumer, 1).await.dead_lettered, 1);
    let rows = world.dead_letter_rows().await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(
        rows[0].event_id.map(|id| id.to_string()),
        Some(event_id.clone())
    );
    assert_eq!(rows[0].failures, 1);
    assert_eq!(rows[1].event_id, None);
    assert!(
        rows[1]
            .error
            .starts_with(&format!("another dead letter holds event id {event_id}")),
        "{}",
        rows[1].error
    );

    broken.store(false, Ordering::SeqCst);
    assert_eq!(world.replay().await, 2);
    let report = consume_any(&mut consumer, 2).await;
    assert_eq!((report.applied, report.dead_lettered), (1, 1));
    let rows = world.dead_letter_rows().await;
    assert!(rows[0].resolved, "the original applied");
    assert!(!rows[1].resolved && rows[1].failures == 2, "{rows:?}");
}

#[test]
fn errors_are_cut_to_a_bounded_length_with_a_marker() {
    assert_eq!(dead_letters::bounded("short"), "short");
    let exact = "é".repeat(dead_letters::MAX_ERROR_CHARS);
    assert_eq!(dead_letters::bounded(&exact), exact.as_str());
    let long = format!("{}{}", "é".repeat(10), "x".repeat(2_000_000));
    let cut = dead_letters::bounded(&long);
    assert_eq!(cut.chars().count(), dead_letters::MAX_ERROR_CHARS);
    assert!(cut.starts_with("éé"));
    assert!(cut.ends_with(" more characters]"), "{cut}");
    let cut_count: usize = cut
        .rsplit("[cut: ")
        .next()
        .and_then(|tail| tail.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("a count");
    assert_eq!(
        cut.chars().count()
            - "… [cut:  more characters]".chars().count()
            - cut_count.to_string().len()
            + cut_count,
        long.chars().count(),
        "the marker counts what was cut"
    );
}

#[tokio::test]
async fn list_dead_letters_pages_by_count_and_size_and_sends_bodies_only_when_asked() {
    use popug_proto::pb::popug::ops::v1::{ListDeadLettersRequest, ListDeadLettersResponse};
    let world = World::new().await;
    let mut consumer = world
        .declared_consumer(
            recording_handlers(Arc::default(), Arc::default())
                .on::<TaskCreated, _>(|_, _, _| Box::pin(async { Ok(()) })),
        )
        .await;
    // Oldest first: a ten-million-character jira id, then four accounts of
    // about 300 kB each (an invalid id, and a very long name).
    let huge = envelope::wrap(&task("X".repeat(10_000_000)), "tracker", chrono::Utc::now());
    world
        .publish_raw("task.created.v2", &huge.encode_to_vec(), &huge.event_id)
        .await;
    for i in 0..4 {
        let mut big = account(&format!("big{i}"));
        big.account_id = "42".into();
        big.name = "N".repeat(300_000);
        world.publish_account(&big).await;
    }
    assert_eq!(consume_any(&mut consumer, 5).await.dead_lettered, 5);
    let (mut client, _server) = serve_ops(&world).await;

    let mut list = async |request: ListDeadLettersRequest| -> ListDeadLettersResponse {
        client
            .list_dead_letters(request)
            .await
            .expect("list")
            .into_inner()
    };
    // Without bodies: everything on one small page.
    let small = list(ListDeadLettersRequest::default()).await;
    assert_eq!(small.dead_letters.len(), 5);
    assert!(small.next_page_token.is_empty());
    assert!(
        prost::Message::encoded_len(&small) < 20_000,
        "{} bytes",
        prost::Message::encoded_len(&small)
    );
    let oldest = &small.dead_letters[4];
    assert_eq!(oldest.event_id, huge.event_id);
    assert_eq!(oldest.routing_key, "task.created.v2");
    assert!(oldest.body_size > 10_000_000);
    assert!(oldest.error.chars().count() <= dead_letters::MAX_ERROR_CHARS);
    assert!(
        small
            .dead_letters
            .iter()
            .all(|dead| dead.body.is_empty() && !dead.body_omitted)
    );

    // By count: 2, 2, 1.
    let mut token = String::new();
    let mut sizes = Vec::new();
    loop {
        let page = list(ListDeadLettersRequest {
            page_size: 2,
            page_token: token,
            ..ListDeadLettersRequest::default()
        })
        .await;
        sizes.push(page.dead_letters.len());
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    assert_eq!(sizes, [2, 2, 1]);

    // With bodies: pages end by size, and the body too large for any page is
    // left out, marked.
    let mut token = String::new();
    let mut pages = Vec::new();
    loop {
        let page = list(ListDeadLettersRequest {
            include_bodies: true,
            page_token: token,
            ..ListDeadLettersRequest::default()
        })
        .await;
        let bytes = prost::Message::encoded_len(&page);
        assert!(bytes <= 1_100_000, "a page of {bytes} bytes");
        token = page.next_page_token.clone();
        pages.push(page);
        if token.is_empty() {
            break;
        }
    }
    let shape: Vec<usize> = pages.iter().map(|page| page.dead_letters.len()).collect();
    assert_eq!(shape, [3, 1, 1]);
    let listed: Vec<_> = pages.iter().flat_map(|page| &page.dead_letters).collect();
    let mut ids: Vec<i64> = listed.iter().map(|dead| dead.id).collect();
    ids.dedup();
    assert_eq!(ids.len(), 5, "every row once");
    for dead in &listed[..4] {
        assert_eq!(dead.body.len() as u64, dead.body_size);
        envelope::open(&dead.body).expect("the body is the envelope");
    }
    let last = listed[4];
    assert!(last.body_omitted && last.body.is_empty());
    assert_eq!(last.event_id, huge.event_id);
}
