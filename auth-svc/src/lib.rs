//! auth-svc: accounts, roles, login, and the Ed25519-signed access tokens
//! every other popug service verifies by itself.
//!
//! - [`config`]: settings (`POPUG_AUTH_*`, `POPUG_ADMIN_*`).
//! - [`startup`]: [`startup::Application`], built and run by `main.rs` and by
//!   `popug up`.
//! - [`grpc`]: the `popug.auth.v1.AuthService` methods.
//! - [`domain`]: validation, password hashing, account events.
//! - [`store`]: queries; every account change commits with its event.
//! - [`keys`]: the current and previous signing keys.
//! - [`recovery`]: a lost password reset straight in the database
//!   (`popug admin reset-password`).
//! - `testing` (feature `testing`): `TestAuth`, a running auth-svc for other
//!   services' black-box tests.

pub mod config;
pub mod domain;
pub mod error;
pub mod grpc;
pub mod guard;
pub mod keys;
pub mod recovery;
/// Diesel's view of auth-svc's tables, generated from `migrations/` by
/// `diesel print-schema` (`cargo xtask schema --write`; CI checks it).
mod schema;
pub mod startup;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;

pub use config::AuthSettings;
pub use startup::Application;
