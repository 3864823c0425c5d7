//! An event's fields as handlers read them into their types: ids, optional
//! ids, days, versions, counts and roles, each parsed here once.
//!
//! The event's rules (`Validate`, with `popug_input`'s day rule) were
//! checked when the delivery was decoded, so a field that does not parse
//! here is a schema drift or a bug, never a retry's business: it is
//! [`HandlerError::Rejected`] (dead-lettered at once), naming the field.

use chrono::NaiveDate;
use popug_token::Role;
use uuid::Uuid;

use crate::HandlerError;

/// A public id (`account_id`, `task_id`, …).
pub fn uuid(field: &str, value: &str) -> Result<Uuid, HandlerError> {
    Uuid::try_parse(value)
        .map_err(|_| HandlerError::Rejected(format!("{field} `{value}` is not a UUID")))
}

/// An id that may be absent: empty is `None`.
pub fn optional_uuid(field: &str, value: &str) -> Result<Option<Uuid>, HandlerError> {
    if value.is_empty() {
        Ok(None)
    } else {
        uuid(field, value).map(Some)
    }
}

/// A day, `YYYY-MM-DD`, by the one day rule (`popug_input::day`).
pub fn day(field: &'static str, value: &str) -> Result<NaiveDate, HandlerError> {
    popug_input::day::parse(field, value).map_err(|error| HandlerError::Rejected(error.to_string()))
}

/// An aggregate's version, as stored (`bigint`).
pub fn version(value: u64) -> Result<i64, HandlerError> {
    i64::try_from(value)
        .map_err(|_| HandlerError::Rejected(format!("version {value} is out of range")))
}

/// A count, as stored (`integer`).
pub fn count(field: &str, value: u32) -> Result<i32, HandlerError> {
    i32::try_from(value).map_err(|_| HandlerError::Rejected(format!("{field} is out of range")))
}

/// An account event's `role` (the enum's wire value).
pub fn role(value: i32) -> Result<Role, HandlerError> {
    Role::from_event(value).map_err(HandlerError::Rejected)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejected<T: std::fmt::Debug>(result: Result<T, HandlerError>) -> String {
        match result {
            Err(HandlerError::Rejected(reason)) => reason,
            other => panic!("not rejected: {other:?}"),
        }
    }

    #[test]
    fn fields_parse_into_their_types() {
        let id = Uuid::new_v4();
        assert_eq!(uuid("task_id", &id.to_string()).ok(), Some(id));
        assert_eq!(optional_uuid("task_id", "").ok(), Some(None));
        assert_eq!(
            day("day", "2026-11-22").ok(),
            NaiveDate::from_ymd_opt(2026, 11, 22)
        );
        assert_eq!(version(7).ok(), Some(7));
        assert_eq!(count("accounts_paid", 3).ok(), Some(3));
        assert_eq!(
            role(popug_proto::pb::popug::events::accounts::v1::Role::Manager as i32).ok(),
            Some(Role::Manager)
        );
    }

    #[test]
    fn a_field_that_does_not_parse_is_rejected_naming_it() {
        assert!(rejected(uuid("assignee_id", "kesha")).contains("assignee_id"));
        assert!(rejected(optional_uuid("task_id", "x")).contains("task_id"));
        assert!(rejected(day("day", "2026-99-99")).contains("`day`"));
        assert!(rejected(version(u64::MAX)).contains("version"));
        assert!(rejected(count("accounts_paid", u32::MAX)).contains("accounts_paid"));
        assert!(rejected(role(0)).contains("role"));
    }
}
