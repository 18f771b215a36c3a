//! The lock's state machine driven by an `arbitrary` sequence of timed inputs.
//!
//! The driver holds prepared grants and revocations signed once with the fixed issuer key
//! (valid ones, and ones each check must refuse), and plays the guest with the session keys
//! it forged: beacons, Selects and responses are computed correctly unless the input asks
//! for a mutation. A model tracks what the lock was told (installed sessions and their
//! generation, accepted revocations, armed beacons, pending authentications, outstanding
//! challenges) and the lock's clamped clock. After every step it asserts:
//!
//! * `Unlock` only for the correctly computed response to the challenge outstanding on that
//!   connection, of a session installed before that challenge and neither revoked nor
//!   reinstalled since, unexpired, within the response budget and clock skew;
//! * an armed beacon is the correct beacon of an installed, valid session, in the step
//!   window, never armed before, heard above the RSSI threshold; a challenge answers a
//!   pending authentication within the connection window, with a correct lock MAC and the
//!   lock's clock;
//! * only authentic, valid, unrevoked grants install, and only authentic revocations apply;
//! * a session never unlocks more often than its grant's `max_unlocks`, each `Unlock`
//!   reports the count, and `unlock_limit_reached` comes only at the limit (LK-LIM-1/2);
//! * failed handshakes lock the guest out exactly as the model counts them (every session
//!   is one guest's): the notices are the model's, and while locked out nothing of the
//!   guest arms or unlocks, `locked_out` only then (LK-LCK-1..3);
//! * `session_revoked` for a beacon only if it is the correct beacon of a session revoked
//!   while installed, and `revoked_beacon_ids` names it (LK-REV-5);
//! * a LockStatus verifies under the lock's key and carries the core's counts;
//! * `stats()` stays within the configured caps (set small so they are reached);
//! * no panic, whatever the clock does (it goes backwards and to extremes).
//!
//! RSA private-key operations are rare per input: at most [`INSTALL_BUDGET`] unwraps.

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use arbitrary::{Arbitrary, Unstructured};
use latchkey::crypto::rsa::{
    DS_LOCK_GRANT, DS_LOCK_STATUS, DS_REVOCATION, RsaPrivateKey, RsaPublicKey,
};
use latchkey::crypto::{MacContext, SessionKey};
use latchkey::frame::{
    LockGrantHeader, LockStatusView, MessageType, ResponseView, Revocation, SelectView,
    StatusFlags, append_signature,
};
use latchkey::lock::{
    BeaconOutcome, ConnId, GrantOutcome, LockNotice, MessageOutcome, StatusInput,
};
use latchkey::{GrantId, Lock, LockConfig, Reason, RevocationId, SessionId, Step, UnixMillis};

use crate::common::{
    Delta, Enc, GUEST, LOCK_A, LOCK_B, MAX_ACTIONS, Material, Mutation, T0_MS, T0_S, hex, keys, ms,
    rng,
};

/// Most private-key unwraps (installs, or unwraps that fail) per input.
pub const INSTALL_BUDGET: u32 = 2;
/// Most LockStatus signatures per input.
pub const STATUS_BUDGET: u32 = 1;
/// The lock's `max_grant_validity_s` in this target.
const MAX_VALIDITY_S: u64 = 7_200;
const REPLAY_CAPACITY: usize = 16;
const REVOCATION_CAPACITY: usize = 16;
const COMPANY: u16 = 0xFFFF;

/// A LockGrant prepared once.
#[derive(Debug)]
pub struct PreparedGrant {
    /// Its header.
    pub header: LockGrantHeader,
    /// The session's keys as the guest would derive them.
    pub material: Material,
    /// The payload.
    pub bytes: Vec<u8>,
    /// Signed by the issuer, for lock A: it passes LK-GRT-1 and LK-GRT-2.
    pub authentic: bool,
    /// Wrapped to lock A's key under its own header: it passes LK-GRT-3.
    pub unwrappable: bool,
}

/// A Revocation prepared once.
#[derive(Debug)]
pub struct PreparedRevocation {
    /// Its fields.
    pub fields: Revocation,
    /// The payload.
    pub bytes: Vec<u8>,
    /// Signed by the issuer, for lock A.
    pub authentic: bool,
}

/// Everything signed once per process.
#[derive(Debug)]
pub struct Prepared {
    /// Grants: 0..=6 installable (3 not yet valid, 6 issued in the future, 4 and 5 collide
    /// with 0; 1 may unlock once, 2 twice), 7.. refused (wrong lock, rogue signature,
    /// validity, expired, unwrap).
    pub grants: Vec<PreparedGrant>,
    /// Revocations: 0..=6 of grants 0..=6 (issued T0 + 1), 7..=30 of unknown grants
    /// (issued T0 − 100 + 13 i), 31 of grant 0 issued T0 − 500, 32 for lock B, 33 signed by
    /// the rogue key, 34 of grant 1 already expired.
    pub revocations: Vec<PreparedRevocation>,
}

fn header(g: u8, s: u8, lock: latchkey::LockId, ia: i64, nb: i64, na: i64) -> LockGrantHeader {
    let at = |d: i64| T0_S.saturating_add_signed(d);
    LockGrantHeader {
        lock_id: lock,
        grant_id: GrantId([g; 16]),
        session_id: SessionId([s; 8]),
        guest_id: GUEST,
        issued_at: at(ia),
        not_before: at(nb),
        not_after: at(na),
        max_unlocks: 0,
    }
}

fn sign_grant(
    h: &LockGrantHeader,
    k_s: &SessionKey,
    to: &RsaPublicKey,
    label: &[u8],
    signer: &RsaPrivateKey,
    seed: u64,
) -> Vec<u8> {
    let mut r = rng(seed);
    let wrapped = to.wrap_session_key(&mut r, label, k_s).expect("wrap");
    let mut out = Vec::new();
    h.encode_unsigned(&wrapped, &mut out).expect("encode");
    let sig = signer.sign(&mut r, DS_LOCK_GRANT, &out);
    append_signature(&mut out, &sig).expect("signature length");
    out
}

fn sign_revocation(f: &Revocation, signer: &RsaPrivateKey, seed: u64) -> Vec<u8> {
    let mut out = Vec::new();
    f.encode_unsigned(&mut out);
    let sig = signer.sign(&mut rng(seed), DS_REVOCATION, &out);
    append_signature(&mut out, &sig).expect("signature length");
    out
}

