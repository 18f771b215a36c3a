//! Detector 3: a revoked guest is still trying.
//!
//! Method. A lock `rejection` with reason `session_revoked` (a beacon or Response of a
//! revoked session the lock still recognises, LK-REV-5) or an issuer `request_refused` with
//! reason `guest_revoked` is proof that a revoked identity is in use: a lost or stolen
//! phone, a former tenant, a copied key. Each is a `revoked_guest` alert, deduplicated per
//! guest: after an alert, further attempts by that guest within `dedup_window_s` are
//! counted, not alerted; the first attempt after the window alerts again and reports how
//! many were held back. When the record names no guest, the grant (then the lock) stands in
//! for it. Score = attempts since the previous alert of that guest, this one included
//! (1 for a first alert).

use latchkey::{GrantId, GuestId, LockId};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::alert::{Alert, AlertKind};
use super::bounded::LruMap;
use super::config::{AnomalyConfigError, check_u64};
use super::record::{AuditRecord, RecordKind};

/// Settings of the revoked-guest detector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RevokedGuestConfig {
    /// Whether the detector runs. Default true.
    pub enabled: bool,
    /// Lock rejection reasons that mean "revoked". Default `session_revoked`.
    pub lock_reasons: Vec<String>,
    /// Issuer refusal reasons that mean "revoked". Default `guest_revoked`.
    pub issuer_reasons: Vec<String>,
    /// After an alert, the same guest's attempts are held back this long, seconds.
    /// Default 3 600; 0..=604 800 (0: every attempt alerts).
    pub dedup_window_s: u64,
}

impl Default for RevokedGuestConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            lock_reasons: vec!["session_revoked".to_owned()],
            issuer_reasons: vec!["guest_revoked".to_owned()],
            dedup_window_s: 3_600,
        }
    }
}

impl RevokedGuestConfig {
    pub(crate) fn validate(&self) -> Result<(), AnomalyConfigError> {
        check_u64(
            "revoked_guest.dedup_window_s",
            self.dedup_window_s,
            0,
            604_800,
            "0..=604800",
        )
    }
}

/// Who an attempt is attributed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Subject {
    Guest(GuestId),
    Grant(GrantId),
    Lock(LockId),
    Nobody,
}

/// The alerts of one subject.
#[derive(Debug, Clone, Copy)]
struct Episode {
    last_alert_at_ms: u64,
    held_back: u64,
}

/// Detector 3 (see the module docs).
#[derive(Debug, Clone)]
pub struct RevokedGuestDetector {
    config: RevokedGuestConfig,
    subjects: LruMap<Subject, Episode>,
}

impl RevokedGuestDetector {
    /// A detector with no history, holding at most `max_subjects` guests.
    pub fn new(config: RevokedGuestConfig, max_subjects: usize) -> Self {
        Self {
            config,
            subjects: LruMap::new(max_subjects),
        }
    }

    /// Scores one record; pushes a `revoked_guest` alert unless deduplicated.
    pub fn observe(&mut self, record: &AuditRecord, out: &mut Vec<Alert>) {
        if !self.config.enabled {
            return;
        }
        let (reasons, source) = match record.kind {
            RecordKind::Rejection => (&self.config.lock_reasons, "lock"),
            RecordKind::RequestRefused => (&self.config.issuer_reasons, "issuer"),
            _ => return,
        };
        let Some(reason) = record.reason().filter(|r| reasons.iter().any(|x| x == r)) else {
            return;
        };
        let subject = match (record.guest_id, record.grant_id, record.lock_id) {
            (Some(g), _, _) => Subject::Guest(g),
            (None, Some(g), _) => Subject::Grant(g),
            (None, None, Some(l)) => Subject::Lock(l),
            (None, None, None) => Subject::Nobody,
        };
        let dedup_ms = self.config.dedup_window_s.saturating_mul(1000);
        let mut fresh = false;
        let episode = self.subjects.touch_or_insert_with(subject, || {
            fresh = true;
            Episode {
                last_alert_at_ms: record.at_ms,
                held_back: 0,
            }
        });
        if !fresh {
            if record.at_ms.saturating_sub(episode.last_alert_at_ms) < dedup_ms {
                episode.held_back = episode.held_back.saturating_add(1);
                return;
            }
            episode.last_alert_at_ms = record.at_ms;
        }
        let held_back = std::mem::take(&mut episode.held_back);
        out.push(Alert::new(
            AlertKind::RevokedGuest,
            record.at_ms,
            record.lock_id,
            record.guest_id,
            held_back.saturating_add(1) as f64,
            source,
            json!({
                "source": source,
                "reason": reason,
                "grant_id": record.grant_id.map(|g| g.to_string()),
                "event_time_ms": record.event_time_ms(),
                "attempts_held_back": held_back,
                "dedup_window_s": self.config.dedup_window_s,
            }),
        ));
    }

