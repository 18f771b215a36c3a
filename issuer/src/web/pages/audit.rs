//! `GET /audit`: the audit log, newest first, filtered by lock, guest, grant, source, kind,
//! reason and time range (UTC), in pages.

use axum::extract::{RawQuery, State};
use axum::response::Response;
use latchkey::{GrantId, GuestId, LockId, Reason};
use maud::{Markup, html};

use super::{backend, link, query};
use crate::web::app::AppState;
use crate::web::backend::AdminBackend;
use crate::web::form::{self, FieldErrors};
use crate::web::layout::{
    Zones, error_lines, field_error, list_page, lock_time, pager, short_id, table_head, zones,
};
use crate::web::model::{AuditEntry, AuditFilter, AuditSource};
use crate::web::session::AdminSession;
use crate::web::timefmt::format_input;

/// The audit table.
pub(crate) fn audit_table(entries: &[AuditEntry], zones: &Zones) -> Markup {
    html! {
        @if entries.is_empty() {
            p { "No audit record." }
        } @else {
            table.list.audit {
                (table_head(&["Time", "Source", "Kind", "Reason", "Lock", "Guest", "Grant", "By", "Detail"]))
                tbody {
                    @for e in entries {
                        tr {
                            td.time { (lock_time(e.at_ms, e.lock_id.and_then(|l| zones.get(&l)).map(String::as_str))) }
                            td { (e.source.as_str()) }
                            td { a href=(link("/audit", &[("kind", e.kind.clone())])) { (e.kind) } }
                            td { @if let Some(r) = &e.reason { a href=(link("/audit", &[("reason", r.clone())])) { (r) } } }
                            td { @if let Some(id) = e.lock_id { a href=(link("/audit", &[("lock", id.to_string())])) { (short_id(&id)) } } }
                            td { @if let Some(id) = e.guest_id { a href=(link("/audit", &[("guest", id.to_string())])) { (short_id(&id)) } } }
                            td { @if let Some(id) = e.grant_id { a href=(link("/audit", &[("grant", id.to_string())])) { (short_id(&id)) } } }
                            td { @if let Some(actor) = &e.actor { (actor) } }
                            td.detail { (e.detail) }
                        }
                    }
                }
            }
        }
    }
}

