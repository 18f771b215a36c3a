//! The issuer's state machine driven by an `arbitrary` sequence of timed inputs.
//!
//! The driver plays four guests (enrolled, enrolled for two locks, revoked, unknown) who seal
//! requests with their own or another's key, for known and unknown locks, with timestamps
//! around the issuer's clock and request ids from a small set (so replays happen), replays
//! earlier requests byte for byte, revokes grants and guests, re-enrolls, and sends lock
//! events signed by the right or a wrong key. A model (enrollments, the request-id cache,
//! live grants, the clamped clock) predicts every verdict, and after every step the driver
//! asserts:
//!
//! * a grant is issued only to an enrolled, unrevoked guest whose seal opens, for a known
//!   lock it may open, within its access window (a `StaticAccess` rule drawn by the setup)
//!   and the rate limits of the guest and the lock, within the request window, never for a
//!   replayed request (the same bytes, or the same request id while it is remembered)
//!   (LK-ISS-1..12);
//! * the grant is what was asked: both halves name the same ids, the LockGrant's signature
//!   verifies, the GuestGrant opens under the guest's key, validity is min(requested, max)
//!   capped at the access window's end, `max_unlocks` is the rule's;
//! * revocations only of live grants; lock messages (events and status reports) only with
//!   the right lock's signature, on its topic, inside the event window, once (LK-EVT-1..4);
//! * the request cache, the live-grant table, the lock message ids and the rate buckets
//!   stay within their caps and equal the model;
//! * no panic, whatever the clock does.
//!
//! RSA private-key operations are rare per input: at most [`RSA_BUDGET`] issues and
//! revocations.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use arbitrary::{Arbitrary, Unstructured};
use latchkey::crypto::rsa::{
    DS_LOCK_EVENT, DS_LOCK_GRANT, DS_LOCK_STATUS, DS_REVOCATION, RsaPrivateKey,
};
use latchkey::crypto::{EnrollmentKey, open_guest_grant, seal_request};
use latchkey::frame::{
    EventKind, GRANT_REQUEST_LEN, GrantRequestHeader, GuestGrantView, LockEvent, LockGrantView,
    LockStatus, RevocationView, StatusCounter, StatusFlags, append_signature,
};
use latchkey::issuer::{AccessRule, IssuerConfig, LockReport, StaticAccess};
use latchkey::{EventId, GrantId, GuestId, Issuer, LockId, Reason, RequestId, SessionId};

use crate::common::{
    Delta, Enc, LOCK_A, LOCK_B, LOCK_C, MAX_ACTIONS, Mutation, T0_MS, T0_S, hex, keys, ms, rng,
};

/// Most RSA private-key operations (grants issued, revocations signed) per input.
pub const RSA_BUDGET: u32 = 3;
const CACHE: usize = 16;
/// `event_replay_capacity` in this target.
const EVENT_CACHE: usize = 16;
/// Units of a rate bucket per request (LK-ISS-11).
const UNITS: u64 = 3_600_000;
const LOCKS: [LockId; 3] = [LOCK_A, LOCK_B, LOCK_C];

/// The four guests: (id, enrollment key, allowed locks, enrolled at start, revoked at start).
fn guest(i: usize) -> (GuestId, [u8; 32], &'static [LockId], bool, bool) {
    match i % 4 {
        0 => (GuestId([0x11; 16]), [0x21; 32], &[LOCK_A], true, false),
        1 => (
            GuestId([0x12; 16]),
            [0x22; 32],
            &[LOCK_A, LOCK_B],
            true,
            false,
        ),
        2 => (GuestId([0x13; 16]), [0x23; 32], &[LOCK_A], true, true),
        _ => (GuestId([0x14; 16]), [0x24; 32], &[LOCK_A], false, false),
    }
}

/// A lock message signed once.
#[derive(Debug)]
pub struct PreparedMessage {
    /// The payload.
    pub bytes: Vec<u8>,
    /// The lock it names.
    pub lock: LockId,
    /// Its id (`event_id` or `status_id`).
    pub id: EventId,
    /// Its timestamp, ms.
    pub ts: u64,
    /// Signed by the lock it names, under the right domain separation.
    pub valid: bool,
}

