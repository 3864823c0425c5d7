//! Verifying access tokens locally, with keys fetched from auth-svc.
//!
//! The algorithm is pinned to EdDSA (no `none`, no HS/RS confusion); the
//! signature, `exp`, `nbf`, `iss`, `aud` and `kid` are all checked. Keys are
//! cached; an unknown `kid` triggers a refresh, at most once per
//! `min_refresh_interval`, so a flood of forged kids cannot hammer auth-svc.
//! Verified tokens are cached until they expire, so the per-call cost of a
//! repeated token is a map lookup.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use futures::future::BoxFuture;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use popug_proto::pb::popug::auth::v1::{
    GetJwksRequest, Jwk, auth_service_client::AuthServiceClient,
};

use crate::claims::{AUDIENCE, Claims, ISSUER, WireClaims};

/// Why a token was refused; every variant answers `UNAUTHENTICATED`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a JWT at all, or missing a required part.
    #[error("malformed access token: {0}")]
    Malformed(String),
    /// Signed with an algorithm other than EdDSA.
    #[error("access token algorithm {0} is not accepted")]
    Algorithm(String),
    /// Its `kid` is not one of auth-svc's published keys.
    #[error("access token key id {0:?} is unknown")]
    UnknownKey(String),
    /// Bad signature, expired, not yet valid, wrong issuer or audience.
    #[error("access token rejected: {0}")]
    Rejected(String),
    /// The keys could not be fetched from auth-svc.
    #[error("token keys unavailable: {0}")]
    KeysUnavailable(String),
}

/// Where verification keys come from.
pub trait JwksSource: Send + Sync + 'static {
    /// The published keys.
    fn fetch(&self) -> BoxFuture<'_, Result<Vec<Jwk>, String>>;
}

/// auth-svc's `GetJwks`, over gRPC.
#[derive(Debug, Clone)]
pub struct GrpcJwks {
    endpoint: tonic::transport::Endpoint,
}

impl GrpcJwks {
    /// Keys from the auth-svc at `url` (`POPUG_AUTH_URL`).
    pub fn new(url: &str) -> Result<Self, String> {
        let endpoint = tonic::transport::Endpoint::from_shared(url.to_owned())
            .map_err(|error| format!("invalid auth-svc URL {url}: {error}"))?
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(5));
        Ok(Self { endpoint })
    }
}

impl JwksSource for GrpcJwks {
    fn fetch(&self) -> BoxFuture<'_, Result<Vec<Jwk>, String>> {
        Box::pin(async move {
            let channel = self.endpoint.connect().await.map_err(|error| {
                format!("cannot reach auth-svc at {}: {error}", self.endpoint.uri())
            })?;
            let response = AuthServiceClient::new(channel)
                .get_jwks(GetJwksRequest {})
                .await
                .map_err(|status| format!("GetJwks failed: {}", status.message()))?;
            Ok(response.into_inner().keys)
        })
    }
}

impl<F> JwksSource for F
where
    F: Fn() -> Vec<Jwk> + Send + Sync + 'static,
{
    fn fetch(&self) -> BoxFuture<'_, Result<Vec<Jwk>, String>> {
        let keys = self();
        Box::pin(async move { Ok(keys) })
    }
}

#[derive(Default)]
struct KeySet {
    keys: HashMap<String, DecodingKey>,
    /// Last successful fetch.
    fetched_at: Option<Instant>,
    /// Last fetch attempt, successful or not: refreshes are rate-limited on
    /// it, so an unreachable auth-svc costs one attempt per interval, not one
    /// per call.
    attempted_at: Option<Instant>,
}

/// The longest lifetime (`exp - nbf`) a token may claim: auth-svc issues at
/// most a day. A longer one was not issued by auth-svc's settings.
const MAX_LIFETIME: u64 = 86_400;

/// Verified tokens kept at most; the cache is emptied when it is full.
const CACHE_LIMIT: usize = 50_000;

/// Verifies access tokens; one per process, shared by all its services.
pub struct Verifier {
    source: Box<dyn JwksSource>,
    keys: Mutex<KeySet>,
    refreshing: tokio::sync::Mutex<()>,
    /// Least time between two key fetches triggered by unknown kids.
    min_refresh_interval: Duration,
    /// Keys older than this are fetched again at the next verification.
    max_key_age: Duration,
    validation: Validation,
    /// Verified tokens and the key that signed each: a hit counts only while
    /// that key is still published.
    verified: Mutex<HashMap<String, (Claims, String)>>,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0)
}

