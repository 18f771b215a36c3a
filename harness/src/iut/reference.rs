//! The reference implementation behind the shim protocol, in process. The `shim`
//! subcommand serves exactly this over stdin/stdout, so the external path is tested with the
//! same answers.

use std::collections::{BTreeSet, VecDeque};
use std::convert::Infallible;

use latchkey::crypto::provider::{RsaProvider, default_rsa_provider};
use latchkey::crypto::rsa::{
    DS_LOCK_EVENT, DS_LOCK_GRANT, DS_LOCK_STATUS, DS_REVOCATION, RsaPrivateKey, RsaPublicKey,
};
use latchkey::crypto::{self, EnrollmentKey, MacContext, SessionKey};
use latchkey::frame::*;
use latchkey::guest::GuestGrantInfo;
use latchkey::issuer::{AccessRule, IssuerConfig, LockReport, StaticAccess};
use latchkey::lock::{BeaconOutcome, ConnId, GrantOutcome, LockNotice, MessageOutcome};
use latchkey::{
    GrantId, Guest, GuestConfig, GuestId, Issuer, Lock, LockConfig, LockId, Reason, SessionId,
    Step, UnixMillis,
};
use rand_chacha::ChaCha20Rng;
use rand_core::{SeedableRng, TryCryptoRng, TryRng};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::{Iut, IutError};

/// Shim protocol version.
pub const PROTOCOL: u64 = 1;

/// Randomness for the reference: bytes the script supplies (nonces, ids, attempts) first,
/// then a seeded ChaCha20 for everything the vectors do not pin (RSA blinding, OAEP seeds,
/// PSS salts), so runs are reproducible.
#[derive(Debug)]
pub struct ScriptedRng {
    queue: VecDeque<u8>,
    fallback: ChaCha20Rng,
}

impl ScriptedRng {
    /// A generator seeded with `seed` and nothing queued.
    pub fn new(seed: u64) -> Self {
        Self {
            queue: VecDeque::new(),
            fallback: ChaCha20Rng::seed_from_u64(seed),
        }
    }
    /// Queues bytes to be returned before any fallback output.
    pub fn push(&mut self, bytes: &[u8]) {
        self.queue.extend(bytes);
    }
}

impl TryRng for ScriptedRng {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        for d in dst.iter_mut() {
            *d = match self.queue.pop_front() {
                Some(b) => b,
                None => {
                    let mut one = [0u8; 1];
                    rand_core::Rng::fill_bytes(&mut self.fallback, &mut one);
                    one[0]
                }
            };
        }
        Ok(())
    }
}

impl TryCryptoRng for ScriptedRng {}

#[derive(Debug)]
enum Role {
    Lock(Box<Lock>),
    Guest(Box<Guest>),
    /// The issuer and its access policy (the config's `guests[].access`).
    Issuer(Box<(Issuer, StaticAccess)>),
}

/// The reference as an implementation under test.
///
/// Its RSA keys are loaded into an RSA provider: the default (RustCrypto), or another with
/// [`ReferenceIut::with_provider`]. With aws-lc-rs, which draws PSS salts and OAEP seeds
/// from its own DRBG, grants and signatures differ from the vectors' bytes; the runner
/// checks those outputs semantically (verify, unwrap), so the results must not change.
#[derive(Debug)]
pub struct ReferenceIut {
    role: Option<Role>,
    rng: ScriptedRng,
    provider: &'static dyn RsaProvider,
}

impl Default for ReferenceIut {
    fn default() -> Self {
        Self::with_provider(default_rsa_provider())
    }
}

impl ReferenceIut {
    /// The reference with its RSA keys held by `provider`.
    pub fn with_provider(provider: &'static dyn RsaProvider) -> Self {
        Self {
            role: None,
            rng: ScriptedRng::new(0x4c4b),
            provider,
        }
    }

    /// The RSA provider in use.
    pub fn provider(&self) -> &'static dyn RsaProvider {
        self.provider
    }
}

type R<T> = Result<T, String>;

// ---------------------------------------------------------------- JSON field helpers

pub(crate) fn field<'a>(v: &'a Value, k: &str) -> R<&'a Value> {
    v.get(k).ok_or_else(|| format!("missing field `{k}`"))
}

pub(crate) fn hexf(v: &Value, k: &str) -> R<Vec<u8>> {
    let s = field(v, k)?
        .as_str()
        .ok_or_else(|| format!("field `{k}` must be a hex string"))?;
    hex::decode(s).map_err(|e| format!("field `{k}`: {e}"))
}

pub(crate) fn arrf<const N: usize>(v: &Value, k: &str) -> R<[u8; N]> {
    let b = hexf(v, k)?;
    b.try_into()
        .map_err(|_| format!("field `{k}` must be {N} bytes"))
}

pub(crate) fn u64f(v: &Value, k: &str) -> R<u64> {
    field(v, k)?
        .as_u64()
        .ok_or_else(|| format!("field `{k}` must be an unsigned integer"))
}

