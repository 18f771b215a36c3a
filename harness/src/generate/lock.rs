//! Lock scenarios: the lock is the role under test; the generator plays issuer and guests.

use std::collections::BTreeSet;

use latchkey::issuer::IssuedGrant;
use latchkey::{Guest, GuestConfig, Issuer, IssuerConfig, LockId, UnixMillis};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use serde_json::{Value, json};

use super::kit::*;
use crate::model::Case;

/// The issuer and guests the lock talks to.
pub struct Peers {
    pub issuer: Issuer,
    pub guests: [Guest; 2],
    pub rng: ChaCha20Rng,
}

impl Peers {
    pub fn new(keys: &Keys, seed: u64) -> Self {
        let mut issuer =
            Issuer::new(IssuerConfig::new(keys.issuer.clone())).expect("issuer config");
        issuer.add_lock(LOCK_A, keys.lock_a.public_key());
        issuer.add_lock(LOCK_B, keys.lock_b.public_key());
        issuer.add_guest(
            GUEST_1,
            enrollment(K_ENR_1),
            BTreeSet::from([LOCK_A, LOCK_B]),
        );
        issuer.add_guest(GUEST_2, enrollment(K_ENR_2), BTreeSet::from([LOCK_A]));
        let mut g1 = GuestConfig::new(GUEST_1, enrollment(K_ENR_1));
        let mut g2 = GuestConfig::new(GUEST_2, enrollment(K_ENR_2));
        // The peers tolerate any lock clock: the lock's own checks are what is tested.
        g1.max_clock_skew_s = 300;
        g2.max_clock_skew_s = 300;
        Self {
            issuer,
            guests: [
                Guest::new(g1).expect("guest"),
                Guest::new(g2).expect("guest"),
            ],
            rng: ChaCha20Rng::seed_from_u64(seed),
        }
    }

    /// The issuer grants guest `g` a session at `lock`; the guest installs its half.
    pub fn issue(&mut self, t: u64, g: usize, lock: LockId, validity_s: u32) -> IssuedGrant {
        let now = UnixMillis(t);
        let id = if g == 0 { GUEST_1 } else { GUEST_2 };
        let req = self.guests[g].request_grant(now, lock, validity_s, &mut self.rng);
        let out = self
            .issuer
            .handle_request(now, id, &req, &mut self.rng)
            .expect("peer issuer grants");
        self.guests[g]
            .handle_grant(now, &out.guest_grant)
            .expect("peer guest installs");
        out
    }
}

pub fn config(tunables: Value) -> Value {
    json!({
        "lock_id": LOCK_A.to_string(),
        "company_id": COMPANY,
        "lock_key": "key:lock-a",
        "issuer_public_key": "pub:issuer",
        "tunables": tunables,
        "rng_seed": 1,
    })
}

/// A lock scenario under construction.
pub struct L<'k> {
    pub rec: Recorder<'k>,
    pub p: Peers,
    pub keys: &'k Keys,
    pub t: u64,
    nonce: u8,
}

impl<'k> L<'k> {
    pub fn new(keys: &'k Keys, tunables: Value) -> Self {
        Self {
            rec: Recorder::new(keys, "lock", config(tunables)),
            p: Peers::new(keys, 11),
            keys,
            t: T0,
            nonce: 0,
        }
    }

    pub fn at(&mut self, dt_ms: u64) -> &mut Self {
        self.t += dt_ms;
        self
    }

    pub fn feed(&mut self, input: Value) -> Value {
        self.rec.step(self.t, input)
    }

    pub fn message(&mut self, payload: &[u8]) -> Value {
        self.feed(json!({"type": "grant", "payload": hexs(payload)}))
    }

    pub fn grant(&mut self, g: usize) -> IssuedGrant {
        let gr = self.p.issue(self.t, g, LOCK_A, 3600);
        self.message(&gr.lock_grant);
        gr
    }

    /// The guest's current beacon (starting an attempt with `attempt` if none is running).
    pub fn beacon(&mut self, g: usize) -> Vec<u8> {
        let now = UnixMillis(self.t);
        if self.p.guests[g].advertisement(now).is_none() {
            self.p.guests[g]
                .start_unlock(now, LOCK_A, &mut self.p.rng)
                .expect("peer starts");
        }
        self.p.guests[g]
            .advertisement(now)
            .map(|b| b.to_vec())
            .unwrap_or_default()
    }

    pub fn hear_at(&mut self, b: &[u8], rssi: i64) -> Value {
        self.feed(
            json!({"type": "beacon", "company_id": COMPANY, "payload": hexs(b), "rssi": rssi}),
        )
    }

    pub fn hear(&mut self, b: &[u8]) -> Value {
        self.hear_at(b, NEAR)
    }

    pub fn select_raw(&mut self, conn: u64, payload: &[u8]) -> Value {
        self.nonce = self.nonce.wrapping_add(1);
        let nonce = [self.nonce; 12];
        self.feed(json!({"type": "select", "conn": conn, "payload": hexs(payload), "nonce": hexs(&nonce)}))
    }

    pub fn select(&mut self, g: usize, conn: u64) -> Value {
        let sel = self.p.guests[g]
            .select(UnixMillis(self.t))
            .expect("peer select");
        self.select_raw(conn, &sel)
    }

    pub fn response_for(&mut self, g: usize, challenge: &Value) -> Vec<u8> {
        let ch = unhex(&challenge["bytes"]);
        self.p.guests[g]
            .handle_challenge(UnixMillis(self.t), &ch)
            .map(|r| r.to_vec())
            .unwrap_or_default()
    }

    pub fn respond_raw(&mut self, conn: u64, payload: &[u8]) -> Value {
        self.feed(json!({"type": "response", "conn": conn, "payload": hexs(payload)}))
    }

    pub fn respond(&mut self, g: usize, conn: u64, challenge: &Value) -> Value {
        let r = self.response_for(g, challenge);
        self.respond_raw(conn, &r)
    }

    /// Beacon, select, challenge, response for guest `g` on `conn`.
    pub fn unlock(&mut self, g: usize, conn: u64) -> Value {
        let b = self.beacon(g);
        self.hear(&b);
        self.at(150);
        let ch = self.select(g, conn);
        self.at(60);
        let out = self.respond(g, conn, &ch);
        let _ = self.p.guests[g].handle_write_result(Ok(()));
        out
    }

