//! Primitive and frame vectors: inputs with the reference's outputs.

use latchkey::frame::{
    EventKind, GuestGrantHeader, LockEvent, LockStatus, StatusCounter, StatusFlags,
    append_signature,
};
use latchkey::lock::StatusInput;
use latchkey::{
    GrantId, GuestId, Issuer, IssuerConfig, Lock, LockConfig, Reason, RequestId, SessionId,
    UnixMillis,
};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use serde_json::{Value, json};

use super::kit::*;
use crate::iut::reference::{decode, primitive};
use crate::model::{Case, CaseBody, Expectation};

fn prim(k: &Keys, id: &str, comment: &str, reqs: &[&str], name: &str, input: Value) -> Case {
    let expanded = crate::vectors::expand_keys(&input, &k.table).expect("generator: key reference");
    let output = primitive(name, &expanded).expect("generator: primitive");
    let result = if output.get("valid") == Some(&json!(false)) {
        Expectation::Invalid
    } else {
        Expectation::Valid
    };
    Case {
        id: id.into(),
        comment: comment.into(),
        requirements: reqs.iter().map(|s| s.to_string()).collect(),
        flags: Vec::new(),
        result,
        role: "any".into(),
        body: CaseBody::Primitive {
            primitive: name.into(),
            input,
            output,
        },
    }
}

fn frame(id: &str, comment: &str, reqs: &[&str], name: &str, bytes: &[u8]) -> Case {
    let d = decode(name, bytes).expect("generator: decode");
    let valid = d["result"] == json!("valid");
    Case {
        id: id.into(),
        comment: comment.into(),
        requirements: reqs.iter().map(|s| s.to_string()).collect(),
        flags: Vec::new(),
        result: if valid {
            Expectation::Valid
        } else {
            Expectation::Invalid
        },
        role: "any".into(),
        body: CaseBody::Frame {
            frame: name.into(),
            bytes: hexs(bytes),
            fields: valid.then(|| d["fields"].clone()),
            reason: d.get("reason").and_then(Value::as_str).map(str::to_string),
        },
    }
}

/// A consistent set of real messages to derive vectors from.
struct Sample {
    lock_grant: Vec<u8>,
    guest_grant: Vec<u8>,
    request: Vec<u8>,
    revocation: Vec<u8>,
    event: Vec<u8>,
    /// A LockStatus with two counters (unknown_tag 19, replay 24).
    status: Vec<u8>,
    forge: Forge,
}

fn sample(k: &Keys) -> Sample {
    let mut rng = ChaCha20Rng::seed_from_u64(41);
    let now = UnixMillis(T0);
    let mut issuer = Issuer::new(IssuerConfig::new(k.issuer.clone())).expect("issuer");
    issuer.add_lock(LOCK_A, k.lock_a.public_key());
    issuer.add_guest(GUEST_1, enrollment(K_ENR_1), [LOCK_A].into());
    let mut guest = latchkey::Guest::new(latchkey::GuestConfig::new(GUEST_1, enrollment(K_ENR_1)))
        .expect("guest");
    let request = guest.request_grant(now, LOCK_A, 600, &mut rng).to_vec();
    let g = issuer
        .handle_request(now, GUEST_1, &request, &mut rng)
        .expect("grant");
    let revocation = issuer
        .revoke_grant(now, g.grant_id, &mut rng)
        .expect("revocation")
        .payload;
    let lock = Lock::new(LockConfig::new(
        LOCK_A,
        k.lock_a.clone(),
        k.issuer.public_key(),
    ))
    .expect("lock");
    let event = lock.signed_event(
        now,
        EventKind::Unlock,
        None,
        g.grant_id,
        g.session_id,
        &mut rng,
    );
    let status = lock.status_message(
        now,
        &StatusInput {
            uptime_s: 3_600,
            battery_pct: Some(100),
            flags: StatusFlags::MAINS_POWER | StatusFlags::TAMPER,
            counters: &[(Reason::Replay, 7), (Reason::UnknownTag, 1_234)],
        },
        &mut rng,
    );
    Sample {
        lock_grant: g.lock_grant,
        guest_grant: g.guest_grant.to_vec(),
        request,
        revocation,
        event,
        status,
        forge: Forge::new(0x42, T0),
    }
}

