//! # The issuer's admin web interface
//!
//! Server-rendered HTML (maud, escaped by construction) over axum, without any JavaScript:
//! links and forms only. Pages: dashboard (counts, an SVG chart of unlocks and rejections
//! per hour over 24 h and per day over 30 days, open alerts, latest audit records), locks
//! (time zone, last seen, health), guests (enroll → the bundle shown once as a QR code and
//! text; access rules; key rotation; revocation), grants (live and past; revoke), the audit
//! log (filters, paging) and alerts (acknowledge).
//!
//! The web layer holds no state of its own: it reads and acts through an
//! [`AdminBackend`], which the daemon implements over its registry. Tests use
//! `testing::FakeBackend` (feature `web-fake`).
//!
//! Security model (see `docs/admin-web.md`):
//! - listens on `127.0.0.1:8080` by default; a non-loopback address needs
//!   [`WebConfig::served_over_https`] (a TLS-terminating proxy in front); the Host header
//!   must name this server (DNS rebinding);
//! - argon2id passwords ([`crate::password`]); failed logins counted per account, which is then
//!   locked for a while, with one generic answer for every failure ([`throttle`]);
//! - session cookie: 256 random bits from the OS, stored as SHA-256, `HttpOnly`,
//!   `SameSite=Strict`, `Path=/` (`Secure` + `__Host-` behind HTTPS), idle timeout and
//!   absolute lifetime, new at every login, deleted at logout;
//! - CSRF: session token in every POST form (constant-time check), `Sec-Fetch-Site` /
//!   `Origin` check on every POST, GET never changes state;
//! - headers: a CSP without script, `frame-ancestors 'none'`, `nosniff`, `no-referrer`,
//!   `Cache-Control: no-store`;
//! - every field validated, errors shown in the form; bodies limited in size; every action
//!   passed to the backend with the operator's name.

// The error side of the handlers' `Result<Response, Response>` is the HTTP answer itself (an
// error page or a redirect), built once per request: boxing it would only add an allocation.
#![allow(clippy::result_large_err)]

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use tokio::net::TcpListener;

mod app;
mod backend;
mod chart;
mod clock;
mod config;
mod csrf;
mod form;
mod headers;
mod health;
mod layout;
mod model;
mod pages;
mod router;
mod session;
pub mod throttle;
mod timefmt;

#[cfg(any(test, feature = "web-fake"))]
pub mod testing;

#[cfg(test)]
mod tests;

pub use crate::password::{hash_password, verify_password};
pub use backend::{AdminBackend, BackendError};
pub use clock::{Clock, SystemClock};
pub use config::{DEFAULT_WEB_LISTEN, WebConfig, WebError};
pub use headers::CONTENT_SECURITY_POLICY;
pub use model::{
    AccessSpec, AccessView, ActivityBucket, AdminEvent, AdminEventKind, AdminUser, AlertQuery,
    AlertView, AuditEntry, AuditFilter, AuditSource, EnrollGuest, Enrollment, GrantQuery,
    GrantState, GrantView, GuestQuery, GuestView, LockStatusView, LockView, LoginState, Overview,
    Page, Paging, RevokedGuest, Role, SessionRecord,
};

use app::App;
use throttle::LoginPolicy;

/// The admin web over a backend: build it, then take its [`router`](Self::router) or
/// [`serve`](Self::serve) it.
#[derive(Debug)]
pub struct AdminWeb<B> {
    backend: Arc<B>,
    config: WebConfig,
    clock: Arc<dyn Clock>,
    dummy_hash: String,
}

impl<B: AdminBackend> AdminWeb<B> {
    /// Checks `config` and prepares the server (one argon2 hash: ~20 ms).
    pub fn new(backend: Arc<B>, config: WebConfig) -> Result<Self, WebError> {
        config.validate()?;
        let mut filler = [0u8; 24];
        getrandom::fill(&mut filler).map_err(|e| WebError::Password(e.to_string()))?;
        let dummy_hash = hash_password(&hex::encode(filler))?;
        Ok(Self {
            backend,
            config,
            clock: Arc::new(SystemClock),
            dummy_hash,
        })
    }

    /// Uses `clock` instead of the system clock (tests).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The settings.
    pub fn config(&self) -> &WebConfig {
        &self.config
    }

    /// The router, accepting the Host names of the configured listen address.
    pub fn router(&self) -> Router {
        self.router_bound_to(self.config.listen)
    }

    /// The router, accepting the Host names of the address actually bound (port 0 resolved).
    pub fn router_bound_to(&self, bound: SocketAddr) -> Router {
        let config = &self.config;
        let ms = |d: std::time::Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let app = App {
            backend: Arc::clone(&self.backend),
            config: config.clone(),
            clock: Arc::clone(&self.clock),
            policy: LoginPolicy {
                max_failures: config.login_max_failures,
                window_ms: ms(config.login_failure_window),
                lockout_ms: ms(config.login_lockout),
            },
            login_gate: tokio::sync::Mutex::new(()),
            dummy_hash: self.dummy_hash.clone(),
            allowed_hosts: config.allowed_hosts(bound),
            fixed_origin: config.fixed_origin(),
        };
        router::build(Arc::new(app))
    }

    /// Binds the configured address.
    pub async fn bind(&self) -> Result<TcpListener, WebError> {
        let addr = self.config.listen;
        TcpListener::bind(addr)
            .await
            .map_err(|source| WebError::Bind { addr, source })
    }

    /// Serves on `listener` until `shutdown` completes (then finishes the requests in
    /// flight).
    pub async fn serve(
        &self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), WebError> {
        let bound = listener.local_addr().map_err(WebError::Serve)?;
        let router = self.router_bound_to(bound);
        tracing::info!(%bound, "admin web listening");
        axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(WebError::Serve)
    }
}
