//! The issuer (spec §7.4): checks sealed grant requests from enrolled guests and answers
//! each accepted one with a LockGrant (RSA-OAEP wrapped, RSA-PSS signed) for the lock and a
//! GuestGrant (AES-256-GCM sealed) for the guest, as an access policy allows and within its
//! rate limits. Revokes grants; verifies the events and status reports of locks.

mod lock_messages;
mod policy;
mod rate;

use alloc::collections::{BTreeSet, BinaryHeap};
use alloc::vec::Vec;
use core::cmp::Reverse;
use hashbrown::{HashMap, HashSet};

use lock_messages::LockMessages;
pub use lock_messages::LockReport;
pub use policy::{AccessPolicy, AccessRule, AllowAll, Authorization, StaticAccess};
use rate::RateLimiter;

use crate::constants as c;
use crate::crypto::rsa::{
    DS_LOCK_EVENT, DS_LOCK_GRANT, DS_LOCK_STATUS, DS_REVOCATION, RsaPrivateKey, RsaPublicKey,
};
use crate::crypto::{EnrollmentKey, SessionKey, open_request, seal_guest_grant};
use crate::frame::{
    GUEST_GRANT_LEN, GrantRequestView, GuestGrantHeader, LockEventView, LockGrantHeader,
    LockStatusView, MessageType, Revocation, append_signature,
};
use crate::lock::{ConfigError, config_check};
use crate::time::Clock;
use crate::{
    EventId, GrantId, GuestId, LockId, Reason, RequestId, RevocationId, SessionId, UnixMillis,
};

/// The issuer's configuration.
#[derive(Debug, Clone)]
pub struct IssuerConfig {
    /// The issuer's RSA signing key.
    pub signing_key: RsaPrivateKey,
    /// Requests are accepted within ± this many seconds of the issuer's clock.
    pub request_window_s: u64,
    /// Capacity of the request-id replay cache.
    pub request_cache_capacity: usize,
    /// Longest validity granted (s); a request asks for at most this.
    pub max_grant_validity_s: u64,
    /// not_before is set this many seconds before the issue time, so a lock whose clock
    /// runs behind accepts the session at once.
    pub backdate_s: u64,
    /// Most live (unexpired) grants tracked for revocation.
    pub max_live_grants: usize,
    /// Lock messages are accepted within ± this many seconds of the issuer's clock
    /// (LK-EVT-3).
    pub event_window_s: u64,
    /// Message ids remembered per lock (LK-EVT-4).
    pub event_replay_capacity: usize,
    /// Requests a guest may make at once (LK-ISS-11).
    pub rate_guest_burst: u32,
    /// Requests per hour a guest's bucket refills.
    pub rate_guest_per_hour: u32,
    /// Requests for one lock at once (LK-ISS-11).
    pub rate_lock_burst: u32,
    /// Requests per hour a lock's bucket refills.
    pub rate_lock_per_hour: u32,
}

impl IssuerConfig {
    /// Defaults for everything but the key.
    pub fn new(signing_key: RsaPrivateKey) -> Self {
        Self {
            signing_key,
            request_window_s: c::REQUEST_WINDOW_S.default,
            request_cache_capacity: c::REQUEST_CACHE_CAPACITY.default,
            max_grant_validity_s: 3_600,
            backdate_s: c::MAX_CLOCK_SKEW_S.default,
            max_live_grants: 1_000_000,
            event_window_s: c::EVENT_WINDOW_S.default,
            event_replay_capacity: c::EVENT_REPLAY_CAPACITY.default,
            rate_guest_burst: c::RATE_GUEST_BURST.default,
            rate_guest_per_hour: c::RATE_GUEST_PER_HOUR.default,
            rate_lock_burst: c::RATE_LOCK_BURST.default,
            rate_lock_per_hour: c::RATE_LOCK_PER_HOUR.default,
        }
    }

