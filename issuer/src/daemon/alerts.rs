//! Anomaly alerts in the daemon: the [`AnomalyEngine`] is fed every audit record the daemon
//! writes about requests, grants and lock messages (mapped by [`record_of`]), with a
//! [`LockDirectory`] built from the registry's locks. At start it replays the recent audit
//! trail to learn habits and discards the alerts of the replay. The daemon stores each new
//! alert, publishes it on `{p}/alerts` and emits it as an
//! [`IssuerEvent`](crate::IssuerEvent).

use tracing::warn;

use crate::anomaly::{
    Alert, AnomalyEngine, AuditRecord, Coordinates, LockDirectory, LockInfo, RecordKind,
};
use crate::config::AnomalyOptions;
use crate::error::IssuerdError;
use crate::store::{self, AuditSource, NewAudit, RegisteredLock, Store};

/// The topic alerts are published on (spec §6.1, informative): JSON objects of
/// `docs/alerts.schema.json`, not Latchkey frames.
pub fn alerts_topic(prefix: &str) -> String {
    format!("{prefix}/alerts")
}

/// Audit rows read per query during the warm-up.
const WARMUP_BATCH: u32 = 2_000;

/// The engine and what it knows of the locks.
pub(crate) struct Anomalies {
    engine: AnomalyEngine,
    locks: LockDirectory,
    warmup_days: u32,
}

/// What the warm-up did.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct WarmUp {
    /// Audit rows read.
    pub(crate) rows: u64,
    /// Alerts raised and discarded.
    pub(crate) discarded: usize,
}

impl Anomalies {
    pub(crate) fn new(opts: &AnomalyOptions) -> Result<Self, IssuerdError> {
        let engine = AnomalyEngine::new(opts.config.clone())
            .map_err(|e| IssuerdError::Config(e.to_string()))?;
        Ok(Self {
            engine,
            locks: LockDirectory::new(),
            warmup_days: opts.warmup_days,
        })
    }

    /// Rebuilds the lock directory from the registry's locks (time zones, coordinates). A
    /// lock whose time zone or position does not read is left out (UTC, no position) and
    /// logged.
    pub(crate) fn set_locks(&mut self, locks: &[RegisteredLock]) {
        let mut dir = LockDirectory::new();
        for l in locks {
            let coordinates = match l.coordinates.map(|(lat, lon)| Coordinates::new(lat, lon)) {
                None => None,
                Some(Ok(c)) => Some(c),
                Some(Err(e)) => {
                    warn!(lock = %l.lock_id, error = %e, "anomaly: the lock's position is ignored");
                    None
                }
            };
            match LockInfo::named(&l.timezone, coordinates) {
                Ok(info) => dir.insert(l.lock_id, info),
                Err(e) => {
                    warn!(lock = %l.lock_id, error = %e, "anomaly: the lock's hours are read in UTC")
                }
            }
        }
        self.locks = dir;
    }

    /// Scores one audit entry just written; the alerts it raises.
    pub(crate) fn observe(&mut self, entry: &NewAudit) -> Vec<Alert> {
        match record_of(entry) {
            Some(r) => self.engine.observe(&r, &self.locks),
            None => Vec::new(),
        }
    }

    /// Replays the audit trail of the last `warmup_days` before `now_ms`, oldest first, and
    /// discards the alerts it raises (they were, or could have been, raised before).
    pub(crate) fn warm_up(&mut self, store: &Store, now_ms: u64) -> Result<WarmUp, IssuerdError> {
        let since = now_ms.saturating_sub(u64::from(self.warmup_days) * 86_400_000);
        let mut done = WarmUp::default();
        if self.warmup_days == 0 {
            return Ok(done);
        }
        let mut after = 0;
        loop {
            let batch = store.audit_ascending(since, after, WARMUP_BATCH)?;
            let Some(last) = batch.last() else {
                return Ok(done);
            };
            after = last.id;
            for row in &batch {
                done.rows += 1;
                done.discarded += self.observe(&row.entry).len();
            }
        }
    }
}

