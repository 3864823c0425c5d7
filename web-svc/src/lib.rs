//! web-svc: the popug web app's server. It serves the built front end
//! (`web/`, a TypeScript app whose client is generated from `proto/`) and,
//! on the same origin, routes each gRPC-Web call to the service that answers
//! it, so the page needs no CORS and no service address:
//!
//! - `/popug.<service>.v1.<Service>/<Method>` goes to that service (auth,
//!   tracker, billing, analytics);
//! - `/services/<service>/<any gRPC path>` goes to the named service with the
//!   prefix removed: the way to reach `popug.ops.v1.OpsService`, which every
//!   service serves, and any service's health or reflection.
//!
//! The services speak gRPC-Web themselves (`tonic-web` in
//! `popug_runtime::server`), so calls pass through unchanged over HTTP/1.1;
//! this server adds no rules of its own: every call is judged by the service.
//! `/config.json` tells the app the company's time zone, its today (by the
//! business clock) and whether self sign-up is on.
//!
//! `popug up` runs it beside the four services ([`assets::ensure_built`]
//! builds the front end first when its sources changed); its own binary
//! serves a prebuilt copy in a container.

pub mod assets;
mod assets_build;
pub mod config;
mod proxy;
mod routes;
pub mod startup;

pub use config::WebSettings;
pub use startup::Application;