    /// Checks the tunables' ranges.
    pub fn validate(&self) -> Result<(), ConfigError> {
        config_check(c::REQUEST_WINDOW_S, self.request_window_s)?;
        config_check(c::REQUEST_CACHE_CAPACITY, self.request_cache_capacity)?;
        config_check(c::MAX_CLOCK_SKEW_S, self.backdate_s)?;
        config_check(c::MAX_GRANT_VALIDITY_S, self.max_grant_validity_s)?;
        // The lock refuses validity beyond its own max, which is at most this range's top;
        // the backdate counts towards validity.
        config_check(
            c::MAX_GRANT_VALIDITY_S,
            self.max_grant_validity_s.saturating_add(self.backdate_s),
        )?;
        if self.max_live_grants == 0 {
            return Err(ConfigError {
                name: "max_live_grants",
            });
        }
        config_check(c::EVENT_WINDOW_S, self.event_window_s)?;
        config_check(c::EVENT_REPLAY_CAPACITY, self.event_replay_capacity)?;
        config_check(c::RATE_GUEST_BURST, self.rate_guest_burst)?;
        config_check(c::RATE_GUEST_PER_HOUR, self.rate_guest_per_hour)?;
        config_check(c::RATE_LOCK_BURST, self.rate_lock_burst)?;
        config_check(c::RATE_LOCK_PER_HOUR, self.rate_lock_per_hour)
    }
}

/// An enrolled guest as the issuer knows it.
#[derive(Debug, Clone)]
pub struct GuestRecord {
    /// The enrollment key.
    pub enrollment_key: EnrollmentKey,
    /// Whether the enrollment was revoked (LK-ISS-2).
    pub revoked: bool,
    /// The locks this guest may open (LK-ISS-7).
    pub allowed_locks: BTreeSet<LockId>,
}

/// Both messages of an accepted request, with their topics' identities.
#[derive(Debug, Clone)]
pub struct IssuedGrant {
    /// The lock (publish `lock_grant` on its grants topic).
    pub lock_id: LockId,
    /// The guest (publish `guest_grant` on its grants topic).
    pub guest_id: GuestId,
    /// The grant.
    pub grant_id: GrantId,
    /// The session.
    pub session_id: SessionId,
    /// Start of validity, Unix seconds.
    pub not_before: u64,
    /// End of validity, Unix seconds.
    pub not_after: u64,
    /// The LockGrant's unlock limit, from the access policy (LK-LIM-1); 0 = no limit.
    pub max_unlocks: u16,
    /// The LockGrant payload.
    pub lock_grant: Vec<u8>,
    /// The GuestGrant payload.
    pub guest_grant: [u8; GUEST_GRANT_LEN],
}

/// A revocation to publish on the lock's grants topic.
#[derive(Debug, Clone)]
pub struct IssuedRevocation {
    /// The lock.
    pub lock_id: LockId,
    /// The revoked grant.
    pub grant_id: GrantId,
    /// The Revocation payload.
    pub payload: Vec<u8>,
}

/// A grant the issuer still tracks for revocation: what a daemon persists so that a
/// restarted issuer can still revoke grants it issued before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveGrant {
    /// The grant.
    pub grant_id: GrantId,
    /// Its lock.
    pub lock_id: LockId,
    /// Its guest.
    pub guest_id: GuestId,
    /// Its session.
    pub session_id: SessionId,
    /// End of validity, Unix seconds.
    pub not_after: u64,
}

#[derive(Debug, Clone, Copy)]
struct Live {
    lock_id: LockId,
    guest_id: GuestId,
    session_id: SessionId,
    not_after: u64,
}

/// The issuer's state machine.
#[derive(Debug)]
pub struct Issuer {
    cfg: IssuerConfig,
    clock: Clock,
    locks: HashMap<LockId, RsaPublicKey>,
    guests: HashMap<GuestId, GuestRecord>,
    seen: HashSet<(GuestId, RequestId)>,
    seen_expiry: BinaryHeap<Reverse<(u64, GuestId, RequestId)>>,
    live: HashMap<GrantId, Live>,
    live_sessions: HashSet<(LockId, SessionId)>,
    live_expiry: BinaryHeap<Reverse<(u64, GrantId)>>,
    /// Requests timestamped before this (Unix seconds) are stale: set after a restart that
    /// lost the request cache, so a request captured before it cannot be replayed.
    request_floor_s: u64,
    guest_rate: RateLimiter<GuestId>,
    lock_rate: RateLimiter<LockId>,
    lock_messages: LockMessages,
}

