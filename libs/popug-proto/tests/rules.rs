//! Property tests of every event's `Validate` rules: whatever the strings,
//! bytes and numbers, validation never panics, and what it passes is sound
//! by an independent check (clean text, canonical ids, days of the range
//! that round-trip, every number within its bound). Events are drawn from
//! valid values mixed with hostile ones, so both sides of each rule are
//! exercised, and also decoded from arbitrary bytes.

use chrono::NaiveDate;
use popug_input::day::{FIRST, LAST};
use popug_proto::{
    events::{
        Validate,
        rules::{
            ACCOUNTS_PAID_MAX, BALANCE_CENTS, DESCRIPTION_MAX, FEE_CENTS, PAYOUT_CENTS,
            REWARD_CENTS, TITLE_MAX,
        },
    },
    pb::popug::events::{
        accounts::v1 as accounts_v1,
        billing::v1 as billing_v1,
        tasks::{v1 as tasks_v1, v2 as tasks_v2},
    },
};
use proptest::prelude::*;
use prost::Message;

// ---- Independent checks of what a valid event holds. ----

fn forbidden(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}')
}

fn one_line(value: &str) -> bool {
    !value.chars().any(forbidden)
}

fn multi_line(value: &str) -> bool {
    value
        .chars()
        .all(|c| matches!(c, '\n' | '\t') || !forbidden(c))
}

fn canonical_uuid(value: &str) -> bool {
    uuid::Uuid::try_parse(value).is_ok_and(|id| id.hyphenated().to_string() == value)
}

fn day_of_the_range(value: &str) -> bool {
    NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .is_ok_and(|day| day.to_string() == value && (FIRST..=LAST).contains(&day))
}

/// What a valid event of each type must hold, checked without the rules.
trait Sound {
    fn sound(&self) -> Result<(), String>;
}

fn check(ok: bool, what: &str) -> Result<(), String> {
    if ok { Ok(()) } else { Err(what.to_owned()) }
}

impl Sound for accounts_v1::AccountCreated {
    fn sound(&self) -> Result<(), String> {
        check(canonical_uuid(&self.account_id), "account_id")?;
        check(
            one_line(&self.login) && !self.login.trim().is_empty(),
            "login",
        )?;
        check(one_line(&self.name) && !self.name.trim().is_empty(), "name")?;
        check(one_line(&self.email) && self.email.contains('@'), "email")?;
        check((1..=4).contains(&self.role), "role")?;
        check(
            self.version >= 1 && i64::try_from(self.version).is_ok(),
            "version",
        )
    }
}

impl Sound for accounts_v1::AccountUpdated {
    fn sound(&self) -> Result<(), String> {
        check(canonical_uuid(&self.account_id), "account_id")?;
        check(one_line(&self.name) && !self.name.trim().is_empty(), "name")?;
        check(one_line(&self.email) && self.email.contains('@'), "email")?;
        check(
            self.version >= 1 && i64::try_from(self.version).is_ok(),
            "version",
        )
    }
}

impl Sound for accounts_v1::AccountRoleChanged {
    fn sound(&self) -> Result<(), String> {
        check(canonical_uuid(&self.account_id), "account_id")?;
        check((1..=4).contains(&self.role), "role")?;
        check((1..=4).contains(&self.previous_role), "previous_role")?;
        check(
            self.version >= 1 && i64::try_from(self.version).is_ok(),
            "version",
        )
    }
}

impl Sound for accounts_v1::AccountDeactivated {
    fn sound(&self) -> Result<(), String> {
        check(canonical_uuid(&self.account_id), "account_id")?;
        check(
            self.version >= 1 && i64::try_from(self.version).is_ok(),
            "version",
        )
    }
}

impl Sound for tasks_v1::TaskCreated {
    fn sound(&self) -> Result<(), String> {
        check(canonical_uuid(&self.task_id), "task_id")?;
        check(
            one_line(&self.title) && !self.title.trim().is_empty(),
            "title",
        )?;
        check(
            multi_line(&self.description) && self.description.chars().count() <= DESCRIPTION_MAX,
            "description",
        )
    }
}

