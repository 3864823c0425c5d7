//! Requests refused naming the field: titles, Jira ids, and control
//! characters in every text field.

use popug_proto::pb::popug::{auth::v1 as auth, events::tasks::v2 as tasks_v2, tracker::v1 as pb};
use popug_testing::{assert_invalid, code, with_token};
use prost::{Message as _, Name as _};
use tonic::Code;

use crate::helpers::spawn_app;

#[tokio::test]
async fn titles_and_jira_ids_are_validated_naming_the_field() {
    let app = spawn_app().await;
    for (title, jira_id, field) in [
        ("[UBERPOP-42] Fix the nest", "", "title"),
        ("Fix ] it", "", "title"),
        ("   ", "", "title"),
        (&"x".repeat(201)[..], "", "title"),
        ("Fix the nest", "not a jira id", "jira_id"),
    ] {
        let status = app
            .tracker()
            .create_task(with_token(
                pb::CreateTaskRequest {
                    title: title.into(),
                    jira_id: jira_id.into(),
                    description: String::new(),
                },
                &app.admin_token,
            ))
            .await
            .expect_err(field);
        assert_eq!(status.code(), Code::InvalidArgument, "{title}");
        assert!(
            status.message().contains(&format!("`{field}`")),
            "{}",
            status.message()
        );
    }
    assert_eq!(
        code(
            app.tracker()
                .create_task(pb::CreateTaskRequest::default())
                .await
        ),
        Code::Unauthenticated
    );
}

#[tokio::test]
async fn nul_and_control_characters_are_refused_in_every_text_field() {
    let mut app = spawn_app().await;
    let (_, worker_token) = app.account("kesha", auth::Role::Worker).await;
    // NUL (Postgres refuses it), BEL, ESC, a lone CR, C1 controls, U+2028.
    let hostile = [
        "n\0ul",
        "be\u{7}ll",
        "e\u{1b}[2Jsc",
        "lone\rcr",
        "c\u{85}one",
        "c\u{9b}31m",
        "line\u{2028}break",
    ];
    let create = |title: &str, jira_id: &str, description: &str| pb::CreateTaskRequest {
        title: title.into(),
        jira_id: jira_id.into(),
        description: description.into(),
    };
    // Line feeds and tabs are for descriptions only.
    for bad in hostile
        .iter()
        .chain(&["two\nlines", "tab\there", "cr\r\nlf"])
    {
        let cases = [
            ("title", create(&format!("Feed {bad} chicks"), "", "")),
            ("jira_id", create("Feed", &format!("UBERPOP-4{bad}2"), "")),
        ];
        for (field, request) in cases {
            assert_invalid(
                app.tracker()
                    .create_task(with_token(request, &worker_token))
                    .await,
                field,
                &format!("CreateTask {field} {bad:?}"),
            );
        }
    }
    for bad in hostile {
        assert_invalid(
            app.tracker()
                .create_task(with_token(
                    create("Feed", "", &format!("Steps:\n{bad}")),
                    &worker_token,
                ))
                .await,
            "description",
            &format!("CreateTask description {bad:?}"),
        );
        let token = format!("1{bad}");
        assert_invalid(
            app.tracker()
                .list_my_tasks(with_token(
                    pb::ListMyTasksRequest {
                        page_token: token.clone(),
                        ..Default::default()
                    },
                    &worker_token,
                ))
                .await,
            "page_token",
            &format!("ListMyTasks {bad:?}"),
        );
        assert_invalid(
            app.tracker()
                .list_tasks(with_token(
                    pb::ListTasksRequest {
                        page_token: token.clone(),
                        ..Default::default()
                    },
                    &app.admin_token,
                ))
                .await,
            "page_token",
            &format!("ListTasks {bad:?}"),
        );
        assert_invalid(
            app.tracker()
                .list_task_history(with_token(
                    pb::ListTaskHistoryRequest {
                        page_token: token,
                        ..Default::default()
                    },
                    &app.admin_token,
                ))
                .await,
            "page_token",
            &format!("ListTaskHistory {bad:?}"),
        );
        let task_id = format!("{}{bad}", uuid::Uuid::new_v4());
        assert_invalid(
            app.tracker()
                .get_task(with_token(
                    pb::GetTaskRequest {
                        task_id: task_id.clone(),
                        key: String::new(),
                    },
                    &worker_token,
                ))
                .await,
            "task_id",
            &format!("GetTask {bad:?}"),
        );
        assert_invalid(
            app.tracker()
                .complete_task(with_token(
                    pb::CompleteTaskRequest { task_id },
                    &worker_token,
                ))
                .await,
            "task_id",
            &format!("CompleteTask {bad:?}"),
        );
    }
    assert!(app.task_events().await.is_empty(), "nothing was created");

    // A multi-line description is what a real user writes: kept, with CRLF
    // stored as LF, in the task and in its event.
    let task = app
        .tracker()
        .create_task(with_token(
            create("Feed the chicks", "", "Steps:\r\n\t1. seeds\n\t2. water"),
            &worker_token,
        ))
        .await
        .expect("a multi-line description")
        .into_inner()
        .task
        .expect("task");
    assert_eq!(task.description, "Steps:\n\t1. seeds\n\t2. water");
    let created: Vec<tasks_v2::TaskCreated> = app
        .task_events()
        .await
        .iter()
        .filter(|(_, kind, _)| *kind == tasks_v2::TaskCreated::full_name())
        .map(|(_, _, payload)| tasks_v2::TaskCreated::decode(payload.as_slice()).expect("v2"))
        .collect();
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].description, task.description);
}
