//! The key ring: the key that signs new tokens and the previous one, whose
//! tokens still verify until they expire. Both are published by `GetJwks`,
//! so keys rotate without downtime: deploy with the old key as previous and a
//! new one as current, then drop the previous once its tokens have expired.

use popug_proto::pb::popug::auth::v1::Jwk;
use popug_token::keys::SigningKey;

use crate::{config::AuthSettings, error::Error, store::Store};

/// The current and the previous signing key.
#[derive(Debug, Clone)]
pub struct KeyRing {
    current: SigningKey,
    previous: Option<SigningKey>,
}

impl KeyRing {
    /// Keys from settings; without them (local runs), the newest two kept in
    /// the database, generating and keeping one at first start.
    pub async fn load(settings: &AuthSettings, store: &Store) -> Result<Self, Error> {
        if let Some(current) = &settings.signing_key {
            return Ok(Self {
                current: current.clone(),
                previous: settings.previous_signing_key.clone(),
            });
        }
        let mut kept = store.signing_keys().await?;
        if kept.is_empty() {
            let key = SigningKey::generate();
            store.keep_signing_key(key.kid(), &key.to_pem()).await?;
            tracing::info!(
                kid = key.kid(),
                "generated a signing key and kept it in the database"
            );
            // Re-read: a replica starting at the same time may have kept its own.
            kept = store.signing_keys().await?;
        }
        let mut keys = kept
            .iter()
            .map(|pem| SigningKey::from_pem(pem).map_err(Error::internal));
        let current = keys
            .next()
            .ok_or_else(|| Error::internal("no signing key after generating one"))??;
        let previous = keys.next().transpose()?;
        Ok(Self { current, previous })
    }

    /// The key that signs new tokens.
    pub fn current(&self) -> &SigningKey {
        &self.current
    }

    /// The published keys: current first, then previous.
    pub fn jwks(&self) -> Vec<Jwk> {
        std::iter::once(&self.current)
            .chain(&self.previous)
            .map(SigningKey::jwk)
            .collect()
    }
}
