//! What an access token says, on the wire (JWT claims) and once verified.

use uuid::Uuid;

use crate::role::Role;

/// The `iss` of every popug access token.
pub const ISSUER: &str = "popug-auth";
/// The `aud` of every popug access token.
pub const AUDIENCE: &str = "popug";

/// A verified token's claims, as handlers see them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// The account's public id (`sub`).
    pub account_id: Uuid,
    /// The account's role when the token was issued.
    pub role: Role,
    /// Expiry, seconds since the Unix epoch (`exp`).
    pub expires_at: u64,
}

/// JWT claims as serialized into the token. Kept minimal: the token rides
/// on every call, and HTTP/2 never compresses `authorization` headers, so
/// every byte costs on every call (`nbf` doubles as the issue time).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct WireClaims {
    pub(crate) sub: String,
    pub(crate) role: Role,
    pub(crate) iss: String,
    pub(crate) aud: String,
    pub(crate) nbf: u64,
    pub(crate) exp: u64,
}
