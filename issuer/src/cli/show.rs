//! What the read-only commands print: `list`, `show-guest`, `show-lock`, `audit`,
//! `alerts`. Text for people, `--json` for scripts. Never a key.

use latchkey::{GuestId, LockId};

use super::values::{show_ms, show_s};
use super::{AlertsArgs, AuditArgs, Context};
use crate::config::DEFAULT_MAX_GRANT_VALIDITY_S;
use crate::config::accounting_window;
use crate::control::{self, ControlRequest};
use crate::error::IssuerdError;
use crate::keys;
use crate::status::{GrantSummary, GuestSummary, IssuerStatus, PendingRevocationSummary};
use crate::store::{
    AccessEntry, AlertFilter, AuditEntry, AuditFilter, AuditSource, GrantRecord, OpenMode, Store,
};
use crate::time;

/// Entries of the audit trail `show-guest` and `show-lock` print.
const RECENT_AUDIT: u32 = 10;

fn json_out(v: &serde_json::Value) -> Result<(), IssuerdError> {
    let text = serde_json::to_string_pretty(v).map_err(|e| IssuerdError::Control(e.to_string()))?;
    out!("{text}");
    Ok(())
}

// --------------------------------------------------------------------------- list

pub(super) fn list(ctx: &Context, json: bool) -> Result<(), IssuerdError> {
    let status = match control::request(&ctx.state_dir, &ControlRequest::Status) {
        Ok(reply) => reply
            .status
            .map(|s| *s)
            .ok_or_else(|| IssuerdError::Control("status reply without a status".to_owned()))?,
        Err(IssuerdError::ControlUnreachable { .. }) => {
            eprintln!("note: the issuer is not running; listing from the registry");
            offline_status(&mut ctx.store(OpenMode::Existing)?)?
        }
        Err(e) => return Err(e),
    };
    if json {
        let text = serde_json::to_string_pretty(&status)
            .map_err(|e| IssuerdError::Control(e.to_string()))?;
        out!("{text}");
    } else {
        print_status(&status);
    }
    Ok(())
}

fn offline_status(store: &mut Store) -> Result<IssuerStatus, IssuerdError> {
    let now_s = time::now().secs();
    let snap = store.registry_snapshot()?;
    let live_grants = store
        .live_grants(now_s)?
        .into_iter()
        .map(GrantSummary::from)
        .collect();
    let pending_revocations = store
        .pending_revocations(now_s)?
        .iter()
        .map(PendingRevocationSummary::from)
        .collect();
    Ok(IssuerStatus {
        state_dir: store
            .path()
            .parent()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        broker_url: String::new(),
        mqtt: "not running".to_owned(),
        topic_prefix: String::new(),
        started_at_s: 0,
        locks: snap.locks.keys().copied().collect(),
        guests: snap
            .guests
            .into_iter()
            .map(|(id, g)| GuestSummary {
                guest_id: id,
                name: g.name,
                allowed_locks: g.allowed_locks.into_iter().collect(),
                revoked: g.revoked,
            })
            .collect(),
        live_grants,
        pending_revocations,
        request_cache: 0,
        counters: Default::default(),
    })
}