/// The prepared grants and revocations (built at first use, ≈ 40 RSA signatures).
pub fn prepared() -> &'static Prepared {
    static P: OnceLock<Prepared> = OnceLock::new();
    P.get_or_init(|| {
        let k = keys();
        let (a_pub, b_pub) = (k.lock_a.public_key(), k.lock_b.public_key());
        // (header, signer is issuer, wrap to lock A, wrong label)
        let mut specs: Vec<(LockGrantHeader, bool, bool, bool)> = vec![
            (header(0x01, 0x01, LOCK_A, 0, -30, 3600), true, true, false),
            (header(0x02, 0x02, LOCK_A, -5, -30, 3600), true, true, false),
            (header(0x03, 0x03, LOCK_A, 0, -30, 95), true, true, false),
            (header(0x04, 0x04, LOCK_A, 0, 60, 3600), true, true, false),
            (header(0x01, 0x05, LOCK_A, 0, -30, 3600), true, true, false),
            (header(0x06, 0x01, LOCK_A, 0, -30, 3600), true, true, false),
            (
                header(0x07, 0x07, LOCK_A, 600, -30, 3600),
                true,
                true,
                false,
            ),
            (header(0x08, 0x08, LOCK_B, 0, -30, 3600), true, false, false),
            (header(0x09, 0x09, LOCK_A, 0, -30, 3600), false, true, false),
            (header(0x0A, 0x0A, LOCK_A, 0, -30, 7171), true, true, false),
            (
                header(0x0B, 0x0B, LOCK_A, -200, -100, -1),
                true,
                true,
                false,
            ),
            (header(0x0C, 0x0C, LOCK_A, 0, -30, 3600), true, false, false),
            (header(0x0D, 0x0D, LOCK_A, 0, -30, 3600), true, true, true),
            (header(0x0E, 0x0E, LOCK_A, 0, 100, 100), true, true, false),
        ];
        // Unlock limits (LK-LIM-1): grant 1 once, grant 2 twice.
        specs[1].0.max_unlocks = 1;
        specs[2].0.max_unlocks = 2;
        let grants = specs
            .into_iter()
            .enumerate()
            .map(|(i, (h, by_issuer, to_a, wrong_label))| {
                let k_s = SessionKey::from_bytes([0x40 + i as u8; 32]);
                let to = if to_a { &a_pub } else { &b_pub };
                let signer = if by_issuer { &k.issuer } else { &k.rogue };
                let label = if wrong_label {
                    header(0x01, 0x01, LOCK_A, 0, -30, 3600).to_bytes()
                } else {
                    h.to_bytes()
                };
                PreparedGrant {
                    bytes: sign_grant(&h, &k_s, to, &label, signer, 100 + i as u64),
                    material: Material::new(&k_s, h.lock_id, h.session_id),
                    authentic: by_issuer && h.lock_id == LOCK_A,
                    unwrappable: to_a && !wrong_label,
                    header: h,
                }
            })
            .collect::<Vec<_>>();
        let mut revs = Vec::new();
        let mut push = |fields: Revocation, by_issuer: bool| {
            let seed = 1000 + revs.len() as u64;
            let signer = if by_issuer { &k.issuer } else { &k.rogue };
            revs.push(PreparedRevocation {
                bytes: sign_revocation(&fields, signer, seed),
                authentic: by_issuer && fields.lock_id == LOCK_A,
                fields,
            });
        };
        for (i, g) in grants.iter().take(7).enumerate() {
            push(
                Revocation {
                    lock_id: LOCK_A,
                    revocation_id: RevocationId([0x70 + i as u8; 16]),
                    grant_id: g.header.grant_id,
                    session_id: g.header.session_id,
                    issued_at: T0_S + 1,
                    expires_at: g.header.not_after,
                },
                true,
            );
        }
        for i in 0..24u8 {
            push(
                Revocation {
                    lock_id: LOCK_A,
                    revocation_id: RevocationId([0x90 + i; 16]),
                    grant_id: GrantId([0x80 + i; 16]),
                    session_id: SessionId([0x80 + i; 8]),
                    issued_at: T0_S - 100 + 13 * u64::from(i),
                    expires_at: T0_S + 300 + 60 * u64::from(i),
                },
                true,
            );
        }
        // Grant 0 revoked by a revocation stamped before the grant was issued (an issuer
        // clock behind): evicting it lowers the floor below the grant.
        push(
            Revocation {
                lock_id: LOCK_A,
                revocation_id: RevocationId([0xE0; 16]),
                grant_id: grants[0].header.grant_id,
                session_id: grants[0].header.session_id,
                issued_at: T0_S - 500,
                expires_at: grants[0].header.not_after,
            },
            true,
        );
        // Refused: wrong lock, rogue signature.
        push(
            Revocation {
                lock_id: LOCK_B,
                revocation_id: RevocationId([0xE1; 16]),
                grant_id: grants[1].header.grant_id,
                session_id: grants[1].header.session_id,
                issued_at: T0_S,
                expires_at: T0_S + 3600,
            },
            true,
        );
        push(
            Revocation {
                lock_id: LOCK_A,
                revocation_id: RevocationId([0xE2; 16]),
                grant_id: grants[1].header.grant_id,
                session_id: grants[1].header.session_id,
                issued_at: T0_S,
                expires_at: T0_S + 3600,
            },
            false,
        );
        // Accepted but already expired: removes the session, is not remembered.
        push(
            Revocation {
                lock_id: LOCK_A,
                revocation_id: RevocationId([0xE3; 16]),
                grant_id: grants[1].header.grant_id,
                session_id: grants[1].header.session_id,
                issued_at: T0_S,
                expires_at: T0_S - 10,
            },
            true,
        );
        Prepared {
            grants,
            revocations: revs,
        }
    })
}

/// The lock's tunables for one input (small caps, so they are reached).
#[derive(Arbitrary, Debug, Clone, PartialEq, Eq)]
pub struct Setup {
    /// Seed of the lock's CSPRNG (nonces, RSA blinding).
    pub seed: u64,
    /// `max_sessions = 1 + x % 2`.
    pub max_sessions: u8,
    /// `max_pending = 1 + x % 3`.
    pub max_pending: u8,
    /// `max_challenges = 1 + x % 2`.
    pub max_challenges: u8,
    /// `response_budget_ms` ∈ {100, 2000, 10000}.
    pub budget: u8,
    /// `connection_window_ms` ∈ {1000, 10000}.
    pub window: u8,
    /// `max_clock_skew_s` ∈ {1, 30, 300}.
    pub skew: u8,
    /// `rssi_threshold_dbm` ∈ {−70, −127, 20}.
    pub rssi: u8,
    /// `lockout_threshold` ∈ {0, 1, 2, 5} (bits 0–1), `lockout_window_s` ∈ {10, 300}
    /// (bit 2), `lockout_duration_s` ∈ {10, 900} (bit 3).
    pub lockout: u8,
}

