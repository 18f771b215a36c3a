//! The pages, one file each. Handlers return `Result<Response, Response>`: the error side is
//! an error page or a redirect, never a bare status.

use std::str::FromStr;

use axum::http::StatusCode;
use axum::response::Response;

use super::app::backend_error_page;
use super::backend::BackendError;
use super::form::Fields;
use super::layout::error_page;

pub(crate) mod alerts;
pub(crate) mod audit;
pub(crate) mod dashboard;
pub(crate) mod grants;
pub(crate) mod guests;
pub(crate) mod locks;
pub(crate) mod login;

/// A backend result, its error turned into the error page.
pub(crate) fn backend<T>(result: Result<T, BackendError>) -> Result<T, Response> {
    result.map_err(|e| backend_error_page(&e))
}

/// The identifier in a URL path, or the 404 page naming `what` it should have been.
pub(crate) fn id_or_404<T: FromStr>(text: &str, what: &str) -> Result<T, Response> {
    text.parse().map_err(|_| {
        error_page(
            StatusCode::NOT_FOUND,
            &format!("There is no {what} with that id ({what} ids are 32 lowercase hex digits)."),
        )
    })
}

/// The query string's fields.
pub(crate) fn query(raw: Option<&str>) -> Fields {
    Fields::parse(raw.unwrap_or("").as_bytes())
}

/// `path?k=v&…` with the non-empty pairs, urlencoded.
pub(crate) fn link(path: &str, pairs: &[(&str, String)]) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs.iter().filter(|(_, v)| !v.is_empty()) {
        query.append_pair(k, v);
    }
    let query = query.finish();
    if query.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{query}")
    }
}
