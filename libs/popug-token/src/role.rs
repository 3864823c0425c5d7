//! The four roles, and their protobuf forms.

use std::{fmt, str::FromStr};

use popug_proto::pb::popug::{auth::v1 as auth_v1, events::accounts::v1 as accounts_v1};

/// Every account has exactly one role; only workers do tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// An ordinary popug.
    Worker,
    /// May shuffle tasks.
    Manager,
    /// Sees every account and management's earnings.
    Accountant,
    /// Manages accounts and may do everything.
    Admin,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 4] = [Role::Worker, Role::Manager, Role::Accountant, Role::Admin];

    /// Lower-case name, as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Worker => "worker",
            Role::Manager => "manager",
            Role::Accountant => "accountant",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == value)
            .ok_or_else(|| format!("`{value}` is not a role (worker, manager, accountant, admin)"))
    }
}

impl TryFrom<auth_v1::Role> for Role {
    type Error = String;
    fn try_from(role: auth_v1::Role) -> Result<Self, Self::Error> {
        match role {
            auth_v1::Role::Worker => Ok(Role::Worker),
            auth_v1::Role::Manager => Ok(Role::Manager),
            auth_v1::Role::Accountant => Ok(Role::Accountant),
            auth_v1::Role::Admin => Ok(Role::Admin),
            auth_v1::Role::Unspecified => Err("a role must be given".into()),
        }
    }
}

impl From<Role> for auth_v1::Role {
    fn from(role: Role) -> Self {
        match role {
            Role::Worker => auth_v1::Role::Worker,
            Role::Manager => auth_v1::Role::Manager,
            Role::Accountant => auth_v1::Role::Accountant,
            Role::Admin => auth_v1::Role::Admin,
        }
    }
}

impl Role {
    /// The role carried by an account event's `role` field (the enum's wire value).
    pub fn from_event(value: i32) -> Result<Self, String> {
        accounts_v1::Role::try_from(value)
            .map_err(|_| format!("{value} is not a role"))
            .and_then(Role::try_from)
    }
}

impl TryFrom<accounts_v1::Role> for Role {
    type Error = String;
    fn try_from(role: accounts_v1::Role) -> Result<Self, Self::Error> {
        match role {
            accounts_v1::Role::Worker => Ok(Role::Worker),
            accounts_v1::Role::Manager => Ok(Role::Manager),
            accounts_v1::Role::Accountant => Ok(Role::Accountant),
            accounts_v1::Role::Admin => Ok(Role::Admin),
            accounts_v1::Role::Unspecified => Err("a role must be given".into()),
        }
    }
}

impl From<Role> for accounts_v1::Role {
    fn from(role: Role) -> Self {
        match role {
            Role::Worker => accounts_v1::Role::Worker,
            Role::Manager => accounts_v1::Role::Manager,
            Role::Accountant => accounts_v1::Role::Accountant,
            Role::Admin => accounts_v1::Role::Admin,
        }
    }
}
