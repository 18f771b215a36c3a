//! One test per requirement of spec/latchkey.md, named after it; each shows the accepting
//! case and the rejecting case with the reason the spec names.

mod common;

use common::*;
use latchkey::frame::{EventKind, MessageType, ResponseView};
use latchkey::lock::{BeaconOutcome, ConnId, GrantOutcome, MessageOutcome};
use latchkey::{GrantId, GuestId, LockId, Reason, SessionId, Step, UnixMillis};

fn flip(bytes: &[u8], i: usize) -> Vec<u8> {
    let mut v = bytes.to_vec();
    v[i] ^= 0x01;
    v
}

// ------------------------------------------------------------------ frames

#[test]
fn lk_frm_1_exact_length() {
    let mut w = World::new();
    w.grant();
    let b = w.beacon();
    assert_eq!(w.hear(&b[..22]), Err(Reason::Truncated));
    let mut long = b.to_vec();
    long.push(0);
    assert_eq!(w.hear(&long), Err(Reason::TrailingBytes));
    let g = w.issue(600);
    assert_eq!(
        w.lock.handle_grant(w.now, &g.lock_grant[..100], &mut w.rng),
        Err(Reason::Truncated)
    );
    let mut long = g.lock_grant.clone();
    long.push(0);
    assert_eq!(
        w.lock.handle_grant(w.now, &long, &mut w.rng),
        Err(Reason::TrailingBytes)
    );
    assert!(matches!(w.hear(&b), Ok(BeaconOutcome::Armed { .. })));
}

#[test]
fn lk_frm_2_version() {
    let mut w = World::new();
    w.grant();
    let mut b = w.beacon();
    let good = b;
    b[0] = 0x02;
    assert_eq!(w.hear(&b), Err(Reason::UnsupportedVersion));
    let g = w.issue(600);
    let mut bad = g.lock_grant.clone();
    bad[0] = 0;
    assert_eq!(
        w.lock.handle_grant(w.now, &bad, &mut w.rng),
        Err(Reason::UnsupportedVersion)
    );
    assert!(w.hear(&good).is_ok());
}

#[test]
fn lk_frm_3_type() {
    let mut w = World::new();
    let g = w.issue(600);
    assert_eq!(MessageType::of(&g.lock_grant), Ok(MessageType::LockGrant));
    assert_eq!(
        w.lock.handle_message(w.now, &g.guest_grant, &mut w.rng),
        Err(Reason::WrongType)
    );
    assert_eq!(
        w.lock.handle_grant(w.now, &g.guest_grant, &mut w.rng),
        Err(Reason::WrongType)
    );
    assert_eq!(
        w.guest.handle_grant(w.now, &g.lock_grant[..158]),
        Err(Reason::WrongType)
    );
    assert!(matches!(
        w.lock.handle_message(w.now, &g.lock_grant, &mut w.rng),
        Ok(MessageOutcome::Grant(GrantOutcome::Installed { .. }))
    ));
}

#[test]
fn lk_frm_4_field_ranges() {
    let mut w = World::new();
    let g = w.issue(600);
    let mut bad = g.lock_grant.clone();
    bad[82..84].copy_from_slice(&255u16.to_be_bytes()); // wrapped_len below 256
    assert_eq!(
        w.lock.handle_grant(w.now, &bad, &mut w.rng),
        Err(Reason::FieldOutOfRange)
    );
    let ev = w.lock.signed_event(
        w.now,
        EventKind::Unlock,
        None,
        GrantId::ZERO,
        SessionId::ZERO,
        &mut w.rng,
    );
    let mut bad_ev = ev.clone();
    bad_ev[42] = 9; // unknown event kind
    assert_eq!(
        w.issuer.verify_event(LOCK_A, &bad_ev),
        Err(Reason::FieldOutOfRange)
    );
    assert!(w.issuer.verify_event(LOCK_A, &ev).is_ok());
}

// ------------------------------------------------------------------ key schedule

#[test]
fn lk_key_1_guest_and_lock_derive_the_same_subkeys() {
    let mut w = World::new();
    let g = w.grant();
    let u = w.unlock().expect("unlock");
    assert_eq!(
        (u.grant_id, u.session_id, u.guest_id),
        (g.grant_id, g.session_id, GUEST)
    );
}

// ------------------------------------------------------------------ beacons

#[test]
fn lk_adv_1_company_id() {
    let mut w = World::new();
    w.grant();
    let b = w.beacon();
    assert_eq!(
        w.lock.handle_beacon(w.now, 0x004C, &b, RSSI_NEAR),
        Err(Reason::ForeignCompany)
    );
    assert!(Reason::ForeignCompany.is_noise());
    assert!(w.lock.handle_beacon(w.now, 0xFFFF, &b, RSSI_NEAR).is_ok());
}

#[test]
fn lk_adv_2_step_window() {
    let mut w = World::new();
    w.grant();
    let b = w.beacon(); // step s, T0 is 10 s into it
    // Heard two steps later: stale.
    let later = w.now.plus_ms(60_000);
    assert_eq!(
        w.lock.handle_beacon(later, 0xFFFF, &b, RSSI_NEAR),
        Err(Reason::StaleStep)
    );

    let mut w = World::new();
    w.grant();
    let t0 = w.now;
    w.now = t0.plus_ms(60_000);
    let future = w.beacon(); // guest two steps ahead of the lock
    assert_eq!(
        w.lock.handle_beacon(t0, 0xFFFF, &future, RSSI_NEAR),
        Err(Reason::FutureStep)
    );
    // One step ahead and one behind are inside the window.
    let mut w = World::new();
    w.grant();
    w.now = t0.plus_ms(30_000);
    let ahead = w.beacon();
    assert!(w.lock.handle_beacon(t0, 0xFFFF, &ahead, RSSI_NEAR).is_ok());
    let mut w = World::new();
    w.grant();
    let b = w.beacon();
    assert!(
        w.lock
            .handle_beacon(w.now.plus_ms(30_000), 0xFFFF, &b, RSSI_NEAR)
            .is_ok()
    );
}

#[test]
fn lk_adv_3_tag_lookup() {
    let mut w = World::new();
    w.grant();
    let b = w.beacon();
    assert_eq!(w.hear(&flip(&b, 7)), Err(Reason::UnknownTag));
    // A beacon of a session this lock never installed.
    let stranger = Forge::new(0x33, w.now);
    assert_eq!(
        w.hear(&stranger.beacon(w.now.step(), 1)),
        Err(Reason::UnknownTag)
    );
    assert!(w.hear(&b).is_ok());
}

