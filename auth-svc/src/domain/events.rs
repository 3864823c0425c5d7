//! The event each account change produces (REQUIREMENTS.md, Auth 6).

use popug_proto::pb::popug::events::accounts::v1 as events;
use popug_token::Role;

use super::Account;

/// `AccountCreated`: the full new account.
pub fn created(account: &Account) -> events::AccountCreated {
    events::AccountCreated {
        account_id: account.account_id.to_string(),
        login: account.login.clone(),
        name: account.name.clone(),
        email: account.email.clone(),
        role: events::Role::from(account.role).into(),
        active: account.active,
    }
}

/// `AccountUpdated`: the new profile fields.
pub fn updated(account: &Account) -> events::AccountUpdated {
    events::AccountUpdated {
        account_id: account.account_id.to_string(),
        name: account.name.clone(),
        email: account.email.clone(),
    }
}

/// `AccountRoleChanged`: the new and the previous role.
pub fn role_changed(account: &Account, previous: Role) -> events::AccountRoleChanged {
    events::AccountRoleChanged {
        account_id: account.account_id.to_string(),
        role: events::Role::from(account.role).into(),
        previous_role: events::Role::from(previous).into(),
    }
}

/// `AccountDeactivated`.
pub fn deactivated(account: &Account) -> events::AccountDeactivated {
    events::AccountDeactivated {
        account_id: account.account_id.to_string(),
    }
}
