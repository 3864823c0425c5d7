//! Wrapping events in the `popug.events.v1.Envelope` and reading them back.

use popug_proto::{
    events::Event,
    pb::popug::events::v1::{Envelope, TraceContext},
};
use prost::Message as _;
use uuid::Uuid;

/// What a consumer knows about an event besides its payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventMeta {
    /// Unique id of the event.
    pub event_id: Uuid,
    /// Event name without version.
    pub event_name: String,
    /// Schema version.
    pub event_version: u32,
    /// Protobuf full name of the payload.
    pub event_type: String,
    /// When the producer committed it.
    pub occurred_at: chrono::DateTime<chrono::Utc>,
    /// The producing service.
    pub producer: String,
    /// The trace of the operation that produced it (W3C).
    pub trace: popug_runtime::telemetry::TraceHeaders,
}

const TYPE_URL_PREFIX: &str = "type.googleapis.com/";

/// Builds the envelope of `event`, with a fresh time-ordered id and the
/// trace context of the current span.
pub fn wrap<E: Event>(
    event: &E,
    producer: &str,
    occurred_at: chrono::DateTime<chrono::Utc>,
) -> Envelope {
    wrap_traced(
        event,
        producer,
        occurred_at,
        popug_runtime::telemetry::current_trace(),
    )
}

/// [`wrap`] with the trace context given, for many events of one span.
pub fn wrap_traced<E: Event>(
    event: &E,
    producer: &str,
    occurred_at: chrono::DateTime<chrono::Utc>,
    trace: popug_runtime::telemetry::TraceHeaders,
) -> Envelope {
    Envelope {
        event_id: Uuid::now_v7().to_string(),
        event_name: E::NAME.to_owned(),
        event_version: E::VERSION,
        occurred_at: Some(timestamp(occurred_at)),
        producer: producer.to_owned(),
        trace_context: Some(TraceContext {
            traceparent: trace.traceparent,
            tracestate: trace.tracestate,
        }),
        payload: Some(prost_types::Any {
            type_url: format!("{TYPE_URL_PREFIX}{}", E::full_name()),
            value: event.encode_to_vec(),
        }),
    }
}

/// A protobuf timestamp of `time`.
pub fn timestamp(time: chrono::DateTime<chrono::Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: time.timestamp(),
        nanos: i32::try_from(time.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

/// Why a message body is not a usable envelope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// The bytes are not a protobuf envelope.
    #[error("body is not a popug.events.v1.Envelope: {0}")]
    Decode(String),
    /// A required envelope field is missing or malformed.
    #[error("envelope field `{0}` is missing or malformed")]
    Field(&'static str),
}

/// An envelope read from the bus: its metadata and the still-encoded payload.
#[derive(Debug, Clone)]
pub struct Opened {
    /// The envelope's metadata.
    pub meta: EventMeta,
    /// The encoded payload, of type `meta.event_type`.
    pub payload: Vec<u8>,
}

/// Decodes `body` as an envelope and checks its fields.
pub fn open(body: &[u8]) -> Result<Opened, EnvelopeError> {
    let envelope =
        Envelope::decode(body).map_err(|error| EnvelopeError::Decode(error.to_string()))?;
    let event_id =
        Uuid::try_parse(&envelope.event_id).map_err(|_| EnvelopeError::Field("event_id"))?;
    let occurred_at = envelope
        .occurred_at
        .and_then(|ts| chrono::DateTime::from_timestamp(ts.seconds, u32::try_from(ts.nanos).ok()?))
        .ok_or(EnvelopeError::Field("occurred_at"))?;
    let payload = envelope.payload.ok_or(EnvelopeError::Field("payload"))?;
    let event_type = payload
        .type_url
        .strip_prefix(TYPE_URL_PREFIX)
        .filter(|name| !name.is_empty())
        .ok_or(EnvelopeError::Field("payload.type_url"))?
        .to_owned();
    if envelope.event_name.is_empty() {
        return Err(EnvelopeError::Field("event_name"));
    }
    Ok(Opened {
        meta: EventMeta {
            event_id,
            event_name: envelope.event_name,
            event_version: envelope.event_version,
            event_type,
            occurred_at,
            producer: envelope.producer,
            trace: envelope
                .trace_context
                .map(|trace| popug_runtime::telemetry::TraceHeaders {
                    traceparent: trace.traceparent,
                    tracestate: trace.tracestate,
                })
                .unwrap_or_default(),
        },
        payload: payload.value,
    })
}
