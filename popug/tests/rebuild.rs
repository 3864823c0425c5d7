//! Analytics rebuilds itself: a mesh keeping the event history plays some
//! work, stops, loses analytics' database, and starts again. Analytics
//! replays the history and agrees with billing to the cent, as `popug
//! audit` checks, with the same figures it showed before.

use std::time::Duration;

use popug::{
    audit::audit,
    client::{Bearer, Channels, Endpoints},
    mesh::{Mesh, MeshSettings, drop_databases},
};
use popug_proto::pb::popug::{
    analytics::v1 as analytics, auth::v1 as auth, tracker::v1 as tracker,
};
use popug_runtime::Env;
use popug_testing::ADMIN_PASSWORD;
use tokio_util::sync::CancellationToken;

/// A running mesh and how to stop it.
struct Running {
    channels: Channels,
    admin: Bearer,
    stop: CancellationToken,
    served: tokio::task::JoinHandle<anyhow::Result<()>>,
}

async fn start(env: &Env) -> Running {
    let mesh = Mesh::start(MeshSettings::load(env).expect("settings"))
        .await
        .expect("the mesh starts");
    let endpoints: Endpoints = mesh.endpoints();
    let stop = CancellationToken::new();
    let served = mesh.spawn(&stop);
    let channels = Channels::connect(&endpoints).await.expect("channels");
    let admin = popug::client::sign_in(&channels, "admin", ADMIN_PASSWORD)
        .await
        .expect("the admin signs in");
    Running {
        channels,
        admin,
        stop,
        served,
    }
}

impl Running {
    async fn stop(self) {
        self.stop.cancel();
        self.served
            .await
            .expect("the mesh task")
            .expect("the mesh stops cleanly");
    }

    /// Waits for a clean audit (analytics agreeing with billing included).
    async fn assert_books_agree(&self) {
        let report = audit(&self.channels, &self.admin, Duration::from_secs(60))
            .await
            .expect("the audit runs");
        assert!(report.is_clean(), "{report}");
    }

    async fn figures(&self) -> String {
        let mut client = self.channels.analytics(&self.admin);
        // Empty dates: today in the company's time zone.
        let stats = client
            .get_daily_stats(analytics::GetDailyStatsRequest::default())
            .await
            .expect("daily stats")
            .into_inner();
        let dashboard = client
            .get_dashboard(analytics::GetDashboardRequest::default())
            .await
            .expect("the dashboard")
            .into_inner();
        format!("{stats:?} {dashboard:?}")
    }
}

#[tokio::test]
async fn analytics_rebuilds_itself_from_the_history_after_losing_its_database() {
    popug_runtime::telemetry::init(popug_runtime::settings::LogFormat::Pretty);
    let (env, _databases) = popug_testing::mesh_env();
    let env = env.with("POPUG_EVENT_HISTORY_DAYS", "1");
    let analytics_database: url::Url = env
        .raw("POPUG_ANALYTICS_DATABASE_URL")
        .expect("a private analytics database")
        .parse()
        .expect("a URL");

    let mesh = Box::pin(start(&env)).await;
    mesh.channels
        .auth(&mesh.admin)
        .create_account(auth::CreateAccountRequest {
            login: "kesha".into(),
            password: "kesha-password".into(),
            name: "Kesha".into(),
            email: "kesha@popug.example".into(),
            role: auth::Role::Worker.into(),
        })
        .await
        .expect("a worker");
    let kesha = popug::client::sign_in(&mesh.channels, "kesha", "kesha-password")
        .await
        .expect("kesha signs in");
    let mut tasks = Vec::new();
    for n in 0..5 {
        // The tracker hears of kesha a moment after auth made the account.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let task = loop {
            match mesh
                .channels
                .tracker(&mesh.admin)
                .create_task(tracker::CreateTaskRequest {
                    title: format!("Feed the parrots {n}"),
                    jira_id: String::new(),
                    description: "rebuild".into(),
                })
                .await
            {
                Ok(response) => break response.into_inner().task.expect("task"),
                Err(status) if tokio::time::Instant::now() < deadline => {
                    tracing::debug!(%status, "no worker yet");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(status) => panic!("no task: {status:?}"),
            }
        };
        tasks.push(task);
    }
    for task in &tasks[..2] {
        mesh.channels
            .tracker(&kesha)
            .complete_task(tracker::CompleteTaskRequest {
                task_id: task.task_id.clone(),
            })
            .await
            .expect("kesha completes a task of hers");
    }
    mesh.assert_books_agree().await;
    let before = mesh.figures().await;
    mesh.stop().await;

    drop_databases(&[analytics_database])
        .await
        .expect("analytics' database is dropped");

    let mesh = Box::pin(start(&env)).await;
    mesh.assert_books_agree().await;
    assert_eq!(mesh.figures().await, before, "the same figures as before");
    mesh.stop().await;
}
