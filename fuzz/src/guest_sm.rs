//! The guest's state machine driven by an `arbitrary` sequence of timed inputs.
//!
//! The driver plays issuer and lock: it seals GuestGrants (correctly, or with one flaw)
//! answering the guest's own requests, and builds challenges from the session keys it
//! chose (correct, or with a wrong MAC, session, step or attempt). A model of the guest
//! (outstanding requests, held grants, the unlock attempt's phase, the clamped clock)
//! predicts every outcome exactly, and the driver asserts, after every step:
//!
//! * the guest never produces a response to a challenge whose lock MAC is wrong, whose
//!   session is not the held one, whose lock clock is out of bounds, or when not selected
//!   (LK-GST-1..5); a response it produces is the correctly computed one;
//! * it installs only grants for itself, answering an outstanding request for that lock,
//!   sealed under its enrollment key, valid now (LK-GGR-1..4);
//! * beacons, Selects and requests are exactly what its keys and clock give;
//! * every other outcome (and its reason) is the predicted one; no panic.

use std::collections::HashMap;

use arbitrary::{Arbitrary, Unstructured};
use latchkey::crypto::{EnrollmentKey, MacContext, SessionKey, open_request, seal_guest_grant};
use latchkey::frame::{ChallengeView, GUEST_GRANT_LEN, GrantRequestView, GuestGrantHeader};
use latchkey::guest::GuestGrantInfo;
use latchkey::{
    GrantId, Guest, GuestConfig, GuestId, LockId, Reason, RequestId, SessionId, Step, UnixMillis,
};

use crate::common::{
    Delta, Enc, GUEST, LOCK_A, LOCK_B, LOCK_C, MAX_ACTIONS, Material, Mutation, T0_MS, hex, ms, rng,
};

const K_ENR: [u8; 32] = [0x5A; 32];
const K_OTHER: [u8; 32] = [0x5B; 32];
const LOCKS: [LockId; 3] = [LOCK_A, LOCK_B, LOCK_C];

/// The guest's tunables for one input.
#[derive(Arbitrary, Debug, Clone, PartialEq, Eq)]
pub struct Setup {
    /// Seed of the guest's CSPRNG.
    pub seed: u64,
    /// `max_outstanding_requests` ∈ {1, 2, 16}.
    pub max_outstanding: u8,
    /// `max_clock_skew_s` ∈ {1, 30, 300}.
    pub skew: u8,
}

/// A deliberate defect of a GuestGrant.
#[derive(Arbitrary, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flaw {
    /// None: correct.
    None,
    /// For another guest (LK-GGR-1).
    WrongGuest,
    /// For another lock than the request's (LK-GGR-2).
    WrongLock,
    /// Sealed under another key (LK-GGR-3).
    WrongKey,
}

/// How a challenge is made.
#[derive(Arbitrary, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengeHow {
    /// As the lock holding the session computes it.
    Correct,
    /// Naming another session (LK-GST-1).
    WrongSession,
    /// MAC over another step (LK-GST-2).
    WrongStep,
    /// MAC over another attempt (LK-GST-2).
    WrongAttempt,
    /// MAC with another session's keys (LK-GST-2).
    WrongKeys,
}

/// One input to the guest.
#[derive(Arbitrary, Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// The driver's clock moves (possibly backwards).
    Advance(Delta),
    /// `request_grant` for lock `x % 3` (C is unknown to everyone).
    Request {
        /// Lock.
        lock: u8,
        /// Requested validity, seconds.
        validity: u32,
    },
    /// A GuestGrant answering request `req % n` (of all requests made).
    Deliver {
        /// Which request.
        req: u8,
        /// Session id `[x; 8]`, grant id `[x ^ 0x55; 16]`, session key `[x; 32]`.
        session: u8,
        /// not_before, seconds from now.
        nb: i16,
        /// not_after, seconds from now.
        na: i16,
        /// Deliberate defect.
        flaw: Flaw,
        /// Change before delivery.
        mutation: Mutation,
    },
    /// `start_unlock` at lock `x % 3`.
    StartUnlock(u8),
    /// `cancel_unlock`.
    Cancel,
    /// `drop_grant` of lock `x % 3`.
    Drop(u8),
    /// `advertisement`.
    Advertise,
    /// `select`.
    Select,
    /// `handle_challenge`.
    Challenge {
        /// How it is made.
        how: ChallengeHow,
        /// Nonce `[x; 12]`.
        nonce: u8,
        /// Lock clock, seconds from the guest's.
        lock_time: i16,
        /// Change before delivery.
        mutation: Mutation,
    },
    /// `handle_write_result`: success, or ATT error `code`.
    WriteResult {
        /// Success.
        ok: bool,
        /// ATT error code otherwise.
        code: u8,
    },
    /// `poll_timeout`.
    Poll,
}

