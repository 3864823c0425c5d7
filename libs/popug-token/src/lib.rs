//! Access tokens for every popug service: auth-svc signs them with
//! [`keys::SigningKey`]; every service verifies them by itself with a
//! [`Verifier`] fed by auth-svc's published keys (`GetJwks`).
//!
//! The [`layer::AuthLayer`] tower layer reads `authorization: Bearer ...`,
//! verifies the token and puts the typed [`Claims`] into the request's
//! extensions; a present but bad token is answered `UNAUTHENTICATED` before
//! any handler runs. With a [`Directory`] (every service has one), the claims
//! carry the caller's current role and a deactivated caller is refused
//! ([`standing`]). Handlers then state who may call them with
//! [`require_role`] or [`require_signed_in`]; no handler parses the header.

pub mod authorize;
pub mod claims;
pub mod keys;
pub mod layer;
pub mod role;
pub mod standing;
pub mod verifier;

pub use authorize::{
    Identify, admins_only, caller_account_id, check_role, require_role, require_role_in,
    require_signed_in,
};
pub use claims::{AUDIENCE, Claims, ISSUER};
pub use layer::AuthLayer;
pub use role::Role;
pub use standing::{Directory, Standing, Standings};
pub use verifier::{GrpcJwks, JwksSource, TokenError, Verifier};
