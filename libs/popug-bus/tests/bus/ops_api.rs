//! The ops API over gRPC: backlog and dead letters shown and replayed,
//! and what it announces through reflection.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use popug_testing::consume_any;
use tokio_util::sync::CancellationToken;

use crate::helpers::{World, account, recording_handlers};

/// Lists the services a server announces through reflection `v1` and `v1alpha`.
async fn reflected_services(addr: std::net::SocketAddr) -> (Vec<String>, Vec<String>) {
    // v1 and v1alpha are distinct generated modules of the same shape.
    macro_rules! list_services {
        ($version:ident, $channel:expr) => {{
            use tonic_reflection::pb::$version as reflection;
            let mut client =
                reflection::server_reflection_client::ServerReflectionClient::new($channel);
            let request = reflection::ServerReflectionRequest {
                host: String::new(),
                message_request: Some(
                    reflection::server_reflection_request::MessageRequest::ListServices(
                        String::new(),
                    ),
                ),
            };
            let mut responses = client
                .server_reflection_info(tokio_stream::iter([request]))
                .await
                .expect(stringify!(reflection $version))
                .into_inner();
            match responses
                .message()
                .await
                .expect("answer")
                .and_then(|r| r.message_response)
            {
                Some(
                    reflection::server_reflection_response::MessageResponse::ListServicesResponse(
                        list,
                    ),
                ) => list.service.into_iter().map(|s| s.name).collect(),
                other => panic!("unexpected answer {other:?}"),
            }
        }};
    }
    let channel = popug_testing::channel(addr).await;
    (
        list_services!(v1, channel.clone()),
        list_services!(v1alpha, channel),
    )
}

#[tokio::test]
async fn the_ops_api_shows_the_backlog_and_dead_letters_and_replays_them_over_grpc() {
    use popug_proto::pb::popug::ops::v1::{
        GetOutboxStatusRequest, ListDeadLettersRequest, ReplayDeadLettersRequest,
        ops_service_client::OpsServiceClient,
    };
    let world = World::new().await;
    let broken = Arc::new(AtomicBool::new(true));
    let mut consumer = world
        .declared_consumer(recording_handlers(Arc::clone(&broken), Arc::default()))
        .await;
    let (event_id, _) = world.publish_account(&account("poison-over-grpc")).await;
    assert_eq!(consume_any(&mut consumer, 3).await.dead_lettered, 1);
    world
        .enqueue(&[account("waiting1"), account("waiting2")])
        .await;

    let admin_only: popug_bus::Guard =
        Arc::new(|_| Err(tonic::Status::permission_denied("admins only")));
    let ops = popug_bus::Ops::new(
        world.pool.clone(),
        world.broker.clone(),
        Some("accounts-test".into()),
        world.relay().health(),
        admin_only,
    );
    let services = popug_runtime::Services::new().with(ops.into_server());
    let settings = popug_runtime::Settings::load(
        popug_runtime::Service::Auth,
        &popug_runtime::Env::from_pairs([("POPUG_AUTH_ADDR", "127.0.0.1:0")]),
    )
    .expect("settings");
    let app = popug_runtime::Application::build(&settings, services, Vec::new())
        .await
        .expect("build");
    let addr = app.local_addr();
    let stop = CancellationToken::new();
    let stopped = stop.clone();
    let server = tokio::spawn(app.run_until_stopped(async move { stopped.cancelled().await }));

    let mut client = OpsServiceClient::connect(format!("http://{addr}"))
        .await
        .expect("connect");
    let denied = client
        .get_outbox_status(GetOutboxStatusRequest {})
        .await
        .expect_err("guarded");
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);

    // The guard sees only what a server-side layer (token verification) put
    // into the request; serve the same API with an open guard to use it.
    let open_ops = popug_bus::Ops::new(
        world.pool.clone(),
        world.broker.clone(),
        Some("accounts-test".into()),
        world.relay().health(),
        Arc::new(|_| Ok(())),
    );
    let open_app = popug_runtime::Application::build(
        &settings,
        popug_runtime::Services::new().with(open_ops.into_server()),
        Vec::new(),
    )
    .await
    .expect("build");
    let open_addr = open_app.local_addr();
    let open_server = tokio::spawn(open_app.run_until_stopped({
        let stopped = stop.clone();
        async move { stopped.cancelled().await }
    }));
    let mut client = OpsServiceClient::connect(format!("http://{open_addr}"))
        .await
        .expect("connect");

    let status = client
        .get_outbox_status(GetOutboxStatusRequest {})
        .await
        .expect("status")
        .into_inner();
    assert_eq!(status.pending, 2);
    assert!(status.oldest_pending_at.is_some());

    let listed = client
        .list_dead_letters(ListDeadLettersRequest {
            page_size: 0,
            include_resolved: false,
            ..ListDeadLettersRequest::default()
        })
        .await
        .expect("list")
        .into_inner();
    assert_eq!((listed.unresolved, listed.dead_letter_queue_depth), (1, 1));
    assert_eq!(listed.dead_letters[0].event_id, event_id);
    assert!(
        listed.dead_letters[0]
            .error
            .contains("cannot handle poison-over-grpc")
    );
    let too_many = client
        .list_dead_letters(ListDeadLettersRequest {
            page_size: 5000,
            include_resolved: false,
            ..ListDeadLettersRequest::default()
        })
        .await
        .expect_err("page too large");
    assert_eq!(too_many.code(), tonic::Code::InvalidArgument);
    assert!(too_many.message().contains("page_size"));

    broken.store(false, Ordering::SeqCst);
    let replayed = client
        .replay_dead_letters(ReplayDeadLettersRequest {
            limit: 0,
            ..ReplayDeadLettersRequest::default()
        })
        .await
        .expect("replay");
    assert_eq!(replayed.into_inner().replayed, 1);
    assert_eq!(consume_any(&mut consumer, 1).await.applied, 1);
    let listed = client
        .list_dead_letters(ListDeadLettersRequest {
            page_size: 10,
            include_resolved: true,
            ..ListDeadLettersRequest::default()
        })
        .await
        .expect("list")
        .into_inner();
    assert_eq!((listed.unresolved, listed.dead_letter_queue_depth), (0, 0));
    assert!(listed.dead_letters[0].resolved_at.is_some());

    // Health and reflection come with every server.
    let mut health =
        tonic_health::pb::health_client::HealthClient::new(popug_testing::channel(addr).await);
    let serving = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "popug.ops.v1.OpsService".into(),
        })
        .await
        .expect("health")
        .into_inner();
    assert_eq!(
        serving.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    let (v1, v1alpha) = reflected_services(addr).await;
    for names in [&v1, &v1alpha] {
        for expected in ["popug.ops.v1.OpsService", "grpc.health.v1.Health"] {
            assert!(
                names.iter().any(|name| name == expected),
                "{expected} missing from {names:?}"
            );
        }
    }

    // Graceful shutdown: both servers return cleanly.
    stop.cancel();
    server.await.expect("join").expect("clean stop");
    open_server.await.expect("join").expect("clean stop");
}
