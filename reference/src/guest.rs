//! The guest, a phone (spec §7.3): requests grants, advertises the rotating beacon, answers
//! the lock's challenge after verifying it.
//!
//! Unlock flow: [`Guest::start_unlock`] → advertise [`Guest::advertisement`] (re-register
//! at each [`Guest::poll_timeout`]) → connect → write [`Guest::select`] → read the challenge
//! and pass it to [`Guest::handle_challenge`] → write the returned response →
//! [`Guest::handle_write_result`].

use alloc::vec::Vec;
use hashbrown::HashMap;

use crate::constants as c;
use crate::crypto::{
    self, EnrollmentKey, MacContext, SessionKeys, ShortCmac, ct_eq, derive_session_keys,
    open_guest_grant, seal_request,
};
use crate::frame::{
    BEACON_LEN, Beacon, ChallengeView, GRANT_REQUEST_LEN, GrantRequestHeader, GuestGrantView,
    RESPONSE_LEN, Response, SELECT_LEN, Select,
};
use crate::lock::ConfigError;
use crate::time::Clock;
use crate::{GrantId, GuestId, LockId, Reason, RequestId, SessionId, Step, UnixMillis};

/// The guest's configuration.
#[derive(Debug, Clone)]
pub struct GuestConfig {
    /// This guest's identity.
    pub guest_id: GuestId,
    /// The enrollment key shared with the issuer.
    pub enrollment_key: EnrollmentKey,
    /// Company id to advertise under.
    pub company_id: u16,
    /// Tolerated lock clock skew (s).
    pub max_clock_skew_s: u64,
    /// Most grant requests kept outstanding (the oldest is forgotten beyond it).
    pub max_outstanding_requests: usize,
}

impl GuestConfig {
    /// Defaults for everything but identity and key.
    pub fn new(guest_id: GuestId, enrollment_key: EnrollmentKey) -> Self {
        Self {
            guest_id,
            enrollment_key,
            company_id: c::DEFAULT_COMPANY_ID,
            max_clock_skew_s: c::MAX_CLOCK_SKEW_S.default,
            max_outstanding_requests: c::MAX_OUTSTANDING_REQUESTS.default,
        }
    }

    /// Checks the tunables' ranges.
    pub fn validate(&self) -> Result<(), ConfigError> {
        crate::lock::config_check(c::MAX_CLOCK_SKEW_S, self.max_clock_skew_s)?;
        crate::lock::config_check(c::MAX_OUTSTANDING_REQUESTS, self.max_outstanding_requests)
    }
}

/// A grant the guest holds for one lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuestGrantInfo {
    /// The lock.
    pub lock_id: LockId,
    /// The grant.
    pub grant_id: GrantId,
    /// Its session.
    pub session_id: SessionId,
    /// Start of validity, Unix seconds.
    pub not_before: u64,
    /// End of validity, Unix seconds.
    pub not_after: u64,
}

#[derive(Debug)]
struct Held {
    info: GuestGrantInfo,
    keys: SessionKeys,
    cmac: ShortCmac,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Advertising,
    Selected(Step),
    ResponseSent,
}

#[derive(Debug, Clone, Copy)]
struct Attempt {
    lock_id: LockId,
    attempt: u16,
    phase: Phase,
}

/// The guest's state machine.
#[derive(Debug)]
pub struct Guest {
    cfg: GuestConfig,
    clock: Clock,
    outstanding: Vec<(RequestId, LockId)>,
    grants: HashMap<LockId, Held>,
    unlocking: Option<Attempt>,
    /// Attempt numbers used per lock in the last few steps: a repeat would be refused by the
    /// lock's replay cache (LK-ADV-7), so a new attempt never reuses one.
    recent_attempts: Vec<(LockId, Step, u16)>,
}

/// Most recent attempt numbers remembered (more than a guest can use in a step window).
const RECENT_ATTEMPTS: usize = 256;