fn i64f(v: &Value, k: &str) -> R<i64> {
    field(v, k)?
        .as_i64()
        .ok_or_else(|| format!("field `{k}` must be an integer"))
}

fn num<T: TryFrom<u64>>(v: &Value, k: &str) -> R<T> {
    T::try_from(u64f(v, k)?).map_err(|_| format!("field `{k}` out of range"))
}

fn private_key(p: &'static dyn RsaProvider, v: &Value, k: &str) -> R<RsaPrivateKey> {
    RsaPrivateKey::from_pkcs8_der_with(p, &hexf(v, k)?).map_err(|e| format!("field `{k}`: {e}"))
}

fn public_key(p: &'static dyn RsaProvider, v: &Value, k: &str) -> R<RsaPublicKey> {
    RsaPublicKey::from_public_key_der_with(p, &hexf(v, k)?).map_err(|e| format!("field `{k}`: {e}"))
}

fn h(b: &[u8]) -> String {
    hex::encode(b)
}

fn rejected(r: Reason) -> Value {
    json!({"outcome": "rejected", "reason": r.name()})
}

/// Applies `tunables` overrides from a config object through `set`.
fn tunables(cfg: &Value, mut set: impl FnMut(&str, &Value) -> R<()>) -> R<()> {
    if let Some(t) = cfg.get("tunables") {
        let obj = t.as_object().ok_or("`tunables` must be an object")?;
        for (k, v) in obj {
            set(k, v)?;
        }
    }
    Ok(())
}

fn tunable_u64(k: &str, v: &Value) -> R<u64> {
    v.as_u64()
        .ok_or_else(|| format!("tunable `{k}` must be an unsigned integer"))
}

fn tunable_usize(k: &str, v: &Value) -> R<usize> {
    tunable_num(k, v)
}

fn tunable_num<T: TryFrom<u64>>(k: &str, v: &Value) -> R<T> {
    T::try_from(tunable_u64(k, v)?).map_err(|_| format!("tunable `{k}` out of range"))
}

// ---------------------------------------------------------------- role construction

fn make_lock(p: &'static dyn RsaProvider, c: &Value) -> R<Lock> {
    let mut cfg = LockConfig::new(
        LockId(arrf(c, "lock_id")?),
        private_key(p, c, "lock_key")?,
        public_key(p, c, "issuer_public_key")?,
    );
    if c.get("company_id").is_some() {
        cfg.company_id = num(c, "company_id")?;
    }
    tunables(c, |k, v| {
        match k {
            "rssi_threshold_dbm" => {
                cfg.rssi_threshold_dbm = v
                    .as_i64()
                    .and_then(|x| i16::try_from(x).ok())
                    .ok_or("tunable `rssi_threshold_dbm` must be a small integer")?
            }
            "connection_window_ms" => cfg.connection_window_ms = tunable_u64(k, v)?,
            "response_budget_ms" => cfg.response_budget_ms = tunable_u64(k, v)?,
            "max_clock_skew_s" => cfg.max_clock_skew_s = tunable_u64(k, v)?,
            "max_grant_validity_s" => cfg.max_grant_validity_s = tunable_u64(k, v)?,
            "max_sessions" => cfg.max_sessions = tunable_usize(k, v)?,
            "max_pending" => cfg.max_pending = tunable_usize(k, v)?,
            "max_challenges" => cfg.max_challenges = tunable_usize(k, v)?,
            "replay_capacity" => cfg.replay_capacity = tunable_usize(k, v)?,
            "revocation_capacity" => cfg.revocation_capacity = tunable_usize(k, v)?,
            "lockout_threshold" => cfg.lockout_threshold = tunable_num(k, v)?,
            "lockout_window_s" => cfg.lockout_window_s = tunable_u64(k, v)?,
            "lockout_duration_s" => cfg.lockout_duration_s = tunable_u64(k, v)?,
            other => return Err(format!("unknown lock tunable `{other}`")),
        }
        Ok(())
    })?;
    Lock::new(cfg).map_err(|e| e.to_string())
}

fn make_guest(c: &Value) -> R<Guest> {
    let mut cfg = GuestConfig::new(
        GuestId(arrf(c, "guest_id")?),
        EnrollmentKey::from_bytes(arrf(c, "enrollment_key")?),
    );
    if c.get("company_id").is_some() {
        cfg.company_id = num(c, "company_id")?;
    }
    tunables(c, |k, v| {
        match k {
            "max_clock_skew_s" => cfg.max_clock_skew_s = tunable_u64(k, v)?,
            "max_outstanding_requests" => cfg.max_outstanding_requests = tunable_usize(k, v)?,
            other => return Err(format!("unknown guest tunable `{other}`")),
        }
        Ok(())
    })?;
    Guest::new(cfg).map_err(|e| e.to_string())
}

