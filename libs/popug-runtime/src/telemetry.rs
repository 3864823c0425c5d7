//! Logs, traces and metrics, set up once per process.
//!
//! - Logs: `tracing` with the level from `RUST_LOG` (default `info`), as
//!   pretty lines or one JSON object per line (`POPUG_LOG_FORMAT`).
//! - Traces: W3C trace context. The RPC layer ([`crate::instrument`]) starts
//!   a span from the caller's `traceparent`; the outbox writes the current
//!   context into each event's envelope, the relay copies it into the AMQP
//!   headers, and the consumer continues the trace. Spans go to an OTLP
//!   collector when `POPUG_OTLP_ENDPOINT` is set; without it, trace ids still
//!   flow so logs and events can be correlated.
//! - Metrics: one Prometheus registry per process ([`metrics_handle`]),
//!   served on `/metrics` by every service ([`crate::Application`]).
//!
//! The trace pipeline sees only popug's own spans, whatever `RUST_LOG` says:
//! turning logs down must not break a trace.

use std::{collections::HashMap, sync::OnceLock};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
use opentelemetry_sdk::{propagation::TraceContextPropagator, trace::SdkTracerProvider};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::{EnvFilter, Layer as _, filter::Targets, fmt, prelude::*};

use crate::settings::LogFormat;

/// The tracer provider, kept to flush spans at exit.
static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// Installs logging and tracing for tests and tools: no span export. A
/// second call (tests, several services in one process) is a no-op.
pub fn init(format: LogFormat) {
    // Without an endpoint nothing can fail.
    drop(init_with(format, None, "popug"));
}

/// Installs logging and tracing for one service binary, from its settings.
pub fn init_service(
    settings: &crate::Settings,
) -> Result<(), opentelemetry_otlp::ExporterBuildError> {
    init_with(
        settings.log_format,
        settings.otlp_endpoint.as_ref(),
        &format!("{}-svc", settings.service),
    )
}

/// Installs logging and tracing for `service`; spans are exported to `otlp`
/// (an OTLP/gRPC collector) when given. Must run inside the Tokio runtime
/// (the exporter runs on it). A second call is a no-op.
pub fn init_with(
    format: LogFormat,
    otlp: Option<&url::Url>,
    service: &str,
) -> Result<(), opentelemetry_otlp::ExporterBuildError> {
    if PROVIDER.get().is_some() {
        return Ok(());
    }
    let mut builder = SdkTracerProvider::builder().with_resource(
        opentelemetry_sdk::Resource::builder()
            .with_service_name(service.to_owned())
            .build(),
    );
    if let Some(endpoint) = otlp {
        use opentelemetry_otlp::WithExportConfig as _;
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint.as_str())
            .build()?;
        // The exporter needs Tokio; the SDK's default batch processor runs on
        // a plain thread, where it cannot reach the collector.
        let processor = opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor::builder(
            exporter,
            opentelemetry_sdk::runtime::Tokio,
        )
        .build();
        builder = builder.with_span_processor(processor);
    }
    let provider = builder.build();
    let tracer = provider.tracer("popug");
    if PROVIDER.set(provider).is_err() {
        return Ok(());
    }
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let logs = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let traced = Targets::new()
        .with_target("popug_runtime", tracing::Level::INFO)
        .with_target("popug_bus", tracing::Level::INFO);
    let registry = tracing_subscriber::registry().with(
        tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_filter(traced),
    );
    let installed = match format {
        LogFormat::Pretty => registry
            .with(fmt::layer().with_ansi(colours()).with_filter(logs))
            .try_init(),
        LogFormat::Json => registry
            .with(fmt::layer().json().with_filter(logs))
            .try_init(),
    };
    // Err means another subscriber is installed (a test harness's): keep it.
    drop(installed);
    Ok(())
}

/// Whether pretty logs are coloured: only on a terminal (logs redirected to
/// a file or a pipe stay plain text), and never with `NO_COLOR` set.
fn colours() -> bool {
    use std::io::IsTerminal as _;
    std::io::stdout().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty())
}

/// Sends the spans still buffered to the collector; call before exiting.
pub async fn shutdown() {
    let Some(provider) = PROVIDER.get() else {
        return;
    };
    // Flushing waits on the exporter's task: not from a runtime thread.
    let flushed = tokio::task::spawn_blocking(|| provider.shutdown()).await;
    match flushed {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::warn!(%error, "spans could not all be exported at shutdown"),
        Err(error) => tracing::warn!(%error, "the span exporter panicked at shutdown"),
    }
}

/// W3C trace context headers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TraceHeaders {
    /// `traceparent`, empty when there is no trace.
    pub traceparent: String,
    /// `tracestate`, often empty.
    pub tracestate: String,
}

/// The trace context of the current span, to travel with an event.
pub fn current_trace() -> TraceHeaders {
    let context = tracing::Span::current().context();
    if !context.span().span_context().is_valid() {
        return TraceHeaders::default();
    }
    let mut carrier: HashMap<String, String> = HashMap::new();
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&context, &mut carrier);
    });
    TraceHeaders {
        traceparent: carrier.remove("traceparent").unwrap_or_default(),
        tracestate: carrier.remove("tracestate").unwrap_or_default(),
    }
}

/// Makes `span` a child of the operation `headers` describe (a caller's
/// RPC, the operation that produced an event); no-op without a trace.
pub fn continue_trace(span: &tracing::Span, headers: &TraceHeaders) {
    if headers.traceparent.is_empty() {
        return;
    }
    let carrier = HashMap::from([
        ("traceparent".to_owned(), headers.traceparent.clone()),
        ("tracestate".to_owned(), headers.tracestate.clone()),
    ]);
    let parent =
        opentelemetry::global::get_text_map_propagator(|propagator| propagator.extract(&carrier));
    if let Err(error) = span.set_parent(parent) {
        // Only when another subscriber than ours is installed.
        tracing::debug!(%error, "the trace cannot be continued");
    }
}

/// The trace id of `span`, as 32 hex digits (for logs and tests).
pub fn trace_id(span: &tracing::Span) -> String {
    span.context().span().span_context().trace_id().to_string()
}

/// The process's Prometheus registry, installed as the `metrics` recorder on
/// first use. Several services in one process (`popug up`, tests) share it;
/// every series carries a `service` label.
pub fn metrics_handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Suffix("_seconds".into()),
                &[
                    0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                    5.0, 10.0,
                ],
            )
            .unwrap_or_else(|_| PrometheusBuilder::new());
        match builder.install_recorder() {
            Ok(handle) => handle,
            Err(error) => {
                tracing::warn!(%error, "another metrics recorder is installed; /metrics stays empty");
                PrometheusBuilder::new().build_recorder().handle()
            }
        }
    })
}
