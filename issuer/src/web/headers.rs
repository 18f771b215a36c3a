//! Security headers on every response, and the Host check on every request.
//!
//! The pages use no script at all, so the CSP allows none; styles come only from our own
//! stylesheet (no inline `style`), images only from us or `data:`; forms post only to us;
//! no page may be framed. Nothing is cached (pages show secrets: enrollment bundles, CSRF
//! tokens), except the stylesheet.

use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

use super::app::AppState;
use super::backend::AdminBackend;
use super::layout;

/// The Content-Security-Policy of every response.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; \
     img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Middleware: adds the security headers (and `Cache-Control: no-store` unless the handler
/// set a cache policy, which only the stylesheet does).
pub(crate) async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let fixed: [(HeaderName, &'static str); 7] = [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
        (
            HeaderName::from_static("cross-origin-resource-policy"),
            "same-origin",
        ),
        (
            HeaderName::from_static("permissions-policy"),
            "camera=(), microphone=(), geolocation=(), interest-cohort=()",
        ),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// Middleware: refuses a request whose Host header is not one of ours (421), so that a
/// web page whose DNS name was rebound to 127.0.0.1 cannot talk to the admin web.
pub(crate) async fn check_host<B: AdminBackend>(
    State(app): State<AppState<B>>,
    request: Request,
    next: Next,
) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_ascii_lowercase)
        // HTTP/2 and absolute-form requests carry the host in the URI instead.
        .or_else(|| {
            request
                .uri()
                .authority()
                .map(|a| a.as_str().to_ascii_lowercase())
        });
    let allowed = host
        .as_deref()
        .is_some_and(|h| app.allowed_hosts.iter().any(|a| a == h));
    if !allowed {
        tracing::warn!(host = ?host, "admin web: request for another host refused");
        return layout::error_page(
            StatusCode::MISDIRECTED_REQUEST,
            "This server does not serve that host name. Open the admin web by its configured \
             address (e.g. http://127.0.0.1:8080/).",
        );
    }
    next.run(request).await
}
