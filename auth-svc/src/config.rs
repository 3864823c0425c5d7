//! auth-svc's settings: the shared ones plus its own `POPUG_AUTH_*` and
//! `POPUG_ADMIN_*` variables. A bad value names its variable.

use popug_runtime::{Env, Service, Settings, SettingsError};
use popug_token::keys::SigningKey;

use crate::domain::{Login, Password};

/// Everything auth-svc reads at start.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// Settings every service shares.
    pub common: Settings,
    /// The first admin's login (`POPUG_ADMIN_LOGIN`, default `admin`).
    pub admin_login: Login,
    /// The first admin's password (`POPUG_ADMIN_PASSWORD`); generated and
    /// printed once when unset. Its `Debug` does not show it.
    pub admin_password: Option<Password>,
    /// Whether workers may sign up by themselves (`POPUG_AUTH_SIGNUP_ENABLED`).
    pub signup_enabled: bool,
    /// Access token lifetime in seconds (`POPUG_AUTH_ACCESS_TOKEN_TTL`, 900).
    pub access_token_ttl: u64,
    /// Refresh token lifetime in seconds (`POPUG_AUTH_REFRESH_TOKEN_TTL`, 30 days).
    pub refresh_token_ttl: u64,
    /// The signing key (`POPUG_AUTH_SIGNING_KEY`, PKCS#8 PEM, or a file named
    /// by `POPUG_AUTH_SIGNING_KEY_FILE`); local runs generate and keep one.
    pub signing_key: Option<SigningKey>,
    /// The previous signing key, still published so its tokens verify until
    /// they expire (`POPUG_AUTH_PREVIOUS_SIGNING_KEY` or `..._FILE`).
    pub previous_signing_key: Option<SigningKey>,
    /// Password hashes run at once (`POPUG_AUTH_HASH_CONCURRENCY`, 1 to 64,
    /// default 1: each takes 19 MiB and a core for tens of milliseconds).
    pub hash_concurrency: usize,
    /// Sign-ins that may wait for a hash before the rest are refused
    /// (`POPUG_AUTH_HASH_QUEUE`, 0 to 10,000, default 16).
    pub hash_queue: usize,
}

fn key_setting(env: &Env, name: &str) -> Result<Option<SigningKey>, SettingsError> {
    let file_name = format!("{name}_FILE");
    let (variable, pem) = match (env.raw(name), env.raw(&file_name)) {
        (Some(_), Some(_)) => {
            return Err(
                env.invalid_secret(name, format!("set either {name} or {file_name}, not both"))
            );
        }
        (Some(pem), None) => (name.to_owned(), pem.to_owned()),
        (None, Some(path)) => {
            let pem = std::fs::read_to_string(path).map_err(|error| {
                env.invalid(&file_name, format!("cannot read the key file: {error}"))
            })?;
            (file_name, pem)
        }
        (None, None) => return Ok(None),
    };
    SigningKey::from_pem(&pem)
        .map(Some)
        .map_err(|error| env.invalid_secret(&variable, error.to_string()))
}

impl AuthSettings {
    /// Reads the settings from `env`.
    pub fn load(env: &Env) -> Result<Self, SettingsError> {
        let admin_login: String = env.parse_or("POPUG_ADMIN_LOGIN", "admin".to_owned())?;
        let admin_login = Login::parse("login", &admin_login)
            .map_err(|error| env.invalid("POPUG_ADMIN_LOGIN", error.to_string()))?;
        let admin_password = env
            .optional::<String>("POPUG_ADMIN_PASSWORD")?
            .map(|password| {
                Password::parse("password", &password).map_err(|_| {
                    env.invalid_secret("POPUG_ADMIN_PASSWORD", "must be 8 to 128 characters")
                })
            })
            .transpose()?;
        let access_token_ttl: u64 = env.parse_or("POPUG_AUTH_ACCESS_TOKEN_TTL", 900)?;
        if !(10..=86_400).contains(&access_token_ttl) {
            return Err(env.invalid("POPUG_AUTH_ACCESS_TOKEN_TTL", "must be 10 to 86400 seconds"));
        }
        let refresh_token_ttl: u64 = env.parse_or("POPUG_AUTH_REFRESH_TOKEN_TTL", 30 * 86_400)?;
        if refresh_token_ttl < access_token_ttl {
            return Err(env.invalid(
                "POPUG_AUTH_REFRESH_TOKEN_TTL",
                "must be at least the access token lifetime",
            ));
        }
        let signing_key = key_setting(env, "POPUG_AUTH_SIGNING_KEY")?;
        let previous_signing_key = key_setting(env, "POPUG_AUTH_PREVIOUS_SIGNING_KEY")?;
        if previous_signing_key.is_some() && signing_key.is_none() {
            return Err(env.invalid_secret(
                "POPUG_AUTH_PREVIOUS_SIGNING_KEY",
                "needs POPUG_AUTH_SIGNING_KEY as the current key",
            ));
        }
        Ok(Self {
            common: Settings::load(Service::Auth, env)?,
            admin_login,
            admin_password,
            signup_enabled: env.parse_or("POPUG_AUTH_SIGNUP_ENABLED", true)?,
            access_token_ttl,
            refresh_token_ttl,
            signing_key,
            previous_signing_key,
            hash_concurrency: env.parse_within("POPUG_AUTH_HASH_CONCURRENCY", 1, 1..=64)?,
            hash_queue: env.parse_within("POPUG_AUTH_HASH_QUEUE", 16, 0..=10_000)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_values_name_their_variable() {
        let pem = SigningKey::generate().to_pem();
        let cases: [(&str, &str); 6] = [
            ("POPUG_ADMIN_LOGIN", "no spaces allowed"),
            ("POPUG_ADMIN_PASSWORD", "short"),
            ("POPUG_AUTH_SIGNUP_ENABLED", "yes"),
            ("POPUG_AUTH_ACCESS_TOKEN_TTL", "5"),
            (
                "POPUG_AUTH_SIGNING_KEY",
                "-----BEGIN PRIVATE KEY-----\ngarbage\n-----END PRIVATE KEY-----",
            ),
            ("POPUG_AUTH_PREVIOUS_SIGNING_KEY", pem.as_str()),
        ];
        for (variable, value) in cases {
            let error =
                AuthSettings::load(&Env::from_pairs([(variable, value)])).expect_err(variable);
            assert_eq!(error.variable, variable);
            assert!(
                !error.to_string().contains("PRIVATE KEY"),
                "key material leaked: {error}"
            );
            assert!(
                !error.to_string().contains("short"),
                "password leaked: {error}"
            );
        }
    }

    #[test]
    fn defaults_and_keys_load() {
        let settings = AuthSettings::load(&Env::from_pairs([])).expect("defaults");
        assert_eq!(settings.admin_login.as_str(), "admin");
        assert!(settings.signup_enabled);
        assert_eq!(settings.access_token_ttl, 900);
        let key = SigningKey::generate();
        let pem = key.to_pem();
        let settings =
            AuthSettings::load(&Env::from_pairs([("POPUG_AUTH_SIGNING_KEY", pem.as_str())]))
                .expect("key");
        assert_eq!(
            settings.signing_key.map(|k| k.kid().to_owned()),
            Some(key.kid().to_owned())
        );
    }
}
