//! Black-box tests of analytics-svc: auth, billing and analytics on random
//! ports in one broker namespace; the tracker's events are published as the
//! tracker would, billing's own events flow through its relay.

mod access;
mod bounds;
mod figures;
mod helpers;
