//! The auth-svc binary: reads settings, starts, serves until SIGTERM/Ctrl-C.

use std::process::ExitCode;

use auth_svc::{Application, AuthSettings};
use popug_runtime::{Env, shutdown, telemetry};

#[tokio::main]
async fn main() -> ExitCode {
    let settings = match AuthSettings::load(&Env::process()) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("auth-svc: {error}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(error) = telemetry::init_service(&settings.common) {
        eprintln!("auth-svc: cannot export traces: {error}");
        return ExitCode::FAILURE;
    }
    let app = match Application::build(settings).await {
        Ok(app) => app,
        Err(error) => {
            eprintln!("auth-svc: {error}");
            return ExitCode::FAILURE;
        }
    };
    let served = app.run_until_stopped(shutdown::signal()).await;
    telemetry::shutdown().await;
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("auth-svc: {error}");
            ExitCode::FAILURE
        }
    }
}
