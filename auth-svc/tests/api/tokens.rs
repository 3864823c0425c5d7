//! Hostile tokens are unauthenticated and write nothing.

use popug_proto::pb::popug::auth::v1 as pb;
use popug_token::keys::SigningKey;

use tonic::{Code, Request};

use popug_testing::{code, with_token};

use crate::helpers::{Options, spawn_app_with};

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A token signed by `key` with arbitrary claims.
fn forge(key: &SigningKey, claims: &serde_json::Value) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    header.kid = Some(key.kid().to_owned());
    let encoding = jsonwebtoken::EncodingKey::from_ed_pem(key.to_pem().as_bytes()).expect("key");
    jsonwebtoken::encode(&header, claims, &encoding).expect("sign")
}

#[tokio::test]
async fn hostile_tokens_are_unauthenticated_and_write_nothing() {
    let key = SigningKey::generate();
    let app = spawn_app_with(Options {
        signing_key: Some(key.to_pem()),
        ..Options::default()
    })
    .await;
    let (worker, session) = app.signed_in("worker", pb::Role::Worker).await;
    let admin_id = app
        .client()
        .who_am_i(with_token(pb::WhoAmIRequest {}, &app.admin_token))
        .await
        .expect("me")
        .into_inner()
        .account
        .expect("account")
        .account_id;
    let now = chrono::Utc::now().timestamp();
    let claims = |overrides: serde_json::Value| {
        let mut claims = serde_json::json!({
            "sub": admin_id, "role": "admin", "iss": "popug-auth", "aud": "popug",
            "iat": now, "nbf": now, "exp": now + 600, "jti": "x",
        });
        if let (Some(target), Some(changes)) = (claims.as_object_mut(), overrides.as_object()) {
            for (name, value) in changes {
                target.insert(name.clone(), value.clone());
            }
        }
        claims
    };
    let public_x = key.jwk().x;

    // alg: none, with the real kid and admin claims.
    let none = format!(
        "{}.{}.",
        b64(format!(r#"{{"alg":"none","typ":"JWT","kid":"{}"}}"#, key.kid()).as_bytes()),
        b64(claims(serde_json::json!({})).to_string().as_bytes())
    );
    // HS256 keyed with the public key (the classic algorithm confusion).
    let mut hs_header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    hs_header.kid = Some(key.kid().to_owned());
    let confused = jsonwebtoken::encode(
        &hs_header,
        &claims(serde_json::json!({})),
        &jsonwebtoken::EncodingKey::from_secret(public_x.as_bytes()),
    )
    .expect("hs256");
    // The worker's real token with its payload changed to admin.
    let parts: Vec<&str> = session.access_token.split('.').collect();
    let tampered_payload = {
        use base64::Engine as _;
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(parts[1])
            .expect("payload");
        let mut payload: serde_json::Value = serde_json::from_slice(&raw).expect("json");
        payload["role"] = "admin".into();
        b64(payload.to_string().as_bytes())
    };
    let tampered = format!("{}.{}.{}", parts[0], tampered_payload, parts[2]);

    let hostile = [
        ("alg none", Some(none)),
        ("HS256 with the public key", Some(confused)),
        ("tampered payload", Some(tampered)),
        (
            "expired",
            Some(forge(
                &key,
                &claims(
                    serde_json::json!({"iat": now - 7200, "nbf": now - 7200, "exp": now - 3600}),
                ),
            )),
        ),
        (
            "not yet valid",
            Some(forge(
                &key,
                &claims(serde_json::json!({"nbf": now + 3600, "exp": now + 7200})),
            )),
        ),
        (
            "wrong iss",
            Some(forge(
                &key,
                &claims(serde_json::json!({"iss": "evil-auth"})),
            )),
        ),
        (
            "wrong aud",
            Some(forge(
                &key,
                &claims(serde_json::json!({"aud": "someone-else"})),
            )),
        ),
        (
            "unknown kid",
            Some(forge(
                &SigningKey::generate(),
                &claims(serde_json::json!({})),
            )),
        ),
        (
            "lifetime beyond what auth-svc issues",
            Some(forge(
                &key,
                &claims(serde_json::json!({"exp": now + 400 * 86_400})),
            )),
        ),
        ("garbage", Some("not.a.jwt".to_owned())),
        ("missing", None),
    ];
    for (name, token) in hostile {
        let mut request = Request::new(pb::CreateAccountRequest {
            login: format!("intruder-{}", name.len()),
            password: "intruder-password".into(),
            name: "Intruder".into(),
            email: "intruder@evil.inc".into(),
            role: pb::Role::Admin.into(),
        });
        if let Some(token) = token {
            request.metadata_mut().insert(
                "authorization",
                format!("Bearer {token}").parse().expect("header"),
            );
        }
        let status = app.client().create_account(request).await.expect_err(name);
        assert_eq!(
            status.code(),
            Code::Unauthenticated,
            "{name}: {}",
            status.message()
        );
    }
    let mut request = Request::new(pb::WhoAmIRequest {});
    request.metadata_mut().insert(
        "authorization",
        "Basic YWRtaW46YWRtaW4=".parse().expect("header"),
    );
    assert_eq!(
        code(app.client().who_am_i(request).await),
        Code::Unauthenticated
    );

    // Nothing was written: the accounts are the admin and the worker.
    let accounts = app
        .client()
        .list_accounts(with_token(
            pb::ListAccountsRequest::default(),
            &app.admin_token,
        ))
        .await
        .expect("list")
        .into_inner()
        .accounts;
    let logins: Vec<&str> = accounts
        .iter()
        .map(|account| account.login.as_str())
        .collect();
    assert_eq!(logins, ["admin", "worker"]);
    assert_eq!(worker.role, pb::Role::Worker as i32);
}
