//! Background work that dies is restarted, and says so: a real server with
//! a background task that panics on its first run. Health answers
//! NOT_SERVING while the essential task is down, the restart is counted on
//! `/metrics`, and after the restart the task runs and health is SERVING.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use popug_runtime::{Application, BackgroundTask, Env, Service, Services, Settings};
use tokio_util::sync::CancellationToken;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

async fn status(addr: std::net::SocketAddr) -> ServingStatus {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("an endpoint")
        .connect()
        .await
        .expect("the server answers");
    let mut client = HealthClient::new(channel);
    let response = client
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("health answers")
        .into_inner();
    response.status()
}

async fn metrics(addr: std::net::SocketAddr) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("metrics");
    tokio::io::AsyncWriteExt::write_all(
        &mut stream,
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await
    .expect("request");
    let mut body = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut stream, &mut body)
        .await
        .expect("response");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_that_panics_is_restarted_and_health_says_so_meanwhile() {
    let settings = Settings::load(
        Service::Tracker,
        &Env::from_pairs([
            ("POPUG_TRACKER_ADDR", "127.0.0.1:0"),
            ("POPUG_TRACKER_METRICS_ADDR", "127.0.0.1:0"),
        ]),
    )
    .expect("settings");
    let runs = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&runs);
    let task = BackgroundTask::new("flaky", move |token: CancellationToken| {
        let run = counted.fetch_add(1, Ordering::SeqCst);
        async move {
            assert!(run > 0, "the first run dies");
            token.cancelled().await;
        }
    })
    .essential();
    let app = Application::build(&settings, Services::new(), vec![task])
        .await
        .expect("the server builds")
        .with_restart_backoff(popug_runtime::backoff::Backoff::new(vec![
            Duration::from_secs(2),
        ]));
    let (addr, metrics_addr) = (app.local_addr(), app.metrics_addr());
    let stop = CancellationToken::new();
    let stopping = stop.clone();
    let served = tokio::spawn(app.run_until_stopped(async move { stopping.cancelled().await }));

    // The first run panics at once; for the 2 s pause the server is not ready.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(status(addr).await, ServingStatus::NotServing);
    let scraped = metrics(metrics_addr).await;
    assert!(
        scraped
            .contains(r#"popug_background_task_restarts_total{service="tracker",task="flaky"} 1"#),
        "the restart is counted: {scraped}"
    );

    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while runs.load(Ordering::SeqCst) < 2 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(runs.load(Ordering::SeqCst), 2, "the task was started again");
    assert_eq!(status(addr).await, ServingStatus::Serving);
    assert!(
        metrics(metrics_addr)
            .await
            .contains(r#"popug_background_task_up{service="tracker",task="flaky"} 1"#),
        "the task is up again"
    );

    stop.cancel();
    served
        .await
        .expect("the server task")
        .expect("the server stops cleanly");
    assert_eq!(runs.load(Ordering::SeqCst), 2, "no restart after the stop");
}