/// Lock messages signed once: 0..=19 events of lock A one second apart from T0 (enough to
/// fill the per-lock id cache), 20 of lock B, 21 of lock A by the rogue key, 22 naming lock C
/// signed by lock A, 23 of lock A signed by lock B, 24 a LockStatus of lock A, 25 a
/// LockStatus of lock A signed by the rogue key, 26 an event of lock A an hour before T0,
/// 27 one an hour after.
pub fn messages() -> &'static Vec<PreparedMessage> {
    static E: OnceLock<Vec<PreparedMessage>> = OnceLock::new();
    E.get_or_init(|| {
        let k = keys();
        let mut specs: Vec<(LockId, &RsaPrivateKey, bool, u64)> = (0..20)
            .map(|i| (LOCK_A, &k.lock_a, true, T0_MS + 1_000 * i))
            .collect();
        specs.extend([
            (LOCK_B, &k.lock_b, true, T0_MS),
            (LOCK_A, &k.rogue, false, T0_MS),
            (LOCK_C, &k.lock_a, false, T0_MS),
            (LOCK_A, &k.lock_b, false, T0_MS),
        ]);
        let mut out: Vec<PreparedMessage> = specs
            .iter()
            .enumerate()
            .map(|(i, (lock, key, valid, ts))| {
                let ev = LockEvent {
                    lock_id: *lock,
                    event_id: EventId([0x30 + i as u8; 16]),
                    timestamp_ms: *ts,
                    kind: EventKind::from_u8(1 + (i % 6) as u8).unwrap_or(EventKind::Unlock),
                    reason: 0,
                    grant_id: GrantId([0x31; 16]),
                    session_id: SessionId([0x32; 8]),
                };
                let mut bytes = Vec::new();
                ev.encode_unsigned(&mut bytes);
                let sig = key.sign(&mut rng(2000 + i as u64), DS_LOCK_EVENT, &bytes);
                append_signature(&mut bytes, &sig).expect("signature length");
                PreparedMessage {
                    bytes,
                    lock: *lock,
                    id: ev.event_id,
                    ts: *ts,
                    valid: *valid,
                }
            })
            .collect();
        for (i, key) in [&k.lock_a, &k.rogue].into_iter().enumerate() {
            let st = LockStatus {
                lock_id: LOCK_A,
                status_id: EventId([0x60 + i as u8; 16]),
                timestamp_ms: T0_MS + 500,
                uptime_s: 60,
                battery_pct: Some(50),
                flags: StatusFlags::MAINS_POWER,
                sessions: 1,
                revocations: 0,
                lockouts: 0,
                counters: vec![StatusCounter {
                    reason: Reason::UnknownTag.code(),
                    count: 9,
                }],
            };
            let mut bytes = Vec::new();
            st.encode_unsigned(&mut bytes).expect("valid status");
            let sig = key.sign(&mut rng(2100 + i as u64), DS_LOCK_STATUS, &bytes);
            append_signature(&mut bytes, &sig).expect("signature length");
            out.push(PreparedMessage {
                bytes,
                lock: LOCK_A,
                id: st.status_id,
                ts: st.timestamp_ms,
                valid: i == 0,
            });
        }
        for (i, ts) in [T0_MS - 3_600_000, T0_MS + 3_600_000].into_iter().enumerate() {
            let ev = LockEvent {
                lock_id: LOCK_A,
                event_id: EventId([0x70 + i as u8; 16]),
                timestamp_ms: ts,
                kind: EventKind::Unlock,
                reason: 0,
                grant_id: GrantId([0x31; 16]),
                session_id: SessionId([0x32; 8]),
            };
            let mut bytes = Vec::new();
            ev.encode_unsigned(&mut bytes);
            let sig = k.lock_a.sign(&mut rng(2200 + i as u64), DS_LOCK_EVENT, &bytes);
            append_signature(&mut bytes, &sig).expect("signature length");
            out.push(PreparedMessage {
                bytes,
                lock: LOCK_A,
                id: ev.event_id,
                ts,
                valid: true,
            });
        }
        out
    })
}

/// The issuer's tunables for one input.
#[derive(Arbitrary, Debug, Clone, PartialEq, Eq)]
pub struct Setup {
    /// Seed of the issuer's CSPRNG.
    pub seed: u64,
    /// `request_window_s` ∈ {5, 60}.
    pub window: u8,
    /// `max_grant_validity_s` ∈ {60, 3600}.
    pub validity: u8,
    /// `backdate_s` ∈ {1, 30}.
    pub backdate: u8,
    /// `max_live_grants` ∈ {1, 2, 1000}.
    pub live: u8,
    /// `rate_guest_burst` ∈ {1, 2, 10} (`x % 3`), `rate_guest_per_hour` ∈ {1, 3600}
    /// (bit 2), `rate_lock_burst` ∈ {2, 60} (bit 3), `rate_lock_per_hour` ∈ {60, 3600}
    /// (bit 4).
    pub rate: u8,
    /// The access rule (LK-ISS-12), `x % 4`: none; guest 0 at A within T0 ± 100 s with 2
    /// unlocks; guest 1 at B from T0 + 300 s; guest 0 at A until T0.
    pub policy: u8,
    /// `event_window_s` ∈ {60, 3600}.
    pub events: u8,
}