#[test]
fn lk_adv_4_rssi_threshold() {
    let mut w = World::new();
    w.grant();
    let b = w.beacon();
    assert_eq!(
        w.lock.handle_beacon(w.now, 0xFFFF, &b, -71),
        Err(Reason::RssiTooLow)
    );
    // 127 is HCI's "not available", not a strong signal.
    assert_eq!(
        w.lock.handle_beacon(w.now, 0xFFFF, &b, 127),
        Err(Reason::RssiTooLow)
    );
    assert!(w.lock.handle_beacon(w.now, 0xFFFF, &b, -70).is_ok());
}

#[test]
fn lk_adv_5_beacon_mac() {
    let mut w = World::new();
    w.grant();
    let b = w.beacon();
    assert_eq!(w.hear(&flip(&b, 20)), Err(Reason::BadBeaconMac));
    assert_eq!(w.hear(&flip(&b, 13)), Err(Reason::BadBeaconMac)); // attempt is MAC-covered
    assert!(w.hear(&b).is_ok());
}

#[test]
fn lk_adv_6_session_validity() {
    let mut w = World::new();
    let mut f = Forge::new(0x21, w.now);
    f.header.not_before = w.now.secs() + 120;
    f.header.not_after = w.now.secs() + 3600;
    let g = f.lock_grant(&mut w.rng);
    w.lock
        .handle_grant(w.now, &g, &mut w.rng)
        .expect("installs");
    let step = w.now.step();
    assert_eq!(w.hear(&f.beacon(step, 1)), Err(Reason::SessionNotYetValid));

    let mut w = World::new();
    let mut f = Forge::new(0x22, w.now);
    f.header.not_after = w.now.secs() + 5;
    let g = f.lock_grant(&mut w.rng);
    w.lock
        .handle_grant(w.now, &g, &mut w.rng)
        .expect("installs");
    let b = f.beacon(w.now.step(), 1);
    assert!(w.hear(&b).is_ok());
    let late = w.now.plus_ms(6_000);
    assert_eq!(
        w.lock
            .handle_beacon(late, 0xFFFF, &f.beacon(late.step(), 2), RSSI_NEAR),
        Err(Reason::SessionExpired)
    );
}

#[test]
fn lk_adv_7_replay() {
    let mut w = World::new();
    w.grant();
    let b = w.beacon();
    assert!(matches!(w.hear(&b), Ok(BeaconOutcome::Armed { .. })));
    assert_eq!(w.hear(&b), Ok(BeaconOutcome::AlreadyPending));
    w.challenge().expect("challenge");
    assert_eq!(w.hear(&b), Err(Reason::Replay));
}

#[test]
fn lk_adv_8_pending_cap() {
    let mut cfg = lock_config();
    cfg.max_pending = 1;
    let mut w = World::with_lock_config(cfg);
    let (f1, f2) = (Forge::new(1, w.now), Forge::new(2, w.now));
    for f in [&f1, &f2] {
        let g = f.lock_grant(&mut w.rng);
        w.lock
            .handle_grant(w.now, &g, &mut w.rng)
            .expect("installs");
    }
    let s = w.now.step();
    assert!(w.hear(&f1.beacon(s, 1)).is_ok());
    assert_eq!(w.hear(&f2.beacon(s, 1)), Err(Reason::PendingCapReached));
    // The same session's new attempt replaces its own pending entry, so it is not capped.
    assert!(w.hear(&f1.beacon(s, 2)).is_ok());
    w.lock
        .handle_select(w.now, ConnId(1), &f1.select(s, 2), &mut w.rng)
        .expect("select");
    assert!(w.hear(&f2.beacon(s, 1)).is_ok());
}

#[test]
fn lk_adv_9_replay_cache_cap() {
    let mut cfg = lock_config();
    cfg.replay_capacity = 16;
    let mut w = World::with_lock_config(cfg);
    let f = Forge::new(1, w.now);
    let g = f.lock_grant(&mut w.rng);
    w.lock
        .handle_grant(w.now, &g, &mut w.rng)
        .expect("installs");
    let s = w.now.step();
    for attempt in 0..16 {
        assert!(w.hear(&f.beacon(s, attempt)).is_ok());
    }
    assert_eq!(w.hear(&f.beacon(s, 16)), Err(Reason::ReplayCacheFull));
    // Entries leave with the window.
    w.advance(60_000);
    assert!(w.hear(&f.beacon(w.now.step(), 16)).is_ok());
}

// ------------------------------------------------------------------ select / challenge

#[test]
fn lk_sel_1_pending_lookup() {
    let mut w = World::new();
    w.grant();
    w.guest
        .start_unlock(w.now, LOCK_A, &mut w.rng)
        .expect("start");
    assert_eq!(w.challenge(), Err(Reason::NoPendingAuth)); // no beacon heard yet
    let b = w.beacon();
    w.hear(&b).expect("armed");
    let mut sel = w.guest.select(w.now).expect("select");
    sel[10] ^= 1; // another attempt
    assert_eq!(
        w.lock.handle_select(w.now, w.conn, &sel, &mut w.rng),
        Err(Reason::NoPendingAuth)
    );
    assert!(w.challenge().is_ok());
}

#[test]
fn lk_sel_2_connection_window() {
    let mut w = World::new();
    w.grant();
    let b = w.beacon();
    w.hear(&b).expect("armed");
    let sel = w.guest.select(w.now).expect("select");
    let late = w.now.plus_ms(10_001);
    assert_eq!(
        w.lock.handle_select(late, w.conn, &sel, &mut w.rng),
        Err(Reason::ConnectionWindowExpired)
    );

    let mut w = World::new();
    w.grant();
    let b = w.beacon();
    w.hear(&b).expect("armed");
    let sel = w.guest.select(w.now).expect("select");
    assert!(
        w.lock
            .handle_select(w.now.plus_ms(10_000), w.conn, &sel, &mut w.rng)
            .is_ok()
    );
}

#[test]
fn lk_sel_3_challenge_cap() {
    let mut cfg = lock_config();
    cfg.max_challenges = 1;
    let mut w = World::with_lock_config(cfg);
    let (f1, f2) = (Forge::new(1, w.now), Forge::new(2, w.now));
    for f in [&f1, &f2] {
        let g = f.lock_grant(&mut w.rng);
        w.lock
            .handle_grant(w.now, &g, &mut w.rng)
            .expect("installs");
    }
    let s = w.now.step();
    w.hear(&f1.beacon(s, 1)).expect("armed");
    w.hear(&f2.beacon(s, 1)).expect("armed");
    w.lock
        .handle_select(w.now, ConnId(1), &f1.select(s, 1), &mut w.rng)
        .expect("first");
    assert_eq!(
        w.lock
            .handle_select(w.now, ConnId(2), &f2.select(s, 1), &mut w.rng),
        Err(Reason::ChallengeCapReached)
    );
    w.lock.handle_disconnect(ConnId(1));
    assert!(
        w.lock
            .handle_select(w.now, ConnId(2), &f2.select(s, 1), &mut w.rng)
            .is_ok()
    );
}

