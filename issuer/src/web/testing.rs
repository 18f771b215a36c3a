//! An in-memory [`AdminBackend`] and a settable clock, for the web layer's tests and the
//! browser end-to-end test (feature `web-fake`; never in a production build).
//!
//! [`FakeBackend`] keeps everything in one mutex-guarded struct and derives identifiers
//! and keys from a counter (SHA-256), so a test run is deterministic. Besides the trait it
//! has hooks standing in for the daemon: [`FakeBackend::issue_grant`] (a guest's request
//! was granted), [`FakeBackend::record_lock_event`] (a lock reported an unlock or a
//! rejection), [`FakeBackend::add_alert`], and inspectors for assertions.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use latchkey::{GrantId, GuestId, LockId, Reason};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::backend::{AdminBackend, BackendError};
use super::clock::Clock;
use super::config::WebError;
use super::model::{
    AccessSpec, AccessView, ActivityBucket, AdminEvent, AdminUser, AlertQuery, AlertView,
    AuditEntry, AuditFilter, AuditSource, EnrollGuest, Enrollment, GrantQuery, GrantState,
    GrantView, GuestQuery, GuestView, LockStatusView, LockView, LoginState, Overview, Page, Paging,
    RevokedGuest, SessionRecord,
};
use crate::password::hash_password;

/// A clock that only moves when told to.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicU64);

impl ManualClock {
    /// A clock showing `now_ms`.
    pub fn new(now_ms: u64) -> Self {
        Self(AtomicU64::new(now_ms))
    }

    /// Sets the time.
    pub fn set(&self, now_ms: u64) {
        self.0.store(now_ms, Ordering::SeqCst);
    }

