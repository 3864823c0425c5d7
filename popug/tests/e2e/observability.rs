//! One trace crosses the bus, and every service exports metrics.

use std::time::Duration;

use popug_proto::pb::popug::{auth::v1 as auth, tracker::v1 as tracker};

use crate::{
    helpers::{World, eventually},
    support::scrape,
};

/// The trace id of a W3C `traceparent` (`00-<trace id>-<span id>-<flags>`).
fn trace_id(traceparent: &str) -> &str {
    traceparent.split('-').nth(1).unwrap_or_default()
}

#[tokio::test]
async fn one_trace_crosses_the_bus_and_every_service_exports_metrics() {
    use prost::Message as _;
    let world = Box::pin(World::start()).await;
    let (_, worker) = world.hire("kesha", auth::Role::Worker).await;
    eventually(|| world.create_task(&world.admin, "Warm up")).await;

    // A probe queue sees what billing publishes about the next task.
    let (connection, channel) = world.broker.confirm_channel().await.expect("broker");
    let probe = popug_bus::QueueSpec::new("trace-probe", vec!["transaction.applied.v1".into()]);
    popug_bus::topology::declare_queue(&channel, world.broker.topology(), &probe)
        .await
        .expect("probe queue");

    // The caller starts a trace; tracker continues it, and billing after it.
    let trace = format!("{:032x}", uuid::Uuid::new_v4().as_u128());
    let mut request = tonic::Request::new(tracker::CreateTaskRequest {
        title: "Feed the parrots".into(),
        jira_id: String::new(),
        description: "traced".into(),
    });
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{trace}-00f067aa0ba902b7-01")
            .parse()
            .expect("metadata"),
    );
    let task = world
        .channels
        .tracker(&world.admin)
        .create_task(request)
        .await
        .expect("created")
        .into_inner()
        .task
        .expect("task");
    world
        .channels
        .tracker(&worker)
        .complete_task(tracker::CompleteTaskRequest {
            task_id: task.task_id.clone(),
        })
        .await
        .expect("completed");

    let queue = world.broker.topology().queue("trace-probe");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut traced = 0;
    while traced < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "billing's entries never came"
        );
        let Some(message) = channel
            .basic_get(
                queue.as_str().into(),
                lapin::options::BasicGetOptions { no_ack: true },
            )
            .await
            .expect("get")
        else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let opened = popug_bus::envelope::open(&message.delivery.data).expect("an envelope");
        let applied = popug_proto::pb::popug::events::billing::v1::TransactionApplied::decode(
            opened.payload.as_slice(),
        )
        .expect("TransactionApplied");
        if applied.task_id != task.task_id {
            continue;
        }
        // The fee (from TaskAssigned) and the reward (from TaskCompleted's
        // own RPC, a new trace) both come from the traced task; the fee's
        // event continues the caller's trace.
        let header = message
            .delivery
            .properties
            .headers()
            .as_ref()
            .and_then(|headers| headers.inner().get("traceparent").cloned());
        let header = match header {
            Some(lapin::types::AMQPValue::LongString(value)) => value.to_string(),
            other => panic!("no traceparent header: {other:?}"),
        };
        assert_eq!(
            header, opened.meta.trace.traceparent,
            "the header mirrors the envelope"
        );
        if applied.kind
            == i32::from(popug_proto::pb::popug::events::billing::v1::EntryKind::AssignmentFee)
        {
            assert_eq!(
                trace_id(&header),
                trace,
                "the caller's trace reaches billing's events"
            );
        } else {
            assert!(!trace_id(&header).is_empty());
        }
        traced += 1;
    }
    connection.close(200, "done".into()).await.ok();
    world.assert_books_agree().await;

    let [
        auth_metrics,
        tracker_metrics,
        billing_metrics,
        analytics_metrics,
    ] = world.metrics;
    let tracker = scrape(tracker_metrics).await;
    assert!(
        tracker
            .lines()
            .any(|line| line.starts_with("popug_rpc_requests_total{")
                && line.contains(r#"method="/popug.tracker.v1.TrackerService/CreateTask""#)
                && line.contains(r#"code="Ok""#)
                && line.contains(r#"service="tracker""#)),
        "{tracker}"
    );
    assert!(
        tracker.contains("popug_rpc_duration_seconds_bucket{"),
        "{tracker}"
    );
    assert!(tracker.contains("popug_outbox_pending{"), "{tracker}");
    let billing = scrape(billing_metrics).await;
    assert!(
        billing
            .lines()
            .any(|line| line.starts_with("popug_events_consumed_total{")
                && line.contains(r#"outcome="applied""#)
                && line.contains(r#"service="billing""#)),
        "{billing}"
    );
    assert!(
        billing.contains("popug_consumer_lag_seconds_bucket{"),
        "{billing}"
    );
    assert!(billing.contains("popug_ledger_balance_cents"), "{billing}");
    for addr in [auth_metrics, analytics_metrics] {
        assert!(scrape(addr).await.contains("popug_rpc_requests_total"));
    }
}
