//! The events each task change produces.

use popug_proto::pb::popug::events::tasks::{v1 as tasks_v1, v2 as tasks_v2};
use uuid::Uuid;

use super::Task;

/// `TaskCreated` v2: the new task.
pub fn created(task: &Task) -> tasks_v2::TaskCreated {
    tasks_v2::TaskCreated {
        task_id: task.task_id.to_string(),
        key: task.key(),
        title: task.title.clone(),
        jira_id: task.jira_id.clone().unwrap_or_default(),
        description: task.description.clone(),
    }
}

/// `TaskAssigned` for a new task.
pub fn assigned_at_creation(task: &Task) -> tasks_v1::TaskAssigned {
    tasks_v1::TaskAssigned {
        task_id: task.task_id.to_string(),
        assignee_id: task.assignee_id.to_string(),
        previous_assignee_id: String::new(),
        reason: tasks_v1::AssignmentReason::Created.into(),
    }
}

/// `TaskAssigned` for a shuffled task.
pub fn reassigned(
    task_id: Uuid,
    assignee_id: Uuid,
    previous_assignee_id: Uuid,
) -> tasks_v1::TaskAssigned {
    tasks_v1::TaskAssigned {
        task_id: task_id.to_string(),
        assignee_id: assignee_id.to_string(),
        previous_assignee_id: previous_assignee_id.to_string(),
        reason: tasks_v1::AssignmentReason::Shuffled.into(),
    }
}

/// `TaskCompleted`.
pub fn completed(task: &Task) -> tasks_v1::TaskCompleted {
    tasks_v1::TaskCompleted {
        task_id: task.task_id.to_string(),
        assignee_id: task.assignee_id.to_string(),
    }
}