impl Setup {
    fn config(&self) -> LockConfig {
        let k = keys();
        let mut c = LockConfig::new(LOCK_A, k.lock_a.clone(), k.issuer_pub());
        c.company_id = COMPANY;
        c.max_sessions = 1 + usize::from(self.max_sessions % 2);
        c.max_pending = 1 + usize::from(self.max_pending % 3);
        c.max_challenges = 1 + usize::from(self.max_challenges % 2);
        c.response_budget_ms = [100, 2_000, 10_000][usize::from(self.budget % 3)];
        c.connection_window_ms = [1_000, 10_000][usize::from(self.window % 2)];
        c.max_clock_skew_s = [1, 30, 300][usize::from(self.skew % 3)];
        c.rssi_threshold_dbm = [-70, -127, 20][usize::from(self.rssi % 3)];
        c.max_grant_validity_s = MAX_VALIDITY_S;
        c.replay_capacity = REPLAY_CAPACITY;
        c.revocation_capacity = REVOCATION_CAPACITY;
        c.lockout_threshold = [0, 1, 2, 5][usize::from(self.lockout % 4)];
        c.lockout_window_s = [10, 300][usize::from((self.lockout >> 2) % 2)];
        c.lockout_duration_s = [10, 900][usize::from((self.lockout >> 3) % 2)];
        c
    }

    /// Encodes for a seed.
    pub fn seed(&self, e: &mut Enc) {
        e.u64(self.seed);
        for b in [
            self.max_sessions,
            self.max_pending,
            self.max_challenges,
            self.budget,
            self.window,
            self.skew,
            self.rssi,
            self.lockout,
        ] {
            e.u8(b);
        }
    }
}

/// How a response is made.
#[derive(Arbitrary, Debug, Clone, PartialEq, Eq)]
pub enum How {
    /// Correct for this connection's challenge, with the phone clock `now + skew` seconds.
    Correct,
    /// Correct MAC over the armed step + 1, sent with that step.
    WrongStep,
    /// Correct for the challenge of another connection.
    OtherConn(u8),
    /// The last response sent (on any connection) again.
    Replay,
}

impl How {
    const COUNT: u32 = 4;
}

/// One input to the lock.
#[derive(Arbitrary, Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// The driver's clock moves (possibly backwards).
    Advance(Delta),
    /// A prepared grant (`which % len`), through `handle_message` or `handle_grant`.
    Grant {
        /// Which prepared grant.
        which: u8,
        /// Through `handle_message`.
        via_message: bool,
        /// Change before delivery.
        mutation: Mutation,
    },
    /// A prepared revocation, through `handle_message` or `handle_revocation`.
    Revoke {
        /// Which prepared revocation.
        which: u8,
        /// Through `handle_message`.
        via_message: bool,
        /// Change before delivery.
        mutation: Mutation,
    },
    /// A beacon of a prepared session.
    Beacon {
        /// Which prepared grant's session.
        session: u8,
        /// Step offset from the lock's step: `x % 5 − 2`.
        step: u8,
        /// Attempt number.
        attempt: u8,
        /// RSSI in dBm.
        rssi: i8,
        /// Heard under another company id.
        foreign: bool,
        /// Change before delivery.
        mutation: Mutation,
    },
    /// A Select on connection `conn % 3`.
    Select {
        /// Connection.
        conn: u8,
        /// Which prepared grant's session.
        session: u8,
        /// Step offset from the lock's step: `x % 5 − 2`.
        step: u8,
        /// Attempt number.
        attempt: u8,
        /// Change before delivery.
        mutation: Mutation,
    },
    /// A response on connection `conn % 3`.
    Respond {
        /// Connection.
        conn: u8,
        /// How it is made.
        how: How,
        /// Phone clock offset from the lock's, seconds.
        skew: i16,
        /// Change before delivery.
        mutation: Mutation,
    },
    /// Connection `conn % 3` closes.
    Disconnect(u8),
    /// `handle_timeout(now)`.
    Timeout,
    /// The clock jumps to `poll_timeout()` and `handle_timeout` runs there.
    TimeoutAtPoll,
    /// `restore_unlock_count` of a prepared session's grant.
    RestoreCount {
        /// Which prepared grant.
        session: u8,
        /// The count restored.
        count: u8,
    },
    /// `status_message` with these driver figures.
    Status {
        /// Uptime.
        uptime: u32,
        /// Battery byte (any value: above 100 is reported unknown).
        battery: u8,
        /// Flag byte (undefined bits are dropped).
        flags: u8,
        /// Counters: (index into `Reason::ALL`, count).
        counters: [(u8, u32); 3],
        /// Also a count for every reason (more than the 32 a LockStatus carries).
        all_reasons: bool,
    },
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
            Action::Grant {
                which,
                via_message,
                mutation,
            } => {
                e.tag(1, Self::COUNT);
                e.u8(*which);
                e.bool(*via_message);
                mutation.seed(e);
            }
            Action::Revoke {
                which,
                via_message,
                mutation,
            } => {
                e.tag(2, Self::COUNT);
                e.u8(*which);
                e.bool(*via_message);
                mutation.seed(e);
            }
            Action::Beacon {
                session,
                step,
                attempt,
                rssi,
                foreign,
                mutation,
            } => {
                e.tag(3, Self::COUNT);
                e.u8(*session);
                e.u8(*step);
                e.u8(*attempt);
                e.u8(*rssi as u8);
                e.bool(*foreign);
                mutation.seed(e);
            }
            Action::Select {
                conn,
                session,
                step,
                attempt,
                mutation,
            } => {
                e.tag(4, Self::COUNT);
                e.u8(*conn);
                e.u8(*session);
                e.u8(*step);
                e.u8(*attempt);
                mutation.seed(e);
            }
            Action::Respond {
                conn,
                how,
                skew,
                mutation,
            } => {
                e.tag(5, Self::COUNT);
                e.u8(*conn);
                match how {
                    How::Correct => e.tag(0, How::COUNT),
                    How::WrongStep => e.tag(1, How::COUNT),
                    How::OtherConn(c) => {
                        e.tag(2, How::COUNT);
                        e.u8(*c)
                    }
                    How::Replay => e.tag(3, How::COUNT),
                }
                e.i16(*skew);
                mutation.seed(e);
            }
            Action::Disconnect(c) => {
                e.tag(6, Self::COUNT);
                e.u8(*c);
            }
            Action::Timeout => e.tag(7, Self::COUNT),
            Action::TimeoutAtPoll => e.tag(8, Self::COUNT),
            Action::RestoreCount { session, count } => {
                e.tag(9, Self::COUNT);
                e.u8(*session);
                e.u8(*count);
            }
            Action::Status {
                uptime,
                battery,
                flags,
                counters,
                all_reasons,
            } => {
                e.tag(10, Self::COUNT);
                e.u32(*uptime);
                e.u8(*battery);
                e.u8(*flags);
                for (r, n) in counters {
                    e.u8(*r);
                    e.u32(*n);
                }
                e.bool(*all_reasons);
            }
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
    setup.seed(&mut e);
    for a in actions {
        a.seed(&mut e);
    }
    e.0
}