fn make_issuer(p: &'static dyn RsaProvider, c: &Value) -> R<(Issuer, StaticAccess)> {
    let mut cfg = IssuerConfig::new(private_key(p, c, "signing_key")?);
    tunables(c, |k, v| {
        match k {
            "request_window_s" => cfg.request_window_s = tunable_u64(k, v)?,
            "request_cache_capacity" => cfg.request_cache_capacity = tunable_usize(k, v)?,
            "max_grant_validity_s" => cfg.max_grant_validity_s = tunable_u64(k, v)?,
            "backdate_s" => cfg.backdate_s = tunable_u64(k, v)?,
            "max_live_grants" => cfg.max_live_grants = tunable_usize(k, v)?,
            "event_window_s" => cfg.event_window_s = tunable_u64(k, v)?,
            "event_replay_capacity" => cfg.event_replay_capacity = tunable_usize(k, v)?,
            "rate_guest_burst" => cfg.rate_guest_burst = tunable_num(k, v)?,
            "rate_guest_per_hour" => cfg.rate_guest_per_hour = tunable_num(k, v)?,
            "rate_lock_burst" => cfg.rate_lock_burst = tunable_num(k, v)?,
            "rate_lock_per_hour" => cfg.rate_lock_per_hour = tunable_num(k, v)?,
            other => return Err(format!("unknown issuer tunable `{other}`")),
        }
        Ok(())
    })?;
    let mut iss = Issuer::new(cfg).map_err(|e| e.to_string())?;
    let mut policy = StaticAccess::new();
    for l in field(c, "locks")?
        .as_array()
        .ok_or("`locks` must be an array")?
    {
        iss.add_lock(LockId(arrf(l, "lock_id")?), public_key(p, l, "public_key")?);
    }
    for g in field(c, "guests")?
        .as_array()
        .ok_or("`guests` must be an array")?
    {
        let id = GuestId(arrf(g, "guest_id")?);
        let mut allowed = BTreeSet::new();
        for l in field(g, "allowed_locks")?
            .as_array()
            .ok_or("`allowed_locks` must be an array")?
        {
            let s = l.as_str().ok_or("lock ids are hex strings")?;
            allowed.insert(s.parse::<LockId>().map_err(|e| e.to_string())?);
        }
        iss.add_guest(
            id,
            EnrollmentKey::from_bytes(arrf(g, "enrollment_key")?),
            allowed,
        );
        if g.get("revoked").and_then(Value::as_bool) == Some(true) {
            iss.revoke_guest(&id);
        }
        for a in g
            .get("access")
            .map(|a| a.as_array().ok_or("`access` must be an array"))
            .transpose()?
            .into_iter()
            .flatten()
        {
            let lock = field(a, "lock_id")?
                .as_str()
                .ok_or("`access[].lock_id` must be hex")?
                .parse::<LockId>()
                .map_err(|e| e.to_string())?;
            let opt = |k: &str| a.get(k).map(|_| u64f(a, k)).transpose();
            let max_unlocks = a
                .get("max_unlocks")
                .map(|_| num(a, "max_unlocks"))
                .transpose()?;
            policy.set(
                id,
                lock,
                AccessRule {
                    valid_from: opt("valid_from")?,
                    valid_until: opt("valid_until")?,
                    max_unlocks,
                },
            );
        }
    }
    Ok((iss, policy))
}

// ---------------------------------------------------------------- inputs

fn grant_info(i: GuestGrantInfo) -> Value {
    json!({"outcome": "installed", "grant_id": i.grant_id.to_string(), "session_id": i.session_id.to_string(), "not_after": i.not_after})
}

/// Adds the lock's notices of this input to its output (harness/SHIM.md): a lockout that
/// started as `"lockout": {…}`, lockouts that ended as `"lockouts_ended": [guest_id, …]`.
fn with_notices(lock: &mut Lock, mut out: Value) -> Value {
    let mut ended = Vec::new();
    while let Some(n) = lock.poll_notice() {
        match n {
            LockNotice::LockoutStarted {
                guest_id,
                grant_id,
                session_id,
                reason,
                until,
            } => {
                out["lockout"] = json!({"guest_id": guest_id.to_string(), "grant_id": grant_id.to_string(),
                    "session_id": session_id.to_string(), "reason": reason.name(), "until": until.0});
            }
            LockNotice::LockoutEnded { guest_id, .. } => ended.push(json!(guest_id.to_string())),
        }
    }
    if !ended.is_empty() {
        out["lockouts_ended"] = Value::Array(ended);
    }
    out
}

impl ReferenceIut {
    fn lock_input(lock: &mut Lock, rng: &mut ScriptedRng, now: UnixMillis, i: &Value) -> R<Value> {
        let out = Self::lock_input_outcome(lock, rng, now, i)?;
        Ok(with_notices(lock, out))
    }

