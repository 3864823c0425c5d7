//! The web-svc binary: reads settings, serves the built web app
//! (`POPUG_WEB_ASSETS`, default `web/dist`) and routes its calls to the
//! services until SIGTERM/Ctrl-C.

use std::{path::PathBuf, process::ExitCode};

use popug_runtime::{Env, shutdown, telemetry};
use web_svc::{Application, WebSettings, assets::Assets};

#[tokio::main]
async fn main() -> ExitCode {
    let settings = match WebSettings::load(&Env::process()) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("web-svc: {error}");
            return ExitCode::FAILURE;
        }
    };
    telemetry::init(settings.log_format);
    let dir = settings
        .assets
        .clone()
        .unwrap_or_else(|| PathBuf::from("web/dist"));
    let assets = Assets::from_dir(dir);
    if let Assets::Missing(reason) = &assets {
        tracing::warn!(%reason, "serving no web app, only routing calls");
    }
    let app = match Application::build(settings, assets).await {
        Ok(app) => app,
        Err(error) => {
            eprintln!("web-svc: {error}");
            return ExitCode::FAILURE;
        }
    };
    match app.run_until_stopped(shutdown::signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("web-svc: {error}");
            ExitCode::FAILURE
        }
    }
}