/// What one input reached (the seed generator checks its seeds go deep).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Grants installed.
    pub installed: usize,
    /// Beacons armed.
    pub armed: usize,
    /// Challenges issued.
    pub challenges: usize,
    /// Unlocks.
    pub unlocks: usize,
    /// Revocations applied.
    pub revoked: usize,
    /// Refusals by reason.
    pub refusals: usize,
    /// Lockouts started.
    pub lockouts: usize,
    /// Beacons or responses refused at the unlock limit.
    pub limited: usize,
    /// Beacons recognised as a revoked session's.
    pub tombstoned: usize,
    /// LockStatus messages built.
    pub statuses: usize,
}

#[derive(Debug, Clone, Copy)]
struct PendingM {
    tag: [u8; 8],
    idx: usize,
    generation: u32,
    step: Step,
    attempt: u16,
    armed_at: u64,
}

#[derive(Debug, Clone, Copy)]
struct ChallengeM {
    idx: usize,
    generation: u32,
    ctx: MacContext,
    issued_at: u64,
}

/// The guest's failure record (LK-LCK-1): every prepared session is one guest's.
#[derive(Debug, Clone, Copy)]
struct FailuresM {
    window_start: u64,
    count: u32,
    /// Prepared grant of the latest failure.
    idx: usize,
    locked_until: Option<u64>,
}

struct Driver {
    lock: Lock,
    cfg: LockConfig,
    rng: rand_chacha::ChaCha20Rng,
    p: &'static Prepared,
    /// The driver's clock (what it passes as `now`).
    now: u64,
    /// The lock's clock as the model computes it (LK-TIM-1: max of the instants it saw).
    clock: u64,
    /// Per prepared grant: the generation of its installed session.
    installed: Vec<Option<u32>>,
    next_generation: u32,
    /// Remembered revocations: (grant, issued_at, expires_at).
    revocations: Vec<(GrantId, u64, u64)>,
    /// The lock may have evicted a revocation (it held `revocation_capacity`).
    evicted: bool,
    armed: HashSet<(SessionId, Step, u16)>,
    pending: Vec<PendingM>,
    challenges: HashMap<u64, ChallengeM>,
    last_response: Vec<u8>,
    budget: u32,
    status_budget: u32,
    /// Per prepared grant: unlocks of its installed session (LK-LIM-1).
    unlocks: Vec<u16>,
    /// Per prepared grant: its session was removed by a revocation it was remembered for
    /// (a tombstone may exist, LK-REV-5).
    tombstoned: Vec<bool>,
    failures: Option<FailuresM>,
    /// Notices the model expects from the current action, in order.
    expected: Vec<LockNotice>,
    summary: Summary,
}

fn secs_u32(t: u64) -> u32 {
    UnixMillis(t).secs_u32()
}

fn step_offset(x: u8) -> i64 {
    i64::from(x % 5) - 2
}

impl Driver {
    fn new(setup: &Setup) -> Self {
        let cfg = setup.config();
        let p = prepared();
        Self {
            lock: Lock::new(cfg.clone()).expect("valid config"),
            cfg,
            rng: rng(setup.seed),
            p,
            now: T0_MS,
            clock: 0,
            installed: vec![None; p.grants.len()],
            next_generation: 0,
            revocations: Vec::new(),
            evicted: false,
            armed: HashSet::new(),
            pending: Vec::new(),
            challenges: HashMap::new(),
            last_response: Vec::new(),
            budget: INSTALL_BUDGET,
            status_budget: STATUS_BUDGET,
            unlocks: vec![0; p.grants.len()],
            tombstoned: vec![false; p.grants.len()],
            failures: None,
            expected: Vec::new(),
            summary: Summary::default(),
        }
    }

    fn locked(&self) -> bool {
        self.failures
            .and_then(|f| f.locked_until)
            .is_some_and(|u| self.clock < u)
    }

    fn lockout_ended(&mut self, f: FailuresM) {
        let h = self.p.grants[f.idx].header;
        self.expected.push(LockNotice::LockoutEnded {
            guest_id: GUEST,
            grant_id: h.grant_id,
            session_id: h.session_id,
        });
        self.failures = None;
    }

    /// LK-LCK-1, as the spec's §7.2.8 counts it.
    fn failed_handshake(&mut self, idx: usize, reason: Reason) {
        let threshold = self.cfg.lockout_threshold;
        if threshold == 0 {
            return;
        }
        let now = self.clock;
        if let Some(f) = self.failures
            && let Some(u) = f.locked_until
        {
            if now < u {
                return;
            }
            self.lockout_ended(f);
        }
        let mut f = self.failures.unwrap_or(FailuresM {
            window_start: now,
            count: 0,
            idx,
            locked_until: None,
        });
        if now - f.window_start > self.cfg.lockout_window_s * 1000 {
            f.window_start = now;
            f.count = 0;
        }
        f.count += 1;
        f.idx = idx;
        if f.count >= threshold {
            let until = now.saturating_add(self.cfg.lockout_duration_s * 1000);
            f.locked_until = Some(until);
            f.count = 0;
            let h = self.p.grants[idx].header;
            self.expected.push(LockNotice::LockoutStarted {
                guest_id: GUEST,
                grant_id: h.grant_id,
                session_id: h.session_id,
                reason,
                until: UnixMillis(until),
            });
            self.pending.clear();
            self.summary.lockouts += 1;
        }
        self.failures = Some(f);
    }

    /// LK-LCK-3 at a timeout.
    fn end_lockout_at_timeout(&mut self) {
        if let Some(f) = self.failures
            && f.locked_until.is_some_and(|u| u <= self.clock)
        {
            self.lockout_ended(f);
        }
    }

    /// The lock's notices of this action must be the model's. A purge the model cannot see
    /// (the session cap's, inside a grant) may end a due lockout early: accepted then.
    fn check_notices(&mut self, may_purge: bool) {
        let got: Vec<LockNotice> = std::iter::from_fn(|| self.lock.poll_notice()).collect();
        let want = std::mem::take(&mut self.expected);
        if got == want {
            return;
        }
        if may_purge
            && want.is_empty()
            && let [LockNotice::LockoutEnded { .. }] = got[..]
            && let Some(f) = self.failures
            && f.locked_until.is_some_and(|u| u <= self.clock)
        {
            self.expected.clear();
            self.lockout_ended(f);
            let model = std::mem::take(&mut self.expected);
            if model == got {
                return;
            }
        }
        self.fail(&format!(
            "notices (LK-LCK-1..3): lock {got:?}, model {want:?}"
        ));
    }