impl Action {
    const COUNT: u32 = 11;

    /// Encodes for a seed.
    pub fn seed(&self, e: &mut Enc) {
        match self {
            Action::Advance(d) => {
                e.tag(0, Self::COUNT);
                d.seed(e);
            }
            Action::Request { lock, validity } => {
                e.tag(1, Self::COUNT);
                e.u8(*lock);
                e.u32(*validity);
            }
            Action::Deliver {
                req,
                session,
                nb,
                na,
                flaw,
                mutation,
            } => {
                e.tag(2, Self::COUNT);
                e.u8(*req);
                e.u8(*session);
                e.i16(*nb);
                e.i16(*na);
                e.tag(*flaw as u32, 4);
                mutation.seed(e);
            }
            Action::StartUnlock(l) => {
                e.tag(3, Self::COUNT);
                e.u8(*l);
            }
            Action::Cancel => e.tag(4, Self::COUNT),
            Action::Drop(l) => {
                e.tag(5, Self::COUNT);
                e.u8(*l);
            }
            Action::Advertise => e.tag(6, Self::COUNT),
            Action::Select => e.tag(7, Self::COUNT),
            Action::Challenge {
                how,
                nonce,
                lock_time,
                mutation,
            } => {
                e.tag(8, Self::COUNT);
                e.tag(*how as u32, 5);
                e.u8(*nonce);
                e.i16(*lock_time);
                mutation.seed(e);
            }
            Action::WriteResult { ok, code } => {
                e.tag(9, Self::COUNT);
                e.bool(*ok);
                e.u8(*code);
            }
            Action::Poll => e.tag(10, Self::COUNT),
        }
    }
}

/// Decodes an input the way [`run`] does.
pub fn decode(data: &[u8]) -> Option<(Setup, Vec<Action>)> {
    let mut u = Unstructured::new(data);
    let setup = Setup::arbitrary(&mut u).ok()?;
    let mut actions = Vec::new();
    while !u.is_empty() && actions.len() < MAX_ACTIONS {
        match Action::arbitrary(&mut u) {
            Ok(a) => actions.push(a),
            Err(_) => break,
        }
    }
    Some((setup, actions))
}

/// Encodes a seed.
pub fn encode(setup: &Setup, actions: &[Action]) -> Vec<u8> {
    let mut e = Enc::default();
    e.u64(setup.seed);
    e.u8(setup.max_outstanding);
    e.u8(setup.skew);
    for a in actions {
        a.seed(&mut e);
    }
    e.0
}

/// What one input reached.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Grants installed.
    pub grants: usize,
    /// Responses produced.
    pub responses: usize,
    /// Successful write results.
    pub unlocked: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Advertising(Option<u16>),
    Selected(Step, u16),
    ResponseSent,
}

#[derive(Debug)]
struct Held {
    info: GuestGrantInfo,
    material: Material,
}

struct Driver {
    guest: Guest,
    cfg: GuestConfig,
    rng: rand_chacha::ChaCha20Rng,
    now: u64,
    clock: u64,
    outstanding: Vec<(RequestId, LockId)>,
    history: Vec<(RequestId, LockId)>,
    held: HashMap<LockId, Held>,
    unlocking: Option<(LockId, Phase)>,
    summary: Summary,
}

impl Driver {
    fn new(s: &Setup) -> Self {
        let mut cfg = GuestConfig::new(GUEST, EnrollmentKey::from_bytes(K_ENR));
        cfg.max_outstanding_requests = [1, 2, 16][usize::from(s.max_outstanding % 3)];
        cfg.max_clock_skew_s = [1, 30, 300][usize::from(s.skew % 3)];
        Self {
            guest: Guest::new(cfg.clone()).expect("valid config"),
            cfg,
            rng: rng(s.seed),
            now: T0_MS,
            clock: 0,
            outstanding: Vec::new(),
            history: Vec::new(),
            held: HashMap::new(),
            unlocking: None,
            summary: Summary::default(),
        }
    }

    fn fail(&self, what: &str) -> ! {
        panic!(
            "guest invariant violated: {what}\n  driver now={} guest clock={} unlocking={:?} outstanding={}",
            self.now,
            self.clock,
            self.unlocking,
            self.outstanding.len()
        )
    }