    /// How many guests (or stand-ins) are tracked.
    pub fn tracked(&self) -> usize {
        self.subjects.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_736_121_600_000;
    const LOCK: LockId = LockId([2; 16]);
    const GUEST: GuestId = GuestId([1; 16]);
    const MIN: u64 = 60_000;

    fn beacon(at_ms: u64) -> AuditRecord {
        AuditRecord::new(at_ms, RecordKind::Rejection)
            .with_lock(LOCK)
            .with_guest(GUEST)
            .with_grant(GrantId([3; 16]))
            .with_reason("session_revoked")
    }

    #[test]
    fn a_revoked_session_beacon_is_a_critical_alert() {
        let mut d = RevokedGuestDetector::new(RevokedGuestConfig::default(), 10);
        let mut out = Vec::new();
        d.observe(&beacon(T0), &mut out);
        assert_eq!(out.len(), 1);
        let a = &out[0];
        assert_eq!(a.kind, AlertKind::RevokedGuest);
        assert_eq!(a.severity, crate::anomaly::Severity::Critical);
        assert_eq!((a.lock_id, a.guest_id), (Some(LOCK), Some(GUEST)));
        assert_eq!(a.detail["source"], "lock");
        assert_eq!(a.detail["grant_id"], "03".repeat(16));
        assert_eq!(a.score, 1.0);
    }

    #[test]
    fn a_grant_request_refused_guest_revoked_is_an_alert() {
        let mut d = RevokedGuestDetector::new(RevokedGuestConfig::default(), 10);
        let mut out = Vec::new();
        let refused = AuditRecord::new(T0, RecordKind::RequestRefused)
            .with_lock(LOCK)
            .with_guest(GUEST)
            .with_reason("guest_revoked");
        d.observe(&refused, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].detail["source"], "issuer");
        // The same reason name from a lock is not "revoked" (locks say session_revoked).
        let odd = AuditRecord::new(T0, RecordKind::Rejection)
            .with_guest(GuestId([5; 16]))
            .with_reason("guest_revoked");
        d.observe(&odd, &mut out);
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn attempts_within_the_dedup_window_are_held_back_then_reported() {
        let mut d = RevokedGuestDetector::new(RevokedGuestConfig::default(), 10);
        let mut out = Vec::new();
        for i in 0..5 {
            d.observe(&beacon(T0 + i * MIN), &mut out);
        }
        assert_eq!(out.len(), 1);
        // 59:59 after the alert: still held back.
        d.observe(&beacon(T0 + 60 * MIN - 1), &mut out);
        assert_eq!(out.len(), 1);
        // Exactly one window after the alert: alerts again, reporting the 5 held back.
        d.observe(&beacon(T0 + 60 * MIN), &mut out);
        assert_eq!(out.len(), 2);
        assert_eq!(out[1].detail["attempts_held_back"], 5);
        assert_eq!(out[1].score, 6.0);
        assert_ne!(out[0].alert_id, out[1].alert_id);
    }

    #[test]
    fn dedup_is_per_guest() {
        let mut d = RevokedGuestDetector::new(RevokedGuestConfig::default(), 10);
        let mut out = Vec::new();
        d.observe(&beacon(T0), &mut out);
        d.observe(&beacon(T0 + 1).with_guest(GuestId([9; 16])), &mut out);
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn without_a_guest_the_grant_stands_in_for_dedup() {
        let mut d = RevokedGuestDetector::new(RevokedGuestConfig::default(), 10);
        let mut out = Vec::new();
        let mut r = beacon(T0);
        r.guest_id = None;
        d.observe(&r, &mut out);
        r.at_ms += MIN;
        d.observe(&r, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].guest_id, None);
    }

    #[test]
    fn a_zero_window_alerts_every_attempt() {
        let config = RevokedGuestConfig {
            dedup_window_s: 0,
            ..RevokedGuestConfig::default()
        };
        let mut d = RevokedGuestDetector::new(config, 10);
        let mut out = Vec::new();
        for i in 0..3 {
            d.observe(&beacon(T0 + i), &mut out);
        }
        assert_eq!(out.len(), 3);
    }

    #[test]
    fn other_rejections_are_ignored() {
        let mut d = RevokedGuestDetector::new(RevokedGuestConfig::default(), 10);
        let mut out = Vec::new();
        d.observe(&beacon(T0).with_reason("bad_response_mac"), &mut out);
        d.observe(
            &AuditRecord::new(T0, RecordKind::Unlock).with_guest(GUEST),
            &mut out,
        );
        assert!(out.is_empty());
        assert_eq!(d.tracked(), 0);
    }
}
