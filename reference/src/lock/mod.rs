//! The lock (spec §7.2): installs grants, verifies beacons, issues challenges and checks
//! responses. Sans-IO: the driver feeds radio and MQTT inputs with `now` and executes the
//! returned outcomes (unlock, ATT result, events).
//!
//! Memory is bounded by the configured caps; at a cap the lock refuses (fails closed) with a
//! reason instead of evicting live state.
//!
//! Besides the returned outcomes, the lock decides a few things on its own (a lockout starts
//! or ends); it reports them as [`LockNotice`]s, which the driver drains with
//! [`Lock::poll_notice`] after every input and timeout.

mod config;
mod lockouts;
mod notices;
mod replay;
mod revocations;
mod sessions;
mod status;
mod tag_index;
mod tombstones;

use alloc::collections::BinaryHeap;
use alloc::vec::Vec;
use core::cmp::Reverse;

use hashbrown::HashMap;

pub(crate) use config::check as config_check;
pub use config::{ConfigError, LockConfig};
use lockouts::{LockoutPolicy, Lockouts, is_failed_handshake};
pub use notices::LockNotice;
use notices::Notices;
use replay::{ReplayCache, ReplayKey};
use revocations::Revocations;
use sessions::{Session, Sessions, TagSlots};
pub use status::StatusInput;
use tag_index::{BuildTagHasher, TagEntry, TagIndex, TagMap, move_window};
use tombstones::{Tombstone, Tombstones};

use crate::constants::STEP_WINDOW;
use crate::crypto::rsa::{DS_LOCK_EVENT, DS_LOCK_GRANT, DS_LOCK_STATUS, DS_REVOCATION};
use crate::crypto::{self, MacContext, SessionKey, ct_eq, ct_eq_8, derive_session_keys};
use crate::frame::{
    BeaconView, Challenge, EventKind, LockEvent, LockGrantHeader, LockGrantView, LockStatus,
    MessageType, ResponseView, RevocationView, SelectView, append_signature,
};
use crate::time::Clock;
use crate::{EventId, GrantId, GuestId, Reason, SessionId, Step, UnixMillis};

/// Identifies one GATT connection, chosen by the driver. It routes the operations of one
/// connection; it is never an identity (phones randomise their addresses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// A beacon that passed every check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BeaconOutcome {
    /// A new pending authentication was armed for this session.
    Armed {
        /// The session.
        session_id: SessionId,
        /// Its guest.
        guest_id: GuestId,
        /// The beacon's step.
        step: Step,
        /// The beacon's attempt.
        attempt: u16,
    },
    /// The same beacon again while its authentication is pending: nothing changes.
    AlreadyPending,
}

/// A response that passed every check: the driver MUST unlock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unlock {
    /// The session that authenticated.
    pub session_id: SessionId,
    /// Its grant.
    pub grant_id: GrantId,
    /// Its guest.
    pub guest_id: GuestId,
    /// The session's unlocks, this one included (LK-LIM-1; saturates at 65 535). A driver
    /// persists it and restores it with [`Lock::restore_unlock_count`] after a restart.
    pub unlocks: u16,
    /// The grant's unlock limit; 0 = no limit.
    pub max_unlocks: u16,
}

/// A grant that passed every check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantOutcome {
    /// The session is installed.
    Installed {
        /// The grant.
        grant_id: GrantId,
        /// Its session.
        session_id: SessionId,
        /// Its guest.
        guest_id: GuestId,
        /// End of validity, Unix seconds.
        not_after: u64,
    },
    /// The same grant was already installed (MQTT may deliver a QoS 1 message twice).
    AlreadyInstalled,
}

/// A revocation that passed every check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RevocationOutcome {
    /// The revoked grant.
    pub grant_id: GrantId,
    /// Whether a live session was removed (false if it was not installed yet or expired).
    pub session_removed: bool,
}

/// What a message on the lock's grants topic did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageOutcome {
    /// A LockGrant.
    Grant(GrantOutcome),
    /// A Revocation.
    Revocation(RevocationOutcome),
}

#[derive(Debug, Clone, Copy)]
struct Pending {
    slot: u32,
    session_id: SessionId,
    step: Step,
    attempt: u16,
    armed_at: UnixMillis,
}

#[derive(Debug, Clone, Copy)]
struct Outstanding {
    slot: u32,
    /// The install generation of the session in `slot`: a slot reused by a later install
    /// (even of the same grant, e.g. redelivered after its revocation was evicted) is not
    /// this challenge's session.
    install: u64,
    grant_id: GrantId,
    /// The session's guest, authenticated by the beacon's CMAC: a failed handshake on this
    /// challenge counts against it (LK-LCK-1), whatever became of the session.
    guest_id: GuestId,
    mac: MacContext,
    issued_at: UnixMillis,
    /// Its session was revoked while the challenge was outstanding (LK-REV-3).
    revoked: bool,
}

