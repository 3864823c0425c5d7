//! The RPC layer every server wraps around all its services: a span per call
//! that continues the caller's W3C trace (`traceparent` metadata), and the
//! Prometheus series `popug_rpc_requests_total` and
//! `popug_rpc_duration_seconds` by service, method and status code; and the
//! server's version on every answer (`x-popug-version`).

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
    time::Instant,
};

use tracing::Instrument as _;

use crate::telemetry::{self, TraceHeaders};

/// The response header carrying the version of the server that answered.
pub const VERSION_HEADER: &str = "x-popug-version";

/// Wraps services in [`Rpc`].
#[derive(Debug, Clone, Copy)]
pub struct RpcLayer {
    /// The `service` label: `auth`, `tracker`, ...
    pub service: &'static str,
}

impl<S> tower_layer::Layer<S> for RpcLayer {
    type Service = Rpc<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Rpc {
            inner,
            service: self.service,
        }
    }
}

/// Traces and counts every call to the inner service.
#[derive(Debug, Clone)]
pub struct Rpc<S> {
    inner: S,
    service: &'static str,
}

fn header(headers: &http::HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

impl<S, B, R> tower_service::Service<http::Request<B>> for Rpc<S>
where
    S: tower_service::Service<http::Request<B>, Response = http::Response<R>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let method = request.uri().path().to_owned();
        let span = tracing::info_span!(
            "rpc",
            otel.name = %method,
            otel.kind = "server",
            rpc.system = "grpc",
            rpc.grpc.status_code = tracing::field::Empty,
        );
        telemetry::continue_trace(
            &span,
            &TraceHeaders {
                traceparent: header(request.headers(), "traceparent"),
                tracestate: header(request.headers(), "tracestate"),
            },
        );
        // The clone that was polled ready serves this call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let service = self.service;
        let started = Instant::now();
        Box::pin(async move {
            let mut response = inner.call(request).instrument(span.clone()).await?;
            // Which build answered, for `popug status` and whoever debugs a
            // deployment (every crate shares the workspace's version).
            response.headers_mut().insert(
                VERSION_HEADER,
                http::HeaderValue::from_static(env!("CARGO_PKG_VERSION")),
            );
            // Errors travel in the headers of a trailers-only response; a
            // success's status comes in the trailers and is OK.
            let code = response
                .headers()
                .get("grpc-status")
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.parse::<i32>().ok())
                .map_or(tonic::Code::Ok, tonic::Code::from_i32);
            span.record("rpc.grpc.status_code", code as i32);
            let code = format!("{code:?}");
            metrics::counter!("popug_rpc_requests_total", "service" => service, "method" => method.clone(), "code" => code)
                .increment(1);
            metrics::histogram!("popug_rpc_duration_seconds", "service" => service, "method" => method)
                .record(started.elapsed().as_secs_f64());
            Ok(response)
        })
    }
}
