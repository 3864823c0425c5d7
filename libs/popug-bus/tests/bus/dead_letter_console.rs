//! The dead-letter console over gRPC: bad messages dead-lettered, then
//! listed, filtered, counted by error, shown as JSON, discarded with an
//! audit record, and replayed by id and by filter.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use popug_proto::pb::popug::ops::v1::{
    DeadLetterFilter, DiscardDeadLettersRequest, GetDeadLetterRequest, ListDeadLettersRequest,
    ListDeadLettersResponse, ReplayDeadLettersRequest,
};
use popug_testing::consume_any;

use crate::helpers::{OpsClient, World, account, recording_handlers, serve};

/// Serves `world`'s ops API with an open guard; the caller is whoever the
/// `x-test-admin` metadata names (in the services, the verified token's
/// account id).
async fn serve_console(world: &World) -> (OpsClient, tokio_util::sync::DropGuard) {
    serve(world.ops().with_identity(Arc::new(|metadata, _| {
        metadata
            .get("x-test-admin")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    })))
    .await
}

async fn list(
    client: &mut OpsClient,
    filter: DeadLetterFilter,
    all: bool,
) -> ListDeadLettersResponse {
    client
        .list_dead_letters(ListDeadLettersRequest {
            filter: Some(filter),
            include_resolved: all,
            ..ListDeadLettersRequest::default()
        })
        .await
        .expect("list")
        .into_inner()
}

fn as_admin<T>(message: T, admin: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("x-test-admin", admin.parse().expect("metadata"));
    request
}

fn at(time: chrono::DateTime<chrono::Utc>) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp {
        seconds: time.timestamp(),
        nanos: 0,
    })
}

fn invalid(status: &tonic::Status, field: &str) {
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    assert!(
        status.message().contains(&format!("`{field}`")),
        "{field} not named: {}",
        status.message()
    );
}

const ACCOUNT_CREATED: &str = "popug.events.accounts.v1.AccountCreated";

