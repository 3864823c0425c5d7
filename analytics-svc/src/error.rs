//! analytics-svc's errors: the shared API error of every popug service, whose
//! mapping to gRPC codes is written once in `popug-runtime`.

pub use popug_runtime::ApiError as Error;