#[test]
fn lk_sel_4_pending_consumed_by_select() {
    let mut w = World::new();
    w.grant();
    let b = w.beacon();
    w.hear(&b).expect("armed");
    let sel = w.guest.select(w.now).expect("select");
    assert!(
        w.lock
            .handle_select(w.now, ConnId(1), &sel, &mut w.rng)
            .is_ok()
    );
    assert_eq!(
        w.lock.handle_select(w.now, ConnId(2), &sel, &mut w.rng),
        Err(Reason::NoPendingAuth)
    );
}

#[test]
fn lk_chl_1_fresh_nonce_per_challenge() {
    let mut w = World::new();
    w.grant();
    let b = w.beacon();
    w.hear(&b).expect("armed");
    let c1 = w.challenge().expect("challenge");
    w.guest.cancel_unlock();
    let b = w.beacon();
    w.hear(&b).expect("armed");
    let c2 = w.challenge().expect("challenge");
    assert_ne!(c1[1..13], c2[1..13]);
}

// ------------------------------------------------------------------ response

#[test]
fn lk_rsp_1_outstanding_challenge_on_this_connection() {
    let mut w = World::new();
    w.grant();
    let b = w.beacon();
    w.hear(&b).expect("armed");
    let ch = w.challenge().expect("challenge");
    let resp = w.guest.handle_challenge(w.now, &ch).expect("response");
    assert_eq!(
        w.lock.handle_response(w.now, ConnId(99), &resp),
        Err(Reason::NoChallenge)
    );
    assert!(w.lock.handle_response(w.now, w.conn, &resp).is_ok());
}

#[test]
fn lk_rsp_2_challenge_single_use() {
    let mut w = World::new();
    w.grant();
    let b = w.beacon();
    w.hear(&b).expect("armed");
    let ch = w.challenge().expect("challenge");
    let resp = w.guest.handle_challenge(w.now, &ch).expect("response");
    assert!(w.lock.handle_response(w.now, w.conn, &resp).is_ok());
    assert_eq!(
        w.lock.handle_response(w.now, w.conn, &resp),
        Err(Reason::NoChallenge)
    );

    // A wrong answer burns the challenge too: no second guess.
    let mut w = World::new();
    w.grant();
    let b = w.beacon();
    w.hear(&b).expect("armed");
    let ch = w.challenge().expect("challenge");
    let resp = w.guest.handle_challenge(w.now, &ch).expect("response");
    assert_eq!(
        w.lock.handle_response(w.now, w.conn, &flip(&resp, 19)),
        Err(Reason::BadResponseMac)
    );
    assert_eq!(
        w.lock.handle_response(w.now, w.conn, &resp),
        Err(Reason::NoChallenge)
    );
}

#[test]
fn lk_rsp_3_response_budget() {
    let mut w = World::new();
    w.grant();
    let b = w.beacon();
    w.hear(&b).expect("armed");
    let ch = w.challenge().expect("challenge");
    let resp = w.guest.handle_challenge(w.now, &ch).expect("response");
    assert_eq!(
        w.lock.handle_response(w.now.plus_ms(2_001), w.conn, &resp),
        Err(Reason::LateResponse)
    );

    let mut w = World::new();
    w.grant();
    let b = w.beacon();
    w.hear(&b).expect("armed");
    let ch = w.challenge().expect("challenge");
    let resp = w.guest.handle_challenge(w.now, &ch).expect("response");
    assert!(
        w.lock
            .handle_response(w.now.plus_ms(2_000), w.conn, &resp)
            .is_ok()
    );
}

#[test]
fn lk_rsp_4_step_binding() {
    let mut w = World::new();
    w.grant();
    let b = w.beacon();
    w.hear(&b).expect("armed");
    let ch = w.challenge().expect("challenge");
    let resp = w.guest.handle_challenge(w.now, &ch).expect("response");
    let step = ResponseView::parse(&resp).expect("parse").step();
    let mut bad = resp;
    bad[4..8].copy_from_slice(&(step.0 + 1).to_be_bytes());
    assert_eq!(
        w.lock.handle_response(w.now, w.conn, &bad),
        Err(Reason::StepMismatch)
    );
}

#[test]
fn lk_rsp_5_phone_clock_skew() {
    let mut w = World::new();
    let f = Forge::new(1, w.now);
    let g = f.lock_grant(&mut w.rng);
    w.lock
        .handle_grant(w.now, &g, &mut w.rng)
        .expect("installs");
    let s = w.now.step();
    w.hear(&f.beacon(s, 1)).expect("armed");
    let ch = w
        .lock
        .handle_select(w.now, w.conn, &f.select(s, 1), &mut w.rng)
        .expect("ch")
        .to_bytes();
    let skewed = f.response(&ch, s, 1, w.now.secs_u32() + 31);
    assert_eq!(
        w.lock.handle_response(w.now, w.conn, &skewed),
        Err(Reason::ClockSkew)
    );

    w.hear(&f.beacon(s, 2)).expect("armed");
    let ch = w
        .lock
        .handle_select(w.now, w.conn, &f.select(s, 2), &mut w.rng)
        .expect("ch")
        .to_bytes();
    let ok = f.response(&ch, s, 2, w.now.secs_u32() - 30);
    assert!(w.lock.handle_response(w.now, w.conn, &ok).is_ok());
}

#[test]
fn lk_rsp_6_response_mac() {
    let mut w = World::new();
    w.grant();
    let b = w.beacon();
    w.hear(&b).expect("armed");
    let ch = w.challenge().expect("challenge");
    let resp = w.guest.handle_challenge(w.now, &ch).expect("response");
    assert_eq!(
        w.lock.handle_response(w.now, w.conn, &flip(&resp, 8)),
        Err(Reason::BadResponseMac)
    );
    let mut w = World::new();
    w.grant();
    assert!(w.unlock().is_ok());
}

