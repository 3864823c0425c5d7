//! `popug up`: every service and the web app in this process on the local
//! settings, until Ctrl-C or SIGTERM.

use popug::mesh::{Mesh, MeshSettings, preflight};

/// Runs the services in this process until Ctrl-C or SIGTERM.
pub(crate) async fn run() -> anyhow::Result<()> {
    let env = popug_runtime::Env::process();
    let settings = MeshSettings::load(&env)?;
    popug_runtime::telemetry::init_with(
        settings.common().log_format,
        settings.common().otlp_endpoint.as_ref(),
        "popug",
    )?;
    preflight(settings.common()).await?;
    // Built first (when missing or stale), so the banner comes at the end.
    let assets = popug::web::local_assets(&web_svc::WebSettings::load(&env)?).await;
    let clock = settings.common().clock.clone();
    let mesh = Mesh::start(settings).await?;
    let web = popug::web::start(&env, &mesh.endpoints(), &clock, assets).await?;
    let [auth_addr, tracker_addr, billing_addr, analytics_addr] = mesh.addrs();
    let [metrics_addr, ..] = mesh.metrics_addrs();
    #[allow(clippy::print_stdout)] // the endpoints are what a person needs to see
    {
        println!("\npopug is up:");
        println!("  web app       http://{}", web.local_addr());
        if let web_svc::assets::Assets::Missing(reason) = web.assets() {
            println!("                (no pages: {reason})");
        }
        println!("  auth-svc      http://{auth_addr}");
        println!("  tracker-svc   http://{tracker_addr}");
        println!("  billing-svc   http://{billing_addr}");
        println!("  analytics-svc http://{analytics_addr}");
        // One registry serves all four in this process (each series has a `service` label).
        println!("  metrics       http://{metrics_addr}/metrics\n");
        println!("Try it:");
        println!(
            "  open http://{} in a browser and sign in as admin",
            web.local_addr()
        );
        println!("  grpcurl -plaintext {auth_addr} list");
        println!(
            "  grpcurl -plaintext -d '{{\"login\":\"admin\",\"password\":\"<password>\"}}' {auth_addr} popug.auth.v1.AuthService/Login"
        );
        println!("  popug login --login admin\n\nCtrl-C stops every service gracefully.\n");
    }
    let stop = tokio_util::sync::CancellationToken::new();
    let stopping = stop.clone();
    tokio::spawn(async move {
        popug_runtime::shutdown::signal().await;
        stopping.cancel();
    });
    let (served, web_served) = tokio::join!(
        Box::pin(mesh.run_until_stopped(stop.clone())),
        web.run_until_stopped(stop.cancelled_owned()),
    );
    popug_runtime::telemetry::shutdown().await;
    served?;
    Ok(web_served?)
}