impl Setup {
    fn rule(&self) -> Option<(usize, LockId, AccessRule)> {
        match self.policy % 4 {
            1 => Some((
                0,
                LOCK_A,
                AccessRule {
                    valid_from: Some(T0_S - 100),
                    valid_until: Some(T0_S + 100),
                    max_unlocks: Some(2),
                },
            )),
            2 => Some((
                1,
                LOCK_B,
                AccessRule {
                    valid_from: Some(T0_S + 300),
                    valid_until: None,
                    max_unlocks: None,
                },
            )),
            3 => Some((
                0,
                LOCK_A,
                AccessRule {
                    valid_from: None,
                    valid_until: Some(T0_S),
                    max_unlocks: Some(1),
                },
            )),
            _ => None,
        }
    }
}

/// One input to the issuer.
#[derive(Arbitrary, Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// The driver's clock moves (possibly backwards).
    Advance(Delta),
    /// A request sealed by guest `guest % 4`.
    Request {
        /// Which guest names itself in the frame.
        guest: u8,
        /// Published on another guest's topic (LK-ISS-1).
        other_topic: bool,
        /// Sealed under another guest's key (LK-ISS-3).
        other_key: bool,
        /// Lock `x % 3` (C is unknown).
        lock: u8,
        /// Request id `[x % 8; 16]`.
        rid: u8,
        /// Timestamp, seconds from the issuer's clock.
        ts: i16,
        /// Requested validity, seconds.
        validity: u32,
        /// Change before delivery.
        mutation: Mutation,
    },
    /// An earlier request again, byte for byte, on its topic.
    Replay(u8),
    /// `revoke_grant` of issued grant `x % n` (or an unknown one).
    Revoke(u8),
    /// `revoke_guest`.
    RevokeGuest(u8),
    /// `add_guest` again (re-enrolls: clears the revocation).
    Enroll(u8),
    /// `handle_lock_message` of prepared message `which % n` on lock `topic % 3`'s topic.
    Event {
        /// Which event.
        which: u8,
        /// Topic lock.
        topic: u8,
        /// Change before delivery.
        mutation: Mutation,
    },
    /// `handle_timeout(now)`.
    Timeout,
    /// The clock jumps to `poll_timeout()` and `handle_timeout` runs there.
    TimeoutAtPoll,
}

impl Action {
    const COUNT: u32 = 9;

