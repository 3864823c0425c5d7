//! analytics-svc's settings: the shared ones (its days are the company's,
//! `POPUG_TIMEZONE`). A bad value names its variable.

use popug_runtime::{Env, Service, Settings, SettingsError};

/// Everything analytics-svc reads at start.
#[derive(Debug, Clone)]
pub struct AnalyticsSettings {
    /// Settings every service shares.
    pub common: Settings,
}

impl AnalyticsSettings {
    /// Reads the settings from `env`.
    pub fn load(env: &Env) -> Result<Self, SettingsError> {
        Ok(Self {
            common: Settings::load(Service::Analytics, env)?,
        })
    }
}