    fn lock_input_outcome(
        lock: &mut Lock,
        rng: &mut ScriptedRng,
        now: UnixMillis,
        i: &Value,
    ) -> R<Value> {
        let ty = field(i, "type")?.as_str().unwrap_or_default();
        Ok(match ty {
            "grant" | "revocation" | "message" => {
                match lock.handle_message(now, &hexf(i, "payload")?, rng) {
                    Ok(MessageOutcome::Grant(GrantOutcome::Installed {
                        grant_id,
                        session_id,
                        ..
                    })) => {
                        json!({"outcome": "installed", "grant_id": grant_id.to_string(), "session_id": session_id.to_string()})
                    }
                    Ok(MessageOutcome::Grant(GrantOutcome::AlreadyInstalled)) => {
                        json!({"outcome": "already_installed"})
                    }
                    Ok(MessageOutcome::Revocation(r)) => {
                        json!({"outcome": "revoked", "grant_id": r.grant_id.to_string(), "session_removed": r.session_removed})
                    }
                    Err(r) => rejected(r),
                }
            }
            "beacon" => {
                let rssi = i16::try_from(i64f(i, "rssi")?).map_err(|_| "rssi out of range")?;
                match lock.handle_beacon(now, num(i, "company_id")?, &hexf(i, "payload")?, rssi) {
                    Ok(BeaconOutcome::Armed { session_id, .. }) => {
                        json!({"outcome": "armed", "session_id": session_id.to_string()})
                    }
                    Ok(BeaconOutcome::AlreadyPending) => json!({"outcome": "already_pending"}),
                    Err(r) => rejected(r),
                }
            }
            "select" => {
                rng.push(&arrf::<12>(i, "nonce")?);
                match lock.handle_select(now, ConnId(u64f(i, "conn")?), &hexf(i, "payload")?, rng) {
                    Ok(ch) => json!({"outcome": "challenge", "bytes": h(&ch.to_bytes())}),
                    Err(r) => rejected(r),
                }
            }
            "response" => {
                match lock.handle_response(now, ConnId(u64f(i, "conn")?), &hexf(i, "payload")?) {
                    Ok(u) => {
                        json!({"outcome": "unlock", "session_id": u.session_id.to_string(), "grant_id": u.grant_id.to_string(),
                               "unlocks": u.unlocks, "max_unlocks": u.max_unlocks})
                    }
                    Err(r) => rejected(r),
                }
            }
            "disconnect" => {
                lock.handle_disconnect(ConnId(u64f(i, "conn")?));
                json!({"outcome": "ok"})
            }
            "timeout" => {
                lock.handle_timeout(now);
                json!({"outcome": "ok"})
            }
            other => return Err(format!("unknown lock input `{other}`")),
        })
    }

    fn guest_input(
        guest: &mut Guest,
        rng: &mut ScriptedRng,
        now: UnixMillis,
        i: &Value,
    ) -> R<Value> {
        let ty = field(i, "type")?.as_str().unwrap_or_default();
        Ok(match ty {
            "request_grant" => {
                rng.push(&arrf::<16>(i, "request_id")?);
                rng.push(&arrf::<12>(i, "nonce")?);
                let req = guest.request_grant(
                    now,
                    LockId(arrf(i, "lock_id")?),
                    num(i, "validity_s")?,
                    rng,
                );
                json!({"outcome": "request", "bytes": h(&req)})
            }
            "grant" => match guest.handle_grant(now, &hexf(i, "payload")?) {
                Ok(info) => grant_info(info),
                Err(r) => rejected(r),
            },
            "start_unlock" => {
                rng.push(&num::<u16>(i, "attempt")?.to_be_bytes());
                match guest.start_unlock(now, LockId(arrf(i, "lock_id")?), rng) {
                    Ok(()) => json!({"outcome": "ok"}),
                    Err(r) => rejected(r),
                }
            }
            "advertisement" => match guest.advertisement(now) {
                Some(b) => json!({"outcome": "beacon", "bytes": h(&b)}),
                None => json!({"outcome": "none"}),
            },
            "select" => match guest.select(now) {
                Ok(b) => json!({"outcome": "select", "bytes": h(&b)}),
                Err(r) => rejected(r),
            },
            "challenge" => match guest.handle_challenge(now, &hexf(i, "payload")?) {
                Ok(b) => json!({"outcome": "response", "bytes": h(&b)}),
                Err(r) => rejected(r),
            },
            "write_result" => {
                let res = match i.get("att_error").and_then(Value::as_u64) {
                    None => Ok(()),
                    Some(c) => Err(u8::try_from(c).map_err(|_| "att_error must be a byte")?),
                };
                match guest.handle_write_result(res) {
                    Ok(()) => json!({"outcome": "unlocked"}),
                    Err(r) => json!({"outcome": "refused", "reason": r.map(Reason::name)}),
                }
            }
            other => return Err(format!("unknown guest input `{other}`")),
        })
    }

