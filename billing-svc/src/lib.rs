//! billing-svc: prices each task once, charges the assignee at every
//! assignment, pays at completion, keeps an immutable ledger, and closes each
//! day with payouts by email. Not one dollar may be lost: every money effect
//! is an entry with a unique source, committed with the event that caused it.
//!
//! - [`config`]: settings (`POPUG_BILLING_*`, `POPUG_MAIL_*`, time zone, SMTP).
//! - [`startup`]: the `Application`.
//! - [`grpc`]: the `popug.billing.v1.BillingService` methods.
//! - [`domain`]: cents, prices, billing days, events.
//! - [`store`]: the ledger, the day close, the accounts replica.
//! - [`handlers`]: what each consumed event does.
//! - [`closer`]: closing days at midnight; [`mail`]: payout emails.
//! - [`invariants`]: the money checks.

pub mod closer;
pub mod config;
pub mod domain;
pub mod error;
pub mod grpc;
pub mod handlers;
pub mod invariants;
pub mod mail;
/// Diesel's view of billing-svc's tables, generated from `migrations/` by
/// `diesel print-schema` (`cargo xtask schema --write`; CI checks it).
/// `entries`, a view over `transactions` and `postings`, is read with SQL.
mod schema;
pub mod startup;
pub mod store;

pub use config::BillingSettings;
pub use startup::Application;