    /// Encodes for a seed.
    pub fn seed(&self, e: &mut Enc) {
        match self {
            Action::Advance(d) => {
                e.tag(0, Self::COUNT);
                d.seed(e);
            }
            Action::Request {
                guest,
                other_topic,
                other_key,
                lock,
                rid,
                ts,
                validity,
                mutation,
            } => {
                e.tag(1, Self::COUNT);
                e.u8(*guest);
                e.bool(*other_topic);
                e.bool(*other_key);
                e.u8(*lock);
                e.u8(*rid);
                e.i16(*ts);
                e.u32(*validity);
                mutation.seed(e);
            }
            Action::Replay(x) => {
                e.tag(2, Self::COUNT);
                e.u8(*x);
            }
            Action::Revoke(x) => {
                e.tag(3, Self::COUNT);
                e.u8(*x);
            }
            Action::RevokeGuest(x) => {
                e.tag(4, Self::COUNT);
                e.u8(*x);
            }
            Action::Enroll(x) => {
                e.tag(5, Self::COUNT);
                e.u8(*x);
            }
            Action::Event {
                which,
                topic,
                mutation,
            } => {
                e.tag(6, Self::COUNT);
                e.u8(*which);
                e.u8(*topic);
                mutation.seed(e);
            }
            Action::Timeout => e.tag(7, Self::COUNT),
            Action::TimeoutAtPoll => e.tag(8, Self::COUNT),
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
    for b in [
        setup.window,
        setup.validity,
        setup.backdate,
        setup.live,
        setup.rate,
        setup.policy,
        setup.events,
    ] {
        e.u8(b);
    }
    for a in actions {
        a.seed(&mut e);
    }
    e.0
}

/// What one input reached.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Grants issued.
    pub granted: usize,
    /// Revocations issued.
    pub revoked: usize,
    /// Lock messages accepted.
    pub events: usize,
    /// Lock messages refused as stale, future or replayed.
    pub old_events: usize,
    /// Requests refused.
    pub refused: usize,
    /// Requests refused by the rate limit.
    pub rate_limited: usize,
    /// Requests refused by the access policy.
    pub policy_refused: usize,
}

/// A request the driver sent: what it was made of, and its bytes.
#[derive(Debug, Clone)]
struct Sent {
    frame_guest: usize,
    topic: GuestId,
    key: [u8; 32],
    lock: LockId,
    rid: RequestId,
    ts: u64,
    validity: u32,
    built: Vec<u8>,
    payload: Vec<u8>,
}

/// A rate bucket as LK-ISS-11 defines it.
#[derive(Debug, Clone, Copy)]
struct BucketM {
    level: u64,
    at: u64,
}

#[derive(Debug, Clone, Copy)]
struct Rate {
    burst: u64,
    per_hour: u64,
}

impl Rate {
    fn level(&self, b: Option<&BucketM>, now: u64) -> u64 {
        let cap = self.burst * UNITS;
        b.map_or(cap, |b| {
            b.level
                .saturating_add(now.saturating_sub(b.at).saturating_mul(self.per_hour))
                .min(cap)
        })
    }
}

/// A lock's message ids (LK-EVT-4).
#[derive(Debug, Clone, Default)]
struct SeenM {
    ids: Vec<(EventId, u64)>,
    floor: Option<u64>,
}

#[derive(Debug, Clone, Copy)]
struct LiveM {
    grant_id: GrantId,
    lock: LockId,
    session_id: SessionId,
    not_after: u64,
}

struct Driver {
    issuer: Issuer,
    cfg: IssuerConfig,
    rng: rand_chacha::ChaCha20Rng,
    now: u64,
    clock: u64,
    enrolled: [bool; 4],
    revoked: [bool; 4],
    /// The request-id cache: (guest, request, forget after this second).
    seen: Vec<(GuestId, RequestId, u64)>,
    live: Vec<LiveM>,
    issued: Vec<GrantId>,
    sent: Vec<Sent>,
    /// Every request granted: (payload, guest, request id, timestamp).
    granted: Vec<(Vec<u8>, GuestId, RequestId, u64)>,
    policy: StaticAccess,
    rule: Option<(usize, LockId, AccessRule)>,
    guest_rate: Rate,
    lock_rate: Rate,
    guest_buckets: Vec<(GuestId, BucketM)>,
    lock_buckets: Vec<(LockId, BucketM)>,
    /// Per lock: message ids in the event window and the floor.
    seen_msgs: Vec<(LockId, SeenM)>,
    budget: u32,
    summary: Summary,
}

impl Driver {
    fn new(s: &Setup) -> Self {
        let k = keys();
        let mut cfg = IssuerConfig::new(k.issuer.clone());
        cfg.request_window_s = [5, 60][usize::from(s.window % 2)];
        cfg.request_cache_capacity = CACHE;
        cfg.max_grant_validity_s = [60, 3_600][usize::from(s.validity % 2)];
        cfg.backdate_s = [1, 30][usize::from(s.backdate % 2)];
        cfg.max_live_grants = [1, 2, 1_000][usize::from(s.live % 3)];
        cfg.rate_guest_burst = [1, 2, 10][usize::from(s.rate % 3)];
        cfg.rate_guest_per_hour = [1, 3_600][usize::from((s.rate >> 2) % 2)];
        cfg.rate_lock_burst = [2, 60][usize::from((s.rate >> 3) % 2)];
        cfg.rate_lock_per_hour = [60, 3_600][usize::from((s.rate >> 4) % 2)];
        cfg.event_window_s = [60, 3_600][usize::from(s.events % 2)];
        cfg.event_replay_capacity = EVENT_CACHE;
        let mut issuer = Issuer::new(cfg.clone()).expect("valid config");
        let rule = s.rule();
        let mut policy = StaticAccess::new();
        if let Some((g, lock, r)) = rule {
            policy.set(guest(g).0, lock, r);
        }
        issuer.add_lock(LOCK_A, k.lock_a.public_key());
        issuer.add_lock(LOCK_B, k.lock_b.public_key());
        let mut enrolled = [false; 4];
        let mut revoked = [false; 4];
        for i in 0..4 {
            let (id, key, allowed, enroll, revoke) = guest(i);
            if enroll {
                issuer.add_guest(
                    id,
                    EnrollmentKey::from_bytes(key),
                    allowed.iter().copied().collect::<BTreeSet<_>>(),
                );
                enrolled[i] = true;
            }
            if revoke {
                revoked[i] = issuer.revoke_guest(&id);
            }
        }
        Self {
            issuer,
            rng: rng(s.seed),
            now: T0_MS,
            clock: 0,
            enrolled,
            revoked,
            seen: Vec::new(),
            live: Vec::new(),
            issued: Vec::new(),
            sent: Vec::new(),
            granted: Vec::new(),
            policy,
            rule,
            guest_rate: Rate {
                burst: u64::from(cfg.rate_guest_burst),
                per_hour: u64::from(cfg.rate_guest_per_hour),
            },
            lock_rate: Rate {
                burst: u64::from(cfg.rate_lock_burst),
                per_hour: u64::from(cfg.rate_lock_per_hour),
            },
            guest_buckets: Vec::new(),
            lock_buckets: Vec::new(),
            seen_msgs: Vec::new(),
            budget: RSA_BUDGET,
            summary: Summary::default(),
            cfg,
        }
    }