    fn issuer_input(
        role: &mut (Issuer, StaticAccess),
        rng: &mut ScriptedRng,
        now: UnixMillis,
        i: &Value,
    ) -> R<Value> {
        let (iss, policy) = role;
        let ty = field(i, "type")?.as_str().unwrap_or_default();
        Ok(match ty {
            "request" => {
                let topic = GuestId(arrf(i, "topic_guest")?);
                match iss.handle_request_with(now, topic, &hexf(i, "payload")?, policy, rng) {
                    Ok(g) => {
                        json!({"outcome": "granted", "lock_grant": h(&g.lock_grant), "guest_grant": h(&g.guest_grant)})
                    }
                    Err(r) => rejected(r),
                }
            }
            "revoke" => match iss.revoke_grant(now, GrantId(arrf(i, "grant_id")?), rng) {
                Some(r) => json!({"outcome": "revocation", "bytes": h(&r.payload)}),
                None => json!({"outcome": "none"}),
            },
            // `event` is the name of this input from before LockStatus shared the topic.
            "lock_message" | "event" => {
                let topic = LockId(arrf(i, "topic_lock")?);
                match iss.handle_lock_message(now, topic, &hexf(i, "payload")?) {
                    Ok(LockReport::Event(e)) => {
                        json!({"outcome": "event", "kind": e.kind as u8, "reason_code": e.reason, "event_id": e.event_id.to_string()})
                    }
                    Ok(LockReport::Status(st)) => {
                        json!({"outcome": "status", "status_id": st.status_id.to_string(),
                        "sessions": st.sessions, "revocations": st.revocations, "lockouts": st.lockouts,
                        "counters": st.counters.iter().map(|c| json!({"reason_code": c.reason, "count": c.count})).collect::<Vec<_>>()})
                    }
                    Err(r) => rejected(r),
                }
            }
            "timeout" => {
                iss.handle_timeout(now);
                json!({"outcome": "ok"})
            }
            other => return Err(format!("unknown issuer input `{other}`")),
        })
    }

    fn input(&mut self, req: &Value) -> R<Value> {
        let now = UnixMillis(u64f(req, "t")?);
        let i = field(req, "input")?;
        let rng = &mut self.rng;
        match self.role.as_mut().ok_or("no role created")? {
            Role::Lock(l) => Self::lock_input(l, rng, now, i),
            Role::Guest(g) => Self::guest_input(g, rng, now, i),
            Role::Issuer(s) => Self::issuer_input(s, rng, now, i),
        }
    }

    fn create(&mut self, req: &Value) -> R<()> {
        let c = field(req, "config")?;
        self.rng = ScriptedRng::new(c.get("rng_seed").and_then(Value::as_u64).unwrap_or(0x4c4b));
        self.role = Some(match field(req, "role")?.as_str().unwrap_or_default() {
            "lock" => Role::Lock(Box::new(make_lock(self.provider, c)?)),
            "guest" => Role::Guest(Box::new(make_guest(c)?)),
            "issuer" => Role::Issuer(Box::new(make_issuer(self.provider, c)?)),
            other => return Err(format!("unknown role `{other}`")),
        });
        Ok(())
    }
}

// ---------------------------------------------------------------- primitives

fn mac_ctx(i: &Value) -> R<MacContext> {
    Ok(MacContext {
        lock_id: LockId(arrf(i, "lock_id")?),
        session_id: SessionId(arrf(i, "session_id")?),
        nonce: arrf(i, "nonce")?,
        lock_time: num(i, "lock_time")?,
        step: Step(num(i, "step")?),
        attempt: num(i, "attempt")?,
    })
}

/// The domain separation, signed bytes and signature of a signed message, after parsing it
/// fully (a malformed message is an error, never a short slice).
fn signature_parts(message: &[u8]) -> R<(&'static [u8], &[u8], &[u8])> {
    let name = |r: Reason| r.name().to_string();
    match MessageType::of(message).map_err(name)? {
        MessageType::LockGrant => {
            let v = LockGrantView::parse(message).map_err(name)?;
            Ok((DS_LOCK_GRANT, v.signed, v.signature))
        }
        MessageType::Revocation => {
            let v = RevocationView::parse(message).map_err(name)?;
            Ok((DS_REVOCATION, v.signed, v.signature))
        }
        MessageType::LockEvent => {
            let v = LockEventView::parse(message).map_err(name)?;
            Ok((DS_LOCK_EVENT, v.signed, v.signature))
        }
        MessageType::LockStatus => {
            let v = LockStatusView::parse(message).map_err(name)?;
            Ok((DS_LOCK_STATUS, v.signed, v.signature))
        }
        _ => Err("not a signed message".into()),
    }
}

/// Computes one primitive (see `vectors/primitives.json` for the names and fields), with the
/// default RSA provider.
pub fn primitive(name: &str, i: &Value) -> R<Value> {
    primitive_with(default_rsa_provider(), name, i)
}

