//! A complete Latchkey unlock in memory, every frame printed as annotated hex with the
//! verdict of each check the receiver runs. Then two attacks being refused: a replayed
//! beacon and a guest holding the wrong key.
//!
//! Run: `cargo run -p latchkey --example unlock`

use std::collections::BTreeSet;

use latchkey::crypto::EnrollmentKey;
use latchkey::crypto::rsa::RsaPrivateKey;
use latchkey::frame::{FrameKind, layout};
use latchkey::lock::{BeaconOutcome, ConnId};
use latchkey::{
    Guest, GuestConfig, GuestId, Issuer, IssuerConfig, Lock, LockConfig, LockId, Reason, UnixMillis,
};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

fn key(name: &str) -> Result<RsaPrivateKey, String> {
    let path = format!(
        "{}/../vectors/keys/{name}.pk8.der",
        env!("CARGO_MANIFEST_DIR")
    );
    let der = std::fs::read(&path).map_err(|e| format!("{path}: {e}"))?;
    RsaPrivateKey::from_pkcs8_der(&der).map_err(|e| format!("{path}: {e}"))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn show(title: &str, kind: FrameKind, bytes: &[u8]) {
    println!("\n── {title} ({} bytes)", bytes.len());
    for f in layout(kind, bytes) {
        let v = &bytes[f.start..f.end];
        let shown = if v.len() > 24 {
            format!("{}…{} ", hex(&v[..12]), hex(&v[v.len() - 4..]))
        } else {
            hex(v)
        };
        let decoded = match (f.name, v.len()) {
            (_, 8)
                if f.name.ends_with("_at")
                    || f.name.starts_with("not_")
                    || f.name == "timestamp" =>
            {
                format!(
                    "= {} s",
                    u64::from_be_bytes(v.try_into().unwrap_or_default())
                )
            }
            ("step", 4) | ("lock_time", 4) | ("phone_time", 4) => {
                format!("= {}", u32::from_be_bytes(v.try_into().unwrap_or_default()))
            }
            ("attempt", 2) => format!("= {}", u16::from_be_bytes(v.try_into().unwrap_or_default())),
            _ => String::new(),
        };
        println!(
            "  {:>3}..{:<3} {:<20} {shown} {decoded}",
            f.start, f.end, f.name
        );
    }
}

/// Prints the receiver's checks in the spec's order: passed up to the failing one.
fn verdict<T: std::fmt::Debug>(checks: &[(&str, &str)], result: &Result<T, Reason>) {
    let failed_at = match result {
        Ok(_) => None,
        Err(r) => Some(
            checks
                .iter()
                .position(|(id, _)| r.requirements().contains(id))
                .unwrap_or(0),
        ),
    };
    for (i, (id, what)) in checks.iter().enumerate() {
        let mark = match failed_at {
            Some(f) if i == f => "✗",
            Some(f) if i > f => "·",
            _ => "✓",
        };
        println!("     {mark} {id:<10} {what}");
    }
    match result {
        Ok(v) => println!("  ⇒ accepted: {v:?}"),
        Err(r) => println!("  ⇒ REJECTED: {r}"),
    }
}

const BEACON_CHECKS: &[(&str, &str)] = &[
    ("LK-ADV-1", "company id"),
    ("LK-FRM-1", "length 23, version 1"),
    ("LK-ADV-2", "step within ±1 of the lock's"),
    ("LK-ADV-3", "tag names a session for that step"),
    ("LK-ADV-4", "RSSI ≥ threshold"),
    ("LK-ADV-5", "AES-CMAC"),
    ("LK-ADV-6", "session valid now"),
    ("LK-ADV-7", "not a replay"),
    ("LK-ADV-8", "pending cap"),
];
const SELECT_CHECKS: &[(&str, &str)] = &[
    ("LK-FRM-1", "length 11, version 1"),
    ("LK-SEL-1", "a pending authentication for tag+attempt"),
    ("LK-SEL-2", "within the connection window"),
    ("LK-SEL-3", "challenge cap"),
];
const CHALLENGE_CHECKS: &[(&str, &str)] = &[
    ("LK-GST-5", "guest is unlocking, Select sent"),
    ("LK-FRM-1", "length 33, version 1"),
    ("LK-GST-1", "session id is ours"),
    ("LK-GST-2", "lock MAC (the lock holds our session)"),
    ("LK-GST-3", "lock clock within skew"),
    ("LK-GST-4", "grant still valid"),
];
const RESPONSE_CHECKS: &[(&str, &str)] = &[
    (
        "LK-RSP-1",
        "challenge outstanding on this connection (consumed)",
    ),
    ("LK-FRM-1", "length 20"),
    ("LK-RSP-3", "within the response budget"),
    ("LK-RSP-7", "session live (not revoked, not expired)"),
    ("LK-RSP-4", "step of the arming beacon"),
    ("LK-RSP-5", "phone clock within skew"),
    ("LK-RSP-6", "response MAC"),
];
const GRANT_CHECKS: &[(&str, &str)] = &[
    ("LK-FRM-1", "structure"),
    ("LK-GRT-1", "lock id is ours"),
    ("LK-GRT-2", "issuer's RSA-PSS signature"),
    ("LK-GRT-4", "validity sane"),
    ("LK-GRT-5", "not expired"),
    ("LK-GRT-6", "not issued in the future"),
    ("LK-GRT-7", "not revoked"),
    ("LK-GRT-8", "session id unique"),
    ("LK-GRT-9", "session cap"),
    ("LK-GRT-3", "RSA-OAEP unwrap"),
];
const REQUEST_CHECKS: &[(&str, &str)] = &[
    ("LK-FRM-1", "structure"),
    ("LK-ISS-1", "topic names the sender"),
    ("LK-ISS-2", "guest enrolled, not revoked"),
    ("LK-ISS-3", "AES-256-GCM seal"),
    ("LK-ISS-4", "timestamp within window"),
    ("LK-ISS-5", "request id not seen"),
    ("LK-ISS-8", "request cache cap"),
    ("LK-ISS-6", "lock registered"),
    ("LK-ISS-7", "guest allowed at lock"),
    ("LK-ISS-9", "validity"),
];
const GUEST_GRANT_CHECKS: &[(&str, &str)] = &[
    ("LK-FRM-1", "structure"),
    ("LK-GGR-1", "guest id is ours"),
    ("LK-GGR-2", "answers our outstanding request"),
    ("LK-GGR-3", "AES-256-GCM seal"),
    ("LK-GGR-4", "validity"),
];

fn main() -> Result<(), String> {
    let mut rng = ChaCha20Rng::seed_from_u64(2026);
    let lock_id = LockId([0xA0; 16]);
    let guest_id = GuestId([0x61; 16]);
    let k_enr = EnrollmentKey::from_bytes([0x5A; 32]);
    let mut now = UnixMillis(1_800_000_010_000);
    let issuer_key = key("issuer")?;

    println!("Latchkey v1 — a complete unlock in memory (fixed test keys, seeded RNG)");
    println!(
        "lock {lock_id}  guest {guest_id}  now {} s (step {})",
        now.secs(),
        now.step().0
    );

    let mut issuer =
        Issuer::new(IssuerConfig::new(issuer_key.clone())).map_err(|e| e.to_string())?;
    issuer.add_lock(lock_id, key("lock-a")?.public_key());
    issuer.add_guest(guest_id, k_enr.clone(), BTreeSet::from([lock_id]));
    let mut lock = Lock::new(LockConfig::new(
        lock_id,
        key("lock-a")?,
        issuer_key.public_key(),
    ))
    .map_err(|e| e.to_string())?;
    let mut guest = Guest::new(GuestConfig::new(guest_id, k_enr)).map_err(|e| e.to_string())?;

    // 1. Grant request and grants.
    let req = guest.request_grant(now, lock_id, 600, &mut rng);
    show(
        "1. GrantRequest  guest → issuer  (MQTT latchkey/v1/requests/{guest})",
        FrameKind::GrantRequest,
        &req,
    );
    let issued = issuer.handle_request(now, guest_id, &req, &mut rng);
    verdict(
        REQUEST_CHECKS,
        &issued.as_ref().map(|g| g.grant_id).map_err(|r| *r),
    );
    let issued = issued.map_err(|e| e.to_string())?;

    show(
        "2. LockGrant  issuer → lock  (MQTT latchkey/v1/locks/{lock}/grants)",
        FrameKind::LockGrant,
        &issued.lock_grant,
    );
    let r = lock.handle_grant(now, &issued.lock_grant, &mut rng);
    verdict(GRANT_CHECKS, &r);

    show(
        "3. GuestGrant  issuer → guest  (MQTT latchkey/v1/guests/{guest}/grants)",
        FrameKind::GuestGrant,
        &issued.guest_grant,
    );
    let r = guest.handle_grant(now, &issued.guest_grant);
    verdict(GUEST_GRANT_CHECKS, &r);

    // 2. BLE.
    guest
        .start_unlock(now, lock_id, &mut rng)
        .map_err(|e| e.to_string())?;
    let beacon = guest.advertisement(now).ok_or("guest is not advertising")?;
    show(
        "4. Beacon  guest → air  (manufacturer data, company 0xFFFF)",
        FrameKind::Beacon,
        &beacon,
    );
    println!("     heard at RSSI −52 dBm");
    let r = lock.handle_beacon(now, 0xFFFF, &beacon, -52);
    verdict(BEACON_CHECKS, &r);

    now = now.plus_ms(180);
    let conn = ConnId(1);
    let sel = guest.select(now).map_err(|e| e.to_string())?;
    show(
        "5. Select  guest → lock  (GATT write, +180 ms)",
        FrameKind::Select,
        &sel,
    );
    let ch = lock.handle_select(now, conn, &sel, &mut rng);
    verdict(SELECT_CHECKS, &ch.map(|_| "challenge issued"));
    let ch = ch.map_err(|e| e.to_string())?.to_bytes();

    now = now.plus_ms(40);
    show(
        "6. Challenge  lock → guest  (GATT read, +40 ms)",
        FrameKind::Challenge,
        &ch,
    );
    let resp = guest.handle_challenge(now, &ch);
    verdict(CHALLENGE_CHECKS, &resp.map(|_| "lock verified"));
    let resp = resp.map_err(|e| e.to_string())?;

    now = now.plus_ms(35);
    show(
        "7. Response  guest → lock  (GATT write with response, +35 ms)",
        FrameKind::Response,
        &resp,
    );
    let unlock = lock.handle_response(now, conn, &resp);
    verdict(RESPONSE_CHECKS, &unlock);
    let outcome = guest.handle_write_result(unlock.map(|_| ()).map_err(|r| r.att_code()));
    println!("\n  ★ UNLOCK: the lock opens; the guest learns {outcome:?} from the write response");

    // 3. Attacks.
    println!("\n━━ Attack 1: an eavesdropper replays the captured beacon");
    let r = lock.handle_beacon(now, 0xFFFF, &beacon, -40);
    verdict(BEACON_CHECKS, &r);
    assert!(!matches!(r, Ok(BeaconOutcome::Armed { .. })));

    println!("\n━━ Attack 2: a guest with the wrong enrollment key asks for a grant");
    let mut mallory = Guest::new(GuestConfig::new(
        guest_id,
        EnrollmentKey::from_bytes([1; 32]),
    ))
    .map_err(|e| e.to_string())?;
    let forged = mallory.request_grant(now, lock_id, 600, &mut rng);
    let r = issuer.handle_request(now, guest_id, &forged, &mut rng);
    verdict(REQUEST_CHECKS, &r.map(|g| g.grant_id));

    println!("\n━━ Attack 3: a forged beacon (random bytes where the MAC should be)");
    guest
        .start_unlock(now, lock_id, &mut rng)
        .map_err(|e| e.to_string())?;
    let mut forged_beacon = guest.advertisement(now).ok_or("guest is not advertising")?;
    forged_beacon[15..].copy_from_slice(&[0xEE; 8]);
    let r = lock.handle_beacon(now, 0xFFFF, &forged_beacon, -45);
    verdict(BEACON_CHECKS, &r);
    Ok(())
}