fn print_status(s: &IssuerStatus) {
    let now_s = time::now().secs();
    if s.started_at_s > 0 {
        out!(
            "issuer: broker {} ({}), prefix {}, up {}",
            s.broker_url,
            s.mqtt,
            s.topic_prefix,
            human_duration(now_s.saturating_sub(s.started_at_s))
        );
    } else {
        out!("issuer: not running (state {})", s.state_dir);
    }
    out!("locks ({}):", s.locks.len());
    for l in &s.locks {
        out!("  {l}");
    }
    out!("guests ({}):", s.guests.len());
    for g in &s.guests {
        let locks: Vec<String> = g.allowed_locks.iter().map(ToString::to_string).collect();
        out!(
            "  {}{}{}  locks {}",
            g.guest_id,
            if g.name.is_empty() {
                String::new()
            } else {
                format!(" {:?}", g.name)
            },
            if g.revoked { " [revoked]" } else { "" },
            locks.join(",")
        );
    }
    out!("live grants ({}):", s.live_grants.len());
    for g in &s.live_grants {
        out!(
            "  {}  lock {}  guest {}  session {}  expires in {}",
            g.grant_id,
            g.lock_id,
            g.guest_id,
            g.session_id,
            human_duration(g.not_after.saturating_sub(now_s))
        );
    }
    out!(
        "revocations awaiting confirmation ({}):",
        s.pending_revocations.len()
    );
    for r in &s.pending_revocations {
        out!(
            "  grant {}  lock {}  published {}x",
            r.grant_id,
            r.lock_id,
            r.publishes
        );
    }
    if s.started_at_s > 0 {
        let c = &s.counters;
        out!(
            "requests: {} granted, refused {:?}; events: {} verified, refused {:?}; \
             request cache {}",
            c.requests_accepted,
            c.requests_refused,
            c.events_verified,
            c.events_refused,
            s.request_cache
        );
    }
}

pub(super) fn human_duration(s: u64) -> String {
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

// ---------------------------------------------------------------------- show-guest

pub(super) fn guest(store: &Store, id: &GuestId, json: bool) -> Result<(), IssuerdError> {
    let g = store.guest(id)?.ok_or(IssuerdError::UnknownGuest(*id))?;
    let now_s = time::now().secs();
    let rules = store.access_of_guest(id)?;
    // Grants that ended within the longest validity are still worth showing.
    let grants = store.grants_of_guest(id, now_s.saturating_sub(DEFAULT_MAX_GRANT_VALIDITY_S))?;
    let recent = store.audit(
        &AuditFilter {
            guest_id: Some(*id),
            ..Default::default()
        },
        RECENT_AUDIT,
        0,
    )?;
    // As the daemon counts with the default event window (the CLI does not know the
    // running daemon's tunables).
    let window = accounting_window(latchkey::constants::EVENT_WINDOW_S.default);
    let mut usages = Vec::new();
    for r in &rules {
        usages.push(store.rule_usage(r, now_s, &window)?);
    }
    if json {
        return json_out(&serde_json::json!({
            "guest_id": g.guest_id.to_string(),
            "name": g.name,
            "key_version": g.key_version,
            "created_at_ms": g.created_at_ms,
            "key_rotated_at_ms": g.key_rotated_at_ms,
            "revoked_at_ms": g.revoked_at_ms,
            "last_used_ms": g.last_used_ms,
            "access": rules.iter().zip(&usages).map(|(r, u)| {
                let mut v = rule_json(r);
                v["confirmed_unlocks"] = u.confirmed_unlocks.into();
                v["outstanding_allocation"] = u.outstanding_allocation.into();
                v
            }).collect::<Vec<_>>(),
            "grants": grants.iter().map(grant_json).collect::<Vec<_>>(),
            "recent_audit": recent.iter().map(AuditEntry::to_json).collect::<Vec<_>>(),
        }));
    }
    out!("guest        {}{}", g.guest_id, quoted(&g.name));
    out!(
        "enrolled     {}   key version {}{}",
        show_ms(Some(g.created_at_ms)),
        g.key_version,
        g.key_rotated_at_ms
            .map(|t| format!(" (rotated {})", show_ms(Some(t))))
            .unwrap_or_default()
    );
    out!(
        "revoked      {}",
        g.revoked_at_ms
            .map_or("no".to_owned(), |t| show_ms(Some(t)))
    );
    out!(
        "last used    {}",
        g.last_used_ms
            .map_or("never".to_owned(), |t| show_ms(Some(t)))
    );
    out!("access ({}):", rules.len());
    for (r, u) in rules.iter().zip(&usages) {
        out!(
            "  lock {}  {}  (unlocks: {} confirmed, {} outstanding)",
            r.lock_id,
            rule_text(r),
            u.confirmed_unlocks,
            u.outstanding_allocation
        );
    }
    print_grants(&grants, now_s, true);
    print_recent(&recent);
    Ok(())
}

// ----------------------------------------------------------------------- show-lock

pub(super) fn lock(store: &Store, id: &LockId, json: bool) -> Result<(), IssuerdError> {
    let l = store
        .lock(id)?
        .ok_or(IssuerdError::LockNotRegistered(*id))?;
    let fingerprint = keys::fingerprint(&l.public_key()?)?;
    let now_s = time::now().secs();
    let rules = store.access_at_lock(id)?;
    let grants = store.grants_at_lock(id, now_s.saturating_sub(DEFAULT_MAX_GRANT_VALIDITY_S))?;
    let recent = store.audit(
        &AuditFilter {
            lock_id: Some(*id),
            ..Default::default()
        },
        RECENT_AUDIT,
        0,
    )?;
    if json {
        return json_out(&serde_json::json!({
            "lock_id": l.lock_id.to_string(),
            "name": l.name,
            "timezone": l.timezone,
            "coordinates": l.coordinates.map(|(a, b)| [a, b]),
            "key_fingerprint": fingerprint,
            "created_at_ms": l.created_at_ms,
            "key_rotated_at_ms": l.key_rotated_at_ms,
            "last_seen_ms": l.last_seen_ms,
            "last_status": l.last_status_json.as_deref().and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok()),
            "access": rules.iter().map(rule_json).collect::<Vec<_>>(),
            "grants": grants.iter().map(grant_json).collect::<Vec<_>>(),
            "recent_audit": recent.iter().map(AuditEntry::to_json).collect::<Vec<_>>(),
        }));
    }
    out!("lock         {}{}", l.lock_id, quoted(&l.name));
    out!("time zone    {}", l.timezone);
    out!(
        "position     {}",
        l.coordinates
            .map_or("-".to_owned(), |(a, b)| format!("{a}, {b}"))
    );
    out!("key          SHA-256 {fingerprint}");
    out!(
        "registered   {}{}",
        show_ms(Some(l.created_at_ms)),
        l.key_rotated_at_ms
            .map(|t| format!(" (key rotated {})", show_ms(Some(t))))
            .unwrap_or_default()
    );
    out!(
        "last seen    {}",
        l.last_seen_ms
            .map_or("never".to_owned(), |t| show_ms(Some(t)))
    );
    if let Some(s) = &l.last_status_json {
        out!("last status  {s}");
    }
    out!("access ({}):", rules.len());
    for r in &rules {
        out!("  guest {}  {}", r.guest_id, rule_text(r));
    }
    print_grants(&grants, now_s, false);
    print_recent(&recent);
    Ok(())
}