impl Sound for tasks_v2::TaskCreated {
    fn sound(&self) -> Result<(), String> {
        check(canonical_uuid(&self.task_id), "task_id")?;
        check(
            self.key
                .strip_prefix("POPUG-")
                .is_some_and(|n| n.parse::<u64>().is_ok_and(|n| n > 0)),
            "key",
        )?;
        check(
            one_line(&self.title)
                && !self.title.trim().is_empty()
                && self.title.chars().count() <= TITLE_MAX
                && !self.title.contains(['[', ']']),
            "title",
        )?;
        check(
            self.jira_id.is_empty()
                || (self.jira_id.contains('-')
                    && self
                        .jira_id
                        .chars()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-')),
            "jira_id",
        )?;
        check(
            multi_line(&self.description) && self.description.chars().count() <= DESCRIPTION_MAX,
            "description",
        )
    }
}

impl Sound for tasks_v1::TaskAssigned {
    fn sound(&self) -> Result<(), String> {
        check(canonical_uuid(&self.task_id), "task_id")?;
        check(canonical_uuid(&self.assignee_id), "assignee_id")?;
        check(
            self.previous_assignee_id.is_empty() || canonical_uuid(&self.previous_assignee_id),
            "previous_assignee_id",
        )?;
        check((1..=2).contains(&self.reason), "reason")
    }
}

impl Sound for tasks_v1::TaskCompleted {
    fn sound(&self) -> Result<(), String> {
        check(canonical_uuid(&self.task_id), "task_id")?;
        check(canonical_uuid(&self.assignee_id), "assignee_id")
    }
}

impl Sound for billing_v1::TaskPriced {
    fn sound(&self) -> Result<(), String> {
        check(canonical_uuid(&self.task_id), "task_id")?;
        check(FEE_CENTS.contains(&self.fee_cents), "fee_cents")?;
        check(REWARD_CENTS.contains(&self.reward_cents), "reward_cents")
    }
}

impl Sound for billing_v1::TransactionApplied {
    fn sound(&self) -> Result<(), String> {
        check(canonical_uuid(&self.entry_id), "entry_id")?;
        check(canonical_uuid(&self.account_id), "account_id")?;
        check(day_of_the_range(&self.day), "day")?;
        let amount = self.amount_cents;
        let amount_ok = match self.kind {
            1 => amount < 0 && FEE_CENTS.contains(&amount.saturating_neg()),
            2 => REWARD_CENTS.contains(&amount),
            3 => amount < 0 && PAYOUT_CENTS.contains(&amount.saturating_neg()),
            _ => false,
        };
        check(amount_ok, "amount_cents")?;
        check(
            BALANCE_CENTS.contains(&self.balance_after_cents),
            "balance_after_cents",
        )?;
        check(self.kind == 3 || canonical_uuid(&self.task_id), "task_id")
    }
}

impl Sound for billing_v1::BillingCycleClosed {
    fn sound(&self) -> Result<(), String> {
        check(day_of_the_range(&self.day), "day")?;
        check(self.accounts_paid <= ACCOUNTS_PAID_MAX, "accounts_paid")?;
        let paid = i128::from(self.accounts_paid);
        let total = i128::from(self.payouts_cents);
        check(
            paid <= total && total <= paid * i128::from(*PAYOUT_CENTS.end()),
            "payouts_cents",
        )
    }
}

impl Sound for billing_v1::PaymentSent {
    fn sound(&self) -> Result<(), String> {
        check(canonical_uuid(&self.payout_id), "payout_id")?;
        check(canonical_uuid(&self.account_id), "account_id")?;
        check(day_of_the_range(&self.day), "day")?;
        check(PAYOUT_CENTS.contains(&self.amount_cents), "amount_cents")
    }
}

/// Validation never panics; what it passes is sound, and a refusal names a
/// field of the event.
fn holds<E: Validate + Sound + std::fmt::Debug>(event: &E) -> Result<(), TestCaseError> {
    match event.validate() {
        Ok(()) => {
            if let Err(field) = event.sound() {
                return Err(TestCaseError::fail(format!(
                    "passed with an unsound `{field}`: {event:?}"
                )));
            }
        }
        Err(error) => prop_assert!(!error.field.is_empty() && !error.reason.is_empty()),
    }
    Ok(())
}

/// The same, for whatever `bytes` decode to as an `E`.
fn holds_decoded<E: Message + Default + Validate + Sound + std::fmt::Debug>(
    bytes: &[u8],
) -> Result<(), TestCaseError> {
    match E::decode(bytes) {
        Ok(event) => holds(&event),
        Err(_) => Ok(()),
    }
}

// ---- Values: valid ones mixed with hostile ones. ----

fn id() -> impl Strategy<Value = String> {
    prop_oneof![
        12 => any::<u128>().prop_map(|n| uuid::Uuid::from_u128(n).to_string()),
        1 => any::<u128>().prop_map(|n| uuid::Uuid::from_u128(n).simple().to_string()),
        1 => Just(String::new()),
        1 => any::<String>(),
    ]
}

/// Text: plain, any string, or plain with a control character inside.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[A-Za-z][A-Za-z0-9 .@-]{0,30}[a-z]",
        1 => any::<String>(),
        2 => "[a-z]{1,8}[\\x00-\\x1f\\x7f-\\u{9f}\\u{2028}\\u{2029}][a-z]{1,8}",
        1 => Just(String::new()),
    ]
}

