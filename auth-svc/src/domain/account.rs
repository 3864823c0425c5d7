//! Accounts and the newtypes their fields are parsed into at the edge.

use popug_token::Role;
use uuid::Uuid;

use crate::error::Error;

/// A login: 3 to 32 of `a-z`, `0-9`, `.`, `_`, `-`; case-insensitive, kept lower-case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login(String);

impl Login {
    /// Parses `value` (trimmed, lower-cased) as the field `field`.
    pub fn parse(field: &'static str, value: &str) -> Result<Self, Error> {
        let login = value.trim().to_lowercase();
        if !(3..=32).contains(&login.chars().count()) {
            return Err(Error::invalid(field, "must be 3 to 32 characters"));
        }
        if !login
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'))
        {
            return Err(Error::invalid(
                field,
                "may hold only a-z, 0-9, `.`, `_` and `-`",
            ));
        }
        Ok(Self(login))
    }

    /// The login as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A password: 8 to 128 characters. Never logged, never stored in clear.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(pub(super) String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(***)")
    }
}

impl Password {
    /// Parses `value` as the field `field`.
    pub fn parse(field: &'static str, value: &str) -> Result<Self, Error> {
        if !(8..=128).contains(&value.chars().count()) {
            return Err(Error::invalid(field, "must be 8 to 128 characters"));
        }
        Ok(Self(value.to_owned()))
    }

    /// The clear text, for hashing only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// A display name: 1 to 100 characters after trimming.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name(String);

impl Name {
    /// Parses `value` as the field `field`.
    pub fn parse(field: &'static str, value: &str) -> Result<Self, Error> {
        let name = value.trim();
        if !(1..=100).contains(&name.chars().count()) {
            return Err(Error::invalid(field, "must be 1 to 100 characters"));
        }
        if name.chars().any(char::is_control) {
            return Err(Error::invalid(field, "must not hold control characters"));
        }
        Ok(Self(name.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An email address: one `@` with text on both sides and a dot in the domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    /// Parses `value` as the field `field`.
    pub fn parse(field: &'static str, value: &str) -> Result<Self, Error> {
        let email = value.trim();
        let valid = email.len() <= 254
            && !email.chars().any(char::is_whitespace)
            && email.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
                    && !domain.contains('@')
            });
        if !valid {
            return Err(Error::invalid(
                field,
                format!("`{email}` is not an email address"),
            ));
        }
        Ok(Self(email.to_owned()))
    }

    /// The address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A validated request for a new account.
#[derive(Debug, Clone)]
pub struct NewAccount {
    /// Its login.
    pub login: Login,
    /// Its password, hashed before it is stored.
    pub password: Password,
    /// Its display name.
    pub name: Name,
    /// Its email.
    pub email: Email,
    /// Its role.
    pub role: Role,
}

impl NewAccount {
    /// Parses a request's fields, named as in the `.proto` files.
    pub fn parse(
        login: &str,
        password: &str,
        name: &str,
        email: &str,
        role: Role,
    ) -> Result<Self, Error> {
        Ok(Self {
            login: Login::parse("login", login)?,
            password: Password::parse("password", password)?,
            name: Name::parse("name", name)?,
            email: Email::parse("email", email)?,
            role,
        })
    }
}

/// An account as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Public id, the same in every service.
    pub account_id: Uuid,
    /// Unique, lower-case login.
    pub login: String,
    /// Display name.
    pub name: String,
    /// Email.
    pub email: String,
    /// Role.
    pub role: Role,
    /// False once deactivated.
    pub active: bool,
    /// When it was created.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// 1 at creation, one more at every change.
    pub version: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logins_are_normalised_and_checked() {
        assert_eq!(
            Login::parse("login", "  Kesha.Popug ").map(|l| l.0).ok(),
            Some("kesha.popug".into())
        );
        for bad in ["ab", "with space", "ключ", &"x".repeat(33)] {
            assert!(
                matches!(
                    Login::parse("login", bad),
                    Err(Error::InvalidArgument { field: "login", .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn emails_need_a_domain() {
        assert!(Email::parse("email", "kesha@popug.inc").is_ok());
        for bad in [
            "kesha",
            "kesha@",
            "@popug.inc",
            "kesha@popug",
            "a b@popug.inc",
            "a@b@popug.inc",
        ] {
            assert!(Email::parse("email", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords_have_a_length_and_are_never_printed() {
        assert!(Password::parse("password", "short").is_err());
        let password = Password::parse("password", "long enough").expect("valid");
        assert_eq!(format!("{password:?}"), "Password(***)");
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert!(Name::parse("name", "   ").is_err());
        assert!(Name::parse("name", "a\u{7}b").is_err());
        assert_eq!(
            Name::parse("name", " Kesha ").map(|n| n.0).ok(),
            Some("Kesha".into())
        );
    }
}