fn quoted(name: &str) -> String {
    if name.is_empty() {
        String::new()
    } else {
        format!("  {name:?}")
    }
}

fn rule_text(e: &AccessEntry) -> String {
    let r = &e.rule;
    let mut parts = vec![format!("role {}", r.role())];
    if r.valid_from().is_some() || r.valid_until().is_some() {
        parts.push(format!(
            "valid {} .. {}",
            show_s(r.valid_from()),
            show_s(r.valid_until())
        ));
    }
    if let Some(s) = r.schedule() {
        parts.push(format!("schedule \"{s}\""));
    }
    if let Some(m) = r.max_unlocks() {
        parts.push(format!("max {m} unlocks"));
    }
    parts.join("  ")
}

fn rule_json(e: &AccessEntry) -> serde_json::Value {
    let r = &e.rule;
    serde_json::json!({
        "guest_id": e.guest_id.to_string(),
        "lock_id": e.lock_id.to_string(),
        "role": r.role().name(),
        "valid_from": r.valid_from(),
        "valid_until": r.valid_until(),
        "schedule": r.schedule().map(ToString::to_string),
        "max_unlocks": r.max_unlocks(),
        "created_at_ms": e.created_at_ms,
        "updated_at_ms": e.updated_at_ms,
    })
}

fn grant_json(g: &GrantRecord) -> serde_json::Value {
    serde_json::json!({
        "grant_id": g.grant_id.to_string(),
        "lock_id": g.lock_id.to_string(),
        "guest_id": g.guest_id.map(|x| x.to_string()),
        "session_id": g.session_id.to_string(),
        "issued_at": g.issued_at,
        "not_before": g.not_before,
        "not_after": g.not_after,
        "max_unlocks": g.max_unlocks,
        "unlocks": g.unlocks,
        "installed_at_ms": g.installed_at_ms,
        "revoked_at_ms": g.revoked_at_ms,
        "revocation_publishes": g.revocation_publishes,
        "revocation_confirmed_at_ms": g.revocation_confirmed_at_ms,
    })
}

