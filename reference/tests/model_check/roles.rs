//! The three real role machines behind the model, rebuilt by replaying their input logs.
//!
//! `Issuer`, `Lock` and `Guest` are neither `Clone` nor `Hash`, so a model state carries
//! each role's *input log* instead of the role. Each role has its own seeded RNG, so its
//! behaviour is a function of its log alone. A step `(log, input)` is computed once:
//! outputs are memoised globally, and each checker thread keeps a few live instances so
//! that consecutive steps on one log do not replay it (a replay costs one RSA decryption per
//! installed grant, ~2 ms).
//!
//! Logs are normalised: an input the spec says leaves the role unchanged (a refused beacon,
//! a refused Select before LK-SEL-2, a Response without a challenge, a refused or duplicate
//! grant, a refused request...) is not appended. As a guard on that claim, an input is also
//! kept whenever the lock's observable state (`stats()`, `poll_timeout()`) moved. Inputs
//! always carry the role's current time, which never decreases, and every time step feeds
//! the lock a timeout first, so dropping an unchanged input never changes a later step.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::fmt::Debug;
use std::hash::Hash;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::thread::LocalKey;

use latchkey::frame::{GuestGrantView, MessageType, RevocationView};
use latchkey::guest::GuestGrantInfo;
use latchkey::lock::{
    BeaconOutcome, ConnId, GrantOutcome, LockStats, MessageOutcome, RevocationOutcome, Unlock,
};
use latchkey::{
    GrantId, Guest, GuestConfig, GuestId, Issuer, IssuerConfig, Lock, LockConfig, LockId, Reason,
    RequestId, SessionId, UnixMillis,
};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use crate::common::{GUEST, LOCK_A, LOCK_B, RSSI_NEAR, enrollment_key, key, lock_config};

/// An interned byte string: every frame the roles produce or the attacker builds.
pub type MsgId = u32;

#[derive(Default)]
struct Interner {
    ids: HashMap<Arc<[u8]>, MsgId>,
    all: Vec<Arc<[u8]>>,
}

fn interner() -> &'static RwLock<Interner> {
    static I: OnceLock<RwLock<Interner>> = OnceLock::new();
    I.get_or_init(Default::default)
}

/// The id of `bytes`, allocating one the first time they are seen.
pub fn intern(bytes: &[u8]) -> MsgId {
    if let Some(id) = interner().read().expect("interner").ids.get(bytes) {
        return *id;
    }
    let mut w = interner().write().expect("interner");
    if let Some(id) = w.ids.get(bytes) {
        return *id;
    }
    let id = MsgId::try_from(w.all.len()).expect("fewer than 2^32 frames");
    let b: Arc<[u8]> = Arc::from(bytes);
    w.all.push(Arc::clone(&b));
    w.ids.insert(b, id);
    id
}

/// The bytes of an interned frame.
pub fn bytes(id: MsgId) -> Arc<[u8]> {
    Arc::clone(&interner().read().expect("interner").all[id as usize])
}

/// A deliberately wrong wrapper around one role, to show the properties bite.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mutant {
    /// The real reference.
    None,
    /// The lock remembers responses that unlocked and unlocks again when one is written
    /// after its challenge was consumed (breaks LK-RSP-2).
    LockReplaysResponse,
    /// The lock acknowledges a Revocation (`applied`) without applying it (breaks LK-REV-3).
    LockIgnoresRevocation,
    /// The issuer hands a replayed request to a fresh issuer without a request cache
    /// (breaks LK-ISS-5).
    IssuerForgetsRequests,
}

/// Sizes of the memo tables and interned logs (issuer, lock, guest), for the report.
pub fn table_sizes() -> [(usize, usize); 3] {
    fn one<R: Role>() -> (usize, usize) {
        (
            R::memo().lock().expect("memo").len(),
            R::logs().read().expect("logs").nodes.len(),
        )
    }
    [one::<IssuerRole>(), one::<LockRole>(), one::<GuestRole>()]
}

/// Number of role replays from scratch (for the report).
pub static REPLAYS: AtomicUsize = AtomicUsize::new(0);

/// A role's input log, interned: logs form a trie of `(parent, input)`; 0 is the empty log.
pub type LogId = u32;

/// The interned logs of one role.
pub struct Logs<I> {
    nodes: Vec<(LogId, Option<I>)>,
    ids: HashMap<(LogId, I), LogId>,
}

