//! Who may read and change what: the role rules, enforced at once when a
//! role changes.

use popug_proto::pb::popug::{
    auth::v1::{self as auth, auth_service_client::AuthServiceClient},
    tracker::v1 as pb,
};
use popug_testing::{code, with_token};
use tonic::Code;

use crate::helpers::spawn_app;

#[tokio::test]
async fn reading_tasks_follows_the_role_rules() {
    let mut app = spawn_app().await;
    let (_, kesha) = app.account("kesha", auth::Role::Worker).await;
    let mut mine = Vec::new();
    for i in 0..5 {
        mine.push(
            app.create_task(&kesha, &format!("Task {i}"))
                .await
                .expect("create"),
        );
    }
    app.tracker()
        .complete_task(with_token(
            pb::CompleteTaskRequest {
                task_id: mine[0].task_id.clone(),
            },
            &kesha,
        ))
        .await
        .expect("complete");
    let (_, other) = app.account("other", auth::Role::Worker).await;
    let (_, manager) = app.account("boss", auth::Role::Manager).await;
    let (_, accountant) = app.account("counter", auth::Role::Accountant).await;
    let mut client = app.tracker();

    // ListMyTasks: paged, newest first, filtered by status.
    let mut keys = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_my_tasks(with_token(
                pb::ListMyTasksRequest {
                    status: 0,
                    page_size: 2,
                    page_token: page_token.clone(),
                },
                &kesha,
            ))
            .await
            .expect("mine")
            .into_inner();
        keys.extend(page.tasks.into_iter().map(|task| task.key));
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    assert_eq!(
        keys,
        ["POPUG-5", "POPUG-4", "POPUG-3", "POPUG-2", "POPUG-1"]
    );
    let open = client
        .list_my_tasks(with_token(
            pb::ListMyTasksRequest {
                status: pb::TaskStatus::Open.into(),
                page_size: 0,
                page_token: String::new(),
            },
            &kesha,
        ))
        .await
        .expect("open")
        .into_inner()
        .tasks;
    assert_eq!(open.len(), 4);
    let theirs = client
        .list_my_tasks(with_token(pb::ListMyTasksRequest::default(), &other))
        .await
        .expect("theirs")
        .into_inner()
        .tasks;
    assert!(theirs.is_empty());

    // GetTask: the assignee, managers and admins.
    let id = mine[1].task_id.clone();
    let get = |token: &str| {
        with_token(
            pb::GetTaskRequest {
                task_id: id.clone(),
                key: String::new(),
            },
            token,
        )
    };
    client.get_task(get(&kesha)).await.expect("assignee");
    client.get_task(get(&manager)).await.expect("manager");
    client.get_task(get(&app.admin_token)).await.expect("admin");
    assert_eq!(
        code(client.get_task(get(&other)).await),
        Code::PermissionDenied
    );
    assert_eq!(
        code(client.get_task(get(&accountant)).await),
        Code::PermissionDenied
    );
    // By key instead of id: the same task, the same rules.
    let key = mine[1].key.clone();
    let by_key = |key: &str, token: &str| {
        with_token(
            pb::GetTaskRequest {
                task_id: String::new(),
                key: key.into(),
            },
            token,
        )
    };
    let found = client
        .get_task(by_key(&key.to_lowercase(), &kesha))
        .await
        .expect("by key")
        .into_inner()
        .task
        .expect("task");
    assert_eq!(found.task_id, id);
    assert_eq!(
        code(client.get_task(by_key(&key, &other)).await),
        Code::PermissionDenied
    );
    assert_eq!(
        code(client.get_task(by_key("POPUG-999999", &kesha)).await),
        Code::NotFound
    );
    for bad in ["POPUG-", "POPUG-x", "TASK-1", "POPUG--1"] {
        let refused = client
            .get_task(by_key(bad, &kesha))
            .await
            .expect_err("not a key");
        assert!(
            refused.code() == Code::InvalidArgument && refused.message().contains("`key`"),
            "{bad}: {refused:?}"
        );
    }
    let both = client
        .get_task(with_token(
            pb::GetTaskRequest {
                task_id: id.clone(),
                key: key.clone(),
            },
            &kesha,
        ))
        .await
        .expect_err("one or the other");
    assert_eq!(both.code(), Code::InvalidArgument);

    // ListTasks: managers and admins.
    let all = client
        .list_tasks(with_token(pb::ListTasksRequest::default(), &manager))
        .await
        .expect("all")
        .into_inner()
        .tasks;
    assert_eq!(all.len(), 5);
    for token in [&kesha, &accountant] {
        assert_eq!(
            code(
                client
                    .list_tasks(with_token(pb::ListTasksRequest::default(), token))
                    .await
            ),
            Code::PermissionDenied
        );
    }
    assert_eq!(
        code(
            client
                .list_tasks(with_token(
                    pb::ListTasksRequest {
                        status: 9,
                        ..Default::default()
                    },
                    &manager
                ))
                .await
        ),
        Code::InvalidArgument
    );
}

#[tokio::test]
async fn a_demoted_manager_cannot_shuffle_with_an_old_token() {
    let mut app = spawn_app().await;
    app.account("worker1", auth::Role::Worker).await;
    let (manager_id, manager) = app.account("boss", auth::Role::Manager).await;
    app.tracker()
        .shuffle_tasks(with_token(pb::ShuffleTasksRequest {}, &manager))
        .await
        .expect("a manager shuffles");
    AuthServiceClient::new(app.auth.channel.clone())
        .change_role(with_token(
            auth::ChangeRoleRequest {
                account_id: manager_id,
                role: auth::Role::Worker.into(),
            },
            &app.admin_token,
        ))
        .await
        .expect("demote");
    app.sync_accounts().await;
    // The token still says manager; the replica knows better.
    let status = app
        .tracker()
        .shuffle_tasks(with_token(pb::ShuffleTasksRequest {}, &manager))
        .await
        .expect_err("demoted");
    assert_eq!(status.code(), Code::PermissionDenied);
}
