//! Guest scenarios: the guest is the role under test; the generator plays issuer and lock.

use std::collections::BTreeSet;

use latchkey::issuer::IssuedGrant;
use latchkey::lock::ConnId;
use latchkey::{GuestId, Issuer, IssuerConfig, Lock, LockConfig, LockId, UnixMillis};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use serde_json::{Value, json};

use super::kit::*;
use crate::model::Case;

pub fn config(tunables: Value) -> Value {
    json!({
        "guest_id": GUEST_1.to_string(),
        "enrollment_key": hexs(&K_ENR_1),
        "company_id": COMPANY,
        "tunables": tunables,
        "rng_seed": 2,
    })
}

/// A guest scenario under construction.
pub struct G<'k> {
    pub rec: Recorder<'k>,
    pub issuer: Issuer,
    pub lock: Lock,
    pub rng: ChaCha20Rng,
    pub t: u64,
    ctr: u8,
}

impl<'k> G<'k> {
    pub fn new(keys: &'k Keys, tunables: Value) -> Self {
        let mut issuer = Issuer::new(IssuerConfig::new(keys.issuer.clone())).expect("issuer");
        issuer.add_lock(LOCK_A, keys.lock_a.public_key());
        issuer.add_lock(LOCK_B, keys.lock_b.public_key());
        issuer.add_guest(
            GUEST_1,
            enrollment(K_ENR_1),
            BTreeSet::from([LOCK_A, LOCK_B]),
        );
        issuer.add_guest(GUEST_2, enrollment(K_ENR_2), BTreeSet::from([LOCK_A]));
        let mut lc = LockConfig::new(LOCK_A, keys.lock_a.clone(), keys.issuer.public_key());
        lc.connection_window_ms = 60_000;
        lc.max_clock_skew_s = 300;
        Self {
            rec: Recorder::new(keys, "guest", config(tunables)),
            issuer,
            lock: Lock::new(lc).expect("lock"),
            rng: ChaCha20Rng::seed_from_u64(21),
            t: T0,
            ctr: 0,
        }
    }

    pub fn at(&mut self, dt: u64) -> &mut Self {
        self.t += dt;
        self
    }

    pub fn feed(&mut self, input: Value) -> Value {
        self.rec.step(self.t, input)
    }

    /// The guest under test builds a request (ids pinned by the script).
    pub fn request(&mut self, lock: LockId, validity: u32) -> Vec<u8> {
        self.ctr += 1;
        let out = self.feed(json!({
            "type": "request_grant", "lock_id": lock.to_string(), "validity_s": validity,
            "request_id": hexs(&[self.ctr; 16]), "nonce": hexs(&[self.ctr; 12]),
        }));
        unhex(&out["bytes"])
    }

    /// Request → peer issuer → the grant (not yet fed to the guest). The peer lock installs.
    pub fn issue(&mut self, validity: u32) -> IssuedGrant {
        let req = self.request(LOCK_A, validity);
        let g = self
            .issuer
            .handle_request(UnixMillis(self.t), GUEST_1, &req, &mut self.rng)
            .expect("peer issuer grants");
        self.lock
            .handle_grant(UnixMillis(self.t), &g.lock_grant, &mut self.rng)
            .expect("peer lock installs");
        g
    }

    pub fn grant_payload(&mut self, payload: &[u8]) -> Value {
        self.feed(json!({"type": "grant", "payload": hexs(payload)}))
    }

    pub fn grant(&mut self) -> IssuedGrant {
        let g = self.issue(3600);
        self.grant_payload(&g.guest_grant);
        g
    }

    pub fn start(&mut self, attempt: u16) -> Value {
        self.feed(
            json!({"type": "start_unlock", "lock_id": LOCK_A.to_string(), "attempt": attempt}),
        )
    }

    /// Advertise, have the peer lock hear it, Select, and return the peer lock's challenge.
    pub fn challenge_from_lock(&mut self) -> Vec<u8> {
        let b = self.feed(json!({"type": "advertisement"}));
        let _ = self
            .lock
            .handle_beacon(UnixMillis(self.t), COMPANY, &unhex(&b["bytes"]), -50);
        let sel = self.feed(json!({"type": "select"}));
        self.lock
            .handle_select(
                UnixMillis(self.t),
                ConnId(1),
                &unhex(&sel["bytes"]),
                &mut self.rng,
            )
            .map(|c| c.to_bytes().to_vec())
            .unwrap_or_default()
    }

    pub fn challenge(&mut self, ch: &[u8]) -> Value {
        self.feed(json!({"type": "challenge", "payload": hexs(ch)}))
    }

    pub fn case(self, id: &str, comment: &str, reqs: &[&str], end: Value) -> Case {
        self.rec.case(id, comment, reqs, end)
    }
}

