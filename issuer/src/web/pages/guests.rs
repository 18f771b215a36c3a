//! Guests: the list (`GET /guests`), the enroll form (`GET /guests/new`, `POST /guests`),
//! a guest's page (`GET /guests/{id}`) with its access (`POST /guests/{id}/access`,
//! `POST /guests/{id}/access/remove`), key rotation (`POST /guests/{id}/rotate-key`) and
//! revocation (`POST /guests/{id}/revoke`).
//!
//! An enrollment bundle (after enrolling or rotating) is shown once, in the answer to the
//! POST itself: no GET can ever show it again, and like every page it is `no-store`.

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use latchkey::{GuestId, LockId};
use maud::{Markup, html};

use super::{backend, id_or_404, link, query};
use crate::store::DEFAULT_ROLE;
use crate::web::app::{AppState, backend_error_page};
use crate::web::backend::{AdminBackend, BackendError};
use crate::web::csrf::AuthedForm;
use crate::web::form::{self, FieldErrors, Fields};
use crate::web::layout::{
    age, csrf_field, error_lines, error_page, field_error, html_response, list_page, lock_time,
    notice, notice_text, page, pager, see_other, short_id, table_head, zones,
};
use crate::web::model::{
    AccessSpec, EnrollGuest, Enrollment, GrantQuery, GrantState, GuestQuery, GuestView, LockView,
    Paging, Role,
};
use crate::web::session::AdminSession;
use crate::web::timefmt::{format_input, format_utc};

/// Longest guest name, characters.
const MAX_NAME_CHARS: usize = 80;
/// Longest schedule text, characters.
const MAX_SCHEDULE_CHARS: usize = 200;
/// Largest unlock limit a form accepts.
const MAX_UNLOCKS: u64 = 1_000_000;
/// The roles in the order the form offers them, the default first.
const FORM_ROLES: [Role; 3] = [Role::Resident, Role::Guest, Role::Admin];

fn guest_id_or_404(text: &str) -> Result<GuestId, Response> {
    id_or_404(text, "guest")
}

// ---- list -------------------------------------------------------------------------------

/// `GET /guests?q=&page=`.
pub(crate) async fn list<B: AdminBackend>(
    State(app): State<AppState<B>>,
    session: AdminSession,
    RawQuery(raw): RawQuery,
) -> Result<Response, Response> {
    let now = app.now_ms();
    let fields = query(raw.as_deref());
    let mut errors = FieldErrors::default();
    let search = errors
        .take(
            "q",
            form::optional_text(fields.get("q"), "search text", MAX_NAME_CHARS),
        )
        .flatten();
    let page_no = errors
        .take("page", form::page_number(fields.get("page")))
        .unwrap_or(1);
    let guests = if errors.is_empty() {
        let query = GuestQuery {
            name_contains: search.clone(),
        };
        Some(backend(
            app.backend.list_guests(&query, app.paging(page_no)).await,
        )?)
    } else {
        None
    };
    let q = search.clone().unwrap_or_default();
    let body = html! {
        @if let Some(text) = notice_text(fields.get("notice")) { (notice(text, false)) }
        div.toolbar {
            form.filters method="get" action="/guests" {
                label for="q" { "Name contains" }
                input #q type="search" name="q" value=(q) maxlength=(MAX_NAME_CHARS);
                button type="submit" { "Search" }
                (field_error(&errors, "q"))
            }
            a.button href="/guests/new" { "Enroll a guest" }
        }
        (error_lines(&errors, &["q"]))
        @if let Some(guests) = &guests {
            @if guests.items.is_empty() {
                p { "No guest matches." }
            } @else {
                table.list {
                    (table_head(&["Name", "Guest id", "Roles", "Locks", "State", "Last used"]))
                    tbody {
                        @for g in &guests.items {
                            tr {
                                td { a href=(format!("/guests/{}", g.guest_id)) { (g.name) } }
                                td { (short_id(&g.guest_id)) }
                                td { (roles(g)) }
                                td { (g.access.len()) }
                                td { (guest_state(g)) }
                                td { (last_used(g, now)) }
                            }
                        }
                    }
                }
            }
            (pager(page_no, app.config.page_size, guests.total, |p| link("/guests", &[("q", q.clone()), ("page", p.to_string())])))
        }
    };
    Ok(list_page(&session, "/guests", "Guests", &errors, body))
}