    /// The access rule of guest `g` at `lock`, if the setup drew one.
    fn rule_of(&self, g: usize, lock: LockId) -> Option<AccessRule> {
        self.rule
            .filter(|(rg, rl, _)| *rg == g && *rl == lock)
            .map(|(_, _, r)| r)
    }

    fn guest_bucket(&self, id: GuestId) -> Option<&BucketM> {
        self.guest_buckets.iter().find(|(g, _)| *g == id).map(|(_, b)| b)
    }

    fn lock_bucket(&self, id: LockId) -> Option<&BucketM> {
        self.lock_buckets.iter().find(|(l, _)| *l == id).map(|(_, b)| b)
    }

    /// Takes one request from both buckets (at the issuer's clock).
    fn take(&mut self, g: GuestId, l: LockId) {
        let now = self.clock;
        let gl = self.guest_rate.level(self.guest_bucket(g), now) - UNITS;
        let ll = self.lock_rate.level(self.lock_bucket(l), now) - UNITS;
        self.guest_buckets.retain(|(x, _)| *x != g);
        self.guest_buckets.push((g, BucketM { level: gl, at: now }));
        self.lock_buckets.retain(|(x, _)| *x != l);
        self.lock_buckets.push((l, BucketM { level: ll, at: now }));
    }

    /// `handle_timeout`: full buckets and lock message ids out of the window are forgotten.
    fn purge_timeout(&mut self) {
        let now = self.clock;
        let (gr, lr) = (self.guest_rate, self.lock_rate);
        self.guest_buckets
            .retain(|(_, b)| gr.level(Some(b), now) < gr.burst * UNITS);
        self.lock_buckets
            .retain(|(_, b)| lr.level(Some(b), now) < lr.burst * UNITS);
        let (w, now_s) = (self.cfg.event_window_s, now / 1000);
        for (_, m) in &mut self.seen_msgs {
            m.ids.retain(|(_, ts)| (ts / 1000).saturating_add(w) >= now_s);
        }
        self.seen_msgs
            .retain(|(_, m)| !m.ids.is_empty() || m.floor.is_some());
    }

    fn fail(&self, what: &str) -> ! {
        panic!(
            "issuer invariant violated: {what}\n  driver now={} issuer clock={} caches={:?} model seen={} live={}",
            self.now,
            self.clock,
            self.issuer.cache_sizes(),
            self.seen.len(),
            self.live.len()
        )
    }

    /// `handle_request`, `revoke_grant` and `handle_timeout` observe `now` and forget
    /// request ids whose window passed and grants that expired.
    fn tick(&mut self) -> u64 {
        self.clock = self.clock.max(self.now);
        let now_s = self.clock / 1000;
        self.seen.retain(|(_, _, t)| *t >= now_s);
        self.live.retain(|l| l.not_after > now_s);
        now_s
    }

    /// The model's verdict on a request (spec §7.1 order), before the issuer sees it.
    fn predict(&self, s: &Sent, now_s: u64) -> Result<(), Reason> {
        if s.payload != s.built {
            return Err(Reason::Truncated); // any refusal: a mutated request never passes
        }
        let (id, key, allowed, _, _) = guest(s.frame_guest);
        let g = s.frame_guest % 4;
        if id != s.topic {
            return Err(Reason::GuestMismatch);
        }
        if !self.enrolled[g] {
            return Err(Reason::UnknownGuest);
        }
        if self.revoked[g] {
            return Err(Reason::GuestRevoked);
        }
        if s.key != key {
            return Err(Reason::BadSeal);
        }
        let w = self.cfg.request_window_s;
        if s.ts.saturating_add(w) < now_s {
            return Err(Reason::StaleRequest);
        }
        if s.ts > now_s.saturating_add(w) {
            return Err(Reason::FutureRequest);
        }
        let seen = || self.seen.iter().filter(|(_, _, t)| *t >= now_s);
        if seen().any(|(gg, r, _)| *gg == id && *r == s.rid) {
            return Err(Reason::RequestReplay);
        }
        if seen().count() >= CACHE {
            return Err(Reason::RequestCacheFull);
        }
        if s.lock == LOCK_C {
            return Err(Reason::UnknownLock);
        }
        if !allowed.contains(&s.lock) {
            return Err(Reason::NotAuthorized);
        }
        if let Some(r) = self.rule_of(g, s.lock)
            && (r.valid_from.is_some_and(|f| now_s < f) || r.valid_until.is_some_and(|u| now_s >= u))
        {
            return Err(Reason::OutsideAccessWindow);
        }
        let now = self.clock.max(self.now);
        if self.guest_rate.level(self.guest_bucket(id), now) < UNITS
            || self.lock_rate.level(self.lock_bucket(s.lock), now) < UNITS
        {
            return Err(Reason::RateLimited);
        }
        if s.validity == 0 {
            return Err(Reason::InvalidValidity);
        }
        if self.live.iter().filter(|l| l.not_after > now_s).count() >= self.cfg.max_live_grants {
            return Err(Reason::GrantCapReached);
        }
        Ok(())
    }