    /// Moves the time forward.
    pub fn advance(&self, by: Duration) {
        let ms = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

#[derive(Debug, Default)]
struct State {
    counter: u64,
    unavailable: bool,
    locks: Vec<LockView>,
    guests: BTreeMap<GuestId, GuestView>,
    grants: Vec<GrantView>,
    audit: Vec<AuditEntry>,
    alerts: Vec<AlertView>,
    admins: BTreeMap<String, AdminUser>,
    sessions: BTreeMap<[u8; 32], SessionRecord>,
    admin_events: Vec<AdminEvent>,
}

impl State {
    /// 32 deterministic pseudo-random bytes.
    fn next_bytes(&mut self) -> [u8; 32] {
        self.counter += 1;
        Sha256::digest(format!("latchkey fake backend {}", self.counter)).into()
    }

    fn next_id16(&mut self) -> [u8; 16] {
        let b = self.next_bytes();
        let mut id = [0u8; 16];
        id.copy_from_slice(&b[..16]);
        id
    }

    fn lock_name(&self, lock_id: LockId) -> String {
        self.locks
            .iter()
            .find(|l| l.lock_id == lock_id)
            .map(|l| l.name.clone())
            .unwrap_or_default()
    }

    fn push_audit(
        &mut self,
        at_ms: u64,
        source: AuditSource,
        kind: &str,
        fill: impl FnOnce(&mut AuditEntry),
    ) {
        let mut entry = AuditEntry {
            id: self.audit.len() as u64 + 1,
            at_ms,
            source,
            kind: kind.to_owned(),
            reason: None,
            actor: None,
            lock_id: None,
            guest_id: None,
            grant_id: None,
            detail: String::new(),
        };
        fill(&mut entry);
        self.audit.push(entry);
    }

    fn bundle(&mut self, guest_id: GuestId, locks: &[LockId]) -> Zeroizing<String> {
        let key = Zeroizing::new(hex::encode(self.next_bytes()));
        let bundle = serde_json::json!({
            "latchkey_enrollment": 1,
            "guest_id": guest_id.to_string(),
            "enrollment_key": key.as_str(),
            "broker_url": "mqtt://127.0.0.1:1883",
            "locks": locks.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "company_id": 65535,
        });
        Zeroizing::new(bundle.to_string())
    }

    fn live_guest(&self, guest_id: GuestId) -> Result<&GuestView, BackendError> {
        let guest = self
            .guests
            .get(&guest_id)
            .ok_or_else(|| BackendError::NotFound(format!("guest {guest_id} is not enrolled")))?;
        if guest.revoked_at_ms.is_some() {
            return Err(BackendError::Conflict(format!(
                "guest {guest_id} is revoked"
            )));
        }
        Ok(guest)
    }
}

/// The in-memory backend.
#[derive(Debug)]
pub struct FakeBackend {
    state: Mutex<State>,
    clock: Arc<dyn Clock>,
}

impl FakeBackend {
    /// An empty registry whose records are timestamped by `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            state: Mutex::new(State::default()),
            clock,
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panicking test thread must not hide the state from the others.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn checked(&self) -> Result<MutexGuard<'_, State>, BackendError> {
        let state = self.state();
        if state.unavailable {
            return Err(BackendError::Unavailable(
                "the registry cannot be reached (fake backend set unavailable)".into(),
            ));
        }
        Ok(state)
    }

    /// Makes every trait call fail with [`BackendError::Unavailable`] (or not).
    pub fn set_unavailable(&self, unavailable: bool) {
        self.state().unavailable = unavailable;
    }

    /// Registers a lock.
    pub fn add_lock(&self, name: &str, timezone: &str) -> LockId {
        let mut s = self.state();
        let lock_id = LockId(s.next_id16());
        s.locks.push(LockView {
            lock_id,
            name: name.to_owned(),
            timezone: timezone.to_owned(),
            last_seen_ms: None,
            status: None,
        });
        lock_id
    }

    /// Sets when a lock was last heard from and its last status.
    pub fn set_lock_status(
        &self,
        lock_id: LockId,
        last_seen_ms: u64,
        status: Option<LockStatusView>,
    ) {
        let mut s = self.state();
        if let Some(lock) = s.locks.iter_mut().find(|l| l.lock_id == lock_id) {
            lock.last_seen_ms = Some(last_seen_ms);
            lock.status = status;
        }
    }

    /// Creates an operator account with an argon2id hash of `password`.
    pub fn add_admin(&self, name: &str, password: &str) -> Result<(), WebError> {
        let password_hash = hash_password(password)?;
        self.state().admins.insert(
            name.to_owned(),
            AdminUser {
                name: name.to_owned(),
                password_hash,
                login: LoginState::default(),
            },
        );
        Ok(())
    }

    /// Stands in for the daemon granting a request of `guest_id` at `lock_id`, valid for
    /// `validity_s`: checks the guest's access, stores the grant, records `grant_issued`.
    pub fn issue_grant(
        &self,
        guest_id: GuestId,
        lock_id: LockId,
        validity_s: u64,
    ) -> Result<GrantId, BackendError> {
        let now = self.clock.now_ms();
        let mut s = self.state();
        let guest = s.live_guest(guest_id)?;
        let (guest_name, max_unlocks) = match guest.access.iter().find(|a| a.lock_id == lock_id) {
            Some(a) => (
                guest.name.clone(),
                a.spec
                    .max_unlocks
                    .map_or(0, |m| u16::try_from(m).unwrap_or(u16::MAX)),
            ),
            None => {
                return Err(BackendError::Conflict(format!(
                    "guest {guest_id} has no access at lock {lock_id}"
                )));
            }
        };
        let grant_id = GrantId(s.next_id16());
        let lock_name = s.lock_name(lock_id);
        s.grants.push(GrantView {
            grant_id,
            lock_id,
            lock_name,
            guest_id,
            guest_name,
            issued_at_s: now / 1000,
            not_before_s: now / 1000,
            not_after_s: now / 1000 + validity_s,
            max_unlocks,
            unlocks: 0,
            revoked_at_ms: None,
        });
        if let Some(g) = s.guests.get_mut(&guest_id) {
            g.last_used_ms = Some(now);
        }
        s.push_audit(now, AuditSource::Issuer, "grant_issued", |e| {
            e.lock_id = Some(lock_id);
            e.guest_id = Some(guest_id);
            e.grant_id = Some(grant_id);
            e.detail = format!("valid {validity_s} s");
        });
        Ok(grant_id)
    }

    /// Stands in for a verified lock event at `at_ms`: `unlock` counts on its grant,
    /// `rejection` carries a reason; both feed the chart.
    pub fn record_lock_event(
        &self,
        at_ms: u64,
        lock_id: LockId,
        guest_id: Option<GuestId>,
        grant_id: Option<GrantId>,
        kind: &str,
        reason: Option<Reason>,
    ) {
        let mut s = self.state();
        if kind == "unlock"
            && let Some(g) = s.grants.iter_mut().find(|g| Some(g.grant_id) == grant_id)
        {
            g.unlocks += 1;
        }
        s.lock_last_seen(lock_id, at_ms);
        s.push_audit(at_ms, AuditSource::Lock, kind, |e| {
            e.lock_id = Some(lock_id);
            e.guest_id = guest_id;
            e.grant_id = grant_id;
            e.reason = reason.map(|r| r.name().to_owned());
        });
    }

    /// Stands in for the anomaly scorer raising an alert; returns its id.
    pub fn add_alert(
        &self,
        kind: &str,
        severity: &str,
        score: f64,
        lock_id: Option<LockId>,
        guest_id: Option<GuestId>,
        detail: &str,
    ) -> String {
        let now = self.clock.now_ms();
        let mut s = self.state();
        let alert_id = hex::encode(s.next_id16());
        s.alerts.push(AlertView {
            alert_id: alert_id.clone(),
            at_ms: now,
            kind: kind.to_owned(),
            severity: severity.to_owned(),
            score,
            lock_id,
            guest_id,
            detail: detail.to_owned(),
            acknowledged_at_ms: None,
            acknowledged_by: None,
        });
        alert_id
    }

    /// Every enrolled guest, by id.
    pub fn guests(&self) -> Vec<GuestView> {
        self.state().guests.values().cloned().collect()
    }

    /// Every grant, oldest first.
    pub fn grants(&self) -> Vec<GrantView> {
        self.state().grants.clone()
    }

    /// Every audit record, oldest first.
    pub fn audit_entries(&self) -> Vec<AuditEntry> {
        self.state().audit.clone()
    }

    /// Every alert, oldest first.
    pub fn alerts(&self) -> Vec<AlertView> {
        self.state().alerts.clone()
    }

    /// Every stored session.
    pub fn sessions(&self) -> Vec<SessionRecord> {
        self.state().sessions.values().cloned().collect()
    }

    /// Every sign-in event, oldest first.
    pub fn admin_events(&self) -> Vec<AdminEvent> {
        self.state().admin_events.clone()
    }

    /// An operator's failed-login accounting.
    pub fn login_state(&self, name: &str) -> Option<LoginState> {
        self.state().admins.get(name).map(|a| a.login)
    }
}

impl State {
    fn lock_last_seen(&mut self, lock_id: LockId, at_ms: u64) {
        if let Some(lock) = self.locks.iter_mut().find(|l| l.lock_id == lock_id) {
            lock.last_seen_ms = Some(lock.last_seen_ms.map_or(at_ms, |t| t.max(at_ms)));
        }
    }
}

fn page_of<T: Clone>(items: &[T], paging: Paging) -> Page<T> {
    let offset = usize::try_from(paging.offset).unwrap_or(usize::MAX);
    Page {
        items: items
            .iter()
            .skip(offset)
            .take(paging.limit as usize)
            .cloned()
            .collect(),
        total: items.len() as u64,
    }
}

fn audit_matches(e: &AuditEntry, f: &AuditFilter) -> bool {
    f.lock_id.is_none_or(|id| e.lock_id == Some(id))
        && f.guest_id.is_none_or(|id| e.guest_id == Some(id))
        && f.grant_id.is_none_or(|id| e.grant_id == Some(id))
        && f.source.is_none_or(|s| e.source == s)
        && f.kind.as_ref().is_none_or(|k| &e.kind == k)
        && f.reason
            .as_ref()
            .is_none_or(|r| e.reason.as_ref() == Some(r))
        && f.from_ms.is_none_or(|t| e.at_ms >= t)
        && f.until_ms.is_none_or(|t| e.at_ms < t)
}

impl AdminBackend for FakeBackend {
    async fn overview(&self, now_ms: u64) -> Result<Overview, BackendError> {
        let s = self.checked()?;
        Ok(Overview {
            locks: s.locks.len() as u64,
            guests: s.guests.len() as u64,
            active_guests: s
                .guests
                .values()
                .filter(|g| g.revoked_at_ms.is_none())
                .count() as u64,
            live_grants: s.grants.iter().filter(|g| g.is_live(now_ms)).count() as u64,
            open_alerts: s
                .alerts
                .iter()
                .filter(|a| a.acknowledged_at_ms.is_none())
                .count() as u64,
        })
    }

