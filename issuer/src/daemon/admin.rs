//! The admin web's backend in the daemon: [`AdminBackend`] over the registry, on a
//! connection of its own (a [`Store`] is `Send` but not `Sync`: one mutex, each call on a
//! blocking thread). Actions that publish (revoking a grant or a guest, rotating a key with
//! the revocation of its grants) go through the daemon's command channel, so their
//! Revocations are published, stored and re-published exactly as those of the control
//! socket. Enrollment writes the bundle `enroll-guest` writes. Every action is audited with
//! the operator as `web:NAME`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use latchkey::{GrantId, GuestId, LockId};
use tokio::sync::mpsc;
use tracing::error;
use zeroize::Zeroizing;

use crate::config::WebOptions;
use crate::control::{self, Command};
use crate::enroll::{EnrollGuestOptions, RotateGuestKeyOptions, enroll_in, rotate_guest_key_in};
use crate::error::IssuerdError;
use crate::store::{
    self, AccessChange, AdminSession, AlertFilter, AuditSource, GrantFilter, GrantRecord,
    KekSource, NewAudit, RegisteredLock, Store,
};
use crate::time;
use crate::web::{
    AccessSpec, AccessView, ActivityBucket, AdminBackend, AdminEvent, AdminEventKind, AdminUser,
    AlertQuery, AlertView, AuditEntry, AuditFilter, BackendError, EnrollGuest, Enrollment,
    GrantQuery, GrantState, GrantView, GuestQuery, GuestView, LockStatusView, LockView, LoginState,
    Overview, Page, Paging, RevokedGuest, SessionRecord,
};

/// The audit trail's actor for an operator of the admin web.
fn web_actor(user: &str) -> String {
    format!("web:{user}")
}

/// [`AdminBackend`] of the running daemon.
pub(crate) struct DaemonBackend {
    store: Arc<Mutex<Store>>,
    commands: mpsc::Sender<Command>,
    web: WebOptions,
}

impl std::fmt::Debug for DaemonBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DaemonBackend").finish_non_exhaustive()
    }
}

impl DaemonBackend {
    pub(crate) fn new(store: Store, commands: mpsc::Sender<Command>, web: WebOptions) -> Self {
        Self {
            store: Arc::new(Mutex::new(store)),
            commands,
            web,
        }
    }

    /// Runs `f` on the registry, on a blocking thread.
    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<T, IssuerdError> + Send + 'static,
    ) -> Result<T, BackendError> {
        let store = Arc::clone(&self.store);
        let joined = tokio::task::spawn_blocking(move || {
            // A panicked call cannot leave the connection half-written (transactions).
            let mut s = store.lock().unwrap_or_else(PoisonError::into_inner);
            f(&mut s)
        })
        .await;
        match joined {
            Ok(r) => r.map_err(backend_error),
            Err(e) => {
                error!(error = %e, "admin web: a registry call did not finish");
                Err(BackendError::Unavailable(
                    "the registry call did not finish; try again".to_owned(),
                ))
            }
        }
    }

    /// Asks the daemon's loop, as the control socket does.
    async fn ask<T>(
        &self,
        make: impl FnOnce(tokio::sync::oneshot::Sender<Result<T, IssuerdError>>) -> Command,
    ) -> Result<T, BackendError> {
        control::ask(&self.commands, make)
            .await
            .map_err(backend_error)
    }

    /// A guest that exists and is not revoked (the actions on a revoked guest conflict).
    async fn live_guest(&self, guest_id: GuestId) -> Result<(), BackendError> {
        let guest = self.with(move |s| s.guest(&guest_id)).await?;
        match guest {
            None => Err(BackendError::NotFound(format!(
                "guest {guest_id} is not enrolled"
            ))),
            Some(g) if g.revoked() => Err(BackendError::Conflict(format!(
                "guest {guest_id} is revoked"
            ))),
            Some(_) => Ok(()),
        }
    }
}