/// Computes one primitive, with RSA keys held by `provider`.
pub fn primitive_with(provider: &'static dyn RsaProvider, name: &str, i: &Value) -> R<Value> {
    Ok(match name {
        "subkeys" => {
            let k = crypto::derive_session_keys(
                &SessionKey::from_bytes(arrf(i, "session_key")?),
                &LockId(arrf(i, "lock_id")?),
                &SessionId(arrf(i, "session_id")?),
            );
            json!({"k_tag": h(&k.tag), "k_adv": h(&k.adv), "k_chal": h(&k.chal), "k_resp": h(&k.resp)})
        }
        "beacon_tag" => {
            json!({"tag": h(&crypto::beacon_tag(&arrf(i, "k_tag")?, Step(num(i, "step")?)))})
        }
        "beacon_mac" => {
            let cmac = crypto::ShortCmac::new(&arrf(i, "k_adv")?);
            json!({"mac": h(&crypto::beacon_mac(&cmac, &arrf(i, "mac_input")?))})
        }
        "verify_beacon" => {
            let cmac = crypto::ShortCmac::new(&arrf(i, "k_adv")?);
            let b = hexf(i, "beacon")?;
            let valid = BeaconView::parse(&b).is_ok_and(|v| {
                let mut input = [0u8; 15];
                input.copy_from_slice(v.mac_input());
                crypto::ct_eq(&crypto::beacon_mac(&cmac, &input), v.mac())
            });
            json!({"valid": valid})
        }
        "lock_mac" => json!({"mac": h(&crypto::lock_mac(&arrf(i, "k_chal")?, &mac_ctx(i)?))}),
        "response_mac" => {
            json!({"mac": h(&crypto::response_mac(&arrf(i, "k_resp")?, &mac_ctx(i)?, num(i, "phone_time")?))})
        }
        "signature_input" => {
            let m = hexf(i, "message")?;
            let (ds, signed, _) = signature_parts(&m)?;
            let mut input = ds.to_vec();
            input.extend_from_slice(signed);
            json!({"signature_input": h(&input), "sha256": h(&Sha256::digest(&input))})
        }
        "verify_signature" => {
            let m = hexf(i, "message")?;
            let key = public_key(provider, i, "public_key")?;
            let valid =
                signature_parts(&m).is_ok_and(|(ds, signed, sig)| key.verify(ds, signed, sig));
            json!({"valid": valid})
        }
        "open_guest_grant" => {
            let k = EnrollmentKey::from_bytes(arrf(i, "enrollment_key")?);
            let b = hexf(i, "message")?;
            match GuestGrantView::parse(&b).map(|v| crypto::open_guest_grant(&k, &v)) {
                Ok(Ok(ks)) => json!({"valid": true, "session_key": h(ks.expose())}),
                _ => json!({"valid": false}),
            }
        }
        "open_request" => {
            let k = EnrollmentKey::from_bytes(arrf(i, "enrollment_key")?);
            let b = hexf(i, "message")?;
            match GrantRequestView::parse(&b).map(|v| crypto::open_request(&k, &v)) {
                Ok(Ok(s)) => json!({"valid": true, "requested_validity_s": s}),
                _ => json!({"valid": false}),
            }
        }
        other => return Err(format!("unknown primitive `{other}`")),
    })
}

// ---------------------------------------------------------------- frames

/// Decodes `bytes` as `frame`: `{"result":"valid","fields":{…}}` or
/// `{"result":"invalid","reason":…}`.
pub fn decode(frame: &str, bytes: &[u8]) -> R<Value> {
    let out: Result<Value, Reason> = match frame {
        "beacon" => BeaconView::parse(bytes).map(|v| {
            json!({"step": v.step().0, "tag": h(&v.tag()), "attempt": v.attempt(), "beacon_mac": h(v.mac())})
        }),
        "select" => SelectView::parse(bytes).map(|v| json!({"tag": h(&v.tag()), "attempt": v.attempt()})),
        "challenge" => ChallengeView::parse(bytes).map(|v| {
            json!({"nonce": h(&v.nonce()), "lock_time": v.lock_time(), "session_id": v.session_id().to_string(), "lock_mac": h(v.lock_mac())})
        }),
        "response" => ResponseView::parse(bytes)
            .map(|v| json!({"phone_time": v.phone_time(), "step": v.step().0, "resp_mac": h(v.mac())})),
        "lock_grant" => LockGrantView::parse(bytes).map(|v| {
            let x = v.header;
            json!({"lock_id": x.lock_id.to_string(), "grant_id": x.grant_id.to_string(), "session_id": x.session_id.to_string(),
                   "guest_id": x.guest_id.to_string(), "issued_at": x.issued_at, "not_before": x.not_before, "not_after": x.not_after,
                   "max_unlocks": x.max_unlocks, "wrapped": h(v.wrapped), "sig": h(v.signature)})
        }),
        "revocation" => RevocationView::parse(bytes).map(|v| {
            let x = v.fields;
            json!({"lock_id": x.lock_id.to_string(), "revocation_id": x.revocation_id.to_string(), "grant_id": x.grant_id.to_string(),
                   "session_id": x.session_id.to_string(), "issued_at": x.issued_at, "expires_at": x.expires_at, "sig": h(v.signature)})
        }),
        "guest_grant" => GuestGrantView::parse(bytes).map(|v| {
            let x = v.header;
            json!({"guest_id": x.guest_id.to_string(), "lock_id": x.lock_id.to_string(), "request_id": x.request_id.to_string(),
                   "grant_id": x.grant_id.to_string(), "session_id": x.session_id.to_string(), "issued_at": x.issued_at,
                   "not_before": x.not_before, "not_after": x.not_after, "nonce": h(&v.nonce), "sealed": h(v.sealed)})
        }),
        "grant_request" => GrantRequestView::parse(bytes).map(|v| {
            let x = v.header;
            json!({"guest_id": x.guest_id.to_string(), "lock_id": x.lock_id.to_string(), "request_id": x.request_id.to_string(),
                   "timestamp": x.timestamp, "nonce": h(&v.nonce), "sealed": h(v.sealed)})
        }),
        "lock_event" => LockEventView::parse(bytes).map(|v| {
            let x = v.fields;
            json!({"lock_id": x.lock_id.to_string(), "event_id": x.event_id.to_string(), "timestamp_ms": x.timestamp_ms,
                   "kind": x.kind as u8, "reason": x.reason, "grant_id": x.grant_id.to_string(),
                   "session_id": x.session_id.to_string(), "sig": h(v.signature)})
        }),
        "lock_status" => LockStatusView::parse(bytes).map(|v| {
            let x = v.fields;
            json!({"lock_id": x.lock_id.to_string(), "status_id": x.status_id.to_string(), "timestamp_ms": x.timestamp_ms,
                   "uptime_s": x.uptime_s, "battery_pct": x.battery_pct.unwrap_or(BATTERY_UNKNOWN), "flags": x.flags.bits(),
                   "sessions": x.sessions, "revocations": x.revocations, "lockouts": x.lockouts,
                   "counters": x.counters.iter().map(|c| json!({"reason_code": c.reason, "count": c.count})).collect::<Vec<_>>(),
                   "sig": h(v.signature)})
        }),
        other => return Err(format!("unknown frame `{other}`")),
    };
    Ok(match out {
        Ok(fields) => json!({"result": "valid", "fields": fields}),
        Err(r) => json!({"result": "invalid", "reason": r.name()}),
    })
}

