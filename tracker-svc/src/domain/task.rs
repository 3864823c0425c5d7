//! Tasks and the newtypes their fields are parsed into at the edge. The
//! title, jira-id and description rules are the event schema's own
//! (`popug_proto::events::rules`, whose text rules are `popug_input`'s), so
//! a task the tracker accepts is always a valid `TaskCreated`: no NUL or
//! control character anywhere, line feeds and tabs in descriptions only.

use popug_proto::events::rules;
use uuid::Uuid;

use crate::error::Error;

/// A task title: trimmed, 1 to 200 characters on one line, no `[` or `]`.
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

/// Free text, at most 10,000 characters; it may run over several lines
/// (line feeds and tabs), the one task field that may. CRLF line endings
/// are stored as line feeds; any other control character is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Description(String);

impl Description {
    /// Parses `value` as the field `field`.
    pub fn parse(field: &'static str, value: &str) -> Result<Self, Error> {
        let description = popug_input::text::normalize_line_endings(value);
        rules::task_description(field, &description)
            .map_err(|error| Error::invalid(field, error.reason))?;
        Ok(Self(description.into_owned()))
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
    fn no_field_holds_a_nul_or_a_control_character() {
        for hostile in [
            "Feed\0the chicks",
            "Ring\u{7}",
            "Red\u{1b}[31m",
            "two\r\nlines",
            "c1\u{9b}",
        ] {
            assert!(matches!(
                Title::parse("title", hostile),
                Err(Error::InvalidArgument { field: "title", .. })
            ));
            assert!(matches!(
                JiraId::parse_optional("jira_id", &format!("UBERPOP-4{hostile}")),
                Err(Error::InvalidArgument {
                    field: "jira_id",
                    ..
                })
            ));
        }
        for hostile in [
            "nul\0",
            "bell\u{7}",
            "esc\u{1b}[2J",
            "lone\rcr",
            "c1\u{85}",
            "\u{2028}",
        ] {
            assert!(matches!(
                Description::parse("description", hostile),
                Err(Error::InvalidArgument {
                    field: "description",
                    ..
                })
            ));
        }
    }

    #[test]
    fn descriptions_keep_their_lines_and_tabs() {
        assert_eq!(
            Description::parse("description", "Steps:\r\n\t1. feed\n\t2. water\r\n")
                .map(|d| d.0)
                .ok(),
            Some("Steps:\n\t1. feed\n\t2. water\n".into())
        );
        assert!(Description::parse("description", &"x".repeat(10_000)).is_ok());
        assert!(Description::parse("description", &"x".repeat(10_001)).is_err());
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