#[test]
fn lk_rsp_7_session_still_live() {
    // Revoked between challenge and response.
    let mut w = World::new();
    let g = w.grant();
    let b = w.beacon();
    w.hear(&b).expect("armed");
    let ch = w.challenge().expect("challenge");
    let rev = w
        .issuer
        .revoke_grant(w.now, g.grant_id, &mut w.rng)
        .expect("revocation");
    w.lock
        .handle_revocation(w.now, &rev.payload)
        .expect("applied");
    let resp = w.guest.handle_challenge(w.now, &ch).expect("response");
    assert_eq!(
        w.lock.handle_response(w.now, w.conn, &resp),
        Err(Reason::SessionRevoked)
    );

    // Expired between challenge and response.
    let mut w = World::new();
    let mut f = Forge::new(1, w.now);
    f.header.not_after = w.now.secs() + 1;
    let g = f.lock_grant(&mut w.rng);
    w.lock
        .handle_grant(w.now, &g, &mut w.rng)
        .expect("installs");
    let s = w.now.step();
    w.hear(&f.beacon(s, 1)).expect("armed");
    let ch = w
        .lock
        .handle_select(w.now, w.conn, &f.select(s, 1), &mut w.rng)
        .expect("ch")
        .to_bytes();
    let later = w.now.plus_ms(1_500);
    let resp = f.response(&ch, s, 1, later.secs_u32());
    assert_eq!(
        w.lock.handle_response(later, w.conn, &resp),
        Err(Reason::SessionExpired)
    );
}

// ------------------------------------------------------------------ grants

#[test]
fn lk_grt_1_lock_id() {
    let mut w = World::new();
    let mut f = Forge::new(1, w.now);
    f.header.lock_id = LOCK_B;
    let g = f.lock_grant(&mut w.rng);
    assert_eq!(
        w.lock.handle_grant(w.now, &g, &mut w.rng),
        Err(Reason::WrongLock)
    );
    assert!(
        w.lock
            .handle_grant(
                w.now,
                &Forge::new(2, w.now).lock_grant(&mut w.rng),
                &mut w.rng
            )
            .is_ok()
    );
}

#[test]
fn lk_grt_2_issuer_signature() {
    let mut w = World::new();
    let f = Forge::new(1, w.now);
    let g = f.lock_grant(&mut w.rng);
    assert_eq!(
        w.lock.handle_grant(w.now, &flip(&g, 60), &mut w.rng),
        Err(Reason::BadSignature)
    );
    let rogue = f.lock_grant_with(
        &mut w.rng,
        &key("rogue"),
        &key("lock-a").public_key(),
        &f.header.to_bytes(),
    );
    assert_eq!(
        w.lock.handle_grant(w.now, &rogue, &mut w.rng),
        Err(Reason::BadSignature)
    );
    assert!(w.lock.handle_grant(w.now, &g, &mut w.rng).is_ok());
}

#[test]
fn lk_grt_3_unwrap() {
    let mut w = World::new();
    let f = Forge::new(1, w.now);
    // Signed correctly, but the key was wrapped under another label (another header).
    let wrong_label = f.lock_grant_with(
        &mut w.rng,
        &key("issuer"),
        &key("lock-a").public_key(),
        b"other",
    );
    assert_eq!(
        w.lock.handle_grant(w.now, &wrong_label, &mut w.rng),
        Err(Reason::UnwrapFailed)
    );
    // Wrapped to another lock's key.
    let wrong_key = f.lock_grant_with(
        &mut w.rng,
        &key("issuer"),
        &key("lock-b").public_key(),
        &f.header.to_bytes(),
    );
    assert_eq!(
        w.lock.handle_grant(w.now, &wrong_key, &mut w.rng),
        Err(Reason::UnwrapFailed)
    );
    assert!(
        w.lock
            .handle_grant(w.now, &f.lock_grant(&mut w.rng), &mut w.rng)
            .is_ok()
    );
}

#[test]
fn lk_grt_4_validity_sane() {
    let mut w = World::new();
    let mut f = Forge::new(1, w.now);
    f.header.not_before = f.header.not_after;
    assert_eq!(
        w.lock
            .handle_grant(w.now, &f.lock_grant(&mut w.rng), &mut w.rng),
        Err(Reason::InvalidValidity)
    );
    f.header.not_before = f.header.not_after - 86_401;
    assert_eq!(
        w.lock
            .handle_grant(w.now, &f.lock_grant(&mut w.rng), &mut w.rng),
        Err(Reason::InvalidValidity)
    );
    f.header.not_before = f.header.not_after - 86_400;
    assert!(
        w.lock
            .handle_grant(w.now, &f.lock_grant(&mut w.rng), &mut w.rng)
            .is_ok()
    );
}

#[test]
fn lk_grt_5_not_expired() {
    let mut w = World::new();
    let mut f = Forge::new(1, w.now);
    f.header.not_after = w.now.secs();
    assert_eq!(
        w.lock
            .handle_grant(w.now, &f.lock_grant(&mut w.rng), &mut w.rng),
        Err(Reason::GrantExpired)
    );
    f.header.not_after = w.now.secs() + 1;
    assert!(
        w.lock
            .handle_grant(w.now, &f.lock_grant(&mut w.rng), &mut w.rng)
            .is_ok()
    );
}

#[test]
fn lk_grt_6_issued_in_future() {
    let mut w = World::new();
    let mut f = Forge::new(1, w.now);
    f.header.issued_at = w.now.secs() + 31;
    assert_eq!(
        w.lock
            .handle_grant(w.now, &f.lock_grant(&mut w.rng), &mut w.rng),
        Err(Reason::IssuedInFuture)
    );
    f.header.issued_at = w.now.secs() + 30;
    assert!(
        w.lock
            .handle_grant(w.now, &f.lock_grant(&mut w.rng), &mut w.rng)
            .is_ok()
    );
}

#[test]
fn lk_grt_7_revoked_grant_never_installs() {
    let mut w = World::new();
    let f = Forge::new(1, w.now);
    let rev = f.revocation(&mut w.rng, w.now.secs());
    let out = w.lock.handle_revocation(w.now, &rev).expect("applied");
    assert!(!out.session_removed);
    assert_eq!(
        w.lock
            .handle_grant(w.now, &f.lock_grant(&mut w.rng), &mut w.rng),
        Err(Reason::GrantRevoked)
    );
    assert!(
        w.lock
            .handle_grant(
                w.now,
                &Forge::new(2, w.now).lock_grant(&mut w.rng),
                &mut w.rng
            )
            .is_ok()
    );
}

#[test]
fn lk_grt_8_session_id_unique() {
    let mut w = World::new();
    let f1 = Forge::new(1, w.now);
    let mut f2 = Forge::new(2, w.now);
    f2.header.session_id = f1.header.session_id;
    w.lock
        .handle_grant(w.now, &f1.lock_grant(&mut w.rng), &mut w.rng)
        .expect("first");
    assert_eq!(
        w.lock
            .handle_grant(w.now, &f2.lock_grant(&mut w.rng), &mut w.rng),
        Err(Reason::SessionIdCollision)
    );
    // The very same grant again is idempotent (QoS 1 redelivery).
    assert_eq!(
        w.lock
            .handle_grant(w.now, &f1.lock_grant(&mut w.rng), &mut w.rng),
        Ok(GrantOutcome::AlreadyInstalled)
    );
}