fn id<T: std::str::FromStr>(f: &Value, k: &str) -> R<T> {
    field(f, k)?
        .as_str()
        .ok_or_else(|| format!("field `{k}` must be hex"))?
        .parse()
        .map_err(|_| format!("field `{k}` is not a valid id"))
}

/// Encodes `fields` as `frame` (the inverse of [`decode`] for valid frames).
pub fn encode(frame: &str, f: &Value) -> R<Vec<u8>> {
    Ok(match frame {
        "beacon" => Beacon {
            step: Step(num(f, "step")?),
            tag: arrf(f, "tag")?,
            attempt: num(f, "attempt")?,
            mac: arrf(f, "beacon_mac")?,
        }
        .to_bytes()
        .to_vec(),
        "select" => Select {
            tag: arrf(f, "tag")?,
            attempt: num(f, "attempt")?,
        }
        .to_bytes()
        .to_vec(),
        "challenge" => Challenge {
            nonce: arrf(f, "nonce")?,
            lock_time: num(f, "lock_time")?,
            session_id: id(f, "session_id")?,
            lock_mac: arrf(f, "lock_mac")?,
        }
        .to_bytes()
        .to_vec(),
        "response" => Response {
            phone_time: num(f, "phone_time")?,
            step: Step(num(f, "step")?),
            mac: arrf(f, "resp_mac")?,
        }
        .to_bytes()
        .to_vec(),
        "lock_grant" => {
            let hd = LockGrantHeader {
                lock_id: id(f, "lock_id")?,
                grant_id: id(f, "grant_id")?,
                session_id: id(f, "session_id")?,
                guest_id: id(f, "guest_id")?,
                issued_at: u64f(f, "issued_at")?,
                not_before: u64f(f, "not_before")?,
                not_after: u64f(f, "not_after")?,
                max_unlocks: num(f, "max_unlocks")?,
            };
            let mut out = Vec::new();
            hd.encode_unsigned(&hexf(f, "wrapped")?, &mut out)
                .map_err(|r| r.name().to_string())?;
            append_signature(&mut out, &hexf(f, "sig")?).map_err(|r| r.name().to_string())?;
            out
        }
        "revocation" => {
            let r = Revocation {
                lock_id: id(f, "lock_id")?,
                revocation_id: id(f, "revocation_id")?,
                grant_id: id(f, "grant_id")?,
                session_id: id(f, "session_id")?,
                issued_at: u64f(f, "issued_at")?,
                expires_at: u64f(f, "expires_at")?,
            };
            let mut out = Vec::new();
            r.encode_unsigned(&mut out);
            append_signature(&mut out, &hexf(f, "sig")?).map_err(|r| r.name().to_string())?;
            out
        }
        "guest_grant" => {
            let hd = GuestGrantHeader {
                guest_id: id(f, "guest_id")?,
                lock_id: id(f, "lock_id")?,
                request_id: id(f, "request_id")?,
                grant_id: id(f, "grant_id")?,
                session_id: id(f, "session_id")?,
                issued_at: u64f(f, "issued_at")?,
                not_before: u64f(f, "not_before")?,
                not_after: u64f(f, "not_after")?,
            };
            let mut out = [0u8; GUEST_GRANT_LEN];
            hd.encode(&arrf(f, "nonce")?, &arrf(f, "sealed")?, &mut out)
                .map_err(|e| e.to_string())?;
            out.to_vec()
        }
        "grant_request" => {
            let hd = GrantRequestHeader {
                guest_id: id(f, "guest_id")?,
                lock_id: id(f, "lock_id")?,
                request_id: id(f, "request_id")?,
                timestamp: u64f(f, "timestamp")?,
            };
            let mut out = [0u8; GRANT_REQUEST_LEN];
            hd.encode(&arrf(f, "nonce")?, &arrf(f, "sealed")?, &mut out)
                .map_err(|e| e.to_string())?;
            out.to_vec()
        }
        "lock_event" => {
            let kind = EventKind::from_u8(num(f, "kind")?).ok_or("field `kind` out of range")?;
            let e = LockEvent {
                lock_id: id(f, "lock_id")?,
                event_id: id(f, "event_id")?,
                timestamp_ms: u64f(f, "timestamp_ms")?,
                kind,
                reason: num(f, "reason")?,
                grant_id: id(f, "grant_id")?,
                session_id: id(f, "session_id")?,
            };
            let mut out = Vec::new();
            e.encode_unsigned(&mut out);
            append_signature(&mut out, &hexf(f, "sig")?).map_err(|r| r.name().to_string())?;
            out
        }
        "lock_status" => {
            let battery: u8 = num(f, "battery_pct")?;
            let counters = field(f, "counters")?
                .as_array()
                .ok_or("field `counters` must be an array")?
                .iter()
                .map(|c| {
                    Ok(StatusCounter {
                        reason: num(c, "reason_code")?,
                        count: num(c, "count")?,
                    })
                })
                .collect::<R<Vec<_>>>()?;
            let st = LockStatus {
                lock_id: id(f, "lock_id")?,
                status_id: id(f, "status_id")?,
                timestamp_ms: u64f(f, "timestamp_ms")?,
                uptime_s: num(f, "uptime_s")?,
                battery_pct: (battery != BATTERY_UNKNOWN).then_some(battery),
                flags: StatusFlags::from_bits(num(f, "flags")?)
                    .ok_or("field `flags` out of range")?,
                sessions: num(f, "sessions")?,
                revocations: num(f, "revocations")?,
                lockouts: num(f, "lockouts")?,
                counters,
            };
            let mut out = Vec::new();
            st.encode_unsigned(&mut out)
                .map_err(|r| r.name().to_string())?;
            append_signature(&mut out, &hexf(f, "sig")?).map_err(|r| r.name().to_string())?;
            out
        }
        other => return Err(format!("unknown frame `{other}`")),
    })
}

