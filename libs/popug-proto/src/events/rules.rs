//! Business rules every event must satisfy before it leaves a producer and
//! after it reaches a consumer. A rule is written once, here; the rules of
//! text and days are `popug_input`'s, the same ones requests meet, so what
//! a producer accepts its consumers accept, and a forged event a producer
//! would have refused is dead-lettered on arrival.
//!
//! Every number is bounded: prices by their ranges, ledger amounts by their
//! kind, balances and totals by sane bounds far inside `i64`, so no sum a
//! consumer computes over them can overflow.

use std::ops::RangeInclusive;

use popug_input::text::{self, quote};

use crate::pb::popug::events::{
    accounts::v1 as accounts_v1,
    billing::v1 as billing_v1,
    tasks::{v1 as tasks_v1, v2 as tasks_v2},
};

/// Why an event breaks its schema's rules; names the offending field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid `{field}`: {reason}")]
pub struct InvalidEvent {
    /// The field, as named in the `.proto` file.
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

impl From<popug_input::Invalid> for InvalidEvent {
    fn from(invalid: popug_input::Invalid) -> Self {
        Self::new(invalid.field, invalid.reason)
    }
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
pub fn uuid(field: &'static str, value: &str) -> Result<(), InvalidEvent> {
    match uuid::Uuid::try_parse(value) {
        Ok(id) if id.hyphenated().to_string() == value => Ok(()),
        _ => Err(InvalidEvent::new(
            field,
            format!("{} is not a UUID", quote(value)),
        )),
    }
}

/// A string with something other than white space in it.
pub fn non_blank(field: &'static str, value: &str) -> Result<(), InvalidEvent> {
    if value.trim().is_empty() {
        Err(InvalidEvent::new(field, "must not be empty"))
    } else {
        Ok(())
    }
}

/// One line of text: no control character, no line separator
/// (`popug_input::text::single_line`).
pub fn one_line(field: &'static str, value: &str) -> Result<(), InvalidEvent> {
    Ok(text::single_line(field, value)?)
}

/// Longest task title, in characters.
pub const TITLE_MAX: usize = 200;

/// A task title: 1 to [`TITLE_MAX`] characters on one line, trimmed,
/// without `[` or `]` (jira ids have their own field since TaskCreated v2).
pub fn task_title(field: &'static str, value: &str) -> Result<(), InvalidEvent> {
    one_line(field, value)?;
    if value != value.trim() {
        return Err(InvalidEvent::new(
            field,
            "must not start or end with white space",
        ));
    }
    non_blank(field, value)?;
    if value.chars().count() > TITLE_MAX {
        return Err(InvalidEvent::new(
            field,
            format!("must be at most {TITLE_MAX} characters"),
        ));
    }
    if value.contains(['[', ']']) {
        return Err(InvalidEvent::new(
            field,
            "must not contain `[` or `]`; put the jira id in `jira_id`",
        ));
    }
    Ok(())
}

/// Longest task description, in characters.
pub const DESCRIPTION_MAX: usize = 10_000;

/// A task description: free text of at most [`DESCRIPTION_MAX`] characters,
/// the one field that may hold line feeds and tabs
/// (`popug_input::text::multi_line`).
pub fn task_description(field: &'static str, value: &str) -> Result<(), InvalidEvent> {
    text::multi_line(field, value)?;
    if value.chars().count() > DESCRIPTION_MAX {
        return Err(InvalidEvent::new(
            field,
            format!("must be at most {DESCRIPTION_MAX} characters"),
        ));
    }
    Ok(())
}

/// A jira id such as `UBERPOP-42`: a project of 2 to 10 capitals and digits
/// starting with a capital, a dash, and an issue number.
pub fn jira_id(field: &'static str, value: &str) -> Result<(), InvalidEvent> {
    let valid = value.split_once('-').is_some_and(|(project, number)| {
        (2..=10).contains(&project.len())
            && project.starts_with(|c: char| c.is_ascii_uppercase())
            && project
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
            && (1..=9).contains(&number.len())
            && !number.starts_with('0')
            && number.chars().all(|c| c.is_ascii_digit())
    });
    if valid {
        Ok(())
    } else {
        Err(InvalidEvent::new(
            field,
            format!("{} is not a jira id like UBERPOP-42", quote(value)),
        ))
    }
}

/// A task key, `POPUG-<n>`.
fn task_key(field: &'static str, value: &str) -> Result<(), InvalidEvent> {
    match value.strip_prefix("POPUG-") {
        Some(number)
            if !number.is_empty()
                && !number.starts_with('0')
                && number.chars().all(|c| c.is_ascii_digit()) =>
        {
            Ok(())
        }
        _ => Err(InvalidEvent::new(
            field,
            format!("{} is not a key like POPUG-7", quote(value)),
        )),
    }
}

/// The highest entity version: what consumers store (`bigint`).
pub const VERSION_MAX: u64 = i64::MAX as u64;

/// An entity version: counts from 1, up to [`VERSION_MAX`].
fn version(field: &'static str, value: u64) -> Result<(), InvalidEvent> {
    if (1..=VERSION_MAX).contains(&value) {
        Ok(())
    } else {
        Err(InvalidEvent::new(
            field,
            format!("{value} is outside 1..={VERSION_MAX}"),
        ))
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

/// An email address, as far as an event can tell: something `@` something,
/// on one line.
fn email(field: &'static str, value: &str) -> Result<(), InvalidEvent> {
    one_line(field, value)?;
    match value.split_once('@') {
        Some((local, domain)) if !local.is_empty() && !domain.is_empty() => Ok(()),
        _ => Err(InvalidEvent::new(
            field,
            format!("{} is not an email address", quote(value)),
        )),
    }
}

impl Validate for accounts_v1::AccountCreated {
    fn validate(&self) -> Result<(), InvalidEvent> {
        uuid("account_id", &self.account_id)?;
        non_blank("login", &self.login)?;
        one_line("login", &self.login)?;
        non_blank("name", &self.name)?;
        one_line("name", &self.name)?;
        email("email", &self.email)?;
        role("role", self.role)?;
        version("version", self.version)
    }
}

impl Validate for accounts_v1::AccountUpdated {
    fn validate(&self) -> Result<(), InvalidEvent> {
        uuid("account_id", &self.account_id)?;
        non_blank("name", &self.name)?;
        one_line("name", &self.name)?;
        email("email", &self.email)?;
        version("version", self.version)
    }
}

impl Validate for accounts_v1::AccountRoleChanged {
    fn validate(&self) -> Result<(), InvalidEvent> {
        uuid("account_id", &self.account_id)?;
        role("role", self.role)?;
        role("previous_role", self.previous_role)?;
        version("version", self.version)
    }
}

impl Validate for accounts_v1::AccountDeactivated {
    fn validate(&self) -> Result<(), InvalidEvent> {
        uuid("account_id", &self.account_id)?;
        version("version", self.version)
    }
}

impl Validate for tasks_v1::TaskCreated {
    fn validate(&self) -> Result<(), InvalidEvent> {
        uuid("task_id", &self.task_id)?;
        // A v1 title may still hold its `[ID]`: the upcast splits it out.
        non_blank("title", &self.title)?;
        one_line("title", &self.title)?;
        task_description("description", &self.description)
    }
}

impl Validate for tasks_v2::TaskCreated {
    fn validate(&self) -> Result<(), InvalidEvent> {
        uuid("task_id", &self.task_id)?;
        task_key("key", &self.key)?;
        task_title("title", &self.title)?;
        task_description("description", &self.description)?;
        if self.jira_id.is_empty() {
            Ok(())
        } else {
            jira_id("jira_id", &self.jira_id)
        }
    }
}

impl Validate for tasks_v1::TaskAssigned {
    fn validate(&self) -> Result<(), InvalidEvent> {
        uuid("task_id", &self.task_id)?;
        uuid("assignee_id", &self.assignee_id)?;
        match tasks_v1::AssignmentReason::try_from(self.reason) {
            Ok(tasks_v1::AssignmentReason::Created) if self.previous_assignee_id.is_empty() => {
                Ok(())
            }
            Ok(tasks_v1::AssignmentReason::Created) => Err(InvalidEvent::new(
                "previous_assignee_id",
                "must be empty for a newly created task",
            )),
            Ok(tasks_v1::AssignmentReason::Shuffled) => {
                uuid("previous_assignee_id", &self.previous_assignee_id)
            }
            _ => Err(InvalidEvent::new(
                "reason",
                format!("{} is not a known reason", self.reason),
            )),
        }
    }
}

impl Validate for tasks_v1::TaskCompleted {
    fn validate(&self) -> Result<(), InvalidEvent> {
        uuid("task_id", &self.task_id)?;
        uuid("assignee_id", &self.assignee_id)
    }
}

/// Fees are 10..=20 dollars, in cents.
pub const FEE_CENTS: RangeInclusive<i64> = 1_000..=2_000;
/// Rewards are 20..=40 dollars, in cents.
pub const REWARD_CENTS: RangeInclusive<i64> = 2_000..=4_000;
/// One popug's payout for one day: 1 cent to 1,000,000 dollars. More is a
/// bug or a fraud, not a day's work (25,000 rewards); billing refuses to
/// pay it rather than send a figure no consumer trusts.
pub const PAYOUT_CENTS: RangeInclusive<i64> = 1..=100_000_000;
/// A popug's balance: within 10 billion dollars either way, which no real
/// ledger reaches (500 million fees on one popug) and which leaves `i64`
/// room for millions of such balances in one sum.
pub const BALANCE_CENTS: RangeInclusive<i64> = -1_000_000_000_000..=1_000_000_000_000;
/// Accounts paid in one close: what consumers store (`integer`). With
/// [`PAYOUT_CENTS`] a close's total stays below 2.2e17 cents, inside `i64`.
pub const ACCOUNTS_PAID_MAX: u32 = i32::MAX as u32;

/// A calendar day, `YYYY-MM-DD`, as `popug_input::day` parses every day.
fn day(field: &'static str, value: &str) -> Result<(), InvalidEvent> {
    popug_input::day::parse(field, value)?;
    Ok(())
}

/// `value` within `range`.
fn within(
    field: &'static str,
    value: i64,
    range: &RangeInclusive<i64>,
) -> Result<(), InvalidEvent> {
    if range.contains(&value) {
        Ok(())
    } else {
        Err(InvalidEvent::new(
            field,
            format!("{value} is outside {}..={}", range.start(), range.end()),
        ))
    }
}

/// The popug's side of a movement whose magnitude lies in `range`: negative
/// for what is taken away (the constants are small, so negating cannot overflow).
fn taken(range: &RangeInclusive<i64>) -> RangeInclusive<i64> {
    -*range.end()..=-*range.start()
}

impl Validate for billing_v1::TaskPriced {
    fn validate(&self) -> Result<(), InvalidEvent> {
        uuid("task_id", &self.task_id)?;
        within("fee_cents", self.fee_cents, &FEE_CENTS)?;
        within("reward_cents", self.reward_cents, &REWARD_CENTS)
    }
}

impl Validate for billing_v1::TransactionApplied {
    fn validate(&self) -> Result<(), InvalidEvent> {
        uuid("entry_id", &self.entry_id)?;
        uuid("account_id", &self.account_id)?;
        day("day", &self.day)?;
        let kind = billing_v1::EntryKind::try_from(self.kind).map_err(|_| {
            InvalidEvent::new("kind", format!("{} is not an entry kind", self.kind))
        })?;
        // The amount's sign and size follow from the kind.
        let amounts = match kind {
            billing_v1::EntryKind::AssignmentFee => taken(&FEE_CENTS),
            billing_v1::EntryKind::CompletionReward => REWARD_CENTS,
            billing_v1::EntryKind::Payout => taken(&PAYOUT_CENTS),
            billing_v1::EntryKind::Unspecified => {
                return Err(InvalidEvent::new("kind", "must be given"));
            }
        };
        if !amounts.contains(&self.amount_cents) {
            return Err(InvalidEvent::new(
                "amount_cents",
                format!(
                    "{} is outside {}..={} for {kind:?}",
                    self.amount_cents,
                    amounts.start(),
                    amounts.end()
                ),
            ));
        }
        within(
            "balance_after_cents",
            self.balance_after_cents,
            &BALANCE_CENTS,
        )?;
        if kind == billing_v1::EntryKind::Payout {
            Ok(())
        } else {
            uuid("task_id", &self.task_id)
        }
    }
}

impl Validate for billing_v1::BillingCycleClosed {
    fn validate(&self) -> Result<(), InvalidEvent> {
        day("day", &self.day)?;
        if self.accounts_paid > ACCOUNTS_PAID_MAX {
            return Err(InvalidEvent::new(
                "accounts_paid",
                format!("{} is more than {ACCOUNTS_PAID_MAX}", self.accounts_paid),
            ));
        }
        // Each account paid got 1 cent at least and PAYOUT_CENTS at most.
        let paid = i64::from(self.accounts_paid);
        within(
            "payouts_cents",
            self.payouts_cents,
            &(paid * PAYOUT_CENTS.start()..=paid * PAYOUT_CENTS.end()),
        )
    }
}

impl Validate for billing_v1::PaymentSent {
    fn validate(&self) -> Result<(), InvalidEvent> {
        uuid("payout_id", &self.payout_id)?;
        uuid("account_id", &self.account_id)?;
        day("day", &self.day)?;
        within("amount_cents", self.amount_cents, &PAYOUT_CENTS)
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
            version: 1,
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
    fn task_titles_and_jira_ids() {
        assert!(task_title("title", "Feed the chicks").is_ok());
        for bad in [
            "",
            "  padded ",
            "[UBERPOP-42] Fix",
            "ends with ]",
            &"x".repeat(201),
        ] {
            let error = task_title("title", bad).expect_err(bad);
            assert_eq!(error.field, "title");
        }
        for good in ["UBERPOP-42", "AB-1", "P2P-123456789"] {
            assert!(jira_id("jira_id", good).is_ok(), "{good}");
        }
        for bad in [
            "uberpop-42",
            "UBERPOP42",
            "UBERPOP-",
            "UBERPOP-042",
            "U-1",
            "2PAC-1",
            "UBERPOP-4a",
        ] {
            assert!(jira_id("jira_id", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn assignments_need_a_previous_assignee_only_when_shuffled() {
        let id = "6c1b6a8e-3b1f-4c7e-9d43-2f1e0a8b9c10".to_owned();
        let mut event = tasks_v1::TaskAssigned {
            task_id: id.clone(),
            assignee_id: id.clone(),
            previous_assignee_id: String::new(),
            reason: tasks_v1::AssignmentReason::Created.into(),
        };
        assert!(event.validate().is_ok());
        event.reason = tasks_v1::AssignmentReason::Shuffled.into();
        assert_eq!(
            event.validate().map_err(|e| e.field),
            Err("previous_assignee_id")
        );
        event.previous_assignee_id = id;
        assert!(event.validate().is_ok());
        event.reason = 0;
        assert_eq!(event.validate().map_err(|e| e.field), Err("reason"));
    }

    #[test]
    fn uuids_must_be_canonical() {
        assert!(uuid("id", "6C1B6A8E-3B1F-4C7E-9D43-2F1E0A8B9C10").is_err());
        assert!(uuid("id", "6c1b6a8e3b1f4c7e9d432f1e0a8b9c10").is_err());
        assert!(uuid("id", "6c1b6a8e-3b1f-4c7e-9d43-2f1e0a8b9c10").is_ok());
    }
}
