//! The engine's input: one row of the issuer's audit trail, in the shape the detectors need.
//!
//! The daemon maps each stored `audit` row (contract §2) to an [`AuditRecord`]: `kind` from
//! its kind name ([`RecordKind::from_name`]), `reason` from its reason name, `guest_id`
//! filled from the grant when the lock's event names only a grant, `lock_time_ms` from the
//! lock's signed timestamp. Reasons stay names (not [`latchkey::Reason`]) so that a record
//! with a reason this build does not know is still scored, not dropped.

use std::fmt;

use latchkey::{GrantId, GuestId, LockId};
use serde::{Deserialize, Serialize};

/// What happened, as recorded by the issuer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    /// Issuer: a grant was issued to a guest for a lock.
    GrantIssued,
    /// Issuer: a grant request was refused (`reason`: `guest_revoked`, `not_authorized`,
    /// `rate_limited`, `outside_schedule`, …).
    RequestRefused,
    /// Lock event kind 1: the lock unlocked for a guest.
    Unlock,
    /// Lock event kind 2: the lock refused something (`reason`: `bad_response_mac`,
    /// `clock_skew`, `session_revoked`, `locked_out`, …).
    Rejection,
    /// Lock event kind 3: a grant was installed.
    GrantInstalled,
    /// Lock event kind 4: a revocation was applied.
    RevocationApplied,
    /// Lock event kind 5: a guest was locked out after repeated failed handshakes
    /// (`reason`: the failure that triggered it).
    Lockout,
    /// Lock event kind 6: a lockout ended.
    LockoutEnded,
    /// LockStatus: the lock's periodic status, with its aggregated rejection counters.
    Status,
}

impl RecordKind {
    /// Every kind.
    pub const ALL: &'static [RecordKind] = &[
        RecordKind::GrantIssued,
        RecordKind::RequestRefused,
        RecordKind::Unlock,
        RecordKind::Rejection,
        RecordKind::GrantInstalled,
        RecordKind::RevocationApplied,
        RecordKind::Lockout,
        RecordKind::LockoutEnded,
        RecordKind::Status,
    ];

    /// The snake_case name (also the serde form).
    pub const fn name(self) -> &'static str {
        match self {
            RecordKind::GrantIssued => "grant_issued",
            RecordKind::RequestRefused => "request_refused",
            RecordKind::Unlock => "unlock",
            RecordKind::Rejection => "rejection",
            RecordKind::GrantInstalled => "grant_installed",
            RecordKind::RevocationApplied => "revocation_applied",
            RecordKind::Lockout => "lockout",
            RecordKind::LockoutEnded => "lockout_ended",
            RecordKind::Status => "status",
        }
    }

    /// The kind with this snake_case name, if any.
    pub fn from_name(name: &str) -> Option<RecordKind> {
        RecordKind::ALL.iter().copied().find(|k| k.name() == name)
    }
}

impl fmt::Display for RecordKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One aggregated counter of a lock status: how many times the lock refused for `reason`
/// since its previous status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReasonCount {
    /// The reason name (spec §8.13), e.g. `bad_beacon_mac`.
    pub reason: String,
    /// How many refusals.
    pub count: u32,
}

/// One audit record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// When the issuer recorded it, Unix ms (the issuer's clock). Sliding windows and
    /// deduplication run on this time.
    pub at_ms: u64,
    /// For lock events: the lock's own timestamp, Unix ms. When present, it is the time the
    /// thing happened (an event may arrive late), used for the hour of an unlock and for
    /// travel times.
    pub lock_time_ms: Option<u64>,
    /// What happened.
    pub kind: RecordKind,
    /// The lock, when the record concerns one.
    pub lock_id: Option<LockId>,
    /// The guest, when known (for lock events: the guest of the grant).
    pub guest_id: Option<GuestId>,
    /// The grant, when known.
    pub grant_id: Option<GrantId>,
    /// The reason name for refusals, rejections and lockouts.
    pub reason: Option<String>,
    /// For [`RecordKind::Status`]: the lock's aggregated rejection counters.
    pub counters: Vec<ReasonCount>,
}

impl AuditRecord {
    /// A record of `kind` at `at_ms` with no ids, reason or counters; the `with_*` methods
    /// fill those in.
    pub fn new(at_ms: u64, kind: RecordKind) -> Self {
        Self {
            at_ms,
            lock_time_ms: None,
            kind,
            lock_id: None,
            guest_id: None,
            grant_id: None,
            reason: None,
            counters: Vec::new(),
        }
    }

    /// Sets the lock.
    pub fn with_lock(mut self, lock_id: LockId) -> Self {
        self.lock_id = Some(lock_id);
        self
    }

    /// Sets the guest.
    pub fn with_guest(mut self, guest_id: GuestId) -> Self {
        self.guest_id = Some(guest_id);
        self
    }

    /// Sets the grant.
    pub fn with_grant(mut self, grant_id: GrantId) -> Self {
        self.grant_id = Some(grant_id);
        self
    }

    /// Sets the reason name.
    pub fn with_reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    /// Sets the lock's own timestamp.
    pub fn with_lock_time(mut self, lock_time_ms: u64) -> Self {
        self.lock_time_ms = Some(lock_time_ms);
        self
    }

    /// Adds a status counter.
    pub fn with_counter(mut self, reason: impl Into<String>, count: u32) -> Self {
        self.counters.push(ReasonCount {
            reason: reason.into(),
            count,
        });
        self
    }

    /// When the thing happened: the lock's timestamp if the record has one, else the time
    /// the issuer recorded it.
    pub fn event_time_ms(&self) -> u64 {
        self.lock_time_ms.unwrap_or(self.at_ms)
    }

    /// The reason name, if any.
    pub fn reason(&self) -> Option<&str> {
        self.reason.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_record_kind_round_trips_through_its_name() {
        for kind in RecordKind::ALL {
            assert_eq!(RecordKind::from_name(kind.name()), Some(*kind));
            let json = serde_json::to_string(kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.name()));
        }
        assert_eq!(RecordKind::from_name("Unlock"), None);
    }

    #[test]
    fn event_time_prefers_the_lock_timestamp() {
        let r = AuditRecord::new(10_000, RecordKind::Unlock);
        assert_eq!(r.event_time_ms(), 10_000);
        assert_eq!(r.with_lock_time(9_000).event_time_ms(), 9_000);
    }
}