/// Primitive vectors.
pub fn primitives(k: &Keys) -> Vec<Case> {
    let s = sample(k);
    let mut out = Vec::new();
    for (n, seed) in [(1, 0x01u8), (2, 0x42), (3, 0xFE)] {
        let f = Forge::new(seed, T0);
        out.push(prim(k, &format!("prim-subkeys-{n}"),
            "HKDF-SHA256 subkeys of a session key for a lock and session.",
            &["LK-KEY-1"],
            "subkeys",
            json!({"session_key": hexs(f.k_s.expose()), "lock_id": f.header.lock_id.to_string(), "session_id": f.header.session_id.to_string()}),
        ));
    }
    let keys = s.forge.subkeys();
    for (n, step) in [(1, 0u32), (2, 60_000_000), (3, u32::MAX)] {
        out.push(prim(
            k,
            &format!("prim-beacon-tag-{n}"),
            "The rotating tag (TOTP-style code) of a step.",
            &["LK-ADV-3"],
            "beacon_tag",
            json!({"k_tag": hexs(&keys.tag), "step": step}),
        ));
    }
    let beacon = s.forge.beacon(T0, 0x0BEE);
    out.push(prim(
        k,
        "prim-beacon-mac-1",
        "AES-CMAC of a beacon's first 15 bytes, truncated to 8.",
        &["LK-ADV-5"],
        "beacon_mac",
        json!({"k_adv": hexs(&keys.adv), "mac_input": hexs(&beacon[..15])}),
    ));
    out.push(prim(
        k,
        "prim-beacon-mac-2",
        "AES-CMAC of an all-zero input.",
        &["LK-ADV-5"],
        "beacon_mac",
        json!({"k_adv": hexs(&keys.adv), "mac_input": hexs(&[0u8; 15])}),
    ));
    out.push(prim(
        k,
        "prim-verify-beacon-valid",
        "A beacon whose MAC verifies.",
        &["LK-ADV-5"],
        "verify_beacon",
        json!({"k_adv": hexs(&keys.adv), "beacon": hexs(&beacon)}),
    ));
    let mut bad = beacon;
    bad[22] ^= 0x80;
    out.push(prim(
        k,
        "prim-verify-beacon-invalid",
        "A beacon whose MAC's last bit is flipped.",
        &["LK-ADV-5"],
        "verify_beacon",
        json!({"k_adv": hexs(&keys.adv), "beacon": hexs(&bad)}),
    ));
    let ctx = json!({"lock_id": LOCK_A.to_string(), "session_id": s.forge.header.session_id.to_string(), "nonce": hexs(&[0x11; 12]),
        "lock_time": 1_800_000_010u32, "step": 60_000_000u32, "attempt": 0x0BEE});
    let mut c = ctx.clone();
    c["k_chal"] = json!(hexs(&keys.chal));
    out.push(prim(
        k,
        "prim-lock-mac-1",
        "The lock's challenge MAC.",
        &["LK-GST-2"],
        "lock_mac",
        c,
    ));
    let mut c = ctx.clone();
    c["k_resp"] = json!(hexs(&keys.resp));
    c["phone_time"] = json!(1_800_000_011u32);
    out.push(prim(
        k,
        "prim-response-mac-1",
        "The guest's response MAC.",
        &["LK-RSP-6"],
        "response_mac",
        c,
    ));
    for (id, m) in [
        ("lock-grant", &s.lock_grant),
        ("revocation", &s.revocation),
        ("lock-event", &s.event),
        ("lock-status", &s.status),
    ] {
        out.push(prim(
            k,
            &format!("prim-signature-input-{id}"),
            "What the RSA-PSS signature covers: DS || every byte before sig_len.",
            &["LK-GRT-2", "LK-REV-2", "LK-EVT-1"],
            "signature_input",
            json!({"message": hexs(m)}),
        ));
    }
    out.push(prim(
        k,
        "prim-verify-signature-valid",
        "A LockGrant's signature under the issuer key.",
        &["LK-GRT-2"],
        "verify_signature",
        json!({"public_key": "pub:issuer", "message": hexs(&s.lock_grant)}),
    ));
    let mut bad = s.lock_grant.clone();
    bad[70] ^= 1;
    out.push(prim(
        k,
        "prim-verify-signature-invalid",
        "The same grant with not_before altered.",
        &["LK-GRT-2"],
        "verify_signature",
        json!({"public_key": "pub:issuer", "message": hexs(&bad)}),
    ));
    out.push(prim(
        k,
        "prim-verify-signature-event",
        "A lock event's signature under the lock key.",
        &["LK-EVT-1"],
        "verify_signature",
        json!({"public_key": "pub:lock-a", "message": hexs(&s.event)}),
    ));
    out.push(prim(
        k,
        "prim-verify-signature-status",
        "A LockStatus's signature under the lock key, with its own domain separation.",
        &["LK-EVT-1"],
        "verify_signature",
        json!({"public_key": "pub:lock-a", "message": hexs(&s.status)}),
    ));
    out.push(prim(
        k,
        "prim-verify-signature-status-other-lock",
        "…and not under another lock's key.",
        &["LK-EVT-1"],
        "verify_signature",
        json!({"public_key": "pub:lock-b", "message": hexs(&s.status)}),
    ));
    out.push(prim(
        k,
        "prim-open-guest-grant-valid",
        "A GuestGrant opens under the enrollment key.",
        &["LK-GGR-3"],
        "open_guest_grant",
        json!({"enrollment_key": hexs(&K_ENR_1), "message": hexs(&s.guest_grant)}),
    ));
    out.push(prim(
        k,
        "prim-open-guest-grant-invalid",
        "…and not under another key.",
        &["LK-GGR-3"],
        "open_guest_grant",
        json!({"enrollment_key": hexs(&K_ENR_2), "message": hexs(&s.guest_grant)}),
    ));
    out.push(prim(
        k,
        "prim-open-request-valid",
        "A GrantRequest opens under the enrollment key.",
        &["LK-ISS-3"],
        "open_request",
        json!({"enrollment_key": hexs(&K_ENR_1), "message": hexs(&s.request)}),
    ));
    let mut bad = s.request.clone();
    bad[55] ^= 1;
    out.push(prim(
        k,
        "prim-open-request-invalid",
        "A request whose timestamp was altered (it is in the AAD).",
        &["LK-ISS-3"],
        "open_request",
        json!({"enrollment_key": hexs(&K_ENR_1), "message": hexs(&bad)}),
    ));
    out
}

