//! popug's event bus, the one mechanism every service uses to exchange events.
//!
//! - [`topology`]: the namespaced topic exchange and, per consumer, a quorum
//!   queue with a delivery limit, at-least-once dead-lettering into its own
//!   dead-letter queue, and `overflow = reject-publish`.
//! - [`outbox`]: events are validated and written in the caller's transaction.
//! - [`relay`]: publishes the outbox in order, with pipelined publisher
//!   confirms, mandatory routing and persistent delivery; survives the broker
//!   going away and runs correctly on several replicas.
//! - [`consumer`] and [`handlers`]: typed handlers applied exactly once in
//!   effect, through an inbox that commits with the handler's effects;
//!   [`fields`]: an event's fields parsed into their types, once for every
//!   handler; [`accounts`]: the accounts replica's handlers, shared by every
//!   consuming service.
//! - [`trust`]: what every delivery is checked against before it is applied:
//!   its routing key, envelope and payload type agree with the catalog.
//! - [`dead_letters`] and [`ops`]: what could not be handled, and its replay
//!   (all, by id, or by filter, see [`dead_letter_filter`]); [`discard`]:
//!   an admin's decision never to
//!   apply one, with its audit record; [`readable`]: a dead letter's body as
//!   JSON.
//! - [`retention`]: the inbox and closed dead letters pruned by age.
//!
//! The bus's tables come with their migrations, [`MIGRATIONS`], which every
//! service runs before its own.

pub mod accounts;
pub mod broker;
pub mod consumer;
pub mod dead_letter_filter;
pub mod dead_letters;
pub mod discard;
pub mod envelope;
pub mod fields;
pub mod handlers;
pub mod history;
pub mod ops;
pub mod outbox;
pub mod readable;
pub mod relay;
pub mod retention;
/// Diesel's view of the bus tables, generated from `migrations/` by
/// `diesel print-schema` (`cargo xtask schema --write`; CI checks it).
mod schema;
pub mod topology;
pub mod trust;
pub mod wiring;

pub use accounts::AccountReplica;
pub use broker::{Backoff, Broker};
pub use consumer::{BatchReport, Consumer, ConsumerConfig};
pub use envelope::EventMeta;
pub use handlers::{Delivered, HandlerError, HandlerResult, Handlers};
pub use ops::{Guard, Identify, Ops};
pub use outbox::{Outbox, OutboxError};
pub use relay::{Relay, RelayConfig, RelayHealth, Step};
pub use retention::{Retention, RetentionConfig};
pub use topology::{QueueSpec, Topology};
pub use wiring::Bus;

/// Migrations of the bus tables (`outbox`, `inbox`, `failed_events`,
/// `dead_letter_discards`).
pub const MIGRATIONS: diesel_migrations::EmbeddedMigrations =
    diesel_migrations::embed_migrations!();