#[tokio::test]
async fn the_console_filters_counts_shows_discards_and_replays_dead_letters_by_id_and_filter() {
    let world = World::new().await;
    let broken = Arc::new(AtomicBool::new(true));
    let mut consumer = world
        .declared_consumer(recording_handlers(Arc::clone(&broken), Arc::default()))
        .await;
    // Two handler failures, one invalid event, one message that is no envelope.
    let (poison_a, _) = world.publish_account(&account("poison-a")).await;
    let (poison_b, _) = world.publish_account(&account("poison-b")).await;
    let mut invalid_event = account("invalid");
    invalid_event.account_id = "42".into();
    world.publish_account(&invalid_event).await;
    world
        .publish_raw("account.created.v1", b"\xff\x00 not protobuf", "garbage")
        .await;
    // Each poison message is tried 3 times; the others fail at once.
    assert_eq!(consume_any(&mut consumer, 8).await.dead_lettered, 4);
    world.await_dead_letter_depth(4).await;
    let (mut client, _server) = serve_console(&world).await;

    // Everything, with counts by error.
    let everything = list(&mut client, DeadLetterFilter::default(), false).await;
    assert_eq!((everything.unresolved, everything.matching), (4, 4));
    assert_eq!(everything.dead_letter_queue_depth, 4);
    assert_eq!(
        everything.error_counts.len(),
        4,
        "{:?}",
        everything.error_counts
    );
    assert!(everything.error_counts.iter().all(|count| count.count == 1));
    let id_of = |event_id: &str| {
        everything
            .dead_letters
            .iter()
            .find(|letter| letter.event_id == event_id)
            .map(|letter| letter.id)
            .expect("listed")
    };
    let (a, b) = (id_of(&poison_a), id_of(&poison_b));
    let garbage = everything
        .dead_letters
        .iter()
        .find(|letter| letter.event_id.is_empty())
        .expect("the garbage is listed")
        .id;
    let invalid_id = everything
        .dead_letters
        .iter()
        .find(|letter| letter.error.contains("`account_id`"))
        .expect("the invalid event is listed")
        .id;

    // By type: the three account events; by error text, ignoring case and
    // taking wildcards literally; by time.
    let accounts = list(
        &mut client,
        DeadLetterFilter {
            event_type: ACCOUNT_CREATED.into(),
            ..DeadLetterFilter::default()
        },
        false,
    )
    .await;
    assert_eq!((accounts.dead_letters.len(), accounts.matching), (3, 3));
    assert_eq!(accounts.unresolved, 4, "unresolved counts every row");
    let by_error = list(
        &mut client,
        DeadLetterFilter {
            error_contains: "CANNOT HANDLE POISON".into(),
            ..DeadLetterFilter::default()
        },
        false,
    )
    .await;
    let mut found: Vec<i64> = by_error
        .dead_letters
        .iter()
        .map(|letter| letter.id)
        .collect();
    found.sort_unstable();
    assert_eq!(found, vec![a, b]);
    assert_eq!(by_error.error_counts.len(), 2);
    let wildcard = list(
        &mut client,
        DeadLetterFilter {
            error_contains: "%".into(),
            ..DeadLetterFilter::default()
        },
        false,
    )
    .await;
    assert_eq!(wildcard.matching, 0, "`%` is no wildcard");
    let now = chrono::Utc::now();
    let future = list(
        &mut client,
        DeadLetterFilter {
            failed_after: at(now + chrono::Duration::hours(1)),
            ..DeadLetterFilter::default()
        },
        false,
    )
    .await;
    assert_eq!(future.matching, 0);
    let past_hour = list(
        &mut client,
        DeadLetterFilter {
            failed_after: at(now - chrono::Duration::hours(1)),
            failed_before: at(now + chrono::Duration::hours(1)),
            ..DeadLetterFilter::default()
        },
        false,
    )
    .await;
    assert_eq!(past_hour.matching, 4);

    // Bad filters and ids name their field.
    let backwards = client
        .list_dead_letters(ListDeadLettersRequest {
            filter: Some(DeadLetterFilter {
                failed_after: at(now),
                failed_before: at(now - chrono::Duration::hours(1)),
                ..DeadLetterFilter::default()
            }),
            ..ListDeadLettersRequest::default()
        })
        .await
        .expect_err("backwards");
    invalid(&backwards, "filter.failed_before");
    let control = client
        .list_dead_letters(ListDeadLettersRequest {
            filter: Some(DeadLetterFilter {
                event_type: "a\0b".into(),
                ..DeadLetterFilter::default()
            }),
            ..ListDeadLettersRequest::default()
        })
        .await
        .expect_err("NUL");
    invalid(&control, "filter.event_type");
    let bad_time = client
        .list_dead_letters(ListDeadLettersRequest {
            filter: Some(DeadLetterFilter {
                failed_after: Some(prost_types::Timestamp {
                    seconds: 0,
                    nanos: -1,
                }),
                ..DeadLetterFilter::default()
            }),
            ..ListDeadLettersRequest::default()
        })
        .await
        .expect_err("bad time");
    invalid(&bad_time, "filter.failed_after");
    let negative = client
        .replay_dead_letters(ReplayDeadLettersRequest {
            ids: vec![a, -3],
            ..ReplayDeadLettersRequest::default()
        })
        .await
        .expect_err("negative id");
    invalid(&negative, "ids");

    // One letter shown: the envelope as JSON, its payload decoded.
    let shown = client
        .get_dead_letter(GetDeadLetterRequest {
            id: a,
            include_body: false,
        })
        .await
        .expect("show")
        .into_inner();
    assert_eq!(shown.decode_error, "");
    let json: serde_json::Value = serde_json::from_str(&shown.envelope_json).expect("JSON");
    assert_eq!(json["eventId"], poison_a.as_str());
    assert_eq!(json["payload"]["login"], "poison-a");
    assert_eq!(
        json["payload"]["@type"],
        format!("type.googleapis.com/{ACCOUNT_CREATED}")
    );
    let letter = shown.dead_letter.expect("its row");
    assert!(letter.error.contains("cannot handle poison-a"));
    assert!(letter.body.is_empty() && letter.body_size > 0);
    let unreadable = client
        .get_dead_letter(GetDeadLetterRequest {
            id: garbage,
            include_body: true,
        })
        .await
        .expect("show")
        .into_inner();
    assert_eq!(unreadable.envelope_json, "");
    assert!(
        unreadable
            .decode_error
            .contains("is not a popug.events.v1.Envelope")
    );
    assert_eq!(
        unreadable.dead_letter.expect("row").body,
        b"\xff\x00 not protobuf"
    );
    let zero = client
        .get_dead_letter(GetDeadLetterRequest::default())
        .await
        .expect_err("id 0");
    invalid(&zero, "id");
    let missing = client
        .get_dead_letter(GetDeadLetterRequest {
            id: 999_999,
            include_body: false,
        })
        .await
        .expect_err("no such row");
    assert_eq!(missing.code(), tonic::Code::NotFound);

    // Discard needs a caller, ids and a reason.
    let anonymous = client
        .discard_dead_letters(DiscardDeadLettersRequest {
            ids: vec![garbage],
            reason: "junk".into(),
        })
        .await
        .expect_err("nobody");
    assert_eq!(anonymous.code(), tonic::Code::Unauthenticated);
    let no_reason = client
        .discard_dead_letters(as_admin(
            DiscardDeadLettersRequest {
                ids: vec![garbage],
                reason: "  ".into(),
            },
            "admin-1",
        ))
        .await
        .expect_err("no reason");
    invalid(&no_reason, "reason");
    let no_ids = client
        .discard_dead_letters(as_admin(
            DiscardDeadLettersRequest {
                ids: Vec::new(),
                reason: "junk".into(),
            },
            "admin-1",
        ))
        .await
        .expect_err("no ids");
    invalid(&no_ids, "ids");

    // Discarded: closed, audited, dropped from the queue.
    let discarded = client
        .discard_dead_letters(as_admin(
            DiscardDeadLettersRequest {
                ids: vec![garbage, invalid_id, 424_242],
                reason: "not ours: a test publisher's junk".into(),
            },
            "admin-1",
        ))
        .await
        .expect("discard")
        .into_inner();
    let mut expected = vec![garbage, invalid_id];
    expected.sort_unstable();
    assert_eq!(discarded.discarded_ids, expected);
    assert_eq!(discarded.not_found_ids, vec![424_242]);
    assert_eq!(discarded.dropped_from_queue, 2);
    assert_eq!(world.dead_letter_depth().await, 2);
    let again = client
        .discard_dead_letters(as_admin(
            DiscardDeadLettersRequest {
                ids: vec![garbage],
                reason: "again".into(),
            },
            "admin-2",
        ))
        .await
        .expect("discard again")
        .into_inner();
    assert!(again.discarded_ids.is_empty());
    assert_eq!(again.already_closed_ids, vec![garbage]);
    let closed = list(&mut client, DeadLetterFilter::default(), true).await;
    assert_eq!((closed.unresolved, closed.matching), (2, 4));
    let shown = closed
        .dead_letters
        .iter()
        .find(|letter| letter.id == garbage)
        .expect("listed");
    assert!(shown.discarded_at.is_some() && shown.resolved_at.is_some());
    assert_eq!(shown.discarded_by, "admin-1");
    assert_eq!(shown.discard_reason, "not ours: a test publisher's junk");
    assert_eq!(
        world
            .count(
                "SELECT count(*) AS n FROM dead_letter_discards \
                 WHERE discarded_by = 'admin-1' AND octet_length(body_sha256) = 32 \
                   AND reason = 'not ours: a test publisher''s junk'"
            )
            .await,
        2
    );

    // After the fix: replay one letter by id; the other stays queued.
    broken.store(false, Ordering::SeqCst);
    let replayed = client
        .replay_dead_letters(ReplayDeadLettersRequest {
            ids: vec![a, garbage],
            ..ReplayDeadLettersRequest::default()
        })
        .await
        .expect("replay by id")
        .into_inner();
    assert_eq!(replayed.replayed_ids, vec![a]);
    assert_eq!(
        replayed.not_replayed_ids,
        vec![garbage],
        "a discarded letter is not replayed"
    );
    assert_eq!(consume_any(&mut consumer, 1).await.applied, 1);
    assert_eq!(world.dead_letter_depth().await, 1);
    // Then the rest by filter.
    let replayed = client
        .replay_dead_letters(ReplayDeadLettersRequest {
            filter: Some(DeadLetterFilter {
                error_contains: "poison-b".into(),
                ..DeadLetterFilter::default()
            }),
            ..ReplayDeadLettersRequest::default()
        })
        .await
        .expect("replay by filter")
        .into_inner();
    assert_eq!(replayed.replayed_ids, vec![b]);
    assert_eq!(consume_any(&mut consumer, 1).await.applied, 1);
    let done = list(&mut client, DeadLetterFilter::default(), false).await;
    assert_eq!((done.unresolved, done.dead_letter_queue_depth), (0, 0));
    assert_eq!(
        world
            .count("SELECT count(*) AS n FROM accounts WHERE login LIKE 'poison-%'")
            .await,
        2
    );
    assert_eq!(
        world
            .count("SELECT count(*) AS n FROM accounts WHERE login = 'invalid'")
            .await,
        0
    );
}