fn roles(g: &GuestView) -> String {
    let mut roles: Vec<&str> = g.access.iter().map(|a| a.spec.role.name()).collect();
    roles.sort_unstable();
    roles.dedup();
    roles.join(", ")
}

fn guest_state(g: &GuestView) -> Markup {
    html! {
        @match g.revoked_at_ms {
            Some(ms) => span.badge.alarm title=(format_utc(ms)) { "revoked" },
            None => span.badge.ok { "active" },
        }
    }
}

fn last_used(g: &GuestView, now: u64) -> Markup {
    html! {
        @match g.last_used_ms {
            Some(ms) => (age(ms, now)),
            None => "never",
        }
    }
}

// ---- access rules -----------------------------------------------------------------------

/// Reads the rule fields (`role`, `valid_from`, `valid_until`, `schedule`, `max_unlocks`).
fn parse_access(fields: &Fields, errors: &mut FieldErrors) -> Option<AccessSpec> {
    let role = match fields.get("role") {
        None => Some(DEFAULT_ROLE),
        Some(r) => errors.take(
            "role",
            r.parse::<Role>()
                .map_err(|_| "choose admin, resident or guest".to_owned()),
        ),
    };
    let from = errors.take("valid_from", form::optional_time(fields.get("valid_from")));
    let until = errors.take(
        "valid_until",
        form::optional_time(fields.get("valid_until")),
    );
    let schedule = errors.take(
        "schedule",
        form::optional_text(fields.get("schedule"), "schedule", MAX_SCHEDULE_CHARS),
    );
    let max = errors.take(
        "max_unlocks",
        form::optional_number(fields.get("max_unlocks"), "max unlocks", 1, MAX_UNLOCKS),
    );
    if let (Some(Some(f)), Some(Some(u))) = (from, until)
        && u <= f
    {
        errors.add("valid_until", "must be after the start of access");
    }
    if !errors.is_empty() {
        return None;
    }
    let spec = AccessSpec {
        role: role?,
        valid_from_s: from?.map(|ms| ms / 1000),
        valid_until_s: until?.map(|ms| ms / 1000),
        schedule: schedule?,
        max_unlocks: max?.and_then(|n| u32::try_from(n).ok()),
    };
    // The policy's own checks (schedule grammar, role constraints), before any backend.
    if let Err(BackendError::Invalid { field, message }) = spec.to_rule() {
        errors.add(field, &message);
        return None;
    }
    Some(spec)
}

