//! `popug.tracker.v1.TrackerService`: converts requests into domain values,
//! calls the store, converts back. Who may call what is stated at the top of
//! each method.

use std::sync::{Arc, Mutex};

use popug_proto::pb::popug::tracker::v1::{self as pb, tracker_service_server::TrackerService};
use popug_runtime::paging::{self, Page};
use popug_token::{Role, require_role, require_signed_in};
use rand::{Rng as _, rngs::StdRng};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::{
    domain::{Description, HistoryEntry, HistoryKind, JiraId, NewTask, Task, TaskStatus, Title},
    error::Error,
    notify::Notifier,
    store::{Store, TaskFilter},
};

/// The TrackerService implementation.
#[derive(Clone)]
pub struct TrackerApi {
    store: Store,
    notifier: Notifier,
    /// Draws assignees; seeded in tests and simulations.
    rng: Arc<Mutex<StdRng>>,
}

fn task_message(task: &Task) -> pb::Task {
    pb::Task {
        task_id: task.task_id.to_string(),
        key: task.key(),
        title: task.title.clone(),
        jira_id: task.jira_id.clone().unwrap_or_default(),
        description: task.description.clone(),
        status: match task.status {
            TaskStatus::Open => pb::TaskStatus::Open,
            TaskStatus::Done => pb::TaskStatus::Done,
        }
        .into(),
        assignee_id: task.assignee_id.to_string(),
        created_at: Some(popug_bus::envelope::timestamp(task.created_at)),
        completed_at: task.completed_at.map(popug_bus::envelope::timestamp),
    }
}

fn task_id(field: &'static str, value: &str) -> Result<Uuid, Error> {
    Uuid::try_parse(value).map_err(|_| Error::invalid(field, format!("`{value}` is not a task id")))
}

/// The number of a task key `POPUG-<n>` (case-insensitive).
fn task_number(field: &'static str, value: &str) -> Result<i64, Error> {
    let trimmed = value.trim();
    trimmed
        .get(..6)
        .filter(|prefix| prefix.eq_ignore_ascii_case("POPUG-"))
        .and_then(|_| trimmed[6..].parse::<i64>().ok())
        .filter(|number| *number > 0)
        .ok_or_else(|| {
            Error::invalid(
                field,
                format!(
                    "{} is not a task key such as POPUG-12",
                    popug_input::text::quote(value)
                ),
            )
        })
}

fn status_filter(value: i32) -> Result<Option<TaskStatus>, Error> {
    match pb::TaskStatus::try_from(value) {
        Ok(pb::TaskStatus::Unspecified) => Ok(None),
        Ok(pb::TaskStatus::Open) => Ok(Some(TaskStatus::Open)),
        Ok(pb::TaskStatus::Done) => Ok(Some(TaskStatus::Done)),
        Err(_) => Err(Error::invalid(
            "status",
            format!("{value} is not a task status"),
        )),
    }
}

fn history_message(entry: &HistoryEntry) -> pb::HistoryEntry {
    pb::HistoryEntry {
        event_id: entry.event_id.to_string(),
        task_id: entry.task_id.to_string(),
        kind: match entry.kind {
            HistoryKind::Assigned => pb::HistoryKind::Assigned,
            HistoryKind::Completed => pb::HistoryKind::Completed,
        }
        .into(),
        account_id: entry.account_id.to_string(),
        occurred_at: Some(popug_bus::envelope::timestamp(entry.occurred_at)),
    }
}

impl TrackerApi {
    /// The API over `store`.
    pub fn new(store: Store, notifier: Notifier, rng: StdRng) -> Self {
        Self {
            store,
            notifier,
            rng: Arc::new(Mutex::new(rng)),
        }
    }

    fn draw<T>(&self, draw: impl FnOnce(&mut StdRng) -> T) -> T {
        let mut rng = self
            .rng
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        draw(&mut rng)
    }

    async fn list(
        &self,
        filter: TaskFilter,
        page_size: u32,
        page_token: &str,
    ) -> Result<(Vec<pb::Task>, String), Error> {
        let Page { size, after } = paging::page::<i64>(page_size, page_token)?;
        let tasks = self
            .store
            .tasks(
                TaskFilter {
                    before: after,
                    ..filter
                },
                size,
            )
            .await?;
        let token = paging::next_token(&tasks, size, |task| task.number);
        Ok((tasks.iter().map(task_message).collect(), token))
    }
}