impl Issuer {
    /// An issuer with no locks and no guests.
    pub fn new(cfg: IssuerConfig) -> Result<Self, ConfigError> {
        cfg.validate()?;
        Ok(Self {
            guest_rate: RateLimiter::new(cfg.rate_guest_burst, cfg.rate_guest_per_hour),
            lock_rate: RateLimiter::new(cfg.rate_lock_burst, cfg.rate_lock_per_hour),
            lock_messages: LockMessages::new(cfg.event_replay_capacity, cfg.event_window_s),
            cfg,
            clock: Clock::default(),
            locks: HashMap::new(),
            guests: HashMap::new(),
            seen: HashSet::new(),
            seen_expiry: BinaryHeap::new(),
            live: HashMap::new(),
            live_sessions: HashSet::new(),
            live_expiry: BinaryHeap::new(),
            request_floor_s: 0,
        })
    }

    /// Every grant still tracked (unexpired, not revoked), for persistence.
    pub fn live_grants(&self) -> Vec<LiveGrant> {
        let mut v: Vec<LiveGrant> = self
            .live
            .iter()
            .map(|(g, l)| LiveGrant {
                grant_id: *g,
                lock_id: l.lock_id,
                guest_id: l.guest_id,
                session_id: l.session_id,
                not_after: l.not_after,
            })
            .collect();
        v.sort_by_key(|g| (g.not_after, g.grant_id));
        v
    }

    /// Tracks a grant issued before a restart, so it can be revoked (no messages are sent).
    pub fn restore_live_grant(&mut self, g: LiveGrant) {
        self.live.insert(
            g.grant_id,
            Live {
                lock_id: g.lock_id,
                guest_id: g.guest_id,
                session_id: g.session_id,
                not_after: g.not_after,
            },
        );
        self.live_sessions.insert((g.lock_id, g.session_id));
        self.live_expiry.push(Reverse((g.not_after, g.grant_id)));
    }

    /// After a restart that lost the request cache (**LK-ISS-5**): refuse every request
    /// timestamped before `timestamp_s` as `stale_request`, so no request seen before the
    /// restart can be replayed. Call with the restart time.
    pub fn refuse_requests_before(&mut self, timestamp_s: u64) {
        self.request_floor_s = self.request_floor_s.max(timestamp_s);
    }

    /// The configuration.
    pub fn config(&self) -> &IssuerConfig {
        &self.cfg
    }

    /// The issuer's public key (locks verify grants and revocations with it).
    pub fn public_key(&self) -> RsaPublicKey {
        self.cfg.signing_key.public_key()
    }

    /// Registers (or re-keys) a lock.
    pub fn add_lock(&mut self, lock: LockId, key: RsaPublicKey) {
        self.locks.insert(lock, key);
    }

    /// Enrolls (or re-enrolls) a guest.
    pub fn add_guest(
        &mut self,
        guest: GuestId,
        enrollment_key: EnrollmentKey,
        allowed_locks: BTreeSet<LockId>,
    ) {
        self.guests.insert(
            guest,
            GuestRecord {
                enrollment_key,
                revoked: false,
                allowed_locks,
            },
        );
    }

    /// Revokes a guest's enrollment: its later requests are refused (`guest_revoked`).
    /// Returns whether the guest was known. Revoke its live grants with [`Issuer::revoke_grant`].
    pub fn revoke_guest(&mut self, guest: &GuestId) -> bool {
        self.guests
            .get_mut(guest)
            .map(|g| g.revoked = true)
            .is_some()
    }

    /// Live grants of a guest (to revoke them all).
    pub fn live_grants_of(&self, guest: &GuestId, lock: Option<&LockId>) -> Vec<GrantId> {
        self.live
            .iter()
            .filter(|(_, l)| l.guest_id == *guest && lock.is_none_or(|x| *x == l.lock_id))
            .map(|(g, _)| *g)
            .collect()
    }