/// The rule fields, filled from `values` (a submitted form) or `current` (the stored rule).
fn access_fields(
    values: Option<&Fields>,
    current: Option<&AccessSpec>,
    errors: &FieldErrors,
) -> Markup {
    let value = |name: &str, stored: Option<String>| -> String {
        match values {
            Some(v) => v.get(name).unwrap_or("").to_owned(),
            None => stored.unwrap_or_default(),
        }
    };
    let role = value(
        "role",
        Some(current.map_or(DEFAULT_ROLE, |c| c.role).name().to_owned()),
    );
    let from = value(
        "valid_from",
        current
            .and_then(|c| c.valid_from_s)
            .map(|s| format_input(s * 1000)),
    );
    let until = value(
        "valid_until",
        current
            .and_then(|c| c.valid_until_s)
            .map(|s| format_input(s * 1000)),
    );
    let schedule = value("schedule", current.and_then(|c| c.schedule.clone()));
    let max = value(
        "max_unlocks",
        current.and_then(|c| c.max_unlocks).map(|n| n.to_string()),
    );
    html! {
        div.field {
            label for="role" { "Role" }
            select #role name="role" {
                @for r in FORM_ROLES {
                    option value=(r.name()) selected[role == r.name()] { (r.name()) }
                }
            }
            (field_error(errors, "role"))
        }
        div.field {
            label for="valid_from" { "Access from (UTC, optional)" }
            input #valid_from type="datetime-local" name="valid_from" value=(from);
            (field_error(errors, "valid_from"))
        }
        div.field {
            label for="valid_until" { "Access until (UTC, optional)" }
            input #valid_until type="datetime-local" name="valid_until" value=(until);
            (field_error(errors, "valid_until"))
        }
        div.field {
            label for="schedule" { "Weekly schedule (lock's local time, optional)" }
            input #schedule type="text" name="schedule" value=(schedule) maxlength=(MAX_SCHEDULE_CHARS)
                placeholder="Mon-Fri 08:00-18:00; Sat 09:00-12:00";
            (field_error(errors, "schedule"))
        }
        div.field {
            label for="max_unlocks" { "Most unlocks (optional)" }
            input #max_unlocks type="number" name="max_unlocks" value=(max) min="1" max=(MAX_UNLOCKS);
            (field_error(errors, "max_unlocks"))
        }
    }
}

fn describe_access(spec: &AccessSpec, zone: Option<&str>) -> Markup {
    html! {
        @match (spec.valid_from_s, spec.valid_until_s) {
            (None, None) => "always",
            (Some(f), None) => { "from " (lock_time(f * 1000, zone)) },
            (None, Some(u)) => { "until " (lock_time(u * 1000, zone)) },
            (Some(f), Some(u)) => { (lock_time(f * 1000, zone)) " – " (lock_time(u * 1000, zone)) },
        }
    }
}

// ---- enroll -----------------------------------------------------------------------------

fn enroll_form(
    session: &AdminSession,
    locks: &[LockView],
    values: Option<&Fields>,
    errors: &FieldErrors,
) -> Markup {
    let name = values.and_then(|v| v.get("name")).unwrap_or("");
    let chosen: Vec<&str> = values
        .map(|v| v.get_all("locks").collect())
        .unwrap_or_default();
    let body = html! {
        @if !errors.is_empty() {
            (notice("The guest was not enrolled: correct the fields marked below.", true))
        }
        form.stacked method="post" action="/guests" {
            (csrf_field(session))
            div.field {
                label for="name" { "Name" }
                input #name type="text" name="name" value=(name) maxlength=(MAX_NAME_CHARS) required;
                (field_error(errors, "name"))
            }
            fieldset.field {
                legend { "Locks" }
                @if locks.is_empty() {
                    p { "No lock is registered yet: register one with " code { "latchkey-issuer add-lock" } " first." }
                }
                @for lock in locks {
                    @let id = lock.lock_id.to_string();
                    label.check {
                        input type="checkbox" name="locks" value=(id) checked[chosen.contains(&id.as_str())];
                        (lock.name) " " (short_id(&lock.lock_id))
                    }
                }
                (field_error(errors, "locks"))
            }
            (access_fields(values, None, errors))
            button type="submit" { "Enroll" }
        }
    };
    page(session, "/guests", "Enroll a guest", body)
}

/// `GET /guests/new`.
pub(crate) async fn new_form<B: AdminBackend>(
    State(app): State<AppState<B>>,
    session: AdminSession,
) -> Result<Response, Response> {
    let locks = backend(app.backend.list_locks().await)?;
    Ok(html_response(
        StatusCode::OK,
        enroll_form(&session, &locks, None, &FieldErrors::default()),
    ))
}

