//! `bench auth`: token verification. The same cheap RPC (`GetJwks`) on the
//! same server, without a token, with one carried unverified and with a
//! bearer token the auth layer verifies; and verifications without and with
//! the cache.

use std::time::Instant;

use crate::{auth_server::AuthServer, raw::rate};

/// `calls` GetJwks calls, `concurrency` at once, with `token` if given.
async fn get_jwks_rate(
    channel: &tonic::transport::Channel,
    token: Option<&str>,
    calls: usize,
    concurrency: usize,
) -> anyhow::Result<f64> {
    get_jwks_rate_with(channel, "authorization", token, calls, concurrency).await
}

async fn get_jwks_rate_with(
    channel: &tonic::transport::Channel,
    name: &'static str,
    token: Option<&str>,
    calls: usize,
    concurrency: usize,
) -> anyhow::Result<f64> {
    use popug_proto::pb::popug::auth::v1::{
        GetJwksRequest, auth_service_client::AuthServiceClient,
    };
    let started = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let mut client = AuthServiceClient::new(channel.clone());
            let header: Option<tonic::metadata::MetadataValue<_>> = token
                .map(|token| format!("Bearer {token}").parse())
                .transpose()?;
            anyhow::Ok(tokio::spawn(async move {
                for _ in 0..calls / concurrency {
                    let mut request = tonic::Request::new(GetJwksRequest {});
                    if let Some(header) = &header {
                        request.metadata_mut().insert(name, header.clone());
                    }
                    client.get_jwks(request).await?;
                }
                anyhow::Ok(())
            }))
        })
        .collect::<Result<_, _>>()?;
    for task in tasks {
        task.await??;
    }
    Ok(rate(calls / concurrency * concurrency, started))
}

/// Runs the benchmark.
pub(crate) async fn run(
    postgres: &url::Url,
    calls: usize,
    concurrency: usize,
) -> anyhow::Result<()> {
    let auth_server = AuthServer::start(postgres).await?;
    let channel = auth_server.channel().await?;
    let token = auth_server.admin_token.clone();
    println!(
        "auth benchmark: {calls} GetJwks calls per run, {concurrency} in flight, one server; token of {} bytes",
        token.len()
    );

    // Warm up, then alternate the two kinds and keep each one's best run.
    get_jwks_rate(&channel, Some(&token), calls / 10, concurrency).await?;
    let (mut plain, mut authenticated) = (0.0_f64, 0.0_f64);
    // The same bytes in a header HTTP/2 also never compresses, but that
    // nobody verifies: the cost of carrying a token, apart from checking it.
    let mut carried = 0.0_f64;
    for _ in 0..5 {
        plain = plain.max(get_jwks_rate(&channel, None, calls, concurrency).await?);
        authenticated =
            authenticated.max(get_jwks_rate(&channel, Some(&token), calls, concurrency).await?);
        carried = carried
            .max(get_jwks_rate_with(&channel, "cookie", Some(&token), calls, concurrency).await?);
    }

    // What the cache saves: verifying distinct tokens, each one afresh.
    let key = popug_token::keys::SigningKey::generate();
    let published = key.jwk();
    let verifier = popug_token::Verifier::new(move || vec![published.clone()]);
    let now = u64::try_from(chrono::Utc::now().timestamp())?;
    let fresh: Vec<String> = (0..5_000)
        .map(|_| key.sign(uuid::Uuid::new_v4(), popug_token::Role::Worker, now, 600))
        .collect();
    let started = Instant::now();
    for token in &fresh {
        verifier.verify(token).await?;
    }
    let uncached = rate(fresh.len(), started);
    let started = Instant::now();
    for _ in 0..200_000 {
        verifier.verify(&fresh[0]).await?;
    }
    let cached = rate(200_000, started);

    println!();
    println!("{:<58} {:>12}", "measurement", "per second");
    println!("{:<58} {:>12.0}", "raw: GetJwks without a token", plain);
    println!(
        "{:<58} {:>12.0}",
        "raw: GetJwks carrying the token unverified (cookie)", carried
    );
    println!(
        "{:<58} {:>12.0}",
        "popug: GetJwks with a verified bearer token", authenticated
    );
    println!(
        "{:<58} {:>12.0}",
        "popug: fresh token verifications (Ed25519), one core", uncached
    );
    println!(
        "{:<58} {:>12.0}",
        "popug: cached token verifications, one core", cached
    );
    println!();
    println!(
        "authenticated / unauthenticated = {:.2}  (target >= 0.90)",
        authenticated / plain
    );
    println!(
        "authenticated / token carried unverified = {:.2}  (the verification's own cost)",
        authenticated / carried
    );
    auth_server.stop().await
}