#[test]
fn lk_grt_9_session_cap() {
    let mut cfg = lock_config();
    cfg.max_sessions = 1;
    let mut w = World::with_lock_config(cfg);
    let mut f1 = Forge::new(1, w.now);
    f1.header.not_after = w.now.secs() + 60;
    w.lock
        .handle_grant(w.now, &f1.lock_grant(&mut w.rng), &mut w.rng)
        .expect("first");
    let f2 = Forge::new(2, w.now);
    assert_eq!(
        w.lock
            .handle_grant(w.now, &f2.lock_grant(&mut w.rng), &mut w.rng),
        Err(Reason::SessionCapReached)
    );
    // Once the first expires it makes room.
    w.now = w.now.plus_ms(61_000);
    assert!(
        w.lock
            .handle_grant(w.now, &f2.lock_grant(&mut w.rng), &mut w.rng)
            .is_ok()
    );
    assert_eq!(w.lock.stats().sessions, 1);
}

// ------------------------------------------------------------------ revocation

#[test]
fn lk_rev_1_lock_id() {
    let mut w = World::new();
    let mut f = Forge::new(1, w.now);
    f.header.lock_id = LOCK_B;
    assert_eq!(
        w.lock
            .handle_revocation(w.now, &f.revocation(&mut w.rng, w.now.secs())),
        Err(Reason::WrongLock)
    );
    let f = Forge::new(1, w.now);
    assert!(
        w.lock
            .handle_revocation(w.now, &f.revocation(&mut w.rng, w.now.secs()))
            .is_ok()
    );
}

#[test]
fn lk_rev_2_signature() {
    let mut w = World::new();
    let f = Forge::new(1, w.now);
    let forged = revocation_for(&mut w.rng, &f.header, w.now.secs(), &key("rogue"));
    assert_eq!(
        w.lock.handle_revocation(w.now, &forged),
        Err(Reason::BadSignature)
    );
    let rev = f.revocation(&mut w.rng, w.now.secs());
    assert_eq!(
        w.lock.handle_revocation(w.now, &flip(&rev, 40)),
        Err(Reason::BadSignature)
    );
    assert!(w.lock.handle_revocation(w.now, &rev).is_ok());
}

#[test]
fn lk_rev_3_revocation_removes_session_at_once() {
    let mut w = World::new();
    let g = w.grant();
    let b = w.beacon();
    w.hear(&b).expect("armed");
    let rev = w
        .issuer
        .revoke_grant(w.now, g.grant_id, &mut w.rng)
        .expect("revocation");
    let out = w
        .lock
        .handle_message(w.now, &rev.payload, &mut w.rng)
        .expect("applied");
    assert!(matches!(out, MessageOutcome::Revocation(r) if r.session_removed));
    assert!(!w.lock.has_session(&g.session_id));
    assert_eq!(w.lock.stats().pending, 0);
    assert_eq!(w.challenge(), Err(Reason::NoPendingAuth));
    w.guest.cancel_unlock();
    w.advance(30_000);
    let b = w.beacon();
    assert_eq!(w.hear(&b), Err(Reason::UnknownTag));
}

#[test]
fn lk_rev_3_challenge_of_a_revoked_session_never_unlocks_even_after_reinstall() {
    // Found by the lock_sm fuzz target: revoke while a challenge is outstanding, evict the
    // revocation by filling the list, redeliver the same grant: the old challenge must not
    // unlock.
    let mut cfg = lock_config();
    cfg.revocation_capacity = 16;
    let mut w = World::with_lock_config(cfg);
    let mut f = Forge::new(1, w.now);
    f.header.issued_at = w.now.secs() - 10;
    let g = f.lock_grant(&mut w.rng);
    w.lock
        .handle_grant(w.now, &g, &mut w.rng)
        .expect("installs");
    let s = w.now.step();
    w.hear(&f.beacon(s, 1)).expect("armed");
    let ch = w
        .lock
        .handle_select(w.now, w.conn, &f.select(s, 1), &mut w.rng)
        .expect("challenge")
        .to_bytes();
    w.lock
        .handle_revocation(w.now, &f.revocation(&mut w.rng, w.now.secs() - 5))
        .expect("revoked");
    for i in 2..=17u8 {
        let other = Forge::new(i, w.now);
        w.lock
            .handle_revocation(w.now, &other.revocation(&mut w.rng, w.now.secs()))
            .expect("revoked");
    }
    // The floor (issuer clock) still refuses the redelivered grant.
    assert_eq!(
        w.lock.handle_grant(w.now, &g, &mut w.rng),
        Err(Reason::GrantRevoked)
    );
    let resp = f.response(&ch, s, 1, w.now.secs_u32());
    assert_eq!(
        w.lock.handle_response(w.now, w.conn, &resp),
        Err(Reason::SessionRevoked)
    );
}

#[test]
fn lk_rsp_7_challenge_does_not_survive_its_session_being_replaced() {
    // A challenge belongs to one install of a session: after the session expired and another
    // grant took its slot, the old challenge answers `session_expired`.
    let mut w = World::new();
    let mut f = Forge::new(1, w.now);
    f.header.not_after = w.now.secs() + 1;
    w.lock
        .handle_grant(w.now, &f.lock_grant(&mut w.rng), &mut w.rng)
        .expect("installs");
    let s = w.now.step();
    w.hear(&f.beacon(s, 1)).expect("armed");
    let ch = w
        .lock
        .handle_select(w.now, w.conn, &f.select(s, 1), &mut w.rng)
        .expect("challenge")
        .to_bytes();
    w.lock.handle_timeout(w.now.plus_ms(1_200));
    assert_eq!(w.lock.stats().sessions, 0);
    let other = Forge::new(2, w.now);
    w.lock
        .handle_grant(
            w.now.plus_ms(1_300),
            &other.lock_grant(&mut w.rng),
            &mut w.rng,
        )
        .expect("installs");
    let later = w.now.plus_ms(1_500);
    let resp = f.response(&ch, s, 1, later.secs_u32());
    assert_eq!(
        w.lock.handle_response(later, w.conn, &resp),
        Err(Reason::SessionExpired)
    );
}

#[test]
fn lk_rev_4_revocation_list_bounded_with_floor() {
    let mut cfg = lock_config();
    cfg.revocation_capacity = 16;
    let mut w = World::with_lock_config(cfg);
    let base = w.now.secs();
    let forges: Vec<Forge> = (1..=17u8).map(|i| Forge::new(i, w.now)).collect();
    for (i, f) in forges.iter().enumerate() {
        let rev = f.revocation(&mut w.rng, base + i as u64);
        w.lock.handle_revocation(w.now, &rev).expect("applied");
    }
    assert_eq!(w.lock.stats().revocations, 16);
    // The first revocation was evicted, but its grant is still refused through the floor.
    assert_eq!(
        w.lock
            .handle_grant(w.now, &forges[0].lock_grant(&mut w.rng), &mut w.rng),
        Err(Reason::GrantRevoked)
    );
    // A grant issued after the floor installs.
    let mut fresh = Forge::new(100, w.now);
    fresh.header.issued_at = base + 1;
    assert!(
        w.lock
            .handle_grant(w.now, &fresh.lock_grant(&mut w.rng), &mut w.rng)
            .is_ok()
    );
}

