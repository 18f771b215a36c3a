//! A three-party world with fixed keys, a seeded RNG and a clock the test owns.
#![allow(dead_code)]

use std::collections::BTreeSet;

use latchkey::crypto::EnrollmentKey;
use latchkey::crypto::rsa::RsaPrivateKey;
use latchkey::issuer::IssuedGrant;
use latchkey::lock::{ConnId, GrantOutcome, Unlock};
use latchkey::{
    Guest, GuestConfig, GuestId, Issuer, IssuerConfig, Lock, LockConfig, LockId, Reason, UnixMillis,
};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

pub fn key(name: &str) -> RsaPrivateKey {
    let path = format!(
        "{}/../vectors/keys/{name}.pk8.der",
        env!("CARGO_MANIFEST_DIR")
    );
    let der = std::fs::read(&path).unwrap_or_else(|e| panic!("test key {path}: {e}"));
    RsaPrivateKey::from_pkcs8_der(&der).expect("test key parses")
}

pub const LOCK_A: LockId = LockId([0xA0; 16]);
pub const LOCK_B: LockId = LockId([0xB0; 16]);
pub const GUEST: GuestId = GuestId([0x61; 16]);
pub const RSSI_NEAR: i16 = -50;
/// 2027-01-15T08:00:00Z, 10 s into a step.
pub const T0: UnixMillis = UnixMillis(1_800_000_010_000);

pub struct World {
    pub rng: ChaCha20Rng,
    pub now: UnixMillis,
    pub issuer: Issuer,
    pub lock: Lock,
    pub guest: Guest,
    pub conn: ConnId,
}

pub fn lock_config() -> LockConfig {
    LockConfig::new(LOCK_A, key("lock-a"), key("issuer").public_key())
}

pub fn enrollment_key() -> EnrollmentKey {
    EnrollmentKey::from_bytes([0x5A; 32])
}

impl World {
    pub fn new() -> Self {
        Self::with_lock_config(lock_config())
    }

    pub fn with_lock_config(cfg: LockConfig) -> Self {
        let mut issuer = Issuer::new(IssuerConfig::new(key("issuer"))).expect("issuer config");
        issuer.add_lock(LOCK_A, key("lock-a").public_key());
        issuer.add_lock(LOCK_B, key("lock-b").public_key());
        issuer.add_guest(GUEST, enrollment_key(), BTreeSet::from([LOCK_A]));
        let guest = Guest::new(GuestConfig::new(GUEST, enrollment_key())).expect("guest config");
        Self {
            rng: ChaCha20Rng::seed_from_u64(7),
            now: T0,
            issuer,
            lock: Lock::new(cfg).expect("lock config"),
            guest,
            conn: ConnId(1),
        }
    }

    pub fn advance(&mut self, ms: u64) {
        self.now = self.now.plus_ms(ms);
        self.lock.handle_timeout(self.now);
        self.issuer.handle_timeout(self.now);
    }

    /// Guest requests, issuer issues, both sides install. Returns the issued grant.
    pub fn issue(&mut self, validity_s: u32) -> IssuedGrant {
        let req = self
            .guest
            .request_grant(self.now, LOCK_A, validity_s, &mut self.rng);
        self.issuer
            .handle_request(self.now, GUEST, &req, &mut self.rng)
            .expect("issuer accepts")
    }

    pub fn grant(&mut self) -> IssuedGrant {
        let g = self.issue(3600);
        let out = self
            .lock
            .handle_grant(self.now, &g.lock_grant, &mut self.rng)
            .expect("lock installs");
        assert!(matches!(out, GrantOutcome::Installed { .. }));
        self.guest
            .handle_grant(self.now, &g.guest_grant)
            .expect("guest installs");
        g
    }

    pub fn beacon(&mut self) -> [u8; 23] {
        if self.guest.advertisement(self.now).is_none() {
            self.guest
                .start_unlock(self.now, LOCK_A, &mut self.rng)
                .expect("start unlock");
        }
        self.guest.advertisement(self.now).expect("advertising")
    }

    pub fn hear(&mut self, beacon: &[u8]) -> Result<latchkey::lock::BeaconOutcome, Reason> {
        self.lock.handle_beacon(self.now, 0xFFFF, beacon, RSSI_NEAR)
    }

    /// The issuer revokes `grant` and the lock applies the Revocation.
    pub fn revoke(&mut self, grant: latchkey::GrantId) -> latchkey::lock::MessageOutcome {
        let rev = self
            .issuer
            .revoke_grant(self.now, grant, &mut self.rng)
            .expect("revocation");
        self.lock
            .handle_message(self.now, &rev.payload, &mut self.rng)
            .expect("applied")
    }

