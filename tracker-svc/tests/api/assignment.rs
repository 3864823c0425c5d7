//! Assignment: random among active workers and even, and a shuffle that
//! moves only open tasks with one event each.

use std::collections::HashMap;

use popug_proto::pb::popug::{
    auth::v1::{self as auth, auth_service_client::AuthServiceClient},
    events::tasks::v1 as tasks_v1,
    tracker::v1 as pb,
};
use popug_testing::{code, with_token};
use prost::{Message as _, Name as _};
use tonic::Code;

use crate::helpers::spawn_app;

#[tokio::test]
async fn random_assignment_picks_only_active_workers_and_spreads_evenly() {
    let mut app = spawn_app().await;
    let mut workers = Vec::new();
    for login in ["worker1", "worker2", "worker3"] {
        workers.push(app.account(login, auth::Role::Worker).await.0);
    }
    let (leaving, _) = app.account("worker4", auth::Role::Worker).await;
    AuthServiceClient::new(app.auth.channel.clone())
        .deactivate_account(with_token(
            auth::DeactivateAccountRequest {
                account_id: leaving.clone(),
            },
            &app.admin_token,
        ))
        .await
        .expect("deactivate");
    app.sync_accounts().await;
    let (manager, _) = app.account("manager1", auth::Role::Manager).await;
    let (accountant, _) = app.account("accountant1", auth::Role::Accountant).await;

    let mut counts: HashMap<String, usize> = HashMap::new();
    for i in 0..300 {
        let task = app
            .create_task(&app.admin_token.clone(), &format!("Task {i}"))
            .await
            .expect("create");
        *counts.entry(task.assignee_id).or_default() += 1;
    }
    for never in [&leaving, &manager, &accountant] {
        assert!(
            !counts.contains_key(never),
            "{never} must never be assigned"
        );
    }
    assert_eq!(counts.len(), 3);
    // Uniform over 3 workers: 100 each expected; 60..140 is beyond 4 sigma.
    for worker in &workers {
        let count = counts.get(worker).copied().unwrap_or(0);
        assert!((60..=140).contains(&count), "{worker} got {count} of 300");
    }
}

#[tokio::test]
async fn a_shuffle_moves_only_open_tasks_with_one_event_each() {
    let mut app = spawn_app().await;
    let (_, w1) = app.account("worker1", auth::Role::Worker).await;
    app.account("worker2", auth::Role::Worker).await;
    let (_, manager) = app.account("boss", auth::Role::Manager).await;
    let mut tasks = Vec::new();
    for i in 0..20 {
        tasks.push(
            app.create_task(&manager, &format!("Task {i}"))
                .await
                .expect("create"),
        );
    }
    // w1 completes its tasks; they must not move.
    let mut done = Vec::new();
    for task in tasks
        .iter()
        .filter(|task| task.assignee_id == tasks[0].assignee_id)
    {
        let token = if app
            .tracker()
            .get_task(with_token(
                pb::GetTaskRequest {
                    task_id: task.task_id.clone(),
                    key: String::new(),
                },
                &w1,
            ))
            .await
            .is_ok()
        {
            w1.clone()
        } else {
            continue;
        };
        app.tracker()
            .complete_task(with_token(
                pb::CompleteTaskRequest {
                    task_id: task.task_id.clone(),
                },
                &token,
            ))
            .await
            .expect("complete");
        done.push(task.task_id.clone());
    }
    let open = 20 - done.len();
    app.task_events().await;

    let (_, worker_token) = app.account("worker3", auth::Role::Worker).await;
    assert_eq!(
        code(
            app.tracker()
                .shuffle_tasks(with_token(pb::ShuffleTasksRequest {}, &worker_token))
                .await
        ),
        Code::PermissionDenied
    );
    let reassigned = app
        .tracker()
        .shuffle_tasks(with_token(pb::ShuffleTasksRequest {}, &manager))
        .await
        .expect("shuffle")
        .into_inner()
        .reassigned;
    assert_eq!(usize::try_from(reassigned).expect("count"), open);
    let events = app.task_events().await;
    assert_eq!(events.len(), open, "one TaskAssigned per open task");
    let mut seen = std::collections::HashSet::new();
    for (key, kind, payload) in &events {
        assert_eq!(
            (key.as_str(), kind.as_str()),
            (
                "task.assigned.v1",
                tasks_v1::TaskAssigned::full_name().as_str()
            )
        );
        let assigned = tasks_v1::TaskAssigned::decode(payload.as_slice()).expect("payload");
        assert_eq!(assigned.reason, tasks_v1::AssignmentReason::Shuffled as i32);
        assert!(!assigned.previous_assignee_id.is_empty());
        assert!(!done.contains(&assigned.task_id), "done tasks stay put");
        assert!(seen.insert(assigned.task_id), "one event per task");
    }
    // Admins shuffle too; the done tasks kept their assignee and status.
    app.tracker()
        .shuffle_tasks(with_token(
            pb::ShuffleTasksRequest {},
            &app.admin_token.clone(),
        ))
        .await
        .expect("admin shuffle");
    for task_id in &done {
        let task = app
            .tracker()
            .get_task(with_token(
                pb::GetTaskRequest {
                    task_id: task_id.clone(),
                    key: String::new(),
                },
                &manager,
            ))
            .await
            .expect("get")
            .into_inner()
            .task
            .expect("task");
        assert_eq!(task.status, pb::TaskStatus::Done as i32);
        assert_eq!(task.assignee_id, tasks[0].assignee_id);
    }
}