/// The filter as read from the query string, and the texts to show back in the form.
struct ParsedFilter {
    filter: AuditFilter,
    page: u64,
    /// (name, value as submitted) of every filter field, for the form and the page links.
    echo: Vec<(&'static str, String)>,
}

const FILTER_FIELDS: [&str; 8] = [
    "lock", "guest", "grant", "source", "kind", "reason", "from", "until",
];

fn parse_filter(fields: &form::Fields, errors: &mut FieldErrors) -> ParsedFilter {
    let mut filter = AuditFilter {
        lock_id: errors
            .take(
                "lock",
                form::optional_id::<LockId>(fields.get("lock"), "lock"),
            )
            .flatten(),
        guest_id: errors
            .take(
                "guest",
                form::optional_id::<GuestId>(fields.get("guest"), "guest"),
            )
            .flatten(),
        grant_id: errors
            .take(
                "grant",
                form::optional_id::<GrantId>(fields.get("grant"), "grant"),
            )
            .flatten(),
        kind: errors
            .take("kind", form::optional_word(fields.get("kind"), "kind"))
            .flatten(),
        from_ms: errors
            .take("from", form::optional_time(fields.get("from")))
            .flatten(),
        until_ms: errors
            .take("until", form::optional_time(fields.get("until")))
            .flatten(),
        ..AuditFilter::default()
    };
    if let Some(source) = fields.get("source") {
        filter.source = errors.take(
            "source",
            AuditSource::parse(source).ok_or_else(|| "choose issuer, lock or admin".to_owned()),
        );
    }
    if let Some(reason) = fields.get("reason") {
        filter.reason = errors.take(
            "reason",
            Reason::from_name(reason)
                .map(|r| r.name().to_owned())
                .ok_or_else(|| {
                    format!(
                        "{:?} is not a reason name (spec §8.13)",
                        reason.chars().take(40).collect::<String>()
                    )
                }),
        );
    }
    if let (Some(from), Some(until)) = (filter.from_ms, filter.until_ms)
        && until <= from
    {
        errors.add("until", "must be after \"from\"");
    }
    let page = errors
        .take("page", form::page_number(fields.get("page")))
        .unwrap_or(1);
    let echo = FILTER_FIELDS
        .iter()
        .map(|name| (*name, fields.get(name).unwrap_or("").to_owned()))
        .collect();
    ParsedFilter { filter, page, echo }
}

/// A text input for a 16-byte id, with its error.
fn id_input(name: &str, label: &str, value: &str, errors: &FieldErrors) -> Markup {
    html! {
        div.field {
            label for=(name) { (label) }
            input id=(name) type="text" name=(name) value=(value) maxlength="32" size="34";
            (field_error(errors, name))
        }
    }
}

fn echoed<'a>(echo: &'a [(&'static str, String)], name: &str) -> &'a str {
    echo.iter()
        .find(|(n, _)| *n == name)
        .map_or("", |(_, v)| v.as_str())
}

/// `GET /audit`.
pub(crate) async fn list<B: AdminBackend>(
    State(app): State<AppState<B>>,
    session: AdminSession,
    RawQuery(raw): RawQuery,
) -> Result<Response, Response> {
    let fields = query(raw.as_deref());
    let mut errors = FieldErrors::default();
    let parsed = parse_filter(&fields, &mut errors);
    let locks = backend(app.backend.list_locks().await)?;
    let entries = if errors.is_empty() {
        Some(backend(
            app.backend
                .audit(&parsed.filter, app.paging(parsed.page))
                .await,
        )?)
    } else {
        None
    };
    let echo = &parsed.echo;
    let chosen_lock = echoed(echo, "lock");
    let chosen_source = echoed(echo, "source");
    let chosen_reason = echoed(echo, "reason");
    // A valid time is shown back in the input's own format, an invalid one as typed.
    let time_value = |name: &str, ms: Option<u64>| {
        ms.map(format_input)
            .unwrap_or_else(|| echoed(echo, name).to_owned())
    };
    let body = html! {
        form.filters.audit-filters method="get" action="/audit" {
            div.field {
                label for="lock" { "Lock" }
                select #lock name="lock" {
                    option value="" { "any" }
                    @for l in &locks { option value=(l.lock_id) selected[chosen_lock == l.lock_id.to_string()] { (l.name) } }
                }
                (field_error(&errors, "lock"))
            }
            (id_input("guest", "Guest id", echoed(echo, "guest"), &errors))
            (id_input("grant", "Grant id", echoed(echo, "grant"), &errors))
            div.field {
                label for="source" { "Source" }
                select #source name="source" {
                    option value="" { "any" }
                    @for s in AuditSource::ALL { option value=(s.as_str()) selected[chosen_source == s.as_str()] { (s.as_str()) } }
                }
                (field_error(&errors, "source"))
            }
            div.field {
                label for="kind" { "Kind" }
                input #kind type="text" name="kind" value=(echoed(echo, "kind")) maxlength="64" placeholder="e.g. grant_revoked";
                (field_error(&errors, "kind"))
            }
            div.field {
                label for="reason" { "Reason" }
                select #reason name="reason" {
                    option value="" { "any" }
                    @for r in Reason::ALL { option value=(r.name()) selected[chosen_reason == r.name()] { (r.name()) " (" (r.code()) ")" } }
                }
                (field_error(&errors, "reason"))
            }
            div.field {
                label for="from" { "From (UTC)" }
                input #from type="datetime-local" name="from" value=(time_value("from", parsed.filter.from_ms));
                (field_error(&errors, "from"))
            }
            div.field {
                label for="until" { "Until (UTC)" }
                input #until type="datetime-local" name="until" value=(time_value("until", parsed.filter.until_ms));
                (field_error(&errors, "until"))
            }
            div.field.buttons {
                button type="submit" { "Filter" }
                a href="/audit" { "Clear" }
            }
        }
        (error_lines(&errors, &FILTER_FIELDS))
        @if let Some(entries) = &entries {
            (audit_table(&entries.items, &zones(&locks)))
            (pager(parsed.page, app.config.page_size, entries.total, |p| {
                let mut pairs: Vec<(&str, String)> = echo.iter().map(|(n, v)| (*n, v.clone())).collect();
                pairs.push(("page", p.to_string()));
                link("/audit", &pairs)
            }))
        }
    };
    Ok(list_page(&session, "/audit", "Audit log", &errors, body))
}
