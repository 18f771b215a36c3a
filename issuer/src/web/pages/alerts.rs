//! Anomaly alerts: `GET /alerts?show=open|all&page=` and `POST /alerts/{id}/acknowledge`.

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};

use super::{backend, link, query};
use crate::web::app::AppState;
use crate::web::backend::AdminBackend;
use crate::web::csrf::AuthedForm;
use crate::web::form::{self, FieldErrors};
use crate::web::layout::{
    age, csrf_field, error_lines, error_page, list_page, notice, notice_text, pager, see_other,
    short_id, table_head,
};
use crate::web::model::{AlertQuery, AlertView};
use crate::web::session::AdminSession;
use crate::web::timefmt::format_utc;

/// Longest alert id accepted in a URL.
const MAX_ALERT_ID: usize = 64;

fn severity_class(severity: &str) -> &'static str {
    match severity {
        "critical" | "high" => "alarm",
        "medium" => "warn",
        "low" => "unknown",
        _ => "unknown",
    }
}

/// Whether `id` can be an alert id (letters, digits, `-`, `_`; 1..=64 bytes).
fn valid_alert_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ALERT_ID
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The alerts table; open alerts get an Acknowledge button.
pub(crate) fn alerts_table(session: &AdminSession, alerts: &[AlertView], now: u64) -> Markup {
    html! {
        @if alerts.is_empty() {
            p { "No alert." }
        } @else {
            table.list {
                (table_head(&["Raised", "Severity", "Kind", "Score", "Lock", "Guest", "Detail", ""]))
                tbody {
                    @for a in alerts {
                        tr {
                            td { (age(a.at_ms, now)) }
                            td { span class=(format!("badge {}", severity_class(&a.severity))) { (a.severity) } }
                            td { (a.kind) }
                            td { (format!("{:.2}", a.score)) }
                            td { @if let Some(id) = a.lock_id { (short_id(&id)) } }
                            td { @if let Some(id) = a.guest_id { a href=(format!("/guests/{id}")) { (short_id(&id)) } } }
                            td.detail { (a.detail) }
                            td.actions {
                                @match (a.acknowledged_at_ms, &a.acknowledged_by) {
                                    (Some(ms), by) => span.hint title=(format_utc(ms)) {
                                        "acknowledged" @if let Some(by) = by { " by " (by) }
                                    },
                                    (None, _) => {
                                        @if valid_alert_id(&a.alert_id) {
                                            form.inline method="post" action=(format!("/alerts/{}/acknowledge", a.alert_id)) {
                                                (csrf_field(session))
                                                button type="submit" { "Acknowledge" }
                                            }
                                        }
                                    },
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `GET /alerts`.
pub(crate) async fn list<B: AdminBackend>(
    State(app): State<AppState<B>>,
    session: AdminSession,
    RawQuery(raw): RawQuery,
) -> Result<Response, Response> {
    let now = app.now_ms();
    let fields = query(raw.as_deref());
    let mut errors = FieldErrors::default();
    let show_all = match fields.get("show") {
        None | Some("open") => false,
        Some("all") => true,
        Some(_) => {
            errors.add("show", "choose open or all");
            false
        }
    };
    let page_no = errors
        .take("page", form::page_number(fields.get("page")))
        .unwrap_or(1);
    let alerts = if errors.is_empty() {
        let q = AlertQuery {
            include_acknowledged: show_all,
        };
        Some(backend(
            app.backend.list_alerts(&q, app.paging(page_no)).await,
        )?)
    } else {
        None
    };
    let show = if show_all { "all" } else { "open" };
    let body = html! {
        @if let Some(text) = notice_text(fields.get("notice")) { (notice(text, false)) }
        nav.tabs {
            a.active[!show_all] href="/alerts" { "Open" }
            a.active[show_all] href="/alerts?show=all" { "All" }
        }
        (error_lines(&errors, &[]))
        @if let Some(alerts) = &alerts {
            (alerts_table(&session, &alerts.items, now))
            (pager(page_no, app.config.page_size, alerts.total, |p| link("/alerts", &[("show", show.to_owned()), ("page", p.to_string())])))
        }
    };
    Ok(list_page(&session, "/alerts", "Alerts", &errors, body))
}

/// `POST /alerts/{id}/acknowledge`.
pub(crate) async fn acknowledge<B: AdminBackend>(
    State(app): State<AppState<B>>,
    Path(id): Path<String>,
    form: AuthedForm,
) -> Result<Response, Response> {
    let session = form.session;
    if !valid_alert_id(&id) {
        return Err(error_page(
            StatusCode::NOT_FOUND,
            "There is no alert with that id.",
        ));
    }
    backend(app.backend.acknowledge_alert(&session.user, &id).await)?;
    tracing::info!(user = %session.user, alert = %id, "admin web: alert acknowledged");
    Ok(see_other("/alerts?notice=alert-acknowledged"))
}
