//! The `popug` command line's library: what the binary, the end-to-end tests
//! and the benchmarks share.
//!
//! - [`mesh`]: all four services in one process (`popug up`, tests, `popug simulate`).
//! - [`client`]: typed gRPC clients that carry a bearer token.
//! - [`audit`]: the cross-service money check (`popug audit`).
//! - [`simulate`]: whole working days of a popug company (`popug simulate`).
//! - [`web`]: the web app beside a mesh (`popug up`, the browser test).

pub mod audit;
pub mod client;
pub mod mesh;
pub mod simulate;
pub mod web;
