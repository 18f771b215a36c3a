//! Model-based test of the lock (spec §7.2) with `proptest-state-machine`.
//!
//! A small, obviously-correct model of the lock's state (three forged sessions, one clock,
//! tiny caps) predicts the verdict of every input by walking the processing orders of spec
//! §7.2.3–§7.2.8 step by step; the real [`Lock`] runs the same random sequence of inputs
//! (time moving forwards and sometimes backwards, grants, revocations, beacons, Selects,
//! Responses, disconnects, timeouts) and must return exactly the predicted outcome or
//! reason. After every input the table sizes (`stats()`) must equal the model's and stay
//! within the caps, and `poll_timeout` must never be later than the model's next deadline.
//! A failing sequence is shrunk to a minimal one; `PROPTEST_CASES` sets the number of cases.
//!
//! Two points of §7.1 the model pins, both found by it (the lock used to purge first): a
//! pending authentication whose connection window has passed still exists until a timeout
//! purges it, so the same beacon heard again is `already_pending` (LK-ADV-7), and it still
//! counts towards `max_pending` (LK-ADV-8).
//!
//! The model also follows unlock limits (LK-LIM-1/2: two of the sessions carry one),
//! lockout after failed handshakes (LK-LCK-1..3, with a threshold of 2, a one-minute window
//! and the shortest duration; every session belongs to one guest, so they share the count)
//! and the tombstones of revoked sessions (LK-REV-5). The notices the lock emits after each
//! input must be exactly the model's.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, OnceLock};

use common::{Forge, GUEST, LOCK_A, T0, lock_config};
use latchkey::crypto::{self, MacContext, derive_session_keys};
use latchkey::lock::{
    BeaconOutcome, ConnId, GrantOutcome, LockConfig, LockNotice, LockStats, RevocationOutcome,
    Unlock,
};
use latchkey::{Lock, Reason, SessionId, Step, UnixMillis};
use proptest::prelude::*;
use proptest::strategy::Union;
use proptest::test_runner::TestRunner;
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

// ------------------------------------------------------------------ the universe

/// Sessions in play.
const N: usize = 3;
/// GATT connections in play.
const CONNS: u64 = 3;
const WINDOW_MS: u64 = 6_000;
const BUDGET_MS: u64 = 4_000;
const SKEW_S: u64 = 30;
const RSSI_MIN: i16 = -70;
const MAX_SESSIONS: usize = 2;
const MAX_PENDING: usize = 1;
const MAX_CHALLENGES: usize = 1;
const REPLAY_CAP: usize = 16;
const REVOCATION_CAP: usize = 16;
const COMPANY: u16 = 0xFFFF;
const LOCKOUT_THRESHOLD: u32 = 2;
const LOCKOUT_WINDOW_MS: u64 = 60_000;
const LOCKOUT_DURATION_MS: u64 = 10_000;

/// `(seed, issued_at, not_before, not_after, max_unlocks)`, seconds relative to `T0`:
/// 0 is live for the whole run and may unlock once; 1 is issued in the future at first
/// (LK-GRT-6), then not yet valid, then expires mid-run, with no unlock limit; 2 expires
/// early and may unlock twice.
const SESSIONS: [(u8, i64, i64, i64, u16); N] = [
    (0x11, 0, -30, 3_600, 1),
    (0x22, 40, 40, 160, 0),
    (0x33, 0, -30, 70, 2),
];

struct Fixtures {
    cfg: LockConfig,
    forges: Vec<Forge>,
    grants: Vec<Vec<u8>>,
    revocations: Vec<Vec<u8>>,
}

/// Grants and revocations are signed once (RSA is slow); every case reuses them.
fn fx() -> &'static Fixtures {
    static FX: OnceLock<Fixtures> = OnceLock::new();
    FX.get_or_init(|| {
        let mut rng = ChaCha20Rng::seed_from_u64(99);
        let t0 = T0.secs();
        let at = |off: i64| t0.checked_add_signed(off).expect("in range");
        let forges: Vec<Forge> = SESSIONS
            .iter()
            .map(|&(seed, issued, nb, na, max_unlocks)| {
                let mut f = Forge::new(seed, T0);
                f.header.issued_at = at(issued);
                f.header.not_before = at(nb);
                f.header.not_after = at(na);
                f.header.max_unlocks = max_unlocks;
                f
            })
            .collect();
        let grants = forges.iter().map(|f| f.lock_grant(&mut rng)).collect();
        let revocations = forges.iter().map(|f| f.revocation(&mut rng, t0)).collect();
        let mut cfg = lock_config();
        cfg.connection_window_ms = WINDOW_MS;
        cfg.response_budget_ms = BUDGET_MS;
        cfg.max_clock_skew_s = SKEW_S;
        cfg.rssi_threshold_dbm = RSSI_MIN;
        cfg.max_sessions = MAX_SESSIONS;
        cfg.max_pending = MAX_PENDING;
        cfg.max_challenges = MAX_CHALLENGES;
        cfg.replay_capacity = REPLAY_CAP;
        cfg.revocation_capacity = REVOCATION_CAP;
        cfg.lockout_threshold = LOCKOUT_THRESHOLD;
        cfg.lockout_window_s = LOCKOUT_WINDOW_MS / 1000;
        cfg.lockout_duration_s = LOCKOUT_DURATION_MS / 1000;
        Fixtures {
            cfg,
            forges,
            grants,
            revocations,
        }
    })
}