impl<I> Default for Logs<I> {
    fn default() -> Self {
        Self {
            nodes: vec![(0, None)],
            ids: HashMap::new(),
        }
    }
}

/// Memoised steps of one role: `(mutant, log, input) → (output, log after)`.
pub type Memo<I, O> = Mutex<HashMap<(Mutant, LogId, I), (O, LogId)>>;
/// A checker thread's live instances of one role, by the log they have replayed.
pub type Cache<R> = LocalKey<RefCell<Vec<(Mutant, LogId, R)>>>;

/// The static tables of a role: interned logs, memo, per-thread instance cache.
macro_rules! role_tables {
    ($role:ty, $in:ty, $out:ty) => {
        fn logs() -> &'static RwLock<Logs<$in>> {
            static L: OnceLock<RwLock<Logs<$in>>> = OnceLock::new();
            L.get_or_init(Default::default)
        }

        fn memo() -> &'static Memo<$in, $out> {
            static M: OnceLock<Memo<$in, $out>> = OnceLock::new();
            M.get_or_init(Default::default)
        }

        fn cache() -> &'static Cache<$role> {
            thread_local!(static C: RefCell<Vec<(Mutant, LogId, $role)>> = const { RefCell::new(Vec::new()) });
            &C
        }
    };
}

/// A role machine driven by a log of inputs.
pub trait Role: Sized + 'static {
    type In: Copy + Eq + Hash + Debug + Send + Sync + 'static;
    type Out: Clone + Debug + Send + 'static;
    fn fresh(m: Mutant) -> Self;
    /// The time an input carries, if any.
    fn time(i: &Self::In) -> Option<UnixMillis>;
    /// Applies `input`; returns the output and whether the role may have changed.
    fn apply(&mut self, input: &Self::In, m: Mutant) -> (Self::Out, bool);
    fn logs() -> &'static RwLock<Logs<Self::In>>;
    fn memo() -> &'static Memo<Self::In, Self::Out>;
    fn cache() -> &'static Cache<Self>;
}

/// The inputs of log `id`, oldest first.
pub fn log_of<R: Role>(id: LogId) -> Vec<R::In> {
    let logs = R::logs().read().expect("logs");
    let mut out = Vec::new();
    let mut n = id;
    while n != 0 {
        let (parent, i) = logs.nodes[n as usize];
        out.push(i.expect("non-root nodes carry an input"));
        n = parent;
    }
    out.reverse();
    out
}

fn extend<R: Role>(log: LogId, input: R::In) -> LogId {
    if let Some(id) = R::logs().read().expect("logs").ids.get(&(log, input)) {
        return *id;
    }
    let mut w = R::logs().write().expect("logs");
    if let Some(id) = w.ids.get(&(log, input)) {
        return *id;
    }
    let id = LogId::try_from(w.nodes.len()).expect("fewer than 2^32 logs");
    w.nodes.push((log, Some(input)));
    w.ids.insert((log, input), id);
    id
}

pub fn last_time<R: Role>(log: LogId) -> Option<UnixMillis> {
    let logs = R::logs().read().expect("logs");
    let mut n = log;
    while n != 0 {
        let (parent, i) = logs.nodes[n as usize];
        if let Some(t) = i.as_ref().and_then(R::time) {
            return Some(t);
        }
        n = parent;
    }
    None
}

const CACHED_INSTANCES: usize = 16;

/// The output of `input` applied to the role rebuilt from `log`, and the log after it
/// (`log` itself when the input left the role unchanged).
pub fn step<R: Role>(m: Mutant, log: LogId, input: R::In) -> (R::Out, LogId) {
    let key = (m, log, input);
    if let Some(hit) = R::memo().lock().expect("memo").get(&key) {
        return hit.clone();
    }
    let cached = R::cache().with(|c| {
        let mut c = c.borrow_mut();
        let i = c.iter().position(|(cm, cl, _)| *cm == m && *cl == log)?;
        Some(c.remove(i).2)
    });
    let mut role = cached.unwrap_or_else(|| {
        REPLAYS.fetch_add(1, Ordering::Relaxed);
        let mut r = R::fresh(m);
        for i in log_of::<R>(log) {
            r.apply(&i, m);
        }
        r
    });
    let (out, changed) = role.apply(&input, m);
    let after = if changed {
        extend::<R>(log, input)
    } else {
        log
    };
    // An unchanged input still moves the role's clock (LK-TIM-1): the instance is exactly
    // the replay of `log` only if the input's time is not later than the log's.
    let reusable =
        changed || R::time(&input).is_none_or(|t| last_time::<R>(log).is_some_and(|l| t <= l));
    if reusable {
        R::cache().with(|c| {
            let mut c = c.borrow_mut();
            if c.len() >= CACHED_INSTANCES {
                c.remove(0);
            }
            c.push((m, after, role));
        });
    }
    let out = (out, after);
    R::memo().lock().expect("memo").insert(key, out.clone());
    out
}

fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

// ------------------------------------------------------------------------------ issuer

/// An issued grant, as the issuer returned it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Issued {
    pub lock_id: LockId,
    pub guest_id: GuestId,
    pub grant_id: GrantId,
    pub session_id: SessionId,
    pub not_before: u64,
    pub not_after: u64,
    /// Echoed in the GuestGrant: the request this grant answers.
    pub request_id: RequestId,
    pub lock_grant: MsgId,
    pub guest_grant: MsgId,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IssuerIn {
    Request(UnixMillis, MsgId),
    Revoke(UnixMillis, GrantId),
}

#[derive(Clone, Debug)]
pub enum IssuerOut {
    Request(Result<Issued, Reason>),
    Revoke(Option<MsgId>),
}

fn issuer_config() -> &'static IssuerConfig {
    static C: OnceLock<IssuerConfig> = OnceLock::new();
    C.get_or_init(|| IssuerConfig::new(key("issuer")))
}

fn lock_keys() -> &'static (
    latchkey::crypto::rsa::RsaPublicKey,
    latchkey::crypto::rsa::RsaPublicKey,
) {
    static K: OnceLock<(
        latchkey::crypto::rsa::RsaPublicKey,
        latchkey::crypto::rsa::RsaPublicKey,
    )> = OnceLock::new();
    K.get_or_init(|| (key("lock-a").public_key(), key("lock-b").public_key()))
}

fn new_issuer() -> Issuer {
    let mut i = Issuer::new(issuer_config().clone()).expect("issuer config");
    i.add_lock(LOCK_A, lock_keys().0.clone());
    i.add_lock(LOCK_B, lock_keys().1.clone());
    i.add_guest(GUEST, enrollment_key(), BTreeSet::from([LOCK_A]));
    i
}

pub struct IssuerRole {
    issuer: Issuer,
    rng: ChaCha20Rng,
}

impl std::fmt::Debug for IssuerRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IssuerRole")
    }
}

fn issued(g: &latchkey::issuer::IssuedGrant) -> Issued {
    let request_id = GuestGrantView::parse(&g.guest_grant)
        .expect("the issuer's GuestGrant parses")
        .header
        .request_id;
    Issued {
        lock_id: g.lock_id,
        guest_id: g.guest_id,
        grant_id: g.grant_id,
        session_id: g.session_id,
        not_before: g.not_before,
        not_after: g.not_after,
        request_id,
        lock_grant: intern(&g.lock_grant),
        guest_grant: intern(&g.guest_grant),
    }
}

impl Role for IssuerRole {
    type In = IssuerIn;
    type Out = IssuerOut;

    fn fresh(_: Mutant) -> Self {
        Self {
            issuer: new_issuer(),
            rng: rng(0x1551),
        }
    }

    fn time(i: &IssuerIn) -> Option<UnixMillis> {
        match *i {
            IssuerIn::Request(t, _) | IssuerIn::Revoke(t, _) => Some(t),
        }
    }

    fn apply(&mut self, input: &IssuerIn, m: Mutant) -> (IssuerOut, bool) {
        match *input {
            IssuerIn::Request(now, id) => {
                let r = self
                    .issuer
                    .handle_request(now, GUEST, &bytes(id), &mut self.rng);
                if m == Mutant::IssuerForgetsRequests
                    && r.as_ref().err() == Some(&Reason::RequestReplay)
                {
                    // A fresh issuer (no request cache) grants the replay: the mutant.
                    let mut fresh = new_issuer();
                    let g = fresh.handle_request(now, GUEST, &bytes(id), &mut rng(0xBAD));
                    return (IssuerOut::Request(g.map(|g| issued(&g))), false);
                }
                let ok = r.is_ok();
                (IssuerOut::Request(r.map(|g| issued(&g))), ok)
            }
            IssuerIn::Revoke(now, grant) => {
                let r = self.issuer.revoke_grant(now, grant, &mut self.rng);
                let ok = r.is_some();
                (IssuerOut::Revoke(r.map(|r| intern(&r.payload))), ok)
            }
        }
    }