    fn apply(&mut self, a: &Action) {
        match a {
            Action::Advance(d) => self.now = d.apply(self.now),
            Action::Request {
                guest: g,
                other_topic,
                other_key,
                lock,
                rid,
                ts,
                validity,
                mutation,
            } => {
                let g = usize::from(*g % 4);
                let now_s = self.clock.max(self.now) / 1000;
                let header = GrantRequestHeader {
                    guest_id: guest(g).0,
                    lock_id: LOCKS[usize::from(lock % 3)],
                    request_id: RequestId([rid % 8; 16]),
                    timestamp: now_s.saturating_add_signed(i64::from(*ts)),
                };
                let key = guest(g + usize::from(*other_key)).1;
                let nonce = [rid.wrapping_mul(7); 12];
                let sealed =
                    seal_request(&EnrollmentKey::from_bytes(key), &header, *validity, &nonce);
                let mut built = [0u8; GRANT_REQUEST_LEN];
                header
                    .encode(&nonce, &sealed, &mut built)
                    .expect("buffer fits");
                let s = Sent {
                    frame_guest: g,
                    topic: guest(g + usize::from(*other_topic)).0,
                    key,
                    lock: header.lock_id,
                    rid: header.request_id,
                    ts: header.timestamp,
                    validity: *validity,
                    built: built.to_vec(),
                    payload: mutation.apply(&built),
                };
                self.request(s);
            }
            Action::Replay(x) => {
                if !self.sent.is_empty() {
                    let s = self.sent[usize::from(*x) % self.sent.len()].clone();
                    self.request(s);
                }
            }
            Action::Revoke(x) => {
                let grant = if self.issued.is_empty() || x & 0x80 != 0 {
                    GrantId([*x; 16])
                } else {
                    self.issued[usize::from(*x) % self.issued.len()]
                };
                self.revoke(grant);
            }
            Action::RevokeGuest(x) => {
                let g = usize::from(x % 4);
                let known = self.issuer.revoke_guest(&guest(g).0);
                if known != self.enrolled[g] {
                    self.fail("revoke_guest disagrees on who is enrolled");
                }
                if known {
                    self.revoked[g] = true;
                }
            }
            Action::Enroll(x) => {
                let g = usize::from(x % 4);
                let (id, key, allowed, _, _) = guest(g);
                self.issuer.add_guest(
                    id,
                    EnrollmentKey::from_bytes(key),
                    allowed.iter().copied().collect(),
                );
                self.enrolled[g] = true;
                self.revoked[g] = false;
            }
            Action::Event {
                which,
                topic,
                mutation,
            } => self.event(usize::from(*which), LOCKS[usize::from(topic % 3)], mutation),
            Action::Timeout => {
                self.tick();
                self.issuer.handle_timeout(ms(self.now));
                self.purge_timeout();
            }
            Action::TimeoutAtPoll => {
                if let Some(t) = self.issuer.poll_timeout() {
                    self.now = t.0;
                }
                self.tick();
                self.issuer.handle_timeout(ms(self.now));
                self.purge_timeout();
            }
        }
    }