/// The web's error for a registry or daemon error: the message as the operator sees it.
fn backend_error(e: IssuerdError) -> BackendError {
    match e {
        IssuerdError::UnknownGuest(_)
        | IssuerdError::LockNotRegistered(_)
        | IssuerdError::UnknownAlert(_)
        | IssuerdError::UnknownAdminUser(_)
        | IssuerdError::NoAccessRule { .. } => BackendError::NotFound(e.to_string()),
        IssuerdError::UnknownLocks(_) | IssuerdError::NoLocks => BackendError::Invalid {
            field: "locks",
            message: e.to_string(),
        },
        IssuerdError::GuestExists(_)
        | IssuerdError::GrantNotLive(_)
        | IssuerdError::AlertAcknowledged(_) => BackendError::Conflict(e.to_string()),
        IssuerdError::Invalid { what, detail } => BackendError::Invalid {
            field: match what {
                "name" => "name",
                "schedule" => "schedule",
                _ => "lock",
            },
            message: detail,
        },
        IssuerdError::Stopped => {
            BackendError::Unavailable("the issuer is shutting down; try again later".to_owned())
        }
        other => {
            error!(error = %other, "admin web: registry error");
            BackendError::Unavailable(format!("the registry cannot be read or written: {other}"))
        }
    }
}

/// A lock's last status, as the locks page shows it (from [`store::status_json`]).
fn status_view(json: &str) -> Option<LockStatusView> {
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    let u32_of = |k: &str| {
        v.get(k)
            .and_then(serde_json::Value::as_u64)
            .map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX))
    };
    let flag = |k: &str| v.get(k).and_then(serde_json::Value::as_bool) == Some(true);
    Some(LockStatusView {
        uptime_s: u32_of("uptime_s"),
        battery_pct: v
            .get("battery_pct")
            .and_then(serde_json::Value::as_u64)
            .and_then(|n| u8::try_from(n).ok()),
        mains_power: flag("mains_power"),
        clock_unsynchronised: flag("clock_unsynchronised"),
        tamper: flag("tamper"),
        sessions: u32_of("sessions"),
        revocations: u32_of("revocations"),
        lockouts: u16::try_from(u32_of("lockouts")).unwrap_or(u16::MAX),
    })
}

fn lock_view(l: &RegisteredLock) -> LockView {
    LockView {
        lock_id: l.lock_id,
        name: l.name.clone(),
        timezone: l.timezone.clone(),
        last_seen_ms: l.last_seen_ms,
        status: l.last_status_json.as_deref().and_then(status_view),
    }
}

/// A guest with its access rules (lock names from `names`).
fn guest_view(
    s: &Store,
    g: store::EnrolledGuest,
    names: &BTreeMap<LockId, String>,
) -> Result<GuestView, IssuerdError> {
    let access = s
        .access_of_guest(&g.guest_id)?
        .into_iter()
        .map(|a| AccessView {
            lock_id: a.lock_id,
            lock_name: names.get(&a.lock_id).cloned().unwrap_or_default(),
            spec: AccessSpec::from_rule(&a.rule),
        })
        .collect();
    Ok(GuestView {
        guest_id: g.guest_id,
        name: g.name,
        key_version: g.key_version,
        created_at_ms: g.created_at_ms,
        revoked_at_ms: g.revoked_at_ms,
        last_used_ms: g.last_used_ms,
        access,
    })
}

fn lock_names(s: &Store) -> Result<BTreeMap<LockId, String>, IssuerdError> {
    Ok(s.locks()?
        .into_iter()
        .map(|l| (l.lock_id, l.name))
        .collect())
}