/// Counts of the lock's state, for monitoring and the memory-bound tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LockStats {
    /// Installed sessions.
    pub sessions: usize,
    /// Tags indexed (≈ 3 per session).
    pub tags: usize,
    /// Pending authentications.
    pub pending: usize,
    /// Outstanding challenges.
    pub challenges: usize,
    /// Replay cache entries.
    pub replay: usize,
    /// Remembered revocations.
    pub revocations: usize,
    /// Tombstones of revoked sessions (LK-REV-5).
    pub tombstones: usize,
    /// Guests with failed handshakes counted or locked out (LK-LCK-1).
    pub failure_records: usize,
    /// Active lockouts (LK-LCK-2).
    pub lockouts: usize,
    /// Notices not yet drained.
    pub notices: usize,
}

/// The lock's state machine.
#[derive(Debug)]
pub struct Lock {
    cfg: LockConfig,
    clock: Clock,
    sessions: Sessions,
    expiry: BinaryHeap<Reverse<(u64, u32, GrantId)>>,
    tags: TagIndex,
    indexed: Option<Step>,
    pending: TagMap<Pending>,
    replay: ReplayCache,
    challenges: HashMap<ConnId, Outstanding>,
    revocations: Revocations,
    tombstones: Tombstones,
    lockouts: Lockouts,
    notices: Notices,
    /// Install generations handed out so far.
    installs: u64,
}

fn tag_u64(tag: &[u8; 8]) -> u64 {
    u64::from_be_bytes(*tag)
}

/// The steps the tag index covers when the lock's step is `step` (LK-ADV-2).
fn window(step: Step) -> (Step, Step) {
    (
        Step(step.0.saturating_sub(STEP_WINDOW)),
        Step(step.0.saturating_add(STEP_WINDOW)),
    )
}