    role_tables!(IssuerRole, IssuerIn, IssuerOut);
}

// ------------------------------------------------------------------------------ lock

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LockIn {
    /// `handle_timeout(now)`: the driver's timer, fed at every time step.
    Timeout(UnixMillis),
    /// A payload on the lock's grants topic (LockGrant or Revocation).
    Mqtt(UnixMillis, MsgId),
    /// A beacon heard at RSSI −50 dBm under the configured company id.
    Beacon(UnixMillis, MsgId),
    /// A Select written on a connection.
    Select(UnixMillis, u8, MsgId),
    /// A Response written on a connection.
    Response(UnixMillis, u8, MsgId),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LockOut {
    Timeout,
    Mqtt(Result<MessageOutcome, Reason>),
    Beacon(Result<BeaconOutcome, Reason>),
    /// The Challenge value (interned) or the reason.
    Select(Result<MsgId, Reason>),
    Response(Result<Unlock, Reason>),
}

pub struct LockRole {
    lock: Lock,
    rng: ChaCha20Rng,
    /// Revocations applied (they are idempotent, LK-REV-4).
    revocations: Vec<MsgId>,
    /// Mutant only: responses that unlocked.
    accepted: Vec<(MsgId, Unlock)>,
}

fn shared_lock_config() -> &'static LockConfig {
    static C: OnceLock<LockConfig> = OnceLock::new();
    C.get_or_init(lock_config)
}

fn observable(l: &Lock) -> (LockStats, Option<UnixMillis>) {
    (l.stats(), l.poll_timeout())
}

impl Role for LockRole {
    type In = LockIn;
    type Out = LockOut;

    fn fresh(_: Mutant) -> Self {
        Self {
            lock: Lock::new(shared_lock_config().clone()).expect("lock config"),
            rng: rng(0x10C4),
            revocations: Vec::new(),
            accepted: Vec::new(),
        }
    }

    fn time(i: &LockIn) -> Option<UnixMillis> {
        match *i {
            LockIn::Timeout(t)
            | LockIn::Mqtt(t, _)
            | LockIn::Beacon(t, _)
            | LockIn::Select(t, _, _)
            | LockIn::Response(t, _, _) => Some(t),
        }
    }

    fn apply(&mut self, input: &LockIn, m: Mutant) -> (LockOut, bool) {
        let before = observable(&self.lock);
        let company = self.lock.config().company_id;
        let (out, may_change) = match *input {
            LockIn::Timeout(now) => {
                self.lock.handle_timeout(now);
                (LockOut::Timeout, true)
            }
            LockIn::Mqtt(now, id) => {
                let b = bytes(id);
                if m == Mutant::LockIgnoresRevocation
                    && MessageType::of(&b) == Ok(MessageType::Revocation)
                {
                    let r = RevocationView::parse(&b).map(|v| {
                        MessageOutcome::Revocation(RevocationOutcome {
                            grant_id: v.fields.grant_id,
                            session_removed: false,
                        })
                    });
                    return (LockOut::Mqtt(r), false);
                }
                let r = self.lock.handle_message(now, &b, &mut self.rng);
                // Grants are idempotent (LK-GRT-8) and so are revocations (LK-REV-4).
                let may = match r {
                    Ok(MessageOutcome::Grant(GrantOutcome::Installed { .. })) => true,
                    Ok(MessageOutcome::Revocation(_)) if !self.revocations.contains(&id) => {
                        self.revocations.push(id);
                        true
                    }
                    _ => false,
                };
                (LockOut::Mqtt(r), may)
            }
            LockIn::Beacon(now, id) => {
                let r = self.lock.handle_beacon(now, company, &bytes(id), RSSI_NEAR);
                let may = matches!(r, Ok(BeaconOutcome::Armed { .. }));
                (LockOut::Beacon(r), may)
            }
            LockIn::Select(now, conn, id) => {
                let r =
                    self.lock
                        .handle_select(now, ConnId(conn.into()), &bytes(id), &mut self.rng);
                let may = !matches!(
                    r,
                    Err(Reason::NoPendingAuth
                        | Reason::Truncated
                        | Reason::TrailingBytes
                        | Reason::UnsupportedVersion)
                );
                (LockOut::Select(r.map(|c| intern(&c.to_bytes()))), may)
            }
            LockIn::Response(now, conn, id) => {
                let r = self
                    .lock
                    .handle_response(now, ConnId(conn.into()), &bytes(id));
                if m == Mutant::LockReplaysResponse {
                    if let Ok(u) = r {
                        self.accepted.push((id, u));
                    } else if r == Err(Reason::NoChallenge)
                        && let Some((_, u)) = self.accepted.iter().find(|(x, _)| *x == id)
                    {
                        return (LockOut::Response(Ok(*u)), false);
                    }
                }
                let may = r != Err(Reason::NoChallenge);
                (LockOut::Response(r), may)
            }
        };
        (out, may_change || observable(&self.lock) != before)
    }

