//! `popug-faults`: the fault-injection suite.
//!
//! It starts its own Postgres cluster and RabbitMQ node on private ports and
//! the four services as separate processes of their own binaries, drives a
//! steady workload through the public APIs, and injects one fault at a time
//! (see [`fault::Fault`]). After each it stops the workload, waits for the
//! system to settle by itself and checks the books ([`check`]): every fact
//! the tracker committed is exactly one ledger entry, balances equal their
//! postings, every close paid each positive balance once, outboxes are
//! empty, and `popug audit` (analytics against billing, dead letters) is
//! clean. It prints a table per fault and fails on any loss, duplicate,
//! unexpected entry, or a system that did not heal by itself.
//!
//! The short run (the default, run by `cargo nextest`) takes a few minutes;
//! `--workload-secs 60 --outage-secs 20` and so on make a longer one.

pub mod check;
pub mod cluster;
pub mod fault;
pub mod suite;
pub mod workload;