fn print_grants(grants: &[GrantRecord], now_s: u64, by_lock: bool) {
    out!("recent grants ({}):", grants.len());
    for g in grants {
        let state = if let Some(t) = g.revoked_at_ms {
            format!(
                "revoked {}{}",
                show_ms(Some(t)),
                if g.revocation_confirmed_at_ms.is_some() {
                    ", confirmed"
                } else {
                    ", unconfirmed"
                }
            )
        } else if g.not_after > now_s {
            format!("live, expires in {}", human_duration(g.not_after - now_s))
        } else {
            "expired".to_owned()
        };
        let other = if by_lock {
            format!("lock {}", g.lock_id)
        } else {
            format!(
                "guest {}",
                g.guest_id.map_or("?".to_owned(), |x| x.to_string())
            )
        };
        out!(
            "  {}  {}  {}  unlocks {}",
            g.grant_id,
            other,
            state,
            g.unlocks
        );
    }
}

fn print_recent(entries: &[AuditEntry]) {
    out!("recent audit ({}):", entries.len());
    for e in entries {
        out!("  {}", e.line());
    }
}

// -------------------------------------------------------------------------- audit

pub(super) fn audit(store: &Store, a: &AuditArgs) -> Result<(), IssuerdError> {
    let filter = AuditFilter {
        lock_id: a.lock,
        guest_id: a.guest,
        grant_id: a.grant,
        kind: a.kind.clone(),
        reason: a.reason.clone(),
        source: a.source.as_deref().and_then(AuditSource::parse),
        since_ms: a.since,
        until_ms: a.until,
    };
    let entries = store.audit(&filter, a.limit, a.offset)?;
    if a.json {
        return json_out(&serde_json::Value::Array(
            entries.iter().map(AuditEntry::to_json).collect(),
        ));
    }
    let total = store.audit_count(&filter)?;
    for e in &entries {
        out!("{}", e.line());
    }
    eprintln!(
        "{} of {} matching entr{} (newest first{})",
        entries.len(),
        total,
        if total == 1 { "y" } else { "ies" },
        if a.offset > 0 {
            format!(", from #{}", a.offset + 1)
        } else {
            String::new()
        }
    );
    Ok(())
}

// ------------------------------------------------------------------------- alerts

pub(super) fn alerts(store: &Store, a: &AlertsArgs) -> Result<(), IssuerdError> {
    let filter = AlertFilter {
        unacknowledged_only: !a.all,
        ..Default::default()
    };
    let list = store.alerts(&filter, a.limit, 0)?;
    if a.json {
        return json_out(&serde_json::Value::Array(
            list.iter().map(|x| x.to_json()).collect(),
        ));
    }
    for x in &list {
        out!(
            "{}  {}  {}  score {:.2}  {}{}{}  {}",
            show_ms(Some(x.at_ms)),
            x.alert_id,
            x.severity,
            x.score,
            x.kind,
            x.lock_id.map(|l| format!("  lock={l}")).unwrap_or_default(),
            x.guest_id
                .map(|g| format!("  guest={g}"))
                .unwrap_or_default(),
            x.acknowledged_at_ms
                .map(|t| format!(
                    "acknowledged {} by {}",
                    show_ms(Some(t)),
                    x.acknowledged_by.as_deref().unwrap_or("?")
                ))
                .unwrap_or_else(|| x.detail.to_string()),
        );
    }
    let total = store.alert_count(&filter)?;
    eprintln!(
        "{} of {} {}alert(s)",
        list.len(),
        total,
        if a.all { "" } else { "unacknowledged " }
    );
    Ok(())
}