#[tonic::async_trait]
impl TrackerService for TrackerApi {
    async fn create_task(
        &self,
        request: Request<pb::CreateTaskRequest>,
    ) -> Result<Response<pb::CreateTaskResponse>, Status> {
        let caller = require_signed_in(&request)?;
        let request = request.into_inner();
        let new = NewTask {
            title: Title::parse("title", &request.title)?,
            jira_id: JiraId::parse_optional("jira_id", &request.jira_id)?,
            description: Description::parse("description", &request.description)?,
        };
        let pick = self.draw(|rng| rng.r#gen::<u64>());
        let task = self
            .store
            .create_task(&new, caller.account_id, pick)
            .await?;
        tracing::info!(task_id = %task.task_id, key = %task.key(), assignee = %task.assignee_id, "task created");
        self.notifier
            .assigned(
                "new task",
                [(task.assignee_id, format!("{} {}", task.key(), task.title))],
            )
            .await;
        Ok(Response::new(pb::CreateTaskResponse {
            task: Some(task_message(&task)),
        }))
    }

    async fn shuffle_tasks(
        &self,
        request: Request<pb::ShuffleTasksRequest>,
    ) -> Result<Response<pb::ShuffleTasksResponse>, Status> {
        require_role(&request, &[Role::Manager, Role::Admin])?;
        let seed = self.draw(|rng| rng.gen_range(-1.0..=1.0));
        let moved = self.store.shuffle(seed).await?;
        tracing::info!(reassigned = moved.len(), "open tasks shuffled");
        self.notifier
            .assigned(
                "shuffle",
                moved
                    .iter()
                    .map(|m| (m.assignee_id, format!("task {}", m.task_id))),
            )
            .await;
        Ok(Response::new(pb::ShuffleTasksResponse {
            reassigned: u64::try_from(moved.len()).unwrap_or(0),
        }))
    }

    async fn complete_task(
        &self,
        request: Request<pb::CompleteTaskRequest>,
    ) -> Result<Response<pb::CompleteTaskResponse>, Status> {
        let caller = require_signed_in(&request)?;
        let id = task_id("task_id", &request.into_inner().task_id)?;
        let task = self.store.complete(id, caller.account_id).await?;
        tracing::info!(task_id = %task.task_id, key = %task.key(), "task completed");
        Ok(Response::new(pb::CompleteTaskResponse {
            task: Some(task_message(&task)),
        }))
    }

    async fn list_my_tasks(
        &self,
        request: Request<pb::ListMyTasksRequest>,
    ) -> Result<Response<pb::ListMyTasksResponse>, Status> {
        let caller = require_signed_in(&request)?;
        let request = request.into_inner();
        let filter = TaskFilter {
            assignee_id: Some(caller.account_id),
            status: status_filter(request.status)?,
            before: None,
        };
        let (tasks, next_page_token) = self
            .list(filter, request.page_size, &request.page_token)
            .await?;
        Ok(Response::new(pb::ListMyTasksResponse {
            tasks,
            next_page_token,
        }))
    }

    async fn get_task(
        &self,
        request: Request<pb::GetTaskRequest>,
    ) -> Result<Response<pb::GetTaskResponse>, Status> {
        let caller = require_signed_in(&request)?;
        let request = request.into_inner();
        let task = match (request.task_id.is_empty(), request.key.is_empty()) {
            (false, true) => {
                let id = task_id("task_id", &request.task_id)?;
                self.store
                    .task(id)
                    .await?
                    .ok_or_else(|| Error::NoSuchTask(id.to_string()))?
            }
            (true, false) => {
                let number = task_number("key", &request.key)?;
                self.store
                    .task_numbered(number)
                    .await?
                    .ok_or_else(|| Error::NoSuchTask(format!("POPUG-{number}")))?
            }
            (false, false) => {
                return Err(Error::invalid("key", "give `task_id` or `key`, not both").into());
            }
            (true, true) => {
                return Err(Error::invalid("task_id", "give `task_id` or `key`").into());
            }
        };
        let may_see = task.assignee_id == caller.account_id
            || matches!(caller.role, Role::Manager | Role::Admin);
        if !may_see {
            return Err(Error::NotYours.into());
        }
        Ok(Response::new(pb::GetTaskResponse {
            task: Some(task_message(&task)),
        }))
    }

    async fn list_tasks(
        &self,
        request: Request<pb::ListTasksRequest>,
    ) -> Result<Response<pb::ListTasksResponse>, Status> {
        require_role(&request, &[Role::Manager, Role::Admin])?;
        let request = request.into_inner();
        let filter = TaskFilter {
            assignee_id: None,
            status: status_filter(request.status)?,
            before: None,
        };
        let (tasks, next_page_token) = self
            .list(filter, request.page_size, &request.page_token)
            .await?;
        Ok(Response::new(pb::ListTasksResponse {
            tasks,
            next_page_token,
        }))
    }

    async fn list_task_history(
        &self,
        request: Request<pb::ListTaskHistoryRequest>,
    ) -> Result<Response<pb::ListTaskHistoryResponse>, Status> {
        require_role(&request, &[Role::Admin])?;
        let request = request.into_inner();
        let Page { size, after } = paging::page::<Uuid>(request.page_size, &request.page_token)?;
        let entries = self.store.history(after, size).await?;
        Ok(Response::new(pb::ListTaskHistoryResponse {
            next_page_token: paging::next_token(&entries, size, |entry| entry.event_id),
            entries: entries.iter().map(history_message).collect(),
        }))
    }
}
