//! End to end: the whole mesh in this process on random ports, driven only
//! through the public gRPC APIs (the generated stubs, the real grpcurl
//! binary, the Python example client), on a simulated clock so that a day
//! can end and be closed. Every test ends with `popug audit`'s check.

mod audit;
mod clients;
mod helpers;
mod observability;
mod rights;
mod simulation;
#[path = "../support/mod.rs"]
mod support;
mod working_day;
