//! The page shell (head, navigation, logout form), error pages, notices and the small
//! pieces every page uses. maud escapes every interpolated string; the only markup
//! inserted unescaped is SVG this module family builds itself.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

use super::form::FieldErrors;
use super::session::AdminSession;
use super::timefmt::{format_age, format_in_zone, format_utc};

/// Where the stylesheet is served.
pub const CSS_PATH: &str = "/static/admin.css";

/// The navigation entries: (path, label).
const NAV: [(&str, &str); 6] = [
    ("/", "Dashboard"),
    ("/locks", "Locks"),
    ("/guests", "Guests"),
    ("/grants", "Grants"),
    ("/audit", "Audit log"),
    ("/alerts", "Alerts"),
];

/// An HTML response with `status`.
pub fn html_response(status: StatusCode, markup: Markup) -> Response {
    (status, Html(markup.into_string())).into_response()
}

/// A 303 redirect (after a POST, or to the login page).
pub fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            meta name="referrer" content="no-referrer";
            title { (title) " · Latchkey issuer" }
            link rel="stylesheet" href=(CSS_PATH);
        }
    }
}

/// A page of the logged-in operator: navigation (`active` is the current path), the user's
/// name and the logout form.
pub fn page(session: &AdminSession, active: &str, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                header.top {
                    a.brand href="/" { "Latchkey issuer" }
                    nav {
                        @for (path, label) in NAV {
                            @if path == active {
                                a.active href=(path) aria-current="page" { (label) }
                            } @else {
                                a href=(path) { (label) }
                            }
                        }
                    }
                    form.logout method="post" action="/logout" {
                        (csrf_field(session))
                        span.user { (session.user) }
                        button type="submit" { "Log out" }
                    }
                }
                main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// A page without navigation (login, errors before login).
pub fn bare_page(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body.bare {
                main.narrow {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// The hidden CSRF field every POST form carries.
pub fn csrf_field(session: &AdminSession) -> Markup {
    html! { input type="hidden" name="csrf" value=(session.csrf_token.as_str()); }
}

/// An error page: `message` says what went wrong and what to do.
pub fn error_page(status: StatusCode, message: &str) -> Response {
    let title = status.canonical_reason().unwrap_or("Error");
    html_response(
        status,
        bare_page(
            title,
            html! {
                p.error { (message) }
                p { a href="/" { "Back to the dashboard" } }
            },
        ),
    )
}

/// A success or error banner.
pub fn notice(text: &str, error: bool) -> Markup {
    html! {
        @if error {
            p.notice.error role="alert" { (text) }
        } @else {
            p.notice.ok role="status" { (text) }
        }
    }
}

/// The messages a redirect after an action may ask for (`?notice=…`). Fixed texts only: the
/// query string never puts its own text on the page.
pub fn notice_text(code: Option<&str>) -> Option<&'static str> {
    Some(match code? {
        "grant-revoked" => "Grant revoked; its revocation is being published to the lock.",
        "guest-revoked" => "Guest revoked, with every live grant of it.",
        "access-saved" => "Access saved.",
        "access-removed" => "Access removed.",
        "alert-acknowledged" => "Alert acknowledged.",
        "logged-out" => "You are logged out.",
        "session-expired" => "Your session expired; log in again.",
        _ => return None,
    })
}

/// A short form of a 16-byte id for tables (the full one is in the `title`).
pub fn short_id(id: &impl std::fmt::Display) -> Markup {
    let full = id.to_string();
    let short: String = full.chars().take(8).collect();
    html! { code title=(full) { (short) "…" } }
}

/// The "entries a–b of n" line and the Newer/Older links of a paged list. `link(page)`
/// builds the URL of another page with the current filters.
pub fn pager(page: u64, page_size: u32, total: u64, link: impl Fn(u64) -> String) -> Markup {
    let size = u64::from(page_size);
    let first = (page - 1).saturating_mul(size);
    let last = first.saturating_add(size).min(total);
    let pages = total.div_ceil(size).max(1);
    html! {
        nav.pager aria-label="pages" {
            @if total == 0 {
                span { "No entries." }
            } @else if first >= total {
                span { "Page " (page) " is past the end (" (total) " entries)." }
            } @else {
                span { "Entries " (first + 1) "–" (last) " of " (total) " · page " (page) " of " (pages) }
            }
            @if page > 1 {
                a href=(link(page - 1)) rel="prev" { "← Previous" }
            }
            @if last < total {
                a href=(link(page + 1)) rel="next" { "Next →" }
            }
        }
    }
}

/// The message for `field`, next to it in a form.
pub fn field_error(errors: &FieldErrors, field: &str) -> Markup {
    html! {
        @if let Some(message) = errors.get(field) {
            span.field-error role="alert" { (message) }
        }
    }
}

/// Every message not shown next to a field of its own (`except`), as a list of lines.
pub fn error_lines(errors: &FieldErrors, except: &[&str]) -> Markup {
    html! {
        @for (field, message) in errors.iter().filter(|(f, _)| !except.contains(f)) {
            p.error role="alert" { (field) ": " (message) }
        }
    }
}

/// A page that shows a list: 200, or 400 when its query string had errors (shown on it).
pub fn list_page(
    session: &AdminSession,
    active: &str,
    title: &str,
    errors: &FieldErrors,
    body: Markup,
) -> Response {
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    html_response(status, page(session, active, title, body))
}

/// The IANA time zone of each lock, for showing times at a lock.
pub type Zones = std::collections::BTreeMap<latchkey::LockId, String>;

/// The zones of `locks`.
pub fn zones(locks: &[super::model::LockView]) -> Zones {
    locks
        .iter()
        .map(|l| (l.lock_id, l.timezone.clone()))
        .collect()
}

/// A time in UTC and, when it concerns a lock outside UTC, at the lock's wall clock below.
pub fn lock_time(ms: u64, zone: Option<&str>) -> Markup {
    html! {
        (format_utc(ms))
        @if let Some(local) = zone.and_then(|z| format_in_zone(ms, z)) {
            br;
            span.hint.local title=(zone.unwrap_or_default()) { (local) " at the lock" }
        }
    }
}

/// "5 min ago", with the exact UTC time as its tooltip.
pub fn age(ms: u64, now: u64) -> Markup {
    html! { span title=(format_utc(ms)) { (format_age(ms, now)) } }
}

/// A list table's header row.
pub fn table_head(headers: &[&str]) -> Markup {
    html! { thead { tr { @for h in headers { th { (h) } } } } }
}