    /// The lock observes `now` (every input but a foreign beacon, a non-grant MQTT type and
    /// a disconnect does, before anything else).
    fn tick(&mut self) {
        self.clock = self.clock.max(self.now);
    }

    fn now_s(&self) -> u64 {
        self.clock / 1000
    }

    /// The step the lock will be at once it observes `now`.
    fn step_at(&self, offset: i64) -> Step {
        let s = i64::from(UnixMillis(self.clock.max(self.now)).step().0) + offset;
        Step(s.clamp(0, i64::from(u32::MAX)) as u32)
    }

    /// The prepared grant whose correct beacon `payload` is, if any.
    fn beacon_owner(&self, payload: &[u8]) -> Option<usize> {
        let b: [u8; 23] = payload.try_into().ok()?;
        let step = Step(u32::from_be_bytes([b[1], b[2], b[3], b[4]]));
        let attempt = u16::from_be_bytes([b[13], b[14]]);
        (0..self.p.grants.len()).find(|i| self.p.grants[*i].material.beacon(step, attempt) == b)
    }

    fn session(&self, x: u8) -> usize {
        // Sessions of lock A with keys the lock can unwrap: grants 0..=6.
        usize::from(x) % 7
    }

    fn fail(&self, what: &str) -> ! {
        panic!(
            "lock invariant violated: {what}\n  driver now={} lock clock={} stats={:?} installed={:?}",
            self.now,
            self.clock,
            self.lock.stats(),
            self.installed
        )
    }

    fn remembered(&self, g: &GrantId) -> bool {
        let now_s = self.now_s();
        self.revocations
            .iter()
            .any(|(x, _, exp)| x == g && *exp > now_s)
    }

    fn apply(&mut self, a: &Action) {
        match a {
            Action::Advance(d) => self.now = d.apply(self.now),
            Action::Grant {
                which,
                via_message,
                mutation,
            } => self.grant(
                usize::from(*which) % self.p.grants.len(),
                *via_message,
                mutation,
            ),
            Action::Revoke {
                which,
                via_message,
                mutation,
            } => self.revoke(
                usize::from(*which) % self.p.revocations.len(),
                *via_message,
                mutation,
            ),
            Action::Beacon {
                session,
                step,
                attempt,
                rssi,
                foreign,
                mutation,
            } => {
                let idx = self.session(*session);
                let step = self.step_at(step_offset(*step));
                let frame = self.p.grants[idx]
                    .material
                    .beacon(step, u16::from(*attempt));
                let payload = mutation.apply(&frame);
                let company = if *foreign { 0x004C } else { COMPANY };
                self.beacon(company, &payload, i16::from(*rssi));
            }
            Action::Select {
                conn,
                session,
                step,
                attempt,
                mutation,
            } => {
                let idx = self.session(*session);
                let step = self.step_at(step_offset(*step));
                let frame = self.p.grants[idx]
                    .material
                    .select(step, u16::from(*attempt));
                self.select(u64::from(conn % 3), &mutation.apply(&frame));
            }
            Action::Respond {
                conn,
                how,
                skew,
                mutation,
            } => {
                let conn = u64::from(conn % 3);
                let phone = (i64::from(secs_u32(self.clock.max(self.now))) + i64::from(*skew))
                    .clamp(0, i64::from(u32::MAX)) as u32;
                let made = |c: &ChallengeM, step_delta: u32| {
                    let mut ctx = c.ctx;
                    ctx.step = Step(ctx.step.0.wrapping_add(step_delta));
                    self.p.grants[c.idx].material.response(&ctx, phone).to_vec()
                };
                let frame = match how {
                    How::Correct => self.challenges.get(&conn).map(|c| made(c, 0)),
                    How::WrongStep => self.challenges.get(&conn).map(|c| made(c, 1)),
                    How::OtherConn(o) => self.challenges.get(&u64::from(o % 3)).map(|c| made(c, 0)),
                    How::Replay => Some(self.last_response.clone()),
                }
                .unwrap_or_else(|| vec![0u8; 20]);
                self.respond(conn, &mutation.apply(&frame));
            }
            Action::Disconnect(c) => {
                let conn = u64::from(c % 3);
                self.lock.handle_disconnect(ConnId(conn));
                self.challenges.remove(&conn);
            }
            Action::Timeout => {
                self.tick();
                self.lock.handle_timeout(ms(self.now));
                self.end_lockout_at_timeout();
            }
            Action::TimeoutAtPoll => {
                if let Some(t) = self.lock.poll_timeout() {
                    // LK-LCK-3: the lockout's end is a timer.
                    if let Some(u) = self.failures.and_then(|f| f.locked_until)
                        && u > self.clock
                        && t.0 > u
                    {
                        self.fail("poll_timeout is later than the lockout's end (LK-LCK-3)");
                    }
                    self.now = t.0;
                }
                self.tick();
                self.lock.handle_timeout(ms(self.now));
                self.end_lockout_at_timeout();
            }
            Action::RestoreCount { session, count } => {
                let idx = self.session(*session);
                let grant = self.p.grants[idx].header.grant_id;
                let present = self.installed[idx].is_some()
                    && self.lock.has_session(&self.p.grants[idx].header.session_id);
                let restored = self.lock.restore_unlock_count(&grant, u16::from(*count));
                // Grants 0, 4 share a grant id: the one installed is restored.
                let owner = (0..self.p.grants.len()).find(|i| {
                    self.installed[*i].is_some()
                        && self.p.grants[*i].header.grant_id == grant
                        && self.lock.has_session(&self.p.grants[*i].header.session_id)
                });
                if restored != owner.is_some() {
                    self.fail("restore_unlock_count disagrees on the session being installed");
                }
                if let Some(o) = owner {
                    self.unlocks[o] = self.unlocks[o].max(u16::from(*count));
                    if self.lock.unlock_count(&grant) != Some(self.unlocks[o]) {
                        self.fail("unlock_count after a restore is not the model's (LK-LIM-1)");
                    }
                }
                let _ = present;
            }
            Action::Status {
                uptime,
                battery,
                flags,
                counters,
                all_reasons,
            } => self.status(*uptime, *battery, *flags, counters, *all_reasons),
        }
    }

