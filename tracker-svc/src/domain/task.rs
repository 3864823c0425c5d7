//! Tasks and the newtypes their fields are parsed into at the edge. The title
//! and jira-id rules are the event schema's own (`popug_proto::events::rules`),
//! so a task the tracker accepts is always a valid `TaskCreated`.

use popug_proto::events::rules;
use uuid::Uuid;

use crate::error::Error;

/// A task title: trimmed, 1 to 200 characters, no `[` or `]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Title(String);

impl Title {
    /// Parses `value` (trimmed) as the field `field`.
    pub fn parse(field: &'static str, value: &str) -> Result<Self, Error> {
        let title = value.trim();
        rules::task_title(field, title).map_err(|error| Error::invalid(field, error.reason))?;
        Ok(Self(title.to_owned()))
    }

    /// The title.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A jira id such as `UBERPOP-42` (upper-cased on the way in).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JiraId(String);

impl JiraId {
    /// Parses `value` as the field `field`; empty means none.
    pub fn parse_optional(field: &'static str, value: &str) -> Result<Option<Self>, Error> {
        let id = value.trim().to_uppercase();
        if id.is_empty() {
            return Ok(None);
        }
        rules::jira_id(field, &id).map_err(|error| Error::invalid(field, error.reason))?;
        Ok(Some(Self(id)))
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Free text, at most 10,000 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Description(String);

impl Description {
    /// Parses `value` as the field `field`.
    pub fn parse(field: &'static str, value: &str) -> Result<Self, Error> {
        if value.chars().count() > 10_000 {
            return Err(Error::invalid(field, "must be at most 10000 characters"));
        }
        Ok(Self(value.to_owned()))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A validated request for a new task.
#[derive(Debug, Clone)]
pub struct NewTask {
    /// Its title.
    pub title: Title,
    /// Its jira id, if any.
    pub jira_id: Option<JiraId>,
    /// Its description.
    pub description: Description,
}

/// Open or done; a done task stays done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskStatus {
    /// Assigned, not done.
    Open,
    /// Completed by its assignee.
    Done,
}

impl TaskStatus {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Open => "open",
            TaskStatus::Done => "done",
        }
    }
}

/// A task as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    /// Public id.
    pub task_id: Uuid,
    /// The number of its key, `POPUG-<number>`.
    pub number: i64,
    /// Title.
    pub title: String,
    /// Jira id, if any.
    pub jira_id: Option<String>,
    /// Description.
    pub description: String,
    /// Status.
    pub status: TaskStatus,
    /// The assigned worker.
    pub assignee_id: Uuid,
    /// When it was created.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// When it was completed.
    pub completed_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl Task {
    /// The human key, `POPUG-<n>`.
    pub fn key(&self) -> String {
        format!("POPUG-{}", self.number)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_are_trimmed_and_refuse_brackets_naming_the_field() {
        assert_eq!(
            Title::parse("title", "  Feed the chicks ")
                .map(|t| t.0)
                .ok(),
            Some("Feed the chicks".into())
        );
        for bad in ["", "   ", "[UBERPOP-42] Fix", "a ] b", &"x".repeat(201)] {
            match Title::parse("title", bad) {
                Err(Error::InvalidArgument { field, .. }) => assert_eq!(field, "title"),
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn jira_ids_are_optional_and_checked() {
        assert_eq!(JiraId::parse_optional("jira_id", "").ok(), Some(None));
        assert_eq!(
            JiraId::parse_optional("jira_id", " uberpop-42 ")
                .ok()
                .flatten()
                .map(|j| j.0),
            Some("UBERPOP-42".into())
        );
        assert!(matches!(
            JiraId::parse_optional("jira_id", "not an id"),
            Err(Error::InvalidArgument {
                field: "jira_id",
                ..
            })
        ));
    }
}