/// `POST /guests`.
pub(crate) async fn enroll<B: AdminBackend>(
    State(app): State<AppState<B>>,
    form: AuthedForm,
) -> Result<Response, Response> {
    let AuthedForm { session, fields } = form;
    let locks = backend(app.backend.list_locks().await)?;
    let mut errors = FieldErrors::default();
    let name = errors.take(
        "name",
        form::name(fields.get("name"), "name", MAX_NAME_CHARS),
    );
    let mut chosen: Vec<LockId> = Vec::new();
    for text in fields.get_all("locks") {
        match form::required_id::<LockId>(text, "lock") {
            Ok(id) if locks.iter().any(|l| l.lock_id == id) => {
                if !chosen.contains(&id) {
                    chosen.push(id);
                }
            }
            Ok(_) => errors.add(
                "locks",
                "a chosen lock is not registered (any more); reload the page",
            ),
            Err(e) => errors.add("locks", e),
        }
    }
    if chosen.is_empty() {
        errors.add("locks", "choose at least one lock");
    }
    let access = parse_access(&fields, &mut errors);
    let (Some(name), Some(access), true) = (name, access, errors.is_empty()) else {
        return Ok(html_response(
            StatusCode::BAD_REQUEST,
            enroll_form(&session, &locks, Some(&fields), &errors),
        ));
    };
    let request = EnrollGuest {
        name: name.clone(),
        locks: chosen,
        access,
    };
    match app.backend.enroll_guest(&session.user, &request).await {
        Ok(enrollment) => {
            tracing::info!(user = %session.user, guest = %enrollment.guest_id, "admin web: guest enrolled");
            Ok(enrollment_page(
                &session,
                "Guest enrolled",
                &name,
                &enrollment,
            ))
        }
        Err(BackendError::Invalid { field, message }) => {
            errors.add(field, message);
            Ok(html_response(
                StatusCode::BAD_REQUEST,
                enroll_form(&session, &locks, Some(&fields), &errors),
            ))
        }
        Err(e) => Err(backend_error_page(&e)),
    }
}

/// The one-time display of an enrollment bundle.
fn enrollment_page(
    session: &AdminSession,
    title: &str,
    name: &str,
    enrollment: &Enrollment,
) -> Response {
    let qr = crate::qr::svg_element(&enrollment.bundle, "Enrollment QR code")
        .map(|svg| maud::PreEscaped(svg.to_string()))
        .map_err(|e| format!("{e}; use the text below"));
    let guest_link = format!("/guests/{}", enrollment.guest_id);
    let body = html! {
        (notice("This is the only time this bundle is shown: it is not stored for display and this page is not cached. Scan it now or copy the text; it holds the guest's secret key.", false))
        p { "Guest " strong { (name) } " — " code { (enrollment.guest_id) } }
        div.enrollment {
            @match &qr {
                Ok(svg) => figure.qr-code { (svg) figcaption { "Scan with " code { "latchkey-guest enroll" } } },
                Err(why) => p.error { (why) },
            }
            div {
                h2 { "Bundle text" }
                pre.bundle { (enrollment.bundle.as_str()) }
                p { "Or save it to a file and run " code { "latchkey-guest enroll --text '…'" } "." }
            }
        }
        p { a href=(guest_link) { "Done — back to the guest" } }
    };
    html_response(StatusCode::OK, page(session, "/guests", title, body))
}

// ---- a guest's page ---------------------------------------------------------------------

/// What the guest page shows again after a refused form.
#[derive(Default)]
struct Refused<'a> {
    /// Values and errors of the access form.
    access: Option<(&'a Fields, FieldErrors)>,
    /// An error of the revoke form.
    revoke: Option<&'a str>,
}