    async fn activity(
        &self,
        from_ms: u64,
        bucket_ms: u64,
        buckets: u32,
    ) -> Result<Vec<ActivityBucket>, BackendError> {
        let s = self.checked()?;
        let bucket_ms = bucket_ms.max(1);
        let mut out: Vec<ActivityBucket> = (0..u64::from(buckets))
            .map(|i| ActivityBucket {
                start_ms: from_ms + i * bucket_ms,
                ..ActivityBucket::default()
            })
            .collect();
        for e in &s.audit {
            let Some(i) = e.at_ms.checked_sub(from_ms).map(|d| d / bucket_ms) else {
                continue;
            };
            let Some(bucket) = usize::try_from(i).ok().and_then(|i| out.get_mut(i)) else {
                continue;
            };
            match (e.source, e.kind.as_str()) {
                (AuditSource::Lock, "unlock") => bucket.unlocks += 1,
                (AuditSource::Lock, "rejection") | (AuditSource::Issuer, "request_refused") => {
                    bucket.rejections += 1
                }
                _ => {}
            }
        }
        Ok(out)
    }

    async fn list_locks(&self) -> Result<Vec<LockView>, BackendError> {
        let s = self.checked()?;
        let mut locks = s.locks.clone();
        locks.sort_by(|a, b| a.name.cmp(&b.name).then(a.lock_id.cmp(&b.lock_id)));
        Ok(locks)
    }