    /// A GrantRequest from topic `{prefix}/requests/{topic_guest}` (spec §7.4,
    /// LK-ISS-1..11) with no access policy beyond the guest's allowed locks ([`AllowAll`]).
    pub fn handle_request<R: rand_core::CryptoRng + ?Sized>(
        &mut self,
        now: UnixMillis,
        topic_guest: GuestId,
        payload: &[u8],
        rng: &mut R,
    ) -> Result<IssuedGrant, Reason> {
        self.handle_request_with(now, topic_guest, payload, &mut AllowAll, rng)
    }

    /// A GrantRequest from topic `{prefix}/requests/{topic_guest}` (spec §7.4,
    /// LK-ISS-1..12), decided by `policy` after the fixed checks (LK-ISS-12).
    pub fn handle_request_with<P: AccessPolicy + ?Sized, R: rand_core::CryptoRng + ?Sized>(
        &mut self,
        now: UnixMillis,
        topic_guest: GuestId,
        payload: &[u8],
        policy: &mut P,
        rng: &mut R,
    ) -> Result<IssuedGrant, Reason> {
        let now = self.clock.observe(now);
        self.purge(now);
        let now_s = now.secs();
        let req = GrantRequestView::parse(payload)?;
        let h = req.header;
        // LK-ISS-1: the topic (which the broker's ACL ties to the client) names the sender.
        if h.guest_id != topic_guest {
            return Err(Reason::GuestMismatch);
        }
        // LK-ISS-2
        let guest = self.guests.get(&h.guest_id).ok_or(Reason::UnknownGuest)?;
        if guest.revoked {
            return Err(Reason::GuestRevoked);
        }
        // LK-ISS-3: nothing else of the request is trusted before the seal opens.
        let requested = open_request(&guest.enrollment_key, &req)?;
        // LK-ISS-4
        let w = self.cfg.request_window_s;
        if h.timestamp.saturating_add(w) < now_s || h.timestamp < self.request_floor_s {
            return Err(Reason::StaleRequest);
        }
        if h.timestamp > now_s.saturating_add(w) {
            return Err(Reason::FutureRequest);
        }
        // LK-ISS-5: remembered until its timestamp leaves the window, after which LK-ISS-4
        // refuses it anyway.
        let key = (h.guest_id, h.request_id);
        if self.seen.contains(&key) {
            return Err(Reason::RequestReplay);
        }
        // LK-ISS-8
        if self.seen.len() >= self.cfg.request_cache_capacity {
            return Err(Reason::RequestCacheFull);
        }
        // LK-ISS-6
        let lock_key = self
            .locks
            .get(&h.lock_id)
            .ok_or(Reason::UnknownLock)?
            .clone();
        // LK-ISS-7
        if !guest.allowed_locks.contains(&h.lock_id) {
            return Err(Reason::NotAuthorized);
        }
        let enrollment_key = guest.enrollment_key.clone();
        // LK-ISS-12: the access policy, and its cap on not_after.
        let auth = policy
            .authorize(now_s, h.guest_id, h.lock_id)
            .map_err(policy::refusal)?;
        if auth.not_after_max.is_some_and(|cap| cap <= now_s) {
            return Err(Reason::OutsideAccessWindow);
        }
        // LK-ISS-11: both buckets are checked before either is taken.
        let now_ms = now.0;
        if !self.guest_rate.allows(&h.guest_id, now_ms)
            || !self.lock_rate.allows(&h.lock_id, now_ms)
        {
            return Err(Reason::RateLimited);
        }
        // LK-ISS-9
        if requested == 0 {
            return Err(Reason::InvalidValidity);
        }
        // LK-ISS-10
        if self.live.len() >= self.cfg.max_live_grants {
            return Err(Reason::GrantCapReached);
        }
        // The request counts as seen, and against both buckets, from here on, whatever
        // happens next.
        self.seen.insert(key);
        self.seen_expiry.push(Reverse((
            h.timestamp.saturating_add(w),
            h.guest_id,
            h.request_id,
        )));
        self.guest_rate.take(h.guest_id, now_ms);
        self.lock_rate.take(h.lock_id, now_ms);

        let validity = u64::from(requested).min(self.cfg.max_grant_validity_s);
        let not_before = now_s.saturating_sub(self.cfg.backdate_s);
        let not_after = now_s
            .saturating_add(validity)
            .min(auth.not_after_max.unwrap_or(u64::MAX));
        let grant_id = GrantId::random(rng);
        // Session ids are unique per lock among live grants (LK-GRT-8 at the lock).
        let mut session_id = SessionId::random(rng);
        while self.live_sessions.contains(&(h.lock_id, session_id)) {
            session_id = SessionId::random(rng);
        }
        let k_s = SessionKey::random(rng);

        let lock_header = LockGrantHeader {
            lock_id: h.lock_id,
            grant_id,
            session_id,
            guest_id: h.guest_id,
            issued_at: now_s,
            not_before,
            not_after,
            max_unlocks: auth.max_unlocks,
        };
        let wrapped = lock_key
            .wrap_session_key(rng, &lock_header.to_bytes(), &k_s)
            .ok_or(Reason::FieldOutOfRange)?;
        let mut lock_grant = Vec::with_capacity(88 + wrapped.len() + self.cfg.signing_key.size());
        lock_header.encode_unsigned(&wrapped, &mut lock_grant)?;
        let sig = self.cfg.signing_key.sign(rng, DS_LOCK_GRANT, &lock_grant);
        append_signature(&mut lock_grant, &sig)?;

        let guest_header = GuestGrantHeader {
            guest_id: h.guest_id,
            lock_id: h.lock_id,
            request_id: h.request_id,
            grant_id,
            session_id,
            issued_at: now_s,
            not_before,
            not_after,
        };
        let mut nonce = [0u8; 12];
        rng.fill_bytes(&mut nonce);
        let sealed = seal_guest_grant(&enrollment_key, &guest_header, &k_s, &nonce);
        let mut guest_grant = [0u8; GUEST_GRANT_LEN];
        guest_header
            .encode(&nonce, &sealed, &mut guest_grant)
            .map_err(|_| Reason::Truncated)?;

        self.live.insert(
            grant_id,
            Live {
                lock_id: h.lock_id,
                guest_id: h.guest_id,
                session_id,
                not_after,
            },
        );
        self.live_sessions.insert((h.lock_id, session_id));
        self.live_expiry.push(Reverse((not_after, grant_id)));
        Ok(IssuedGrant {
            lock_id: h.lock_id,
            guest_id: h.guest_id,
            grant_id,
            session_id,
            not_before,
            not_after,
            max_unlocks: auth.max_unlocks,
            lock_grant,
            guest_grant,
        })
    }

