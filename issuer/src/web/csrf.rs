//! Cross-site request forgery defences, in depth:
//! 1. every POST must come from these pages: `Sec-Fetch-Site: same-origin` when the browser
//!    sends it, and an `Origin` equal to this site's when it is not `null`; a POST with
//!    neither is refused ([`check_origin`], a middleware on every route);
//! 2. every form of a logged-in operator carries the session's CSRF token in a hidden field,
//!    compared in constant time ([`AuthedForm`]); the login form carries a token bound to a
//!    short-lived cookie (double submit), so a forged login cannot plant a session either;
//! 3. the session cookie is `SameSite=Strict`, and GET never changes state.

use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use subtle::ConstantTimeEq;

use super::app::AppState;
use super::backend::AdminBackend;
use super::form::Fields;
use super::layout;
use super::session::AdminSession;

/// Whether the submitted token equals the expected one, in time independent of where they
/// differ.
pub(crate) fn tokens_match(sent: &str, expected: &str) -> bool {
    !expected.is_empty()
        && sent.len() == expected.len()
        && bool::from(sent.as_bytes().ct_eq(expected.as_bytes()))
}

/// Why a state-changing request is refused as cross-site, if it is.
pub(crate) fn cross_site_reason(
    headers: &HeaderMap,
    fixed_origin: Option<&str>,
    https: bool,
) -> Option<&'static str> {
    let fetch_site = headers.get("sec-fetch-site").map(|v| v.as_bytes());
    if let Some(site) = fetch_site
        && site != b"same-origin"
    {
        return Some("Sec-Fetch-Site is not same-origin");
    }
    // `Origin: null` is what a browser sends under `Referrer-Policy: no-referrer`.
    let origin = headers
        .get(header::ORIGIN)
        .map(|v| v.as_bytes())
        .filter(|o| *o != b"null");
    match origin {
        Some(origin) => {
            let expected = match fixed_origin {
                Some(fixed) => fixed.to_owned(),
                None => {
                    let host = headers
                        .get(header::HOST)
                        .and_then(|h| h.to_str().ok())
                        .unwrap_or("");
                    let scheme = if https { "https" } else { "http" };
                    format!("{scheme}://{}", host.to_ascii_lowercase())
                }
            };
            (!origin.eq_ignore_ascii_case(expected.as_bytes())).then_some("Origin is another site")
        }
        None if fetch_site.is_none() => Some("neither Origin nor Sec-Fetch-Site was sent"),
        None => None,
    }
}

/// Middleware: refuses a cross-site state-changing request with 403.
pub(crate) async fn check_origin<B: AdminBackend>(
    State(app): State<AppState<B>>,
    request: Request,
    next: Next,
) -> Response {
    let safe = matches!(*request.method(), Method::GET | Method::HEAD);
    if !safe
        && let Some(reason) = cross_site_reason(
            request.headers(),
            app.fixed_origin.as_deref(),
            app.config.served_over_https,
        )
    {
        tracing::warn!(path = %request.uri().path(), reason, "admin web: cross-site request refused");
        return layout::error_page(
            StatusCode::FORBIDDEN,
            "This request did not come from the admin pages and was refused (cross-site \
             request). Open the admin web directly and submit the form again.",
        );
    }
    next.run(request).await
}

/// Reads a urlencoded form body of at most `limit` bytes.
pub(crate) async fn read_form(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Fields, Response> {
    let urlencoded = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .starts_with("application/x-www-form-urlencoded")
        });
    if !urlencoded {
        return Err(layout::error_page(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Forms must be sent as application/x-www-form-urlencoded.",
        ));
    }
    match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => Ok(Fields::parse(&bytes)),
        Err(_) => Err(layout::error_page(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("The form is larger than {limit} bytes and was refused."),
        )),
    }
}

/// The page for a missing or wrong CSRF token.
pub(crate) fn bad_token_page() -> Response {
    layout::error_page(
        StatusCode::FORBIDDEN,
        "The form's security token is missing or out of date (the page was open across a \
         login, or the request was forged). Reload the page and submit it again.",
    )
}

/// A form submitted by the logged-in operator, its CSRF token checked.
#[derive(Debug)]
pub struct AuthedForm {
    /// The operator.
    pub session: AdminSession,
    /// The fields (the `csrf` field included).
    pub fields: Fields,
}

impl<B: AdminBackend> FromRequest<AppState<B>> for AuthedForm {
    type Rejection = Response;

    async fn from_request(request: Request, app: &AppState<B>) -> Result<Self, Response> {
        let (mut parts, body) = request.into_parts();
        let session = AdminSession::from_request_parts(&mut parts, app).await?;
        let fields = read_form(&parts.headers, body, app.config.body_limit_bytes).await?;
        if !tokens_match(fields.get_raw("csrf").unwrap_or(""), &session.csrf_token) {
            tracing::warn!(user = %session.user, path = %parts.uri.path(), "admin web: CSRF token missing or wrong");
            return Err(bad_token_page());
        }
        Ok(AuthedForm { session, fields })
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn tokens_match_only_when_equal_and_non_empty() {
        assert!(tokens_match("abcd", "abcd"));
        assert!(!tokens_match("abce", "abcd"));
        assert!(!tokens_match("abc", "abcd"));
        assert!(!tokens_match("", ""));
    }

    #[test]
    fn same_origin_requests_pass() {
        let ok = [
            headers(&[
                ("sec-fetch-site", "same-origin"),
                ("origin", "null"),
                ("host", "127.0.0.1:8080"),
            ]),
            headers(&[
                ("origin", "http://127.0.0.1:8080"),
                ("host", "127.0.0.1:8080"),
            ]),
            headers(&[("sec-fetch-site", "same-origin")]),
        ];
        for h in ok {
            assert_eq!(cross_site_reason(&h, None, false), None, "{h:?}");
        }
    }

    #[test]
    fn cross_site_or_unlabelled_requests_are_refused() {
        let refused = [
            headers(&[
                ("sec-fetch-site", "cross-site"),
                ("origin", "http://127.0.0.1:8080"),
                ("host", "127.0.0.1:8080"),
            ]),
            headers(&[("sec-fetch-site", "same-site")]),
            headers(&[
                ("origin", "http://evil.example"),
                ("host", "127.0.0.1:8080"),
            ]),
            headers(&[
                ("origin", "https://127.0.0.1:8080"),
                ("host", "127.0.0.1:8080"),
            ]),
            headers(&[("origin", "null"), ("host", "127.0.0.1:8080")]),
            headers(&[("host", "127.0.0.1:8080")]),
        ];
        for h in refused {
            assert!(cross_site_reason(&h, None, false).is_some(), "{h:?}");
        }
    }

    #[test]
    fn a_configured_public_origin_is_what_origin_must_equal() {
        let h = headers(&[
            ("origin", "https://admin.example"),
            ("host", "127.0.0.1:8080"),
        ]);
        assert_eq!(
            cross_site_reason(&h, Some("https://admin.example"), true),
            None
        );
        assert!(cross_site_reason(&h, None, true).is_some());
    }
}
