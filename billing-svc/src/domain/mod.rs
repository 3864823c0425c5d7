//! billing-svc's rules, free of gRPC and SQL: entry kinds and their signs,
//! why a fee was charged, price draws, billing days in the company's time
//! zone, the double-entry legs and the close plan, and the events each
//! ledger change produces.

pub mod events;
pub mod ledger;
pub mod money;

pub use ledger::{ClosePlan, CompanyAccount, Transfer};

pub use money::{Day, EntryKind, FeeReason, Prices};