    /// Beacon, Select, valid Response of a forged session on `conn`, at the current time.
    pub fn forge_unlock(&mut self, f: &Forge, attempt: u16, conn: u64) -> Value {
        let r = self.forge_response(f, attempt, conn);
        self.respond_raw(conn, &r)
    }

    /// The same with the Response's MAC broken: a failed handshake (LK-LCK-1).
    pub fn forge_fail(&mut self, f: &Forge, attempt: u16, conn: u64) -> Value {
        let r = self.forge_response(f, attempt, conn);
        self.respond_raw(conn, &flip(&r, 19))
    }

    fn forge_response(&mut self, f: &Forge, attempt: u16, conn: u64) -> [u8; 20] {
        self.hear(&f.beacon(self.t, attempt));
        let ch = self.select_raw(conn, &f.select(self.t, attempt));
        f.response(
            &unhex(&ch["bytes"]),
            self.t,
            attempt,
            (self.t / 1000) as u32,
        )
    }

    pub fn install_forge(&mut self, f: &Forge) -> Value {
        let g = f.grant(&mut self.p.rng, self.keys);
        self.message(&g)
    }

    pub fn case(self, id: &str, comment: &str, reqs: &[&str], end: Value) -> Case {
        self.rec.case(id, comment, reqs, end)
    }
}

/// A lock with the `tunables` of the lockout cases whose guest 1 (forged session 1) has just
/// failed `failures` handshakes (attempts 1, 2, … on connection 1).
fn failing<'k>(k: &'k Keys, tunables: &Value, failures: u16) -> (L<'k>, Forge) {
    let mut l = L::new(k, tunables.clone());
    let f = Forge::new(1, l.t);
    l.install_forge(&f);
    for attempt in 1..=failures {
        l.forge_fail(&f, attempt, 1);
    }
    (l, f)
}

