//! Serving a popug service: its gRPC services plus `grpc.health.v1` and
//! server reflection (`v1` and `v1alpha`, so grpcurl of any age works), all
//! inside the RPC layer (traces and metrics, [`crate::instrument`]) and
//! answering gRPC-Web too (HTTP/1.1 and `application/grpc-web*`, translated
//! by `tonic-web`, so a browser calls the same methods under the same
//! rules; native gRPC over HTTP/2 passes through unchanged); the
//! Prometheus `/metrics` endpoint on its own port; and the background tasks
//! (outbox relay, consumers) that live and stop with it, each supervised
//! ([`crate::supervise`]).
//!
//! Every service has the same two-step shape: [`Application::build`] binds the
//! listener (port 0 allowed, so tests can run many instances) and
//! [`Application::run_until_stopped`] serves until the shutdown future
//! completes, then stops the background tasks and waits for them to drain.

use std::{
    convert::Infallible,
    future::{Future, IntoFuture as _},
    net::SocketAddr,
};

use tokio_util::sync::CancellationToken;
use tonic::{
    body::Body,
    server::NamedService,
    service::{Routes, RoutesBuilder},
    transport::Server,
};

use crate::{
    backoff::Backoff,
    supervise::{BackgroundTask, Readiness, supervise},
};

/// The gRPC services one server exposes, with their names for health checks.
#[derive(Default)]
pub struct Services {
    routes: RoutesBuilder,
    names: Vec<&'static str>,
}

impl Services {
    /// No services yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a generated `FooServer`; health reports it serving.
    #[must_use]
    pub fn with<S>(mut self, service: S) -> Self
    where
        S: tower_service::Service<
                http::Request<Body>,
                Response = http::Response<Body>,
                Error = Infallible,
            > + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        self.routes.add_service(service);
        self.names.push(S::NAME);
        self
    }

    /// Wraps every service added so far in `layer` (token verification).
    /// Health and reflection, added by [`Application::build`], stay outside.
    #[must_use]
    pub fn with_layer<L>(self, layer: L) -> Self
    where
        L: tower_layer::Layer<axum::routing::Route> + Clone + Send + Sync + 'static,
        L::Service: tower_service::Service<axum::extract::Request> + Clone + Send + Sync + 'static,
        <L::Service as tower_service::Service<axum::extract::Request>>::Response:
            axum::response::IntoResponse + 'static,
        <L::Service as tower_service::Service<axum::extract::Request>>::Error:
            Into<Infallible> + 'static,
        <L::Service as tower_service::Service<axum::extract::Request>>::Future: Send + 'static,
    {
        let router = self.routes.routes().into_axum_router().layer(layer);
        Self {
            routes: RoutesBuilder::from(router),
            names: self.names,
        }
    }
}

/// Why a service could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// Reflection could not read the embedded descriptors.
    #[error("cannot build server reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// The server failed while serving.
    #[error("gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// Why a service could not start; every service's `Application::build`
/// answers this.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The database could not be prepared.
    #[error(transparent)]
    Database(#[from] crate::database::DatabaseError),
    /// The server could not be built.
    #[error(transparent)]
    Serve(#[from] ServeError),
    /// A setting could not be used; the message names it.
    #[error("{0}")]
    Setting(String),
    /// Start-up work (keys, the first admin) failed.
    #[error("set-up failed: {0}")]
    Setup(#[from] crate::ApiError),
}

/// A bound, ready-to-run service.
pub struct Application {
    listener: tokio::net::TcpListener,
    metrics_listener: tokio::net::TcpListener,
    routes: Routes,
    tasks: Vec<BackgroundTask>,
    limits: Limits,
    service: &'static str,
    readiness: Readiness,
    restart_backoff: Backoff,
}

/// What one server takes on at once (see [`crate::Settings`]).
#[derive(Debug, Clone, Copy)]
struct Limits {
    concurrent_per_connection: usize,
    timeout: std::time::Duration,
}

async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, ServeError> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })
}

