//! Building and running web-svc: bind (port 0 allowed), then serve pages,
//! `/config.json` and the routed calls until shutdown.

use std::{future::Future, net::SocketAddr, sync::Arc};

use axum::{
    Router,
    body::Body,
    extract::{ConnectInfo, State},
    routing::get,
};
use http::{HeaderValue, Request, Response, header};

use crate::{
    assets::{self, Assets},
    config::WebSettings,
    proxy::{self, Code, HttpClient},
    routes::{Route, route},
};

/// What every request handler shares.
struct Shared {
    settings: WebSettings,
    assets: Assets,
    client: HttpClient,
}

/// A bound web-svc, ready to run.
pub struct Application {
    listener: tokio::net::TcpListener,
    router: Router,
    assets: Assets,
}

/// Why web-svc could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr}: {source}")]
pub struct BindError {
    /// The address asked for.
    pub addr: SocketAddr,
    /// The operating system's error.
    pub source: std::io::Error,
}

impl Application {
    /// Binds `settings.addr` to serve `assets` and route calls.
    pub async fn build(settings: WebSettings, assets: Assets) -> Result<Self, BindError> {
        let addr = settings.addr;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| BindError { addr, source })?;
        let shared = Arc::new(Shared {
            settings,
            assets: assets.clone(),
            client: proxy::client(),
        });
        let router = Router::new()
            .route("/config.json", get(config))
            .route("/healthz", get(|| async { "ok\n" }))
            .fallback(dispatch)
            .with_state(shared);
        let app = Self {
            listener,
            router,
            assets,
        };
        tracing::info!(addr = %app.local_addr(), "web-svc listening");
        Ok(app)
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound TCP listener has a local address")
    }

    /// What it serves as pages.
    pub fn assets(&self) -> &Assets {
        &self.assets
    }

    /// Serves until `shutdown` completes, then lets requests in flight finish.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        axum::serve(
            self.listener,
            self.router
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await
    }
}

/// `/config.json`: what the app needs to know of the company.
async fn config(State(shared): State<Arc<Shared>>) -> Response<Body> {
    let settings = &shared.settings;
    let today = popug_runtime::calendar::day_of(settings.clock.now(), settings.timezone);
    let body = serde_json::json!({
        "timeZone": settings.timezone.to_string(),
        "today": today.to_string(),
        "signUpEnabled": settings.signup_enabled,
    });
    let mut response = Response::new(Body::from(body.to_string()));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A call goes to its service; anything else is a page.
async fn dispatch(State(shared): State<Arc<Shared>>, request: Request<Body>) -> Response<Body> {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| *addr);
    let path = request.uri().path().to_owned();
    match route(&path) {
        Route::Service { service, path } => {
            proxy::forward(
                &shared.client,
                service,
                shared.settings.upstream(service),
                path,
                peer,
                request,
            )
            .await
        }
        Route::Ambiguous => proxy::grpc_error(
            Code::Unimplemented,
            "every service serves popug.ops.v1.OpsService: call /services/<auth|tracker|billing|analytics>/popug.ops.v1.OpsService/<Method>",
        ),
        Route::Page => assets::serve(&shared.assets, request).await,
    }
}