    fn status(
        &mut self,
        uptime: u32,
        battery: u8,
        flags: u8,
        counters: &[(u8, u32)],
        all_reasons: bool,
    ) {
        if self.status_budget == 0 {
            return;
        }
        self.status_budget -= 1;
        let all = Reason::ALL;
        let mut counters: Vec<(Reason, u32)> = counters
            .iter()
            .map(|(r, n)| (all[usize::from(*r) % all.len()], *n))
            .collect();
        if all_reasons {
            counters.extend(all.iter().map(|r| (*r, u32::from(r.code()))));
        }
        let input = StatusInput {
            uptime_s: uptime,
            battery_pct: Some(battery).filter(|b| *b != u8::MAX),
            flags: StatusFlags::from_bits_truncate(flags),
            counters: &counters,
        };
        let msg = self.lock.status_message(ms(self.now), &input, &mut self.rng);
        self.summary.statuses += 1;
        let v = LockStatusView::parse(&msg)
            .unwrap_or_else(|r| self.fail(&format!("LockStatus does not parse: {r:?}")));
        if !keys()
            .lock_a
            .public_key()
            .verify(DS_LOCK_STATUS, v.signed, v.signature)
        {
            self.fail("LockStatus signature does not verify (LK-EVT-1)");
        }
        let st = self.lock.stats();
        let f = v.fields;
        if (f.lock_id, f.timestamp_ms, f.uptime_s) != (LOCK_A, self.now, uptime)
            || f.sessions as usize != st.sessions
            || f.revocations as usize != st.revocations
            || usize::from(f.lockouts) != st.lockouts
            || f.battery_pct != Some(battery).filter(|b| *b <= 100)
        {
            self.fail("LockStatus fields differ from the lock's counts or the input");
        }
        let mut want: Vec<(u16, u32)> = Vec::new();
        for (r, n) in &counters {
            if *n == 0 {
                continue;
            }
            match want.iter_mut().find(|(c, _)| *c == r.code()) {
                Some(e) => e.1 = e.1.saturating_add(*n),
                None => want.push((r.code(), *n)),
            }
        }
        if want.len() <= 32 {
            want.sort();
            let got: Vec<(u16, u32)> = f.counters.iter().map(|c| (c.reason, c.count)).collect();
            if got != want {
                self.fail("LockStatus counters are not the input's, merged and sorted");
            }
        } else if f.counters.len() != 32 {
            self.fail("LockStatus does not keep 32 counters of more");
        }
    }

    // ------------------------------------------------------------ grants and revocations

    fn grant(&mut self, idx: usize, via_message: bool, mutation: &Mutation) {
        let g = &self.p.grants[idx];
        let payload = mutation.apply(&g.bytes);
        let exact = payload == g.bytes;
        if exact && g.authentic && self.budget == 0 {
            return; // would cost an RSA private-key operation
        }
        // Which grants are in the lock right now (an expired one may have been purged).
        let present: Vec<bool> = (0..self.p.grants.len())
            .map(|i| {
                self.installed[i].is_some()
                    && self.lock.has_session(&self.p.grants[i].header.session_id)
            })
            .collect();
        let ticks = matches!(
            MessageType::of(&payload),
            Ok(MessageType::LockGrant | MessageType::Revocation)
        );
        if !via_message || ticks {
            self.tick();
        }
        let out = if via_message {
            self.lock
                .handle_message(ms(self.now), &payload, &mut self.rng)
                .and_then(|o| match o {
                    MessageOutcome::Grant(g) => Ok(g),
                    MessageOutcome::Revocation(_) => {
                        self.fail("a LockGrant payload was applied as a revocation")
                    }
                })
        } else {
            self.lock
                .handle_grant(ms(self.now), &payload, &mut self.rng)
        };
        if matches!(
            out,
            Ok(GrantOutcome::Installed { .. }) | Err(Reason::UnwrapFailed)
        ) {
            self.budget = self.budget.saturating_sub(1);
        }
        let h = g.header;
        match out {
            Ok(GrantOutcome::Installed {
                grant_id,
                session_id,
                guest_id,
                not_after,
            }) => {
                self.summary.installed += 1;
                if !exact || !g.authentic || !g.unwrappable {
                    self.fail(&format!(
                        "installed a grant that is not authentic: grant {idx}, payload {}",
                        hex(&payload)
                    ));
                }
                if (grant_id, session_id, guest_id, not_after)
                    != (h.grant_id, h.session_id, h.guest_id, h.not_after)
                {
                    self.fail(&format!(
                        "grant {idx}: outcome fields differ from the grant"
                    ));
                }
                let now_s = self.now_s();
                if h.not_before >= h.not_after
                    || h.not_after - h.not_before > MAX_VALIDITY_S
                    || now_s >= h.not_after
                    || h.issued_at > now_s + self.cfg.max_clock_skew_s
                {
                    self.fail(&format!(
                        "grant {idx} installed outside its validity (LK-GRT-4..6)"
                    ));
                }
                if self.remembered(&h.grant_id) && !self.evicted {
                    self.fail(&format!("revoked grant {idx} installed (LK-GRT-7)"));
                }
                for (i, other) in self.p.grants.iter().enumerate() {
                    let same = other.header.grant_id == h.grant_id
                        || other.header.session_id == h.session_id;
                    if same && present[i] {
                        self.fail(&format!(
                            "grant {idx} installed while grant {i} with the same id is (LK-GRT-8)"
                        ));
                    }
                    if same {
                        self.installed[i] = None;
                    }
                }
                self.installed[idx] = Some(self.next_generation);
                self.next_generation += 1;
                self.unlocks[idx] = 0;
                self.tombstoned[idx] = false;
            }
            Ok(GrantOutcome::AlreadyInstalled) => {
                if !exact || !g.authentic || !present[idx] {
                    self.fail(&format!(
                        "grant {idx} reported already installed, but it is not"
                    ));
                }
            }
            Err(_) => self.summary.refusals += 1,
        }
    }

    fn revoke(&mut self, idx: usize, via_message: bool, mutation: &Mutation) {
        let r = &self.p.revocations[idx];
        let payload = mutation.apply(&r.bytes);
        let exact = payload == r.bytes;
        let ticks = matches!(
            MessageType::of(&payload),
            Ok(MessageType::LockGrant | MessageType::Revocation)
        );
        if !via_message || ticks {
            self.tick();
        }
        let out = if via_message {
            match self
                .lock
                .handle_message(ms(self.now), &payload, &mut self.rng)
            {
                Ok(MessageOutcome::Revocation(o)) => Ok(o),
                Ok(MessageOutcome::Grant(_)) => {
                    self.fail("a mutated revocation was accepted as a grant")
                }
                Err(e) => Err(e),
            }
        } else {
            self.lock.handle_revocation(ms(self.now), &payload)
        };
        match out {
            Ok(o) => {
                self.summary.revoked += 1;
                if !exact || !r.authentic {
                    self.fail(&format!(
                        "applied a revocation that is not authentic: {}",
                        hex(&payload)
                    ));
                }
                let f = r.fields;
                if o.grant_id != f.grant_id {
                    self.fail("revocation outcome names another grant");
                }
                let now_s = self.now_s();
                let mut live = false;
                let mut any = false;
                let mut removed = Vec::new();
                for (i, g) in self.p.grants.iter().enumerate() {
                    if g.header.grant_id == f.grant_id && self.installed[i].is_some() {
                        any = true;
                        live |= now_s < g.header.not_after;
                        self.installed[i] = None;
                        self.pending.retain(|p| p.idx != i);
                        // A remembered revocation keeps the removed session's tombstone.
                        if o.session_removed && f.expires_at > now_s {
                            removed.push(i);
                        }
                    }
                }
                for i in removed {
                    self.tombstoned[i] = true;
                }
                if o.session_removed && !any {
                    self.fail("revocation removed a session that was never installed");
                }
                if live && !o.session_removed {
                    self.fail("revocation left a live session in place (LK-REV-3)");
                }
                if f.expires_at > now_s && !self.remembered(&f.grant_id) {
                    let held = self
                        .revocations
                        .iter()
                        .filter(|(_, _, exp)| *exp > now_s)
                        .count();
                    if held >= REVOCATION_CAPACITY {
                        self.evicted = true;
                    }
                    self.revocations
                        .push((f.grant_id, f.issued_at, f.expires_at));
                }
            }
            Err(_) => self.summary.refusals += 1,
        }
    }