// ---------------------------------------------------------------- the protocol

impl ReferenceIut {
    /// Answers one shim-protocol request object.
    pub fn handle(&mut self, req: &Value) -> Value {
        let op = req.get("op").and_then(Value::as_str).unwrap_or_default();
        let res: R<Map<String, Value>> = (|| {
            let mut m = Map::new();
            m.insert("ok".into(), json!(true));
            match op {
                "hello" => {
                    m.insert("protocol".into(), json!(PROTOCOL));
                    m.insert(
                        "implementation".into(),
                        json!(concat!("latchkey-reference ", env!("CARGO_PKG_VERSION"))),
                    );
                }
                "create" => self.create(req)?,
                "reset" => self.role = None,
                "input" => {
                    m.insert("output".into(), self.input(req)?);
                }
                "primitive" => {
                    let name = field(req, "name")?.as_str().unwrap_or_default();
                    m.insert(
                        "output".into(),
                        primitive_with(self.provider, name, field(req, "input")?)?,
                    );
                }
                "decode" => {
                    let frame = field(req, "frame")?.as_str().unwrap_or_default();
                    m.insert("output".into(), decode(frame, &hexf(req, "bytes")?)?);
                }
                "encode" => {
                    let frame = field(req, "frame")?.as_str().unwrap_or_default();
                    m.insert(
                        "bytes".into(),
                        json!(h(&encode(frame, field(req, "fields")?)?)),
                    );
                }
                "bye" => {}
                other => return Err(format!("unknown op `{other}`")),
            }
            Ok(m)
        })();
        match res {
            Ok(m) => Value::Object(m),
            Err(e) => json!({"ok": false, "error": e}),
        }
    }
}

impl Iut for ReferenceIut {
    fn name(&self) -> String {
        format!(
            "latchkey-reference {} (in process, RSA provider {})",
            env!("CARGO_PKG_VERSION"),
            self.provider.name()
        )
    }

    fn call(&mut self, request: &Value) -> Result<Value, IutError> {
        Ok(self.handle(request))
    }
}
