//! What the running issuer reports: its status (control socket `status`, `list`) and the
//! stream of things it did ([`IssuerEvent`], for the demo and tests).

use std::collections::BTreeMap;

use latchkey::frame::{LockEvent, LockStatus};
use latchkey::{GrantId, GuestId, LiveGrant, LockId, Reason, SessionId};
use serde::{Deserialize, Serialize};

use crate::anomaly::Alert;
use crate::serde_ids::{hexid, hexids};
use crate::store::PendingRevocation;

/// Something the issuer did or refused. Delivered on
/// [`IssuerdHandle::subscribe`](crate::IssuerdHandle::subscribe).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum IssuerEvent {
    /// A request was accepted; both grants were handed to the MQTT client.
    GrantIssued(GrantSummary),
    /// A request was refused (logged with the same reason).
    RequestRefused {
        /// The guest named by the topic.
        guest_id: GuestId,
        /// Why.
        reason: Reason,
    },
    /// A message on `requests/…` or `locks/…/events` whose topic names no valid id.
    MalformedTopic {
        /// The topic.
        topic: String,
    },
    /// A grant was revoked; its Revocation was handed to the MQTT client.
    GrantRevoked {
        /// The grant.
        grant_id: GrantId,
        /// Its lock.
        lock_id: LockId,
    },
    /// A lock confirmed a revocation (kind-4 event): it is no longer re-published.
    RevocationConfirmed {
        /// The grant.
        grant_id: GrantId,
        /// Its lock.
        lock_id: LockId,
    },
    /// A lock event that was accepted (LK-EVT-1..4) and recorded.
    LockEvent(LockEvent),
    /// A lock status that was accepted (LK-EVT-1..4) and recorded.
    LockStatus(LockStatus),
    /// A lock message that was refused (LK-FRM, LK-EVT-1..4): audited as a refusal.
    EventRefused {
        /// The lock named by the topic.
        lock_id: LockId,
        /// Why.
        reason: Reason,
    },
    /// An anomaly alert, new: stored and published on `{p}/alerts`.
    Alert(Alert),
}

/// A live grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantSummary {
    /// The grant.
    #[serde(with = "hexid")]
    pub grant_id: GrantId,
    /// Its lock.
    #[serde(with = "hexid")]
    pub lock_id: LockId,
    /// Its guest.
    #[serde(with = "hexid")]
    pub guest_id: GuestId,
    /// Its session.
    #[serde(with = "hexid")]
    pub session_id: SessionId,
    /// End of validity, Unix seconds.
    pub not_after: u64,
}

impl From<LiveGrant> for GrantSummary {
    fn from(g: LiveGrant) -> Self {
        Self {
            grant_id: g.grant_id,
            lock_id: g.lock_id,
            guest_id: g.guest_id,
            session_id: g.session_id,
            not_after: g.not_after,
        }
    }
}

/// A grant just revoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokedGrant {
    /// The grant.
    #[serde(with = "hexid")]
    pub grant_id: GrantId,
    /// The lock its Revocation was published to.
    #[serde(with = "hexid")]
    pub lock_id: LockId,
}

/// An enrolled guest, without its key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestSummary {
    /// The guest.
    #[serde(with = "hexid")]
    pub guest_id: GuestId,
    /// Its name (may be empty).
    #[serde(default)]
    pub name: String,
    /// Locks it may request grants for.
    #[serde(with = "hexids")]
    pub allowed_locks: Vec<LockId>,
    /// Whether its enrollment is revoked.
    pub revoked: bool,
}

/// A revocation not yet confirmed by its lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingRevocationSummary {
    /// The revoked grant.
    #[serde(with = "hexid")]
    pub grant_id: GrantId,
    /// Its lock.
    #[serde(with = "hexid")]
    pub lock_id: LockId,
    /// Re-published until this Unix time at most.
    pub expires_at: u64,
    /// Publications so far.
    pub publishes: u32,
}

impl From<&PendingRevocation> for PendingRevocationSummary {
    fn from(p: &PendingRevocation) -> Self {
        Self {
            grant_id: p.grant_id,
            lock_id: p.lock_id,
            expires_at: p.expires_at,
            publishes: p.publishes,
        }
    }
}

/// Counters since start.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Requests answered with a grant.
    pub requests_accepted: u64,
    /// Refused requests by reason name.
    pub requests_refused: BTreeMap<String, u64>,
    /// Lock messages (events and statuses) accepted.
    pub events_verified: u64,
    /// Verified lock messages the audit trail already held (not recorded again).
    pub events_duplicate: u64,
    /// Refused events by reason name.
    pub events_refused: BTreeMap<String, u64>,
    /// Messages on a topic naming no valid id.
    pub malformed_topics: u64,
    /// Revocation publications, first ones and re-publications.
    pub revocations_published: u64,
    /// Publications dropped because the MQTT outbox was full.
    pub publishes_dropped: u64,
    /// Anomaly alerts raised (stored and published).
    #[serde(default)]
    pub alerts_raised: u64,
}

/// The running issuer's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuerStatus {
    /// The state directory.
    pub state_dir: String,
    /// The broker the issuer is connected to.
    pub broker_url: String,
    /// `connected`, `connecting` or `disconnected`.
    pub mqtt: String,
    /// Topic prefix.
    pub topic_prefix: String,
    /// Start time, Unix seconds.
    pub started_at_s: u64,
    /// Registered locks.
    #[serde(with = "hexids")]
    pub locks: Vec<LockId>,
    /// Enrolled guests.
    pub guests: Vec<GuestSummary>,
    /// Live grants (unexpired, not revoked).
    pub live_grants: Vec<GrantSummary>,
    /// Revocations still re-published.
    pub pending_revocations: Vec<PendingRevocationSummary>,
    /// Entries in the request replay cache.
    pub request_cache: usize,
    /// Counters since start.
    pub counters: Counters,
}
