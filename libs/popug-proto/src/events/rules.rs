//! Business rules every event must satisfy before it leaves a producer and
//! after it reaches a consumer. A rule is written once, here.

use crate::pb::popug::events::accounts::v1 as accounts_v1;

/// Why an event breaks its schema's rules; names the offending field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid `{field}`: {reason}")]
pub struct InvalidEvent {
    /// The field, as named in the `.proto` file.
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

impl InvalidEvent {
    /// An error for `field`.
    pub fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self {
            field,
            reason: reason.into(),
        }
    }
}

/// The business rules of one event type.
pub trait Validate {
    /// Checks the rules; the first broken one is the error.
    fn validate(&self) -> Result<(), InvalidEvent>;
}

/// A public id: a UUID in its canonical hyphenated form.
pub(crate) fn uuid(field: &'static str, value: &str) -> Result<(), InvalidEvent> {
    match uuid::Uuid::try_parse(value) {
        Ok(id) if id.hyphenated().to_string() == value => Ok(()),
        _ => Err(InvalidEvent::new(field, format!("`{value}` is not a UUID"))),
    }
}

/// A string with something other than white space in it.
pub(crate) fn non_blank(field: &'static str, value: &str) -> Result<(), InvalidEvent> {
    if value.trim().is_empty() {
        Err(InvalidEvent::new(field, "must not be empty"))
    } else {
        Ok(())
    }
}

/// A known, specified role.
fn role(field: &'static str, value: i32) -> Result<(), InvalidEvent> {
    match accounts_v1::Role::try_from(value) {
        Ok(accounts_v1::Role::Unspecified) | Err(_) => Err(InvalidEvent::new(
            field,
            format!("{value} is not a known role"),
        )),
        Ok(_) => Ok(()),
    }
}

/// An email address, as far as an event can tell: something `@` something.
fn email(field: &'static str, value: &str) -> Result<(), InvalidEvent> {
    match value.split_once('@') {
        Some((local, domain)) if !local.is_empty() && !domain.is_empty() => Ok(()),
        _ => Err(InvalidEvent::new(
            field,
            format!("`{value}` is not an email address"),
        )),
    }
}

impl Validate for accounts_v1::AccountCreated {
    fn validate(&self) -> Result<(), InvalidEvent> {
        uuid("account_id", &self.account_id)?;
        non_blank("login", &self.login)?;
        non_blank("name", &self.name)?;
        email("email", &self.email)?;
        role("role", self.role)
    }
}

impl Validate for accounts_v1::AccountUpdated {
    fn validate(&self) -> Result<(), InvalidEvent> {
        uuid("account_id", &self.account_id)?;
        non_blank("name", &self.name)?;
        email("email", &self.email)
    }
}

impl Validate for accounts_v1::AccountRoleChanged {
    fn validate(&self) -> Result<(), InvalidEvent> {
        uuid("account_id", &self.account_id)?;
        role("role", self.role)?;
        role("previous_role", self.previous_role)
    }
}

impl Validate for accounts_v1::AccountDeactivated {
    fn validate(&self) -> Result<(), InvalidEvent> {
        uuid("account_id", &self.account_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn created() -> accounts_v1::AccountCreated {
        accounts_v1::AccountCreated {
            account_id: "6c1b6a8e-3b1f-4c7e-9d43-2f1e0a8b9c10".into(),
            login: "kesha".into(),
            name: "Kesha".into(),
            email: "kesha@popug.inc".into(),
            role: accounts_v1::Role::Worker.into(),
            active: true,
        }
    }

    #[test]
    fn a_well_formed_event_passes() {
        assert_eq!(created().validate(), Ok(()));
    }

    #[test]
    fn each_broken_rule_names_its_field() {
        type Breaks = fn(&mut accounts_v1::AccountCreated);
        let cases: [(&str, Breaks); 5] = [
            ("account_id", |e| e.account_id = "42".into()),
            ("login", |e| e.login = "  ".into()),
            ("name", |e| e.name = String::new()),
            ("email", |e| e.email = "kesha".into()),
            ("role", |e| e.role = 0),
        ];
        for (field, breaks) in cases {
            let mut event = created();
            breaks(&mut event);
            let error = event.validate().expect_err(field);
            assert_eq!(error.field, field);
            assert!(error.to_string().contains(field));
        }
    }

    #[test]
    fn uuids_must_be_canonical() {
        assert!(uuid("id", "6C1B6A8E-3B1F-4C7E-9D43-2F1E0A8B9C10").is_err());
        assert!(uuid("id", "6c1b6a8e3b1f4c7e9d432f1e0a8b9c10").is_err());
        assert!(uuid("id", "6c1b6a8e-3b1f-4c7e-9d43-2f1e0a8b9c10").is_ok());
    }
}
