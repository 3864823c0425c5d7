//! The built web app: served from a directory, any unknown path answered
//! with `index.html` (the app routes by path), every answer with headers
//! that keep the page to its own origin.

use std::{convert::Infallible, path::PathBuf};

use axum::body::Body;
use http::{HeaderValue, Request, Response, StatusCode, header};
use tower::ServiceExt as _;
use tower_http::services::{ServeDir, ServeFile};

pub use crate::assets_build::{BuildError, ensure_built, source_dir};

/// What web-svc serves as pages.
#[derive(Debug, Clone)]
pub enum Assets {
    /// A built app: a directory holding `index.html`.
    Built(PathBuf),
    /// No app to serve, and why; calls are still routed.
    Missing(String),
}

impl Assets {
    /// The directory `dir` if it holds a built app, else why not.
    pub fn from_dir(dir: PathBuf) -> Self {
        if dir.join("index.html").is_file() {
            Assets::Built(dir)
        } else {
            Assets::Missing(format!(
                "{} holds no built web app (index.html); build it with `npm ci && npm run build` in web/",
                dir.display()
            ))
        }
    }
}

/// The page's own origin only: no inline script, no other host.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// Answers a request for a page or an asset.
pub(crate) async fn serve(assets: &Assets, request: Request<Body>) -> Response<Body> {
    let mut response = match assets {
        Assets::Built(dir) => {
            let service = ServeDir::new(dir).fallback(ServeFile::new(dir.join("index.html")));
            let served: Result<_, Infallible> = service.oneshot(request).await;
            match served {
                Ok(response) => response.map(Body::new),
                Err(never) => match never {},
            }
        }
        Assets::Missing(reason) => {
            let mut response = Response::new(Body::from(format!(
                "<!doctype html><meta charset=utf-8><title>popug</title>\
                 <h1>The popug web app is not available</h1><p>{}</p>\
                 <p>The services still answer gRPC-Web calls here.</p>",
                escape(reason)
            )));
            *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            response
        }
    };
    let headers = response.headers_mut();
    // Files keep their names across builds: always revalidate.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