fn grant_view(
    g: GrantRecord,
    locks: &BTreeMap<LockId, String>,
    guests: &BTreeMap<GuestId, String>,
) -> GrantView {
    let guest_id = g.guest_id.unwrap_or(GuestId::ZERO);
    GrantView {
        grant_id: g.grant_id,
        lock_id: g.lock_id,
        lock_name: locks.get(&g.lock_id).cloned().unwrap_or_default(),
        guest_id,
        guest_name: guests.get(&guest_id).cloned().unwrap_or_default(),
        issued_at_s: g.issued_at.unwrap_or(0),
        not_before_s: g.not_before.unwrap_or(0),
        not_after_s: g.not_after,
        max_unlocks: g.max_unlocks,
        unlocks: g.unlocks,
        revoked_at_ms: g.revoked_at_ms,
    }
}

fn audit_view(e: store::AuditEntry) -> AuditEntry {
    let n = e.entry;
    let reason = n
        .reason
        .or_else(|| n.reason_code.map(|c| format!("reason_{c}")));
    AuditEntry {
        id: u64::try_from(e.id).unwrap_or(0),
        at_ms: n.at_ms,
        source: n.source,
        kind: n.kind,
        reason,
        actor: n.actor,
        lock_id: n.lock_id,
        guest_id: n.guest_id,
        grant_id: n.grant_id,
        detail: n.detail.map(|d| d.to_string()).unwrap_or_default(),
    }
}

fn alert_view(a: store::Alert) -> AlertView {
    AlertView {
        alert_id: a.alert_id,
        at_ms: a.at_ms,
        kind: a.kind,
        severity: a.severity,
        score: a.score,
        lock_id: a.lock_id,
        guest_id: a.guest_id,
        detail: a.detail.to_string(),
        acknowledged_at_ms: a.acknowledged_at_ms,
        acknowledged_by: a.acknowledged_by,
    }
}

fn hex32(text: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out).ok()?;
    Some(out)
}

impl AdminBackend for DaemonBackend {
    async fn overview(&self, now_ms: u64) -> Result<Overview, BackendError> {
        self.with(move |s| {
            let (guests, active_guests) = s.guest_counts()?;
            Ok(Overview {
                locks: s.locks()?.len() as u64,
                guests,
                active_guests,
                live_grants: s.live_grant_count(now_ms / 1000)?,
                open_alerts: s.alert_count(&AlertFilter {
                    unacknowledged_only: true,
                    ..Default::default()
                })?,
            })
        })
        .await
    }

    async fn activity(
        &self,
        from_ms: u64,
        bucket_ms: u64,
        buckets: u32,
    ) -> Result<Vec<ActivityBucket>, BackendError> {
        let until = from_ms.saturating_add(bucket_ms.saturating_mul(u64::from(buckets)));
        self.with(move |s| {
            Ok(s.audit_buckets(from_ms, until, bucket_ms, None)?
                .into_iter()
                .map(|b| ActivityBucket {
                    start_ms: b.start_ms,
                    unlocks: b.unlocks,
                    rejections: b.lock_rejections + b.request_refusals,
                })
                .collect())
        })
        .await
    }

    async fn list_locks(&self) -> Result<Vec<LockView>, BackendError> {
        let mut locks: Vec<LockView> = self
            .with(|s| Ok(s.locks()?.iter().map(lock_view).collect()))
            .await?;
        locks.sort_by(|a, b| a.name.cmp(&b.name).then(a.lock_id.cmp(&b.lock_id)));
        Ok(locks)
    }

    async fn list_guests(
        &self,
        query: &GuestQuery,
        paging: Paging,
    ) -> Result<Page<GuestView>, BackendError> {
        let needle = query.name_contains.clone();
        self.with(move |s| {
            let names = lock_names(s)?;
            let (guests, total) = s.guests_page(needle.as_deref(), paging.limit, paging.offset)?;
            let items = guests
                .into_iter()
                .map(|g| guest_view(s, g, &names))
                .collect::<Result<_, _>>()?;
            Ok(Page { items, total })
        })
        .await
    }

