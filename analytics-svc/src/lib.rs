//! analytics-svc: admin dashboards built purely from events: management's
//! earnings, the popugs in the red, the most expensive task. Its money
//! figures are sums over billing's own entries (`TransactionApplied`), so they
//! agree with billing to the cent.
//!
//! - [`config`]: settings; [`startup`]: the `Application`.
//! - [`grpc`]: the `popug.analytics.v1.AnalyticsService` methods (admins).
//! - [`handlers`]: each consumed event's write; [`store`]: the read model.

pub mod config;
pub mod error;
pub mod grpc;
pub mod handlers;
pub mod startup;
pub mod store;

pub use config::AnalyticsSettings;
pub use startup::Application;
