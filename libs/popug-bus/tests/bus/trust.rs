//! Trust on the bus: a delivery whose routing key, envelope and payload
//! type disagree with the catalog, or that names the wrong producer, is
//! dead-lettered on its first delivery and never applied.

use super::*;
use popug_proto::pb::popug::events::{
    tasks::v1::{TaskAssigned, TaskCompleted},
    v1::Envelope,
};

/// Handlers of assignments, completions and accounts that count each call.
fn counting_handlers(calls: &Arc<AtomicUsize>) -> Handlers {
    let (assigned, completed, created) = (Arc::clone(calls), Arc::clone(calls), Arc::clone(calls));
    Handlers::new()
        .on::<TaskAssigned, _>(move |_, _, _| {
            assigned.fetch_add(1, Ordering::SeqCst);
            Box::pin(async { Ok(()) })
        })
        .on::<TaskCompleted, _>(move |_, _, _| {
            completed.fetch_add(1, Ordering::SeqCst);
            Box::pin(async { Ok(()) })
        })
        .on::<AccountCreated, _>(move |_, _, _| {
            created.fetch_add(1, Ordering::SeqCst);
            Box::pin(async { Ok(()) })
        })
}

fn completion() -> TaskCompleted {
    TaskCompleted {
        task_id: uuid::Uuid::new_v4().to_string(),
        assignee_id: uuid::Uuid::new_v4().to_string(),
    }
}

/// A completion's envelope as the tracker writes it.
fn completed_envelope() -> Envelope {
    envelope::wrap(&completion(), "tracker", chrono::Utc::now())
}

fn properties(envelope: &Envelope) -> BasicProperties {
    BasicProperties::default().with_message_id(envelope.event_id.as_str().into())
}

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

    let report = consume(&mut consumer, forged.len() + 1).await;
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
    assert_eq!(consume(&mut consumer, 1).await.dead_lettered, 1);
    // The replay sends it to the live queue under the queue's name; the
    // consumer checks the key it was first published with, and refuses again.
    assert_eq!(
        dead_letters::replay(&world.pool, &world.broker, "accounts-test", None)
            .await
            .expect("replay"),
        1
    );
    assert_eq!(consume(&mut consumer, 1).await.dead_lettered, 1);
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
async fn replay_marks_on_a_message_from_the_exchange_are_not_believed() {
    let world = World::new().await;
    let calls = Arc::new(AtomicUsize::new(0));
    let mut consumer = world.declared_consumer(counting_handlers(&calls)).await;
    // A completion on the assignment key that claims to be a replay of a
    // completion: the claim is ignored, the key it came on is checked.
    let envelope = completed_envelope();
    let mut headers = lapin::types::FieldTable::default();
    headers.insert(
        dead_letters::REPLAYED_HEADER.into(),
        lapin::types::AMQPValue::Boolean(true),
    );
    headers.insert(
        dead_letters::ROUTING_KEY_HEADER.into(),
        lapin::types::AMQPValue::LongString("task.completed.v1".into()),
    );
    world
        .publish_with(
            "task.assigned.v1",
            &envelope.encode_to_vec(),
            properties(&envelope).with_headers(headers),
        )
        .await;
    assert_eq!(consume(&mut consumer, 1).await.dead_lettered, 1);
    assert_eq!(AtomicUsize::load(&calls, Ordering::SeqCst), 0);
}