    /// Every guest input but cancel, drop, write result and poll observes `now` first.
    fn tick(&mut self) -> u64 {
        self.clock = self.clock.max(self.now);
        self.clock / 1000
    }

    fn live(&self, lock: &LockId, now_s: u64) -> Result<&Held, Reason> {
        let h = self.held.get(lock).ok_or(Reason::NoGrant)?;
        if now_s >= h.info.not_after {
            return Err(Reason::GrantExpired);
        }
        Ok(h)
    }

    fn apply(&mut self, a: &Action) {
        match a {
            Action::Advance(d) => self.now = d.apply(self.now),
            Action::Request { lock, validity } => {
                self.request(LOCKS[usize::from(lock % 3)], *validity)
            }
            Action::Deliver {
                req,
                session,
                nb,
                na,
                flaw,
                mutation,
            } => self.deliver(*req, *session, *nb, *na, *flaw, mutation),
            Action::StartUnlock(l) => {
                let lock = LOCKS[usize::from(l % 3)];
                let now_s = self.tick();
                let want = self.live(&lock, now_s).map(|_| ());
                let got = self.guest.start_unlock(ms(self.now), lock, &mut self.rng);
                if got != want {
                    self.fail(&format!("start_unlock: {got:?}, model says {want:?}"));
                }
                if got.is_ok() {
                    self.unlocking = Some((lock, Phase::Advertising(None)));
                }
            }
            Action::Cancel => {
                self.guest.cancel_unlock();
                self.unlocking = None;
            }
            Action::Drop(l) => {
                let lock = LOCKS[usize::from(l % 3)];
                self.guest.drop_grant(&lock);
                self.held.remove(&lock);
                if self.unlocking.is_some_and(|(x, _)| x == lock) {
                    self.unlocking = None;
                }
                if self.guest.grant(&lock).is_some() {
                    self.fail("a dropped grant is still held");
                }
            }
            Action::Advertise => self.advertise(),
            Action::Select => self.select(),
            Action::Challenge {
                how,
                nonce,
                lock_time,
                mutation,
            } => self.challenge(*how, *nonce, *lock_time, mutation),
            Action::WriteResult { ok, code } => {
                let res = if *ok { Ok(()) } else { Err(*code) };
                let sent = matches!(self.unlocking, Some((_, Phase::ResponseSent)));
                let want = match res {
                    Ok(()) if sent => Ok(()),
                    Ok(()) => Err(Some(Reason::NotUnlocking)),
                    Err(c) => Err(Reason::from_att_code(c)),
                };
                let got = self.guest.handle_write_result(res);
                if got != want {
                    self.fail(&format!("write result: {got:?}, model says {want:?}"));
                }
                if got.is_ok() {
                    self.summary.unlocked += 1;
                }
                self.unlocking = None;
            }
            Action::Poll => {
                let got = self.guest.poll_timeout();
                let want = self.unlocking.map(|(lock, _)| {
                    let next = UnixMillis(self.clock).step().next_start();
                    match self.held.get(&lock) {
                        Some(h) => UnixMillis::from_secs(h.info.not_after).min(next),
                        None => next,
                    }
                });
                if got != want {
                    self.fail(&format!("poll_timeout: {got:?}, model says {want:?}"));
                }
            }
        }
    }

    fn request(&mut self, lock: LockId, validity: u32) {
        let now_s = self.tick();
        let req = self
            .guest
            .request_grant(ms(self.now), lock, validity, &mut self.rng);
        let v = GrantRequestView::parse(&req)
            .unwrap_or_else(|r| self.fail(&format!("request does not parse: {r:?}")));
        let h = v.header;
        if h.guest_id != GUEST || h.lock_id != lock || h.timestamp != now_s {
            self.fail("request header is not ours, for this lock, now");
        }
        match open_request(&EnrollmentKey::from_bytes(K_ENR), &v) {
            Ok(x) if x == validity => {}
            other => self.fail(&format!("request seal: {other:?}")),
        }
        if self.outstanding.len() >= self.cfg.max_outstanding_requests {
            self.outstanding.remove(0);
        }
        self.outstanding.push((h.request_id, lock));
        self.history.push((h.request_id, lock));
    }