impl Lock {
    /// A lock with no sessions. Fails if a tunable is out of range.
    pub fn new(cfg: LockConfig) -> Result<Self, ConfigError> {
        cfg.validate()?;
        // Every table is sized to its cap up front: the beacon path never allocates (a test
        // proves it with a counting allocator), and the memory a lock needs is taken at
        // start, not discovered at the worst moment.
        Ok(Self {
            sessions: Sessions::with_capacity(cfg.max_sessions),
            expiry: BinaryHeap::with_capacity(cfg.max_sessions),
            tags: TagIndex::with_capacity(cfg.max_sessions * 3),
            indexed: None,
            pending: TagMap::with_capacity_and_hasher(cfg.max_pending, BuildTagHasher),
            replay: ReplayCache::with_capacity(cfg.replay_capacity),
            challenges: HashMap::with_capacity(cfg.max_challenges),
            revocations: Revocations::new(cfg.revocation_capacity),
            tombstones: Tombstones::default(),
            lockouts: Lockouts::new(LockoutPolicy {
                threshold: cfg.lockout_threshold,
                window_ms: cfg.lockout_window_s.saturating_mul(1000),
                duration_ms: cfg.lockout_duration_s.saturating_mul(1000),
                cap: cfg.max_sessions,
            }),
            // Each guest record yields at most a start and an end between two drains.
            notices: Notices::new(cfg.max_sessions.saturating_mul(2)),
            installs: 0,
            clock: Clock::default(),
            cfg,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &LockConfig {
        &self.cfg
    }

    /// Sizes of the internal tables.
    pub fn stats(&self) -> LockStats {
        LockStats {
            sessions: self.sessions.len(),
            tags: self.tags.len(),
            pending: self.pending.len(),
            challenges: self.challenges.len(),
            replay: self.replay.len(),
            revocations: self.revocations.len(),
            tombstones: self.tombstones.len(),
            failure_records: self.lockouts.len(),
            lockouts: self.lockouts.active(),
            notices: self.notices.len(),
        }
    }

    /// Whether a session with this id is installed.
    pub fn has_session(&self, id: &SessionId) -> bool {
        self.sessions.by_session_id(id).is_some()
    }

    // ---------------------------------------------------------------- time

    fn tick(&mut self, now: UnixMillis) -> UnixMillis {
        let now = self.clock.observe(now);
        // Time never goes back (LK-TIM-1), so before the indexed step's end the step is
        // unchanged: one comparison instead of a division on every beacon.
        if self.indexed.is_some_and(|s| now < s.next_start()) {
            return now;
        }
        let step = now.step();
        if self.indexed != Some(step) {
            self.reindex(step);
        }
        now
    }

    /// Moves the tag index to cover `step − 1 ..= step + 1` and drops replay entries that
    /// left the window (a beacon of such a step fails LK-ADV-2 anyway).
    fn reindex(&mut self, step: Step) {
        let (lo, hi) = window(step);
        let tags = &mut self.tags;
        for (slot, s) in self.sessions.iter_mut() {
            move_window(tags, slot, &mut s.tags, &s.keys.tag, lo, hi);
        }
        self.tombstones.reindex(lo, hi);
        self.replay.purge_before(lo);
        self.indexed = Some(step);
    }

    fn index_session(&mut self, slot: u32) {
        let Some(step) = self.indexed else { return };
        let Some(s) = self.sessions.get_mut(slot) else {
            return;
        };
        let (lo, hi) = window(step);
        move_window(&mut self.tags, slot, &mut s.tags, &s.keys.tag, lo, hi);
    }

    fn remove_session(&mut self, slot: u32) -> Option<Session> {
        let s = self.sessions.remove(slot)?;
        for (step, tag) in s.tags.iter() {
            self.tags.remove(tag, TagEntry { slot, step });
        }
        self.pending.retain(|_, p| p.slot != slot);
        Some(s)
    }

    /// When the driver must call [`handle_timeout`](Self::handle_timeout) next: the next
    /// step boundary, session expiry, pending or challenge expiry, whichever is first.
    pub fn poll_timeout(&self) -> Option<UnixMillis> {
        let mut t = self.indexed.map(|s| s.next_start());
        let mut consider = |x: UnixMillis| t = Some(t.map_or(x, |y| y.min(x)));
        if let Some(Reverse((na, _, _))) = self.expiry.peek() {
            consider(UnixMillis::from_secs(*na));
        }
        for p in self.pending.values() {
            consider(p.armed_at.plus_ms(self.cfg.connection_window_ms + 1));
        }
        for c in self.challenges.values() {
            consider(c.issued_at.plus_ms(self.cfg.response_budget_ms + 1));
        }
        if let Some(end) = self.lockouts.next_end() {
            consider(end);
        }
        t
    }

    /// Advances timers: re-indexes tags at a step boundary, purges expired sessions,
    /// pending authentications, challenges and revocations (with their tombstones), and ends
    /// lockouts whose time is up (LK-LCK-3, a [`LockNotice::LockoutEnded`] each).
    pub fn handle_timeout(&mut self, now: UnixMillis) {
        let now = self.tick(now);
        let now_s = now.secs();
        while let Some(Reverse((na, slot, grant))) = self.expiry.peek().copied() {
            if na > now_s {
                break;
            }
            self.expiry.pop();
            if self.sessions.get(slot).is_some_and(|s| s.grant_id == grant) {
                self.remove_session(slot);
            }
        }
        let window = self.cfg.connection_window_ms;
        self.pending.retain(|_, p| now.since(p.armed_at) <= window);
        let budget = self.cfg.response_budget_ms;
        self.challenges
            .retain(|_, c| now.since(c.issued_at) <= budget);
        let tombstones = &mut self.tombstones;
        self.revocations.purge(now_s, |g| tombstones.remove(g));
        self.lockouts.handle_timeout(now, &mut self.notices);
    }

    /// The next notice the lock has for the driver (a lockout started or ended), if any.
    /// Drain after every input and timeout.
    pub fn poll_notice(&mut self) -> Option<LockNotice> {
        self.notices.pop()
    }

    // ---------------------------------------------------------------- beacons

    /// A manufacturer-data record heard by the scanner (spec §7.2.2, LK-ADV-1..9).
    /// `rssi` in dBm. This is the hot path: no allocation; a tag lookup, one AES block, one
    /// replay-cache probe that also inserts, and the pending record overwritten in place.
    pub fn handle_beacon(
        &mut self,
        now: UnixMillis,
        company_id: u16,
        payload: &[u8],
        rssi: i16,
    ) -> Result<BeaconOutcome, Reason> {
        // LK-ADV-1: other companies' adverts are noise; reject before any other work.
        if company_id != self.cfg.company_id {
            return Err(Reason::ForeignCompany);
        }
        let now = self.tick(now);
        let b = BeaconView::parse(payload)?;
        // LK-ADV-2: step window ±1.
        let cur = self.indexed.unwrap_or_else(|| now.step());
        let step = b.step();
        if step.0 < cur.0.saturating_sub(STEP_WINDOW) {
            return Err(Reason::StaleStep);
        }
        if step.0 > cur.0.saturating_add(STEP_WINDOW) {
            return Err(Reason::FutureStep);
        }
        // LK-ADV-3: the tag names a session for exactly this step.
        let tag = tag_u64(&b.tag());
        let Some(entry) = self.tags.find(tag, step) else {
            // LK-REV-5: only on a miss, and only when a revoked session left a tombstone.
            if self.tombstones.is_empty() {
                return Err(Reason::UnknownTag);
            }
            return Err(self.revoked_beacon(&b, tag, step, rssi));
        };
        // LK-ADV-4
        if !self.rssi_passes(rssi) {
            return Err(Reason::RssiTooLow);
        }
        let s = self.sessions.get(entry.slot).ok_or(Reason::UnknownTag)?;
        // LK-ADV-5: AES-CMAC, constant-time comparison.
        if !ct_eq_8(&crypto::beacon_mac(&s.cmac, b.mac_input()), &b.mac_bytes()) {
            return Err(Reason::BadBeaconMac);
        }
        // LK-ADV-6: the grant's validity.
        let now_s = now.secs();
        if now_s < s.not_before {
            return Err(Reason::SessionNotYetValid);
        }
        if now_s >= s.not_after {
            return Err(Reason::SessionExpired);
        }
        // LK-LIM-2: a session that used every unlock of its grant arms nothing.
        if s.max_unlocks != 0 && s.unlocks >= s.max_unlocks {
            return Err(Reason::UnlockLimitReached);
        }
        // LK-LCK-2: a locked-out guest's beacons never arm (one comparison when nobody is).
        if self.lockouts.is_locked(&s.guest_id, now) {
            return Err(Reason::LockedOut);
        }
        let (session_id, guest_id, attempt) = (s.session_id, s.guest_id, b.attempt());
        let previous = s.pending_tag;
        // LK-ADV-7: a beacon arms at most one authentication.
        let replay_len = self.replay.len();
        let Ok(new_entry) = self
            .replay
            .lookup(ReplayKey::new(&session_id, step, attempt))
        else {
            // The pending authentication exists until consumed, replaced, removed, dropped
            // by LK-SEL-2 or purged by a timeout (§7.1), whether or not its window passed.
            return match self.pending.get(&tag) {
                Some(p) if p.step == step && p.attempt == attempt => {
                    Ok(BeaconOutcome::AlreadyPending)
                }
                _ => Err(Reason::Replay),
            };
        };
        // One pending authentication per session: a new attempt replaces the previous one.
        let replaces = previous.is_some_and(|t| self.pending.contains_key(&t));
        // LK-ADV-8: pending cap. Nothing is purged first: a pending authentication counts
        // until a timeout purges it (§7.1).
        if !replaces && self.pending.len() >= self.cfg.max_pending {
            return Err(Reason::PendingCapReached);
        }
        // LK-ADV-9: replay cache cap (entries outside the window were dropped at reindex).
        if replay_len >= self.cfg.replay_capacity {
            return Err(Reason::ReplayCacheFull);
        }
        new_entry.insert();
        // The same step's tag is overwritten by the insert below; another step's is removed.
        if let Some(t) = previous.filter(|t| *t != tag) {
            self.pending.remove(&t);
        }
        self.pending.insert(
            tag,
            Pending {
                slot: entry.slot,
                session_id,
                step,
                attempt,
                armed_at: now,
            },
        );
        if let Some(s) = self.sessions.get_mut(entry.slot) {
            s.pending_tag = Some(tag);
        }
        Ok(BeaconOutcome::Armed {
            session_id,
            guest_id,
            step,
            attempt,
        })
    }

    /// LK-ADV-4: proximity gate. HCI reports 127 for "RSSI not available": anything above
    /// +20 dBm is not a measurement and never passes.
    #[inline]
    fn rssi_passes(&self, rssi: i16) -> bool {
        rssi >= self.cfg.rssi_threshold_dbm && rssi <= 20
    }

    /// A beacon whose tag no session has: a revoked session's (LK-REV-5) if a tombstone has
    /// the tag for this step and the beacon passes LK-ADV-4 and LK-ADV-5 under its `K_adv`.
    #[cold]
    fn revoked_beacon(&self, b: &BeaconView<'_>, tag: u64, step: Step, rssi: i16) -> Reason {
        let Some(t) = self.tombstones.find(tag, step) else {
            return Reason::UnknownTag;
        };
        if !self.rssi_passes(rssi) {
            return Reason::RssiTooLow;
        }
        if !ct_eq_8(&crypto::beacon_mac(&t.cmac, b.mac_input()), &b.mac_bytes()) {
            return Reason::BadBeaconMac;
        }
        Reason::SessionRevoked
    }

    /// The grant, session and guest of a revoked session's beacon (one [`Lock::handle_beacon`]
    /// refused `session_revoked`, LK-REV-5), so the driver can attribute the rejection, e.g.
    /// in a kind-2 event. `None` unless a tombstone has the beacon's tag for its step and the
    /// beacon's CMAC verifies under that tombstone's `K_adv`.
    pub fn revoked_beacon_ids(&self, payload: &[u8]) -> Option<(GrantId, SessionId, GuestId)> {
        let b = BeaconView::parse(payload).ok()?;
        let t = self.tombstones.find(tag_u64(&b.tag()), b.step())?;
        ct_eq_8(&crypto::beacon_mac(&t.cmac, b.mac_input()), &b.mac_bytes()).then_some((
            t.grant_id,
            t.session_id,
            t.guest_id,
        ))
    }

    // ---------------------------------------------------------------- GATT

    /// A Select written on connection `conn` (spec §7.2.3, LK-SEL-1..4, LK-CHL-1). Returns
    /// the challenge the driver serves to reads of the challenge characteristic on `conn`.
    pub fn handle_select<R: rand_core::CryptoRng + ?Sized>(
        &mut self,
        now: UnixMillis,
        conn: ConnId,
        payload: &[u8],
        rng: &mut R,
    ) -> Result<Challenge, Reason> {
        let now = self.tick(now);
        let sel = SelectView::parse(payload)?;
        let tag = tag_u64(&sel.tag());
        // LK-SEL-1: a pending authentication armed by the beacon with this tag and attempt.
        let p = match self.pending.get(&tag) {
            Some(p) if p.attempt == sel.attempt() => *p,
            _ => return Err(Reason::NoPendingAuth),
        };
        // LK-SEL-2: within the connection window (the pending entry is dropped either way).
        if now.since(p.armed_at) > self.cfg.connection_window_ms {
            self.pending.remove(&tag);
            return Err(Reason::ConnectionWindowExpired);
        }
        // LK-SEL-3: challenge cap (a connection's new Select replaces its old challenge).
        // Only live challenges count; expired ones are purged when the table looks full,
        // not on every Select (the scan is O(cap)).
        if !self.challenges.contains_key(&conn) && self.challenges.len() >= self.cfg.max_challenges
        {
            let budget = self.cfg.response_budget_ms;
            self.challenges
                .retain(|_, c| now.since(c.issued_at) <= budget);
            if self.challenges.len() >= self.cfg.max_challenges {
                return Err(Reason::ChallengeCapReached);
            }
        }
        let s = self.sessions.get(p.slot).ok_or(Reason::NoPendingAuth)?;
        // LK-CHL-1: fresh nonce from the CSPRNG.
        let mut nonce = [0u8; 12];
        rng.fill_bytes(&mut nonce);
        let mac = MacContext {
            lock_id: self.cfg.lock_id,
            session_id: p.session_id,
            nonce,
            lock_time: now.secs_u32(),
            step: p.step,
            attempt: p.attempt,
        };
        let lock_mac = crypto::lock_mac(&s.keys.chal, &mac);
        let (grant_id, guest_id, install) = (s.grant_id, s.guest_id, s.install);
        // LK-SEL-4: the pending authentication is consumed.
        self.pending.remove(&tag);
        self.challenges.insert(
            conn,
            Outstanding {
                slot: p.slot,
                install,
                grant_id,
                guest_id,
                mac,
                issued_at: now,
                revoked: false,
            },
        );
        Ok(Challenge {
            nonce,
            lock_time: mac.lock_time,
            session_id: p.session_id,
            lock_mac,
        })
    }

    /// A Response written on connection `conn` (spec §7.2.5, LK-RSP-1..7, LK-LCK-1..2,
    /// LK-LIM-2). `Ok` means the driver MUST unlock and answer the write with success; `Err`
    /// is answered with the ATT error `reason.att_code()`. A failed handshake counts against
    /// the challenge's guest (LK-LCK-1) and may start a lockout (a [`LockNotice`]).
    pub fn handle_response(
        &mut self,
        now: UnixMillis,
        conn: ConnId,
        payload: &[u8],
    ) -> Result<Unlock, Reason> {
        let now = self.tick(now);
        // LK-RSP-1 and LK-RSP-2: an outstanding challenge, consumed whatever follows.
        let ch = self.challenges.remove(&conn).ok_or(Reason::NoChallenge)?;
        let verdict = self.check_response(now, &ch, payload);
        if let Err(r) = verdict
            && is_failed_handshake(r)
        {
            self.failed_handshake(now, &ch, r);
        }
        verdict
    }

    /// The checks of a Response after its challenge was consumed, in the spec's order.
    fn check_response(
        &mut self,
        now: UnixMillis,
        ch: &Outstanding,
        payload: &[u8],
    ) -> Result<Unlock, Reason> {
        let r = ResponseView::parse(payload)?;
        // LK-RSP-3: response budget.
        if now.since(ch.issued_at) > self.cfg.response_budget_ms {
            return Err(Reason::LateResponse);
        }
        // LK-RSP-7: the session is still live.
        if ch.revoked || self.revocations.contains(&ch.grant_id) {
            return Err(Reason::SessionRevoked);
        }
        let s = match self.sessions.get_mut(ch.slot) {
            Some(s) if s.install == ch.install => s,
            _ => return Err(Reason::SessionExpired),
        };
        if now.secs() >= s.not_after {
            return Err(Reason::SessionExpired);
        }
        // LK-LCK-2: a locked-out guest's challenge can no longer unlock (not a failure).
        if self.lockouts.is_locked(&ch.guest_id, now) {
            return Err(Reason::LockedOut);
        }
        // LK-RSP-4: bound to the arming beacon's step.
        if r.step() != ch.mac.step {
            return Err(Reason::StepMismatch);
        }
        // LK-RSP-5: the phone's clock.
        if u64::from(r.phone_time()).abs_diff(now.secs()) > self.cfg.max_clock_skew_s {
            return Err(Reason::ClockSkew);
        }
        // LK-RSP-6: the response MAC, constant time.
        let want = crypto::response_mac(&s.keys.resp, &ch.mac, r.phone_time());
        if !ct_eq(&want, r.mac()) {
            return Err(Reason::BadResponseMac);
        }
        // LK-LIM-2: the unlock count, checked (another connection's response may have used
        // the last unlock since the beacon armed) and taken (LK-LIM-1).
        if s.max_unlocks != 0 && s.unlocks >= s.max_unlocks {
            return Err(Reason::UnlockLimitReached);
        }
        s.unlocks = s.unlocks.saturating_add(1);
        Ok(Unlock {
            session_id: s.session_id,
            grant_id: s.grant_id,
            guest_id: s.guest_id,
            unlocks: s.unlocks,
            max_unlocks: s.max_unlocks,
        })
    }

    /// LK-LCK-1: counts a failed handshake against the challenge's guest; a lockout drops
    /// the guest's pending authentications at once.
    fn failed_handshake(&mut self, now: UnixMillis, ch: &Outstanding, r: Reason) {
        let started = self.lockouts.record_failure(
            now,
            ch.guest_id,
            ch.grant_id,
            ch.mac.session_id,
            r,
            &mut self.notices,
        );
        if started {
            let (sessions, guest) = (&self.sessions, ch.guest_id);
            self.pending
                .retain(|_, p| sessions.get(p.slot).is_none_or(|s| s.guest_id != guest));
        }
    }

    /// The unlock count of the session of `grant`, if it is installed (LK-LIM-1).
    pub fn unlock_count(&self, grant: &GrantId) -> Option<u16> {
        let slot = self.sessions.by_grant_id(grant)?;
        self.sessions.get(slot).map(|s| s.unlocks)
    }

    /// After a restart: restores the unlock count a driver persisted for the session of
    /// `grant` (LK-LIM-1). The count only rises, so a stale copy never gives unlocks back.
    /// `false` if the session is not installed (restore after re-installing the grants).
    pub fn restore_unlock_count(&mut self, grant: &GrantId, count: u16) -> bool {
        let Some(slot) = self.sessions.by_grant_id(grant) else {
            return false;
        };
        match self.sessions.get_mut(slot) {
            Some(s) => {
                s.unlocks = s.unlocks.max(count);
                true
            }
            None => false,
        }
    }

    /// The GATT connection closed: its challenge (if any) is dropped.
    pub fn handle_disconnect(&mut self, conn: ConnId) {
        self.challenges.remove(&conn);
    }

    // ---------------------------------------------------------------- MQTT

    /// A payload from the lock's grants topic: a LockGrant or a Revocation.
    pub fn handle_message<R: rand_core::CryptoRng + ?Sized>(
        &mut self,
        now: UnixMillis,
        payload: &[u8],
        rng: &mut R,
    ) -> Result<MessageOutcome, Reason> {
        match MessageType::of(payload)? {
            MessageType::LockGrant => self
                .handle_grant(now, payload, rng)
                .map(MessageOutcome::Grant),
            MessageType::Revocation => self
                .handle_revocation(now, payload)
                .map(MessageOutcome::Revocation),
            _ => Err(Reason::WrongType),
        }
    }

    /// A LockGrant (spec §7.2.1, LK-GRT-1..9).
    pub fn handle_grant<R: rand_core::CryptoRng + ?Sized>(
        &mut self,
        now: UnixMillis,
        payload: &[u8],
        rng: &mut R,
    ) -> Result<GrantOutcome, Reason> {
        let now = self.tick(now);
        let g = LockGrantView::parse(payload)?;
        let h = g.header;
        // LK-GRT-1
        if h.lock_id != self.cfg.lock_id {
            return Err(Reason::WrongLock);
        }
        // LK-GRT-2: nothing of the grant is used before its signature verifies.
        if !self
            .cfg
            .issuer_key
            .verify(DS_LOCK_GRANT, g.signed, g.signature)
        {
            return Err(Reason::BadSignature);
        }
        if let Some(done) = self.admit(now, &h)? {
            return Ok(done);
        }
        // LK-GRT-3: the private-key operation comes last, after every cheap check.
        let k_s = self
            .cfg
            .lock_key
            .unwrap_session_key(rng, g.header_bytes, g.wrapped)
            .ok_or(Reason::UnwrapFailed)?;
        Ok(self.install(&h, &k_s))
    }

    /// The checks of a signed grant's header, in the spec's order (LK-GRT-4..9). `Some` if
    /// the grant is already installed (a QoS 1 redelivery).
    fn admit(
        &mut self,
        now: UnixMillis,
        h: &LockGrantHeader,
    ) -> Result<Option<GrantOutcome>, Reason> {
        let now_s = now.secs();
        // LK-GRT-4
        if h.not_before >= h.not_after || h.not_after - h.not_before > self.cfg.max_grant_validity_s
        {
            return Err(Reason::InvalidValidity);
        }
        // LK-GRT-5
        if now_s >= h.not_after {
            return Err(Reason::GrantExpired);
        }
        // LK-GRT-6
        if h.issued_at > now_s.saturating_add(self.cfg.max_clock_skew_s) {
            return Err(Reason::IssuedInFuture);
        }
        // LK-GRT-7 and LK-REV-4
        if self.revocations.revokes(&h.grant_id, h.issued_at) {
            return Err(Reason::GrantRevoked);
        }
        if let Some(slot) = self.sessions.by_grant_id(&h.grant_id) {
            return match self.sessions.get(slot) {
                Some(s) if s.session_id == h.session_id => Ok(Some(GrantOutcome::AlreadyInstalled)),
                _ => Err(Reason::SessionIdCollision),
            };
        }
        // LK-GRT-8
        if self.sessions.by_session_id(&h.session_id).is_some() {
            return Err(Reason::SessionIdCollision);
        }
        // LK-GRT-9: expired sessions make room first.
        if self.sessions.len() >= self.cfg.max_sessions {
            self.handle_timeout(now);
            if self.sessions.len() >= self.cfg.max_sessions {
                return Err(Reason::SessionCapReached);
            }
        }
        Ok(None)
    }

    /// Installs an admitted session under the session key it unwrapped.
    fn install(&mut self, h: &LockGrantHeader, k_s: &SessionKey) -> GrantOutcome {
        let keys = derive_session_keys(k_s, &self.cfg.lock_id, &h.session_id);
        self.installs += 1;
        let slot = self.sessions.insert(Session {
            install: self.installs,
            grant_id: h.grant_id,
            session_id: h.session_id,
            guest_id: h.guest_id,
            not_before: h.not_before,
            not_after: h.not_after,
            max_unlocks: h.max_unlocks,
            unlocks: 0,
            cmac: keys.beacon_cmac(),
            keys,
            tags: TagSlots::default(),
            pending_tag: None,
        });
        self.index_session(slot);
        self.expiry.push(Reverse((h.not_after, slot, h.grant_id)));
        GrantOutcome::Installed {
            grant_id: h.grant_id,
            session_id: h.session_id,
            guest_id: h.guest_id,
            not_after: h.not_after,
        }
    }

    /// **Benchmarks and memory tests only** (feature `testkit`): installs a session as if
    /// its grant had verified and unwrapped to `k_s`, skipping the two RSA operations
    /// (LK-GRT-2, LK-GRT-3) so that 100,000 sessions install in a second. Every other check
    /// runs. Never enable `testkit` in a lock.
    #[cfg(feature = "testkit")]
    #[doc(hidden)]
    pub fn testkit_install_unverified(
        &mut self,
        now: UnixMillis,
        h: &LockGrantHeader,
        k_s: &SessionKey,
    ) -> Result<GrantOutcome, Reason> {
        let now = self.tick(now);
        if h.lock_id != self.cfg.lock_id {
            return Err(Reason::WrongLock);
        }
        if let Some(done) = self.admit(now, h)? {
            return Ok(done);
        }
        Ok(self.install(h, k_s))
    }

    /// **Benchmarks only** (feature `testkit`): forgets the replay entries of the sessions
    /// `forget` selects, so a benchmark can send their attempt numbers again without moving
    /// the clock (a re-index of 100,000 sessions would dominate the run). Returns how many
    /// entries were removed.
    #[cfg(feature = "testkit")]
    #[doc(hidden)]
    pub fn testkit_forget_replays(&mut self, forget: impl Fn(&SessionId) -> bool) -> usize {
        self.replay.forget(forget)
    }

    /// A Revocation (spec §7.2.7, LK-REV-1..5).
    pub fn handle_revocation(
        &mut self,
        now: UnixMillis,
        payload: &[u8],
    ) -> Result<RevocationOutcome, Reason> {
        let now = self.tick(now);
        let r = RevocationView::parse(payload)?;
        let f = r.fields;
        // LK-REV-1
        if f.lock_id != self.cfg.lock_id {
            return Err(Reason::WrongLock);
        }
        // LK-REV-2
        if !self
            .cfg
            .issuer_key
            .verify(DS_REVOCATION, r.signed, r.signature)
        {
            return Err(Reason::BadSignature);
        }
        // LK-REV-4: remembered until the grant would have expired anyway.
        let remembered = f.expires_at > now.secs();
        if remembered {
            let tombstones = &mut self.tombstones;
            self.revocations
                .insert(f.grant_id, f.issued_at, f.expires_at, now.secs(), |g| {
                    tombstones.remove(g)
                });
        }
        // LK-REV-3: the session and its pending authentication go at once; an outstanding
        // challenge stays only to be answered with `session_revoked`.
        let slot = self.sessions.by_grant_id(&f.grant_id);
        let removed = slot.and_then(|slot| self.remove_session(slot).map(|s| (slot, s)));
        let session_removed = removed.is_some();
        if let Some((slot, s)) = removed {
            for c in self.challenges.values_mut() {
                if c.slot == slot && c.install == s.install {
                    c.revoked = true;
                }
            }
            // LK-REV-5: a remembered revocation keeps what recognises the session's beacons.
            // The revocation may have been evicted at once (a full list of later ones).
            if remembered && self.revocations.contains(&f.grant_id) {
                let window = self.indexed.map(window);
                self.tombstones.insert(Tombstone::of(s), window);
            }
        }
        Ok(RevocationOutcome {
            grant_id: f.grant_id,
            session_removed,
        })
    }

    // ---------------------------------------------------------------- events

    /// Builds a signed LockEvent (spec §6.6) for the driver to publish on the events topic.
    pub fn signed_event<R: rand_core::CryptoRng + ?Sized>(
        &self,
        now: UnixMillis,
        kind: EventKind,
        reason: Option<Reason>,
        grant_id: GrantId,
        session_id: SessionId,
        rng: &mut R,
    ) -> Vec<u8> {
        let ev = LockEvent {
            lock_id: self.cfg.lock_id,
            event_id: EventId::random(rng),
            timestamp_ms: now.0,
            kind,
            reason: reason.map_or(0, Reason::code),
            grant_id,
            session_id,
        };
        let mut out = Vec::with_capacity(71 + self.cfg.lock_key.size());
        ev.encode_unsigned(&mut out);
        self.sign_into(rng, DS_LOCK_EVENT, out)
    }

    /// Builds a signed LockStatus (spec §6.10) for the driver to publish on the events topic:
    /// the driver's health figures and rejection counters since its previous status, with
    /// the core's session, revocation and lockout counts. Counters are merged per reason
    /// (zero counts dropped) and sorted by code; beyond 32 reasons the 32 largest counts are
    /// kept. A battery figure above 100 is sent as unknown (255).
    pub fn status_message<R: rand_core::CryptoRng + ?Sized>(
        &self,
        now: UnixMillis,
        input: &StatusInput<'_>,
        rng: &mut R,
    ) -> Vec<u8> {
        let st = LockStatus {
            lock_id: self.cfg.lock_id,
            status_id: EventId::random(rng),
            timestamp_ms: now.0,
            uptime_s: input.uptime_s,
            battery_pct: input.battery_pct.filter(|p| *p <= 100),
            flags: input.flags,
            sessions: u32::try_from(self.sessions.len()).unwrap_or(u32::MAX),
            revocations: u32::try_from(self.revocations.len()).unwrap_or(u32::MAX),
            lockouts: u16::try_from(self.lockouts.active()).unwrap_or(u16::MAX),
            counters: status::aggregate(input.counters),
        };
        let mut out = Vec::new();
        // The fields were made valid above, so encoding cannot refuse them.
        if st.encode_unsigned(&mut out).is_err() {
            return Vec::new();
        }
        self.sign_into(rng, DS_LOCK_STATUS, out)
    }

    /// Appends the lock's signature over `ds || out` to `out`.
    fn sign_into<R: rand_core::CryptoRng + ?Sized>(
        &self,
        rng: &mut R,
        ds: &[u8],
        mut out: Vec<u8>,
    ) -> Vec<u8> {
        let sig = self.cfg.lock_key.sign(rng, ds, &out);
        // The lock's own key has a valid size, so the signature length is in range.
        if append_signature(&mut out, &sig).is_err() {
            out.clear();
        }
        out
    }
}