    fn request(&mut self, s: Sent) {
        let now_s = self.clock.max(self.now) / 1000;
        let want = self.predict(&s, now_s);
        if want.is_ok() && self.budget == 0 {
            return; // would cost RSA private-key operations
        }
        self.tick();
        self.sent.push(s.clone());
        let got = self.issuer.handle_request_with(
            ms(self.now),
            s.topic,
            &s.payload,
            &mut self.policy,
            &mut self.rng,
        );
        match (&got, &want) {
            (Ok(_), Err(r)) => self.fail(&format!(
                "granted a request the model refuses ({r:?}): {}",
                hex(&s.payload)
            )),
            (Err(e), Ok(())) => self.fail(&format!(
                "refused a valid request with {e:?}: {}",
                hex(&s.payload)
            )),
            (Err(e), Err(r)) if s.payload == s.built && e != r => {
                self.fail(&format!("refused with {e:?}, model says {r:?}"))
            }
            _ => {}
        }
        let Ok(g) = got else {
            self.summary.refused += 1;
            match want {
                Err(Reason::RateLimited) => self.summary.rate_limited += 1,
                Err(Reason::OutsideAccessWindow) => self.summary.policy_refused += 1,
                _ => {}
            }
            return;
        };
        self.budget -= 1;
        self.summary.granted += 1;
        // The security invariants, stated on their own.
        let gi = s.frame_guest % 4;
        let (gid, gkey, _, _, _) = guest(gi);
        if !self.enrolled[gi] || self.revoked[gi] {
            self.fail("granted to a guest that is unknown or revoked (LK-ISS-2)");
        }
        let w = self.cfg.request_window_s;
        if self.granted.iter().any(|(p, g2, r, ts)| {
            *p == s.payload || (*g2 == gid && *r == s.rid && ts.saturating_add(w) >= now_s)
        }) {
            self.fail("granted a replayed request (LK-ISS-5)");
        }
        self.granted.push((s.payload.clone(), gid, s.rid, s.ts));
        // The grant is what was asked, capped by the access rule (LK-ISS-12).
        let rule = self.rule_of(gi, s.lock);
        let validity = u64::from(s.validity).min(self.cfg.max_grant_validity_s);
        let (nb, na) = (
            now_s.saturating_sub(self.cfg.backdate_s),
            now_s
                .saturating_add(validity)
                .min(rule.and_then(|r| r.valid_until).unwrap_or(u64::MAX)),
        );
        let max_unlocks = rule.and_then(|r| r.max_unlocks).unwrap_or(0);
        if g.max_unlocks != max_unlocks {
            self.fail("grant's max_unlocks is not the rule's (LK-ISS-12)");
        }
        if (g.lock_id, g.guest_id, g.not_before, g.not_after) != (s.lock, gid, nb, na) {
            self.fail("grant ids or validity differ from the request (LK-ISS-9)");
        }
        if self.live.iter().any(|l| {
            l.grant_id == g.grant_id || (l.lock == g.lock_id && l.session_id == g.session_id)
        }) {
            self.fail("grant or session id of a live grant reused");
        }
        let lg = LockGrantView::parse(&g.lock_grant)
            .unwrap_or_else(|r| self.fail(&format!("LockGrant does not parse: {r:?}")));
        let h = lg.header;
        if (
            h.lock_id,
            h.grant_id,
            h.session_id,
            h.guest_id,
            h.issued_at,
            h.not_before,
            h.not_after,
        ) != (s.lock, g.grant_id, g.session_id, gid, now_s, nb, na)
            || h.max_unlocks != max_unlocks
        {
            self.fail("LockGrant header differs from the grant");
        }
        if !keys()
            .issuer_pub()
            .verify(DS_LOCK_GRANT, lg.signed, lg.signature)
        {
            self.fail("LockGrant signature does not verify");
        }
        let gg = GuestGrantView::parse(&g.guest_grant)
            .unwrap_or_else(|r| self.fail(&format!("GuestGrant does not parse: {r:?}")));
        let gh = gg.header;
        if (
            gh.guest_id,
            gh.lock_id,
            gh.request_id,
            gh.grant_id,
            gh.session_id,
        ) != (gid, s.lock, s.rid, g.grant_id, g.session_id)
            || (gh.issued_at, gh.not_before, gh.not_after) != (now_s, nb, na)
        {
            self.fail("GuestGrant header differs from the grant");
        }
        if open_guest_grant(&EnrollmentKey::from_bytes(gkey), &gg).is_err() {
            self.fail("GuestGrant does not open under the guest's key");
        }
        self.seen.push((gid, s.rid, s.ts.saturating_add(w)));
        self.take(gid, s.lock);
        self.live.push(LiveM {
            grant_id: g.grant_id,
            lock: g.lock_id,
            session_id: g.session_id,
            not_after: na,
        });
        self.issued.push(g.grant_id);
    }

    fn revoke(&mut self, grant: GrantId) {
        let now_s = self.clock.max(self.now) / 1000;
        let live = self
            .live
            .iter()
            .find(|l| l.grant_id == grant && l.not_after > now_s)
            .copied();
        if live.is_some() && self.budget == 0 {
            return;
        }
        self.tick();
        let got = self.issuer.revoke_grant(ms(self.now), grant, &mut self.rng);
        match (got, live) {
            (None, None) => {}
            (Some(_), None) => self.fail("revoked a grant that is not live"),
            (None, Some(_)) => self.fail("refused to revoke a live grant"),
            (Some(r), Some(l)) => {
                self.budget -= 1;
                self.summary.revoked += 1;
                let v = RevocationView::parse(&r.payload)
                    .unwrap_or_else(|e| self.fail(&format!("revocation does not parse: {e:?}")));
                let f = v.fields;
                if (r.lock_id, r.grant_id) != (l.lock, grant)
                    || (
                        f.lock_id,
                        f.grant_id,
                        f.session_id,
                        f.issued_at,
                        f.expires_at,
                    ) != (l.lock, grant, l.session_id, now_s, l.not_after)
                {
                    self.fail("revocation fields differ from the grant");
                }
                if !keys()
                    .issuer_pub()
                    .verify(DS_REVOCATION, v.signed, v.signature)
                {
                    self.fail("revocation signature does not verify");
                }
                self.live.retain(|x| x.grant_id != grant);
            }
        }
    }

