//! Grants: `GET /grants?state=live|past|all&lock=&guest=&page=` and
//! `POST /grants/{id}/revoke`.

use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use latchkey::{GrantId, GuestId, LockId};
use maud::{Markup, html};

use super::{backend, id_or_404, link, query};
use crate::web::app::AppState;
use crate::web::backend::AdminBackend;
use crate::web::csrf::AuthedForm;
use crate::web::form::{self, FieldErrors};
use crate::web::layout::{
    Zones, age, csrf_field, error_lines, list_page, lock_time, notice, notice_text, pager,
    see_other, short_id, table_head, zones,
};
use crate::web::model::{GrantQuery, GrantState, GrantView};
use crate::web::session::AdminSession;
use crate::web::timefmt::format_utc;

/// The grants table; live grants get a Revoke button.
pub(crate) fn grants_table(
    session: &AdminSession,
    grants: &[GrantView],
    now: u64,
    zones: &Zones,
) -> Markup {
    html! {
        @if grants.is_empty() {
            p { "No grant." }
        } @else {
            table.list {
                (table_head(&["Grant", "Lock", "Guest", "Issued", "Valid until", "Unlocks", "State", ""]))
                tbody {
                    @for g in grants {
                        @let live = g.is_live(now);
                        tr {
                            td { (short_id(&g.grant_id)) }
                            td { (g.lock_name) }
                            td { a href=(format!("/guests/{}", g.guest_id)) { (g.guest_name) } }
                            td { (age(g.issued_at_s * 1000, now)) }
                            td { (lock_time(g.not_after_s * 1000, zones.get(&g.lock_id).map(String::as_str))) }
                            td {
                                (g.unlocks)
                                @if g.max_unlocks > 0 { " / " (g.max_unlocks) }
                            }
                            td {
                                @if let Some(ms) = g.revoked_at_ms {
                                    span.badge.alarm title=(format_utc(ms)) { "revoked" }
                                } @else if live {
                                    span.badge.ok { "live" }
                                } @else {
                                    span.badge.unknown { "expired" }
                                }
                            }
                            td.actions {
                                @if live {
                                    form.inline method="post" action=(format!("/grants/{}/revoke", g.grant_id)) {
                                        (csrf_field(session))
                                        button.danger type="submit" { "Revoke" }
                                    }
                                }
                                " "
                                a href=(link("/audit", &[("grant", g.grant_id.to_string())])) { "audit" }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `GET /grants`.
pub(crate) async fn list<B: AdminBackend>(
    State(app): State<AppState<B>>,
    session: AdminSession,
    RawQuery(raw): RawQuery,
) -> Result<Response, Response> {
    let now = app.now_ms();
    let fields = query(raw.as_deref());
    let mut errors = FieldErrors::default();
    let state = match fields.get("state") {
        None => Some(GrantState::Live),
        Some(s) => errors.take(
            "state",
            GrantState::parse(s).ok_or_else(|| "choose live, past or all".to_owned()),
        ),
    };
    let lock_id = errors
        .take(
            "lock",
            form::optional_id::<LockId>(fields.get("lock"), "lock"),
        )
        .flatten();
    let guest_id = errors
        .take(
            "guest",
            form::optional_id::<GuestId>(fields.get("guest"), "guest"),
        )
        .flatten();
    let page_no = errors
        .take("page", form::page_number(fields.get("page")))
        .unwrap_or(1);
    let state = state.unwrap_or_default();
    let locks = backend(app.backend.list_locks().await)?;
    let grants = if errors.is_empty() {
        let q = GrantQuery {
            state,
            now_ms: now,
            lock_id,
            guest_id,
        };
        Some(backend(
            app.backend.list_grants(&q, app.paging(page_no)).await,
        )?)
    } else {
        None
    };
    let lock_text = lock_id.map(|l| l.to_string()).unwrap_or_default();
    let guest_text = guest_id
        .map(|g| g.to_string())
        .unwrap_or_else(|| fields.get("guest").unwrap_or("").to_owned());
    let body = html! {
        @if let Some(text) = notice_text(fields.get("notice")) { (notice(text, false)) }
        form.filters method="get" action="/grants" {
            label for="state" { "State" }
            select #state name="state" {
                @for s in GrantState::ALL { option value=(s.as_str()) selected[s == state] { (s.as_str()) } }
            }
            label for="lock" { "Lock" }
            select #lock name="lock" {
                option value="" { "any" }
                @for l in &locks { option value=(l.lock_id) selected[Some(l.lock_id) == lock_id] { (l.name) } }
            }
            label for="guest" { "Guest id" }
            input #guest type="text" name="guest" value=(guest_text) size="34" maxlength="32";
            button type="submit" { "Filter" }
        }
        (error_lines(&errors, &[]))
        @if let Some(grants) = &grants {
            (grants_table(&session, &grants.items, now, &zones(&locks)))
            (pager(page_no, app.config.page_size, grants.total, |p| link("/grants", &[
                ("state", state.as_str().to_owned()), ("lock", lock_text.clone()),
                ("guest", guest_text.clone()), ("page", p.to_string()),
            ])))
        }
    };
    Ok(list_page(&session, "/grants", "Grants", &errors, body))
}

/// `POST /grants/{id}/revoke`.
pub(crate) async fn revoke<B: AdminBackend>(
    State(app): State<AppState<B>>,
    Path(id): Path<String>,
    form: AuthedForm,
) -> Result<Response, Response> {
    let session = form.session;
    let grant_id: GrantId = id_or_404(&id, "grant")?;
    backend(app.backend.revoke_grant(&session.user, grant_id).await)?;
    tracing::info!(user = %session.user, grant = %grant_id, "admin web: grant revoked");
    Ok(see_other(&link(
        "/grants",
        &[("state", "all".into()), ("notice", "grant-revoked".into())],
    )))
}
