//! Black-box tests of tracker-svc: auth-svc and tracker-svc on random ports,
//! sharing a fresh broker namespace, each on a fresh database. Relays and
//! consumers are stepped by the tests, so nothing waits on timing.

use std::collections::HashMap;

use lapin::options::BasicGetOptions;
use popug_bus::{BatchReport, Consumer, Relay, Topology, topology};
use popug_proto::pb::popug::{
    auth::v1::{self as auth, auth_service_client::AuthServiceClient},
    events::tasks::{v1 as tasks_v1, v2 as tasks_v2},
    tracker::v1::{self as pb, tracker_service_client::TrackerServiceClient},
};
use popug_runtime::Env;
use popug_testing::{TestAuth, drain, with_token};
use prost::{Message as _, Name as _};
use tokio_util::sync::CancellationToken;
use tonic::{Code, transport::Channel};

struct TestApp {
    auth: TestAuth,
    tracker: Channel,
    tracker_relay: Relay,
    consumer: Consumer,
    probe: lapin::Channel,
    probe_queue: String,
    admin_token: String,
    mail_dir: std::path::PathBuf,
    _stop: tokio_util::sync::DropGuard,
}

async fn spawn_app() -> TestApp {
    let namespace = popug_testing::namespace();
    let stop = CancellationToken::new();
    let auth = TestAuth::spawn(&namespace, &stop).await;

    let tracker_db = popug_testing::database_url();
    let auth_url = auth.url();
    let mail_dir =
        std::env::temp_dir().join(format!("popug-test-mail-{}", uuid::Uuid::new_v4().simple()));
    let mail = mail_dir.to_string_lossy().into_owned();
    let tracker_settings = tracker_svc::TrackerSettings::load(&Env::from_pairs([
        ("POPUG_TRACKER_DATABASE_URL", tracker_db.as_str()),
        ("POPUG_NAMESPACE", namespace.as_str()),
        ("POPUG_QUEUE_TTL", popug_testing::QUEUE_TTL),
        ("POPUG_TRACKER_ADDR", "127.0.0.1:0"),
        ("POPUG_AUTH_URL", auth_url.as_str()),
        ("POPUG_TRACKER_SEED", "42"),
        ("POPUG_MAIL_DIR", mail.as_str()),
    ]))
    .expect("tracker settings");
    let amqp_url = tracker_settings.common.amqp_url.clone();
    let topology = Topology::from_settings(&tracker_settings.common);
    let mut tracker_app = tracker_svc::Application::build(tracker_settings)
        .await
        .expect("tracker-svc");
    let tracker_relay = tracker_app.take_relay().expect("relay");
    let consumer = tracker_app.take_consumer().expect("consumer");
    consumer.declare().await.expect("tracker queue");
    let tracker_addr = tracker_app.local_addr();
    let stopping = stop.clone();
    tokio::spawn(tracker_app.run_until_stopped(async move { stopping.cancelled().await }));

    let connection = lapin::Connection::connect(amqp_url.as_str(), Default::default())
        .await
        .expect("broker");
    let probe = connection.create_channel().await.expect("channel");
    std::mem::forget(connection);
    topology::declare_queue(
        &probe,
        &topology,
        &popug_bus::QueueSpec::new("probe", vec!["task.#".into()]),
    )
    .await
    .expect("probe");

    let admin_token = auth.admin_token.clone();
    let mut app = TestApp {
        auth,
        tracker: popug_testing::channel(tracker_addr).await,
        tracker_relay,
        consumer,
        probe,
        probe_queue: topology.queue("probe"),
        admin_token,
        mail_dir,
        _stop: stop.drop_guard(),
    };
    app.sync_accounts().await;
    app
}

impl TestApp {
    fn tracker(&self) -> TrackerServiceClient<Channel> {
        TrackerServiceClient::new(self.tracker.clone())
    }

    /// Publishes auth's pending account events and applies them in the tracker.
    async fn sync_accounts(&mut self) {
        let published = drain(&mut self.auth.relay).await;
        self.consume(published).await;
    }

