//! The web app beside a mesh (`popug up`, the browser test): web-svc routing
//! to the services of this process, serving the checkout's `web/`, built
//! first when it is missing or older than its sources.

use popug_runtime::{Clock, Env};
use web_svc::{WebSettings, assets::Assets};

use crate::client::Endpoints;

/// The app to serve: `POPUG_WEB_ASSETS` as it is, else the checkout's
/// `web/`, built if needed (saying so). A failed build is not fatal: the
/// services still run, and the page and the banner say what went wrong.
pub async fn local_assets(settings: &WebSettings) -> Assets {
    if let Some(dir) = &settings.assets {
        return Assets::from_dir(dir.clone());
    }
    let Some(web) = web_svc::assets::source_dir() else {
        return Assets::Missing(
            "this popug binary was built outside a checkout with web/; set POPUG_WEB_ASSETS to a built web app".into(),
        );
    };
    match web_svc::assets::ensure_built(&web).await {
        Ok(dist) => Assets::from_dir(dist),
        Err(error) => {
            tracing::error!(%error, "the web app could not be built");
            Assets::Missing(error.to_string())
        }
    }
}

/// Binds web-svc (`POPUG_WEB_ADDR`) to serve `assets` and route calls to
/// `endpoints`, telling the app today by `clock`.
pub async fn start(
    env: &Env,
    endpoints: &Endpoints,
    clock: &Clock,
    assets: Assets,
) -> anyhow::Result<web_svc::Application> {
    let mut settings = WebSettings::load(env)?;
    settings.upstreams = [
        endpoints.auth.parse()?,
        endpoints.tracker.parse()?,
        endpoints.billing.parse()?,
        endpoints.analytics.parse()?,
    ];
    settings.clock = clock.clone();
    Ok(web_svc::Application::build(settings, assets).await?)
}
