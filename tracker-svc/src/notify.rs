//! Telling assignees about their new tasks:
//! after the commit, one message per assignee per operation, written to the
//! mail directory where a person can read it, and logged. Never silently
//! nothing: a failure to write is logged as an error.

use std::{collections::BTreeMap, path::PathBuf};

use uuid::Uuid;

/// Writes assignment notifications.
#[derive(Debug, Clone)]
pub struct Notifier {
    mail_dir: PathBuf,
}

impl Notifier {
    /// Notifications go to files in `mail_dir`.
    pub fn new(mail_dir: PathBuf) -> Self {
        Self { mail_dir }
    }

    /// Tells each assignee which tasks it was just given; `assignments` are
    /// (assignee, task description) pairs, `why` says what happened.
    pub async fn assigned(&self, why: &str, assignments: impl IntoIterator<Item = (Uuid, String)>) {
        let mut by_assignee: BTreeMap<Uuid, Vec<String>> = BTreeMap::new();
        for (assignee, task) in assignments {
            by_assignee.entry(assignee).or_default().push(task);
        }
        if by_assignee.is_empty() {
            return;
        }
        if let Err(error) = tokio::fs::create_dir_all(&self.mail_dir).await {
            tracing::error!(dir = %self.mail_dir.display(), %error, "cannot create the mail directory; notifications are only logged");
        }
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.6fZ");
        for (assignee, tasks) in by_assignee {
            tracing::info!(%assignee, tasks = tasks.len(), why, "assignee notified");
            let body = format!(
                "To: popug {assignee}\nSubject: {} task(s) assigned to you ({why})\n\n{}\n",
                tasks.len(),
                tasks.join("\n")
            );
            let path = self
                .mail_dir
                .join(format!("{stamp}-tracker-{assignee}.txt"));
            if let Err(error) = tokio::fs::write(&path, body).await {
                tracing::error!(path = %path.display(), %error, "cannot write a notification");
            }
        }
    }
}