    async fn consume(&mut self, deliveries: usize) -> BatchReport {
        popug_testing::consume(&mut self.consumer, deliveries).await
    }

    /// Creates an account with `role` in auth, replicates it, signs it in.
    async fn account(&mut self, login: &str, role: auth::Role) -> (String, String) {
        let (id, token) = self.auth.account(login, role).await;
        self.sync_accounts().await;
        (id.to_string(), token)
    }

    async fn create_task(&self, token: &str, title: &str) -> Result<pb::Task, tonic::Status> {
        self.tracker()
            .create_task(with_token(
                pb::CreateTaskRequest {
                    title: title.into(),
                    jira_id: String::new(),
                    description: "d".into(),
                },
                token,
            ))
            .await
            .map(|response| response.into_inner().task.expect("task"))
    }

    /// The task events the tracker published so far: (routing key, type, payload).
    async fn task_events(&mut self) -> Vec<(String, String, Vec<u8>)> {
        drain(&mut self.tracker_relay).await;
        let mut events = Vec::new();
        while let Some(message) = self
            .probe
            .basic_get(
                self.probe_queue.as_str().into(),
                BasicGetOptions { no_ack: true },
            )
            .await
            .expect("get")
        {
            let opened = popug_bus::envelope::open(&message.delivery.data).expect("envelope");
            events.push((
                message.delivery.routing_key.to_string(),
                opened.meta.event_type,
                opened.payload,
            ));
        }
        events
    }
}

fn code<T: std::fmt::Debug>(result: Result<T, tonic::Status>) -> Code {
    result.expect_err("the call must fail").code()
}

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

/// `result` is INVALID_ARGUMENT naming `field` (never INTERNAL).
fn assert_invalid<T: std::fmt::Debug>(result: Result<T, tonic::Status>, field: &str, case: &str) {
    let status = result.expect_err(case);
    assert_eq!(status.code(), Code::InvalidArgument, "{case}: {status:?}");
    assert!(
        status.message().contains(&format!("`{field}`")),
        "{case}: {}",
        status.message()
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
async fn the_replica_survives_account_events_out_of_order_and_twice() {
    use popug_proto::pb::popug::events::accounts::v1 as accounts_v1;
    let mut app = spawn_app().await;
    let channel = app.probe.clone();
    let account_id = uuid::Uuid::new_v4().to_string();
    let earlier = chrono::Utc::now() - chrono::Duration::minutes(5);
    let later = chrono::Utc::now();
    let created = popug_bus::envelope::wrap(
        &accounts_v1::AccountCreated {
            account_id: account_id.clone(),
            login: "late-bird".into(),
            name: "Late Bird".into(),
            email: "late@popug.inc".into(),
            role: accounts_v1::Role::Worker.into(),
            active: true,
            version: 1,
        },
        "auth",
        // The producer's clock may even say the promotion came first.
        later,
    );
    let promoted = popug_bus::envelope::wrap(
        &accounts_v1::AccountRoleChanged {
            account_id: account_id.clone(),
            role: accounts_v1::Role::Manager.into(),
            previous_role: accounts_v1::Role::Worker.into(),
            version: 2,
        },
        "auth",
        earlier,
    );
    let exchange = Topology::new(None).exchange();
    let namespaced_exchange = app.probe_queue.replace("probe.events", &exchange);
    // The newer role change first, then the creation, then the creation again.
    for (key, envelope) in [
        ("account.role_changed.v1", &promoted),
        ("account.created.v1", &created),
        ("account.created.v1", &created),
    ] {
        channel
            .basic_publish(
                namespaced_exchange.as_str().into(),
                key.into(),
                Default::default(),
                &envelope.encode_to_vec(),
                Default::default(),
            )
            .await
            .expect("publish");
    }
    let report = app.consume(3).await;
    assert_eq!((report.applied, report.duplicates), (2, 1));
    // Still a manager (the older creation did not undo the newer promotion),
    // so still nobody to assign: the only account is a manager.
    let status = app
        .create_task(&app.admin_token.clone(), "Anyone?")
        .await
        .expect_err("no worker");
    assert_eq!(status.code(), Code::FailedPrecondition);
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