    // ------------------------------------------------------------ radio and GATT

    fn beacon(&mut self, company: u16, payload: &[u8], rssi: i16) {
        if company == COMPANY {
            self.tick();
        }
        let out = self
            .lock
            .handle_beacon(ms(self.now), company, payload, rssi);
        let now_s = self.now_s();
        let cur = UnixMillis(self.clock).step();
        match out {
            Ok(BeaconOutcome::Armed {
                session_id,
                guest_id,
                step,
                attempt,
            }) => {
                self.summary.armed += 1;
                if company != COMPANY {
                    self.fail("armed a beacon of another company (LK-ADV-1)");
                }
                if rssi < self.cfg.rssi_threshold_dbm || rssi > 20 {
                    self.fail(&format!("armed a beacon heard at {rssi} dBm (LK-ADV-4)"));
                }
                if step.0.abs_diff(cur.0) > 1 {
                    self.fail(&format!(
                        "armed a beacon of step {} at step {} (LK-ADV-2)",
                        step.0, cur.0
                    ));
                }
                let Some(idx) = (0..self.p.grants.len()).find(|i| {
                    self.installed[*i].is_some()
                        && self.p.grants[*i].header.session_id == session_id
                }) else {
                    self.fail("armed a beacon of a session that is not installed")
                };
                let g = &self.p.grants[idx];
                if payload != g.material.beacon(step, attempt) {
                    self.fail(&format!(
                        "armed a beacon that is not the correct one: {} (LK-ADV-3, LK-ADV-5)",
                        hex(payload)
                    ));
                }
                if guest_id != GUEST || now_s < g.header.not_before || now_s >= g.header.not_after {
                    self.fail("armed a beacon outside its session's validity (LK-ADV-6)");
                }
                if !self.armed.insert((session_id, step, attempt)) {
                    self.fail("the same beacon armed twice (LK-ADV-7)");
                }
                let max = g.header.max_unlocks;
                if max != 0 && self.unlocks[idx] >= max {
                    self.fail("armed a beacon of a session at its unlock limit (LK-LIM-2)");
                }
                if self.locked() {
                    self.fail("armed a beacon of a locked-out guest (LK-LCK-2)");
                }
                let generation = self.installed[idx].unwrap_or_default();
                self.pending.retain(|p| p.idx != idx);
                self.pending.push(PendingM {
                    tag: g.material.tag(step),
                    idx,
                    generation,
                    step,
                    attempt,
                    armed_at: self.clock,
                });
            }
            Err(Reason::UnlockLimitReached) => {
                self.summary.limited += 1;
                let at_limit = (0..self.p.grants.len()).any(|i| {
                    let m = self.p.grants[i].header.max_unlocks;
                    self.installed[i].is_some()
                        && m != 0
                        && self.unlocks[i] >= m
                        && payload.len() == 23
                        && payload == self.p.grants[i].material.beacon(
                            Step(u32::from_be_bytes([payload[1], payload[2], payload[3], payload[4]])),
                            u16::from_be_bytes([payload[13], payload[14]]),
                        )
                });
                if !at_limit {
                    self.fail("unlock_limit_reached for a beacon of no session at its limit");
                }
            }
            Err(Reason::LockedOut) => {
                if !self.locked() {
                    self.fail("locked_out while the guest is not locked out (LK-LCK-2)");
                }
                self.summary.refusals += 1;
            }
            Err(Reason::SessionRevoked) => {
                self.summary.tombstoned += 1;
                let Some(i) = self.beacon_owner(payload) else {
                    self.fail("session_revoked for a beacon of no prepared session")
                };
                if !self.tombstoned[i] || self.installed[i].is_some() {
                    self.fail("session_revoked for a session not revoked while installed (LK-REV-5)");
                }
                let h = self.p.grants[i].header;
                if self.lock.revoked_beacon_ids(payload)
                    != Some((h.grant_id, h.session_id, h.guest_id))
                {
                    self.fail("revoked_beacon_ids does not name the revoked session");
                }
                if rssi < self.cfg.rssi_threshold_dbm || rssi > 20 || company != COMPANY {
                    self.fail("session_revoked before the RSSI check (LK-REV-5, LK-ADV-4)");
                }
            }
            Err(Reason::UnknownTag) => {
                // A remembered tombstone of a session whose revocation cannot have left the
                // list recognises its correct beacon in the window.
                if let Some(i) = self.beacon_owner(payload)
                    && self.tombstoned[i]
                    && self.installed[i].is_none()
                    && !self.evicted
                    && self.remembered(&self.p.grants[i].header.grant_id)
                {
                    let st = u32::from_be_bytes([payload[1], payload[2], payload[3], payload[4]]);
                    if st.abs_diff(cur.0) <= 1 {
                        self.fail("a remembered revoked session's beacon was not recognised (LK-REV-5)");
                    }
                }
                self.summary.refusals += 1;
            }
            Ok(BeaconOutcome::AlreadyPending) => {
                // The pending authentication may have outlived its window (it stays until a
                // Select or a timeout removes it): only its existence is required.
                let ok = payload.len() == 23
                    && self.pending.iter().any(|p| {
                        p.tag[..] == payload[5..13]
                            && p.step.0.to_be_bytes()[..] == payload[1..5]
                            && p.attempt.to_be_bytes()[..] == payload[13..15]
                    });
                if !ok {
                    self.fail("already_pending for a beacon that armed nothing pending");
                }
            }
            Err(_) => self.summary.refusals += 1,
        }
    }

