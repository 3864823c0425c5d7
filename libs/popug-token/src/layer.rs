//! The tower layer that authenticates every call of a server: a request with
//! a valid `authorization: Bearer <token>` gets [`Claims`] in its extensions,
//! with the caller's current role from the service's [`Standings`] if it has
//! them (see [`crate::standing`]);
//! one with a present but invalid token is answered `UNAUTHENTICATED` before
//! any handler runs; one without a token passes on, and handlers that need a
//! caller refuse it (see [`crate::authorize`]).

use std::{
    sync::Arc,
    task::{Context, Poll},
};

use futures::future::BoxFuture;
use tonic::Status;

use crate::{
    claims::Claims,
    standing::Standings,
    verifier::{TokenError, Verifier},
};

/// Adds token verification to a service.
#[derive(Clone)]
pub struct AuthLayer {
    verifier: Arc<Verifier>,
    standings: Option<Standings>,
}

impl AuthLayer {
    /// A layer verifying with `verifier`, trusting the token's role.
    pub fn new(verifier: Arc<Verifier>) -> Self {
        Self {
            verifier,
            standings: None,
        }
    }

    /// The same layer, judging every caller by its current standing.
    #[must_use]
    pub fn with_standings(mut self, standings: Standings) -> Self {
        self.standings = Some(standings);
        self
    }
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = Authenticated<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Authenticated {
            inner,
            verifier: Arc::clone(&self.verifier),
            standings: self.standings.clone(),
        }
    }
}

/// A service behind [`AuthLayer`].
#[derive(Clone)]
pub struct Authenticated<S> {
    inner: S,
    verifier: Arc<Verifier>,
    standings: Option<Standings>,
}

/// The token of an `authorization` header value.
fn bearer(value: &http::HeaderValue) -> Result<&str, Status> {
    let value = value
        .to_str()
        .map_err(|_| Status::unauthenticated("the authorization header is not text"))?;
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(token.trim())
        }
        _ => Err(Status::unauthenticated(
            "the authorization header must be `Bearer <access token>`",
        )),
    }
}

impl<S, ReqBody, ResBody> tower::Service<http::Request<ReqBody>> for Authenticated<S>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<ReqBody>) -> Self::Future {
        // The clone that was polled ready is the one that must be called.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let verifier = Arc::clone(&self.verifier);
        let standings = self.standings.clone();
        Box::pin(async move {
            // Never trust claims a client could have smuggled in.
            request.extensions_mut().remove::<Claims>();
            if let Some(value) = request.headers().get(http::header::AUTHORIZATION) {
                let verified = match bearer(value) {
                    Ok(token) => verifier.verify(token).await.map_err(|error| match error {
                        TokenError::KeysUnavailable(cause) => {
                            tracing::error!(%cause, "cannot verify tokens: no keys from auth-svc");
                            Status::unavailable("tokens cannot be verified right now; try again")
                        }
                        other => Status::unauthenticated(other.to_string()),
                    }),
                    Err(status) => Err(status),
                };
                let judged = match (verified, &standings) {
                    (Ok(claims), Some(standings)) => standings.judge(claims).await,
                    (verified, _) => verified,
                };
                match judged {
                    Ok(claims) => {
                        request.extensions_mut().insert(claims);
                    }
                    Err(status) => return Ok(status.into_http()),
                }
            }
            inner.call(request).await
        })
    }
}
