//! Upcasting old event versions to the current one, written once so every
//! consumer reads old events the same way (docs/migrations/task-jira-id.md).

use crate::pb::popug::events::tasks::{v1 as tasks_v1, v2 as tasks_v2};

use super::rules;

/// TaskCreated v1 → v2: a leading jira id in the title (`[UBERPOP-42] Fix`,
/// `UBERPOP-42 - Fix`, `UBERPOP-42 — Fix`) moves to `jira_id`; any other `[`
/// or `]` becomes `(` or `)`, since v2 titles cannot hold them. v1 had no
/// key, so `key` stays empty.
pub fn task_created_v1(event: tasks_v1::TaskCreated) -> tasks_v2::TaskCreated {
    let (jira_id, title) = split_jira_id(event.title.trim());
    let mut title: String = title
        .chars()
        .map(|c| match c {
            '[' => '(',
            ']' => ')',
            other => other,
        })
        .collect();
    title = title.trim().to_owned();
    if title.is_empty() {
        // A title that was only a jira id keeps it as its title.
        title = jira_id.clone().unwrap_or_else(|| "(untitled)".to_owned());
    }
    let title: String = title
        .chars()
        .take(rules::TITLE_MAX)
        .collect::<String>()
        .trim_end()
        .to_owned();
    tasks_v2::TaskCreated {
        task_id: event.task_id,
        key: String::new(),
        title,
        jira_id: jira_id.unwrap_or_default(),
        description: event.description,
    }
}

/// A leading jira id and the rest of the title.
fn split_jira_id(title: &str) -> (Option<String>, &str) {
    if let Some(rest) = title.strip_prefix('[')
        && let Some((id, after)) = rest.split_once(']')
        && rules::jira_id("jira_id", id.trim()).is_ok()
    {
        return (
            Some(id.trim().to_owned()),
            after.trim_start_matches([' ', ':', '-']).trim(),
        );
    }
    if let Some((id, after)) = title.split_once(char::is_whitespace)
        && let Some(bare) = id.strip_suffix(':')
        && rules::jira_id("jira_id", bare).is_ok()
    {
        return (Some(bare.to_owned()), after.trim());
    }
    if let Some((id, after)) = title.split_once(char::is_whitespace)
        && rules::jira_id("jira_id", id).is_ok()
    {
        let after = after.trim_start();
        for separator in ["-", "—", "–", ":"] {
            if let Some(rest) = after.strip_prefix(separator) {
                return (Some(id.to_owned()), rest.trim());
            }
        }
    }
    (None, title)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upcast(title: &str) -> (String, String) {
        let v2 = task_created_v1(tasks_v1::TaskCreated {
            task_id: "6c1b6a8e-3b1f-4c7e-9d43-2f1e0a8b9c10".into(),
            title: title.into(),
            description: "d".into(),
        });
        assert_eq!(v2.key, "");
        assert_eq!(v2.description, "d");
        assert!(
            rules::task_title("title", &v2.title).is_ok(),
            "{title:?} gave an invalid v2 title {:?}",
            v2.title
        );
        (v2.jira_id, v2.title)
    }

    #[test]
    fn real_v1_title_shapes() {
        let cases = [
            ("[UBERPOP-42] Fix the nest", "UBERPOP-42", "Fix the nest"),
            ("[UBERPOP-42]Fix the nest", "UBERPOP-42", "Fix the nest"),
            ("[UBERPOP-42] - Fix the nest", "UBERPOP-42", "Fix the nest"),
            ("[UBERPOP-42]: Fix the nest", "UBERPOP-42", "Fix the nest"),
            (" [ UBERPOP-7 ]  Feed chicks ", "UBERPOP-7", "Feed chicks"),
            ("UBERPOP-42 - Fix the nest", "UBERPOP-42", "Fix the nest"),
            ("UBERPOP-42 — Fix the nest", "UBERPOP-42", "Fix the nest"),
            ("UBERPOP-42: Fix the nest", "UBERPOP-42", "Fix the nest"),
            ("Fix the nest", "", "Fix the nest"),
            ("Fix [urgent] the nest", "", "Fix (urgent) the nest"),
            ("[draft] Fix the nest", "", "(draft) Fix the nest"),
            ("UBERPOP-42 is broken", "", "UBERPOP-42 is broken"),
            ("[UBERPOP-42]", "UBERPOP-42", "UBERPOP-42"),
            (
                "[uberpop-42] lower case is no jira id",
                "",
                "(uberpop-42) lower case is no jira id",
            ),
        ];
        for (v1, jira_id, title) in cases {
            assert_eq!(upcast(v1), (jira_id.to_owned(), title.to_owned()), "{v1:?}");
        }
    }

    #[test]
    fn long_titles_are_cut_to_the_v2_limit() {
        let (_, title) = upcast(&"x".repeat(300));
        assert_eq!(title.chars().count(), rules::TITLE_MAX);
    }
}