    async fn guest(&self, guest_id: GuestId) -> Result<Option<GuestView>, BackendError> {
        self.with(move |s| {
            let names = lock_names(s)?;
            s.guest(&guest_id)?
                .map(|g| guest_view(s, g, &names))
                .transpose()
        })
        .await
    }

    async fn list_grants(
        &self,
        query: &GrantQuery,
        paging: Paging,
    ) -> Result<Page<GrantView>, BackendError> {
        let filter = GrantFilter {
            live: match query.state {
                GrantState::Live => Some(true),
                GrantState::Past => Some(false),
                GrantState::All => None,
            },
            // "Live" at a second boundary as the page judges it (`not_after_s * 1000 > now`).
            now_s: query.now_ms / 1000,
            lock_id: query.lock_id,
            guest_id: query.guest_id,
        };
        self.with(move |s| {
            let (grants, total) = s.grants_page(&filter, paging.limit, paging.offset)?;
            let locks = lock_names(s)?;
            let mut guests = BTreeMap::new();
            for id in grants.iter().filter_map(|g| g.guest_id) {
                if let std::collections::btree_map::Entry::Vacant(v) = guests.entry(id)
                    && let Some(g) = s.guest(&id)?
                {
                    v.insert(g.name);
                }
            }
            let items = grants
                .into_iter()
                .map(|g| grant_view(g, &locks, &guests))
                .collect();
            Ok(Page { items, total })
        })
        .await
    }

    async fn audit(
        &self,
        filter: &AuditFilter,
        paging: Paging,
    ) -> Result<Page<AuditEntry>, BackendError> {
        let f = store::AuditFilter {
            lock_id: filter.lock_id,
            guest_id: filter.guest_id,
            grant_id: filter.grant_id,
            kind: filter.kind.clone(),
            reason: filter.reason.clone(),
            source: filter.source,
            since_ms: filter.from_ms,
            until_ms: filter.until_ms,
        };
        self.with(move |s| {
            let total = s.audit_count(&f)?;
            let items = s
                .audit(&f, paging.limit, paging.offset)?
                .into_iter()
                .map(audit_view)
                .collect();
            Ok(Page { items, total })
        })
        .await
    }

    async fn list_alerts(
        &self,
        query: &AlertQuery,
        paging: Paging,
    ) -> Result<Page<AlertView>, BackendError> {
        let f = AlertFilter {
            unacknowledged_only: !query.include_acknowledged,
            ..Default::default()
        };
        self.with(move |s| {
            let total = s.alert_count(&f)?;
            let items = s
                .alerts(&f, paging.limit, paging.offset)?
                .into_iter()
                .map(alert_view)
                .collect();
            Ok(Page { items, total })
        })
        .await
    }

    async fn enroll_guest(
        &self,
        actor: &str,
        guest: &EnrollGuest,
    ) -> Result<Enrollment, BackendError> {
        let rule = guest.access.to_rule()?;
        let mut opts =
            EnrollGuestOptions::new(guest.locks.clone(), "", self.web.public_broker_url.clone());
        // Shown once on the page, never written to a file.
        opts.out_file = None;
        opts.name = guest.name.clone();
        opts.company_id = self.web.company_id;
        opts.access = AccessChange::from_rule(&rule);
        let actor = web_actor(actor);
        let enrolled = self.with(move |s| enroll_in(s, &opts, &actor)).await?;
        Ok(Enrollment {
            guest_id: enrolled.guest_id,
            bundle: Zeroizing::new(enrolled.qr_text.to_string()),
        })
    }

    async fn set_access(
        &self,
        actor: &str,
        guest_id: GuestId,
        lock_id: LockId,
        access: Option<&AccessSpec>,
    ) -> Result<(), BackendError> {
        self.live_guest(guest_id).await?;
        let change = access
            .map(|a| a.to_rule().map(|r| AccessChange::from_rule(&r)))
            .transpose()?;
        let actor = web_actor(actor);
        self.with(move |s| {
            let now = time::now().0;
            match change {
                Some(c) => s.set_access(&guest_id, &[lock_id], &c, now, &actor),
                None => s.remove_access(&guest_id, &lock_id, now, &actor),
            }
        })
        .await
    }

