//! A task's life: created for an active worker with its events, refused
//! clearly when nobody can take it, completed once by its assignee.

use popug_proto::pb::popug::{
    auth::v1::{self as auth, auth_service_client::AuthServiceClient},
    events::tasks::{v1 as tasks_v1, v2 as tasks_v2},
    tracker::v1 as pb,
};
use popug_testing::{code, with_token};
use prost::{Message as _, Name as _};
use tonic::Code;

use crate::helpers::spawn_app;

#[tokio::test]
async fn a_new_task_goes_to_the_only_worker_with_its_events() {
    let mut app = spawn_app().await;
    let (worker, _) = app.account("kesha", auth::Role::Worker).await;
    let (_, manager) = app.account("boss", auth::Role::Manager).await;
    let task = app
        .tracker()
        .create_task(with_token(
            pb::CreateTaskRequest {
                title: "  Feed the chicks  ".into(),
                jira_id: "uberpop-42".into(),
                description: "Twice a day".into(),
            },
            &manager,
        ))
        .await
        .expect("create")
        .into_inner()
        .task
        .expect("task");
    assert_eq!(
        task.assignee_id, worker,
        "a manager creates, a worker is assigned"
    );
    assert_eq!(
        (
            task.title.as_str(),
            task.jira_id.as_str(),
            task.key.as_str()
        ),
        ("Feed the chicks", "UBERPOP-42", "POPUG-1")
    );
    assert_eq!(task.status, pb::TaskStatus::Open as i32);

    // The assignee was notified where a person can read it.
    let notes: Vec<String> = std::fs::read_dir(&app.mail_dir)
        .expect("mail directory")
        .map(|entry| std::fs::read_to_string(entry.expect("entry").path()).expect("note"))
        .collect();
    assert_eq!(notes.len(), 1);
    assert!(
        notes[0].contains(&worker) && notes[0].contains("POPUG-1 Feed the chicks"),
        "{}",
        notes[0]
    );

    let events = app.task_events().await;
    assert_eq!(events.len(), 2);
    assert_eq!(
        (events[0].0.as_str(), events[0].1.as_str()),
        (
            "task.created.v2",
            tasks_v2::TaskCreated::full_name().as_str()
        )
    );
    let created = tasks_v2::TaskCreated::decode(events[0].2.as_slice()).expect("payload");
    assert_eq!(
        (
            created.task_id.as_str(),
            created.key.as_str(),
            created.jira_id.as_str()
        ),
        (task.task_id.as_str(), "POPUG-1", "UBERPOP-42")
    );
    assert_eq!(events[1].0, "task.assigned.v1");
    let assigned = tasks_v1::TaskAssigned::decode(events[1].2.as_slice()).expect("payload");
    assert_eq!(
        (assigned.assignee_id.as_str(), assigned.reason),
        (worker.as_str(), tasks_v1::AssignmentReason::Created as i32)
    );
}

#[tokio::test]
async fn without_an_active_worker_creation_is_refused_clearly() {
    let mut app = spawn_app().await;
    let status = app
        .create_task(&app.admin_token.clone(), "Lonely task")
        .await
        .expect_err("no worker");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(
        popug_runtime::error::reason(&status).as_deref(),
        Some(tracker_svc::error::NO_WORKER)
    );
    assert!(
        status.message().contains("no active worker"),
        "{}",
        status.message()
    );
    // A worker who becomes a manager is no longer assignable.
    let (worker, _) = app.account("kesha", auth::Role::Worker).await;
    app.create_task(&app.admin_token.clone(), "Now it works")
        .await
        .expect("assigned");
    AuthServiceClient::new(app.auth.channel.clone())
        .change_role(with_token(
            auth::ChangeRoleRequest {
                account_id: worker,
                role: auth::Role::Manager.into(),
            },
            &app.admin_token,
        ))
        .await
        .expect("promote");
    app.sync_accounts().await;
    assert_eq!(
        code(
            app.create_task(&app.admin_token.clone(), "Nobody left")
                .await
        ),
        Code::FailedPrecondition
    );
    assert!(
        app.task_events().await.len() == 2,
        "the refused creations emitted nothing"
    );
}

#[tokio::test]
async fn only_the_assignee_completes_an_open_task_once() {
    let mut app = spawn_app().await;
    let (_, kesha) = app.account("kesha", auth::Role::Worker).await;
    let task = app.create_task(&kesha, "Mine").await.expect("create");
    let (_, other) = app.account("other", auth::Role::Worker).await;
    let (_, manager) = app.account("boss", auth::Role::Manager).await;
    app.task_events().await;
    let complete = |token: String, task_id: String| {
        let mut client = app.tracker();
        async move {
            client
                .complete_task(with_token(pb::CompleteTaskRequest { task_id }, &token))
                .await
        }
    };
    assert_eq!(
        code(complete(other.clone(), task.task_id.clone()).await),
        Code::PermissionDenied
    );
    assert_eq!(
        code(complete(manager.clone(), task.task_id.clone()).await),
        Code::PermissionDenied
    );
    let done = complete(kesha.clone(), task.task_id.clone())
        .await
        .expect("complete")
        .into_inner()
        .task
        .expect("task");
    assert_eq!(done.status, pb::TaskStatus::Done as i32);
    assert!(done.completed_at.is_some());
    let again = complete(kesha.clone(), task.task_id.clone())
        .await
        .expect_err("twice");
    assert_eq!(again.code(), Code::FailedPrecondition);
    assert!(again.message().contains("already done"));
    assert_eq!(
        popug_runtime::error::reason(&again).as_deref(),
        Some(tracker_svc::error::TASK_DONE)
    );
    assert_eq!(
        code(complete(kesha.clone(), uuid::Uuid::new_v4().to_string()).await),
        Code::NotFound
    );
    assert_eq!(
        code(complete(kesha, "42".into()).await),
        Code::InvalidArgument
    );
    let events = app.task_events().await;
    assert_eq!(events.len(), 1, "exactly one TaskCompleted");
    assert_eq!(events[0].0, "task.completed.v1");
    let completed = tasks_v1::TaskCompleted::decode(events[0].2.as_slice()).expect("payload");
    assert_eq!(completed.task_id, task.task_id);
}