impl Guest {
    /// A guest with no grants.
    pub fn new(cfg: GuestConfig) -> Result<Self, ConfigError> {
        cfg.validate()?;
        Ok(Self {
            cfg,
            clock: Clock::default(),
            outstanding: Vec::new(),
            grants: HashMap::new(),
            unlocking: None,
            recent_attempts: Vec::new(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &GuestConfig {
        &self.cfg
    }

    /// The grant held for `lock`, if any.
    pub fn grant(&self, lock: &LockId) -> Option<GuestGrantInfo> {
        self.grants.get(lock).map(|h| h.info)
    }

    /// Builds a sealed GrantRequest for `lock` (spec §6.5) and remembers its id.
    pub fn request_grant<R: rand_core::CryptoRng + ?Sized>(
        &mut self,
        now: UnixMillis,
        lock_id: LockId,
        requested_validity_s: u32,
        rng: &mut R,
    ) -> [u8; GRANT_REQUEST_LEN] {
        let now = self.clock.observe(now);
        let header = GrantRequestHeader {
            guest_id: self.cfg.guest_id,
            lock_id,
            request_id: RequestId::random(rng),
            timestamp: now.secs(),
        };
        let mut nonce = [0u8; 12];
        rng.fill_bytes(&mut nonce);
        let sealed = seal_request(
            &self.cfg.enrollment_key,
            &header,
            requested_validity_s,
            &nonce,
        );
        if self.outstanding.len() >= self.cfg.max_outstanding_requests {
            self.outstanding.remove(0);
        }
        self.outstanding.push((header.request_id, lock_id));
        let mut out = [0u8; GRANT_REQUEST_LEN];
        // The buffer has exactly the frame's length.
        let _ = header.encode(&nonce, &sealed, &mut out);
        out
    }

    /// A GuestGrant from the issuer (spec §7.3.1, LK-GGR-1..4).
    pub fn handle_grant(
        &mut self,
        now: UnixMillis,
        payload: &[u8],
    ) -> Result<GuestGrantInfo, Reason> {
        let now = self.clock.observe(now);
        let g = self.parse_ours(payload)?;
        let h = g.header;
        // LK-GGR-2: only answers to our own outstanding requests, for the lock we asked.
        let idx = self
            .outstanding
            .iter()
            .position(|(r, l)| *r == h.request_id && *l == h.lock_id)
            .ok_or(Reason::UnknownRequest)?;
        let info = self.install(now, &g)?;
        self.outstanding.remove(idx);
        Ok(info)
    }

    /// Re-installs a GuestGrant this guest accepted before it restarted, from its own
    /// storage (spec §8.7, "Stored grants"): LK-GGR-1, -3 and -4 are checked again; LK-GGR-2 cannot be (the
    /// outstanding request died with the process), which is why only the guest's own
    /// private storage may feed this, never the network.
    pub fn restore_grant(
        &mut self,
        now: UnixMillis,
        payload: &[u8],
    ) -> Result<GuestGrantInfo, Reason> {
        let now = self.clock.observe(now);
        let g = self.parse_ours(payload)?;
        self.install(now, &g)
    }

    /// LK-FRM, then LK-GGR-1.
    fn parse_ours<'p>(&self, payload: &'p [u8]) -> Result<GuestGrantView<'p>, Reason> {
        let g = GuestGrantView::parse(payload)?;
        if g.header.guest_id != self.cfg.guest_id {
            return Err(Reason::WrongGuest);
        }
        Ok(g)
    }

    /// LK-GGR-3 and -4, then holds the grant (replacing any for the same lock).
    fn install(
        &mut self,
        now: UnixMillis,
        g: &GuestGrantView<'_>,
    ) -> Result<GuestGrantInfo, Reason> {
        let h = g.header;
        // LK-GGR-3
        let k_s = open_guest_grant(&self.cfg.enrollment_key, g)?;
        // LK-GGR-4
        if h.not_before >= h.not_after {
            return Err(Reason::InvalidValidity);
        }
        if now.secs() >= h.not_after {
            return Err(Reason::GrantExpired);
        }
        let keys = derive_session_keys(&k_s, &h.lock_id, &h.session_id);
        let info = GuestGrantInfo {
            lock_id: h.lock_id,
            grant_id: h.grant_id,
            session_id: h.session_id,
            not_before: h.not_before,
            not_after: h.not_after,
        };
        self.grants.insert(
            h.lock_id,
            Held {
                info,
                cmac: keys.beacon_cmac(),
                keys,
            },
        );
        Ok(info)
    }

    /// Forgets the grant for `lock` (e.g. the user removed it).
    pub fn drop_grant(&mut self, lock: &LockId) {
        self.grants.remove(lock);
        if self.unlocking.is_some_and(|a| a.lock_id == *lock) {
            self.unlocking = None;
        }
    }

    fn live_grant(&self, lock: &LockId, now: UnixMillis) -> Result<&Held, Reason> {
        let h = self.grants.get(lock).ok_or(Reason::NoGrant)?;
        if now.secs() >= h.info.not_after {
            return Err(Reason::GrantExpired);
        }
        Ok(h)
    }

    /// Starts an unlock attempt at `lock` with a fresh attempt number (LK-GST-5, LK-GST-4).
    pub fn start_unlock<R: rand_core::CryptoRng + ?Sized>(
        &mut self,
        now: UnixMillis,
        lock_id: LockId,
        rng: &mut R,
    ) -> Result<(), Reason> {
        let now = self.clock.observe(now);
        self.live_grant(&lock_id, now)?;
        let step = now.step();
        self.recent_attempts
            .retain(|(_, s, _)| s.0.saturating_add(crate::constants::STEP_WINDOW * 2) >= step.0);
        if self.recent_attempts.len() >= RECENT_ATTEMPTS {
            self.recent_attempts.remove(0);
        }
        let attempt = loop {
            let mut a = [0u8; 2];
            rng.fill_bytes(&mut a);
            let a = u16::from_be_bytes(a);
            if !self
                .recent_attempts
                .iter()
                .any(|(l, _, x)| *l == lock_id && *x == a)
            {
                break a;
            }
        };
        self.recent_attempts.push((lock_id, step, attempt));
        self.unlocking = Some(Attempt {
            lock_id,
            attempt,
            phase: Phase::Advertising,
        });
        Ok(())
    }

    /// Abandons the current attempt (the driver stops advertising).
    pub fn cancel_unlock(&mut self) {
        self.unlocking = None;
    }

    /// The beacon to advertise now, or `None` when not unlocking or the grant expired.
    pub fn advertisement(&mut self, now: UnixMillis) -> Option<[u8; BEACON_LEN]> {
        let now = self.clock.observe(now);
        let a = self.unlocking?;
        let h = self.live_grant(&a.lock_id, now).ok()?;
        let step = now.step();
        let tag = crypto::beacon_tag(&h.keys.tag, step);
        let mac = crypto::beacon_mac(&h.cmac, &Beacon::mac_input(step, &tag, a.attempt));
        Some(
            Beacon {
                step,
                tag,
                attempt: a.attempt,
                mac,
            }
            .to_bytes(),
        )
    }

    /// When the advertisement changes next (the next step boundary), while unlocking.
    pub fn poll_timeout(&self) -> Option<UnixMillis> {
        let a = self.unlocking?;
        let now = self.clock.now();
        let next = now.step().next_start();
        let expiry = self
            .grants
            .get(&a.lock_id)
            .map(|h| UnixMillis::from_secs(h.info.not_after));
        Some(expiry.map_or(next, |e| e.min(next)))
    }

    /// The Select to write after connecting: names the beacon of the current step.
    pub fn select(&mut self, now: UnixMillis) -> Result<[u8; SELECT_LEN], Reason> {
        let now = self.clock.observe(now);
        let a = self.unlocking.ok_or(Reason::NotUnlocking)?;
        let h = self.live_grant(&a.lock_id, now)?;
        let step = now.step();
        let tag = crypto::beacon_tag(&h.keys.tag, step);
        if let Some(u) = self.unlocking.as_mut() {
            u.phase = Phase::Selected(step);
        }
        Ok(Select {
            tag,
            attempt: a.attempt,
        }
        .to_bytes())
    }

    /// The challenge read from the lock (spec §7.3.3, LK-GST-1..5). Returns the Response to
    /// write. The guest answers only a lock that proves it holds this session for this lock.
    pub fn handle_challenge(
        &mut self,
        now: UnixMillis,
        payload: &[u8],
    ) -> Result<[u8; RESPONSE_LEN], Reason> {
        let now = self.clock.observe(now);
        // LK-GST-5
        let a = self.unlocking.ok_or(Reason::NotUnlocking)?;
        let Phase::Selected(step) = a.phase else {
            return Err(Reason::NotUnlocking);
        };
        let ch = ChallengeView::parse(payload)?;
        let h = self.grants.get(&a.lock_id).ok_or(Reason::NoGrant)?;
        // LK-GST-1
        if ch.session_id() != h.info.session_id {
            return Err(Reason::SessionMismatch);
        }
        let ctx = MacContext {
            lock_id: a.lock_id,
            session_id: h.info.session_id,
            nonce: ch.nonce(),
            lock_time: ch.lock_time(),
            step,
            attempt: a.attempt,
        };
        // LK-GST-2
        if !ct_eq(&crypto::lock_mac(&h.keys.chal, &ctx), ch.lock_mac()) {
            return Err(Reason::BadLockMac);
        }
        // LK-GST-3
        if u64::from(ch.lock_time()).abs_diff(now.secs()) > self.cfg.max_clock_skew_s {
            return Err(Reason::ClockSkew);
        }
        // LK-GST-4
        if now.secs() >= h.info.not_after {
            return Err(Reason::GrantExpired);
        }
        let phone_time = now.secs_u32();
        let mac = crypto::response_mac(&h.keys.resp, &ctx, phone_time);
        if let Some(u) = self.unlocking.as_mut() {
            u.phase = Phase::ResponseSent;
        }
        Ok(Response {
            phone_time,
            step,
            mac,
        }
        .to_bytes())
    }

    /// The lock's answer to the Response write: `Ok(())` or the ATT error code. Ends the
    /// attempt either way; returns the reason the lock gave, if it refused.
    pub fn handle_write_result(&mut self, result: Result<(), u8>) -> Result<(), Option<Reason>> {
        let was_sent = matches!(
            self.unlocking,
            Some(Attempt {
                phase: Phase::ResponseSent,
                ..
            })
        );
        self.unlocking = None;
        match result {
            Ok(()) if was_sent => Ok(()),
            Ok(()) => Err(Some(Reason::NotUnlocking)),
            Err(code) => Err(Reason::from_att_code(code)),
        }
    }
}