fn email() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z]{1,8}@[a-z]{1,8}\\.inc",
        2 => "[a-z]{1,4}[\\x00-\\x1f\\x7f]?@[a-z]{1,4}[\\x00\\x1b\\r\\n]?\\.inc",
        1 => any::<String>(),
    ]
}

fn description() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z \\n\\t]{0,60}",
        2 => "[a-z]{0,8}[\\x00-\\x1f\\x7f-\\u{9f}\\u{2028}][a-z]{0,8}",
        1 => any::<String>(),
        1 => Just("x".repeat(DESCRIPTION_MAX + 1)),
    ]
}

fn day() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => (0..=(LAST - FIRST).num_days())
            .prop_map(|offset| (FIRST + chrono::Days::new(offset.unsigned_abs())).to_string()),
        2 => "[0-9]{4}-[0-9]{2}-[0-9]{2}",
        1 => "-[0-9]{4}-01-01",
        1 => any::<String>(),
    ]
}

fn cents() -> impl Strategy<Value = i64> {
    prop_oneof![
        4 => prop_oneof![
            -2_000_i64..=-1_000,
            1_000_i64..=4_000,
            -100_000_000_i64..=-1,
            1_i64..=100_000_000,
        ],
        1 => -5_000_i64..=5_000,
        1 => -200_000_000_i64..=200_000_000,
        1 => any::<i64>(),
        1 => prop::sample::select(vec![
            i64::MIN,
            i64::MAX,
            0,
            *BALANCE_CENTS.start() - 1,
            *BALANCE_CENTS.end() + 1,
            -*PAYOUT_CENTS.end() - 1,
        ]),
    ]
}

/// An entry kind with an amount mostly of that kind's band.
fn kind_and_amount() -> impl Strategy<Value = (i32, i64)> {
    enum_value().prop_flat_map(|kind| {
        let band = match kind {
            1 => -2_000_i64..=-1_000,
            2 => 2_000_i64..=4_000,
            _ => -100_000_000_i64..=-1,
        };
        (Just(kind), prop_oneof![3 => band, 1 => cents()])
    })
}

fn enum_value() -> impl Strategy<Value = i32> {
    prop_oneof![4 => 0_i32..=5, 1 => any::<i32>()]
}

