//! billing-svc's rules, free of gRPC and SQL: entry kinds and their signs,
//! price draws, billing days in the company's time zone, management's
//! earnings, and the events each ledger change produces.

pub mod events;
pub mod money;

pub use money::{Day, EntryKind, Prices};