async fn guest_page<B: AdminBackend>(
    app: &AppState<B>,
    session: &AdminSession,
    guest_id: GuestId,
    banner: Option<&str>,
    refused: Refused<'_>,
) -> Result<Response, Response> {
    let now = app.now_ms();
    let Some(guest) = backend(app.backend.guest(guest_id).await)? else {
        return Err(error_page(
            StatusCode::NOT_FOUND,
            &format!("Guest {guest_id} is not enrolled."),
        ));
    };
    let locks = backend(app.backend.list_locks().await)?;
    let zones = zones(&locks);
    let grant_query = GrantQuery {
        state: GrantState::Live,
        now_ms: now,
        lock_id: None,
        guest_id: Some(guest_id),
    };
    let grants = backend(
        app.backend
            .list_grants(
                &grant_query,
                Paging {
                    offset: 0,
                    limit: 20,
                },
            )
            .await,
    )?;
    let id = guest_id.to_string();
    let revoked = guest.revoked_at_ms.is_some();
    let (access_values, access_errors) = match refused.access {
        Some((values, errors)) => (Some(values), errors),
        None => (None, FieldErrors::default()),
    };
    let body = html! {
        @if let Some(text) = banner { (notice(text, false)) }
        @if !access_errors.is_empty() {
            (notice("The access was not saved: correct the fields marked below.", true))
        }
        dl.facts {
            dt { "Guest id" } dd { code { (id) } }
            dt { "State" } dd { (guest_state(&guest)) }
            dt { "Enrolled" } dd { (format_utc(guest.created_at_ms)) }
            dt { "Key version" } dd { (guest.key_version) }
            dt { "Last used" } dd { (last_used(&guest, now)) }
        }
        h2 { "Access" }
        @if guest.access.is_empty() {
            p { "No access at any lock." }
        } @else {
            table.list {
                (table_head(&["Lock", "Role", "Validity", "Schedule", "Most unlocks", ""]))
                tbody {
                    @for a in &guest.access {
                        tr {
                            td { (a.lock_name) " " (short_id(&a.lock_id)) }
                            td { (a.spec.role.name()) }
                            td { (describe_access(&a.spec, zones.get(&a.lock_id).map(String::as_str))) }
                            td { (a.spec.schedule.as_deref().unwrap_or("any time")) }
                            td { @match a.spec.max_unlocks { Some(n) => (n), None => "no limit" } }
                            td.actions {
                                @if !revoked {
                                    form.inline method="post" action=(format!("/guests/{id}/access/remove")) {
                                        (csrf_field(session))
                                        input type="hidden" name="lock" value=(a.lock_id);
                                        button.secondary type="submit" { "Remove" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if !revoked {
            details.panel open[access_values.is_some()] {
                summary { "Set access at a lock" }
                form.stacked method="post" action=(format!("/guests/{id}/access")) {
                    (csrf_field(session))
                    div.field {
                        label for="lock" { "Lock" }
                        @let chosen = access_values.and_then(|v| v.get("lock")).unwrap_or("");
                        select #lock name="lock" {
                            @for l in &locks {
                                option value=(l.lock_id) selected[chosen == l.lock_id.to_string()] { (l.name) }
                            }
                        }
                        (field_error(&access_errors, "lock"))
                    }
                    (access_fields(access_values, None, &access_errors))
                    button type="submit" { "Save access" }
                }
            }
        }
        h2 { "Live grants" }
        (super::grants::grants_table(session, &grants.items, now, &zones))
        p { a href=(link("/grants", &[("guest", id.clone()), ("state", "all".into())])) { "All grants of this guest →" } " "
            a href=(link("/audit", &[("guest", id.clone())])) { "Audit records →" } }
        @if !revoked {
            h2 { "Key" }
            form.inline method="post" action=(format!("/guests/{id}/rotate-key")) {
                (csrf_field(session))
                button type="submit" { "Rotate enrollment key" }
                span.hint { " The old key stops working; the new bundle is shown once." }
            }
            h2 { "Revoke" }
            form.inline method="post" action=(format!("/guests/{id}/revoke")) {
                (csrf_field(session))
                label.check {
                    input type="checkbox" name="confirm" value="yes";
                    "Revoke this guest and every live grant of it (cannot be undone)"
                }
                button.danger type="submit" { "Revoke guest" }
                @if let Some(message) = refused.revoke { span.field-error role="alert" { (message) } }
            }
        }
    };
    let status = if access_values.is_some() || refused.revoke.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    Ok(html_response(
        status,
        page(session, "/guests", &guest.name, body),
    ))
}

/// `GET /guests/{id}`.
pub(crate) async fn show<B: AdminBackend>(
    State(app): State<AppState<B>>,
    session: AdminSession,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, Response> {
    let guest_id = guest_id_or_404(&id)?;
    let fields = query(raw.as_deref());
    guest_page(
        &app,
        &session,
        guest_id,
        notice_text(fields.get("notice")),
        Refused::default(),
    )
    .await
}

/// `POST /guests/{id}/access`.
pub(crate) async fn set_access<B: AdminBackend>(
    State(app): State<AppState<B>>,
    Path(id): Path<String>,
    form: AuthedForm,
) -> Result<Response, Response> {
    let AuthedForm { session, fields } = form;
    let guest_id = guest_id_or_404(&id)?;
    let mut errors = FieldErrors::default();
    let lock = match fields.get("lock") {
        Some(text) => errors.take("lock", form::required_id::<LockId>(text, "lock")),
        None => {
            errors.add("lock", "choose a lock");
            None
        }
    };
    let access = parse_access(&fields, &mut errors);
    if let (Some(lock), Some(access), true) = (lock, &access, errors.is_empty()) {
        match app
            .backend
            .set_access(&session.user, guest_id, lock, Some(access))
            .await
        {
            Ok(()) => {
                return Ok(see_other(&format!(
                    "/guests/{guest_id}?notice=access-saved"
                )));
            }
            Err(BackendError::Invalid { field, message }) => errors.add(field, message),
            Err(e) => return Err(backend_error_page(&e)),
        }
    }
    let refused = Refused {
        access: Some((&fields, errors)),
        revoke: None,
    };
    guest_page(&app, &session, guest_id, None, refused).await
}

/// `POST /guests/{id}/access/remove`.
pub(crate) async fn remove_access<B: AdminBackend>(
    State(app): State<AppState<B>>,
    Path(id): Path<String>,
    form: AuthedForm,
) -> Result<Response, Response> {
    let AuthedForm { session, fields } = form;
    let guest_id = guest_id_or_404(&id)?;
    let lock = form::required_id::<LockId>(fields.get("lock").unwrap_or(""), "lock")
        .map_err(|e| error_page(StatusCode::BAD_REQUEST, &e))?;
    backend(
        app.backend
            .set_access(&session.user, guest_id, lock, None)
            .await,
    )?;
    Ok(see_other(&format!(
        "/guests/{guest_id}?notice=access-removed"
    )))
}

/// `POST /guests/{id}/rotate-key`.
pub(crate) async fn rotate_key<B: AdminBackend>(
    State(app): State<AppState<B>>,
    Path(id): Path<String>,
    form: AuthedForm,
) -> Result<Response, Response> {
    let session = form.session;
    let guest_id = guest_id_or_404(&id)?;
    let enrollment = backend(app.backend.rotate_guest_key(&session.user, guest_id).await)?;
    let name = backend(app.backend.guest(guest_id).await)?
        .map(|g| g.name)
        .unwrap_or_default();
    tracing::info!(user = %session.user, guest = %guest_id, "admin web: guest key rotated");
    Ok(enrollment_page(
        &session,
        "New enrollment key",
        &name,
        &enrollment,
    ))
}

/// `POST /guests/{id}/revoke` (needs `confirm=yes`).
pub(crate) async fn revoke<B: AdminBackend>(
    State(app): State<AppState<B>>,
    Path(id): Path<String>,
    form: AuthedForm,
) -> Result<Response, Response> {
    let AuthedForm { session, fields } = form;
    let guest_id = guest_id_or_404(&id)?;
    if fields.get("confirm") != Some("yes") {
        let refused = Refused {
            access: None,
            revoke: Some("tick the box to confirm"),
        };
        return guest_page(&app, &session, guest_id, None, refused).await;
    }
    let revoked = backend(app.backend.revoke_guest(&session.user, guest_id).await)?;
    tracing::info!(user = %session.user, guest = %guest_id, grants = revoked.grants_revoked, "admin web: guest revoked");
    Ok(see_other(&format!(
        "/guests/{guest_id}?notice=guest-revoked"
    )))
}
