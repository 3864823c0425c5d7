//! web-svc's settings: where it listens (`POPUG_WEB_ADDR`), where the built
//! app is (`POPUG_WEB_ASSETS`), where each service answers
//! (`POPUG_<SERVICE>_URL`), and what `/config.json` tells the app.

use std::{net::SocketAddr, path::PathBuf};

use popug_runtime::{Env, Service, SettingsError, settings::LogFormat};

/// Everything web-svc reads at start.
#[derive(Debug, Clone)]
pub struct WebSettings {
    /// Where it listens (`POPUG_WEB_ADDR`, default `127.0.0.1:8080`).
    pub addr: SocketAddr,
    /// The built web app, a directory holding `index.html`
    /// (`POPUG_WEB_ASSETS`); unset means `web/dist` under the working
    /// directory, or for `popug up` the checkout's `web/`, built on demand.
    pub assets: Option<PathBuf>,
    /// Where each service answers, in [`Service::ALL`] order
    /// (`POPUG_AUTH_URL`, `POPUG_TRACKER_URL`, `POPUG_BILLING_URL`,
    /// `POPUG_ANALYTICS_URL`; default `http://127.0.0.1:5005x`).
    pub upstreams: [url::Url; 4],
    /// The company's time zone (`POPUG_TIMEZONE`), for the app's dates.
    pub timezone: popug_runtime::Timezone,
    /// Whether the app offers sign-up (`POPUG_AUTH_SIGNUP_ENABLED`, as
    /// auth-svc reads it; auth-svc refuses a sign-up anyway when it is off).
    pub signup_enabled: bool,
    /// Log line format (`POPUG_LOG_FORMAT`).
    pub log_format: LogFormat,
    /// Business time, for the app's "today": the system clock unless a
    /// simulation sets its own.
    pub clock: popug_runtime::Clock,
}

/// The name of a service's URL variable.
fn url_variable(service: Service) -> String {
    format!("POPUG_{}_URL", service.name().to_uppercase())
}

impl WebSettings {
    /// Reads the settings from `env`.
    pub fn load(env: &Env) -> Result<Self, SettingsError> {
        let upstream = |service: Service| -> Result<url::Url, SettingsError> {
            let name = url_variable(service);
            let default = format!("http://{}", service.default_addr());
            let value = env.raw(&name).unwrap_or(&default).to_owned();
            let url =
                url::Url::parse(&value).map_err(|error| env.invalid(&name, error.to_string()))?;
            if url.scheme() != "http" {
                return Err(env.invalid(
                    &name,
                    "expected an http URL (the services speak plain HTTP/1.1 gRPC-Web to web-svc)",
                ));
            }
            if url.host_str().is_none() || url.path() != "/" || url.query().is_some() {
                return Err(env.invalid(&name, "expected http://host:port, with no path"));
            }
            Ok(url)
        };
        Ok(Self {
            addr: env.parse_or("POPUG_WEB_ADDR", SocketAddr::from(([127, 0, 0, 1], 8080)))?,
            assets: env
                .raw("POPUG_WEB_ASSETS")
                .filter(|value| !value.is_empty())
                .map(PathBuf::from),
            upstreams: [
                upstream(Service::Auth)?,
                upstream(Service::Tracker)?,
                upstream(Service::Billing)?,
                upstream(Service::Analytics)?,
            ],
            timezone: env.parse_or("POPUG_TIMEZONE", popug_runtime::Timezone::UTC)?,
            signup_enabled: env.parse_or("POPUG_AUTH_SIGNUP_ENABLED", true)?,
            log_format: env.parse_or("POPUG_LOG_FORMAT", LogFormat::Pretty)?,
            clock: popug_runtime::Clock::system(),
        })
    }

    /// Where `service` answers.
    pub fn upstream(&self, service: Service) -> &url::Url {
        let index = Service::ALL
            .iter()
            .position(|candidate| *candidate == service)
            .unwrap_or_default();
        &self.upstreams[index]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_need_no_configuration() {
        let settings = WebSettings::load(&Env::from_pairs([])).expect("defaults");
        assert_eq!(settings.addr.to_string(), "127.0.0.1:8080");
        assert_eq!(
            settings.upstream(Service::Billing).as_str(),
            "http://127.0.0.1:50053/"
        );
        assert!(settings.signup_enabled);
        assert!(settings.assets.is_none());
    }

    #[test]
    fn a_bad_setting_names_its_variable() {
        for (name, value) in [
            ("POPUG_WEB_ADDR", "localhost"),
            ("POPUG_TRACKER_URL", "https://tracker:50052"),
            ("POPUG_BILLING_URL", "http://billing:50053/api"),
            ("POPUG_TIMEZONE", "Mars/Olympus"),
        ] {
            let error = WebSettings::load(&Env::from_pairs([(name, value)])).expect_err(value);
            assert_eq!(error.variable, name);
        }
    }
}