    async fn list_guests(
        &self,
        query: &GuestQuery,
        paging: Paging,
    ) -> Result<Page<GuestView>, BackendError> {
        let s = self.checked()?;
        let needle = query.name_contains.as_deref().map(str::to_lowercase);
        let mut guests: Vec<GuestView> = s
            .guests
            .values()
            .filter(|g| {
                needle
                    .as_deref()
                    .is_none_or(|n| g.name.to_lowercase().contains(n))
            })
            .cloned()
            .collect();
        guests.sort_by(|a, b| a.name.cmp(&b.name).then(a.guest_id.cmp(&b.guest_id)));
        Ok(page_of(&guests, paging))
    }

    async fn guest(&self, guest_id: GuestId) -> Result<Option<GuestView>, BackendError> {
        Ok(self.checked()?.guests.get(&guest_id).cloned())
    }

    async fn list_grants(
        &self,
        query: &GrantQuery,
        paging: Paging,
    ) -> Result<Page<GrantView>, BackendError> {
        let s = self.checked()?;
        let grants: Vec<GrantView> = s
            .grants
            .iter()
            .rev()
            .filter(|g| match query.state {
                GrantState::Live => g.is_live(query.now_ms),
                GrantState::Past => !g.is_live(query.now_ms),
                GrantState::All => true,
            })
            .filter(|g| query.lock_id.is_none_or(|l| g.lock_id == l))
            .filter(|g| query.guest_id.is_none_or(|id| g.guest_id == id))
            .cloned()
            .collect();
        Ok(page_of(&grants, paging))
    }

    async fn audit(
        &self,
        filter: &AuditFilter,
        paging: Paging,
    ) -> Result<Page<AuditEntry>, BackendError> {
        let s = self.checked()?;
        let mut entries: Vec<AuditEntry> = s
            .audit
            .iter()
            .filter(|e| audit_matches(e, filter))
            .cloned()
            .collect();
        entries.sort_by_key(|e| std::cmp::Reverse((e.at_ms, e.id)));
        Ok(page_of(&entries, paging))
    }

    async fn list_alerts(
        &self,
        query: &AlertQuery,
        paging: Paging,
    ) -> Result<Page<AlertView>, BackendError> {
        let s = self.checked()?;
        let alerts: Vec<AlertView> = s
            .alerts
            .iter()
            .rev()
            .filter(|a| query.include_acknowledged || a.acknowledged_at_ms.is_none())
            .cloned()
            .collect();
        Ok(page_of(&alerts, paging))
    }

