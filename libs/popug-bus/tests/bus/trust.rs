//! Trust on the bus: a delivery whose routing key, envelope and payload
//! type disagree with the catalog, or that names the wrong producer, is
//! dead-lettered on its first delivery and never applied.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use lapin::options::BasicPublishOptions;
use popug_bus::dead_letters;
use popug_proto::pb::popug::events::v1::Envelope;
use popug_testing::consume_any;
use prost::Message as _;

use crate::helpers::{World, completed_envelope, counting_handlers, properties, replay_marks};

#[tokio::test]
async fn an_incoherent_event_is_dead_lettered_on_first_delivery_and_never_applied() {
    let world = World::new().await;
    let calls = Arc::new(AtomicUsize::new(0));
    let mut consumer = world.declared_consumer(counting_handlers(&calls)).await;

    // (routing key, envelope, properties, what the error names)
    let mut forged = Vec::new();
    let mut as_assigned = completed_envelope();
    as_assigned.event_name = "TaskAssigned".into();
    for key in ["task.assigned.v1", "account.created.v1"] {
        let envelope = Envelope {
            event_id: uuid::Uuid::now_v7().to_string(),
            ..as_assigned.clone()
        };
        forged.push((
            key,
            properties(&envelope),
            envelope,
            "names TaskAssigned v1",
        ));
    }
    for key in ["task.assigned.v1", "account.created.v1"] {
        let envelope = completed_envelope();
        forged.push((
            key,
            properties(&envelope),
            envelope,
            "travels on `task.completed.v1`",
        ));
    }
    let mut version_two = completed_envelope();
    version_two.event_version = 2;
    forged.push((
        "task.completed.v1",
        properties(&version_two),
        version_two,
        "names TaskCompleted v2",
    ));
    let mut from_billing = completed_envelope();
    from_billing.producer = "billing".into();
    forged.push((
        "task.completed.v1",
        properties(&from_billing),
        from_billing,
        "only `tracker` produces",
    ));
    let typed = completed_envelope();
    forged.push((
        "task.completed.v1",
        properties(&typed).with_type("popug.events.tasks.v1.TaskAssigned".into()),
        typed,
        "property `type`",
    ));
    let labelled = completed_envelope();
    forged.push((
        "task.completed.v1",
        properties(&labelled).with_app_id("billing".into()),
        labelled,
        "property `app_id`",
    ));
    for (key, properties, envelope, _) in &forged {
        world
            .publish_with(key, &envelope.encode_to_vec(), properties.clone())
            .await;
    }
    // The same completion told coherently, with the relay's properties, applies.
    let honest = completed_envelope();
    world
        .publish_with(
            "task.completed.v1",
            &honest.encode_to_vec(),
            properties(&honest)
                .with_type("popug.events.tasks.v1.TaskCompleted".into())
                .with_app_id("tracker".into()),
        )
        .await;

    let report = consume_any(&mut consumer, forged.len() + 1).await;
    assert_eq!(
        (report.applied, report.retried, report.dead_lettered),
        (1, 0, forged.len()),
        "every forgery on its first delivery"
    );
    assert_eq!(
        AtomicUsize::load(&calls, Ordering::SeqCst),
        1,
        "only the honest one applied"
    );
    assert_eq!(world.count("SELECT count(*) AS n FROM inbox").await, 1);
    let rows = world.dead_letter_rows().await;
    assert_eq!(rows.len(), forged.len());
    for (key, _, envelope, names) in &forged {
        let row = rows
            .iter()
            .find(|row| row.event_id.map(|id| id.to_string()).as_ref() == Some(&envelope.event_id))
            .unwrap_or_else(|| panic!("a row for the forgery naming {names}"));
        assert!(row.error.contains(names), "{names}: {}", row.error);
        assert_eq!(row.failures, 1);
        assert_eq!(row.routing_key.as_deref(), Some(*key));
        assert_eq!(
            row.event_type.as_deref(),
            Some("popug.events.tasks.v1.TaskCompleted")
        );
    }
    assert_eq!(
        world.dead_letter_depth().await,
        u32::try_from(forged.len()).expect("few")
    );
}

#[tokio::test]
async fn a_replayed_incoherent_event_is_held_against_its_original_routing_key() {
    let world = World::new().await;
    let calls = Arc::new(AtomicUsize::new(0));
    let mut consumer = world.declared_consumer(counting_handlers(&calls)).await;
    let envelope = completed_envelope();
    world
        .publish_raw(
            "task.assigned.v1",
            &envelope.encode_to_vec(),
            &envelope.event_id,
        )
        .await;
    assert_eq!(consume_any(&mut consumer, 1).await.dead_lettered, 1);
    // The replay sends it to the live queue under the queue's name; the
    // consumer checks the key it was first published with, and refuses again.
    assert_eq!(
        dead_letters::replay(&world.pool, &world.broker, "accounts-test", None)
            .await
            .expect("replay"),
        1
    );
    assert_eq!(consume_any(&mut consumer, 1).await.dead_lettered, 1);
    assert_eq!(AtomicUsize::load(&calls, Ordering::SeqCst), 0);
    let rows = world.dead_letter_rows().await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].failures, 2);
    assert!(
        rows[0].error.contains("published on `task.assigned.v1`"),
        "{}",
        rows[0].error
    );
}

#[tokio::test]
async fn a_replay_mark_is_believed_only_for_the_body_its_row_holds() {
    let world = World::new().await;
    let calls = Arc::new(AtomicUsize::new(0));
    let mut consumer = world.declared_consumer(counting_handlers(&calls)).await;
    let envelope = completed_envelope();
    world
        .publish_raw("task.completed.v1", b"not an envelope", &envelope.event_id)
        .await;
    assert_eq!(consume_any(&mut consumer, 1).await.dead_lettered, 1);
    let row = world.dead_letter_rows().await[0].id;

    // Another completion, put straight into the queue (as only a replay
    // should) and marked as the replay of that row, or of a row that does
    // not exist: neither mark is believed, and without it the message came
    // on the queue's name, which no event travels on.
    let queue = world.broker.topology().queue("accounts-test");
    for claimed in [row, row + 1_000] {
        let forged = completed_envelope();
        let channel = world.channel().await;
        channel
            .basic_publish(
                "".into(),
                queue.as_str().into(),
                BasicPublishOptions::default(),
                &forged.encode_to_vec(),
                properties(&forged).with_headers(replay_marks(claimed)),
            )
            .await
            .expect("publish")
            .await
            .expect("confirm");
    }
    let report = consume_any(&mut consumer, 2).await;
    assert_eq!((report.applied, report.dead_lettered), (0, 2));
    assert_eq!(AtomicUsize::load(&calls, Ordering::SeqCst), 0);
    let rows = world.dead_letter_rows().await;
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0].failures, 1, "the claimed row is untouched");
    for forged in &rows[1..] {
        assert!(forged.error.contains("published on `"), "{}", forged.error);
    }
}
