//! billing-svc's settings: the shared ones (the company's time zone, SMTP)
//! plus its own. A bad value names its variable.

use std::path::PathBuf;

use lettre::message::Mailbox;
use popug_runtime::{Env, Service, Settings, SettingsError};

/// Everything billing-svc reads at start.
#[derive(Debug, Clone)]
pub struct BillingSettings {
    /// Settings every service shares (`POPUG_TIMEZONE`, `POPUG_SMTP_URL`, ...).
    pub common: Settings,
    /// Seeds the price draws (`POPUG_BILLING_SEED`), for reproducible runs.
    pub seed: Option<u64>,
    /// Where emails go without SMTP (`POPUG_MAIL_DIR`, default `var/mail`).
    pub mail_dir: PathBuf,
    /// The sender of payout emails (`POPUG_MAIL_FROM`).
    pub mail_from: Mailbox,
    /// Whether days close by themselves at midnight (`POPUG_BILLING_AUTO_CLOSE`).
    pub auto_close: bool,
    /// Consumer workers in this replica, each a partition by account
    /// (`POPUG_BILLING_CONSUMER_WORKERS`, 1 to 32, default 2).
    pub consumer_workers: usize,
    /// Most events booked in one transaction (`POPUG_BILLING_BATCH_SIZE`,
    /// 1 to 2,000, default 256).
    pub batch_size: usize,
}

impl BillingSettings {
    /// Reads the settings from `env`.
    pub fn load(env: &Env) -> Result<Self, SettingsError> {
        let mail_from = env
            .parse_or(
                "POPUG_MAIL_FROM",
                "popug billing <billing@popug.local>".to_owned(),
            )?
            .parse::<Mailbox>()
            .map_err(|_| {
                env.invalid(
                    "POPUG_MAIL_FROM",
                    "expected an address like `Name <billing@example.com>`",
                )
            })?;
        Ok(Self {
            common: Settings::load(Service::Billing, env)?,
            seed: env.optional("POPUG_BILLING_SEED")?,
            mail_dir: env.parse_or("POPUG_MAIL_DIR", PathBuf::from("var/mail"))?,
            mail_from,
            auto_close: env.parse_or("POPUG_BILLING_AUTO_CLOSE", true)?,
            consumer_workers: env.parse_within("POPUG_BILLING_CONSUMER_WORKERS", 2, 1..=32)?,
            batch_size: env.parse_within("POPUG_BILLING_BATCH_SIZE", 256, 1..=2_000)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_values_name_their_variable() {
        for (variable, value) in [
            ("POPUG_BILLING_SEED", "x"),
            ("POPUG_MAIL_FROM", "not an address"),
            ("POPUG_BILLING_AUTO_CLOSE", "sometimes"),
            ("POPUG_TIMEZONE", "Nowhere/Land"),
        ] {
            let error =
                BillingSettings::load(&Env::from_pairs([(variable, value)])).expect_err(variable);
            assert_eq!(error.variable, variable);
        }
        let settings =
            BillingSettings::load(&Env::from_pairs([("POPUG_TIMEZONE", "Europe/Berlin")]))
                .expect("valid");
        assert_eq!(
            settings.common.timezone,
            popug_runtime::Timezone::Named(chrono_tz::Europe::Berlin)
        );
        assert_eq!(settings.common.addr.port(), 50053);
        assert_eq!(settings.mail_from.email.to_string(), "billing@popug.local");
    }
}
