//! `popug tasks ...`: creating, listing, completing and shuffling tasks
//! through tracker-svc, with logins in place of assignee ids.

use std::collections::HashMap;

use anyhow::bail;
use clap::Subcommand;
use popug::client::{all_pages, answer, connect, task_history};
use popug_proto::pb::popug::tracker::v1::{
    self as tracker, tracker_service_client::TrackerServiceClient,
};
use serde_json::{Value, json};

use super::{answer_naming, names};
use crate::{config, output, session};

#[derive(Subcommand)]
pub(crate) enum TasksCommand {
    /// Creates a task; it goes to a random active worker.
    Create {
        /// Title (no `[` or `]`: the jira id has its own option).
        #[arg(long)]
        title: String,
        /// Jira id such as UBERPOP-42.
        #[arg(long, default_value = "", hide_default_value = true)]
        jira_id: String,
        /// Free text.
        #[arg(long, default_value = "", hide_default_value = true)]
        description: String,
    },
    /// Your tasks.
    Mine {
        /// open or done (default: both).
        #[arg(long)]
        status: Option<String>,
    },
    /// Every task (manager, admin).
    List {
        /// open or done (default: both).
        #[arg(long)]
        status: Option<String>,
    },
    /// One task.
    Get {
        /// The task's key (POPUG-12) or id.
        task: String,
    },
    /// Marks one of your tasks done.
    Complete {
        /// The task's key (POPUG-12) or id.
        task: String,
    },
    /// Reassigns every open task to a random worker (manager, admin).
    Shuffle,
    /// Every assignment and completion, with its event id (admin).
    History,
}

const TASK_COLUMNS: &[&str] = &[
    "key",
    "title",
    "jira_id",
    "status",
    "assignee",
    "created_at",
];

/// A task's row; `assignee` is the assignee's login when `logins` knows it.
fn task_row(task: &tracker::Task, logins: &HashMap<String, String>) -> Value {
    let status =
        tracker::TaskStatus::try_from(task.status).unwrap_or(tracker::TaskStatus::Unspecified);
    json!({
        "task_id": task.task_id,
        "key": task.key,
        "title": task.title,
        "jira_id": task.jira_id,
        "description": task.description,
        "status": status.as_str_name().trim_start_matches("TASK_STATUS_").to_lowercase(),
        "assignee_id": task.assignee_id,
        "assignee": logins.get(&task.assignee_id).unwrap_or(&task.assignee_id),
        "created_at": output::time(task.created_at.as_ref()),
        "completed_at": output::time(task.completed_at.as_ref()),
    })
}

fn status(value: Option<&str>) -> anyhow::Result<i32> {
    match value {
        None => Ok(tracker::TaskStatus::Unspecified.into()),
        Some("open") => Ok(tracker::TaskStatus::Open.into()),
        Some("done") => Ok(tracker::TaskStatus::Done.into()),
        Some(other) => bail!("`{other}` is not a task status: open or done"),
    }
}

/// Runs one `popug tasks` command.
pub(crate) async fn run(json: bool, command: TasksCommand) -> anyhow::Result<()> {
    let (session, bearer) = session::signed_in().await?;
    let mut directory = names::directory(&session, &bearer).await?;
    let mut client = TrackerServiceClient::with_interceptor(
        connect(&config::endpoints().tracker).await?,
        bearer,
    );
    // `mine` and `list` page the same way; they differ only in whose tasks.
    let mine = matches!(command, TasksCommand::Mine { .. });
    let task = match command {
        TasksCommand::Create {
            title,
            jira_id,
            description,
        } => {
            let request = tracker::CreateTaskRequest {
                title,
                jira_id,
                description,
            };
            let flags = [
                ("title", "--title"),
                ("jira_id", "--jira-id"),
                ("description", "--description"),
            ];
            answer_naming(client.create_task(request), &flags)
                .await?
                .task
        }
        TasksCommand::Get { task } => {
            let task_id = names::task_id(&mut client, &task).await?;
            let request = tracker::GetTaskRequest {
                task_id,
                key: String::new(),
            };
            answer(client.get_task(request)).await?.task
        }
        TasksCommand::Complete { task } => {
            let task_id = names::task_id(&mut client, &task).await?;
            let request = tracker::CompleteTaskRequest { task_id };
            answer(client.complete_task(request)).await?.task
        }
        TasksCommand::Shuffle => {
            let reassigned = answer(client.shuffle_tasks(tracker::ShuffleTasksRequest {}))
                .await?
                .reassigned;
            output::print(
                json,
                &["reassigned"],
                &[json!({ "reassigned": reassigned })],
            );
            return Ok(());
        }
        TasksCommand::History => {
            let history = task_history(&client).await?;
            let logins = names::logins(
                &mut directory,
                history.iter().map(|entry| entry.account_id.as_str()),
            )
            .await?;
            let rows = history
                .iter()
                .map(|entry| {
                    let kind = tracker::HistoryKind::try_from(entry.kind)
                        .unwrap_or(tracker::HistoryKind::Unspecified);
                    json!({
                        "event_id": entry.event_id, "task_id": entry.task_id,
                        "kind": kind.as_str_name().trim_start_matches("HISTORY_KIND_").to_lowercase(),
                        "account_id": entry.account_id,
                        "account": logins.get(&entry.account_id).unwrap_or(&entry.account_id),
                        "occurred_at": output::time(entry.occurred_at.as_ref()),
                    })
                })
                .collect();
            output::print_list(
                json,
                &["event_id", "task_id", "kind", "account", "occurred_at"],
                rows,
            );
            return Ok(());
        }
        TasksCommand::Mine { status: wanted } | TasksCommand::List { status: wanted } => {
            let status = status(wanted.as_deref())?;
            let tasks = all_pages(|page_token| {
                let mut client = client.clone();
                async move {
                    if mine {
                        let request = tracker::ListMyTasksRequest {
                            status,
                            page_size: 1000,
                            page_token,
                        };
                        let page = answer(client.list_my_tasks(request)).await?;
                        Ok((page.tasks, page.next_page_token))
                    } else {
                        let request = tracker::ListTasksRequest {
                            status,
                            page_size: 1000,
                            page_token,
                        };
                        let page = answer(client.list_tasks(request)).await?;
                        Ok((page.tasks, page.next_page_token))
                    }
                }
            })
            .await?;
            let logins = names::logins(
                &mut directory,
                tasks.iter().map(|task| task.assignee_id.as_str()),
            )
            .await?;
            let rows = tasks.iter().map(|task| task_row(task, &logins)).collect();
            output::print_list(json, TASK_COLUMNS, rows);
            return Ok(());
        }
    };
    let task = task.unwrap_or_default();
    let logins = names::logins(&mut directory, [task.assignee_id.as_str()]).await?;
    output::print(json, TASK_COLUMNS, &[task_row(&task, &logins)]);
    Ok(())
}