    fn deliver(&mut self, req: u8, session: u8, nb: i16, na: i16, flaw: Flaw, m: &Mutation) {
        let now_s = self.tick();
        let (request_id, lock) = if self.history.is_empty() {
            (RequestId([req; 16]), LOCK_A)
        } else {
            self.history[usize::from(req) % self.history.len()]
        };
        let lock_id = if flaw == Flaw::WrongLock {
            LOCKS[(LOCKS.iter().position(|l| *l == lock).unwrap_or(0) + 1) % 3]
        } else {
            lock
        };
        let at = |d: i16| now_s.saturating_add_signed(i64::from(d));
        let header = GuestGrantHeader {
            guest_id: if flaw == Flaw::WrongGuest {
                GuestId([0x62; 16])
            } else {
                GUEST
            },
            lock_id,
            request_id,
            grant_id: GrantId([session ^ 0x55; 16]),
            session_id: SessionId([session; 8]),
            issued_at: now_s,
            not_before: at(nb),
            not_after: at(na),
        };
        let k_s = SessionKey::from_bytes([session; 32]);
        let key = if flaw == Flaw::WrongKey {
            K_OTHER
        } else {
            K_ENR
        };
        let nonce = [session.wrapping_add(1); 12];
        let sealed = seal_guest_grant(&EnrollmentKey::from_bytes(key), &header, &k_s, &nonce);
        let mut frame = [0u8; GUEST_GRANT_LEN];
        header
            .encode(&nonce, &sealed, &mut frame)
            .expect("buffer fits");
        let payload = m.apply(&frame);
        let got = self.guest.handle_grant(ms(self.now), &payload);
        if payload != frame {
            if got.is_ok() {
                self.fail(&format!("installed a mutated grant {}", hex(&payload)));
            }
            return;
        }
        let pos = self
            .outstanding
            .iter()
            .position(|(r, l)| *r == request_id && *l == lock_id);
        let info = GuestGrantInfo {
            lock_id,
            grant_id: header.grant_id,
            session_id: header.session_id,
            not_before: header.not_before,
            not_after: header.not_after,
        };
        let want = if header.guest_id != GUEST {
            Err(Reason::WrongGuest)
        } else if pos.is_none() {
            Err(Reason::UnknownRequest)
        } else if flaw == Flaw::WrongKey {
            Err(Reason::BadSeal)
        } else if header.not_before >= header.not_after {
            Err(Reason::InvalidValidity)
        } else if now_s >= header.not_after {
            Err(Reason::GrantExpired)
        } else {
            Ok(info)
        };
        if got != want {
            self.fail(&format!("handle_grant: {got:?}, model says {want:?}"));
        }
        if let (Ok(_), Some(pos)) = (got, pos) {
            self.summary.grants += 1;
            self.outstanding.remove(pos);
            self.held.insert(
                lock_id,
                Held {
                    info,
                    material: Material::new(&k_s, lock_id, header.session_id),
                },
            );
        }
        if self.guest.grant(&lock_id) != self.held.get(&lock_id).map(|h| h.info) {
            self.fail("the grant held differs from the model's");
        }
    }

    fn advertise(&mut self) {
        let now_s = self.tick();
        let got = self.guest.advertisement(ms(self.now));
        let step = UnixMillis(self.clock).step();
        let Some((lock, phase)) = self.unlocking else {
            if got.is_some() {
                self.fail("advertising while not unlocking");
            }
            return;
        };
        let Ok(h) = self.live(&lock, now_s) else {
            if got.is_some() {
                self.fail("advertising without a live grant (LK-GST-4)");
            }
            return;
        };
        let Some(b) = got else {
            self.fail("no advertisement while unlocking with a live grant")
        };
        let attempt = u16::from_be_bytes([b[13], b[14]]);
        let known = match phase {
            Phase::Advertising(a) => a,
            Phase::Selected(_, a) => Some(a),
            Phase::ResponseSent => None,
        };
        if known.is_some_and(|a| a != attempt) || b != h.material.beacon(step, attempt) {
            self.fail(&format!(
                "advertisement is not the correct beacon: {}",
                hex(&b)
            ));
        }
        if let Some((_, Phase::Advertising(a))) = self.unlocking.as_mut() {
            *a = Some(attempt);
        }
    }

