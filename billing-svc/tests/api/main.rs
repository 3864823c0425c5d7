//! Black-box tests of billing-svc: auth-svc and billing-svc on random ports,
//! the tracker's events published onto the bus as the tracker would, a real
//! SMTP sink for payout emails, and the money invariants after every test.

mod access;
mod close;
mod concurrency;
mod helpers;
mod ledger;
mod pricing;
mod replicas;
mod statements;
mod upgrade;
