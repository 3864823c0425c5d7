//! Black-box tests of auth-svc: the real service on a random port, against a
//! fresh database and a fresh broker namespace, called over gRPC.

mod accounts;
mod helpers;
mod keys;
mod passwords;
mod sessions;
mod sign_in;
mod tokens;
mod validation;