    /// Select + challenge; returns the challenge bytes.
    pub fn challenge(&mut self) -> Result<[u8; 33], Reason> {
        let sel = self.guest.select(self.now)?;
        Ok(self
            .lock
            .handle_select(self.now, self.conn, &sel, &mut self.rng)?
            .to_bytes())
    }

    pub fn respond(&mut self, challenge: &[u8]) -> Result<Unlock, Reason> {
        let resp = self.guest.handle_challenge(self.now, challenge)?;
        self.lock.handle_response(self.now, self.conn, &resp)
    }

    /// The whole BLE part: beacon heard, select, challenge, response.
    pub fn unlock(&mut self) -> Result<Unlock, Reason> {
        let b = self.beacon();
        self.hear(&b)?;
        let ch = self.challenge()?;
        let r = self.respond(&ch);
        let _ = self
            .guest
            .handle_write_result(r.map(|_| ()).map_err(|e| e.att_code()));
        r
    }
}

use latchkey::crypto::rsa::{DS_LOCK_GRANT, DS_REVOCATION, RsaPublicKey};
use latchkey::crypto::{self, MacContext, SessionKey, derive_session_keys};
use latchkey::frame::{
    Beacon, ChallengeView, LockGrantHeader, Response, Revocation, Select, append_signature,
};
use latchkey::{GrantId, RevocationId, SessionId, Step};

/// A session made by hand with the issuer's key, for tests that need grants the issuer
/// would never produce (odd validity, colliding ids, many sessions).
pub struct Forge {
    pub header: LockGrantHeader,
    pub k_s: SessionKey,
}

impl Forge {
    pub fn new(seed: u8, now: UnixMillis) -> Self {
        let s = now.secs();
        Self {
            header: LockGrantHeader {
                lock_id: LOCK_A,
                grant_id: GrantId([seed; 16]),
                session_id: SessionId([seed; 8]),
                guest_id: GUEST,
                issued_at: s,
                not_before: s - 30,
                not_after: s + 3600,
                max_unlocks: 0,
            },
            k_s: SessionKey::from_bytes([seed; 32]),
        }
    }

    pub fn lock_grant_with(
        &self,
        rng: &mut ChaCha20Rng,
        signer: &RsaPrivateKey,
        to: &RsaPublicKey,
        label: &[u8],
    ) -> Vec<u8> {
        let wrapped = to.wrap_session_key(rng, label, &self.k_s).expect("wrap");
        let mut out = Vec::new();
        self.header
            .encode_unsigned(&wrapped, &mut out)
            .expect("encode");
        let sig = signer.sign(rng, DS_LOCK_GRANT, &out);
        append_signature(&mut out, &sig).expect("sig");
        out
    }

    pub fn lock_grant(&self, rng: &mut ChaCha20Rng) -> Vec<u8> {
        let to = key(if self.header.lock_id == LOCK_B {
            "lock-b"
        } else {
            "lock-a"
        })
        .public_key();
        self.lock_grant_with(rng, &key("issuer"), &to, &self.header.to_bytes())
    }

    pub fn revocation(&self, rng: &mut ChaCha20Rng, issued_at: u64) -> Vec<u8> {
        revocation_for(rng, &self.header, issued_at, &key("issuer"))
    }

    fn keys(&self) -> latchkey::crypto::SessionKeys {
        derive_session_keys(&self.k_s, &self.header.lock_id, &self.header.session_id)
    }

    pub fn beacon(&self, step: Step, attempt: u16) -> [u8; 23] {
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

    pub fn select(&self, step: Step, attempt: u16) -> [u8; 11] {
        Select {
            tag: crypto::beacon_tag(&self.keys().tag, step),
            attempt,
        }
        .to_bytes()
    }

    pub fn response(
        &self,
        challenge: &[u8],
        step: Step,
        attempt: u16,
        phone_time: u32,
    ) -> [u8; 20] {
        let ch = ChallengeView::parse(challenge).expect("challenge");
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
}

pub fn revocation_for(
    rng: &mut ChaCha20Rng,
    h: &LockGrantHeader,
    issued_at: u64,
    signer: &RsaPrivateKey,
) -> Vec<u8> {
    let r = Revocation {
        lock_id: h.lock_id,
        revocation_id: RevocationId::random(rng),
        grant_id: h.grant_id,
        session_id: h.session_id,
        issued_at,
        expires_at: h.not_after,
    };
    let mut out = Vec::new();
    r.encode_unsigned(&mut out);
    let sig = signer.sign(rng, DS_REVOCATION, &out);
    append_signature(&mut out, &sig).expect("sig");
    out
}