    async fn revoke_guest(
        &self,
        actor: &str,
        guest_id: GuestId,
    ) -> Result<RevokedGuest, BackendError> {
        self.live_guest(guest_id).await?;
        let actor = web_actor(actor);
        let revoked = self
            .ask(|tx| Command::RevokeGuest(guest_id, actor, tx))
            .await?;
        Ok(RevokedGuest {
            grants_revoked: u32::try_from(revoked.len()).unwrap_or(u32::MAX),
        })
    }

    async fn revoke_grant(&self, actor: &str, grant_id: GrantId) -> Result<(), BackendError> {
        if self.with(move |s| s.grant(&grant_id)).await?.is_none() {
            return Err(BackendError::NotFound(format!(
                "grant {grant_id} was never issued"
            )));
        }
        let actor = web_actor(actor);
        self.ask(|tx| Command::RevokeGrant(grant_id, actor, tx))
            .await
            .map(|_| ())
    }

    async fn rotate_guest_key(
        &self,
        actor: &str,
        guest_id: GuestId,
    ) -> Result<Enrollment, BackendError> {
        self.live_guest(guest_id).await?;
        let opts = RotateGuestKeyOptions {
            guest_id,
            files: Default::default(),
            broker_url: self.web.public_broker_url.clone(),
            company_id: self.web.company_id,
            force: false,
            kek: KekSource::Auto,
        };
        let by = web_actor(actor);
        let rotated = self
            .with(move |s| rotate_guest_key_in(s, &opts, &by))
            .await?;
        // Its live grants were sealed to the old key's holder: revoked, and published.
        let by = web_actor(actor);
        self.ask(|tx| Command::RevokeGrantsOf(guest_id, by, tx))
            .await?;
        Ok(Enrollment {
            guest_id,
            bundle: Zeroizing::new(rotated.qr_text.to_string()),
        })
    }

    async fn acknowledge_alert(&self, actor: &str, alert_id: &str) -> Result<(), BackendError> {
        let id = alert_id.to_owned();
        let actor = web_actor(actor);
        self.with(move |s| {
            match s.alert(&id)? {
                None => return Err(IssuerdError::UnknownAlert(id)),
                Some(a) if a.acknowledged_at_ms.is_some() => {
                    return Err(IssuerdError::AlertAcknowledged(id));
                }
                Some(_) => {}
            }
            s.acknowledge_alert(&id, time::now().0, &actor)
        })
        .await
    }

    async fn admin_user(&self, name: &str) -> Result<Option<AdminUser>, BackendError> {
        let name = name.to_owned();
        self.with(move |s| {
            let (Some(user), Some(password_hash)) =
                (s.admin_user(&name)?, s.admin_password_hash(&name)?)
            else {
                return Ok(None);
            };
            Ok(Some(AdminUser {
                name: user.name,
                password_hash,
                login: LoginState {
                    failed_logins: user.failed_logins,
                    first_failure_ms: user.first_failure_ms.unwrap_or(0),
                    locked_until_ms: user.locked_until_ms,
                },
            }))
        })
        .await
    }

    async fn set_login_state(&self, name: &str, state: LoginState) -> Result<(), BackendError> {
        let name = name.to_owned();
        self.with(move |s| {
            s.set_admin_login_state(
                &name,
                state.failed_logins,
                (state.failed_logins > 0).then_some(state.first_failure_ms),
                state.locked_until_ms,
            )
        })
        .await
    }