    /// Revokes a live grant: returns the signed Revocation for the lock's grants topic, or
    /// `None` if the grant is unknown or already expired.
    pub fn revoke_grant<R: rand_core::CryptoRng + ?Sized>(
        &mut self,
        now: UnixMillis,
        grant_id: GrantId,
        rng: &mut R,
    ) -> Option<IssuedRevocation> {
        let now = self.clock.observe(now);
        self.purge(now);
        let live = self.live.remove(&grant_id)?;
        self.live_sessions.remove(&(live.lock_id, live.session_id));
        let rev = Revocation {
            lock_id: live.lock_id,
            revocation_id: RevocationId::random(rng),
            grant_id,
            session_id: live.session_id,
            issued_at: now.secs(),
            expires_at: live.not_after,
        };
        let mut payload = Vec::new();
        rev.encode_unsigned(&mut payload);
        let sig = self.cfg.signing_key.sign(rng, DS_REVOCATION, &payload);
        append_signature(&mut payload, &sig).ok()?;
        Some(IssuedRevocation {
            lock_id: live.lock_id,
            grant_id,
            payload,
        })
    }

    /// A message from topic `{prefix}/locks/{topic_lock}/events`: a LockEvent or a
    /// LockStatus (spec §7.4, LK-EVT-1..4). Checks, in order: LK-FRM (type 0x05 or 0x06),
    /// LK-EVT-2 (`wrong_lock`), the lock enrolled (`unknown_lock`), LK-EVT-1
    /// (`bad_event_signature`), LK-EVT-3 (`stale_event`, `future_event`), LK-EVT-4
    /// (`event_replay`); then the message id is recorded.
    pub fn handle_lock_message(
        &mut self,
        now: UnixMillis,
        topic_lock: LockId,
        payload: &[u8],
    ) -> Result<LockReport, Reason> {
        let now = self.clock.observe(now);
        let (report, ds, signed, signature) = match MessageType::of(payload)? {
            MessageType::LockEvent => {
                let v = LockEventView::parse(payload)?;
                (
                    LockReport::Event(v.fields),
                    DS_LOCK_EVENT,
                    v.signed,
                    v.signature,
                )
            }
            MessageType::LockStatus => {
                let v = LockStatusView::parse(payload)?;
                (
                    LockReport::Status(v.fields),
                    DS_LOCK_STATUS,
                    v.signed,
                    v.signature,
                )
            }
            _ => return Err(Reason::WrongType),
        };
        // LK-EVT-2: the topic (which the broker's ACL ties to the lock) names the sender.
        if report.lock_id() != topic_lock {
            return Err(Reason::WrongLock);
        }
        let key = self.locks.get(&topic_lock).ok_or(Reason::UnknownLock)?;
        // LK-EVT-1
        if !key.verify(ds, signed, signature) {
            return Err(Reason::BadEventSignature);
        }
        // LK-EVT-3
        let now_s = now.secs();
        let (id, ts) = (report.message_id(), report.timestamp_ms());
        self.lock_messages.check_window(ts, now_s)?;
        // LK-EVT-4: an id leaves the cache only once LK-EVT-3 refuses it.
        self.lock_messages.purge_lock(&topic_lock, now_s);
        self.lock_messages.check_replay(&topic_lock, &id, ts)?;
        self.lock_messages.record(topic_lock, id, ts);
        Ok(report)
    }