    role_tables!(LockRole, LockIn, LockOut);
}

// ------------------------------------------------------------------------------ guest

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GuestIn {
    /// `request_grant(now, LOCK_A, validity)`.
    Request(UnixMillis, u32),
    /// A GuestGrant payload.
    Grant(UnixMillis, MsgId),
    /// `start_unlock(now, LOCK_A)`.
    Start(UnixMillis),
    /// `select(now)`.
    Select(UnixMillis),
    /// A Challenge value read from "the lock".
    Challenge(UnixMillis, MsgId),
    /// The result of the Response write.
    WriteResult(Result<(), u8>),
    /// `cancel_unlock()`.
    Cancel,
    /// `advertisement(now)` (observes only).
    Advert(UnixMillis),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GuestOut {
    Request(MsgId),
    Grant(Result<GuestGrantInfo, Reason>),
    Start(Result<(), Reason>),
    Select(Result<MsgId, Reason>),
    Challenge(Result<MsgId, Reason>),
    WriteResult(Result<(), Option<Reason>>),
    Cancel,
    Advert(Option<MsgId>),
}

fn shared_guest_config() -> &'static GuestConfig {
    static C: OnceLock<GuestConfig> = OnceLock::new();
    C.get_or_init(|| GuestConfig::new(GUEST, enrollment_key()))
}

pub struct GuestRole {
    guest: Guest,
    rng: ChaCha20Rng,
}

impl Role for GuestRole {
    type In = GuestIn;
    type Out = GuestOut;

    fn fresh(_: Mutant) -> Self {
        Self {
            guest: Guest::new(shared_guest_config().clone()).expect("guest config"),
            rng: rng(0x6E57),
        }
    }

    fn time(i: &GuestIn) -> Option<UnixMillis> {
        match *i {
            GuestIn::Request(t, _)
            | GuestIn::Grant(t, _)
            | GuestIn::Start(t)
            | GuestIn::Select(t)
            | GuestIn::Challenge(t, _)
            | GuestIn::Advert(t) => Some(t),
            GuestIn::WriteResult(_) | GuestIn::Cancel => None,
        }
    }

    fn apply(&mut self, input: &GuestIn, _: Mutant) -> (GuestOut, bool) {
        let g = &mut self.guest;
        match *input {
            GuestIn::Request(now, validity) => {
                let r = g.request_grant(now, LOCK_A, validity, &mut self.rng);
                (GuestOut::Request(intern(&r)), true)
            }
            GuestIn::Grant(now, id) => {
                let r = g.handle_grant(now, &bytes(id));
                let ok = r.is_ok();
                (GuestOut::Grant(r), ok)
            }
            GuestIn::Start(now) => {
                let r = g.start_unlock(now, LOCK_A, &mut self.rng);
                let ok = r.is_ok();
                (GuestOut::Start(r), ok)
            }
            GuestIn::Select(now) => {
                let r = g.select(now);
                let ok = r.is_ok();
                (GuestOut::Select(r.map(|s| intern(&s))), ok)
            }
            GuestIn::Challenge(now, id) => {
                let r = g.handle_challenge(now, &bytes(id));
                let ok = r.is_ok();
                (GuestOut::Challenge(r.map(|s| intern(&s))), ok)
            }
            GuestIn::WriteResult(r) => (GuestOut::WriteResult(g.handle_write_result(r)), true),
            GuestIn::Cancel => {
                g.cancel_unlock();
                (GuestOut::Cancel, true)
            }
            GuestIn::Advert(now) => (
                GuestOut::Advert(g.advertisement(now).map(|b| intern(&b))),
                false,
            ),
        }
    }

    role_tables!(GuestRole, GuestIn, GuestOut);
}
