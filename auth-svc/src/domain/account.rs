//! Accounts and the newtypes their fields are parsed into at the edge.
//! Every text field first meets `popug_input::text`'s one-line rule (no NUL,
//! no control character, no line separator), then its own.

use popug_input::text;
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
        text::single_line(field, &login)?;
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

/// A password: 8 to 128 printable characters (any but control characters).
/// Never logged, never stored in clear.
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
        text::single_line(field, value)?;
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
        text::single_line(field, name)?;
        if !(1..=100).contains(&name.chars().count()) {
            return Err(Error::invalid(field, "must be 1 to 100 characters"));
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
        text::single_line(field, email)?;
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
                format!("{} is not an email address", text::quote(email)),
            ));
        }
        Ok(Self(email.to_owned()))
    }

    /// The address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a `Login` request presents: a login to look up (trimmed,
/// lower-cased) and a password to check, each on one line. Not the whole
/// [`Login`] and [`Password`] rules: a login of the wrong shape is simply
/// unknown, and nobody learns more from the answer.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The login to look up.
    pub login: String,
    /// The password to check against the stored hash.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("login", &self.login)
            .field("password", &"***")
            .finish()
    }
}

impl Credentials {
    /// Parses a `Login` request's fields, named as in the `.proto` file.
    pub fn parse(login: &str, password: &str) -> Result<Self, Error> {
        let login = login.trim().to_lowercase();
        text::single_line("login", &login)?;
        text::single_line("password", password)?;
        Ok(Self {
            login,
            password: password.to_owned(),
        })
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
    fn no_field_holds_a_nul_or_a_control_character() {
        for hostile in [
            "kesha\0",
            "kes\u{7}ha",
            "kesha\u{1b}[31m",
            "ke\r\nsha",
            "k\u{85}esha",
        ] {
            let fields: [(&str, Result<(), Error>); 5] = [
                ("login", Login::parse("login", hostile).map(drop)),
                (
                    "password",
                    Password::parse("password", &format!("{hostile}-password")).map(drop),
                ),
                ("name", Name::parse("name", hostile).map(drop)),
                (
                    "email",
                    Email::parse("email", &format!("{hostile}@popug.inc")).map(drop),
                ),
                (
                    "login",
                    Credentials::parse(hostile, "long enough").map(drop),
                ),
            ];
            for (field, parsed) in fields {
                match parsed {
                    Err(Error::InvalidArgument { field: named, .. }) => assert_eq!(named, field),
                    other => panic!("{hostile:?} as {field}: {other:?}"),
                }
            }
            assert!(matches!(
                Credentials::parse("kesha", hostile),
                Err(Error::InvalidArgument {
                    field: "password",
                    ..
                })
            ));
        }
        let credentials = Credentials::parse(" Kesha ", "any printable thing").expect("valid");
        assert_eq!(credentials.login, "kesha");
        assert!(!format!("{credentials:?}").contains("printable"));
        assert!(Password::parse("password", "pässwörd ✓ with spaces").is_ok());
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
