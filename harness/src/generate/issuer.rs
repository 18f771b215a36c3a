//! Issuer scenarios: the issuer is the role under test; the generator plays guests and a lock.
//! A grant carries RSA-OAEP and RSA-PSS randomness, so its expectation is semantic (see
//! `runner::verify_granted`), not bytes.

use latchkey::frame::{EventKind, StatusFlags};
use latchkey::lock::StatusInput;
use latchkey::{
    GrantId, Guest, GuestConfig, GuestId, Lock, LockConfig, LockId, Reason, SessionId, UnixMillis,
};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use serde_json::{Value, json};

use super::kit::*;
use crate::model::Case;

pub fn config(tunables: Value) -> Value {
    json!({
        "signing_key": "key:issuer",
        "locks": [
            {"lock_id": LOCK_A.to_string(), "public_key": "pub:lock-a"},
            {"lock_id": LOCK_B.to_string(), "public_key": "pub:lock-b"},
        ],
        "guests": [
            {"guest_id": GUEST_1.to_string(), "enrollment_key": hexs(&K_ENR_1), "allowed_locks": [LOCK_A.to_string()]},
            {"guest_id": GUEST_2.to_string(), "enrollment_key": hexs(&K_ENR_2), "allowed_locks": [LOCK_A.to_string()], "revoked": true},
        ],
        "tunables": tunables,
        "rng_seed": 3,
    })
}

/// [`config`] with an access rule of guest 1 at lock A (`guests[].access`, LK-ISS-12).
pub fn config_with_access(tunables: Value, access: Value) -> Value {
    let mut c = config(tunables);
    let mut rule = access;
    rule["lock_id"] = json!(LOCK_A.to_string());
    c["guests"][0]["access"] = json!([rule]);
    c
}

/// An issuer scenario under construction.
pub struct I<'k> {
    pub rec: Recorder<'k>,
    pub guest: Guest,
    pub rng: ChaCha20Rng,
    pub t: u64,
}

impl<'k> I<'k> {
    pub fn new(keys: &'k Keys, tunables: Value) -> Self {
        Self::with_config(keys, config(tunables))
    }

    pub fn with_config(keys: &'k Keys, config: Value) -> Self {
        Self {
            rec: Recorder::new(keys, "issuer", config),
            guest: Guest::new(GuestConfig::new(GUEST_1, enrollment(K_ENR_1))).expect("guest"),
            rng: ChaCha20Rng::seed_from_u64(31),
            t: T0,
        }
    }

    pub fn request(&mut self, lock: LockId, validity: u32) -> Vec<u8> {
        self.guest
            .request_grant(UnixMillis(self.t), lock, validity, &mut self.rng)
            .to_vec()
    }

    pub fn send(&mut self, topic: GuestId, payload: &[u8]) -> Value {
        self.rec.step(
            self.t,
            json!({"type": "request", "topic_guest": topic.to_string(), "payload": hexs(payload)}),
        )
    }

    /// A request for `lock` that must be granted; the expectation becomes semantic.
    pub fn granted(&mut self, validity: u32, expect_validity: u64) -> Value {
        self.granted_with(validity, expect_validity, 0)
    }

    /// [`granted`](Self::granted), with the LockGrant's expected `max_unlocks`.
    pub fn granted_with(&mut self, validity: u32, expect_validity: u64, max_unlocks: u16) -> Value {
        let req = self.request(LOCK_A, validity);
        let out = self.send(GUEST_1, &req);
        let request_id = hexs(&req[34..50]);
        self.rec.expect_last(json!({
            "outcome": "granted",
            "verify": {
                "lock_key": "key:lock-a",
                "issuer_key": "pub:issuer",
                "enrollment_key": hexs(&K_ENR_1),
                "lock_id": LOCK_A.to_string(),
                "guest_id": GUEST_1.to_string(),
                "request_id": request_id,
                "issued_at": self.t / 1000,
                "validity_s": expect_validity,
                "max_unlocks": max_unlocks,
            }
        }));
        out
    }

    /// A message on lock `topic`'s events topic.
    pub fn lock_message(&mut self, topic: LockId, payload: &[u8]) -> Value {
        self.rec.step(
            self.t,
            json!({"type": "lock_message", "topic_lock": topic.to_string(), "payload": hexs(payload)}),
        )
    }

