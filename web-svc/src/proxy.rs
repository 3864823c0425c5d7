//! Forwarding a gRPC-Web call to its service, unchanged, over HTTP/1.1 (the
//! services accept gRPC-Web themselves), and the gRPC-Web errors this server
//! answers on its own.

use std::{net::SocketAddr, time::Duration};

use axum::body::Body;
use http::{HeaderValue, Request, Response, StatusCode, Version, header};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use popug_runtime::Service;

/// The pooled HTTP/1.1 client calls go out through.
pub(crate) type HttpClient = Client<HttpConnector, Body>;

/// A client with keep-alive connections to the services.
pub(crate) fn client() -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(Duration::from_secs(5)));
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build(connector)
}

/// Headers about one connection, never forwarded (RFC 9110, 7.6.1).
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// gRPC status codes this server answers with.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Code {
    /// UNIMPLEMENTED: no single service serves the path.
    Unimplemented = 12,
    /// UNAVAILABLE: the service could not be reached.
    Unavailable = 14,
}

/// Sends `request` to `service` at `upstream` as `path`; the answer comes
/// back as the service gave it. `peer` is added to `x-forwarded-for`.
pub(crate) async fn forward(
    client: &HttpClient,
    service: Service,
    upstream: &url::Url,
    path: &str,
    peer: Option<SocketAddr>,
    request: Request<Body>,
) -> Response<Body> {
    let (mut parts, body) = request.into_parts();
    let query = parts
        .uri
        .query()
        .map(|query| format!("?{query}"))
        .unwrap_or_default();
    let target = format!("{}{path}{query}", upstream.as_str().trim_end_matches('/'));
    let Ok(uri) = target.parse() else {
        return grpc_error(Code::Unimplemented, "not a gRPC method path");
    };
    parts.uri = uri;
    parts.version = Version::HTTP_11;
    for name in HOP_BY_HOP {
        parts.headers.remove(name);
    }
    // The client sets the service's own host.
    parts.headers.remove(header::HOST);
    if let Some(peer) = peer {
        let forwarded = match parts
            .headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
        {
            Some(earlier) => format!("{earlier}, {}", peer.ip()),
            None => peer.ip().to_string(),
        };
        if let Ok(value) = HeaderValue::from_str(&forwarded) {
            parts.headers.insert("x-forwarded-for", value);
        }
    }
    match client.request(Request::from_parts(parts, body)).await {
        Ok(response) => {
            let (mut parts, body) = response.into_parts();
            for name in HOP_BY_HOP {
                parts.headers.remove(name);
            }
            Response::from_parts(parts, Body::new(body))
        }
        Err(error) => {
            tracing::warn!(%service, %upstream, error = %error, "a service is unreachable");
            grpc_error(
                Code::Unavailable,
                &format!("{service}-svc is unreachable at {upstream}"),
            )
        }
    }
}

/// A gRPC-Web answer with no message, only a status (a "trailers-only"
/// response), so the browser's client reports the code and the message.
pub(crate) fn grpc_error(code: Code, message: &str) -> Response<Body> {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc-web+proto"),
    );
    headers.insert("grpc-status", HeaderValue::from(code as u16));
    if let Ok(value) = HeaderValue::from_str(&percent_encode(message)) {
        headers.insert("grpc-message", value);
    }
    response
}

/// `grpc-message` is percent-encoded: every byte outside printable ASCII,
/// and `%` itself.
fn percent_encode(message: &str) -> String {
    message
        .bytes()
        .map(|byte| match byte {
            b' '..=b'~' if byte != b'%' => char::from(byte).to_string(),
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_percent_encoded() {
        assert_eq!(percent_encode("50% down: é"), "50%25 down: %C3%A9");
    }
}
