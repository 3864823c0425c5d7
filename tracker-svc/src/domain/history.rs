//! The tracker's record of the facts that move money: every assignment and
//! every completion, each with the id of the event that announced it.

use uuid::Uuid;

/// What happened to a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryKind {
    /// Assigned to a worker, at creation or by a shuffle.
    Assigned,
    /// Completed by its assignee.
    Completed,
}

impl HistoryKind {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            HistoryKind::Assigned => "assigned",
            HistoryKind::Completed => "completed",
        }
    }
}

/// One fact of a task's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// The event that announced it (`TaskAssigned` or `TaskCompleted`).
    pub event_id: Uuid,
    /// The task.
    pub task_id: Uuid,
    /// Assigned or completed.
    pub kind: HistoryKind,
    /// The assignee at that moment.
    pub account_id: Uuid,
    /// When the tracker committed it.
    pub occurred_at: chrono::DateTime<chrono::Utc>,
}
