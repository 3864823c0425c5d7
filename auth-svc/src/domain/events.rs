//! The event each account change produces.

use popug_proto::pb::popug::events::accounts::v1 as events;
use popug_token::Role;

use super::Account;

/// The account's version as events carry it (it starts at 1 and only grows).
fn version(account: &Account) -> u64 {
    u64::try_from(account.version).unwrap_or(1)
}

/// `AccountCreated`: the full new account.
pub fn created(account: &Account) -> events::AccountCreated {
    events::AccountCreated {
        account_id: account.account_id.to_string(),
        login: account.login.clone(),
        name: account.name.clone(),
        email: account.email.clone(),
        role: events::Role::from(account.role).into(),
        active: account.active,
        version: version(account),
    }
}

/// `AccountUpdated`: the new profile fields.
pub fn updated(account: &Account) -> events::AccountUpdated {
    events::AccountUpdated {
        account_id: account.account_id.to_string(),
        name: account.name.clone(),
        email: account.email.clone(),
        version: version(account),
    }
}

/// `AccountRoleChanged`: the new and the previous role.
pub fn role_changed(account: &Account, previous: Role) -> events::AccountRoleChanged {
    events::AccountRoleChanged {
        account_id: account.account_id.to_string(),
        role: events::Role::from(account.role).into(),
        previous_role: events::Role::from(previous).into(),
        version: version(account),
    }
}

/// `AccountDeactivated`.
pub fn deactivated(account: &Account) -> events::AccountDeactivated {
    events::AccountDeactivated {
        account_id: account.account_id.to_string(),
        version: version(account),
    }
}
