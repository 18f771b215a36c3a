//! What the generator builds scenarios with: the fixed keys and identities, a recorder that
//! runs the reference as the role under test (its outputs become the expectations), and a
//! forge for grants the issuer would never produce.

use std::collections::BTreeMap;
use std::path::Path;

use latchkey::crypto::rsa::{DS_LOCK_GRANT, DS_REVOCATION, RsaPrivateKey, RsaPublicKey};
use latchkey::crypto::{self, EnrollmentKey, MacContext, SessionKey, derive_session_keys};
use latchkey::frame::{
    Beacon, ChallengeView, LockGrantHeader, Response, Revocation, Select, append_signature,
};
use latchkey::{GrantId, GuestId, LockId, RevocationId, SessionId, Step, UnixMillis};
use rand_chacha::ChaCha20Rng;
use serde_json::{Value, json};

use crate::iut::reference::ReferenceIut;
use crate::model::{Case, CaseBody, Expectation, KeyPair, Step as ScriptStep};
use crate::vectors::expand_keys;

pub const LOCK_A: LockId = LockId([0xA0; 16]);
pub const LOCK_B: LockId = LockId([0xB0; 16]);
pub const GUEST_1: GuestId = GuestId([0x61; 16]);
pub const GUEST_2: GuestId = GuestId([0x62; 16]);
pub const K_ENR_1: [u8; 32] = [0x5A; 32];
pub const K_ENR_2: [u8; 32] = [0x5B; 32];
/// 2027-01-15T08:00:10Z: ten seconds into step 60,000,000.
pub const T0: u64 = 1_800_000_010_000;
pub const COMPANY: u16 = 0xFFFF;
pub const NEAR: i64 = -50;

/// The fixed RSA keys of the vectors (`vectors/keys/*.pk8.der`).
#[derive(Debug)]
pub struct Keys {
    pub issuer: RsaPrivateKey,
    pub lock_a: RsaPrivateKey,
    pub lock_b: RsaPrivateKey,
    pub rogue: RsaPrivateKey,
    pub table: BTreeMap<String, KeyPair>,
}

impl Keys {
    pub fn load(dir: &Path) -> Result<Self, String> {
        let mut table = BTreeMap::new();
        let mut get = |name: &str| -> Result<RsaPrivateKey, String> {
            let path = dir.join(format!("{name}.pk8.der"));
            let der = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let k = RsaPrivateKey::from_pkcs8_der(&der)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            let spki = k
                .public_key()
                .to_public_key_der()
                .map_err(|e| e.to_string())?;
            table.insert(
                name.to_string(),
                KeyPair {
                    pkcs8: hex::encode(&der),
                    spki: hex::encode(spki),
                },
            );
            Ok(k)
        };
        Ok(Self {
            issuer: get("issuer")?,
            lock_a: get("lock-a")?,
            lock_b: get("lock-b")?,
            rogue: get("rogue")?,
            table,
        })
    }
}

/// Runs the reference as the role under test and records each step's output as the
/// expectation.
#[derive(Debug)]
pub struct Recorder<'k> {
    keys: &'k Keys,
    role: &'static str,
    config: Value,
    iut: ReferenceIut,
    pub steps: Vec<ScriptStep>,
    /// The reference's real outputs (expectations may be rewritten to semantic checks).
    actual: Vec<Value>,
}

impl<'k> Recorder<'k> {
    pub fn new(keys: &'k Keys, role: &'static str, config: Value) -> Self {
        let mut iut = ReferenceIut::default();
        let expanded = expand_keys(&config, &keys.table).unwrap_or(Value::Null);
        let reply = iut.handle(&json!({"op": "create", "role": role, "config": expanded}));
        assert_eq!(
            reply["ok"],
            json!(true),
            "generator: reference refused config: {reply}"
        );
        Self {
            keys,
            role,
            config,
            iut,
            steps: Vec::new(),
            actual: Vec::new(),
        }
    }

    /// Feeds one input at `t` and records its output as the expectation.
    pub fn step(&mut self, t: u64, input: Value) -> Value {
        let resolved = crate::runner::resolve_input(&input, &self.actual)
            .unwrap_or_else(|e| panic!("generator: {e}"));
        let reply = self
            .iut
            .handle(&json!({"op": "input", "t": t, "input": resolved}));
        assert_eq!(
            reply["ok"],
            json!(true),
            "generator: reference refused input {input}: {reply}"
        );
        let out = reply["output"].clone();
        self.actual.push(out.clone());
        self.steps.push(ScriptStep {
            t,
            input,
            expect: out.clone(),
        });
        out
    }

    /// Replaces the last step's expectation (e.g. with a semantic check for outputs that
    /// carry randomness, like RSA-OAEP and RSA-PSS).
    pub fn expect_last(&mut self, expect: Value) {
        if let Some(s) = self.steps.last_mut() {
            s.expect = expect;
        }
    }

    /// Builds the case. `must_end_with` is the outcome (and reason) the case is about: the
    /// generator refuses to write a case whose reference outcome differs from its intent.
    pub fn case(self, id: &str, comment: &str, reqs: &[&str], must_end_with: Value) -> Case {
        let last = self
            .steps
            .last()
            .map(|s| s.expect.clone())
            .unwrap_or(Value::Null);
        for (k, v) in must_end_with.as_object().into_iter().flatten() {
            assert_eq!(
                last.get(k),
                Some(v),
                "generator: case {id} ends with {last}, intended {must_end_with}"
            );
        }
        let result = if last["outcome"] == json!("rejected")
            || last["outcome"] == json!("refused")
            || last["outcome"] == json!("none")
        {
            Expectation::Invalid
        } else {
            Expectation::Valid
        };
        let _ = self.keys;
        Case {
            id: id.to_string(),
            comment: comment.to_string(),
            requirements: reqs.iter().map(|s| s.to_string()).collect(),
            flags: Vec::new(),
            result,
            role: self.role.to_string(),
            body: CaseBody::Scenario {
                config: self.config,
                steps: self.steps,
            },
        }
    }
}

