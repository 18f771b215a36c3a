//! The state every handler shares.

use std::fmt;
use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::Response;

use super::backend::{AdminBackend, BackendError};
use super::clock::Clock;
use super::config::WebConfig;
use super::layout;
use super::model::Paging;
use super::throttle::LoginPolicy;

/// The handlers' state: the backend, the settings and what is derived from them once.
pub(crate) struct App<B> {
    pub backend: Arc<B>,
    pub config: WebConfig,
    pub clock: Arc<dyn Clock>,
    pub policy: LoginPolicy,
    /// Logins run one at a time: the read-modify-write of failure counts stays exact under
    /// parallel attempts, and argon2's memory cost is paid once at a time.
    pub login_gate: tokio::sync::Mutex<()>,
    /// An argon2id hash of a random password, verified for unknown users so that a login
    /// takes as long whether the user exists or not.
    pub dummy_hash: String,
    /// Host header values accepted (lowercase).
    pub allowed_hosts: Vec<String>,
    /// The origin fixed by the configuration, if any.
    pub fixed_origin: Option<String>,
}

impl<B> fmt::Debug for App<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("App")
            .field("config", &self.config)
            .field("allowed_hosts", &self.allowed_hosts)
            .finish_non_exhaustive()
    }
}

/// The shared state as axum holds it.
pub(crate) type AppState<B> = Arc<App<B>>;

impl<B: AdminBackend> App<B> {
    /// Now, from the configured clock.
    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// The slice of a list that page `page` (1-based) shows.
    pub fn paging(&self, page: u64) -> Paging {
        Paging {
            offset: (page - 1).saturating_mul(u64::from(self.config.page_size)),
            limit: self.config.page_size,
        }
    }
}

/// The error page for a backend error (an `Invalid` outside a form is a 400 page).
pub(crate) fn backend_error_page(error: &BackendError) -> Response {
    let status = match error {
        BackendError::NotFound(_) => StatusCode::NOT_FOUND,
        BackendError::Invalid { .. } => StatusCode::BAD_REQUEST,
        BackendError::Conflict(_) => StatusCode::CONFLICT,
        BackendError::Unavailable(_) => {
            tracing::warn!(error = %error, "admin web: backend unavailable");
            StatusCode::SERVICE_UNAVAILABLE
        }
    };
    layout::error_page(status, &error.to_string())
}
