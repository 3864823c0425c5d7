//! Where the services answer, for every command: a flag (`--auth-url`,
//! `--tracker-url`, `--billing-url`, `--analytics-url`), else its
//! environment variable (`POPUG_AUTH_URL`, ...), else the config file
//! (`config.toml` in the config directory: `$POPUG_CONFIG_DIR`, else e.g.
//! `~/.config/popug/`), else the local defaults of `popug up`.

use std::{path::PathBuf, sync::OnceLock};

use anyhow::{Context as _, anyhow};
use popug::client::Endpoints;
use popug_runtime::Service;
use serde::Deserialize;

/// What `--help` says about the service URLs.
pub(crate) const HELP: &str = "\
Service URLs: each of --auth-url, --tracker-url, --billing-url and --analytics-url
comes from its flag, else its variable (POPUG_AUTH_URL, POPUG_TRACKER_URL,
POPUG_BILLING_URL, POPUG_ANALYTICS_URL), else the config file, else the local
defaults (http://127.0.0.1:50051 .. :50054). The config file is config.toml in
the config directory ($POPUG_CONFIG_DIR, else ~/.config/popug/), e.g.:

    auth_url = \"http://popug.example:50051\"
    tracker_url = \"http://popug.example:50052\"

The session of `popug login` is kept in the same directory (session.json).";

/// The config directory: `$POPUG_CONFIG_DIR`, else the user's (e.g.
/// `~/.config/popug`).
pub(crate) fn dir() -> anyhow::Result<PathBuf> {
    match std::env::var_os("POPUG_CONFIG_DIR") {
        Some(dir) => Ok(PathBuf::from(dir)),
        None => Ok(dirs::config_dir()
            .context("no config directory for this user; set POPUG_CONFIG_DIR")?
            .join("popug")),
    }
}

/// `config.toml`: every key optional, unknown keys refused (a typo must not
/// silently fall back to a default).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    auth_url: Option<String>,
    tracker_url: Option<String>,
    billing_url: Option<String>,
    analytics_url: Option<String>,
}

fn read_file() -> anyhow::Result<File> {
    let path = dir()?.join("config.toml");
    match std::fs::read_to_string(&path) {
        Ok(text) => toml::from_str(&text).map_err(|error| anyhow!("{}: {error}", path.display())),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(File::default()),
        Err(error) => Err(error).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// The URLs given by flags or their variables (clap merges the two).
#[derive(Debug, Default, Clone, clap::Args)]
pub(crate) struct UrlFlags {
    /// auth-svc's URL.
    #[arg(long, global = true, env = "POPUG_AUTH_URL", hide_env_values = true)]
    pub(crate) auth_url: Option<String>,
    /// tracker-svc's URL.
    #[arg(long, global = true, env = "POPUG_TRACKER_URL", hide_env_values = true)]
    pub(crate) tracker_url: Option<String>,
    /// billing-svc's URL.
    #[arg(long, global = true, env = "POPUG_BILLING_URL", hide_env_values = true)]
    pub(crate) billing_url: Option<String>,
    /// analytics-svc's URL.
    #[arg(
        long,
        global = true,
        env = "POPUG_ANALYTICS_URL",
        hide_env_values = true
    )]
    pub(crate) analytics_url: Option<String>,
}

static ENDPOINTS: OnceLock<Endpoints> = OnceLock::new();

/// Settles the endpoints once, from `flags`, the config file and defaults.
pub(crate) fn settle(flags: &UrlFlags) -> anyhow::Result<()> {
    // Read even when every URL is given otherwise: a broken file is said
    // at once, not on the day a variable is unset.
    let file = read_file()?;
    let pick = |flag: &Option<String>, file: &Option<String>, service: Service| {
        flag.clone()
            .filter(|url| !url.is_empty())
            .or_else(|| file.clone())
            .unwrap_or_else(|| format!("http://{}", service.default_addr()))
    };
    ENDPOINTS
        .set(Endpoints {
            auth: pick(&flags.auth_url, &file.auth_url, Service::Auth),
            tracker: pick(&flags.tracker_url, &file.tracker_url, Service::Tracker),
            billing: pick(&flags.billing_url, &file.billing_url, Service::Billing),
            analytics: pick(
                &flags.analytics_url,
                &file.analytics_url,
                Service::Analytics,
            ),
        })
        .ok();
    Ok(())
}

/// The endpoints [`settle`] chose (the local defaults if it never ran).
pub(crate) fn endpoints() -> &'static Endpoints {
    ENDPOINTS.get_or_init(|| Endpoints {
        auth: format!("http://{}", Service::Auth.default_addr()),
        tracker: format!("http://{}", Service::Tracker.default_addr()),
        billing: format!("http://{}", Service::Billing.default_addr()),
        analytics: format!("http://{}", Service::Analytics.default_addr()),
    })
}
