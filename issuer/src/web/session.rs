//! Sessions: a 256-bit random token from the OS in an `HttpOnly; SameSite=Strict; Path=/`
//! cookie (`Secure` and the `__Host-` prefix behind HTTPS), stored only as its SHA-256, with
//! an idle timeout and an absolute lifetime. Every page and action extracts an
//! [`AdminSession`]; without a valid one the browser is sent to the login page.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::app::{App, AppState, backend_error_page};
use super::backend::AdminBackend;
use super::config::WebConfig;
use super::layout;
use super::model::SessionRecord;

/// A session's `last_seen_ms` is written at most this often (idle expiry is that coarse).
const TOUCH_INTERVAL_MS: u64 = 60_000;

/// The logged-in operator of a request.
pub struct AdminSession {
    /// The operator's name (passed to every action as the actor).
    pub user: String,
    /// The session's CSRF token, put in every form.
    pub csrf_token: Zeroizing<String>,
    pub(crate) token_sha256: [u8; 32],
}

impl std::fmt::Debug for AdminSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminSession")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// 32 bytes from the operating system's RNG, as 64 hex digits.
pub(crate) fn random_token() -> Result<Zeroizing<String>, Response> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    getrandom::fill(bytes.as_mut_slice()).map_err(|e| {
        tracing::error!(error = %e, "admin web: the OS random number generator failed");
        layout::error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "The operating system's random number generator failed; try again.",
        )
    })?;
    Ok(Zeroizing::new(hex::encode(bytes.as_slice())))
}

/// SHA-256 of a token's text form: what the backend stores.
pub(crate) fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The session cookie's name.
pub(crate) fn session_cookie_name(config: &WebConfig) -> &'static str {
    if config.served_over_https {
        "__Host-lk_session"
    } else {
        "lk_session"
    }
}

/// The login form's anti-CSRF cookie's name.
pub(crate) fn login_cookie_name(config: &WebConfig) -> &'static str {
    if config.served_over_https {
        "__Host-lk_login"
    } else {
        "lk_login"
    }
}

/// A `Set-Cookie` value: `value` for the browser session, or an expired one to delete it.
pub(crate) fn set_cookie(config: &WebConfig, name: &str, value: Option<&str>) -> HeaderValue {
    let secure = if config.served_over_https {
        "; Secure"
    } else {
        ""
    };
    let text = match value {
        Some(v) => format!("{name}={v}; HttpOnly; SameSite=Strict; Path=/{secure}"),
        None => format!("{name}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{secure}"),
    };
    // Names are constants and values hex: always a valid header value.
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The value of cookie `name` in the request, if it looks like a token (64 hex digits).
pub(crate) fn token_cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Sends the browser to the login page and deletes its session cookie.
fn to_login<B>(app: &App<B>, notice: Option<&str>) -> Response {
    let location = match notice {
        Some(n) => format!("/login?notice={n}"),
        None => "/login".to_owned(),
    };
    let mut response = layout::see_other(&location);
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&app.config, session_cookie_name(&app.config), None),
    );
    response
}

/// Whether `session` has ended at `now_ms` (absolute lifetime or idle timeout).
pub(crate) fn has_expired(config: &WebConfig, session: &SessionRecord, now_ms: u64) -> bool {
    let idle_ms = u64::try_from(config.idle_timeout.as_millis()).unwrap_or(u64::MAX);
    now_ms >= session.expires_at_ms || now_ms >= session.last_seen_ms.saturating_add(idle_ms)
}

impl<B: AdminBackend> FromRequestParts<AppState<B>> for AdminSession {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &AppState<B>) -> Result<Self, Response> {
        let Some(token) = token_cookie(&parts.headers, session_cookie_name(&app.config)) else {
            return Err(to_login(app, None));
        };
        let hash = token_hash(token);
        let record = match app.backend.session(hash).await {
            Ok(Some(record)) => record,
            Ok(None) => return Err(to_login(app, None)),
            Err(e) => return Err(backend_error_page(&e)),
        };
        let now = app.now_ms();
        if has_expired(&app.config, &record, now) {
            if let Err(e) = app.backend.delete_session(hash).await {
                return Err(backend_error_page(&e));
            }
            tracing::info!(user = %record.user, "admin web: session expired");
            return Err(to_login(app, Some("session-expired")));
        }
        if now.saturating_sub(record.last_seen_ms) >= TOUCH_INTERVAL_MS
            && let Err(e) = app.backend.touch_session(hash, now).await
        {
            return Err(backend_error_page(&e));
        }
        Ok(AdminSession {
            user: record.user,
            csrf_token: record.csrf_token,
            token_sha256: hash,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_64_hex_digits_and_differ() -> Result<(), Response> {
        let (a, b) = (random_token()?, random_token()?);
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(*a, *b);
        Ok(())
    }

    #[test]
    fn cookies_are_http_only_strict_and_secure_behind_https() {
        let mut config = WebConfig::default();
        let plain = set_cookie(&config, session_cookie_name(&config), Some("ab"));
        assert_eq!(plain, "lk_session=ab; HttpOnly; SameSite=Strict; Path=/");
        config.served_over_https = true;
        let tls = set_cookie(&config, session_cookie_name(&config), Some("ab"));
        assert_eq!(
            tls,
            "__Host-lk_session=ab; HttpOnly; SameSite=Strict; Path=/; Secure"
        );
        let gone = set_cookie(&config, session_cookie_name(&config), None);
        assert!(gone.to_str().is_ok_and(|s| s.contains("Max-Age=0")));
    }

    #[test]
    fn only_a_well_formed_token_cookie_is_read() {
        let good = "a".repeat(64);
        let mut headers = HeaderMap::new();
        let cookie = format!("other=1; lk_session={good}; x=y");
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static("")),
        );
        assert_eq!(token_cookie(&headers, "lk_session"), Some(good.as_str()));
        headers.insert(header::COOKIE, HeaderValue::from_static("lk_session=short"));
        assert_eq!(token_cookie(&headers, "lk_session"), None);
    }

    #[test]
    fn a_session_expires_when_idle_or_at_its_lifetime() {
        let config = WebConfig::default();
        let idle = 30 * 60_000;
        let record = SessionRecord {
            token_sha256: [0; 32],
            user: "a".into(),
            csrf_token: Zeroizing::new(String::new()),
            created_at_ms: 0,
            last_seen_ms: 1_000,
            expires_at_ms: 12 * 3_600_000,
        };
        assert!(!has_expired(&config, &record, 1_000 + idle - 1));
        assert!(has_expired(&config, &record, 1_000 + idle));
        let busy = SessionRecord {
            last_seen_ms: 12 * 3_600_000 - 1,
            ..record
        };
        assert!(has_expired(&config, &busy, 12 * 3_600_000));
    }
}
