//! The routes. GET only reads; every change is a POST that passes the Host check, the
//! cross-site check and (inside [`AuthedForm`](super::csrf::AuthedForm)) the session's CSRF
//! token. Layers, outermost first: security headers, Host check, Origin check.

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::app::AppState;
use super::backend::AdminBackend;
use super::csrf::check_origin;
use super::headers::{check_host, security_headers};
use super::layout::{CSS_PATH, error_page};
use super::pages::{alerts, audit, dashboard, grants, guests, locks, login};

/// The stylesheet, compiled in.
const STYLESHEET: &str = include_str!("admin.css");

/// The router over `app`.
pub(crate) fn build<B: AdminBackend>(app: AppState<B>) -> Router {
    Router::new()
        .route("/", get(dashboard::show::<B>))
        .route("/login", get(login::show::<B>).post(login::submit::<B>))
        .route("/logout", post(login::logout::<B>))
        .route("/locks", get(locks::list::<B>))
        .route("/guests", get(guests::list::<B>).post(guests::enroll::<B>))
        .route("/guests/new", get(guests::new_form::<B>))
        .route("/guests/{id}", get(guests::show::<B>))
        .route("/guests/{id}/access", post(guests::set_access::<B>))
        .route(
            "/guests/{id}/access/remove",
            post(guests::remove_access::<B>),
        )
        .route("/guests/{id}/rotate-key", post(guests::rotate_key::<B>))
        .route("/guests/{id}/revoke", post(guests::revoke::<B>))
        .route("/grants", get(grants::list::<B>))
        .route("/grants/{id}/revoke", post(grants::revoke::<B>))
        .route("/audit", get(audit::list::<B>))
        .route("/alerts", get(alerts::list::<B>))
        .route("/alerts/{id}/acknowledge", post(alerts::acknowledge::<B>))
        .route(CSS_PATH, get(stylesheet))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(from_fn_with_state(app.clone(), check_origin::<B>))
        .layer(from_fn_with_state(app.clone(), check_host::<B>))
        .layer(from_fn(security_headers))
        .with_state(app)
}

async fn stylesheet() -> Response {
    let mut response = STYLESHEET.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    // Not secret, and the same for everyone: the only response that may be cached.
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    response
}

async fn not_found() -> Response {
    error_page(StatusCode::NOT_FOUND, "There is no such page.")
}

async fn method_not_allowed() -> Response {
    error_page(
        StatusCode::METHOD_NOT_ALLOWED,
        "This page does not take that kind of request (pages are read with GET; actions are \
         forms sent with POST).",
    )
}