fn sid(i: usize) -> SessionId {
    SessionId([SESSIONS[i].0; 8])
}

fn session_index(id: &SessionId) -> usize {
    (0..N)
        .find(|i| sid(*i) == *id)
        .expect("a session of the universe")
}

fn not_before(i: usize) -> u64 {
    T0.secs().saturating_add_signed(SESSIONS[i].2)
}

fn not_after(i: usize) -> u64 {
    T0.secs().saturating_add_signed(SESSIONS[i].3)
}

fn issued_at(i: usize) -> u64 {
    T0.secs().saturating_add_signed(SESSIONS[i].1)
}

fn max_unlocks(i: usize) -> u16 {
    SESSIONS[i].4
}

fn step_of(ms: u64) -> u32 {
    UnixMillis(ms).step().0
}

// ------------------------------------------------------------------ transitions

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BeaconKind {
    Genuine,
    BadMac,
    /// Another company's advert (LK-ADV-1).
    Foreign,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RespKind {
    Genuine,
    BadMac,
    /// The armed step + 1 (LK-RSP-4).
    WrongStep,
}

#[derive(Debug, Clone)]
enum Tr {
    /// The driver's clock moves forwards (no input: nothing purges).
    Advance(u64),
    /// The driver's clock moves backwards (LK-TIM-1).
    Back(u64),
    Install(usize),
    Revoke(usize),
    Beacon {
        session: usize,
        step: u32,
        attempt: u16,
        rssi: i16,
        kind: BeaconKind,
    },
    /// Beacons of one session and step with attempts `first..first + count`, back to back
    /// (fills the replay cache, LK-ADV-9).
    Burst {
        session: usize,
        step: u32,
        first: u16,
        count: u16,
    },
    Select {
        conn: u64,
        session: usize,
        step: u32,
        attempt: u16,
    },
    /// A Response on `conn`, built from the challenge last read on it, with
    /// `phone_time = now_s + phone_offset_s`.
    Respond {
        conn: u64,
        kind: RespKind,
        phone_offset_s: i64,
    },
    Disconnect(u64),
    Timeout,
    /// A whole handshake at the current step: beacon, then (if it armed) Select on `conn`,
    /// then (if it yielded a challenge) a Response of `kind`.
    Handshake {
        session: usize,
        attempt: u16,
        conn: u64,
        kind: RespKind,
        phone_offset_s: i64,
    },
}

/// What an input returned.
#[derive(Debug, Clone, PartialEq)]
enum Verdict {
    Nothing,
    Beacon(Result<BeaconOutcome, Reason>),
    Burst(Vec<Result<BeaconOutcome, Reason>>),
    /// The challenge's session and lock_time.
    Select(Result<(SessionId, u32), Reason>),
    Response(Result<Unlock, Reason>),
    Grant(Result<GrantOutcome, Reason>),
    Revocation(Result<RevocationOutcome, Reason>),
    /// The verdicts of a composite input, in order.
    Seq(Vec<Verdict>),
}

// ------------------------------------------------------------------ the model

#[derive(Debug, Clone, Copy)]
struct Pend {
    step: u32,
    attempt: u16,
    armed_at: u64,
}

#[derive(Debug, Clone, Copy)]
struct Chal {
    session: usize,
    step: u32,
    issued_at: u64,
}

/// The guest's failed handshakes (LK-LCK-1): every session is the same guest's.
#[derive(Debug, Clone, Copy)]
struct Failures {
    window_start: u64,
    count: u32,
    /// The session of the latest failure.
    session: usize,
    locked_until: Option<u64>,
}

#[derive(Debug, Clone)]
struct Model {
    /// The driver's clock (ms).
    now: u64,
    /// The lock's effective clock, `max` of every `now` it was given (LK-TIM-1).
    eff: u64,
    installed: [bool; N],
    /// At most one pending authentication per session (LK-ADV-8).
    pending: [Option<Pend>; N],
    /// `(session, step, attempt)` of beacons that armed (LK-ADV-7).
    replay: BTreeSet<(usize, u32, u16)>,
    /// One challenge per connection.
    challenges: BTreeMap<u64, Chal>,
    /// The revocation list: session → expires_at (s).
    revoked: BTreeMap<usize, u64>,
    /// Sessions revoked while installed, whose revocation is remembered (LK-REV-5).
    tomb: [bool; N],
    /// Unlocks per session (LK-LIM-1).
    unlocks: [u16; N],
    failures: Option<Failures>,
    /// The verdict the last transition must produce.
    expect: Verdict,
    /// The notices it must emit, in order.
    notices: Vec<LockNotice>,
}

impl Model {
    fn new(now: u64) -> Self {
        Self {
            now,
            eff: 0,
            installed: [false; N],
            pending: [None; N],
            replay: BTreeSet::new(),
            challenges: BTreeMap::new(),
            revoked: BTreeMap::new(),
            tomb: [false; N],
            unlocks: [0; N],
            failures: None,
            expect: Verdict::Nothing,
            notices: Vec::new(),
        }
    }

    fn locked_out(&self) -> bool {
        self.failures
            .and_then(|f| f.locked_until)
            .is_some_and(|u| self.eff < u)
    }

    fn lockout_ended(&mut self, f: Failures) {
        let h = &fx().forges[f.session].header;
        self.notices.push(LockNotice::LockoutEnded {
            guest_id: GUEST,
            grant_id: h.grant_id,
            session_id: h.session_id,
        });
        self.failures = None;
    }

    /// LK-LCK-1: a failed handshake on a challenge of session `i`.
    fn fail(&mut self, i: usize, reason: Reason) {
        let now = self.eff;
        if let Some(f) = self.failures
            && let Some(u) = f.locked_until
        {
            if now < u {
                return;
            }
            self.lockout_ended(f);
        }
        let mut f = self.failures.unwrap_or(Failures {
            window_start: now,
            count: 0,
            session: i,
            locked_until: None,
        });
        if now - f.window_start > LOCKOUT_WINDOW_MS {
            f.window_start = now;
            f.count = 0;
        }
        f.count += 1;
        f.session = i;
        if f.count >= LOCKOUT_THRESHOLD {
            let until = now + LOCKOUT_DURATION_MS;
            f.locked_until = Some(until);
            f.count = 0;
            let h = &fx().forges[i].header;
            self.notices.push(LockNotice::LockoutStarted {
                guest_id: GUEST,
                grant_id: h.grant_id,
                session_id: h.session_id,
                reason,
                until: UnixMillis(until),
            });
            // Every pending authentication is this guest's.
            self.pending = [None; N];
        }
        self.failures = Some(f);
    }

    fn now_s(&self) -> u64 {
        self.eff / 1000
    }

    /// Every input but a foreign advert and a disconnect: the effective time moves
    /// (LK-TIM-1), and replay entries whose step left the window go (LK-ADV-9).
    fn tick(&mut self) {
        self.eff = self.eff.max(self.now);
        let lo = step_of(self.eff).saturating_sub(1);
        self.replay.retain(|(_, st, _)| *st >= lo);
    }

    /// `handle_timeout` after its tick (§7.2.8).
    fn purge(&mut self) {
        let (now, now_s) = (self.eff, self.now_s());
        for i in 0..N {
            if self.installed[i] && now_s >= not_after(i) {
                self.installed[i] = false;
                self.pending[i] = None;
            }
            if self.pending[i].is_some_and(|p| now - p.armed_at > WINDOW_MS) {
                self.pending[i] = None;
            }
        }
        self.challenges
            .retain(|_, c| now - c.issued_at <= BUDGET_MS);
        self.revoked.retain(|_, exp| *exp > now_s);
        for i in 0..N {
            self.tomb[i] &= self.revoked.contains_key(&i);
        }
        if let Some(f) = self.failures
            && f.locked_until.is_some_and(|u| u <= now)
        {
            self.lockout_ended(f);
        }
    }

    /// §7.2.3, in order.
    fn beacon(
        &mut self,
        i: usize,
        step: u32,
        attempt: u16,
        rssi: i16,
        kind: BeaconKind,
    ) -> Result<BeaconOutcome, Reason> {
        if kind == BeaconKind::Foreign {
            return Err(Reason::ForeignCompany);
        }
        self.tick();
        let cur = step_of(self.eff);
        if step < cur.saturating_sub(1) {
            return Err(Reason::StaleStep);
        }
        if step > cur.saturating_add(1) {
            return Err(Reason::FutureStep);
        }
        if !self.installed[i] && !self.tomb[i] {
            return Err(Reason::UnknownTag);
        }
        if !(RSSI_MIN..=20).contains(&rssi) {
            return Err(Reason::RssiTooLow);
        }
        if kind == BeaconKind::BadMac {
            return Err(Reason::BadBeaconMac);
        }
        if !self.installed[i] {
            return Err(Reason::SessionRevoked);
        }
        if self.now_s() < not_before(i) {
            return Err(Reason::SessionNotYetValid);
        }
        if self.now_s() >= not_after(i) {
            return Err(Reason::SessionExpired);
        }
        if max_unlocks(i) != 0 && self.unlocks[i] >= max_unlocks(i) {
            return Err(Reason::UnlockLimitReached);
        }
        if self.locked_out() {
            return Err(Reason::LockedOut);
        }
        if self.replay.contains(&(i, step, attempt)) {
            // `already_pending` while this exact beacon's pending authentication exists;
            // it exists until consumed, replaced, removed or purged (§7.1, LK-ADV-7).
            return match self.pending[i] {
                Some(p) if p.step == step && p.attempt == attempt => {
                    Ok(BeaconOutcome::AlreadyPending)
                }
                _ => Err(Reason::Replay),
            };
        }
        // Pending authentications count until a timeout purges them (§7.1, LK-ADV-8).
        let live = self.pending.iter().flatten().count();
        if self.pending[i].is_none() && live >= MAX_PENDING {
            return Err(Reason::PendingCapReached);
        }
        if self.replay.len() >= REPLAY_CAP {
            return Err(Reason::ReplayCacheFull);
        }
        self.replay.insert((i, step, attempt));
        self.pending[i] = Some(Pend {
            step,
            attempt,
            armed_at: self.eff,
        });
        Ok(BeaconOutcome::Armed {
            session_id: sid(i),
            guest_id: GUEST,
            step: Step(step),
            attempt,
        })
    }

    /// §7.2.4, in order.
    fn select(
        &mut self,
        conn: u64,
        i: usize,
        step: u32,
        attempt: u16,
    ) -> Result<(SessionId, u32), Reason> {
        self.tick();
        let p = match self.pending[i] {
            Some(p) if p.step == step && p.attempt == attempt => p,
            _ => return Err(Reason::NoPendingAuth),
        };
        if self.eff - p.armed_at > WINDOW_MS {
            self.pending[i] = None;
            return Err(Reason::ConnectionWindowExpired);
        }
        let now = self.eff;
        self.challenges
            .retain(|_, c| now - c.issued_at <= BUDGET_MS);
        if !self.challenges.contains_key(&conn) && self.challenges.len() >= MAX_CHALLENGES {
            return Err(Reason::ChallengeCapReached);
        }
        self.pending[i] = None;
        self.challenges.insert(
            conn,
            Chal {
                session: i,
                step: p.step,
                issued_at: now,
            },
        );
        Ok((sid(i), u32::try_from(self.now_s()).expect("u32 seconds")))
    }

    fn phone_time(&self, offset_s: i64) -> u32 {
        let t = (self.now / 1000).saturating_add_signed(offset_s);
        u32::try_from(t).expect("u32 seconds")
    }

    /// §7.2.5, in order; a failed handshake counts (LK-LCK-1).
    fn respond(&mut self, conn: u64, kind: RespKind, offset_s: i64) -> Result<Unlock, Reason> {
        self.tick();
        let ch = self.challenges.remove(&conn).ok_or(Reason::NoChallenge)?;
        let r = self.check_response(ch, kind, offset_s);
        if let Err(
            reason @ (Reason::LateResponse
            | Reason::StepMismatch
            | Reason::ClockSkew
            | Reason::BadResponseMac),
        ) = r
        {
            self.fail(ch.session, reason);
        }
        r
    }

    fn check_response(
        &mut self,
        ch: Chal,
        kind: RespKind,
        offset_s: i64,
    ) -> Result<Unlock, Reason> {
        if self.eff - ch.issued_at > BUDGET_MS {
            return Err(Reason::LateResponse);
        }
        let i = ch.session;
        if self.revoked.contains_key(&i) {
            return Err(Reason::SessionRevoked);
        }
        if !self.installed[i] || self.now_s() >= not_after(i) {
            return Err(Reason::SessionExpired);
        }
        if self.locked_out() {
            return Err(Reason::LockedOut);
        }
        let step = ch.step + u32::from(kind == RespKind::WrongStep);
        if step != ch.step {
            return Err(Reason::StepMismatch);
        }
        if u64::from(self.phone_time(offset_s)).abs_diff(self.now_s()) > SKEW_S {
            return Err(Reason::ClockSkew);
        }
        if kind == RespKind::BadMac {
            return Err(Reason::BadResponseMac);
        }
        if max_unlocks(i) != 0 && self.unlocks[i] >= max_unlocks(i) {
            return Err(Reason::UnlockLimitReached);
        }
        self.unlocks[i] += 1;
        Ok(unlock(i, self.unlocks[i]))
    }

    /// §7.2.6, in order (frames, lock id, signature and validity are always good here).
    fn install(&mut self, i: usize) -> Result<GrantOutcome, Reason> {
        self.tick();
        let now_s = self.now_s();
        if now_s >= not_after(i) {
            return Err(Reason::GrantExpired);
        }
        if issued_at(i) > now_s + SKEW_S {
            return Err(Reason::IssuedInFuture);
        }
        if self.revoked.contains_key(&i) {
            return Err(Reason::GrantRevoked);
        }
        if self.installed[i] {
            return Ok(GrantOutcome::AlreadyInstalled);
        }
        if self.installed.iter().filter(|x| **x).count() >= MAX_SESSIONS {
            self.purge();
            if self.installed.iter().filter(|x| **x).count() >= MAX_SESSIONS {
                return Err(Reason::SessionCapReached);
            }
        }
        self.installed[i] = true;
        self.unlocks[i] = 0;
        let h = &fx().forges[i].header;
        Ok(GrantOutcome::Installed {
            grant_id: h.grant_id,
            session_id: h.session_id,
            guest_id: h.guest_id,
            not_after: h.not_after,
        })
    }

    /// §7.2.7, in order (the list never reaches its capacity with three grants).
    fn revoke(&mut self, i: usize) -> Result<RevocationOutcome, Reason> {
        self.tick();
        if not_after(i) > self.now_s() {
            self.revoked.entry(i).or_insert(not_after(i));
        }
        let session_removed = self.installed[i];
        self.tomb[i] |= session_removed && self.revoked.contains_key(&i);
        self.installed[i] = false;
        self.pending[i] = None;
        Ok(RevocationOutcome {
            grant_id: fx().forges[i].header.grant_id,
            session_removed,
        })
    }

    fn stats(&self) -> LockStats {
        let sessions = self.installed.iter().filter(|x| **x).count();
        LockStats {
            sessions,
            tags: 3 * sessions,
            pending: self.pending.iter().flatten().count(),
            challenges: self.challenges.len(),
            replay: self.replay.len(),
            revocations: self.revoked.len(),
            tombstones: self.tomb.iter().filter(|x| **x).count(),
            failure_records: usize::from(self.failures.is_some()),
            lockouts: usize::from(self.failures.is_some_and(|f| f.locked_until.is_some())),
            notices: 0,
        }
    }

    /// The latest instant `poll_timeout` may name (§7.2.8).
    fn deadline(&self) -> Option<u64> {
        if self.eff == 0 {
            return None;
        }
        let step_end = Step(step_of(self.eff)).next_start().0;
        let sessions = (0..N)
            .filter(|i| self.installed[*i])
            .map(|i| not_after(i) * 1000);
        let pending = self
            .pending
            .iter()
            .flatten()
            .map(|p| p.armed_at + WINDOW_MS + 1);
        let challenges = self
            .challenges
            .values()
            .map(|c| c.issued_at + BUDGET_MS + 1);
        let lockout = self.failures.and_then(|f| f.locked_until);
        sessions
            .chain(pending)
            .chain(challenges)
            .chain(lockout)
            .chain([step_end])
            .min()
    }
}

fn unlock(i: usize, unlocks: u16) -> Unlock {
    let h = &fx().forges[i].header;
    Unlock {
        session_id: h.session_id,
        grant_id: h.grant_id,
        guest_id: h.guest_id,
        unlocks,
        max_unlocks: h.max_unlocks,
    }
}

struct LockModel;

impl ReferenceStateMachine for LockModel {
    type State = Model;
    type Transition = Tr;

    fn init_state() -> BoxedStrategy<Model> {
        // Start anywhere within a step, usually with sessions 0 and 2 installed.
        (
            0u64..30_000,
            prop::bool::weighted(0.8),
            prop::bool::weighted(0.5),
        )
            .prop_map(|(j, s0, s2)| {
                let mut m = Model::new(T0.0 + j);
                for (i, pre) in [(0, s0), (2, s2)] {
                    if pre {
                        assert!(m.install(i).is_ok());
                    }
                }
                m
            })
            .boxed()
    }

    fn transitions(s: &Model) -> BoxedStrategy<Tr> {
        let cur = step_of(s.now.max(s.eff));
        let step = prop_oneof![
            6 => Just(0i32),
            2 => Just(-1),
            2 => Just(1),
            1 => Just(-2),
            1 => Just(2),
        ]
        .prop_map(move |d| cur.saturating_add_signed(d));
        let rssi = prop_oneof![
            6 => Just(-50i16),
            1 => Just(RSSI_MIN),
            1 => Just(RSSI_MIN - 1),
            1 => Just(20),
            1 => Just(21),
            1 => Just(127),
        ];
        let beacon_kind = prop_oneof![
            8 => Just(BeaconKind::Genuine),
            1 => Just(BeaconKind::BadMac),
            1 => Just(BeaconKind::Foreign),
        ];
        let resp_kind = prop_oneof![
            3 => Just(RespKind::Genuine),
            1 => Just(RespKind::BadMac),
            1 => Just(RespKind::WrongStep),
        ];
        let skew = SKEW_S as i64;
        let offset = prop_oneof![
            6 => Just(0i64),
            1 => Just(skew),
            1 => Just(-skew),
            1 => Just(skew + 1),
            1 => Just(-skew - 1),
        ];
        let advance = prop_oneof![
            4 => 0u64..3_000,
            2 => 3_000u64..12_000,
            1 => 12_000u64..40_000,
            1 => prop::sample::select(vec![
                1,
                BUDGET_MS,
                BUDGET_MS + 1,
                WINDOW_MS,
                WINDOW_MS + 1,
                30_000
            ]),
        ];
        let mut arms: Vec<(u32, BoxedStrategy<Tr>)> = vec![
            (12, advance.prop_map(Tr::Advance).boxed()),
            (2, (1u64..5_000).prop_map(Tr::Back).boxed()),
            (4, (0..N).prop_map(Tr::Install).boxed()),
            (1, (0..N).prop_map(Tr::Revoke).boxed()),
            (
                1,
                (0..N, step.clone(), 0u16..16, 1u16..=12)
                    .prop_map(|(session, step, first, count)| Tr::Burst {
                        session,
                        step,
                        first,
                        count,
                    })
                    .boxed(),
            ),
            (
                16,
                (0..N, step.clone(), 0u16..4, rssi, beacon_kind)
                    .prop_map(|(session, step, attempt, rssi, kind)| Tr::Beacon {
                        session,
                        step,
                        attempt,
                        rssi,
                        kind,
                    })
                    .boxed(),
            ),
            (
                2,
                (0..CONNS, 0..N, step, 0u16..4)
                    .prop_map(|(conn, session, step, attempt)| Tr::Select {
                        conn,
                        session,
                        step,
                        attempt,
                    })
                    .boxed(),
            ),
            (
                2,
                (0..CONNS, resp_kind.clone(), offset.clone())
                    .prop_map(|(conn, kind, phone_offset_s)| Tr::Respond {
                        conn,
                        kind,
                        phone_offset_s,
                    })
                    .boxed(),
            ),
            (2, (0..CONNS).prop_map(Tr::Disconnect).boxed()),
            (2, Just(Tr::Timeout).boxed()),
            (
                4,
                (0..N, 0u16..16, 0..CONNS, resp_kind.clone(), offset.clone())
                    .prop_map(
                        |(session, attempt, conn, kind, phone_offset_s)| Tr::Handshake {
                            session,
                            attempt,
                            conn,
                            kind,
                            phone_offset_s,
                        },
                    )
                    .boxed(),
            ),
        ];
        // Most useful inputs follow the state: the pending beacon heard again or selected,
        // the outstanding challenge answered.
        let pend: Vec<(usize, u32, u16)> = (0..N)
            .filter_map(|i| s.pending[i].map(|p| (i, p.step, p.attempt)))
            .collect();
        if !pend.is_empty() {
            arms.push((
                4,
                prop::sample::select(pend.clone())
                    .prop_map(|(session, step, attempt)| Tr::Beacon {
                        session,
                        step,
                        attempt,
                        rssi: -50,
                        kind: BeaconKind::Genuine,
                    })
                    .boxed(),
            ));
            arms.push((
                12,
                (0..CONNS, prop::sample::select(pend))
                    .prop_map(|(conn, (session, step, attempt))| Tr::Select {
                        conn,
                        session,
                        step,
                        attempt,
                    })
                    .boxed(),
            ));
        }
        // Time to exactly the next boundaries (and 1 ms past them): window, budget, validity.
        let mut edges: Vec<u64> = Vec::new();
        for p in s.pending.iter().flatten() {
            edges.push(p.armed_at + WINDOW_MS);
        }
        for c in s.challenges.values() {
            edges.push(c.issued_at + BUDGET_MS);
        }
        for i in 0..N {
            edges.push(not_before(i) * 1000);
            edges.push(not_after(i) * 1000 - 1);
        }
        if let Some(until) = s.failures.and_then(|f| f.locked_until) {
            edges.push(until);
            if until <= s.now {
                // The lockout's time is up: its timer (LK-LCK-3).
                arms.push((8, Just(Tr::Timeout).boxed()));
            } else {
                arms.push((4, Just(Tr::Advance(until - s.now)).boxed()));
            }
        }
        let jumps: Vec<u64> = edges
            .into_iter()
            .filter(|e| *e >= s.now)
            .flat_map(|e| [e - s.now, e + 1 - s.now])
            .filter(|d| *d <= 40_000)
            .collect();
        if !jumps.is_empty() {
            arms.push((6, prop::sample::select(jumps).prop_map(Tr::Advance).boxed()));
        }
        // A locked-out guest keeps trying: its installed sessions' beacons (LK-LCK-2).
        let installed: Vec<usize> = (0..N).filter(|i| s.installed[*i]).collect();
        if s.locked_out() && !installed.is_empty() {
            arms.push((
                8,
                (prop::sample::select(installed), 0u16..4)
                    .prop_map(move |(session, attempt)| Tr::Beacon {
                        session,
                        step: cur,
                        attempt,
                        rssi: -50,
                        kind: BeaconKind::Genuine,
                    })
                    .boxed(),
            ));
        }
        let conns: Vec<u64> = s.challenges.keys().copied().collect();
        if !conns.is_empty() {
            arms.push((
                12,
                (prop::sample::select(conns), resp_kind, offset)
                    .prop_map(|(conn, kind, phone_offset_s)| Tr::Respond {
                        conn,
                        kind,
                        phone_offset_s,
                    })
                    .boxed(),
            ));
        }
        Union::new_weighted(arms).boxed()
    }

    fn apply(mut s: Model, t: &Tr) -> Model {
        s.notices.clear();
        s.expect = match *t {
            Tr::Advance(ms) => {
                s.now += ms;
                Verdict::Nothing
            }
            Tr::Back(ms) => {
                s.now = s.now.saturating_sub(ms);
                Verdict::Nothing
            }
            Tr::Install(i) => Verdict::Grant(s.install(i)),
            Tr::Revoke(i) => Verdict::Revocation(s.revoke(i)),
            Tr::Beacon {
                session,
                step,
                attempt,
                rssi,
                kind,
            } => Verdict::Beacon(s.beacon(session, step, attempt, rssi, kind)),
            Tr::Burst {
                session,
                step,
                first,
                count,
            } => Verdict::Burst(
                (first..first + count)
                    .map(|a| s.beacon(session, step, a, -50, BeaconKind::Genuine))
                    .collect(),
            ),
            Tr::Select {
                conn,
                session,
                step,
                attempt,
            } => Verdict::Select(s.select(conn, session, step, attempt)),
            Tr::Respond {
                conn,
                kind,
                phone_offset_s,
            } => Verdict::Response(s.respond(conn, kind, phone_offset_s)),
            Tr::Disconnect(conn) => {
                s.challenges.remove(&conn);
                Verdict::Nothing
            }
            Tr::Timeout => {
                s.tick();
                s.purge();
                Verdict::Nothing
            }
            Tr::Handshake {
                session,
                attempt,
                conn,
                kind,
                phone_offset_s,
            } => {
                s.tick();
                let step = step_of(s.eff);
                let mut seq = vec![];
                let b = s.beacon(session, step, attempt, -50, BeaconKind::Genuine);
                seq.push(Verdict::Beacon(b));
                if b.is_ok() {
                    let sel = s.select(conn, session, step, attempt);
                    seq.push(Verdict::Select(sel));
                    if sel.is_ok() {
                        seq.push(Verdict::Response(s.respond(conn, kind, phone_offset_s)));
                    }
                }
                Verdict::Seq(seq)
            }
        };
        s
    }
}

// ------------------------------------------------------------------ the real lock

/// The challenge last read on a connection: session, armed step, attempt, value.
type Read = (usize, u32, u16, [u8; 33]);

struct Sut {
    lock: Lock,
    rng: ChaCha20Rng,
    read: BTreeMap<u64, Read>,
    nonces: BTreeSet<[u8; 12]>,
}

fn flip_last<const L: usize>(mut b: [u8; L]) -> [u8; L] {
    b[L - 1] ^= 0x01;
    b
}

impl Sut {
    fn select(
        &mut self,
        now: UnixMillis,
        conn: u64,
        session: usize,
        step: u32,
        attempt: u16,
    ) -> Verdict {
        let f = fx();
        let sel = f.forges[session].select(Step(step), attempt);
        let r = self
            .lock
            .handle_select(now, ConnId(conn), &sel, &mut self.rng);
        if let Ok(ch) = &r {
            // LK-CHL-1: a fresh nonce, and a lock_mac the guest verifies (LK-GST-2)
            // over the armed step and attempt.
            assert!(self.nonces.insert(ch.nonce), "nonce reused");
            let fg = &f.forges[session];
            let keys = derive_session_keys(&fg.k_s, &LOCK_A, &fg.header.session_id);
            let ctx = MacContext {
                lock_id: LOCK_A,
                session_id: fg.header.session_id,
                nonce: ch.nonce,
                lock_time: ch.lock_time,
                step: Step(step),
                attempt,
            };
            assert_eq!(ch.lock_mac, crypto::lock_mac(&keys.chal, &ctx));
            self.read
                .insert(conn, (session, step, attempt, ch.to_bytes()));
        }
        Verdict::Select(r.map(|ch| (ch.session_id, ch.lock_time)))
    }

    fn respond(
        &mut self,
        m: &Model,
        now: UnixMillis,
        conn: u64,
        kind: RespKind,
        phone_offset_s: i64,
    ) -> Verdict {
        let f = fx();
        let payload = match self.read.get(&conn) {
            Some((i, step, attempt, value)) => {
                let step = if kind == RespKind::WrongStep {
                    step + 1
                } else {
                    *step
                };
                let r = f.forges[*i].response(
                    value,
                    Step(step),
                    *attempt,
                    m.phone_time(phone_offset_s),
                );
                if kind == RespKind::BadMac {
                    flip_last(r)
                } else {
                    r
                }
            }
            None => [0u8; 20],
        };
        let r = self.lock.handle_response(now, ConnId(conn), &payload);
        if let Ok(u) = &r {
            // Never an unlock unless a genuine response answered a fresh challenge
            // of a live, unrevoked session, within its unlock limit.
            let i = session_index(&u.session_id);
            assert_eq!(kind, RespKind::Genuine, "unlock from a forged response");
            assert!(
                m.installed[i] && !m.revoked.contains_key(&i) && m.now_s() < not_after(i),
                "unlock for a session that is not live: {u:?}"
            );
            assert!(
                u.max_unlocks == 0 || u.unlocks <= u.max_unlocks,
                "unlock beyond the limit: {u:?}"
            );
        }
        Verdict::Response(r)
    }
}

impl StateMachineTest for Sut {
    type SystemUnderTest = Self;
    type Reference = LockModel;

    fn init_test(m: &Model) -> Self {
        let mut sut = Sut {
            lock: Lock::new(fx().cfg.clone()).expect("lock config"),
            rng: ChaCha20Rng::seed_from_u64(5),
            read: BTreeMap::new(),
            nonces: BTreeSet::new(),
        };
        for i in (0..N).filter(|i| m.installed[*i]) {
            let r = sut
                .lock
                .handle_grant(UnixMillis(m.now), &fx().grants[i], &mut sut.rng);
            assert!(matches!(r, Ok(GrantOutcome::Installed { .. })), "{r:?}");
        }
        sut
    }

    fn apply(mut sut: Self, m: &Model, t: Tr) -> Self {
        let now = UnixMillis(m.now);
        let f = fx();
        let got = match t {
            Tr::Advance(_) | Tr::Back(_) => Verdict::Nothing,
            Tr::Install(i) => {
                Verdict::Grant(sut.lock.handle_grant(now, &f.grants[i], &mut sut.rng))
            }
            Tr::Revoke(i) => {
                Verdict::Revocation(sut.lock.handle_revocation(now, &f.revocations[i]))
            }
            Tr::Beacon {
                session,
                step,
                attempt,
                rssi,
                kind,
            } => {
                let mut b = f.forges[session].beacon(Step(step), attempt);
                if kind == BeaconKind::BadMac {
                    b = flip_last(b);
                }
                let company = if kind == BeaconKind::Foreign {
                    0x004C
                } else {
                    COMPANY
                };
                Verdict::Beacon(sut.lock.handle_beacon(now, company, &b, rssi))
            }
            Tr::Burst {
                session,
                step,
                first,
                count,
            } => Verdict::Burst(
                (first..first + count)
                    .map(|a| {
                        let b = f.forges[session].beacon(Step(step), a);
                        sut.lock.handle_beacon(now, COMPANY, &b, -50)
                    })
                    .collect(),
            ),
            Tr::Select {
                conn,
                session,
                step,
                attempt,
            } => sut.select(now, conn, session, step, attempt),
            Tr::Respond {
                conn,
                kind,
                phone_offset_s,
            } => sut.respond(m, now, conn, kind, phone_offset_s),
            Tr::Disconnect(conn) => {
                sut.lock.handle_disconnect(ConnId(conn));
                sut.read.remove(&conn);
                Verdict::Nothing
            }
            Tr::Timeout => {
                sut.lock.handle_timeout(now);
                Verdict::Nothing
            }
            Tr::Handshake {
                session,
                attempt,
                conn,
                kind,
                phone_offset_s,
            } => {
                let step = step_of(m.eff);
                let b = f.forges[session].beacon(Step(step), attempt);
                let mut seq = vec![];
                let r = sut.lock.handle_beacon(now, COMPANY, &b, -50);
                seq.push(Verdict::Beacon(r));
                if r.is_ok() {
                    let sel = sut.select(now, conn, session, step, attempt);
                    let ok = matches!(sel, Verdict::Select(Ok(_)));
                    seq.push(sel);
                    if ok {
                        seq.push(sut.respond(m, now, conn, kind, phone_offset_s));
                    }
                }
                Verdict::Seq(seq)
            }
        };
        assert_eq!(
            got, m.expect,
            "the lock (left) and the model (right) disagree"
        );
        assert_eq!(
            got, m.expect,
            "the lock (left) and the model (right) disagree"
        );
        let notices: Vec<LockNotice> = std::iter::from_fn(|| sut.lock.poll_notice()).collect();
        assert_eq!(notices, m.notices, "notices: lock (left), model (right)");
        let mut seen = SEEN.lock().expect("not poisoned");
        for n in &notices {
            let label = match n {
                LockNotice::LockoutStarted { .. } => "notice lockout_started",
                LockNotice::LockoutEnded { .. } => "notice lockout_ended",
            };
            *seen.entry(label.to_string()).or_default() += 1;
        }
        drop(seen);
        let mut seen = SEEN.lock().expect("not poisoned");
        for l in labels(&got) {
            *seen.entry(l).or_default() += 1;
        }
        drop(seen);
        sut
    }

    fn check_invariants(sut: &Self, m: &Model) {
        let st = sut.lock.stats();
        assert_eq!(st, m.stats(), "table sizes: lock (left), model (right)");
        assert!(st.sessions <= MAX_SESSIONS && st.pending <= MAX_PENDING);
        assert!(st.challenges <= MAX_CHALLENGES && st.replay <= REPLAY_CAP);
        assert!(st.revocations <= REVOCATION_CAP && st.tags <= 3 * MAX_SESSIONS);
        for i in 0..N {
            assert_eq!(sut.lock.has_session(&sid(i)), m.installed[i], "session {i}");
        }
        let poll = sut.lock.poll_timeout().map(|t| t.0);
        match (poll, m.deadline()) {
            (None, None) => {}
            (Some(p), Some(d)) => assert!(p <= d, "poll_timeout {p} later than {d}"),
            (p, d) => panic!("poll_timeout {p:?}, model deadline {d:?}"),
        }
    }
}

/// How often each verdict was seen, to show what a run covered.
static SEEN: Mutex<BTreeMap<String, usize>> = Mutex::new(BTreeMap::new());

fn labels(v: &Verdict) -> Vec<String> {
    fn beacon(r: &Result<BeaconOutcome, Reason>) -> String {
        let r = r.map(|o| match o {
            BeaconOutcome::Armed { .. } => "armed",
            BeaconOutcome::AlreadyPending => "already_pending",
        });
        format!("beacon {}", r.unwrap_or_else(Reason::name))
    }
    let (input, r) = match v {
        Verdict::Nothing => return vec![],
        Verdict::Seq(vs) => return vs.iter().flat_map(labels).collect(),
        Verdict::Beacon(r) => return vec![beacon(r)],
        Verdict::Burst(rs) => return rs.iter().map(beacon).collect(),
        Verdict::Select(r) => ("select", r.map(|_| "challenge")),
        Verdict::Response(r) => ("response", r.map(|_| "UNLOCK")),
        Verdict::Grant(r) => (
            "grant",
            r.map(|o| match o {
                GrantOutcome::Installed { .. } => "installed",
                GrantOutcome::AlreadyInstalled => "already_installed",
            }),
        ),
        Verdict::Revocation(r) => ("revocation", r.map(|_| "applied")),
    };
    vec![format!("{input} {}", r.unwrap_or_else(Reason::name))]
}

#[test]
fn lock_follows_the_model() {
    // PROPTEST_CASES=5000 for a longer soak.
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let config = ProptestConfig {
        cases,
        max_shrink_iters: 4096,
        // No regression files in the tree: a failure prints its shrunk sequence, and
        // PROPTEST_RNG_SEED replays a run.
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    let mut runner = TestRunner::new(config.clone());
    let result = runner.run(
        &LockModel::sequential_strategy(1..40),
        |(init, trs, seen)| {
            Sut::test_sequential(config.clone(), init, trs, seen);
            Ok(())
        },
    );
    if let Err(e) = result {
        panic!("{e}");
    }
    let seen = SEEN.lock().expect("not poisoned");
    eprintln!("verdicts over {} cases:", config.cases);
    for (k, n) in seen.iter() {
        eprintln!("  {k:<40} {n}");
    }
    // The generator reaches the end of the protocol, not only its early rejections.
    for verdict in [
        "response UNLOCK",
        "notice lockout_started",
        "notice lockout_ended",
        "beacon locked_out",
        "beacon unlock_limit_reached",
        "beacon session_revoked",
    ] {
        assert!(seen.contains_key(verdict), "no {verdict} in {seen:?}");
    }
}