    fn select(&mut self) {
        let now_s = self.tick();
        let got = self.guest.select(ms(self.now));
        let step = UnixMillis(self.clock).step();
        let want = match self.unlocking {
            None => Err(Reason::NotUnlocking),
            Some((lock, _)) => self.live(&lock, now_s).map(|_| ()),
        };
        if got.map(|_| ()) != want {
            self.fail(&format!("select: {got:?}, model says {want:?}"));
        }
        let (Ok(sel), Some((lock, phase))) = (got, self.unlocking) else {
            return;
        };
        let attempt = u16::from_be_bytes([sel[9], sel[10]]);
        let known = match phase {
            Phase::Advertising(a) => a,
            Phase::Selected(_, a) => Some(a),
            Phase::ResponseSent => None,
        };
        let m = &self.held[&lock].material;
        if known.is_some_and(|a| a != attempt) || sel != m.select(step, attempt) {
            self.fail(&format!(
                "select is not the current beacon's: {}",
                hex(&sel)
            ));
        }
        self.unlocking = Some((lock, Phase::Selected(step, attempt)));
    }

    fn challenge(&mut self, how: ChallengeHow, nonce: u8, lock_time: i16, m: &Mutation) {
        let now_s = self.tick();
        let lock_time =
            u32::try_from(now_s.saturating_add_signed(i64::from(lock_time))).unwrap_or(u32::MAX);
        // The context the guest will check against (if it is selected and holds a grant).
        let (lock, step, attempt) = match self.unlocking {
            Some((lock, Phase::Selected(s, a))) => (lock, s, a),
            Some((lock, _)) => (lock, UnixMillis(self.clock).step(), 0),
            None => (LOCK_A, UnixMillis(self.clock).step(), 0),
        };
        let frame = match self.held.get(&lock) {
            Some(h) => {
                let mut ctx = h.material.ctx([nonce; 12], lock_time, step, attempt);
                let mut keys = h.material.clone();
                match how {
                    ChallengeHow::Correct => {}
                    ChallengeHow::WrongSession => {
                        ctx.session_id = SessionId([!h.info.session_id.0[0]; 8]);
                        keys = Material::new(
                            &SessionKey::from_bytes([0xEE; 32]),
                            lock,
                            ctx.session_id,
                        );
                    }
                    ChallengeHow::WrongStep => ctx.step = Step(step.0.wrapping_add(1)),
                    ChallengeHow::WrongAttempt => ctx.attempt = attempt.wrapping_add(1),
                    ChallengeHow::WrongKeys => {
                        keys = Material::new(
                            &SessionKey::from_bytes([0xEE; 32]),
                            lock,
                            h.info.session_id,
                        )
                    }
                }
                keys.challenge(&ctx)
            }
            None => [0u8; 33],
        };
        let payload = m.apply(&frame);
        let got = self.guest.handle_challenge(ms(self.now), &payload);
        // The model's verdict, in the spec's order (LK-GST-5, LK-FRM, LK-GST-1..4).
        let want: Result<[u8; 20], Reason> = (|| {
            let Some((lock, Phase::Selected(step, attempt))) = self.unlocking else {
                return Err(Reason::NotUnlocking);
            };
            let ch = ChallengeView::parse(&payload)?;
            let h = self.held.get(&lock).ok_or(Reason::NoGrant)?;
            if ch.session_id() != h.info.session_id {
                return Err(Reason::SessionMismatch);
            }
            let ctx: MacContext = h.material.ctx(ch.nonce(), ch.lock_time(), step, attempt);
            if h.material.challenge(&ctx)[..] != payload[..] {
                return Err(Reason::BadLockMac);
            }
            if u64::from(ch.lock_time()).abs_diff(now_s) > self.cfg.max_clock_skew_s {
                return Err(Reason::ClockSkew);
            }
            if now_s >= h.info.not_after {
                return Err(Reason::GrantExpired);
            }
            Ok(h.material.response(&ctx, UnixMillis(self.clock).secs_u32()))
        })();
        if let Ok(resp) = got
            && want.is_err()
        {
            self.fail(&format!(
                "responded {} to a challenge it must refuse ({want:?}): {}",
                hex(&resp),
                hex(&payload)
            ));
        }
        if got != want {
            self.fail(&format!("handle_challenge: {got:?}, model says {want:?}"));
        }
        if got.is_ok() {
            self.summary.responses += 1;
            if let Some((_, p)) = self.unlocking.as_mut() {
                *p = Phase::ResponseSent;
            }
        }
    }
}

/// Runs one input; returns what it reached.
pub fn run(data: &[u8]) -> Summary {
    let Some((setup, actions)) = decode(data) else {
        return Summary::default();
    };
    let mut d = Driver::new(&setup);
    for a in &actions {
        d.apply(a);
    }
    d.summary
}