/// Frame vectors: a valid sample of each frame, then every malformation.
pub fn frames(k: &Keys) -> Vec<Case> {
    let s = sample(k);
    let f = &s.forge;
    let beacon = f.beacon(T0, 0x0BEE).to_vec();
    let select = f.select(T0, 0x0BEE).to_vec();
    let challenge = latchkey::frame::Challenge {
        nonce: [0x11; 12],
        lock_time: 1_800_000_010,
        session_id: f.header.session_id,
        lock_mac: [0x22; 8],
    }
    .to_bytes()
    .to_vec();
    let response = f.response(&challenge, T0, 0x0BEE, 1_800_000_011).to_vec();
    let all: [(&str, &Vec<u8>, bool); 10] = [
        ("beacon", &beacon, true),
        ("select", &select, true),
        ("challenge", &challenge, true),
        ("response", &response, false),
        ("lock_grant", &s.lock_grant, true),
        ("revocation", &s.revocation, true),
        ("guest_grant", &s.guest_grant, true),
        ("grant_request", &s.request, true),
        ("lock_event", &s.event, true),
        ("lock_status", &s.status, true),
    ];
    let mut out = Vec::new();
    for (name, bytes, versioned) in all {
        let id = name.replace('_', "-");
        out.push(frame(
            &format!("frame-{id}-valid"),
            &format!("A valid {name}."),
            &["LK-FRM-1", "LK-FRM-2", "LK-FRM-3", "LK-FRM-4"],
            name,
            bytes,
        ));
        out.push(frame(
            &format!("frame-{id}-truncated"),
            "One byte short.",
            &["LK-FRM-1"],
            name,
            &bytes[..bytes.len() - 1],
        ));
        out.push(frame(
            &format!("frame-{id}-empty"),
            "Empty.",
            &["LK-FRM-1"],
            name,
            &[],
        ));
        let mut long = bytes.clone();
        long.push(0);
        out.push(frame(
            &format!("frame-{id}-trailing"),
            "One byte too many.",
            &["LK-FRM-1"],
            name,
            &long,
        ));
        if versioned {
            let mut v = bytes.clone();
            v[0] = 0x02;
            out.push(frame(
                &format!("frame-{id}-version"),
                "Version 2.",
                &["LK-FRM-2"],
                name,
                &v,
            ));
        }
        if name.contains("grant")
            || name == "revocation"
            || name == "grant_request"
            || name == "lock_event"
            || name == "lock_status"
        {
            let mut t = bytes.clone();
            t[1] = if t[1] == 0x05 { 0x01 } else { t[1] + 1 };
            out.push(frame(
                &format!("frame-{id}-type"),
                "Another message's type byte.",
                &["LK-FRM-3"],
                name,
                &t,
            ));
        }
    }
    // Field ranges of the length-prefixed messages.
    let mut g = s.lock_grant.clone();
    g[84..86].copy_from_slice(&513u16.to_be_bytes());
    out.push(frame(
        "frame-lock-grant-wrapped-len-513",
        "wrapped_len above 512.",
        &["LK-FRM-4"],
        "lock_grant",
        &g,
    ));
    let mut g = s.lock_grant.clone();
    g[84..86].copy_from_slice(&255u16.to_be_bytes());
    out.push(frame(
        "frame-lock-grant-wrapped-len-255",
        "wrapped_len below 256.",
        &["LK-FRM-4"],
        "lock_grant",
        &g,
    ));
    let mut g = s.lock_grant.clone();
    let at = 86 + 256;
    g[at..at + 2].copy_from_slice(&0u16.to_be_bytes());
    out.push(frame(
        "frame-lock-grant-sig-len-0",
        "sig_len 0.",
        &["LK-FRM-4"],
        "lock_grant",
        &g,
    ));
    let mut r = s.revocation.clone();
    r[74..76].copy_from_slice(&600u16.to_be_bytes());
    out.push(frame(
        "frame-revocation-sig-len-600",
        "sig_len above 512.",
        &["LK-FRM-4"],
        "revocation",
        &r,
    ));
    for kind in [0u8, 7, 255] {
        let mut e = s.event.clone();
        e[42] = kind;
        out.push(frame(
            &format!("frame-lock-event-kind-{kind}"),
            "An event kind outside 1..=6.",
            &["LK-FRM-4"],
            "lock_event",
            &e,
        ));
    }
    // LockStatus fields (LK-FRM-4). The sample's counters are (19, 1 234) then (24, 7).
    let st = &s.status;
    let malformed: [(&str, &str, Vec<u8>); 6] = [
        (
            "unsorted-counters",
            "Counters not in increasing reason order.",
            {
                let mut b = st.clone();
                let (first, second) = (b[59..65].to_vec(), b[65..71].to_vec());
                b[59..65].copy_from_slice(&second);
                b[65..71].copy_from_slice(&first);
                b
            },
        ),
        ("duplicate-counter", "The same reason counted twice.", {
            let mut b = st.clone();
            b[65..67].copy_from_slice(&19u16.to_be_bytes());
            b
        }),
        (
            "battery-150",
            "A battery of 150 % (only 0..=100 and 255 are defined).",
            {
                let mut b = st.clone();
                b[46] = 150;
                b
            },
        ),
        ("reserved-flag", "Flag bit 3, which v1 does not define.", {
            let mut b = st.clone();
            b[47] |= 0x08;
            b
        }),
        ("n-33", "33 counters announced (at most 32).", {
            let mut b = st.clone();
            b[58] = 33;
            b
        }),
        (
            "counters-cut",
            "The frame ends inside the second counter.",
            st[..68].to_vec(),
        ),
    ];
    for (id, comment, b) in malformed {
        out.push(frame(
            &format!("frame-lock-status-{id}"),
            comment,
            &[if id == "counters-cut" {
                "LK-FRM-1"
            } else {
                "LK-FRM-4"
            }],
            "lock_status",
            &b,
        ));
    }
    // The edges that are valid: 32 counters, no battery, every flag, a 512-byte signature.
    let edge = LockStatus {
        lock_id: LOCK_A,
        status_id: latchkey::EventId([6; 16]),
        timestamp_ms: T0,
        uptime_s: u32::MAX,
        battery_pct: None,
        flags: StatusFlags::ALL,
        sessions: 0,
        revocations: u32::MAX,
        lockouts: 0,
        counters: (0..32u16)
            .map(|i| StatusCounter {
                reason: i * 2 + 1,
                count: u32::MAX - u32::from(i),
            })
            .collect(),
    };
    let mut e = Vec::new();
    let _ = edge.encode_unsigned(&mut e);
    let _ = append_signature(&mut e, &[0xCD; 512]);
    out.push(frame(
        "frame-lock-status-edges",
        "32 counters, no battery (255), every defined flag and a 512-byte signature are in range.",
        &["LK-FRM-4"],
        "lock_status",
        &e,
    ));
    for kind in [EventKind::Lockout, EventKind::LockoutEnded] {
        let ev = LockEvent {
            lock_id: LOCK_A,
            event_id: latchkey::EventId([kind as u8; 16]),
            timestamp_ms: T0,
            kind,
            reason: if kind == EventKind::Lockout {
                Reason::BadResponseMac.code()
            } else {
                0
            },
            grant_id: GrantId([4; 16]),
            session_id: SessionId([5; 8]),
        };
        let mut e = Vec::new();
        ev.encode_unsigned(&mut e);
        let _ = append_signature(&mut e, &[0xAB; 256]);
        out.push(frame(
            &format!("frame-lock-event-{}", kind.name().replace('_', "-")),
            "Event kinds 5 (lockout) and 6 (lockout ended) are in range.",
            &["LK-FRM-4"],
            "lock_event",
            &e,
        ));
    }
    // A 4096-bit-sized signature field is still in range.
    let ev = LockEvent {
        lock_id: LOCK_A,
        event_id: latchkey::EventId([3; 16]),
        timestamp_ms: T0,
        kind: EventKind::GrantInstalled,
        reason: 0,
        grant_id: GrantId([4; 16]),
        session_id: SessionId([5; 8]),
    };
    let mut e = Vec::new();
    ev.encode_unsigned(&mut e);
    let _ = append_signature(&mut e, &[0xAB; 512]);
    out.push(frame(
        "frame-lock-event-sig-512",
        "A 512-byte signature field (RSA-4096) is in range.",
        &["LK-FRM-4"],
        "lock_event",
        &e,
    ));
    let gg = GuestGrantHeader {
        guest_id: GuestId([1; 16]),
        lock_id: LOCK_A,
        request_id: RequestId([2; 16]),
        grant_id: GrantId([3; 16]),
        session_id: SessionId([4; 8]),
        issued_at: 0,
        not_before: 0,
        not_after: u64::MAX,
    };
    let mut b = [0u8; 158];
    let _ = gg.encode(&[0; 12], &[0; 48], &mut b);
    out.push(frame(
        "frame-guest-grant-extremes",
        "Times at 0 and u64::MAX decode (meaning is checked by the roles).",
        &["LK-FRM-4"],
        "guest_grant",
        &b,
    ));
    out
}