    fn event(&mut self, which: usize, topic: LockId, m: &Mutation) {
        let all = messages();
        let msg = &all[which % all.len()];
        let payload = m.apply(&msg.bytes);
        // The issuer observes `now` (its request cache and grants are not purged here).
        self.clock = self.clock.max(self.now);
        let got = self
            .issuer
            .handle_lock_message(ms(self.now), topic, &payload);
        if payload != msg.bytes {
            if got.is_ok() {
                self.fail(&format!("accepted a mutated lock message {}", hex(&payload)));
            }
            return;
        }
        let want = self.predict_message(msg, topic);
        match (&got, &want) {
            (Ok(r), Ok(())) => {
                self.summary.events += 1;
                if (r.lock_id(), r.message_id(), r.timestamp_ms()) != (msg.lock, msg.id, msg.ts)
                {
                    self.fail("the accepted lock message is not the one sent");
                }
                if matches!(r, LockReport::Status(_)) != (which % all.len() >= 24 && which % all.len() <= 25) {
                    self.fail("a LockEvent reported as a status, or the reverse");
                }
            }
            (Err(e), Err(w)) if e == w => {
                if matches!(e, Reason::StaleEvent | Reason::FutureEvent | Reason::EventReplay) {
                    self.summary.old_events += 1;
                }
            }
            _ => self.fail(&format!(
                "handle_lock_message: {:?}, model says {want:?}",
                got.map(|r| r.message_id())
            )),
        }
    }

    /// The model's verdict on a lock message (§7.4), recording it when accepted.
    fn predict_message(&mut self, msg: &PreparedMessage, topic: LockId) -> Result<(), Reason> {
        if msg.lock != topic {
            return Err(Reason::WrongLock);
        }
        if topic == LOCK_C {
            return Err(Reason::UnknownLock);
        }
        if !msg.valid {
            return Err(Reason::BadEventSignature);
        }
        let (w, now_s) = (self.cfg.event_window_s, self.clock / 1000);
        let ts_s = msg.ts / 1000;
        if ts_s.saturating_add(w) < now_s {
            return Err(Reason::StaleEvent);
        }
        if ts_s > now_s.saturating_add(w) {
            return Err(Reason::FutureEvent);
        }
        let pos = match self.seen_msgs.iter().position(|(l, _)| *l == topic) {
            Some(p) => p,
            None => {
                self.seen_msgs.push((topic, SeenM::default()));
                self.seen_msgs.len() - 1
            }
        };
        let m = &mut self.seen_msgs[pos].1;
        m.ids.retain(|(_, ts)| (ts / 1000).saturating_add(w) >= now_s);
        if m.ids.iter().any(|(id, _)| *id == msg.id) || m.floor.is_some_and(|f| msg.ts <= f) {
            return Err(Reason::EventReplay);
        }
        while m.ids.len() >= EVENT_CACHE {
            let Some(min) = m.ids.iter().copied().min_by_key(|(id, ts)| (*ts, *id)) else {
                break;
            };
            m.ids.retain(|x| *x != min);
            m.floor = Some(m.floor.map_or(min.1, |f| f.max(min.1)));
        }
        m.ids.push((msg.id, msg.ts));
        Ok(())
    }

    fn check(&self) {
        let (seen, live) = self.issuer.cache_sizes();
        if seen > CACHE || live > self.cfg.max_live_grants {
            self.fail("a cache exceeds its cap (LK-ISS-8, LK-ISS-10)");
        }
        if (seen, live) != (self.seen.len(), self.live.len()) {
            self.fail("cache sizes differ from the model");
        }
        let (ids, buckets) = self.issuer.lock_state_sizes();
        let model_ids: usize = self.seen_msgs.iter().map(|(_, m)| m.ids.len()).sum();
        if ids > 2 * EVENT_CACHE || ids != model_ids {
            self.fail(&format!(
                "lock message ids: issuer {ids}, model {model_ids} (LK-EVT-4)"
            ));
        }
        if buckets != self.guest_buckets.len() + self.lock_buckets.len() {
            self.fail("rate buckets differ from the model (LK-ISS-11)");
        }
        let _ = self.issuer.poll_timeout();
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
        d.check();
    }
    d.summary
}
