//! Ed25519 signing keys: generating, loading (PKCS#8 PEM), publishing as JWK,
//! and signing access tokens. Only auth-svc holds private keys.

use base64::Engine as _;
use ed25519_dalek::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use popug_proto::pb::popug::auth::v1::Jwk;
use sha2::Digest as _;
use uuid::Uuid;

use crate::{
    claims::{AUDIENCE, ISSUER, WireClaims},
    role::Role,
};

/// A private signing key and its key id.
#[derive(Clone)]
pub struct SigningKey {
    kid: String,
    key: ed25519_dalek::SigningKey,
    encoding: EncodingKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print private key material.
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// Why key material could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("not an Ed25519 private key in PKCS#8 PEM form: {0}")]
pub struct KeyError(String);

fn url_safe(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl SigningKey {
    /// A fresh random key.
    pub fn generate() -> Self {
        Self::from_dalek(ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng))
    }

    /// Loads a `-----BEGIN PRIVATE KEY-----` PEM document.
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        ed25519_dalek::SigningKey::from_pkcs8_pem(pem.trim())
            .map(Self::from_dalek)
            .map_err(|error| KeyError(error.to_string()))
    }

    fn from_dalek(key: ed25519_dalek::SigningKey) -> Self {
        let public = key.verifying_key().to_bytes();
        // The key id is a fingerprint of the public key: stable across restarts.
        let kid = url_safe(&sha2::Sha256::digest(public)[..9]);
        let der = key
            .to_pkcs8_der()
            .expect("an Ed25519 key always encodes as PKCS#8");
        Self {
            kid,
            encoding: EncodingKey::from_ed_der(der.as_bytes()),
            key,
        }
    }

    /// The PKCS#8 PEM form, for keeping the key.
    pub fn to_pem(&self) -> String {
        self.key
            .to_pkcs8_pem(Default::default())
            .expect("an Ed25519 key always encodes as PKCS#8")
            .to_string()
    }

    /// The key id carried in tokens' `kid` header.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public half, as published by `GetJwks`.
    pub fn jwk(&self) -> Jwk {
        Jwk {
            kid: self.kid.clone(),
            kty: "OKP".into(),
            crv: "Ed25519".into(),
            x: url_safe(&self.key.verifying_key().to_bytes()),
            alg: "EdDSA".into(),
            key_use: "sig".into(),
        }
    }

    /// Signs an access token for `account_id` valid for `lifetime` from `now`
    /// (seconds since the Unix epoch).
    pub fn sign(&self, account_id: Uuid, role: Role, now: u64, lifetime: u64) -> String {
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = None;
        header.kid = Some(self.kid.clone());
        let claims = WireClaims {
            sub: account_id.to_string(),
            role,
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            nbf: now,
            exp: now + lifetime,
        };
        jsonwebtoken::encode(&header, &claims, &self.encoding)
            .expect("signing with a valid Ed25519 key cannot fail")
    }
}