    async fn enroll_guest(
        &self,
        actor: &str,
        guest: &EnrollGuest,
    ) -> Result<Enrollment, BackendError> {
        let now = self.clock.now_ms();
        let mut s = self.checked()?;
        // The same checks as the daemon's backend: the policy's.
        guest.access.to_rule()?;
        let mut access = Vec::new();
        for lock_id in &guest.locks {
            if !s.locks.iter().any(|l| l.lock_id == *lock_id) {
                return Err(BackendError::Invalid {
                    field: "locks",
                    message: format!("lock {lock_id} is not registered"),
                });
            }
            access.push(AccessView {
                lock_id: *lock_id,
                lock_name: s.lock_name(*lock_id),
                spec: guest.access.clone(),
            });
        }
        let guest_id = GuestId(s.next_id16());
        let bundle = s.bundle(guest_id, &guest.locks);
        s.guests.insert(
            guest_id,
            GuestView {
                guest_id,
                name: guest.name.clone(),
                key_version: 1,
                created_at_ms: now,
                revoked_at_ms: None,
                last_used_ms: None,
                access,
            },
        );
        s.push_audit(now, AuditSource::Admin, "guest_enrolled", |e| {
            e.actor = Some(actor.to_owned());
            e.guest_id = Some(guest_id);
            e.detail = format!("name {:?}, {} lock(s)", guest.name, guest.locks.len());
        });
        Ok(Enrollment { guest_id, bundle })
    }

    async fn set_access(
        &self,
        actor: &str,
        guest_id: GuestId,
        lock_id: LockId,
        access: Option<&AccessSpec>,
    ) -> Result<(), BackendError> {
        let now = self.clock.now_ms();
        let mut s = self.checked()?;
        s.live_guest(guest_id)?;
        let lock_name = s.lock_name(lock_id);
        if !s.locks.iter().any(|l| l.lock_id == lock_id) {
            return Err(BackendError::Invalid {
                field: "lock",
                message: format!("lock {lock_id} is not registered"),
            });
        }
        if let Some(spec) = access {
            spec.to_rule()?;
        }
        let Some(guest) = s.guests.get_mut(&guest_id) else {
            return Err(BackendError::NotFound(format!(
                "guest {guest_id} is not enrolled"
            )));
        };
        let kind = match access {
            Some(spec) => {
                match guest.access.iter_mut().find(|a| a.lock_id == lock_id) {
                    Some(existing) => existing.spec = spec.clone(),
                    None => guest.access.push(AccessView {
                        lock_id,
                        lock_name,
                        spec: spec.clone(),
                    }),
                }
                "access_set"
            }
            None => {
                let before = guest.access.len();
                guest.access.retain(|a| a.lock_id != lock_id);
                if guest.access.len() == before {
                    return Err(BackendError::NotFound(format!(
                        "guest {guest_id} has no access at lock {lock_id}"
                    )));
                }
                "access_removed"
            }
        };
        s.push_audit(now, AuditSource::Admin, kind, |e| {
            e.actor = Some(actor.to_owned());
            e.guest_id = Some(guest_id);
            e.lock_id = Some(lock_id);
        });
        Ok(())
    }

    async fn revoke_guest(
        &self,
        actor: &str,
        guest_id: GuestId,
    ) -> Result<RevokedGuest, BackendError> {
        let now = self.clock.now_ms();
        let mut s = self.checked()?;
        s.live_guest(guest_id)?;
        if let Some(g) = s.guests.get_mut(&guest_id) {
            g.revoked_at_ms = Some(now);
        }
        let mut revoked = Vec::new();
        for g in s
            .grants
            .iter_mut()
            .filter(|g| g.guest_id == guest_id && g.is_live(now))
        {
            g.revoked_at_ms = Some(now);
            revoked.push((g.grant_id, g.lock_id));
        }
        for (grant_id, lock_id) in &revoked {
            s.push_audit(now, AuditSource::Admin, "grant_revoked", |e| {
                e.actor = Some(actor.to_owned());
                e.guest_id = Some(guest_id);
                e.grant_id = Some(*grant_id);
                e.lock_id = Some(*lock_id);
                e.detail = "with its guest".into();
            });
        }
        s.push_audit(now, AuditSource::Admin, "guest_revoked", |e| {
            e.actor = Some(actor.to_owned());
            e.guest_id = Some(guest_id);
            e.detail = format!("{} live grant(s) revoked", revoked.len());
        });
        Ok(RevokedGuest {
            grants_revoked: u32::try_from(revoked.len()).unwrap_or(u32::MAX),
        })
    }

    async fn revoke_grant(&self, actor: &str, grant_id: GrantId) -> Result<(), BackendError> {
        let now = self.clock.now_ms();
        let mut s = self.checked()?;
        let Some(grant) = s.grants.iter_mut().find(|g| g.grant_id == grant_id) else {
            return Err(BackendError::NotFound(format!(
                "grant {grant_id} was never issued"
            )));
        };
        if !grant.is_live(now) {
            return Err(BackendError::Conflict(format!(
                "grant {grant_id} is not live (expired or already revoked)"
            )));
        }
        grant.revoked_at_ms = Some(now);
        let (lock_id, guest_id) = (grant.lock_id, grant.guest_id);
        s.push_audit(now, AuditSource::Admin, "grant_revoked", |e| {
            e.actor = Some(actor.to_owned());
            e.grant_id = Some(grant_id);
            e.lock_id = Some(lock_id);
            e.guest_id = Some(guest_id);
        });
        Ok(())
    }