impl Verifier {
    /// A verifier of tokens signed by the keys `source` publishes.
    pub fn new(source: impl JwksSource) -> Arc<Self> {
        Self::with_refresh_interval(source, Duration::from_secs(10))
    }

    /// As [`Verifier::new`], with the least time between refreshes caused by
    /// unknown kids (tests use zero).
    pub fn with_refresh_interval(
        source: impl JwksSource,
        min_refresh_interval: Duration,
    ) -> Arc<Self> {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = 5;
        Arc::new(Self {
            source: Box::new(source),
            keys: Mutex::default(),
            refreshing: tokio::sync::Mutex::new(()),
            min_refresh_interval,
            max_key_age: Duration::from_secs(300),
            validation,
            verified: Mutex::default(),
        })
    }

    /// Verifies `token` and returns its claims.
    pub async fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let now = now();
        let hit = lock(&self.verified).get(token).cloned();
        if let Some((claims, kid)) = hit
            && claims.expires_at > now
            && lock(&self.keys).keys.contains_key(&kid)
        {
            return Ok(claims);
        }
        let header = jsonwebtoken::decode_header(token)
            .map_err(|error| TokenError::Malformed(error.to_string()))?;
        if header.alg != Algorithm::EdDSA {
            return Err(TokenError::Algorithm(format!("{:?}", header.alg)));
        }
        let kid = header
            .kid
            .ok_or_else(|| TokenError::Malformed("no `kid` in the header".into()))?;
        let key = self.key(&kid).await?;
        let data = jsonwebtoken::decode::<WireClaims>(token, &key, &self.validation)
            .map_err(|error| TokenError::Rejected(error.to_string()))?;
        if data.claims.exp.saturating_sub(data.claims.nbf) > MAX_LIFETIME {
            return Err(TokenError::Rejected(
                "the token claims a longer lifetime than auth-svc issues".into(),
            ));
        }
        let account_id = uuid::Uuid::try_parse(&data.claims.sub)
            .map_err(|_| TokenError::Rejected("`sub` is not an account id".into()))?;
        let claims = Claims {
            account_id,
            role: data.claims.role,
            expires_at: data.claims.exp,
        };
        let mut verified = lock(&self.verified);
        if verified.len() >= CACHE_LIMIT {
            verified.clear();
        }
        verified.insert(token.to_owned(), (claims.clone(), kid));
        Ok(claims)
    }

    async fn key(&self, kid: &str) -> Result<DecodingKey, TokenError> {
        if let Some(key) = self.cached_key(kid, true) {
            return Ok(key);
        }
        let _one_refresh_at_a_time = self.refreshing.lock().await;
        // Another caller may have refreshed while we waited.
        if let Some(key) = self.cached_key(kid, true) {
            return Ok(key);
        }
        let recently = lock(&self.keys)
            .attempted_at
            .is_some_and(|at| at.elapsed() < self.min_refresh_interval);
        if !recently {
            lock(&self.keys).attempted_at = Some(Instant::now());
            match self.source.fetch().await {
                Ok(jwks) => self.store(&jwks),
                Err(error) => {
                    // Known keys stay usable while auth-svc is briefly away.
                    tracing::warn!(%error, "cannot refresh token keys");
                    return self
                        .cached_key(kid, false)
                        .ok_or(TokenError::KeysUnavailable(error));
                }
            }
        }
        self.cached_key(kid, false)
            .ok_or_else(|| TokenError::UnknownKey(kid.to_owned()))
    }

    fn cached_key(&self, kid: &str, fresh_only: bool) -> Option<DecodingKey> {
        let keys = lock(&self.keys);
        let fresh = keys
            .fetched_at
            .is_some_and(|at| at.elapsed() < self.max_key_age);
        if fresh_only && !fresh {
            return None;
        }
        keys.keys.get(kid).cloned()
    }

    fn store(&self, jwks: &[Jwk]) {
        let mut keys = HashMap::new();
        for jwk in jwks {
            if jwk.kty != "OKP" || jwk.crv != "Ed25519" || jwk.alg != "EdDSA" {
                tracing::warn!(kid = %jwk.kid, "ignoring a published key that is not Ed25519/EdDSA");
                continue;
            }
            match DecodingKey::from_ed_components(&jwk.x) {
                Ok(key) => {
                    keys.insert(jwk.kid.clone(), key);
                }
                Err(error) => {
                    tracing::warn!(kid = %jwk.kid, %error, "ignoring a malformed published key");
                }
            }
        }
        let now = Instant::now();
        *lock(&self.keys) = KeySet {
            keys,
            fetched_at: Some(now),
            attempted_at: Some(now),
        };
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
