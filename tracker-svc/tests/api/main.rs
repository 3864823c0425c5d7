//! Black-box tests of tracker-svc: auth-svc and tracker-svc on random ports,
//! sharing a fresh broker namespace, each on a fresh database. Relays and
//! consumers are stepped by the tests, so nothing waits on timing.

mod access;
mod accounts;
mod assignment;
mod helpers;
mod tasks;
mod validation;