// ------------------------------------------------------------------ guest

#[test]
fn lk_ggr_1_guest_id() {
    let mut w = World::new();
    let g = w.issue(600);
    let mut bad = g.guest_grant;
    bad[2] ^= 1;
    assert_eq!(w.guest.handle_grant(w.now, &bad), Err(Reason::WrongGuest));
    assert!(w.guest.handle_grant(w.now, &g.guest_grant).is_ok());
}

#[test]
fn lk_ggr_2_only_answers_to_our_requests() {
    let mut w = World::new();
    let g = w.issue(600);
    assert!(w.guest.handle_grant(w.now, &g.guest_grant).is_ok());
    // A replay of the same grant answers no outstanding request any more.
    assert_eq!(
        w.guest.handle_grant(w.now, &g.guest_grant),
        Err(Reason::UnknownRequest)
    );
}

#[test]
fn lk_ggr_3_seal() {
    let mut w = World::new();
    let g = w.issue(600);
    assert_eq!(
        w.guest.handle_grant(w.now, &flip(&g.guest_grant, 120)),
        Err(Reason::BadSeal)
    );
    assert_eq!(
        w.guest.handle_grant(w.now, &flip(&g.guest_grant, 95)),
        Err(Reason::BadSeal)
    ); // not_after is in the AAD
    assert!(w.guest.handle_grant(w.now, &g.guest_grant).is_ok());
}

#[test]
fn lk_ggr_4_validity() {
    let mut w = World::new();
    let g = w.issue(60);
    assert_eq!(
        w.guest.handle_grant(w.now.plus_ms(61_000), &g.guest_grant),
        Err(Reason::GrantExpired)
    );
    let mut w = World::new();
    let g = w.issue(60);
    assert!(
        w.guest
            .handle_grant(w.now.plus_ms(59_000), &g.guest_grant)
            .is_ok()
    );
}

#[test]
fn lk_gst_1_challenge_names_our_session() {
    let mut w = World::new();
    w.grant();
    let b = w.beacon();
    w.hear(&b).expect("armed");
    let ch = w.challenge().expect("challenge");
    assert_eq!(
        w.guest.handle_challenge(w.now, &flip(&ch, 20)),
        Err(Reason::SessionMismatch)
    );
    assert!(w.guest.handle_challenge(w.now, &ch).is_ok());
}

#[test]
fn lk_gst_2_lock_mac() {
    let mut w = World::new();
    w.grant();
    let b = w.beacon();
    w.hear(&b).expect("armed");
    let ch = w.challenge().expect("challenge");
    assert_eq!(
        w.guest.handle_challenge(w.now, &flip(&ch, 30)),
        Err(Reason::BadLockMac)
    );
    assert_eq!(
        w.guest.handle_challenge(w.now, &flip(&ch, 3)),
        Err(Reason::BadLockMac)
    ); // nonce covered
    assert!(w.guest.handle_challenge(w.now, &ch).is_ok());
}

#[test]
fn lk_gst_3_lock_clock() {
    let mut cfg = lock_config();
    cfg.connection_window_ms = 60_000;
    let mut w = World::with_lock_config(cfg);
    w.grant();
    let b = w.beacon();
    w.hear(&b).expect("armed");
    let sel = w.guest.select(w.now).expect("select");
    // The lock's clock runs 31 s ahead of the guest's.
    let ch = w
        .lock
        .handle_select(w.now.plus_ms(31_000), w.conn, &sel, &mut w.rng)
        .expect("ch")
        .to_bytes();
    assert_eq!(w.guest.handle_challenge(w.now, &ch), Err(Reason::ClockSkew));
    assert!(w.guest.handle_challenge(w.now.plus_ms(2_000), &ch).is_ok());
}

#[test]
fn lk_gst_4_grant_still_valid() {
    let mut w = World::new();
    let g = w.issue(20);
    w.lock
        .handle_grant(w.now, &g.lock_grant, &mut w.rng)
        .expect("lock");
    w.guest.handle_grant(w.now, &g.guest_grant).expect("guest");
    let b = w.beacon();
    w.hear(&b).expect("armed");
    let ch = w.challenge().expect("challenge");
    assert_eq!(
        w.guest.handle_challenge(w.now.plus_ms(21_000), &ch),
        Err(Reason::GrantExpired)
    );
    assert_eq!(
        w.guest
            .start_unlock(w.now.plus_ms(21_000), LOCK_A, &mut w.rng),
        Err(Reason::GrantExpired)
    );
}

#[test]
fn lk_gst_5_guest_state() {
    let mut w = World::new();
    assert_eq!(
        w.guest.start_unlock(w.now, LOCK_A, &mut w.rng),
        Err(Reason::NoGrant)
    );
    w.grant();
    assert_eq!(w.guest.select(w.now), Err(Reason::NotUnlocking));
    w.guest
        .start_unlock(w.now, LOCK_A, &mut w.rng)
        .expect("start");
    let b = w.beacon();
    w.hear(&b).expect("armed");
    let sel = w.guest.select(w.now).expect("select");
    let ch = w
        .lock
        .handle_select(w.now, w.conn, &sel, &mut w.rng)
        .expect("ch")
        .to_bytes();
    let resp = w.guest.handle_challenge(w.now, &ch).expect("response");
    // The same challenge again: the guest already answered it.
    assert_eq!(
        w.guest.handle_challenge(w.now, &ch),
        Err(Reason::NotUnlocking)
    );
    assert!(w.lock.handle_response(w.now, w.conn, &resp).is_ok());
    assert_eq!(w.guest.handle_write_result(Ok(())), Ok(()));
}

// ------------------------------------------------------------------ issuer

#[test]
fn lk_iss_1_topic_names_the_sender() {
    let mut w = World::new();
    let req = w.guest.request_grant(w.now, LOCK_A, 600, &mut w.rng);
    assert_eq!(
        w.issuer
            .handle_request(w.now, GuestId([9; 16]), &req, &mut w.rng)
            .err(),
        Some(Reason::GuestMismatch)
    );
    assert!(
        w.issuer
            .handle_request(w.now, GUEST, &req, &mut w.rng)
            .is_ok()
    );
}

