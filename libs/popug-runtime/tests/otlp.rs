//! Spans reach an OTLP/gRPC collector when `POPUG_OTLP_ENDPOINT` names one:
//! a real collector endpoint (the OTLP trace service, served here) receives
//! them with the service's name.

use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
    trace_service_server::{TraceService, TraceServiceServer},
};
use tokio::sync::mpsc;

struct Collector(mpsc::UnboundedSender<ExportTraceServiceRequest>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.0
            .send(request.into_inner())
            .map_err(|_| tonic::Status::unavailable("the test has ended"))?;
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_are_exported_to_the_configured_collector() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let endpoint: url::Url = format!("http://{}", listener.local_addr().expect("addr"))
        .parse()
        .expect("url");
    let (sender, mut received) = mpsc::unbounded_channel();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(Collector(sender)))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );

    popug_runtime::telemetry::init_with(
        popug_runtime::settings::LogFormat::Json,
        Some(&endpoint),
        "otlp-test-svc",
    )
    .expect("the exporter builds");
    let span = tracing::info_span!(target: "popug_runtime", "rpc", otel.name = "/test/Export");
    let trace_id = popug_runtime::telemetry::trace_id(&span);
    drop(span);
    popug_runtime::telemetry::shutdown().await;

    let request = tokio::time::timeout(std::time::Duration::from_secs(30), received.recv())
        .await
        .expect("the collector hears within 30 s")
        .expect("a request");
    let resource = request.resource_spans.first().expect("resource spans");
    let service = resource
        .resource
        .as_ref()
        .expect("a resource")
        .attributes
        .iter()
        .find(|attribute| attribute.key == "service.name")
        .and_then(|attribute| attribute.value.as_ref())
        .map(|value| format!("{value:?}"))
        .expect("service.name");
    assert!(service.contains("otlp-test-svc"), "{service}");
    let span = &resource.scope_spans[0].spans[0];
    assert_eq!(span.name, "/test/Export");
    let exported: String = span
        .trace_id
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    assert_eq!(exported, trace_id);
}