fn version() -> impl Strategy<Value = u64> {
    prop_oneof![4 => 0_u64..=10, 1 => any::<u64>()]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn account_events(
        (account_id, login, name, email) in (id(), text(), text(), email()),
        (role, previous_role, version, active) in (enum_value(), enum_value(), version(), any::<bool>()),
    ) {
        holds(&accounts_v1::AccountCreated {
            account_id: account_id.clone(), login, name: name.clone(), email: email.clone(), role, active, version,
        })?;
        holds(&accounts_v1::AccountUpdated { account_id: account_id.clone(), name, email, version })?;
        holds(&accounts_v1::AccountRoleChanged { account_id: account_id.clone(), role, previous_role, version })?;
        holds(&accounts_v1::AccountDeactivated { account_id, version })?;
    }

    #[test]
    fn task_events(
        (task_id, assignee_id, previous_assignee_id) in (id(), id(), prop_oneof![id(), Just(String::new())]),
        (title, description, number, jira_id) in (text(), description(), any::<u32>(), prop_oneof![
            Just(String::new()), "[A-Z]{2,4}-[1-9][0-9]{0,3}", text(),
        ]),
        reason in enum_value(),
    ) {
        holds(&tasks_v1::TaskCreated {
            task_id: task_id.clone(), title: title.clone(), description: description.clone(),
        })?;
        holds(&tasks_v2::TaskCreated {
            task_id: task_id.clone(), key: format!("POPUG-{number}"), title, jira_id, description,
        })?;
        holds(&tasks_v1::TaskAssigned {
            task_id: task_id.clone(), assignee_id: assignee_id.clone(), previous_assignee_id, reason,
        })?;
        holds(&tasks_v1::TaskCompleted { task_id, assignee_id })?;
    }

    #[test]
    fn billing_events(
        (id_a, id_b, task_id, day) in (id(), id(), prop_oneof![id(), Just(String::new())], day()),
        ((kind, amount_cents), balance_after_cents, other_cents) in (kind_and_amount(), cents(), cents()),
        accounts_paid in prop_oneof![0_u32..=3, any::<u32>()],
    ) {
        holds(&billing_v1::TaskPriced {
            task_id: task_id.clone(), fee_cents: amount_cents.saturating_neg(), reward_cents: other_cents,
        })?;
        holds(&billing_v1::TransactionApplied {
            entry_id: id_a.clone(), account_id: id_b.clone(), kind, amount_cents, task_id,
            day: day.clone(), balance_after_cents,
        })?;
        holds(&billing_v1::BillingCycleClosed { day: day.clone(), accounts_paid, payouts_cents: other_cents })?;
        holds(&billing_v1::PaymentSent { payout_id: id_a, account_id: id_b, amount_cents: other_cents, day })?;
    }

    #[test]
    fn any_bytes_decode_to_nothing_unsound(bytes in any::<Vec<u8>>()) {
        holds_decoded::<accounts_v1::AccountCreated>(&bytes)?;
        holds_decoded::<accounts_v1::AccountUpdated>(&bytes)?;
        holds_decoded::<accounts_v1::AccountRoleChanged>(&bytes)?;
        holds_decoded::<accounts_v1::AccountDeactivated>(&bytes)?;
        holds_decoded::<tasks_v1::TaskCreated>(&bytes)?;
        holds_decoded::<tasks_v2::TaskCreated>(&bytes)?;
        holds_decoded::<tasks_v1::TaskAssigned>(&bytes)?;
        holds_decoded::<tasks_v1::TaskCompleted>(&bytes)?;
        holds_decoded::<billing_v1::TaskPriced>(&bytes)?;
        holds_decoded::<billing_v1::TransactionApplied>(&bytes)?;
        holds_decoded::<billing_v1::BillingCycleClosed>(&bytes)?;
        holds_decoded::<billing_v1::PaymentSent>(&bytes)?;
    }

    #[test]
    fn a_nul_anywhere_in_a_text_field_is_refused(
        before in "[a-z]{0,8}", after in "[a-z]{0,8}", field in 0_usize..5,
    ) {
        let nul = format!("{before}\0{after}");
        let id = uuid::Uuid::new_v4().to_string();
        let mut created = tasks_v2::TaskCreated {
            task_id: id.clone(), key: "POPUG-1".into(), title: "Feed".into(),
            jira_id: String::new(), description: String::new(),
        };
        let mut account = accounts_v1::AccountCreated {
            account_id: id, login: "kesha".into(), name: "Kesha".into(),
            email: "kesha@popug.inc".into(), role: 1, active: true, version: 1,
        };
        match field {
            0 => created.title = nul,
            1 => created.description = nul,
            2 => account.login = nul,
            3 => account.name = nul,
            _ => account.email = format!("{nul}@popug.inc"),
        }
        prop_assert!(created.validate().is_err() || account.validate().is_err());
    }
}