#[test]
fn lk_iss_2_guest_enrolled_and_not_revoked() {
    let mut w = World::new();
    let stranger = GuestId([0x77; 16]);
    let mut other = latchkey::Guest::new(latchkey::GuestConfig::new(stranger, enrollment_key()))
        .expect("guest");
    let req = other.request_grant(w.now, LOCK_A, 600, &mut w.rng);
    assert_eq!(
        w.issuer
            .handle_request(w.now, stranger, &req, &mut w.rng)
            .err(),
        Some(Reason::UnknownGuest)
    );
    let req = w.guest.request_grant(w.now, LOCK_A, 600, &mut w.rng);
    assert!(
        w.issuer
            .handle_request(w.now, GUEST, &req, &mut w.rng)
            .is_ok()
    );
    assert!(w.issuer.revoke_guest(&GUEST));
    let req = w.guest.request_grant(w.now, LOCK_A, 600, &mut w.rng);
    assert_eq!(
        w.issuer
            .handle_request(w.now, GUEST, &req, &mut w.rng)
            .err(),
        Some(Reason::GuestRevoked)
    );
}

#[test]
fn lk_iss_3_request_seal() {
    let mut w = World::new();
    let req = w.guest.request_grant(w.now, LOCK_A, 600, &mut w.rng);
    assert_eq!(
        w.issuer
            .handle_request(w.now, GUEST, &flip(&req, 80), &mut w.rng)
            .err(),
        Some(Reason::BadSeal)
    );
    assert_eq!(
        w.issuer
            .handle_request(w.now, GUEST, &flip(&req, 20), &mut w.rng)
            .err(),
        Some(Reason::BadSeal)
    ); // lock id in AAD
    let mut wrong_key = latchkey::Guest::new(latchkey::GuestConfig::new(
        GUEST,
        latchkey::crypto::EnrollmentKey::from_bytes([1; 32]),
    ))
    .expect("guest");
    let forged = wrong_key.request_grant(w.now, LOCK_A, 600, &mut w.rng);
    assert_eq!(
        w.issuer
            .handle_request(w.now, GUEST, &forged, &mut w.rng)
            .err(),
        Some(Reason::BadSeal)
    );
    assert!(
        w.issuer
            .handle_request(w.now, GUEST, &req, &mut w.rng)
            .is_ok()
    );
}

#[test]
fn lk_iss_4_timestamp_window() {
    let mut w = World::new();
    let req = w.guest.request_grant(w.now, LOCK_A, 600, &mut w.rng);
    assert_eq!(
        w.issuer
            .handle_request(w.now.plus_ms(61_000), GUEST, &req, &mut w.rng)
            .err(),
        Some(Reason::StaleRequest)
    );
    let mut w = World::new();
    let future = w
        .guest
        .request_grant(w.now.plus_ms(61_000), LOCK_A, 600, &mut w.rng);
    assert_eq!(
        w.issuer
            .handle_request(w.now, GUEST, &future, &mut w.rng)
            .err(),
        Some(Reason::FutureRequest)
    );
    let mut w = World::new();
    let req = w.guest.request_grant(w.now, LOCK_A, 600, &mut w.rng);
    assert!(
        w.issuer
            .handle_request(w.now.plus_ms(60_000), GUEST, &req, &mut w.rng)
            .is_ok()
    );
}

#[test]
fn lk_iss_5_restarted_issuer_refuses_requests_from_before_the_restart() {
    let mut w = World::new();
    let req = w.guest.request_grant(w.now, LOCK_A, 600, &mut w.rng);
    let g = w
        .issuer
        .handle_request(w.now, GUEST, &req, &mut w.rng)
        .expect("granted");
    // The issuer restarts: its request cache is gone, its live grants are restored.
    let live = w.issuer.live_grants();
    assert_eq!(live.len(), 1);
    let mut restarted =
        latchkey::Issuer::new(latchkey::IssuerConfig::new(key("issuer"))).expect("issuer");
    restarted.add_lock(LOCK_A, key("lock-a").public_key());
    restarted.add_guest(GUEST, enrollment_key(), [LOCK_A].into());
    for l in live {
        restarted.restore_live_grant(l);
    }
    let restart = w.now.plus_ms(1_000);
    restarted.refuse_requests_before(restart.secs());
    assert_eq!(
        restarted
            .handle_request(restart, GUEST, &req, &mut w.rng)
            .err(),
        Some(Reason::StaleRequest)
    );
    // Grants issued before the restart can still be revoked.
    assert!(
        restarted
            .revoke_grant(restart, g.grant_id, &mut w.rng)
            .is_some()
    );
    // New requests work.
    let fresh = w.guest.request_grant(restart, LOCK_A, 600, &mut w.rng);
    assert!(
        restarted
            .handle_request(restart, GUEST, &fresh, &mut w.rng)
            .is_ok()
    );
}

#[test]
fn lk_iss_5_request_replay() {
    let mut w = World::new();
    let req = w.guest.request_grant(w.now, LOCK_A, 600, &mut w.rng);
    assert!(
        w.issuer
            .handle_request(w.now, GUEST, &req, &mut w.rng)
            .is_ok()
    );
    assert_eq!(
        w.issuer
            .handle_request(w.now, GUEST, &req, &mut w.rng)
            .err(),
        Some(Reason::RequestReplay)
    );
    // Still refused at the very end of the window; after it, the timestamp check refuses.
    assert_eq!(
        w.issuer
            .handle_request(w.now.plus_ms(60_000), GUEST, &req, &mut w.rng)
            .err(),
        Some(Reason::RequestReplay)
    );
    assert_eq!(
        w.issuer
            .handle_request(w.now.plus_ms(61_000), GUEST, &req, &mut w.rng)
            .err(),
        Some(Reason::StaleRequest)
    );
}

#[test]
fn lk_iss_6_lock_known() {
    let mut w = World::new();
    let req = w
        .guest
        .request_grant(w.now, LockId([0xC0; 16]), 600, &mut w.rng);
    assert_eq!(
        w.issuer
            .handle_request(w.now, GUEST, &req, &mut w.rng)
            .err(),
        Some(Reason::UnknownLock)
    );
    let req = w.guest.request_grant(w.now, LOCK_A, 600, &mut w.rng);
    assert!(
        w.issuer
            .handle_request(w.now, GUEST, &req, &mut w.rng)
            .is_ok()
    );
}

#[test]
fn lk_iss_7_guest_allowed_at_lock() {
    let mut w = World::new();
    let req = w.guest.request_grant(w.now, LOCK_B, 600, &mut w.rng);
    assert_eq!(
        w.issuer
            .handle_request(w.now, GUEST, &req, &mut w.rng)
            .err(),
        Some(Reason::NotAuthorized)
    );
}