    /// After a restart (**LK-EVT-4**): remembers a lock message accepted before it (the
    /// daemon replays the ids of its audit records), so that its replay is refused.
    pub fn restore_lock_message(&mut self, lock: LockId, id: EventId, timestamp_ms: u64) {
        self.lock_messages.record(lock, id, timestamp_ms);
    }

    /// After a restart that did not restore the lock message ids (**LK-EVT-4**): refuse
    /// every lock message timestamped before `timestamp_ms` (`event_replay`). Call with the
    /// restart time.
    pub fn refuse_lock_messages_before(&mut self, timestamp_ms: u64) {
        self.lock_messages.refuse_before(timestamp_ms);
    }

    /// When [`Issuer::handle_timeout`] should run next.
    pub fn poll_timeout(&self) -> Option<UnixMillis> {
        let a = self
            .seen_expiry
            .peek()
            .map(|Reverse((t, _, _))| UnixMillis::from_secs(t + 1));
        let b = self
            .live_expiry
            .peek()
            .map(|Reverse((t, _))| UnixMillis::from_secs(*t));
        match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Forgets request ids that left the window, grants that expired, lock message ids that
    /// left the event window and rate buckets that are full again.
    pub fn handle_timeout(&mut self, now: UnixMillis) {
        let now = self.clock.observe(now);
        self.purge(now);
        self.lock_messages.purge(now.secs());
        self.guest_rate.purge(now.0);
        self.lock_rate.purge(now.0);
    }

    fn purge(&mut self, now: UnixMillis) {
        let now_s = now.secs();
        while let Some(Reverse((t, g, r))) = self.seen_expiry.peek().copied() {
            if t >= now_s {
                break;
            }
            self.seen_expiry.pop();
            self.seen.remove(&(g, r));
        }
        while let Some(Reverse((t, g))) = self.live_expiry.peek().copied() {
            if t > now_s {
                break;
            }
            self.live_expiry.pop();
            if let Some(l) = self.live.get(&g)
                && l.not_after <= now_s
            {
                self.live_sessions.remove(&(l.lock_id, l.session_id));
                self.live.remove(&g);
            }
        }
    }

    /// Number of remembered request ids and live grants (for monitoring and tests).
    pub fn cache_sizes(&self) -> (usize, usize) {
        (self.seen.len(), self.live.len())
    }

    /// Number of remembered lock message ids, over all locks, and of rate buckets not full
    /// (for monitoring and tests).
    pub fn lock_state_sizes(&self) -> (usize, usize) {
        (
            self.lock_messages.len(),
            self.guest_rate.len() + self.lock_rate.len(),
        )
    }
}