/// The engine's record of an audit entry: the issuer's grants and refused requests and the
/// locks' verified events and statuses (their kinds are [`RecordKind`] names); `None` for
/// anything else (administrators' changes, refused lock messages, issuer notes).
pub(crate) fn record_of(e: &NewAudit) -> Option<AuditRecord> {
    if e.source == AuditSource::Admin {
        return None;
    }
    let kind = RecordKind::from_name(&e.kind)?;
    let mut r = AuditRecord::new(e.at_ms, kind);
    r.lock_id = e.lock_id;
    r.guest_id = e.guest_id;
    r.grant_id = e.grant_id;
    r.reason.clone_from(&e.reason);
    r.lock_time_ms = e.lock_time_ms;
    if kind == RecordKind::Status
        && let Some(counters) = e
            .detail
            .as_ref()
            .and_then(|d| d.get("counters"))
            .and_then(|c| c.as_object())
    {
        for (reason, count) in counters {
            let count = count
                .as_u64()
                .map_or(0, |c| u32::try_from(c).unwrap_or(u32::MAX));
            r = r.with_counter(reason.clone(), count);
        }
    }
    Some(r)
}

/// An alert as the registry stores it.
pub(crate) fn stored(a: &Alert) -> store::Alert {
    store::Alert {
        alert_id: a.alert_id.clone(),
        at_ms: a.at_ms,
        kind: a.kind.name().to_owned(),
        severity: a.severity.name().to_owned(),
        score: a.score,
        lock_id: a.lock_id,
        guest_id: a.guest_id,
        detail: a.detail.clone(),
        acknowledged_at_ms: None,
        acknowledged_by: None,
    }
}

#[cfg(test)]
mod tests {
    use latchkey::{GrantId, GuestId, LockId, Reason};

    use super::*;
    use crate::store::kinds;

    #[test]
    fn issuer_and_lock_entries_map_to_records_and_admin_entries_do_not() {
        let lock = LockId([1; 16]);
        let e = NewAudit::new(5, AuditSource::Lock, kinds::REJECTION)
            .lock(lock)
            .guest(GuestId([2; 16]))
            .grant(GrantId([3; 16]), latchkey::SessionId([4; 8]))
            .reason(Reason::SessionRevoked)
            .message("ab".repeat(16), 4);
        let r = record_of(&e).unwrap();
        assert_eq!(r.kind, RecordKind::Rejection);
        assert_eq!(r.reason(), Some("session_revoked"));
        assert_eq!((r.lock_id, r.lock_time_ms), (Some(lock), Some(4)));
        assert_eq!(r.grant_id, Some(GrantId([3; 16])));

        let status = NewAudit::new(6, AuditSource::Lock, kinds::STATUS)
            .lock(lock)
            .detail(serde_json::json!({ "counters": { "bad_beacon_mac": 7 } }));
        let r = record_of(&status).unwrap();
        assert_eq!(r.counters.len(), 1);
        assert_eq!(
            (r.counters[0].reason.as_str(), r.counters[0].count),
            ("bad_beacon_mac", 7)
        );

        let refused = NewAudit::new(7, AuditSource::Issuer, kinds::REQUEST_REFUSED)
            .reason(Reason::GuestRevoked);
        assert_eq!(
            record_of(&refused).unwrap().kind,
            RecordKind::RequestRefused
        );
        for skipped in [
            NewAudit::new(8, AuditSource::Issuer, kinds::LOCK_MESSAGE_REFUSED),
            NewAudit::new(8, AuditSource::Admin, kinds::GRANT_REVOKED),
            NewAudit::new(8, AuditSource::Admin, "guest_enrolled"),
        ] {
            assert!(record_of(&skipped).is_none(), "{}", skipped.kind);
        }
    }
}