#[test]
fn lk_iss_8_request_cache_cap() {
    let mut w = World::new();
    let mut cfg = latchkey::IssuerConfig::new(key("issuer"));
    cfg.request_cache_capacity = 16;
    w.issuer = latchkey::Issuer::new(cfg).expect("issuer");
    w.issuer.add_lock(LOCK_A, key("lock-a").public_key());
    w.issuer.add_guest(GUEST, enrollment_key(), [LOCK_A].into());
    for _ in 0..16 {
        let req = w.guest.request_grant(w.now, LOCK_A, 600, &mut w.rng);
        assert!(
            w.issuer
                .handle_request(w.now, GUEST, &req, &mut w.rng)
                .is_ok()
        );
    }
    let req = w.guest.request_grant(w.now, LOCK_A, 600, &mut w.rng);
    assert_eq!(
        w.issuer
            .handle_request(w.now, GUEST, &req, &mut w.rng)
            .err(),
        Some(Reason::RequestCacheFull)
    );
    // Entries leave with the window.
    w.advance(62_000);
    let req = w.guest.request_grant(w.now, LOCK_A, 600, &mut w.rng);
    assert!(
        w.issuer
            .handle_request(w.now, GUEST, &req, &mut w.rng)
            .is_ok()
    );
}

#[test]
fn lk_iss_9_granted_validity() {
    let mut w = World::new();
    let req = w.guest.request_grant(w.now, LOCK_A, 0, &mut w.rng);
    assert_eq!(
        w.issuer
            .handle_request(w.now, GUEST, &req, &mut w.rng)
            .err(),
        Some(Reason::InvalidValidity)
    );
    let g = w.issue(u32::MAX);
    assert_eq!(
        g.not_after - w.now.secs(),
        w.issuer.config().max_grant_validity_s
    );
    let g = w.issue(120);
    assert_eq!(g.not_after - w.now.secs(), 120);
}

#[test]
fn lk_iss_10_live_grant_cap() {
    let mut w = World::new();
    let mut cfg = latchkey::IssuerConfig::new(key("issuer"));
    cfg.max_live_grants = 1;
    w.issuer = latchkey::Issuer::new(cfg).expect("issuer");
    w.issuer.add_lock(LOCK_A, key("lock-a").public_key());
    w.issuer.add_guest(GUEST, enrollment_key(), [LOCK_A].into());
    let g = w.issue(60);
    let req = w.guest.request_grant(w.now, LOCK_A, 60, &mut w.rng);
    assert_eq!(
        w.issuer
            .handle_request(w.now, GUEST, &req, &mut w.rng)
            .err(),
        Some(Reason::GrantCapReached)
    );
    // Revoking (or expiry) frees the slot.
    assert!(
        w.issuer
            .revoke_grant(w.now, g.grant_id, &mut w.rng)
            .is_some()
    );
    let req = w.guest.request_grant(w.now, LOCK_A, 60, &mut w.rng);
    assert!(
        w.issuer
            .handle_request(w.now, GUEST, &req, &mut w.rng)
            .is_ok()
    );
}

// ------------------------------------------------------------------ events

#[test]
fn lk_evt_1_event_signature() {
    let mut w = World::new();
    let ev = w.lock.signed_event(
        w.now,
        EventKind::Rejection,
        Some(Reason::BadBeaconMac),
        GrantId::ZERO,
        SessionId::ZERO,
        &mut w.rng,
    );
    let parsed = w.issuer.verify_event(LOCK_A, &ev).expect("valid");
    assert_eq!(parsed.reason, Reason::BadBeaconMac.code());
    assert_eq!(
        w.issuer.verify_event(LOCK_A, &flip(&ev, 44)),
        Err(Reason::BadEventSignature)
    );
}

#[test]
fn lk_evt_2_event_lock_matches_topic() {
    let mut w = World::new();
    let ev = w.lock.signed_event(
        w.now,
        EventKind::Unlock,
        None,
        GrantId::ZERO,
        SessionId::ZERO,
        &mut w.rng,
    );
    assert_eq!(w.issuer.verify_event(LOCK_B, &ev), Err(Reason::WrongLock));
    assert!(w.issuer.verify_event(LOCK_A, &ev).is_ok());
}

// ------------------------------------------------------------------ time and crypto hygiene

#[test]
fn lk_tim_1_time_going_backwards_never_extends_a_budget() {
    let mut w = World::new();
    w.grant();
    let b = w.beacon();
    w.hear(&b).expect("armed");
    let ch = w.challenge().expect("challenge");
    let resp = w.guest.handle_challenge(w.now, &ch).expect("response");
    // The lock sees a later instant, then its clock jumps back: the later instant stands.
    w.lock.handle_timeout(w.now.plus_ms(1_000));
    w.lock.handle_disconnect(ConnId(12345));
    let _ = w
        .lock
        .handle_beacon(w.now.plus_ms(2_500), 0xFFFF, &b, RSSI_NEAR);
    assert_eq!(
        w.lock.handle_response(w.now, w.conn, &resp),
        Err(Reason::LateResponse)
    );
}

#[test]
fn lk_cry_3_debug_output_has_no_secrets() {
    let mut w = World::new();
    w.grant();
    let dump = format!("{:?} {:?} {:?}", w.lock, w.guest, w.issuer);
    assert!(dump.contains("<redacted>"));
    // The enrollment key is 0x5A repeated: neither its hex nor its decimal bytes appear.
    assert!(!dump.contains("5a5a5a"));
    assert!(!dump.contains("90, 90, 90"));
}

#[test]
fn full_unlock_in_memory() {
    let mut w = World::new();
    let g = w.grant();
    let old = w.beacon();
    w.hear(&old).expect("armed");
    let ch = w.challenge().expect("challenge");
    let u = w.respond(&ch).expect("unlocks");
    assert_eq!(u.session_id, g.session_id);
    assert_eq!(w.guest.handle_write_result(Ok(())), Ok(()));
    // The old beacon is spent; a new attempt in the same step works.
    assert_eq!(w.hear(&old), Err(Reason::Replay));
    assert!(w.unlock().is_ok());
    // After expiry nothing works.
    w.advance(3_601_000);
    assert!(!w.lock.has_session(&g.session_id));
    assert_eq!(
        w.guest.start_unlock(w.now, LOCK_A, &mut w.rng),
        Err(Reason::GrantExpired)
    );
}

#[test]
fn timers_are_reported_and_purge_state() {
    let mut w = World::new();
    w.grant();
    let t = w.lock.poll_timeout().expect("a timer");
    assert!(t > w.now && t <= w.now.step().next_start());
    let b = w.beacon();
    w.hear(&b).expect("armed");
    assert_eq!(w.lock.stats().pending, 1);
    w.advance(10_002);
    assert_eq!(w.lock.stats().pending, 0);
    let _ = Step(0);
    let _ = UnixMillis(0);
}
