//! auth-svc running in this process on a fresh database, for the
//! benchmarks that call it (`auth`, `flood`).

use tokio_util::sync::CancellationToken;

use crate::sandbox::Sandbox;

/// auth-svc running in this process on a fresh database, for a benchmark.
pub(crate) struct AuthServer {
    pub(crate) addr: std::net::SocketAddr,
    pub(crate) admin_token: String,
    database: url::Url,
    stop: CancellationToken,
    server: tokio::task::JoinHandle<Result<(), popug_runtime::server::ServeError>>,
}

impl AuthServer {
    /// Starts it, with `admin` signed in.
    pub(crate) async fn start(postgres: &url::Url) -> anyhow::Result<Self> {
        let Sandbox {
            database,
            namespace,
        } = Sandbox::new(postgres);
        let settings = auth_svc::AuthSettings::load(&popug_runtime::Env::from_pairs([
            ("POPUG_AUTH_DATABASE_URL", database.as_str()),
            ("POPUG_NAMESPACE", namespace.as_str()),
            ("POPUG_QUEUE_TTL", "300"),
            ("POPUG_AUTH_ADDR", "127.0.0.1:0"),
            ("POPUG_ADMIN_PASSWORD", "bench-password"),
        ]))?;
        let app = auth_svc::Application::build(settings).await?;
        let addr = app.local_addr();
        let stop = CancellationToken::new();
        let stopping = stop.clone();
        let server = tokio::spawn(app.run_until_stopped(async move { stopping.cancelled().await }));
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?
            .connect()
            .await?;
        let admin_token =
            popug_proto::pb::popug::auth::v1::auth_service_client::AuthServiceClient::new(channel)
                .login(popug_proto::pb::popug::auth::v1::LoginRequest {
                    login: "admin".into(),
                    password: "bench-password".into(),
                })
                .await?
                .into_inner()
                .access_token;
        Ok(Self {
            addr,
            admin_token,
            database: url::Url::parse(&database)?,
            stop,
            server,
        })
    }

    /// A new connection to it.
    pub(crate) async fn channel(&self) -> anyhow::Result<tonic::transport::Channel> {
        Ok(
            tonic::transport::Endpoint::from_shared(format!("http://{}", self.addr))?
                .connect()
                .await?,
        )
    }

    /// Stops it and drops its database.
    pub(crate) async fn stop(self) -> anyhow::Result<()> {
        self.stop.cancel();
        self.server.await??;
        popug::mesh::drop_databases(&[self.database]).await
    }
}