    pub fn case(self, id: &str, comment: &str, reqs: &[&str], end: Value) -> Case {
        self.rec.case(id, comment, reqs, end)
    }
}

fn lock_a(keys: &Keys) -> Lock {
    Lock::new(LockConfig::new(
        LOCK_A,
        keys.lock_a.clone(),
        keys.issuer.public_key(),
    ))
    .expect("lock")
}

fn event(
    keys: &Keys,
    rng: &mut ChaCha20Rng,
    t: u64,
    kind: EventKind,
    reason: Option<Reason>,
) -> Vec<u8> {
    lock_a(keys).signed_event(
        UnixMillis(t),
        kind,
        reason,
        GrantId([7; 16]),
        SessionId([8; 8]),
        rng,
    )
}

/// A LockStatus of lock A at `t` with a few counters.
fn status(keys: &Keys, rng: &mut ChaCha20Rng, t: u64) -> Vec<u8> {
    lock_a(keys).status_message(
        UnixMillis(t),
        &StatusInput {
            uptime_s: 86_400,
            battery_pct: Some(72),
            flags: StatusFlags::CLOCK_UNSYNCHRONISED,
            counters: &[(Reason::UnknownTag, 120), (Reason::Replay, 3)],
        },
        rng,
    )
}

/// Every issuer scenario.
pub fn cases(k: &Keys) -> Vec<Case> {
    let mut out = Vec::new();
    let none = json!({});
    {
        let mut i = I::new(k, none.clone());
        i.granted(600, 600);
        out.push(i.case(
            "issuer-grant",
            "An enrolled guest's sealed request for an allowed lock yields a verifiable LockGrant and GuestGrant.",
            &["LK-FRM-1", "LK-ISS-1", "LK-ISS-2", "LK-ISS-3", "LK-ISS-4", "LK-ISS-5", "LK-ISS-6", "LK-ISS-7", "LK-ISS-8", "LK-ISS-9", "LK-ISS-10", "LK-KEY-1"],
            outcome("granted"),
        ));
    }
    {
        let mut i = I::new(k, json!({"max_grant_validity_s": 900}));
        i.granted(100_000, 900);
        out.push(i.case(
            "issuer-iss-9-capped-validity",
            "A request for more than the policy allows is granted the maximum.",
            &["LK-ISS-9"],
            outcome("granted"),
        ));
    }
    {
        let mut i = I::new(k, none.clone());
        i.granted(600, 600);
        i.rec
            .step(i.t, json!({"type": "revoke", "grant_id_from_step": 0}));
        i.rec.expect_last(json!({"outcome": "revocation", "verify": {"issuer_key": "pub:issuer", "grant_from_step": 0}}));
        out.push(i.case(
            "issuer-revoke",
            "Revoking a live grant yields a signed Revocation for its lock.",
            &["LK-REV-2"],
            outcome("revocation"),
        ));
    }
    {
        let mut i = I::new(k, none.clone());
        i.rec
            .step(i.t, json!({"type": "revoke", "grant_id": hexs(&[9; 16])}));
        out.push(i.case(
            "issuer-revoke-unknown",
            "Revoking a grant the issuer never issued yields nothing.",
            &["LK-REV-2"],
            outcome("none"),
        ));
    }
    {
        let mut i = I::new(k, none.clone());
        let r = i.request(LOCK_A, 600);
        i.send(GuestId([0x77; 16]), &r);
        out.push(i.case(
            "issuer-iss-1-topic-mismatch",
            "A request published under another guest's topic.",
            &["LK-ISS-1"],
            rejected("guest_mismatch"),
        ));
    }
    {
        let mut i = I::new(k, none.clone());
        let stranger = GuestId([0x77; 16]);
        let mut g = Guest::new(GuestConfig::new(stranger, enrollment(K_ENR_1))).expect("guest");
        let r = g.request_grant(UnixMillis(i.t), LOCK_A, 600, &mut i.rng);
        i.send(stranger, &r);
        out.push(i.case(
            "issuer-iss-2-unknown-guest",
            "A request from a guest that was never enrolled.",
            &["LK-ISS-2"],
            rejected("unknown_guest"),
        ));
    }
    {
        let mut i = I::new(k, none.clone());
        let mut g = Guest::new(GuestConfig::new(GUEST_2, enrollment(K_ENR_2))).expect("guest");
        let r = g.request_grant(UnixMillis(i.t), LOCK_A, 600, &mut i.rng);
        i.send(GUEST_2, &r);
        out.push(i.case(
            "issuer-iss-2-revoked-guest",
            "A request from a guest whose enrollment was revoked.",
            &["LK-ISS-2"],
            rejected("guest_revoked"),
        ));
    }
    {
        let mut i = I::new(k, none.clone());
        let r = i.request(LOCK_A, 600);
        i.send(GUEST_1, &flip(&r, 80));
        out.push(i.case(
            "issuer-iss-3-bad-seal",
            "A request whose ciphertext was altered.",
            &["LK-ISS-3"],
            rejected("bad_seal"),
        ));
    }
    {
        let mut i = I::new(k, none.clone());
        let r = i.request(LOCK_A, 600);
        i.send(GUEST_1, &flip(&r, 20));
        out.push(i.case(
            "issuer-iss-3-aad",
            "A request whose lock id was altered (it is in the AAD).",
            &["LK-ISS-3"],
            rejected("bad_seal"),
        ));
    }
    {
        let mut i = I::new(k, none.clone());
        let mut g = Guest::new(GuestConfig::new(GUEST_1, enrollment([1; 32]))).expect("guest");
        let r = g.request_grant(UnixMillis(i.t), LOCK_A, 600, &mut i.rng);
        i.send(GUEST_1, &r);
        out.push(i.case(
            "issuer-iss-3-wrong-key",
            "A request sealed with the wrong enrollment key.",
            &["LK-ISS-3"],
            rejected("bad_seal"),
        ));
    }
    {
        let mut i = I::new(k, none.clone());
        let r = i.request(LOCK_A, 600);
        i.t += 61_000;
        i.send(GUEST_1, &r);
        out.push(i.case(
            "issuer-iss-4-stale",
            "A request 61 s old (window 60 s).",
            &["LK-ISS-4"],
            rejected("stale_request"),
        ));
    }
    {
        let mut i = I::new(k, none.clone());
        let mut g = Guest::new(GuestConfig::new(GUEST_1, enrollment(K_ENR_1))).expect("guest");
        let r = g.request_grant(UnixMillis(i.t + 61_000), LOCK_A, 600, &mut i.rng);
        i.send(GUEST_1, &r);
        out.push(i.case(
            "issuer-iss-4-future",
            "A request 61 s in the issuer's future.",
            &["LK-ISS-4"],
            rejected("future_request"),
        ));
    }
    {
        let mut i = I::new(k, none.clone());
        let r = i.request(LOCK_A, 600);
        i.send(GUEST_1, &r);
        i.t += 1_000;
        i.send(GUEST_1, &r);
        out.push(i.case(
            "issuer-iss-5-replay",
            "The same request a second later yields no new grant.",
            &["LK-ISS-5"],
            rejected("request_replay"),
        ));
    }
    {
        let mut i = I::new(k, none.clone());
        let r = i.request(LockId([0xC0; 16]), 600);
        i.send(GUEST_1, &r);
        out.push(i.case(
            "issuer-iss-6-unknown-lock",
            "A request for a lock the issuer does not know.",
            &["LK-ISS-6"],
            rejected("unknown_lock"),
        ));
    }
    {
        let mut i = I::new(k, none.clone());
        let r = i.request(LOCK_B, 600);
        i.send(GUEST_1, &r);
        out.push(i.case(
            "issuer-iss-7-not-authorized",
            "A request for a lock the guest may not use.",
            &["LK-ISS-7"],
            rejected("not_authorized"),
        ));
    }
    {
        // The rate limit (LK-ISS-11) comes after LK-ISS-8: raised so the cache fills first.
        let mut i = I::new(
            k,
            json!({"request_cache_capacity": 16, "rate_guest_burst": 100, "rate_lock_burst": 100}),
        );
        for _ in 0..17 {
            let r = i.request(LOCK_A, 60);
            i.send(GUEST_1, &r);
        }
        out.push(i.case(
            "issuer-iss-8-cache-full",
            "The 17th live request overflows a 16-entry request cache.",
            &["LK-ISS-8"],
            rejected("request_cache_full"),
        ));
    }
    {
        let mut i = I::new(k, none.clone());
        let r = i.request(LOCK_A, 0);
        i.send(GUEST_1, &r);
        out.push(i.case(
            "issuer-iss-9-zero-validity",
            "A request for zero seconds.",
            &["LK-ISS-9"],
            rejected("invalid_validity"),
        ));
    }
    {
        let mut i = I::new(k, json!({"max_live_grants": 1}));
        let r = i.request(LOCK_A, 60);
        i.send(GUEST_1, &r);
        let r = i.request(LOCK_A, 60);
        i.send(GUEST_1, &r);
        out.push(i.case(
            "issuer-iss-10-grant-cap",
            "With max_live_grants = 1 a second live grant is refused.",
            &["LK-ISS-10"],
            rejected("grant_cap_reached"),
        ));
    }
    {
        let mut i = I::new(k, none.clone());
        let r = i.request(LOCK_A, 600);
        i.send(GUEST_1, &r[..89]);
        out.push(i.case(
            "issuer-frm-1-truncated",
            "An 89-byte request.",
            &["LK-FRM-1"],
            rejected("truncated"),
        ));
    }
    {
        let mut i = I::new(k, none.clone());
        let mut r = i.request(LOCK_A, 600);
        r[1] = 0x03;
        i.send(GUEST_1, &r);
        out.push(i.case(
            "issuer-frm-3-type",
            "A request whose type byte says GuestGrant.",
            &["LK-FRM-3"],
            rejected("wrong_type"),
        ));
    }
    // ---- events
    {
        let mut i = I::new(k, none.clone());
        let ev = event(
            k,
            &mut i.rng,
            i.t,
            EventKind::Rejection,
            Some(Reason::BadBeaconMac),
        );
        i.lock_message(LOCK_A, &ev);
        out.push(i.case(
            "issuer-evt-valid",
            "A signed rejection event from lock A on lock A's topic.",
            &["LK-EVT-1", "LK-EVT-2", "LK-FRM-4"],
            outcome("event"),
        ));
    }
    {
        let mut i = I::new(k, none.clone());
        let ev = event(k, &mut i.rng, i.t, EventKind::Unlock, None);
        i.lock_message(LOCK_A, &flip(&ev, 44));
        out.push(i.case(
            "issuer-evt-1-bad-signature",
            "An event whose reason was changed after signing.",
            &["LK-EVT-1"],
            rejected("bad_event_signature"),
        ));
    }
    {
        let mut i = I::new(k, none.clone());
        let ev = event(k, &mut i.rng, i.t, EventKind::Unlock, None);
        i.lock_message(LOCK_B, &ev);
        out.push(i.case(
            "issuer-evt-2-topic-mismatch",
            "Lock A's event published on lock B's topic.",
            &["LK-EVT-2"],
            rejected("wrong_lock"),
        ));
    }
    {
        let mut i = I::new(k, none.clone());
        let mut ev = event(k, &mut i.rng, i.t, EventKind::Unlock, None);
        ev[42] = 9;
        i.lock_message(LOCK_A, &ev);
        out.push(i.case(
            "issuer-frm-4-event-kind",
            "An event kind of 9 is out of range.",
            &["LK-FRM-4"],
            rejected("field_out_of_range"),
        ));
    }
    // ---- rate limits (LK-ISS-11)
    {
        let mut i = I::new(k, json!({"rate_guest_burst": 2, "rate_guest_per_hour": 1}));
        i.granted(600, 600);
        i.granted(600, 600);
        let r = i.request(LOCK_A, 600);
        i.send(GUEST_1, &r);
        out.push(i.case(
            "issuer-iss-11-guest-burst",
            "A guest's third request at once with a burst of 2.",
            &["LK-ISS-11"],
            rejected("rate_limited"),
        ));
    }
    {
        let mut i = I::new(k, json!({"rate_guest_burst": 1, "rate_guest_per_hour": 60}));
        i.granted(600, 600);
        i.t += 59_999;
        let r = i.request(LOCK_A, 600);
        i.send(GUEST_1, &r);
        i.t += 1;
        i.granted(600, 600);
        out.push(i.case(
            "issuer-iss-11-refill",
            "At 60 an hour the bucket holds a request again exactly one minute later.",
            &["LK-ISS-11"],
            outcome("granted"),
        ));
    }
    {
        let mut i = I::new(k, json!({"rate_lock_burst": 1}));
        i.granted(600, 600);
        let r = i.request(LOCK_A, 600);
        i.send(GUEST_1, &r);
        out.push(i.case(
            "issuer-iss-11-lock-burst",
            "The lock's bucket refuses although the guest's has requests left.",
            &["LK-ISS-11"],
            rejected("rate_limited"),
        ));
    }
    {
        let mut i = I::new(k, json!({"rate_guest_burst": 1}));
        let r = i.request(LOCK_A, 0);
        i.send(GUEST_1, &r);
        i.granted(600, 600);
        out.push(i.case(
            "issuer-iss-11-refused-takes-nothing",
            "A request refused after LK-ISS-11 (zero validity) takes nothing from a burst of 1.",
            &["LK-ISS-11", "LK-ISS-9"],
            outcome("granted"),
        ));
    }
    // ---- access policy (LK-ISS-12)
    let now_s = T0 / 1000;
    {
        let mut i = I::with_config(
            k,
            config_with_access(json!({}), json!({"valid_from": now_s + 100})),
        );
        let r = i.request(LOCK_A, 600);
        i.send(GUEST_1, &r);
        out.push(i.case(
            "issuer-iss-12-before-window",
            "The guest's access at the lock starts in 100 s.",
            &["LK-ISS-12"],
            rejected("outside_access_window"),
        ));
    }
    {
        let mut i = I::with_config(
            k,
            config_with_access(json!({}), json!({"valid_until": now_s})),
        );
        let r = i.request(LOCK_A, 600);
        i.send(GUEST_1, &r);
        out.push(i.case(
            "issuer-iss-12-after-window",
            "The guest's access ended at this second (the window is half-open).",
            &["LK-ISS-12"],
            rejected("outside_access_window"),
        ));
    }
    {
        let mut i = I::with_config(
            k,
            config_with_access(
                json!({}),
                json!({"valid_from": now_s - 10, "valid_until": now_s + 300, "max_unlocks": 3}),
            ),
        );
        i.granted_with(3_600, 300, 3);
        out.push(i.case(
            "issuer-iss-12-capped",
            "Inside the access window: the grant ends with the window and carries the unlock limit.",
            &["LK-ISS-12", "LK-ISS-9", "LK-LIM-1"],
            outcome("granted"),
        ));
    }
    {
        let mut i = I::with_config(
            k,
            config_with_access(
                json!({"rate_guest_burst": 1, "rate_guest_per_hour": 1}),
                json!({"valid_until": now_s + 60}),
            ),
        );
        i.granted_with(600, 60, 0);
        i.t += 60_000;
        let r = i.request(LOCK_A, 600);
        i.send(GUEST_1, &r);
        out.push(i.case(
            "issuer-iss-12-before-iss-11",
            "A rate-limited guest outside its access window hears the policy first.",
            &["LK-ISS-12"],
            rejected("outside_access_window"),
        ));
    }
    // ---- lock messages: window, replay, status (LK-EVT-3, LK-EVT-4)
    let hour = 3_600_000;
    {
        let mut i = I::new(k, none.clone());
        let ev = event(k, &mut i.rng, i.t - hour - 1_000, EventKind::Unlock, None);
        i.lock_message(LOCK_A, &ev);
        out.push(i.case(
            "issuer-evt-3-stale",
            "An event 3 601 s old (window 3 600 s).",
            &["LK-EVT-3"],
            rejected("stale_event"),
        ));
    }
    {
        let mut i = I::new(k, none.clone());
        let ev = event(k, &mut i.rng, i.t + hour + 1_000, EventKind::Unlock, None);
        i.lock_message(LOCK_A, &ev);
        out.push(i.case(
            "issuer-evt-3-future",
            "An event 3 601 s in the issuer's future.",
            &["LK-EVT-3"],
            rejected("future_event"),
        ));
    }
    {
        let mut i = I::new(k, none.clone());
        let old = event(k, &mut i.rng, i.t - hour, EventKind::Unlock, None);
        let new = event(k, &mut i.rng, i.t + hour + 999, EventKind::Unlock, None);
        i.lock_message(LOCK_A, &old);
        i.lock_message(LOCK_A, &new);
        out.push(i.case(
            "issuer-evt-3-edges",
            "Events exactly 3 600 s old and 3 600.999 s ahead are inside the window.",
            &["LK-EVT-3", "LK-EVT-4"],
            outcome("event"),
        ));
    }
    {
        let mut i = I::new(k, none.clone());
        let ev = event(k, &mut i.rng, i.t, EventKind::GrantInstalled, None);
        i.lock_message(LOCK_A, &ev);
        i.t += 1_000;
        i.lock_message(LOCK_A, &ev);
        out.push(i.case(
            "issuer-evt-4-replay",
            "The same event again (a QoS 1 redelivery or a replay) is recorded once.",
            &["LK-EVT-4"],
            rejected("event_replay"),
        ));
    }
    {
        let mut i = I::new(k, json!({"event_replay_capacity": 16}));
        for n in 0..17 {
            let ev = event(k, &mut i.rng, i.t + n, EventKind::Unlock, None);
            i.lock_message(LOCK_A, &ev);
        }
        let at_floor = event(k, &mut i.rng, i.t, EventKind::Unlock, None);
        i.lock_message(LOCK_A, &at_floor);
        out.push(i.case(
            "issuer-evt-4-floor",
            "The 17th event evicts the oldest id of a 16-entry cache; a new id at its timestamp is refused by the floor.",
            &["LK-EVT-4"],
            rejected("event_replay"),
        ));
    }
    {
        let mut i = I::new(k, none.clone());
        let st = status(k, &mut i.rng, i.t);
        i.lock_message(LOCK_A, &st);
        out.push(i.case(
            "issuer-status-valid",
            "A signed LockStatus of lock A on lock A's topic, with its counters.",
            &[
                "LK-EVT-1", "LK-EVT-2", "LK-EVT-3", "LK-EVT-4", "LK-FRM-3", "LK-FRM-4",
            ],
            outcome("status"),
        ));
    }
    {
        let mut i = I::new(k, none.clone());
        let st = status(k, &mut i.rng, i.t);
        i.lock_message(LOCK_A, &flip(&st, 43));
        out.push(i.case(
            "issuer-status-bad-signature",
            "A LockStatus whose uptime was changed after signing.",
            &["LK-EVT-1"],
            rejected("bad_event_signature"),
        ));
    }
    {
        let mut i = I::new(k, none.clone());
        let st = status(k, &mut i.rng, i.t);
        i.lock_message(LOCK_B, &st);
        out.push(i.case(
            "issuer-status-topic-mismatch",
            "Lock A's LockStatus on lock B's topic.",
            &["LK-EVT-2"],
            rejected("wrong_lock"),
        ));
    }
    {
        let mut i = I::new(k, none.clone());
        let st = status(k, &mut i.rng, i.t);
        i.lock_message(LOCK_A, &st);
        i.lock_message(LOCK_A, &st);
        out.push(i.case(
            "issuer-status-replay",
            "A LockStatus is recorded once, like an event.",
            &["LK-EVT-4"],
            rejected("event_replay"),
        ));
    }
    {
        let mut i = I::new(k, none.clone());
        let mut st = status(k, &mut i.rng, i.t);
        st[46] = 150;
        i.lock_message(LOCK_A, &st);
        out.push(i.case(
            "issuer-frm-4-status-battery",
            "A battery of 150 % is out of range.",
            &["LK-FRM-4"],
            rejected("field_out_of_range"),
        ));
    }
    {
        let mut i = I::new(k, none.clone());
        let r = i.request(LOCK_A, 600);
        i.lock_message(LOCK_A, &r);
        out.push(i.case(
            "issuer-frm-3-lock-message-type",
            "A GrantRequest on a lock's events topic.",
            &["LK-FRM-3"],
            rejected("wrong_type"),
        ));
    }
    {
        let mut i = I::new(k, none.clone());
        let ev = event(
            k,
            &mut i.rng,
            i.t,
            EventKind::Lockout,
            Some(Reason::BadResponseMac),
        );
        i.lock_message(LOCK_A, &ev);
        let ev = event(k, &mut i.rng, i.t + 1, EventKind::LockoutEnded, None);
        i.lock_message(LOCK_A, &ev);
        out.push(i.case(
            "issuer-evt-lockout-kinds",
            "Events of kinds 5 (lockout, with the failure's reason) and 6 (lockout ended).",
            &["LK-FRM-4", "LK-EVT-1"],
            outcome("event"),
        ));
    }
    out
}