impl Application {
    /// Binds the service's gRPC and metrics addresses from `settings` and
    /// assembles `services` with health and reflection.
    pub async fn build(
        settings: &crate::Settings,
        services: Services,
        tasks: Vec<BackgroundTask>,
    ) -> Result<Self, ServeError> {
        let listener = bind(settings.addr).await?;
        let metrics_listener = bind(settings.metrics_addr).await?;
        // Installed before anything records.
        crate::telemetry::metrics_handle();

        let (health_reporter, health_service) = tonic_health::server::health_reporter();
        for name in &services.names {
            health_reporter
                .set_service_status(*name, tonic_health::ServingStatus::Serving)
                .await;
        }
        // Every message is described, but only what this server serves is
        // listed: a client should not be offered another service's methods.
        let reflection = |reflection_name: &str| {
            services.names.iter().fold(
                tonic_reflection::server::Builder::configure()
                    .register_encoded_file_descriptor_set(popug_proto::FILE_DESCRIPTOR_SET)
                    .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
                    .with_service_name("grpc.health.v1.Health")
                    .with_service_name(reflection_name),
                |builder, name| builder.with_service_name(*name),
            )
        };
        let v1 = reflection("grpc.reflection.v1.ServerReflection").build_v1()?;
        let v1alpha = reflection("grpc.reflection.v1alpha.ServerReflection").build_v1alpha()?;
        let mut routes = services.routes;
        routes
            .add_service(health_service)
            .add_service(v1)
            .add_service(v1alpha);
        let routes = routes
            .routes()
            .into_axum_router()
            .layer(crate::instrument::RpcLayer {
                service: settings.service.name(),
            });
        Ok(Self {
            listener,
            metrics_listener,
            routes: Routes::from(routes),
            tasks,
            limits: Limits {
                concurrent_per_connection: settings.max_concurrent_requests,
                timeout: settings.request_timeout,
            },
            service: settings.service.name(),
            readiness: Readiness::new(health_reporter, &services.names),
            restart_backoff: Backoff::default(),
        })
    }

    /// Adds a background task that runs and stops with the server.
    #[must_use]
    pub fn with_task(mut self, task: BackgroundTask) -> Self {
        self.tasks.push(task);
        self
    }

    /// Pauses between restarts of a background task that died (tests use
    /// a faster schedule than the default 1, 3, 5, 10, 30 s).
    #[must_use]
    pub fn with_restart_backoff(mut self, backoff: Backoff) -> Self {
        self.restart_backoff = backoff;
        self
    }

    /// The address actually bound (the port is real even when 0 was asked).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound TCP listener has a local address")
    }

    /// Where `/metrics` is served.
    pub fn metrics_addr(&self) -> SocketAddr {
        self.metrics_listener
            .local_addr()
            .expect("a bound TCP listener has a local address")
    }

    /// Serves until `shutdown` completes, then stops accepting calls, lets
    /// calls in flight finish, cancels the background tasks and waits for them.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), ServeError> {
        let token = CancellationToken::new();
        let tasks: Vec<_> = self
            .tasks
            .into_iter()
            .map(|task| {
                tokio::spawn(supervise(
                    task,
                    self.service,
                    self.restart_backoff.clone(),
                    self.readiness.clone(),
                    token.child_token(),
                ))
            })
            .collect();
        let metrics = axum::Router::new().route(
            "/metrics",
            axum::routing::get(|| async {
                let handle = crate::telemetry::metrics_handle();
                handle.run_upkeep();
                handle.render()
            }),
        );
        let metrics_stopping = token.clone();
        let metrics_served = tokio::spawn(
            axum::serve(self.metrics_listener, metrics)
                .with_graceful_shutdown(metrics_stopping.cancelled_owned())
                .into_future(),
        );
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(self.listener);
        let stopping = token.clone();
        // A flood from one connection is refused at once past its limit
        // instead of queueing without bound; no call runs forever.
        let served = Server::builder()
            .concurrency_limit_per_connection(self.limits.concurrent_per_connection)
            .load_shed(true)
            .timeout(self.limits.timeout)
            .accept_http1(true)
            .layer(tonic_web::GrpcWebLayer::new())
            .add_routes(self.routes)
            .serve_with_incoming_shutdown(incoming, async move {
                tokio::select! {
                    () = shutdown => {},
                    () = stopping.cancelled() => {},
                }
            })
            .await;
        token.cancel();
        for task in tasks {
            if let Err(error) = task.await {
                tracing::error!(%error, "a background task's supervisor failed");
            }
        }
        match metrics_served.await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::error!(%error, "the metrics endpoint failed"),
            Err(error) => tracing::error!(%error, "the metrics endpoint panicked"),
        }
        served.map_err(ServeError::from)
    }
}
