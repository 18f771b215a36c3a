//! `GET /locks`: every lock with its time zone, when it was last heard from and its health.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;

use super::backend;
use crate::web::app::AppState;
use crate::web::backend::AdminBackend;
use crate::web::health::lock_health;
use crate::web::layout::{age, html_response, page, table_head};
use crate::web::session::AdminSession;
use crate::web::timefmt::format_age;

pub(crate) async fn list<B: AdminBackend>(
    State(app): State<AppState<B>>,
    session: AdminSession,
) -> Result<Response, Response> {
    let now = app.now_ms();
    let locks = backend(app.backend.list_locks().await)?;
    let offline_ms = u64::try_from(app.config.lock_offline_after.as_millis()).unwrap_or(u64::MAX);
    let body = html! {
        @if locks.is_empty() {
            p { "No lock is registered yet. Register one with " code { "latchkey-issuer add-lock" } "." }
        } @else {
            table.list {
                (table_head(&["Name", "Lock id", "Time zone", "Last seen", "Health", "Status", ""]))
                tbody {
                    @for lock in &locks {
                        @let health = lock_health(lock, now, offline_ms);
                        @let (class, label) = health.badge();
                        tr {
                            td { (lock.name) }
                            td { code { (lock.lock_id) } }
                            td { (lock.timezone) }
                            td {
                                @match lock.last_seen_ms {
                                    Some(ms) => (age(ms, now)),
                                    None => "never",
                                }
                            }
                            td {
                                span class=(format!("badge {class}")) title=(health.findings().join("; ")) { (label) }
                                @for finding in health.findings() {
                                    div.finding { (finding) }
                                }
                            }
                            td.status {
                                @if let Some(s) = &lock.status {
                                    @match s.battery_pct {
                                        Some(pct) => { "battery " (pct) "% · " },
                                        None => {},
                                    }
                                    @if s.mains_power { "mains · " }
                                    (s.sessions) " sessions · " (s.revocations) " revocations · up " (format_age(0, u64::from(s.uptime_s) * 1000).trim_end_matches(" ago"))
                                } @else {
                                    "no status yet"
                                }
                            }
                            td.actions {
                                a href=(super::link("/grants", &[("lock", lock.lock_id.to_string())])) { "grants" }
                                " "
                                a href=(super::link("/audit", &[("lock", lock.lock_id.to_string())])) { "audit" }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(html_response(
        StatusCode::OK,
        page(&session, "/locks", "Locks", body),
    ))
}