/// Every lock scenario.
pub fn cases(k: &Keys) -> Vec<Case> {
    let mut out = Vec::new();
    let none = json!({});

    // ---- the accepting path, which covers every lock requirement's accepting side
    {
        let mut l = L::new(k, none.clone());
        l.grant(0);
        l.unlock(0, 1);
        out.push(l.case(
            "lock-unlock",
            "Grant installs; the beacon arms; Select yields a challenge; the response unlocks.",
            &[
                "LK-KEY-1", "LK-FRM-1", "LK-FRM-2", "LK-FRM-3", "LK-FRM-4", "LK-ADV-1", "LK-ADV-2",
                "LK-ADV-3", "LK-ADV-4", "LK-ADV-5", "LK-ADV-6", "LK-ADV-7", "LK-ADV-8", "LK-ADV-9",
                "LK-SEL-1", "LK-SEL-2", "LK-SEL-3", "LK-SEL-4", "LK-RSP-1", "LK-RSP-2", "LK-RSP-3",
                "LK-RSP-4", "LK-RSP-5", "LK-RSP-6", "LK-RSP-7", "LK-GRT-1", "LK-GRT-2", "LK-GRT-3",
                "LK-GRT-4", "LK-GRT-5", "LK-GRT-6", "LK-GRT-7", "LK-GRT-8", "LK-GRT-9",
            ],
            outcome("unlock"),
        ));
    }
    {
        let mut l = L::new(k, none.clone());
        l.grant(0);
        l.grant(1);
        l.unlock(0, 1);
        l.at(500);
        l.unlock(1, 2);
        out.push(l.case(
            "lock-two-guests",
            "Two guests with their own sessions unlock in turn.",
            &["LK-ADV-3", "LK-RSP-6"],
            outcome("unlock"),
        ));
    }
    {
        let mut l = L::new(k, none.clone());
        l.grant(0);
        let b = l.beacon(0);
        l.hear(&b);
        l.hear(&b);
        out.push(l.case(
            "lock-adv-7-already-pending",
            "The same beacon again while its authentication is pending changes nothing.",
            &["LK-ADV-7"],
            outcome("already_pending"),
        ));
    }
    {
        let mut l = L::new(k, none.clone());
        let g = l.grant(0);
        l.message(&g.lock_grant);
        out.push(l.case(
            "lock-grt-already-installed",
            "A QoS 1 redelivery of an installed grant is idempotent.",
            &["LK-GRT-8"],
            outcome("already_installed"),
        ));
    }

    // ---- frames
    {
        let mut l = L::new(k, none.clone());
        l.grant(0);
        let b = l.beacon(0);
        l.hear(&b[..22]);
        out.push(l.case(
            "lock-frm-1-truncated-beacon",
            "A 22-byte beacon is refused.",
            &["LK-FRM-1"],
            rejected("truncated"),
        ));
    }
    {
        let mut l = L::new(k, none.clone());
        l.grant(0);
        let mut b = l.beacon(0);
        b.push(0);
        l.hear(&b);
        out.push(l.case(
            "lock-frm-1-trailing-beacon",
            "A 24-byte beacon is refused.",
            &["LK-FRM-1"],
            rejected("trailing_bytes"),
        ));
    }
    {
        let mut l = L::new(k, none.clone());
        let g = l.p.issue(l.t, 0, LOCK_A, 600);
        let mut m = g.lock_grant.clone();
        m.push(0);
        l.message(&m);
        out.push(l.case(
            "lock-frm-1-trailing-grant",
            "A grant with a byte after the signature is refused.",
            &["LK-FRM-1"],
            rejected("trailing_bytes"),
        ));
    }
    {
        let mut l = L::new(k, none.clone());
        l.grant(0);
        let mut b = l.beacon(0);
        b[0] = 2;
        l.hear(&b);
        out.push(l.case(
            "lock-frm-2-beacon-version",
            "A beacon of version 2 is refused.",
            &["LK-FRM-2"],
            rejected("unsupported_version"),
        ));
    }
    {
        let mut l = L::new(k, none.clone());
        let g = l.p.issue(l.t, 0, LOCK_A, 600);
        l.message(&g.guest_grant);
        out.push(l.case(
            "lock-frm-3-wrong-type",
            "A GuestGrant on the lock's grants topic is refused.",
            &["LK-FRM-3"],
            rejected("wrong_type"),
        ));
    }
    {
        let mut l = L::new(k, none.clone());
        let g = l.p.issue(l.t, 0, LOCK_A, 600);
        let mut m = g.lock_grant.clone();
        m[84..86].copy_from_slice(&255u16.to_be_bytes());
        l.message(&m);
        out.push(l.case(
            "lock-frm-4-wrapped-len",
            "A wrapped_len of 255 is out of range.",
            &["LK-FRM-4"],
            rejected("field_out_of_range"),
        ));
    }

    {
        let mut l = L::new(k, none.clone());
        let f = Forge::new(9, l.t);
        l.install_forge(&f);
        // The same session key and session, but subkeys derived for another lock id.
        let mut other = Forge::new(9, l.t);
        other.header.lock_id = LOCK_B;
        l.hear(&other.beacon(l.t, 1));
        out.push(l.case(
            "lock-key-1-bound-to-lock",
            "Subkeys are bound to the lock id: a beacon keyed for lock B is unknown at lock A.",
            &["LK-KEY-1"],
            rejected("unknown_tag"),
        ));
    }

    // ---- beacons
    {
        let mut l = L::new(k, none.clone());
        l.grant(0);
        let b = l.beacon(0);
        l.feed(json!({"type": "beacon", "company_id": 0x004C, "payload": hexs(&b), "rssi": NEAR}));
        out.push(l.case(
            "lock-adv-1-foreign-company",
            "Manufacturer data of another company is noise.",
            &["LK-ADV-1"],
            rejected("foreign_company"),
        ));
    }
    {
        let mut l = L::new(k, none.clone());
        l.grant(0);
        let b = l.beacon(0);
        l.at(60_000);
        l.hear(&b);
        out.push(l.case(
            "lock-adv-2-stale-step",
            "A beacon two steps old is stale.",
            &["LK-ADV-2"],
            rejected("stale_step"),
        ));
    }
    {
        let mut l = L::new(k, none.clone());
        l.grant(0);
        let b = l.beacon(0);
        l.at(30_000);
        l.hear(&b);
        out.push(l.case(
            "lock-adv-2-previous-step",
            "A beacon one step old is inside the window.",
            &["LK-ADV-2"],
            outcome("armed"),
        ));
    }
    {
        let mut l = L::new(k, none.clone());
        let f = Forge::new(3, l.t);
        l.install_forge(&f);
        let b = f.beacon(l.t + 60_000, 7);
        l.hear(&b);
        out.push(l.case(
            "lock-adv-2-future-step",
            "A beacon two steps ahead is refused.",
            &["LK-ADV-2"],
            rejected("future_step"),
        ));
    }
    {
        let mut l = L::new(k, none.clone());
        let f = Forge::new(3, l.t);
        l.install_forge(&f);
        let b = f.beacon(l.t + 30_000, 7);
        l.hear(&b);
        out.push(l.case(
            "lock-adv-2-next-step",
            "A beacon one step ahead is inside the window.",
            &["LK-ADV-2"],
            outcome("armed"),
        ));
    }
    {
        let mut l = L::new(k, none.clone());
        l.grant(0);
        let b = l.beacon(0);
        l.hear(&flip(&b, 6));
        out.push(l.case(
            "lock-adv-3-unknown-tag",
            "A tag no session has for that step.",
            &["LK-ADV-3"],
            rejected("unknown_tag"),
        ));
    }
    {
        let mut l = L::new(k, none.clone());
        l.grant(0);
        let stranger = Forge::new(0x33, l.t);
        let b = stranger.beacon(l.t, 1);
        l.hear(&b);
        out.push(l.case(
            "lock-adv-3-uninstalled-session",
            "A well-formed beacon of a session this lock never got.",
            &["LK-ADV-3"],
            rejected("unknown_tag"),
        ));
    }
    {
        let mut l = L::new(k, none.clone());
        l.grant(0);
        let b = l.beacon(0);
        l.hear_at(&b, -71);
        out.push(l.case(
            "lock-adv-4-rssi-low",
            "−71 dBm is below the −70 dBm threshold.",
            &["LK-ADV-4"],
            rejected("rssi_too_low"),
        ));
    }
    {
        let mut l = L::new(k, none.clone());
        l.grant(0);
        let b = l.beacon(0);
        l.hear_at(&b, 127);
        out.push(l.case(
            "lock-adv-4-rssi-unavailable",
            "HCI's 127 means 'not available' and never passes.",
            &["LK-ADV-4"],
            rejected("rssi_too_low"),
        ));
    }
    {
        let mut l = L::new(k, none.clone());
        l.grant(0);
        let b = l.beacon(0);
        l.hear_at(&b, -70);
        out.push(l.case(
            "lock-adv-4-rssi-at-threshold",
            "Exactly the threshold passes.",
            &["LK-ADV-4"],
            outcome("armed"),
        ));
    }
    {
        let mut l = L::new(k, none.clone());
        l.grant(0);
        let b = l.beacon(0);
        l.hear(&flip(&b, 22));
        out.push(l.case(
            "lock-adv-5-bad-mac",
            "A beacon whose CMAC does not verify.",
            &["LK-ADV-5"],
            rejected("bad_beacon_mac"),
        ));
    }
    {
        let mut l = L::new(k, none.clone());
        l.grant(0);
        let b = l.beacon(0);
        l.hear(&flip(&b, 14));
        out.push(l.case(
            "lock-adv-5-attempt-covered",
            "The attempt field is covered by the CMAC.",
            &["LK-ADV-5"],
            rejected("bad_beacon_mac"),
        ));
    }
    {
        let mut l = L::new(k, none.clone());
        let mut f = Forge::new(4, l.t);
        f.header.not_before = l.t / 1000 + 120;
        l.install_forge(&f);
        let b = f.beacon(l.t, 1);
        l.hear(&b);
        out.push(l.case(
            "lock-adv-6-not-yet-valid",
            "A session whose validity starts in two minutes.",
            &["LK-ADV-6"],
            rejected("session_not_yet_valid"),
        ));
    }
    {
        let mut l = L::new(k, none.clone());
        let mut f = Forge::new(5, l.t);
        f.header.not_after = l.t / 1000 + 5;
        l.install_forge(&f);
        l.at(6_000);
        let b = f.beacon(l.t, 1);
        l.hear(&b);
        out.push(l.case(
            "lock-adv-6-expired",
            "A session that expired a second ago (no timer ran).",
            &["LK-ADV-6"],
            rejected("session_expired"),
        ));
    }
    {
        let mut l = L::new(k, none.clone());
        l.grant(0);
        let b = l.beacon(0);
        l.hear(&b);
        l.select(0, 1);
        l.hear(&b);
        out.push(l.case(
            "lock-adv-7-replay",
            "A beacon whose authentication was consumed cannot arm again.",
            &["LK-ADV-7"],
            rejected("replay"),
        ));
    }
    {
        let mut l = L::new(k, json!({"max_pending": 1}));
        let (f1, f2) = (Forge::new(1, l.t), Forge::new(2, l.t));
        l.install_forge(&f1);
        l.install_forge(&f2);
        l.hear(&f1.beacon(l.t, 1));
        l.hear(&f2.beacon(l.t, 1));
        out.push(l.case(
            "lock-adv-8-pending-cap",
            "With max_pending = 1, a second session cannot arm.",
            &["LK-ADV-8"],
            rejected("pending_cap_reached"),
        ));
    }
    {
        let mut l = L::new(k, json!({"max_pending": 1}));
        let f1 = Forge::new(1, l.t);
        l.install_forge(&f1);
        l.hear(&f1.beacon(l.t, 1));
        l.hear(&f1.beacon(l.t, 2));
        out.push(l.case(
            "lock-adv-8-own-replacement",
            "A session's newer attempt replaces its own pending entry, cap or not.",
            &["LK-ADV-8"],
            outcome("armed"),
        ));
    }
    {
        let mut l = L::new(k, json!({"replay_capacity": 16}));
        let f = Forge::new(1, l.t);
        l.install_forge(&f);
        for a in 0..17u16 {
            let b = f.beacon(l.t, a);
            l.hear(&b);
        }
        out.push(l.case(
            "lock-adv-9-replay-cache-full",
            "Seventeen attempts in one step overflow a 16-entry replay cache.",
            &["LK-ADV-9"],
            rejected("replay_cache_full"),
        ));
    }
    {
        let mut l = L::new(k, json!({"replay_capacity": 16}));
        let f = Forge::new(1, l.t);
        l.install_forge(&f);
        for a in 0..16u16 {
            let b = f.beacon(l.t, a);
            l.hear(&b);
        }
        l.at(60_000);
        l.feed(json!({"type": "timeout"}));
        let b = f.beacon(l.t, 99);
        l.hear(&b);
        out.push(l.case(
            "lock-adv-9-entries-leave-with-window",
            "Replay entries leave when their step leaves the window.",
            &["LK-ADV-9"],
            outcome("armed"),
        ));
    }

    // ---- select / challenge
    {
        let mut l = L::new(k, none.clone());
        l.grant(0);
        l.beacon(0);
        l.select(0, 1);
        out.push(l.case(
            "lock-sel-1-no-pending",
            "Select before any beacon was heard.",
            &["LK-SEL-1"],
            rejected("no_pending_auth"),
        ));
    }
    {
        let mut l = L::new(k, none.clone());
        l.grant(0);
        let b = l.beacon(0);
        l.hear(&b);
        let mut sel = l.p.guests[0]
            .select(UnixMillis(l.t))
            .expect("select")
            .to_vec();
        sel[10] ^= 1;
        l.select_raw(1, &sel);
        out.push(l.case(
            "lock-sel-1-wrong-attempt",
            "Select naming another attempt.",
            &["LK-SEL-1"],
            rejected("no_pending_auth"),
        ));
    }
    {
        let mut l = L::new(k, none.clone());
        l.grant(0);
        let b = l.beacon(0);
        l.hear(&b);
        l.at(10_001);
        l.select(0, 1);
        out.push(l.case(
            "lock-sel-2-window-expired",
            "Select 10.001 s after the beacon (window 10 s).",
            &["LK-SEL-2"],
            rejected("connection_window_expired"),
        ));
    }
    {
        let mut l = L::new(k, none.clone());
        l.grant(0);
        let b = l.beacon(0);
        l.hear(&b);
        l.at(10_000);
        l.select(0, 1);
        out.push(l.case(
            "lock-sel-2-window-edge",
            "Select exactly 10 s after the beacon.",
            &["LK-SEL-2"],
            outcome("challenge"),
        ));
    }
    {
        let mut l = L::new(k, json!({"max_challenges": 1}));
        let (f1, f2) = (Forge::new(1, l.t), Forge::new(2, l.t));
        l.install_forge(&f1);
        l.install_forge(&f2);
        l.hear(&f1.beacon(l.t, 1));
        l.hear(&f2.beacon(l.t, 1));
        l.select_raw(1, &f1.select(l.t, 1));
        l.select_raw(2, &f2.select(l.t, 1));
        out.push(l.case(
            "lock-sel-3-challenge-cap",
            "With max_challenges = 1 a second connection's Select is refused.",
            &["LK-SEL-3"],
            rejected("challenge_cap_reached"),
        ));
    }
    {
        let mut l = L::new(k, json!({"max_challenges": 1}));
        let (f1, f2) = (Forge::new(1, l.t), Forge::new(2, l.t));
        l.install_forge(&f1);
        l.install_forge(&f2);
        l.hear(&f1.beacon(l.t, 1));
        l.hear(&f2.beacon(l.t, 1));
        l.select_raw(1, &f1.select(l.t, 1));
        l.feed(json!({"type": "disconnect", "conn": 1}));
        l.select_raw(2, &f2.select(l.t, 1));
        out.push(l.case(
            "lock-sel-3-cap-freed-by-disconnect",
            "A disconnect frees its challenge slot.",
            &["LK-SEL-3"],
            outcome("challenge"),
        ));
    }
    {
        let mut l = L::new(k, none.clone());
        l.grant(0);
        let b = l.beacon(0);
        l.hear(&b);
        let sel = l.p.guests[0]
            .select(UnixMillis(l.t))
            .expect("select")
            .to_vec();
        l.select_raw(1, &sel);
        l.select_raw(2, &sel);
        out.push(l.case(
            "lock-sel-4-consumed",
            "A pending authentication yields one challenge only.",
            &["LK-SEL-4"],
            rejected("no_pending_auth"),
        ));
    }

    // ---- responses
    {
        let mut l = L::new(k, none.clone());
        l.grant(0);
        let b = l.beacon(0);
        l.hear(&b);
        let ch = l.select(0, 1);
        let r = l.response_for(0, &ch);
        l.respond_raw(2, &r);
        out.push(l.case(
            "lock-rsp-1-other-connection",
            "A response on a connection without a challenge.",
            &["LK-RSP-1"],
            rejected("no_challenge"),
        ));
    }
    {
        let mut l = L::new(k, none.clone());
        l.grant(0);
        let b = l.beacon(0);
        l.hear(&b);
        let ch = l.select(0, 1);
        let r = l.response_for(0, &ch);
        l.respond_raw(1, &r);
        l.respond_raw(1, &r);
        out.push(l.case(
            "lock-rsp-2-reused",
            "The same valid response again: the challenge is single use.",
            &["LK-RSP-2"],
            rejected("no_challenge"),
        ));
    }
    {
        let mut l = L::new(k, none.clone());
        l.grant(0);
        let b = l.beacon(0);
        l.hear(&b);
        let ch = l.select(0, 1);
        let r = l.response_for(0, &ch);
        l.respond_raw(1, &flip(&r, 19));
        l.respond_raw(1, &r);
        out.push(l.case(
            "lock-rsp-2-no-second-guess",
            "A wrong answer burns the challenge; the right one after it is refused.",
            &["LK-RSP-2"],
            rejected("no_challenge"),
        ));
    }
    {
        let mut l = L::new(k, none.clone());
        l.grant(0);
        let b = l.beacon(0);
        l.hear(&b);
        let ch = l.select(0, 1);
        let r = l.response_for(0, &ch);
        l.at(2_001);
        l.respond_raw(1, &r);
        out.push(l.case(
            "lock-rsp-3-late",
            "A response 2.001 s after the challenge (budget 2 s).",
            &["LK-RSP-3"],
            rejected("late_response"),
        ));
    }
    {
        let mut l = L::new(k, none.clone());
        l.grant(0);
        let b = l.beacon(0);
        l.hear(&b);
        let ch = l.select(0, 1);
        let r = l.response_for(0, &ch);
        l.at(2_000);
        l.respond_raw(1, &r);
        out.push(l.case(
            "lock-rsp-3-budget-edge",
            "A response exactly at the budget.",
            &["LK-RSP-3"],
            outcome("unlock"),
        ));
    }
    {
        let mut l = L::new(k, none.clone());
        l.grant(0);
        let b = l.beacon(0);
        l.hear(&b);
        let ch = l.select(0, 1);
        let mut r = l.response_for(0, &ch);
        r[7] ^= 1;
        l.respond_raw(1, &r);
        out.push(l.case(
            "lock-rsp-4-step-mismatch",
            "A response naming another step than the arming beacon's.",
            &["LK-RSP-4"],
            rejected("step_mismatch"),
        ));
    }
    {
        let mut l = L::new(k, none.clone());
        let f = Forge::new(1, l.t);
        l.install_forge(&f);
        l.hear(&f.beacon(l.t, 1));
        let ch = l.select_raw(1, &f.select(l.t, 1));
        let r = f.response(&unhex(&ch["bytes"]), l.t, 1, (l.t / 1000) as u32 + 31);
        l.respond_raw(1, &r);
        out.push(l.case(
            "lock-rsp-5-clock-skew",
            "A correctly MACed response whose phone time is 31 s ahead.",
            &["LK-RSP-5"],
            rejected("clock_skew"),
        ));
    }
    {
        let mut l = L::new(k, none.clone());
        let f = Forge::new(1, l.t);
        l.install_forge(&f);
        l.hear(&f.beacon(l.t, 1));
        let ch = l.select_raw(1, &f.select(l.t, 1));
        let r = f.response(&unhex(&ch["bytes"]), l.t, 1, (l.t / 1000) as u32 - 30);
        l.respond_raw(1, &r);
        out.push(l.case(
            "lock-rsp-5-skew-edge",
            "A phone clock exactly 30 s behind is tolerated.",
            &["LK-RSP-5"],
            outcome("unlock"),
        ));
    }
    {
        let mut l = L::new(k, none.clone());
        l.grant(0);
        let b = l.beacon(0);
        l.hear(&b);
        let ch = l.select(0, 1);
        let r = l.response_for(0, &ch);
        l.respond_raw(1, &flip(&r, 10));
        out.push(l.case(
            "lock-rsp-6-bad-mac",
            "A response whose MAC does not verify.",
            &["LK-RSP-6"],
            rejected("bad_response_mac"),
        ));
    }
    {
        let mut l = L::new(k, none.clone());
        let g = l.grant(0);
        let b = l.beacon(0);
        l.hear(&b);
        let ch = l.select(0, 1);
        let rev =
            l.p.issuer
                .revoke_grant(UnixMillis(l.t), g.grant_id, &mut l.p.rng)
                .expect("revocation");
        l.message(&rev.payload);
        l.respond(0, 1, &ch);
        out.push(l.case(
            "lock-rsp-7-revoked",
            "Revoked between challenge and response.",
            &["LK-RSP-7", "LK-REV-3"],
            rejected("session_revoked"),
        ));
    }
    {
        let mut l = L::new(k, none.clone());
        let mut f = Forge::new(1, l.t);
        f.header.not_after = l.t / 1000 + 1;
        l.install_forge(&f);
        l.hear(&f.beacon(l.t, 1));
        let ch = l.select_raw(1, &f.select(l.t, 1));
        let beacon_t = l.t;
        l.at(1_500);
        let r = f.response(&unhex(&ch["bytes"]), beacon_t, 1, (l.t / 1000) as u32);
        l.respond_raw(1, &r);
        out.push(l.case(
            "lock-rsp-7-expired",
            "Expired between challenge and response.",
            &["LK-RSP-7"],
            rejected("session_expired"),
        ));
    }

    // ---- grants
    {
        let mut l = L::new(k, none.clone());
        let mut f = Forge::new(1, l.t);
        f.header.lock_id = LOCK_B;
        l.install_forge(&f);
        out.push(l.case(
            "lock-grt-1-wrong-lock",
            "A grant for another lock.",
            &["LK-GRT-1"],
            rejected("wrong_lock"),
        ));
    }
    {
        let mut l = L::new(k, none.clone());
        let g = l.p.issue(l.t, 0, LOCK_A, 600);
        l.message(&flip(&g.lock_grant, 60));
        out.push(l.case(
            "lock-grt-2-tampered",
            "not_before changed after signing.",
            &["LK-GRT-2"],
            rejected("bad_signature"),
        ));
    }
    {
        let mut l = L::new(k, none.clone());
        let f = Forge::new(1, l.t);
        let g = f.grant_with(
            &mut l.p.rng,
            &k.rogue,
            &k.lock_a.public_key(),
            &f.header.to_bytes(),
        );
        l.message(&g);
        out.push(l.case(
            "lock-grt-2-rogue-issuer",
            "A grant signed by a key that is not the issuer's.",
            &["LK-GRT-2"],
            rejected("bad_signature"),
        ));
    }
    {
        let mut l = L::new(k, none.clone());
        let f = Forge::new(1, l.t);
        let g = f.grant_with(
            &mut l.p.rng,
            &k.issuer,
            &k.lock_a.public_key(),
            b"another header",
        );
        l.message(&g);
        out.push(l.case(
            "lock-grt-3-oaep-label",
            "Signed, but the key was wrapped under another OAEP label.",
            &["LK-GRT-3"],
            rejected("unwrap_failed"),
        ));
    }
    {
        let mut l = L::new(k, none.clone());
        let f = Forge::new(1, l.t);
        let g = f.grant_with(
            &mut l.p.rng,
            &k.issuer,
            &k.lock_b.public_key(),
            &f.header.to_bytes(),
        );
        l.message(&g);
        out.push(l.case(
            "lock-grt-3-other-lock-key",
            "Signed, but wrapped to another lock's key.",
            &["LK-GRT-3"],
            rejected("unwrap_failed"),
        ));
    }
    {
        let mut l = L::new(k, none.clone());
        let mut f = Forge::new(1, l.t);
        f.header.not_before = f.header.not_after;
        l.install_forge(&f);
        out.push(l.case(
            "lock-grt-4-empty-validity",
            "not_before = not_after.",
            &["LK-GRT-4"],
            rejected("invalid_validity"),
        ));
    }
    {
        let mut l = L::new(k, none.clone());
        let mut f = Forge::new(1, l.t);
        f.header.not_before = f.header.not_after - 86_401;
        l.install_forge(&f);
        out.push(l.case(
            "lock-grt-4-too-long",
            "A validity of one day and a second.",
            &["LK-GRT-4"],
            rejected("invalid_validity"),
        ));
    }
    {
        let mut l = L::new(k, none.clone());
        let mut f = Forge::new(1, l.t);
        f.header.not_before = f.header.not_after - 86_400;
        l.install_forge(&f);
        out.push(l.case(
            "lock-grt-4-one-day",
            "A validity of exactly one day.",
            &["LK-GRT-4"],
            outcome("installed"),
        ));
    }
    {
        let mut l = L::new(k, none.clone());
        let mut f = Forge::new(1, l.t);
        f.header.not_after = l.t / 1000;
        l.install_forge(&f);
        out.push(l.case(
            "lock-grt-5-expired",
            "not_after = now.",
            &["LK-GRT-5"],
            rejected("grant_expired"),
        ));
    }
    {
        let mut l = L::new(k, none.clone());
        let mut f = Forge::new(1, l.t);
        f.header.issued_at = l.t / 1000 + 31;
        l.install_forge(&f);
        out.push(l.case(
            "lock-grt-6-issued-in-future",
            "issued_at 31 s ahead of the lock (skew 30 s).",
            &["LK-GRT-6"],
            rejected("issued_in_future"),
        ));
    }
    {
        let mut l = L::new(k, none.clone());
        let mut f = Forge::new(1, l.t);
        f.header.issued_at = l.t / 1000 + 30;
        l.install_forge(&f);
        out.push(l.case(
            "lock-grt-6-skew-edge",
            "issued_at 30 s ahead is tolerated.",
            &["LK-GRT-6"],
            outcome("installed"),
        ));
    }
    {
        let mut l = L::new(k, none.clone());
        let f = Forge::new(1, l.t);
        let rev = f.revocation(&mut l.p.rng, &k.issuer, l.t / 1000);
        l.message(&rev);
        l.install_forge(&f);
        out.push(l.case(
            "lock-grt-7-revoked-first",
            "The revocation arrives before its grant (MQTT reordering).",
            &["LK-GRT-7"],
            rejected("grant_revoked"),
        ));
    }
    {
        let mut l = L::new(k, none.clone());
        let f1 = Forge::new(1, l.t);
        let mut f2 = Forge::new(2, l.t);
        f2.header.session_id = f1.header.session_id;
        l.install_forge(&f1);
        l.install_forge(&f2);
        out.push(l.case(
            "lock-grt-8-session-collision",
            "Another grant with an installed session id.",
            &["LK-GRT-8"],
            rejected("session_id_collision"),
        ));
    }
    {
        let mut l = L::new(k, json!({"max_sessions": 1}));
        let (f1, f2) = (Forge::new(1, l.t), Forge::new(2, l.t));
        l.install_forge(&f1);
        l.install_forge(&f2);
        out.push(l.case(
            "lock-grt-9-session-cap",
            "With max_sessions = 1 a second session is refused.",
            &["LK-GRT-9"],
            rejected("session_cap_reached"),
        ));
    }
    {
        let mut l = L::new(k, json!({"max_sessions": 1}));
        let mut f1 = Forge::new(1, l.t);
        f1.header.not_after = l.t / 1000 + 60;
        let f2 = Forge::new(2, l.t);
        l.install_forge(&f1);
        l.at(61_000);
        l.install_forge(&f2);
        out.push(l.case(
            "lock-grt-9-expired-make-room",
            "An expired session makes room at the cap.",
            &["LK-GRT-9"],
            outcome("installed"),
        ));
    }

    // ---- revocations
    {
        let mut l = L::new(k, none.clone());
        let g = l.grant(0);
        let rev =
            l.p.issuer
                .revoke_grant(UnixMillis(l.t), g.grant_id, &mut l.p.rng)
                .expect("revocation");
        l.message(&rev.payload);
        out.push(l.case(
            "lock-rev-applied",
            "A valid revocation removes the live session.",
            &["LK-REV-1", "LK-REV-2", "LK-REV-3", "LK-REV-4"],
            json!({"outcome": "revoked", "session_removed": true}),
        ));
    }
    {
        let mut l = L::new(k, none.clone());
        l.grant(0);
        let b = l.beacon(0);
        l.hear(&b);
        let g = l.p.issuer.live_grants_of(&GUEST_1, None)[0];
        let rev =
            l.p.issuer
                .revoke_grant(UnixMillis(l.t), g, &mut l.p.rng)
                .expect("revocation");
        l.message(&rev.payload);
        let sel = l.p.guests[0]
            .select(UnixMillis(l.t))
            .expect("select")
            .to_vec();
        l.select_raw(1, &sel);
        out.push(l.case(
            "lock-rev-3-pending-dropped",
            "A revocation drops the session's pending authentication at once.",
            &["LK-REV-3"],
            rejected("no_pending_auth"),
        ));
    }
    {
        let mut l = L::new(k, none.clone());
        let mut f = Forge::new(1, l.t);
        f.header.lock_id = LOCK_B;
        let rev = f.revocation(&mut l.p.rng, &k.issuer, l.t / 1000);
        l.message(&rev);
        out.push(l.case(
            "lock-rev-1-wrong-lock",
            "A revocation for another lock.",
            &["LK-REV-1"],
            rejected("wrong_lock"),
        ));
    }
    {
        let mut l = L::new(k, none.clone());
        let f = Forge::new(1, l.t);
        let rev = f.revocation(&mut l.p.rng, &k.rogue, l.t / 1000);
        l.message(&rev);
        out.push(l.case(
            "lock-rev-2-rogue",
            "A revocation signed by a key that is not the issuer's.",
            &["LK-REV-2"],
            rejected("bad_signature"),
        ));
    }
    {
        let mut l = L::new(k, json!({"revocation_capacity": 16}));
        let forges: Vec<Forge> = (1..=17u8)
            .map(|i| {
                let mut f = Forge::new(i, l.t);
                f.header.issued_at = l.t / 1000 - 30;
                f
            })
            .collect();
        for (i, f) in forges.iter().enumerate() {
            let rev = f.revocation(&mut l.p.rng, &k.issuer, l.t / 1000 - 20 + i as u64);
            l.message(&rev);
        }
        l.install_forge(&forges[0]);
        out.push(l.case(
            "lock-rev-4-floor",
            "The 17th revocation evicts the oldest; its grant is refused by the floor.",
            &["LK-REV-4"],
            rejected("grant_revoked"),
        ));
    }
    {
        let mut l = L::new(k, json!({"revocation_capacity": 16}));
        let forges: Vec<Forge> = (1..=17u8).map(|i| Forge::new(i, l.t)).collect();
        for (i, f) in forges.iter().enumerate() {
            let rev = f.revocation(&mut l.p.rng, &k.issuer, l.t / 1000 - 20 + i as u64);
            l.message(&rev);
        }
        let mut fresh = Forge::new(100, l.t);
        fresh.header.issued_at = l.t / 1000 - 19;
        l.install_forge(&fresh);
        out.push(l.case(
            "lock-rev-4-after-floor",
            "A grant issued after the floor installs.",
            &["LK-REV-4"],
            outcome("installed"),
        ));
    }

    // ---- time
    {
        let mut l = L::new(k, none.clone());
        l.grant(0);
        let b = l.beacon(0);
        l.hear(&b);
        let ch = l.select(0, 1);
        let r = l.response_for(0, &ch);
        let t = l.t;
        l.at(2_500);
        l.feed(json!({"type": "timeout"}));
        l.t = t + 100;
        l.respond_raw(1, &r);
        out.push(l.case(
            "lock-tim-1-clock-back",
            "After the lock saw t+2.5 s its clock jumps back: the budget is not extended.",
            &["LK-TIM-1"],
            rejected("no_challenge"),
        ));
    }
    {
        let mut l = L::new(k, none.clone());
        l.grant(0);
        let b = l.beacon(0);
        l.hear(&b);
        let ch = l.select(0, 1);
        let r = l.response_for(0, &ch);
        let t = l.t;
        l.at(500);
        l.feed(json!({"type": "timeout"}));
        l.t = t;
        l.respond_raw(1, &r);
        out.push(l.case(
            "lock-tim-1-clock-back-within-budget",
            "A small backwards step inside the budget is harmless.",
            &["LK-TIM-1"],
            outcome("unlock"),
        ));
    }

    // ---- unlock limits (LK-LIM-1, LK-LIM-2)
    {
        let mut l = L::new(k, none.clone());
        let mut f = Forge::new(1, l.t);
        f.header.max_unlocks = 2;
        l.install_forge(&f);
        l.forge_unlock(&f, 1, 1);
        l.at(500);
        l.forge_unlock(&f, 2, 1);
        out.push(l.case(
            "lock-lim-1-counts",
            "A grant with max_unlocks = 2 unlocks twice; the lock reports the count.",
            &["LK-LIM-1", "LK-LIM-2"],
            json!({"outcome": "unlock", "unlocks": 2, "max_unlocks": 2}),
        ));
    }
    {
        let mut l = L::new(k, none.clone());
        l.grant(0);
        l.unlock(0, 1);
        l.at(500);
        l.unlock(0, 1);
        out.push(l.case(
            "lock-lim-1-no-limit",
            "A grant with max_unlocks = 0 has no limit; its unlocks are counted all the same.",
            &["LK-LIM-1"],
            json!({"outcome": "unlock", "unlocks": 2, "max_unlocks": 0}),
        ));
    }
    {
        let mut l = L::new(k, none.clone());
        let mut f = Forge::new(1, l.t);
        f.header.max_unlocks = 1;
        l.install_forge(&f);
        l.forge_unlock(&f, 1, 1);
        l.at(500);
        l.hear(&f.beacon(l.t, 2));
        out.push(l.case(
            "lock-lim-2-beacon",
            "Once the limit is reached the session's beacons arm nothing.",
            &["LK-LIM-1", "LK-LIM-2"],
            rejected("unlock_limit_reached"),
        ));
    }
    {
        let mut l = L::new(k, none.clone());
        let mut f = Forge::new(1, l.t);
        f.header.max_unlocks = 1;
        l.install_forge(&f);
        l.hear(&f.beacon(l.t, 1));
        let ch1 = l.select_raw(1, &f.select(l.t, 1));
        l.hear(&f.beacon(l.t, 2));
        let ch2 = l.select_raw(2, &f.select(l.t, 2));
        let now_s = (l.t / 1000) as u32;
        let r1 = f.response(&unhex(&ch1["bytes"]), l.t, 1, now_s);
        let r2 = f.response(&unhex(&ch2["bytes"]), l.t, 2, now_s);
        l.respond_raw(1, &r1);
        l.respond_raw(2, &r2);
        out.push(l.case(
            "lock-lim-2-response",
            "Two challenges armed before the only unlock: the second valid response is refused.",
            &["LK-LIM-2"],
            rejected("unlock_limit_reached"),
        ));
    }

    // ---- lockout (LK-LCK-1..3): threshold 2, window and duration 60 s
    let lockout = json!({"lockout_threshold": 2, "lockout_window_s": 60, "lockout_duration_s": 60});
    {
        let (l, _) = failing(k, &lockout, 2);
        out.push(l.case(
            "lock-lck-1-lockout",
            "The second failed handshake in the window locks the guest out; the lock reports it.",
            &["LK-LCK-1"],
            rejected("bad_response_mac"),
        ));
    }
    {
        let (mut l, f) = failing(k, &lockout, 1);
        l.at(60_001);
        l.forge_fail(&f, 2, 1);
        l.forge_unlock(&f, 3, 1);
        out.push(l.case(
            "lock-lck-1-window",
            "Two failures 60.001 s apart are in two windows: no lockout.",
            &["LK-LCK-1"],
            outcome("unlock"),
        ));
    }
    {
        let (mut l, f) = failing(k, &lockout, 1);
        // No challenge on the connection: nothing consumed, not a failed handshake.
        l.respond_raw(1, &[0u8; 20]);
        l.respond_raw(1, &[0u8; 20]);
        l.forge_unlock(&f, 2, 1);
        out.push(l.case(
            "lock-lck-1-not-counted",
            "Responses without a challenge are not failed handshakes.",
            &["LK-LCK-1"],
            outcome("unlock"),
        ));
    }
    {
        let (mut l, f) = failing(k, &lockout, 1);
        l.hear(&f.beacon(l.t, 9));
        l.select_raw(2, &f.select(l.t, 9));
        l.respond_raw(2, &[0u8; 19]);
        out.push(l.case(
            "lock-lck-1-malformed-counts",
            "A truncated Response after its challenge was consumed is a failed handshake too.",
            &["LK-LCK-1", "LK-FRM-1"],
            rejected("truncated"),
        ));
    }
    {
        let (mut l, f) = failing(k, &lockout, 2);
        l.hear(&f.beacon(l.t, 3));
        out.push(l.case(
            "lock-lck-2-beacon",
            "A locked-out guest's beacon arms nothing.",
            &["LK-LCK-2"],
            rejected("locked_out"),
        ));
    }
    {
        let mut l = L::new(k, lockout.clone());
        let f = Forge::new(1, l.t);
        l.install_forge(&f);
        l.hear(&f.beacon(l.t, 9));
        let held = l.select_raw(9, &f.select(l.t, 9));
        l.forge_fail(&f, 1, 1);
        l.forge_fail(&f, 2, 1);
        let r = f.response(&unhex(&held["bytes"]), l.t, 9, (l.t / 1000) as u32);
        l.respond_raw(9, &r);
        out.push(l.case(
            "lock-lck-2-response",
            "A challenge issued before the lockout answers even a valid response with locked_out.",
            &["LK-LCK-2"],
            rejected("locked_out"),
        ));
    }
    {
        let mut l = L::new(k, lockout.clone());
        let f = Forge::new(1, l.t);
        let mut g = Forge::new(2, l.t);
        g.header.guest_id = GUEST_2;
        l.install_forge(&f);
        l.install_forge(&g);
        l.forge_fail(&f, 1, 1);
        l.forge_fail(&f, 2, 1);
        l.forge_unlock(&g, 1, 2);
        out.push(l.case(
            "lock-lck-2-other-guest",
            "Another guest unlocks while the first is locked out.",
            &["LK-LCK-2"],
            outcome("unlock"),
        ));
    }
    {
        let (mut l, f) = failing(k, &lockout, 2);
        l.at(59_999);
        l.feed(json!({"type": "timeout"}));
        l.hear(&f.beacon(l.t, 3));
        out.push(l.case(
            "lock-lck-3-not-yet",
            "A millisecond before the lockout ends its beacons are still refused.",
            &["LK-LCK-3"],
            rejected("locked_out"),
        ));
    }
    {
        let (mut l, f) = failing(k, &lockout, 2);
        l.at(60_000);
        l.feed(json!({"type": "timeout"}));
        l.forge_unlock(&f, 3, 1);
        out.push(l.case(
            "lock-lck-3-ends",
            "At locked_until the timeout ends the lockout (reported) and the guest unlocks again.",
            &["LK-LCK-3"],
            outcome("unlock"),
        ));
    }

    // ---- beacons of revoked sessions (LK-REV-5)
    {
        let mut l = L::new(k, none.clone());
        let g = l.grant(0);
        let b = l.beacon(0);
        l.hear(&b);
        let rev =
            l.p.issuer
                .revoke_grant(UnixMillis(l.t), g.grant_id, &mut l.p.rng)
                .expect("revocation");
        l.message(&rev.payload);
        l.hear(&b);
        out.push(l.case(
            "lock-rev-5-revoked-beacon",
            "A revoked session's beacon is recognised and refused as revoked.",
            &["LK-REV-5"],
            rejected("session_revoked"),
        ));
    }
    {
        let mut l = L::new(k, none.clone());
        let f = Forge::new(1, l.t);
        l.install_forge(&f);
        let rev = f.revocation(&mut l.p.rng, &k.issuer, l.t / 1000);
        l.message(&rev);
        l.hear(&flip(&f.beacon(l.t, 1), 22));
        out.push(l.case(
            "lock-rev-5-cmac-first",
            "A beacon with a revoked session's tag but a bad CMAC fails LK-ADV-5 first.",
            &["LK-REV-5", "LK-ADV-5"],
            rejected("bad_beacon_mac"),
        ));
    }
    {
        let mut l = L::new(k, none.clone());
        let f1 = Forge::new(1, l.t);
        let f2 = Forge::new(2, l.t);
        l.install_forge(&f1);
        l.install_forge(&f2);
        let rev = f1.revocation(&mut l.p.rng, &k.issuer, l.t / 1000);
        l.message(&rev);
        l.forge_unlock(&f2, 1, 1);
        out.push(l.case(
            "lock-rev-5-other-sessions",
            "With a tombstone present, other sessions' beacons arm and unlock as before.",
            &["LK-REV-5"],
            outcome("unlock"),
        ));
    }
    {
        let mut l = L::new(k, json!({"revocation_capacity": 16}));
        let f = Forge::new(1, l.t);
        l.install_forge(&f);
        let base = l.t / 1000 - 20;
        let rev = f.revocation(&mut l.p.rng, &k.issuer, base);
        l.message(&rev);
        for i in 2..=17u8 {
            let other = Forge::new(i, l.t);
            let rev = other.revocation(&mut l.p.rng, &k.issuer, base + u64::from(i));
            l.message(&rev);
        }
        l.hear(&f.beacon(l.t, 1));
        out.push(l.case(
            "lock-rev-5-evicted",
            "When its revocation is evicted the tombstone goes: the beacon is unknown again.",
            &["LK-REV-5", "LK-REV-4"],
            rejected("unknown_tag"),
        ));
    }
    out
}