/// Every guest scenario.
pub fn cases(k: &Keys) -> Vec<Case> {
    let mut out = Vec::new();
    let none = json!({});
    {
        let mut g = G::new(k, none.clone());
        g.grant();
        g.start(0x1234);
        let ch = g.challenge_from_lock();
        let resp = g.challenge(&ch);
        let r = g
            .lock
            .handle_response(UnixMillis(g.t), ConnId(1), &unhex(&resp["bytes"]));
        assert!(
            r.is_ok(),
            "generator: peer lock refused the guest's response: {r:?}"
        );
        g.feed(json!({"type": "write_result", "att_error": null}));
        out.push(g.case(
            "guest-unlock",
            "Request, grant, advertise, Select, verify the challenge, respond, learn the outcome.",
            &[
                "LK-KEY-1", "LK-FRM-1", "LK-GGR-1", "LK-GGR-2", "LK-GGR-3", "LK-GGR-4", "LK-GST-1",
                "LK-GST-2", "LK-GST-3", "LK-GST-4", "LK-GST-5",
            ],
            outcome("unlocked"),
        ));
    }
    {
        let mut g = G::new(k, none.clone());
        g.grant();
        g.start(0x1234);
        let ch = g.challenge_from_lock();
        g.challenge(&ch);
        g.feed(json!({"type": "write_result", "att_error": 0x87}));
        out.push(g.case(
            "guest-refused-by-lock",
            "The lock answers the response write with ATT error 0x87.",
            &["LK-GST-5"],
            json!({"outcome": "refused", "reason": "bad_response_mac"}),
        ));
    }
    {
        let mut g = G::new(k, none.clone());
        g.grant();
        g.start(0x0102);
        g.feed(json!({"type": "advertisement"}));
        g.at(30_000);
        g.feed(json!({"type": "advertisement"}));
        out.push(g.case(
            "guest-beacon-rotates",
            "The advertised beacon for the next step (new tag, new MAC).",
            &["LK-KEY-1"],
            outcome("beacon"),
        ));
    }
    {
        let mut g = G::new(k, none.clone());
        let gr = g.issue(600);
        let mut bad = gr.guest_grant;
        bad[5] ^= 1;
        g.grant_payload(&bad);
        out.push(g.case(
            "guest-ggr-1-wrong-guest",
            "A grant naming another guest.",
            &["LK-GGR-1"],
            rejected("wrong_guest"),
        ));
    }
    {
        let mut g = G::new(k, none.clone());
        let gr = g.grant();
        g.grant_payload(&gr.guest_grant);
        out.push(g.case(
            "guest-ggr-2-replayed-grant",
            "The same grant again answers no outstanding request.",
            &["LK-GGR-2"],
            rejected("unknown_request"),
        ));
    }
    {
        let mut g = G::new(k, none.clone());
        // A grant for guest 2's own request, delivered to guest 1 with guest 1's id patched in.
        let mut other =
            latchkey::Guest::new(latchkey::GuestConfig::new(GUEST_2, enrollment(K_ENR_2)))
                .expect("guest");
        let req = other.request_grant(UnixMillis(g.t), LOCK_A, 600, &mut g.rng);
        let gr = g
            .issuer
            .handle_request(UnixMillis(g.t), GUEST_2, &req, &mut g.rng)
            .expect("grant");
        let mut m = gr.guest_grant;
        m[2..18].copy_from_slice(&GUEST_1.0);
        g.grant_payload(&m);
        out.push(g.case(
            "guest-ggr-2-not-our-request",
            "A grant answering a request this guest never sent.",
            &["LK-GGR-2"],
            rejected("unknown_request"),
        ));
    }
    {
        let mut g = G::new(k, none.clone());
        let gr = g.issue(600);
        g.grant_payload(&flip(&gr.guest_grant, 130));
        out.push(g.case(
            "guest-ggr-3-bad-seal",
            "A grant whose ciphertext was altered.",
            &["LK-GGR-3"],
            rejected("bad_seal"),
        ));
    }
    {
        let mut g = G::new(k, none.clone());
        let gr = g.issue(600);
        g.grant_payload(&flip(&gr.guest_grant, 97));
        out.push(g.case(
            "guest-ggr-3-aad",
            "A grant whose not_after was altered (it is in the AAD).",
            &["LK-GGR-3"],
            rejected("bad_seal"),
        ));
    }
    {
        let mut g = G::new(k, none.clone());
        let gr = g.issue(60);
        g.at(61_000);
        g.grant_payload(&gr.guest_grant);
        out.push(g.case(
            "guest-ggr-4-expired",
            "A grant delivered after its not_after.",
            &["LK-GGR-4"],
            rejected("grant_expired"),
        ));
    }
    {
        let mut g = G::new(k, none.clone());
        g.grant();
        g.start(7);
        let ch = g.challenge_from_lock();
        g.challenge(&flip(&ch, 20));
        out.push(g.case(
            "guest-gst-1-session-mismatch",
            "A challenge naming another session.",
            &["LK-GST-1"],
            rejected("session_mismatch"),
        ));
    }
    {
        let mut g = G::new(k, none.clone());
        g.grant();
        g.start(7);
        let ch = g.challenge_from_lock();
        g.challenge(&flip(&ch, 30));
        out.push(g.case(
            "guest-gst-2-bad-lock-mac",
            "A challenge whose lock MAC does not verify: not our lock.",
            &["LK-GST-2"],
            rejected("bad_lock_mac"),
        ));
    }
    {
        let mut g = G::new(k, none.clone());
        g.grant();
        g.start(7);
        let ch = g.challenge_from_lock();
        g.challenge(&flip(&ch, 4));
        out.push(g.case(
            "guest-gst-2-nonce-covered",
            "A challenge whose nonce was altered.",
            &["LK-GST-2"],
            rejected("bad_lock_mac"),
        ));
    }
    {
        let mut g = G::new(k, none.clone());
        g.grant();
        g.start(7);
        let b = g.feed(json!({"type": "advertisement"}));
        let _ = g
            .lock
            .handle_beacon(UnixMillis(g.t), COMPANY, &unhex(&b["bytes"]), -50);
        let sel = g.feed(json!({"type": "select"}));
        // The peer lock's clock runs 31 s ahead.
        let ch = g
            .lock
            .handle_select(
                UnixMillis(g.t + 31_000),
                ConnId(1),
                &unhex(&sel["bytes"]),
                &mut g.rng,
            )
            .map(|c| c.to_bytes().to_vec())
            .unwrap_or_default();
        g.challenge(&ch);
        out.push(g.case(
            "guest-gst-3-lock-clock",
            "A valid challenge from a lock whose clock is 31 s ahead.",
            &["LK-GST-3"],
            rejected("clock_skew"),
        ));
    }
    {
        let mut g = G::new(k, none.clone());
        let gr = g.issue(20);
        g.grant_payload(&gr.guest_grant);
        g.start(7);
        let ch = g.challenge_from_lock();
        g.at(21_000);
        g.challenge(&ch);
        out.push(g.case(
            "guest-gst-4-expired",
            "The grant expired between Select and challenge.",
            &["LK-GST-4"],
            rejected("grant_expired"),
        ));
    }
    {
        let mut g = G::new(k, none.clone());
        g.grant();
        g.start(7);
        let ch = g.challenge_from_lock();
        g.challenge(&ch);
        g.challenge(&ch);
        out.push(g.case(
            "guest-gst-5-answered",
            "A second challenge after the response was sent.",
            &["LK-GST-5"],
            rejected("not_unlocking"),
        ));
    }
    {
        let mut g = G::new(k, none.clone());
        g.start(7);
        out.push(g.case(
            "guest-gst-5-no-grant",
            "Unlocking a lock without a grant.",
            &["LK-GST-5"],
            rejected("no_grant"),
        ));
    }
    {
        let mut g = G::new(k, none.clone());
        g.grant();
        g.feed(json!({"type": "select"}));
        out.push(g.case(
            "guest-gst-5-not-unlocking",
            "Select without an unlock attempt.",
            &["LK-GST-5"],
            rejected("not_unlocking"),
        ));
    }
    {
        let mut g = G::new(k, none.clone());
        g.grant();
        g.start(7);
        let ch = g.challenge_from_lock();
        g.challenge(&ch[..32]);
        out.push(g.case(
            "guest-frm-1-short-challenge",
            "A 32-byte challenge.",
            &["LK-FRM-1"],
            rejected("truncated"),
        ));
    }
    {
        let mut g = G::new(k, none.clone());
        g.grant();
        g.start(7);
        let mut ch = g.challenge_from_lock();
        ch[0] = 9;
        g.challenge(&ch);
        out.push(g.case(
            "guest-frm-2-challenge-version",
            "A challenge of version 9.",
            &["LK-FRM-2"],
            rejected("unsupported_version"),
        ));
    }
    {
        let mut g = G::new(k, none.clone());
        let gr = g.issue(600);
        g.grant_payload(&gr.lock_grant[..158]);
        out.push(g.case(
            "guest-frm-3-lock-grant",
            "The first 158 bytes of a LockGrant on the guest's topic.",
            &["LK-FRM-3"],
            rejected("wrong_type"),
        ));
    }
    let _ = GuestId::ZERO;
    out
}