    async fn record_admin_event(&self, event: &AdminEvent) -> Result<(), BackendError> {
        let event = event.clone();
        self.with(move |s| {
            let mut entry = NewAudit::new(event.at_ms, AuditSource::Admin, event.kind.as_str())
                .actor(&web_actor(&event.user));
            if let AdminEventKind::LoginLockedOut { locked_until_ms } = event.kind {
                entry = entry.detail(serde_json::json!({ "locked_until_ms": locked_until_ms }));
            }
            s.append_audit(&entry)?;
            if event.kind == AdminEventKind::LoginSucceeded {
                s.record_login_success(&event.user, event.at_ms)?;
            }
            Ok(())
        })
        .await
    }

    async fn create_session(&self, session: &SessionRecord) -> Result<(), BackendError> {
        let record = AdminSession {
            token_sha256: hex::encode(session.token_sha256),
            user: session.user.clone(),
            csrf_token: session.csrf_token.to_string(),
            created_at_ms: session.created_at_ms,
            last_seen_ms: session.last_seen_ms,
            expires_at_ms: session.expires_at_ms,
        };
        self.with(move |s| s.create_admin_session(&record)).await
    }

    async fn session(&self, token_sha256: [u8; 32]) -> Result<Option<SessionRecord>, BackendError> {
        let stored = self
            .with(move |s| s.admin_session(&hex::encode(token_sha256)))
            .await?;
        Ok(stored.and_then(|r| {
            Some(SessionRecord {
                token_sha256: hex32(&r.token_sha256)?,
                user: r.user,
                csrf_token: Zeroizing::new(r.csrf_token),
                created_at_ms: r.created_at_ms,
                last_seen_ms: r.last_seen_ms,
                expires_at_ms: r.expires_at_ms,
            })
        }))
    }

    async fn touch_session(
        &self,
        token_sha256: [u8; 32],
        last_seen_ms: u64,
    ) -> Result<(), BackendError> {
        self.with(move |s| s.touch_admin_session(&hex::encode(token_sha256), last_seen_ms))
            .await
    }

    async fn delete_session(&self, token_sha256: [u8; 32]) -> Result<(), BackendError> {
        self.with(move |s| s.delete_admin_session(&hex::encode(token_sha256)))
            .await
    }

    async fn delete_expired_sessions(
        &self,
        now_ms: u64,
        idle_cutoff_ms: u64,
    ) -> Result<(), BackendError> {
        // The store deletes `last_seen_ms < before`; the trait asks for `<= cutoff`.
        self.with(move |s| {
            s.purge_admin_sessions(now_ms, idle_cutoff_ms.saturating_add(1))
                .map(|_| ())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_status_reads_back_as_the_locks_page_shows_it() {
        let json = serde_json::json!({
            "uptime_s": 90, "battery_pct": 12, "mains_power": false,
            "clock_unsynchronised": true, "tamper": false, "sessions": 3,
            "revocations": 1, "lockouts": 2, "counters": {}
        })
        .to_string();
        let v = status_view(&json).unwrap();
        assert_eq!(
            (
                v.uptime_s,
                v.battery_pct,
                v.clock_unsynchronised,
                v.lockouts
            ),
            (90, Some(12), true, 2)
        );
        let none = serde_json::json!({ "battery_pct": null }).to_string();
        assert_eq!(status_view(&none).unwrap().battery_pct, None);
        assert!(status_view("not json").is_none());
    }

    #[test]
    fn registry_errors_reach_the_operator_as_web_errors() {
        assert!(matches!(
            backend_error(IssuerdError::UnknownGuest(GuestId([1; 16]))),
            BackendError::NotFound(_)
        ));
        assert!(matches!(
            backend_error(IssuerdError::GrantNotLive(GrantId([1; 16]))),
            BackendError::Conflict(_)
        ));
        assert!(matches!(
            backend_error(IssuerdError::NoLocks),
            BackendError::Invalid { field: "locks", .. }
        ));
        assert!(matches!(
            backend_error(IssuerdError::Stopped),
            BackendError::Unavailable(_)
        ));
    }
}
