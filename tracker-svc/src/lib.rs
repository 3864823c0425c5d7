//! tracker-svc: tasks assigned to random active workers, shuffled by
//! managers, completed by their assignee.
//!
//! - [`config`]: settings (`POPUG_TRACKER_*`, `POPUG_MAIL_DIR`).
//! - [`startup`]: [`startup::Application`], built and run by `main.rs` and by
//!   `popug up`.
//! - [`grpc`]: the `popug.tracker.v1.TrackerService` methods.
//! - [`domain`]: task validation and the events each change produces.
//! - [`store`]: queries; every task change commits with its events.
//! - [`replica`]: the accounts replica, fed by auth's account events.
//! - [`notify`]: telling assignees about their tasks.

pub mod config;
pub mod domain;
pub mod error;
pub mod grpc;
pub mod notify;
pub mod replica;
/// Diesel's view of tracker-svc's tables, generated from `migrations/` by
/// `diesel print-schema` (`cargo xtask schema --write`; CI checks it).
mod schema;
pub mod startup;
pub mod store;

pub use config::TrackerSettings;
pub use startup::Application;