    fn select(&mut self, conn: u64, payload: &[u8]) {
        self.tick();
        let out = self
            .lock
            .handle_select(ms(self.now), ConnId(conn), payload, &mut self.rng);
        let window = self.cfg.connection_window_ms;
        match out {
            Ok(ch) => {
                self.summary.challenges += 1;
                let sel = SelectView::parse(payload)
                    .unwrap_or_else(|_| self.fail("a malformed Select got a challenge"));
                let Some(pos) = self.pending.iter().position(|p| {
                    p.tag == sel.tag()
                        && p.attempt == sel.attempt()
                        && self.clock - p.armed_at <= window
                        && self.installed[p.idx] == Some(p.generation)
                }) else {
                    self.fail("challenge without a pending authentication in its window (LK-SEL-1, LK-SEL-2)")
                };
                let p = self.pending.remove(pos);
                let m = &self.p.grants[p.idx].material;
                if ch.lock_time != secs_u32(self.clock) {
                    self.fail(&format!(
                        "challenge lock_time {} is not the lock's clamped clock {} (driver model or LK-TIM-1)",
                        ch.lock_time,
                        secs_u32(self.clock)
                    ));
                }
                let ctx = m.ctx(ch.nonce, ch.lock_time, p.step, p.attempt);
                if ch.session_id != m.session_id || m.challenge(&ctx) != ch.to_bytes() {
                    self.fail("challenge with a wrong session or lock MAC");
                }
                self.challenges.insert(
                    conn,
                    ChallengeM {
                        idx: p.idx,
                        generation: p.generation,
                        ctx,
                        issued_at: self.clock,
                    },
                );
            }
            Err(Reason::ConnectionWindowExpired) => {
                if let Ok(sel) = SelectView::parse(payload) {
                    self.pending.retain(|p| p.tag != sel.tag());
                }
                self.summary.refusals += 1;
            }
            Err(_) => self.summary.refusals += 1,
        }
    }

    fn respond(&mut self, conn: u64, payload: &[u8]) {
        self.tick();
        let out = self
            .lock
            .handle_response(ms(self.now), ConnId(conn), payload);
        // LK-RSP-2: the challenge is consumed whatever the outcome.
        let rec = self.challenges.remove(&conn);
        self.last_response = payload.to_vec();
        if let (Some(c), Err(r)) = (rec, out) {
            if matches!(
                r,
                Reason::BadResponseMac
                    | Reason::StepMismatch
                    | Reason::ClockSkew
                    | Reason::LateResponse
                    | Reason::Truncated
                    | Reason::TrailingBytes
                    | Reason::UnsupportedVersion
            ) {
                self.failed_handshake(c.idx, r);
            }
            if r == Reason::LockedOut && !self.locked() {
                self.fail("a response refused locked_out while not locked out (LK-LCK-2)");
            }
            if r == Reason::UnlockLimitReached {
                self.summary.limited += 1;
                let m = self.p.grants[c.idx].header.max_unlocks;
                if m == 0 || self.unlocks[c.idx] < m {
                    self.fail("a response refused unlock_limit_reached below the limit (LK-LIM-2)");
                }
            }
        }
        match out {
            Ok(u) => {
                self.summary.unlocks += 1;
                let Some(c) = rec else {
                    self.fail(
                        "unlock without a challenge outstanding on this connection (LK-RSP-1)",
                    )
                };
                let g = &self.p.grants[c.idx];
                if self.installed[c.idx] != Some(c.generation) {
                    self.fail("unlock by a session revoked (or reinstalled) since its challenge (LK-REV-3, LK-RSP-7)");
                }
                if self.remembered(&g.header.grant_id) {
                    self.fail("unlock by a revoked grant (LK-RSP-7)");
                }
                let now_s = self.now_s();
                if now_s >= g.header.not_after {
                    self.fail("unlock by an expired session (LK-RSP-7)");
                }
                if self.clock - c.issued_at > self.cfg.response_budget_ms {
                    self.fail("unlock after the response budget (LK-RSP-3)");
                }
                let r = ResponseView::parse(payload)
                    .unwrap_or_else(|_| self.fail("unlock by a malformed response"));
                if u64::from(r.phone_time()).abs_diff(now_s) > self.cfg.max_clock_skew_s {
                    self.fail("unlock with the phone clock out of bounds (LK-RSP-5)");
                }
                if payload != g.material.response(&c.ctx, r.phone_time()) {
                    self.fail(&format!(
                        "unlock by a response that is not the correct one: {} (LK-RSP-4, LK-RSP-6)",
                        hex(payload)
                    ));
                }
                if (u.session_id, u.grant_id, u.guest_id)
                    != (g.header.session_id, g.header.grant_id, g.header.guest_id)
                {
                    self.fail("unlock names another session");
                }
                if self.locked() {
                    self.fail("unlock of a locked-out guest (LK-LCK-2)");
                }
                let max = g.header.max_unlocks;
                if max != 0 && self.unlocks[c.idx] >= max {
                    self.fail("unlock beyond the grant's max_unlocks (LK-LIM-2)");
                }
                self.unlocks[c.idx] = self.unlocks[c.idx].saturating_add(1);
                if (u.unlocks, u.max_unlocks) != (self.unlocks[c.idx], max) {
                    self.fail("Unlock reports another count or limit (LK-LIM-1)");
                }
            }
            Err(_) => self.summary.refusals += 1,
        }
    }

    /// Invariants that hold after every step.
    fn check(&self) {
        let s = self.lock.stats();
        let c = &self.cfg;
        if s.sessions > c.max_sessions
            || s.pending > c.max_pending
            || s.challenges > c.max_challenges
            || s.replay > c.replay_capacity
            || s.revocations > c.revocation_capacity
            || s.tags > 3 * s.sessions
        {
            self.fail("a table exceeds its configured cap");
        }
        let now_s = self.now_s();
        for (i, g) in self.p.grants.iter().enumerate() {
            let sid = g.header.session_id;
            let has = self.lock.has_session(&sid);
            let model = (0..self.p.grants.len())
                .any(|j| self.installed[j].is_some() && self.p.grants[j].header.session_id == sid);
            if has && !model {
                self.fail(&format!("session of grant {i} present but never installed"));
            }
            if self.installed[i].is_some() && now_s < g.header.not_after && !has {
                self.fail(&format!("live session of grant {i} disappeared"));
            }
        }
        let _ = self.lock.poll_timeout();
    }
}

/// Runs one input; returns what it reached.
pub fn run(data: &[u8]) -> Summary {
    let Some((setup, actions)) = decode(data) else {
        return Summary::default();
    };
    let mut d = Driver::new(&setup);
    d.check();
    for a in &actions {
        d.apply(a);
        d.check_notices(matches!(a, Action::Grant { .. }));
        d.check();
    }
    d.summary
}