    async fn rotate_guest_key(
        &self,
        actor: &str,
        guest_id: GuestId,
    ) -> Result<Enrollment, BackendError> {
        let now = self.clock.now_ms();
        let mut s = self.checked()?;
        let locks: Vec<LockId> = s
            .live_guest(guest_id)?
            .access
            .iter()
            .map(|a| a.lock_id)
            .collect();
        let bundle = s.bundle(guest_id, &locks);
        let version = match s.guests.get_mut(&guest_id) {
            Some(g) => {
                g.key_version += 1;
                g.key_version
            }
            None => {
                return Err(BackendError::NotFound(format!(
                    "guest {guest_id} is not enrolled"
                )));
            }
        };
        s.push_audit(now, AuditSource::Admin, "guest_key_rotated", |e| {
            e.actor = Some(actor.to_owned());
            e.guest_id = Some(guest_id);
            e.detail = format!("key version {version}");
        });
        Ok(Enrollment { guest_id, bundle })
    }

    async fn acknowledge_alert(&self, actor: &str, alert_id: &str) -> Result<(), BackendError> {
        let now = self.clock.now_ms();
        let mut s = self.checked()?;
        let Some(alert) = s.alerts.iter_mut().find(|a| a.alert_id == alert_id) else {
            return Err(BackendError::NotFound(format!(
                "there is no alert {alert_id}"
            )));
        };
        if alert.acknowledged_at_ms.is_some() {
            return Err(BackendError::Conflict(format!(
                "alert {alert_id} is already acknowledged"
            )));
        }
        alert.acknowledged_at_ms = Some(now);
        alert.acknowledged_by = Some(actor.to_owned());
        s.push_audit(now, AuditSource::Admin, "alert_acknowledged", |e| {
            e.actor = Some(actor.to_owned());
            e.detail = format!("alert {alert_id}");
        });
        Ok(())
    }

    async fn admin_user(&self, name: &str) -> Result<Option<AdminUser>, BackendError> {
        Ok(self.checked()?.admins.get(name).cloned())
    }

    async fn set_login_state(&self, name: &str, state: LoginState) -> Result<(), BackendError> {
        let mut s = self.checked()?;
        let admin = s
            .admins
            .get_mut(name)
            .ok_or_else(|| BackendError::NotFound(format!("there is no admin user {name:?}")))?;
        admin.login = state;
        Ok(())
    }

    async fn record_admin_event(&self, event: &AdminEvent) -> Result<(), BackendError> {
        let mut s = self.checked()?;
        s.admin_events.push(event.clone());
        s.push_audit(event.at_ms, AuditSource::Admin, event.kind.as_str(), |e| {
            e.actor = Some(event.user.clone());
        });
        Ok(())
    }

    async fn create_session(&self, session: &SessionRecord) -> Result<(), BackendError> {
        self.checked()?
            .sessions
            .insert(session.token_sha256, session.clone());
        Ok(())
    }

    async fn session(&self, token_sha256: [u8; 32]) -> Result<Option<SessionRecord>, BackendError> {
        Ok(self.checked()?.sessions.get(&token_sha256).cloned())
    }

    async fn touch_session(
        &self,
        token_sha256: [u8; 32],
        last_seen_ms: u64,
    ) -> Result<(), BackendError> {
        if let Some(session) = self.checked()?.sessions.get_mut(&token_sha256) {
            session.last_seen_ms = last_seen_ms;
        }
        Ok(())
    }

    async fn delete_session(&self, token_sha256: [u8; 32]) -> Result<(), BackendError> {
        self.checked()?.sessions.remove(&token_sha256);
        Ok(())
    }

    async fn delete_expired_sessions(
        &self,
        now_ms: u64,
        idle_cutoff_ms: u64,
    ) -> Result<(), BackendError> {
        self.checked()?
            .sessions
            .retain(|_, s| s.expires_at_ms > now_ms && s.last_seen_ms > idle_cutoff_ms);
        Ok(())
    }
}
