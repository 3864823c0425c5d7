//! tracker-svc's settings: the shared ones plus its own. A bad value names
//! its variable.

use std::path::PathBuf;

use popug_runtime::{Env, Service, Settings, SettingsError};

/// Everything tracker-svc reads at start.
#[derive(Debug, Clone)]
pub struct TrackerSettings {
    /// Settings every service shares.
    pub common: Settings,
    /// Seeds the assignment draws (`POPUG_TRACKER_SEED`), so a test or a
    /// simulation is reproducible; unset draws from the OS.
    pub seed: Option<u64>,
    /// Where notifications are written (`POPUG_MAIL_DIR`, default `var/mail`).
    pub mail_dir: PathBuf,
}

impl TrackerSettings {
    /// Reads the settings from `env`.
    pub fn load(env: &Env) -> Result<Self, SettingsError> {
        Ok(Self {
            common: Settings::load(Service::Tracker, env)?,
            seed: env.optional("POPUG_TRACKER_SEED")?,
            mail_dir: env.parse_or("POPUG_MAIL_DIR", PathBuf::from("var/mail"))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_seed_names_its_variable() {
        let error = TrackerSettings::load(&Env::from_pairs([("POPUG_TRACKER_SEED", "lucky")]))
            .expect_err("bad seed");
        assert_eq!(error.variable, "POPUG_TRACKER_SEED");
        let settings = TrackerSettings::load(&Env::from_pairs([])).expect("defaults");
        assert_eq!(settings.seed, None);
        assert_eq!(settings.common.addr.port(), 50052);
    }
}
