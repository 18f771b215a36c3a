//! `GET /`: counts, the activity charts (per hour over 24 h, per day over 30 days), open
//! alerts and the latest audit records.

use axum::extract::State;
use axum::response::Response;
use maud::html;

use super::backend;
use crate::web::app::AppState;
use crate::web::backend::AdminBackend;
use crate::web::chart::{Axis, DAY_MS, HOUR_MS, activity_chart};
use crate::web::layout::{html_response, page, zones};
use crate::web::model::{AlertQuery, AuditFilter, Paging};
use crate::web::session::AdminSession;
use crate::web::timefmt;

pub(crate) async fn show<B: AdminBackend>(
    State(app): State<AppState<B>>,
    session: AdminSession,
) -> Result<Response, Response> {
    let now = app.now_ms();
    let b = &app.backend;
    let overview = backend(b.overview(now).await)?;
    let this_hour = now - now % HOUR_MS;
    let hourly = backend(
        b.activity(this_hour.saturating_sub(23 * HOUR_MS), HOUR_MS, 24)
            .await,
    )?;
    let today = now - now % DAY_MS;
    let daily = backend(
        b.activity(today.saturating_sub(29 * DAY_MS), DAY_MS, 30)
            .await,
    )?;
    let alerts = backend(
        b.list_alerts(
            &AlertQuery::default(),
            Paging {
                offset: 0,
                limit: 5,
            },
        )
        .await,
    )?;
    let recent = backend(
        b.audit(
            &AuditFilter::default(),
            Paging {
                offset: 0,
                limit: 10,
            },
        )
        .await,
    )?;
    let zones = zones(&backend(b.list_locks().await)?);
    let hours = Axis {
        label: timefmt::format_hour,
        label_every: 3,
    };
    let days = Axis {
        label: timefmt::format_day,
        label_every: 5,
    };
    let body = html! {
        section.cards {
            a.card href="/locks" { span.figure { (overview.locks) } span { "locks" } }
            a.card href="/guests" {
                span.figure { (overview.active_guests) }
                span { "active guests (" (overview.guests) " enrolled)" }
            }
            a.card href="/grants" { span.figure { (overview.live_grants) } span { "live grants" } }
            a.card.alerting[overview.open_alerts > 0] href="/alerts" {
                span.figure { (overview.open_alerts) } span { "open alerts" }
            }
        }
        section.charts {
            (activity_chart("Last 24 hours, per hour (UTC)", &hourly, hours))
            (activity_chart("Last 30 days, per day (UTC)", &daily, days))
        }
        section {
            h2 { "Open alerts" }
            (super::alerts::alerts_table(&session, &alerts.items, now))
            p { a href="/alerts" { "All alerts →" } }
        }
        section {
            h2 { "Latest audit records" }
            (super::audit::audit_table(&recent.items, &zones))
            p { a href="/audit" { "Audit log →" } }
        }
    };
    Ok(html_response(
        axum::http::StatusCode::OK,
        page(&session, "/", "Dashboard", body),
    ))
}
