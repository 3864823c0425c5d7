//! Signing keys: rotation without downtime, a local run's generated key
//! kept, keys fetched over gRPC by another service, a withdrawn key refused.

use popug_proto::pb::popug::auth::v1 as pb;
use popug_token::keys::SigningKey;
use std::time::Duration;

use tonic::Code;

use popug_testing::{TestDatabase, code, with_token};

use crate::helpers::{Options, spawn_app, spawn_app_with};

#[tokio::test]
async fn keys_rotate_without_downtime() {
    let old_key = SigningKey::generate();
    let new_key = SigningKey::generate();
    let database = TestDatabase::fresh();
    let database_url = database.url().to_owned();
    let before = spawn_app_with(Options {
        signing_key: Some(old_key.to_pem()),
        database_url: Some(database_url.clone()),
        ..Options::default()
    })
    .await;
    let old_token = before.admin_token.clone();
    drop(before);

    // Redeploy: the new key signs, the old one is still published.
    let during = spawn_app_with(Options {
        signing_key: Some(new_key.to_pem()),
        previous_signing_key: Some(old_key.to_pem()),
        database_url: Some(database_url.clone()),
        ..Options::default()
    })
    .await;
    let jwks = during
        .client()
        .get_jwks(pb::GetJwksRequest {})
        .await
        .expect("jwks")
        .into_inner();
    let kids: Vec<&str> = jwks.keys.iter().map(|key| key.kid.as_str()).collect();
    assert_eq!(kids, [new_key.kid(), old_key.kid()]);
    during
        .client()
        .who_am_i(with_token(pb::WhoAmIRequest {}, &old_token))
        .await
        .expect("old tokens still verify");
    let header = jsonwebtoken::decode_header(&during.admin_token).expect("header");
    assert_eq!(
        header.kid.as_deref(),
        Some(new_key.kid()),
        "new tokens use the new key"
    );
    drop(during);

    // Once the previous key is retired, its tokens no longer verify.
    let after = spawn_app_with(Options {
        signing_key: Some(new_key.to_pem()),
        database_url: Some(database_url),
        ..Options::default()
    })
    .await;
    assert_eq!(
        code(
            after
                .client()
                .who_am_i(with_token(pb::WhoAmIRequest {}, &old_token))
                .await
        ),
        Code::Unauthenticated
    );
}

#[tokio::test]
async fn a_local_run_keeps_its_generated_key_across_restarts() {
    let database = TestDatabase::fresh();
    let first = spawn_app_with(Options {
        database_url: Some(database.url().to_owned()),
        ..Options::default()
    })
    .await;
    let token = first.admin_token.clone();
    drop(first);
    let second = spawn_app_with(Options {
        database_url: Some(database.url().to_owned()),
        ..Options::default()
    })
    .await;
    second
        .client()
        .who_am_i(with_token(pb::WhoAmIRequest {}, &token))
        .await
        .expect("same key after restart");
}

/// Counts fetches, delegating to auth-svc's `GetJwks`.
struct Counted {
    inner: popug_token::GrpcJwks,
    fetches: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl popug_token::JwksSource for Counted {
    fn fetch(&self) -> futures::future::BoxFuture<'_, Result<Vec<pb::Jwk>, String>> {
        self.fetches
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.fetch()
    }
}

#[tokio::test]
async fn another_service_verifies_tokens_with_keys_fetched_over_grpc() {
    use popug_token::{TokenError, Verifier};
    let app = spawn_app().await;
    let fetches = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let verifier = Verifier::new(Counted {
        inner: popug_token::GrpcJwks::new(&format!("http://{}", app.addr)).expect("url"),
        fetches: std::sync::Arc::clone(&fetches),
    });
    let claims = verifier
        .verify(&app.admin_token)
        .await
        .expect("a real token verifies");
    assert_eq!(claims.role, popug_token::Role::Admin);
    verifier
        .verify(&app.admin_token)
        .await
        .expect("again, from the cache");
    assert_eq!(fetches.load(std::sync::atomic::Ordering::SeqCst), 1);

    // Forged kids refresh the keys at most once per interval.
    let stranger = SigningKey::generate();
    for _ in 0..5 {
        let forged = stranger.sign(
            uuid::Uuid::new_v4(),
            popug_token::Role::Admin,
            chrono::Utc::now().timestamp().try_into().expect("time"),
            60,
        );
        assert!(matches!(
            verifier.verify(&forged).await,
            Err(TokenError::UnknownKey(_))
        ));
    }
    assert_eq!(
        fetches.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "keys fetched moments ago are not fetched again for unknown kids"
    );
    // Without the limit, every unknown kid would cost a fetch.
    let unlimited_fetches = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let unlimited = Verifier::with_refresh_interval(
        Counted {
            inner: popug_token::GrpcJwks::new(&format!("http://{}", app.addr)).expect("url"),
            fetches: std::sync::Arc::clone(&unlimited_fetches),
        },
        Duration::ZERO,
    );
    for _ in 0..3 {
        let forged = stranger.sign(
            uuid::Uuid::new_v4(),
            popug_token::Role::Admin,
            chrono::Utc::now().timestamp().try_into().expect("time"),
            60,
        );
        assert!(matches!(
            unlimited.verify(&forged).await,
            Err(TokenError::UnknownKey(_))
        ));
    }
    assert_eq!(
        unlimited_fetches.load(std::sync::atomic::Ordering::SeqCst),
        3
    );
    assert!(matches!(
        verifier.verify("garbage").await,
        Err(TokenError::Malformed(_))
    ));

    // auth-svc away: keys already fetched keep working.
    drop(app);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let unreachable = Verifier::new(popug_token::GrpcJwks::new("http://127.0.0.1:1").expect("url"));
    assert!(matches!(
        unreachable
            .verify(&stranger.sign(uuid::Uuid::new_v4(), popug_token::Role::Worker, 0, 60))
            .await,
        Err(TokenError::KeysUnavailable(_))
    ));
}

#[tokio::test]
async fn a_cached_token_stops_verifying_once_its_key_is_withdrawn() {
    use popug_token::{TokenError, Verifier};
    let old_key = SigningKey::generate();
    let new_key = SigningKey::generate();
    let published = std::sync::Arc::new(std::sync::Mutex::new(vec![old_key.jwk()]));
    let source = std::sync::Arc::clone(&published);
    let verifier = Verifier::with_refresh_interval(
        move || source.lock().expect("keys").clone(),
        Duration::ZERO,
    );
    let now = u64::try_from(chrono::Utc::now().timestamp()).expect("time");
    let old_token = old_key.sign(uuid::Uuid::new_v4(), popug_token::Role::Admin, now, 600);
    verifier
        .verify(&old_token)
        .await
        .expect("verifies, and is cached");
    // The old key is withdrawn (leaked, say); a token of the new key refreshes the set.
    *published.lock().expect("keys") = vec![new_key.jwk()];
    let new_token = new_key.sign(uuid::Uuid::new_v4(), popug_token::Role::Worker, now, 600);
    verifier
        .verify(&new_token)
        .await
        .expect("the new key verifies");
    assert!(matches!(
        verifier.verify(&old_token).await,
        Err(TokenError::UnknownKey(_))
    ));
}