pub fn rejected(reason: &str) -> Value {
    json!({"outcome": "rejected", "reason": reason})
}

pub fn outcome(o: &str) -> Value {
    json!({"outcome": o})
}

/// `b` with the lowest bit of byte `i` flipped (unchanged if `i` is past the end).
pub fn flip(b: &[u8], i: usize) -> Vec<u8> {
    let mut v = b.to_vec();
    if let Some(x) = v.get_mut(i) {
        *x ^= 0x01;
    }
    v
}

pub fn hexs(b: &[u8]) -> String {
    hex::encode(b)
}

pub fn unhex(v: &Value) -> Vec<u8> {
    v.as_str()
        .and_then(|s| hex::decode(s).ok())
        .unwrap_or_default()
}

/// A session made by hand with the issuer's key.
#[derive(Debug)]
pub struct Forge {
    pub header: LockGrantHeader,
    pub k_s: SessionKey,
}

impl Forge {
    pub fn new(seed: u8, now_ms: u64) -> Self {
        let s = now_ms / 1000;
        Self {
            header: LockGrantHeader {
                lock_id: LOCK_A,
                grant_id: GrantId([seed; 16]),
                session_id: SessionId([seed; 8]),
                guest_id: GUEST_1,
                issued_at: s,
                not_before: s - 30,
                not_after: s + 3600,
                max_unlocks: 0,
            },
            k_s: SessionKey::from_bytes([seed; 32]),
        }
    }

    pub fn grant_with(
        &self,
        rng: &mut ChaCha20Rng,
        signer: &RsaPrivateKey,
        to: &RsaPublicKey,
        label: &[u8],
    ) -> Vec<u8> {
        let wrapped = to
            .wrap_session_key(rng, label, &self.k_s)
            .unwrap_or_default();
        let mut out = Vec::new();
        let _ = self.header.encode_unsigned(&wrapped, &mut out);
        let sig = signer.sign(rng, DS_LOCK_GRANT, &out);
        let _ = append_signature(&mut out, &sig);
        out
    }

    pub fn grant(&self, rng: &mut ChaCha20Rng, keys: &Keys) -> Vec<u8> {
        let to = if self.header.lock_id == LOCK_B {
            &keys.lock_b
        } else {
            &keys.lock_a
        };
        self.grant_with(rng, &keys.issuer, &to.public_key(), &self.header.to_bytes())
    }

    pub fn revocation(
        &self,
        rng: &mut ChaCha20Rng,
        signer: &RsaPrivateKey,
        issued_at: u64,
    ) -> Vec<u8> {
        let r = Revocation {
            lock_id: self.header.lock_id,
            revocation_id: RevocationId::random(rng),
            grant_id: self.header.grant_id,
            session_id: self.header.session_id,
            issued_at,
            expires_at: self.header.not_after,
        };
        let mut out = Vec::new();
        r.encode_unsigned(&mut out);
        let sig = signer.sign(rng, DS_REVOCATION, &out);
        let _ = append_signature(&mut out, &sig);
        out
    }

    fn keys(&self) -> crypto::SessionKeys {
        derive_session_keys(&self.k_s, &self.header.lock_id, &self.header.session_id)
    }

    pub fn beacon(&self, t: u64, attempt: u16) -> [u8; 23] {
        let step = UnixMillis(t).step();
        let k = self.keys();
        let tag = crypto::beacon_tag(&k.tag, step);
        let mac = crypto::beacon_mac(&k.beacon_cmac(), &Beacon::mac_input(step, &tag, attempt));
        Beacon {
            step,
            tag,
            attempt,
            mac,
        }
        .to_bytes()
    }

    pub fn select(&self, t: u64, attempt: u16) -> [u8; 11] {
        Select {
            tag: crypto::beacon_tag(&self.keys().tag, UnixMillis(t).step()),
            attempt,
        }
        .to_bytes()
    }

    pub fn response(
        &self,
        challenge: &[u8],
        beacon_t: u64,
        attempt: u16,
        phone_time: u32,
    ) -> [u8; 20] {
        let step = UnixMillis(beacon_t).step();
        let Ok(ch) = ChallengeView::parse(challenge) else {
            return [0; 20];
        };
        let ctx = MacContext {
            lock_id: self.header.lock_id,
            session_id: self.header.session_id,
            nonce: ch.nonce(),
            lock_time: ch.lock_time(),
            step,
            attempt,
        };
        Response {
            phone_time,
            step,
            mac: crypto::response_mac(&self.keys().resp, &ctx, phone_time),
        }
        .to_bytes()
    }

    /// Session keys, for primitive vectors.
    pub fn subkeys(&self) -> crypto::SessionKeys {
        self.keys()
    }
}

pub fn enrollment(k: [u8; 32]) -> EnrollmentKey {
    EnrollmentKey::from_bytes(k)
}

pub fn step_of(t: u64) -> Step {
    UnixMillis(t).step()
}