#[test]
fn the_bounds_themselves_pass_and_one_past_them_does_not() {
    use billing_v1::EntryKind::{AssignmentFee, CompletionReward, Payout};
    let id = uuid::Uuid::new_v4().to_string();
    let applied = |kind: billing_v1::EntryKind, amount_cents: i64, balance_after_cents: i64| {
        billing_v1::TransactionApplied {
            entry_id: id.clone(),
            account_id: id.clone(),
            kind: kind.into(),
            amount_cents,
            task_id: id.clone(),
            day: "2026-11-22".into(),
            balance_after_cents,
        }
    };
    for (kind, good, bad) in [
        (AssignmentFee, [-1_000, -2_000], [-999, -2_001]),
        (CompletionReward, [2_000, 4_000], [1_999, 4_001]),
        (Payout, [-1, -100_000_000], [0, -100_000_001]),
    ] {
        for amount in good {
            assert_eq!(
                applied(kind, amount, 0).validate(),
                Ok(()),
                "{kind:?} {amount}"
            );
        }
        for amount in bad.into_iter().chain([i64::MIN, i64::MAX]) {
            let error = applied(kind, amount, 0)
                .validate()
                .expect_err("out of range");
            assert_eq!(error.field, "amount_cents", "{kind:?} {amount}");
        }
    }
    for balance in [*BALANCE_CENTS.start(), *BALANCE_CENTS.end()] {
        assert_eq!(applied(CompletionReward, 2_000, balance).validate(), Ok(()));
    }
    for balance in [
        *BALANCE_CENTS.start() - 1,
        *BALANCE_CENTS.end() + 1,
        i64::MIN,
        i64::MAX,
    ] {
        let error = applied(CompletionReward, 2_000, balance)
            .validate()
            .expect_err("balance out of range");
        assert_eq!(error.field, "balance_after_cents");
    }
    let mut closed = billing_v1::BillingCycleClosed {
        day: "2026-11-22".into(),
        accounts_paid: 0,
        payouts_cents: 0,
    };
    assert_eq!(closed.validate(), Ok(()));
    closed.payouts_cents = 1;
    assert_eq!(closed.validate().map_err(|e| e.field), Err("payouts_cents"));
    closed.accounts_paid = 2;
    closed.payouts_cents = 200_000_000;
    assert_eq!(closed.validate(), Ok(()));
    closed.payouts_cents = 200_000_001;
    assert_eq!(closed.validate().map_err(|e| e.field), Err("payouts_cents"));
    closed.accounts_paid = ACCOUNTS_PAID_MAX + 1;
    assert_eq!(closed.validate().map_err(|e| e.field), Err("accounts_paid"));
    let mut sent = billing_v1::PaymentSent {
        payout_id: id.clone(),
        account_id: id.clone(),
        amount_cents: 100_000_000,
        day: "2026-11-22".into(),
    };
    assert_eq!(sent.validate(), Ok(()));
    sent.amount_cents = 100_000_001;
    assert_eq!(sent.validate().map_err(|e| e.field), Err("amount_cents"));
}

#[test]
fn events_and_requests_share_one_day_rule() {
    let id = uuid::Uuid::new_v4().to_string();
    for (day, valid) in [
        ("2026-11-22", true),
        ("2000-01-01", true),
        ("2999-12-31", true),
        ("2026-99-99", false),
        ("2026-02-30", false),
        ("-5000-01-01", false),
        ("1999-12-31", false),
        ("3000-01-01", false),
    ] {
        let sent = billing_v1::PaymentSent {
            payout_id: id.clone(),
            account_id: id.clone(),
            amount_cents: 100,
            day: day.into(),
        };
        assert_eq!(sent.validate().is_ok(), valid, "{day}");
        assert_eq!(popug_input::day::parse("day", day).is_ok(), valid, "{day}");
    }
}
