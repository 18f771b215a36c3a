//! One test per requirement of spec/latchkey.md, named after it; each shows the accepting
//! case and the rejecting case with the reason the spec names.

mod common;

use common::*;
use latchkey::crypto::EnrollmentKey;
use latchkey::frame::{
    EventKind, LockGrantView, MessageType, ResponseView, StatusCounter, StatusFlags,
};
use latchkey::issuer::{AccessPolicy, AccessRule, Authorization, LockReport, StaticAccess};
use latchkey::lock::{
    BeaconOutcome, ConnId, GrantOutcome, LockNotice, MessageOutcome, StatusInput, Unlock,
};
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
    bad[84..86].copy_from_slice(&255u16.to_be_bytes()); // wrapped_len below 256
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
        w.issuer.handle_lock_message(w.now, LOCK_A, &bad_ev),
        Err(Reason::FieldOutOfRange)
    );
    assert!(w.issuer.handle_lock_message(w.now, LOCK_A, &ev).is_ok());
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

// ------------------------------------------------------------------ unlock limits

/// Beacon, Select and Response of a forged session at the current step on `conn`.
fn forge_handshake(w: &mut World, f: &Forge, attempt: u16, conn: u64) -> Result<Unlock, Reason> {
    let ch = forge_challenge(w, f, attempt, conn)?;
    let r = f.response(&ch, w.now.step(), attempt, w.now.secs_u32());
    w.lock.handle_response(w.now, ConnId(conn), &r)
}

/// Beacon and Select of a forged session at the current step on `conn`: the challenge.
fn forge_challenge(w: &mut World, f: &Forge, attempt: u16, conn: u64) -> Result<[u8; 33], Reason> {
    let step = w.now.step();
    w.lock
        .handle_beacon(w.now, 0xFFFF, &f.beacon(step, attempt), RSSI_NEAR)?;
    Ok(w.lock
        .handle_select(w.now, ConnId(conn), &f.select(step, attempt), &mut w.rng)?
        .to_bytes())
}

fn install(w: &mut World, f: &Forge) {
    let g = f.lock_grant(&mut w.rng);
    assert!(matches!(
        w.lock.handle_grant(w.now, &g, &mut w.rng),
        Ok(GrantOutcome::Installed { .. })
    ));
}

#[test]
fn lk_lim_1_a_limited_session_counts_its_unlocks() {
    // The issuer's policy sets the limit, the LockGrant carries it, the lock counts.
    let mut w = World::new();
    let mut policy = StaticAccess::new();
    policy.set(
        GUEST,
        LOCK_A,
        AccessRule {
            max_unlocks: Some(2),
            ..AccessRule::default()
        },
    );
    let req = w.guest.request_grant(w.now, LOCK_A, 3600, &mut w.rng);
    let g = w
        .issuer
        .handle_request_with(w.now, GUEST, &req, &mut policy, &mut w.rng)
        .expect("granted");
    assert_eq!(g.max_unlocks, 2);
    let header = LockGrantView::parse(&g.lock_grant).expect("parses").header;
    assert_eq!(header.max_unlocks, 2);
    w.lock
        .handle_grant(w.now, &g.lock_grant, &mut w.rng)
        .expect("installs");
    w.guest
        .handle_grant(w.now, &g.guest_grant)
        .expect("guest installs");
    assert_eq!(w.lock.unlock_count(&g.grant_id), Some(0));
    let u = w.unlock().expect("first unlock");
    assert_eq!((u.unlocks, u.max_unlocks), (1, 2));
    let u = w.unlock().expect("second unlock");
    assert_eq!((u.unlocks, u.max_unlocks), (2, 2));
    assert_eq!(w.lock.unlock_count(&g.grant_id), Some(2));
    // A session without a limit counts too, and never refuses for it.
    let f = Forge::new(9, w.now);
    install(&mut w, &f);
    for n in 1..=3u16 {
        let u = forge_handshake(&mut w, &f, n, 5).expect("unlimited");
        assert_eq!((u.unlocks, u.max_unlocks), (n, 0));
    }
    // After a restart the driver restores counts; they only rise.
    assert!(w.lock.restore_unlock_count(&g.grant_id, 1));
    assert_eq!(w.lock.unlock_count(&g.grant_id), Some(2));
    assert!(w.lock.restore_unlock_count(&f.header.grant_id, 9));
    assert_eq!(w.lock.unlock_count(&f.header.grant_id), Some(9));
    assert!(!w.lock.restore_unlock_count(&GrantId([0xEE; 16]), 1));
    assert_eq!(w.lock.unlock_count(&GrantId([0xEE; 16])), None);
}

#[test]
fn lk_lim_2_unlock_limit_reached() {
    let mut w = World::new();
    let mut f = Forge::new(7, w.now);
    f.header.max_unlocks = 1;
    install(&mut w, &f);
    let u = forge_handshake(&mut w, &f, 1, 1).expect("the one unlock");
    assert_eq!((u.unlocks, u.max_unlocks), (1, 1));
    // The beacon of a spent session arms nothing; the checks before still come first.
    let step = w.now.step();
    let b = f.beacon(step, 2);
    assert_eq!(w.hear(&flip(&b, 22)), Err(Reason::BadBeaconMac));
    assert_eq!(w.hear(&b), Err(Reason::UnlockLimitReached));
    assert_eq!(w.lock.stats().pending, 0);
    // Two challenges armed before the last unlock: the second response verifies, but the
    // limit was reached in between. Not a failed handshake (LK-LCK-1).
    let mut g = Forge::new(8, w.now);
    g.header.max_unlocks = 1;
    install(&mut w, &g);
    let ch2 = forge_challenge(&mut w, &g, 1, 2).expect("challenge 2");
    let ch3 = forge_challenge(&mut w, &g, 2, 3).expect("challenge 3");
    let r2 = g.response(&ch2, step, 1, w.now.secs_u32());
    let r3 = g.response(&ch3, step, 2, w.now.secs_u32());
    assert!(w.lock.handle_response(w.now, ConnId(2), &r2).is_ok());
    assert_eq!(
        w.lock.handle_response(w.now, ConnId(3), &r3),
        Err(Reason::UnlockLimitReached)
    );
    assert_eq!(w.lock.stats().failure_records, 0);
    // A restored count can spend a session too.
    let mut h = Forge::new(10, w.now);
    h.header.max_unlocks = 3;
    install(&mut w, &h);
    assert!(w.lock.restore_unlock_count(&h.header.grant_id, 3));
    assert_eq!(w.hear(&h.beacon(step, 1)), Err(Reason::UnlockLimitReached));
    // On GATT it is ATT 0x8D, which the guest maps back.
    assert_eq!(Reason::UnlockLimitReached.att_code(), 0x8D);
    assert_eq!(
        Reason::from_att_code(0x8D),
        Some(Reason::UnlockLimitReached)
    );
}

// ------------------------------------------------------------------ lockout

/// A Response with a wrong MAC to a fresh challenge of `f`: a failed handshake.
fn bad_response(w: &mut World, f: &Forge, attempt: u16, conn: u64) -> Result<Unlock, Reason> {
    let ch = forge_challenge(w, f, attempt, conn)?;
    let r = f.response(&ch, w.now.step(), attempt, w.now.secs_u32());
    w.lock.handle_response(w.now, ConnId(conn), &flip(&r, 19))
}

/// Five failed handshakes of `f`'s guest, the default threshold: it is locked out until the
/// instant returned.
fn lock_out(w: &mut World, f: &Forge) -> UnixMillis {
    for a in 0..5 {
        assert!(bad_response(w, f, a, 1).is_err());
    }
    match w.lock.poll_notice() {
        Some(LockNotice::LockoutStarted { until, .. }) => until,
        other => panic!("no lockout after five failed handshakes: {other:?}"),
    }
}

fn other_guests_forge(seed: u8, now: UnixMillis) -> Forge {
    let mut f = Forge::new(seed, now);
    f.header.guest_id = GuestId([0x62; 16]);
    f
}

#[test]
fn lk_lck_1_failed_handshakes_lock_a_guest_out() {
    let mut w = World::new(); // threshold 5, window 300 s, duration 900 s
    let (f, f2, f3) = (
        Forge::new(3, w.now),
        Forge::new(4, w.now),
        Forge::new(6, w.now),
    );
    let other = other_guests_forge(5, w.now);
    for x in [&f, &f2, &f3, &other] {
        install(&mut w, x);
    }
    // Refusals that say nothing about the guest's key do not count: a revoked session's
    // response, a response on a connection without a challenge.
    let ch = forge_challenge(&mut w, &f3, 1, 9).expect("challenge");
    let rev = f3.revocation(&mut w.rng, w.now.secs());
    w.lock.handle_revocation(w.now, &rev).expect("applied");
    let r = f3.response(&ch, w.now.step(), 1, w.now.secs_u32());
    assert_eq!(
        w.lock.handle_response(w.now, ConnId(9), &r),
        Err(Reason::SessionRevoked)
    );
    assert_eq!(
        w.lock.handle_response(w.now, ConnId(9), &r),
        Err(Reason::NoChallenge)
    );
    assert_eq!(w.lock.stats().failure_records, 0);
    // Four failures, across the guest's two sessions.
    for i in 0..4u16 {
        let s = if i % 2 == 0 { &f } else { &f2 };
        assert_eq!(
            bad_response(&mut w, s, 10 + i, 1),
            Err(Reason::BadResponseMac)
        );
        assert_eq!(w.lock.poll_notice(), None);
    }
    // Pending authentications of the guest and of another guest.
    let step = w.now.step();
    w.hear(&f2.beacon(step, 50)).expect("armed");
    w.lock
        .handle_beacon(w.now, 0xFFFF, &other.beacon(step, 1), RSSI_NEAR)
        .expect("armed");
    assert_eq!(w.lock.stats().pending, 2);
    // The fifth: a malformed Response counts too.
    forge_challenge(&mut w, &f, 20, 2).expect("challenge");
    assert_eq!(
        w.lock.handle_response(w.now, ConnId(2), &[0u8; 19]),
        Err(Reason::Truncated)
    );
    assert_eq!(
        w.lock.poll_notice(),
        Some(LockNotice::LockoutStarted {
            guest_id: GUEST,
            grant_id: f.header.grant_id,
            session_id: f.header.session_id,
            reason: Reason::Truncated,
            until: w.now.plus_ms(900_000),
        })
    );
    assert_eq!(w.lock.poll_notice(), None);
    // Its pending authentication went at once; the other guest's stays.
    let st = w.lock.stats();
    assert_eq!((st.pending, st.lockouts, st.failure_records), (1, 1, 1));
    assert!(forge_handshake(&mut w, &other, 2, 3).is_ok());
}

#[test]
fn lk_lck_1_failures_count_within_the_window() {
    let mut cfg = lock_config();
    cfg.lockout_threshold = 2;
    cfg.lockout_window_s = 10;
    let mut w = World::with_lock_config(cfg);
    let f = Forge::new(3, w.now);
    install(&mut w, &f);
    assert!(bad_response(&mut w, &f, 1, 1).is_err());
    // 10.001 s later the window of the first failure has passed: the count starts again.
    w.now = w.now.plus_ms(10_001);
    assert!(bad_response(&mut w, &f, 2, 1).is_err());
    assert_eq!(w.lock.poll_notice(), None);
    // Exactly 10 s after the window opened is still inside it.
    w.now = w.now.plus_ms(10_000);
    assert_eq!(bad_response(&mut w, &f, 3, 1), Err(Reason::BadResponseMac));
    assert!(matches!(
        w.lock.poll_notice(),
        Some(LockNotice::LockoutStarted {
            reason: Reason::BadResponseMac,
            ..
        })
    ));
    // Threshold 0 disables lockout.
    let mut cfg = lock_config();
    cfg.lockout_threshold = 0;
    let mut w = World::with_lock_config(cfg);
    let f = Forge::new(3, w.now);
    install(&mut w, &f);
    for a in 0..20 {
        assert!(bad_response(&mut w, &f, a, 1).is_err());
    }
    assert_eq!(w.lock.stats().failure_records, 0);
    assert!(forge_handshake(&mut w, &f, 99, 1).is_ok());
}

#[test]
fn lk_lck_2_a_locked_out_guest_is_refused() {
    let mut w = World::new();
    let f = Forge::new(3, w.now);
    let other = other_guests_forge(5, w.now);
    install(&mut w, &f);
    install(&mut w, &other);
    // A challenge outstanding when the lockout starts.
    let held = forge_challenge(&mut w, &f, 70, 7).expect("challenge");
    lock_out(&mut w, &f);
    let step = w.now.step();
    // Beacons: the checks up to LK-LIM-2 first, then `locked_out`; nothing arms.
    let b = f.beacon(step, 80);
    assert_eq!(w.hear(&flip(&b, 22)), Err(Reason::BadBeaconMac));
    assert_eq!(w.hear(&b), Err(Reason::LockedOut));
    assert_eq!(w.lock.stats().pending, 0);
    assert_eq!(
        w.lock
            .handle_select(w.now, ConnId(8), &f.select(step, 80), &mut w.rng)
            .map(|c| c.to_bytes()),
        Err(Reason::NoPendingAuth)
    );
    // The outstanding challenge answers `locked_out`, even to a genuine response, and that
    // refusal is not counted.
    let r = f.response(&held, step, 70, w.now.secs_u32());
    assert_eq!(
        w.lock.handle_response(w.now, ConnId(7), &r),
        Err(Reason::LockedOut)
    );
    assert_eq!(w.lock.poll_notice(), None);
    // Other guests are not affected.
    assert!(forge_handshake(&mut w, &other, 1, 2).is_ok());
    // On GATT it is ATT 0x8C, which the guest maps back.
    assert_eq!(Reason::LockedOut.att_code(), 0x8C);
    assert_eq!(Reason::from_att_code(0x8C), Some(Reason::LockedOut));
}

#[test]
fn lk_lck_3_a_lockout_ends_by_itself() {
    let mut w = World::new();
    let f = Forge::new(3, w.now);
    install(&mut w, &f);
    let until = lock_out(&mut w, &f);
    assert_eq!(until, w.now.plus_ms(900_000));
    // Its end is a timer of poll_timeout: a driver that sleeps until each timer and
    // handles it meets `until` exactly (10 s into a step, never a step boundary).
    loop {
        let t = w.lock.poll_timeout().expect("a timer");
        assert!(t <= until, "the lockout's end was skipped: {t:?}");
        w.lock.handle_timeout(t);
        if t == until {
            break;
        }
        assert_eq!(w.lock.poll_notice(), None, "ended early at {t:?}");
        assert_eq!(w.lock.stats().lockouts, 1);
    }
    assert_eq!(
        w.lock.poll_notice(),
        Some(LockNotice::LockoutEnded {
            guest_id: GUEST,
            grant_id: f.header.grant_id,
            session_id: f.header.session_id,
        })
    );
    let st = w.lock.stats();
    assert_eq!((st.lockouts, st.failure_records, st.notices), (0, 0, 0));
    w.now = until;
    assert!(forge_handshake(&mut w, &f, 100, 1).is_ok());
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
    let out = w.revoke(g.grant_id);
    assert!(matches!(out, MessageOutcome::Revocation(r) if r.session_removed));
    assert!(!w.lock.has_session(&g.session_id));
    assert_eq!(w.lock.stats().pending, 0);
    assert_eq!(w.challenge(), Err(Reason::NoPendingAuth));
    w.guest.cancel_unlock();
    w.advance(30_000);
    let b = w.beacon();
    // Its later beacons are recognised as a revoked session's (LK-REV-5), never armed.
    assert_eq!(w.hear(&b), Err(Reason::SessionRevoked));
    assert_eq!(w.lock.stats().pending, 0);
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

#[test]
fn lk_rev_5_beacons_of_a_revoked_session_are_recognised() {
    let mut w = World::new();
    let g = w.grant();
    let b = w.beacon();
    w.hear(&b).expect("armed");
    w.revoke(g.grant_id);
    assert_eq!(w.lock.stats().tombstones, 1);
    // RSSI and CMAC (under the revoked session's K_adv) come first.
    assert_eq!(
        w.lock.handle_beacon(w.now, 0xFFFF, &b, -71),
        Err(Reason::RssiTooLow)
    );
    assert_eq!(w.hear(&flip(&b, 22)), Err(Reason::BadBeaconMac));
    assert_eq!(w.hear(&b), Err(Reason::SessionRevoked));
    assert_eq!(w.lock.stats().pending, 0);
    // The driver can attribute the rejection; a forged beacon gets no ids.
    assert_eq!(
        w.lock.revoked_beacon_ids(&b),
        Some((g.grant_id, g.session_id, GUEST))
    );
    assert_eq!(w.lock.revoked_beacon_ids(&flip(&b, 22)), None);
    assert_eq!(w.lock.revoked_beacon_ids(&b[..22]), None);
    // The tombstone's tags move with the window, like a session's.
    w.guest.cancel_unlock();
    w.advance(60_000);
    let later = w.beacon();
    assert_eq!(w.hear(&later), Err(Reason::SessionRevoked));
    // It goes with its revocation, when the grant would have expired.
    w.advance(3_600_000);
    let st = w.lock.stats();
    assert_eq!((st.revocations, st.tombstones), (0, 0));
}

#[test]
fn lk_rev_5_a_tombstone_lasts_only_as_long_as_its_revocation() {
    let mut cfg = lock_config();
    cfg.revocation_capacity = 16;
    let mut w = World::with_lock_config(cfg);
    let base = w.now.secs();
    // A revocation of a session that was never installed leaves nothing to recognise.
    let never = Forge::new(40, w.now);
    w.lock
        .handle_revocation(w.now, &never.revocation(&mut w.rng, base))
        .expect("applied");
    assert_eq!(w.lock.stats().tombstones, 0);
    assert_eq!(
        w.hear(&never.beacon(w.now.step(), 1)),
        Err(Reason::UnknownTag)
    );
    let f = Forge::new(1, w.now);
    install(&mut w, &f);
    w.lock
        .handle_revocation(w.now, &f.revocation(&mut w.rng, base))
        .expect("applied");
    let b = f.beacon(w.now.step(), 1);
    assert_eq!(w.hear(&b), Err(Reason::SessionRevoked));
    // Fifteen later revocations overflow the list: the oldest entry (of the two at `base`,
    // the smaller grant id: f's) is evicted (LK-REV-4), and with it the tombstone.
    for i in 2..=16u8 {
        let other = Forge::new(i, w.now);
        w.lock
            .handle_revocation(w.now, &other.revocation(&mut w.rng, base + u64::from(i)))
            .expect("applied");
    }
    assert_eq!(w.lock.stats().revocations, 16);
    assert_eq!(w.lock.stats().tombstones, 0);
    assert_eq!(w.hear(&b), Err(Reason::UnknownTag));
    assert_eq!(w.lock.revoked_beacon_ids(&b), None);
    // A revocation that is not remembered (expires_at ≤ now) leaves no tombstone either.
    let mut short = Forge::new(50, w.now);
    short.header.issued_at = base + 1; // after the floor
    short.header.not_after = w.now.secs() + 1;
    install(&mut w, &short);
    w.now = w.now.plus_ms(1_000);
    let r = w
        .lock
        .handle_revocation(w.now, &short.revocation(&mut w.rng, base + 100))
        .expect("applied");
    assert!(r.session_removed);
    assert_eq!(w.lock.stats().tombstones, 0);
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
    // Seventeen requests at once: above the default burst of LK-ISS-11, which comes later.
    cfg.rate_guest_burst = 100;
    cfg.rate_lock_burst = 100;
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

/// An issuer with guests 1 and 2 at locks A and B (guest 2 only at A) and `tune`d config.
fn issuer_with(tune: impl FnOnce(&mut latchkey::IssuerConfig)) -> latchkey::Issuer {
    let mut cfg = latchkey::IssuerConfig::new(key("issuer"));
    tune(&mut cfg);
    let mut iss = latchkey::Issuer::new(cfg).expect("issuer");
    iss.add_lock(LOCK_A, key("lock-a").public_key());
    iss.add_lock(LOCK_B, key("lock-b").public_key());
    iss.add_guest(GUEST, enrollment_key(), [LOCK_A, LOCK_B].into());
    iss.add_guest(
        GUEST_2,
        EnrollmentKey::from_bytes([0x5B; 32]),
        [LOCK_A].into(),
    );
    iss
}

const GUEST_2: GuestId = GuestId([0x62; 16]);

fn second_guest() -> latchkey::Guest {
    latchkey::Guest::new(latchkey::GuestConfig::new(
        GUEST_2,
        EnrollmentKey::from_bytes([0x5B; 32]),
    ))
    .expect("guest")
}

#[test]
fn lk_iss_11_rate_limit_per_guest_and_per_lock() {
    let mut w = World::new();
    w.issuer = issuer_with(|c| {
        c.rate_guest_burst = 2;
        c.rate_guest_per_hour = 1;
        c.rate_lock_burst = 2;
        c.rate_lock_per_hour = 60; // one a minute
    });
    let ask = |w: &mut World, guest: &mut latchkey::Guest, id: GuestId, lock: LockId| {
        let req = guest.request_grant(w.now, lock, 600, &mut w.rng);
        w.issuer
            .handle_request(w.now, id, &req, &mut w.rng)
            .map(|g| g.grant_id)
    };
    let mut g1 =
        latchkey::Guest::new(latchkey::GuestConfig::new(GUEST, enrollment_key())).expect("guest");
    let mut g2 = second_guest();
    assert!(ask(&mut w, &mut g1, GUEST, LOCK_A).is_ok());
    assert!(ask(&mut w, &mut g1, GUEST, LOCK_B).is_ok());
    // Guest 1's burst is spent, at any lock.
    assert_eq!(
        ask(&mut w, &mut g1, GUEST, LOCK_B),
        Err(Reason::RateLimited)
    );
    // Checks before LK-ISS-11 still come first: a lock guest 2 may not use.
    assert_eq!(
        ask(&mut w, &mut g2, GUEST_2, LOCK_B),
        Err(Reason::NotAuthorized)
    );
    // Lock A has one request left: guest 2 takes it, then lock A's bucket refuses.
    assert!(ask(&mut w, &mut g2, GUEST_2, LOCK_A).is_ok());
    assert_eq!(
        ask(&mut w, &mut g2, GUEST_2, LOCK_A),
        Err(Reason::RateLimited)
    );
    // Both buckets are checked before either is taken: that refusal took nothing from guest
    // 2, whose last request goes through once lock A refills, a minute later.
    w.now = w.now.plus_ms(60_000);
    assert!(ask(&mut w, &mut g2, GUEST_2, LOCK_A).is_ok());
    assert_eq!(
        ask(&mut w, &mut g2, GUEST_2, LOCK_A),
        Err(Reason::RateLimited)
    );
    // Guest 1's refused requests took nothing either: one an hour, exactly.
    w.now = w.now.plus_ms(3_600_000 - 60_000 - 1);
    assert_eq!(
        ask(&mut w, &mut g1, GUEST, LOCK_B),
        Err(Reason::RateLimited)
    );
    w.now = w.now.plus_ms(1);
    assert!(ask(&mut w, &mut g1, GUEST, LOCK_B).is_ok());
    // Buckets that are full again are forgotten.
    assert!(w.issuer.lock_state_sizes().1 > 0);
    w.issuer.handle_timeout(w.now.plus_ms(2 * 3_600_000));
    assert_eq!(w.issuer.lock_state_sizes().1, 0);
}

/// A policy that answers as told and counts its calls.
struct Scripted {
    answer: Result<Authorization, Reason>,
    calls: usize,
}

impl AccessPolicy for Scripted {
    fn authorize(&mut self, _: u64, g: GuestId, l: LockId) -> Result<Authorization, Reason> {
        assert_eq!((g, l), (GUEST, LOCK_A));
        self.calls += 1;
        self.answer
    }
}

#[test]
fn lk_iss_12_access_policy() {
    let mut w = World::new();
    let now_s = w.now.secs();
    let ask = |w: &mut World, p: &mut dyn AccessPolicy, lock: LockId, validity: u32| {
        let req = w.guest.request_grant(w.now, lock, validity, &mut w.rng);
        w.issuer
            .handle_request_with(w.now, GUEST, &req, p, &mut w.rng)
    };
    // StaticAccess: outside the access window, nothing is issued or recorded.
    let mut p = StaticAccess::new();
    let rule = |from, until, max| AccessRule {
        valid_from: from,
        valid_until: until,
        max_unlocks: max,
    };
    p.set(GUEST, LOCK_A, rule(Some(now_s + 100), None, None));
    let seen = w.issuer.cache_sizes().0;
    assert_eq!(
        ask(&mut w, &mut p, LOCK_A, 600).err(),
        Some(Reason::OutsideAccessWindow)
    );
    assert_eq!(w.issuer.cache_sizes().0, seen);
    p.set(GUEST, LOCK_A, rule(None, Some(now_s), None));
    assert_eq!(
        ask(&mut w, &mut p, LOCK_A, 600).err(),
        Some(Reason::OutsideAccessWindow)
    );
    // Inside it: the grant ends by the window's end and carries the unlock limit.
    p.set(GUEST, LOCK_A, rule(Some(now_s), Some(now_s + 600), Some(4)));
    let g = ask(&mut w, &mut p, LOCK_A, 3600).expect("granted");
    assert_eq!((g.not_after, g.max_unlocks), (now_s + 600, 4));
    let g = ask(&mut w, &mut p, LOCK_A, 60).expect("granted");
    assert_eq!(g.not_after, now_s + 60);
    // Any policy: its reasons pass through, others are `not_authorized`; a cap at or before
    // now is `outside_access_window`.
    for (answer, want) in [
        (Err(Reason::OutsideSchedule), Err(Reason::OutsideSchedule)),
        (
            Err(Reason::UnlockLimitReached),
            Err(Reason::UnlockLimitReached),
        ),
        (Err(Reason::NotAuthorized), Err(Reason::NotAuthorized)),
        (Err(Reason::BadSeal), Err(Reason::NotAuthorized)),
        (
            Ok(Authorization {
                not_after_max: Some(now_s),
                max_unlocks: 0,
            }),
            Err(Reason::OutsideAccessWindow),
        ),
        (
            Ok(Authorization {
                not_after_max: Some(now_s + 1),
                max_unlocks: 1,
            }),
            Ok((now_s + 1, 1)),
        ),
    ] {
        let mut p = Scripted { answer, calls: 0 };
        let got = ask(&mut w, &mut p, LOCK_A, 600).map(|g| (g.not_after, g.max_unlocks));
        assert_eq!(got, want);
        assert_eq!(p.calls, 1);
    }
    // The policy is asked only after LK-ISS-7 (a lock the guest may not use) ...
    let mut p = Scripted {
        answer: Ok(Authorization::default()),
        calls: 0,
    };
    assert_eq!(
        ask(&mut w, &mut p, LOCK_B, 600).err(),
        Some(Reason::NotAuthorized)
    );
    assert_eq!(p.calls, 0);
    // ... and before LK-ISS-11: a rate-limited guest hears the policy's refusal first.
    w.issuer = issuer_with(|c| c.rate_guest_burst = 1);
    assert!(ask(&mut w, &mut p, LOCK_A, 600).is_ok());
    assert_eq!(
        ask(&mut w, &mut p, LOCK_A, 600).err(),
        Some(Reason::RateLimited)
    );
    let mut refuse = Scripted {
        answer: Err(Reason::OutsideSchedule),
        calls: 0,
    };
    assert_eq!(
        ask(&mut w, &mut refuse, LOCK_A, 600).err(),
        Some(Reason::OutsideSchedule)
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
    let Ok(LockReport::Event(parsed)) = w.issuer.handle_lock_message(w.now, LOCK_A, &ev) else {
        panic!("a valid event");
    };
    assert_eq!(parsed.reason, Reason::BadBeaconMac.code());
    assert_eq!(
        w.issuer.handle_lock_message(w.now, LOCK_A, &flip(&ev, 44)),
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
    assert_eq!(
        w.issuer.handle_lock_message(w.now, LOCK_B, &ev),
        Err(Reason::WrongLock)
    );
    assert!(w.issuer.handle_lock_message(w.now, LOCK_A, &ev).is_ok());
}

#[test]
fn lk_evt_3_event_window() {
    let mut w = World::new();
    let event_at = |w: &mut World, at: UnixMillis| {
        w.lock.signed_event(
            at,
            EventKind::Unlock,
            None,
            GrantId::ZERO,
            SessionId::ZERO,
            &mut w.rng,
        )
    };
    let hour = 3_600_000;
    let now = w.now;
    let old = event_at(&mut w, UnixMillis(now.0 - hour - 1_000));
    let edge_old = event_at(&mut w, UnixMillis(now.0 - hour));
    let edge_new = event_at(&mut w, now.plus_ms(hour + 999));
    let new = event_at(&mut w, now.plus_ms(hour + 1_000));
    assert_eq!(
        w.issuer.handle_lock_message(now, LOCK_A, &old),
        Err(Reason::StaleEvent)
    );
    assert!(w.issuer.handle_lock_message(now, LOCK_A, &edge_old).is_ok());
    assert!(w.issuer.handle_lock_message(now, LOCK_A, &edge_new).is_ok());
    assert_eq!(
        w.issuer.handle_lock_message(now, LOCK_A, &new),
        Err(Reason::FutureEvent)
    );
    // A status report is held to the same window; the signature is checked first.
    let status = w.lock.status_message(
        UnixMillis(now.0 - hour - 1_000),
        &StatusInput::default(),
        &mut w.rng,
    );
    assert_eq!(
        w.issuer
            .handle_lock_message(now, LOCK_A, &flip(&status, 40)),
        Err(Reason::BadEventSignature)
    );
    assert_eq!(
        w.issuer.handle_lock_message(now, LOCK_A, &status),
        Err(Reason::StaleEvent)
    );
}

#[test]
fn lk_evt_4_event_replay() {
    let mut w = World::new();
    w.issuer = issuer_with(|c| c.event_replay_capacity = 16);
    let now = w.now;
    let ev = w.lock.signed_event(
        now,
        EventKind::GrantInstalled,
        None,
        GrantId([1; 16]),
        SessionId([2; 8]),
        &mut w.rng,
    );
    let Ok(LockReport::Event(e)) = w.issuer.handle_lock_message(now, LOCK_A, &ev) else {
        panic!("a valid event");
    };
    assert_eq!(
        w.issuer.handle_lock_message(now, LOCK_A, &ev),
        Err(Reason::EventReplay)
    );
    // Status reports share the cache.
    let st = w
        .lock
        .status_message(now, &StatusInput::default(), &mut w.rng);
    assert!(w.issuer.handle_lock_message(now, LOCK_A, &st).is_ok());
    assert_eq!(
        w.issuer.handle_lock_message(now, LOCK_A, &st),
        Err(Reason::EventReplay)
    );
    // At capacity the oldest entry goes and the lock's floor rises to its timestamp.
    let later: Vec<Vec<u8>> = (1..=15u64)
        .map(|i| {
            w.lock.signed_event(
                now.plus_ms(i),
                EventKind::Unlock,
                None,
                GrantId::ZERO,
                SessionId::ZERO,
                &mut w.rng,
            )
        })
        .collect();
    for m in &later {
        assert!(w.issuer.handle_lock_message(now, LOCK_A, m).is_ok());
    }
    assert_eq!(w.issuer.lock_state_sizes().0, 16);
    let at_floor = w.lock.signed_event(
        now,
        EventKind::Unlock,
        None,
        GrantId::ZERO,
        SessionId::ZERO,
        &mut w.rng,
    );
    assert_eq!(
        w.issuer.handle_lock_message(now, LOCK_A, &at_floor),
        Err(Reason::EventReplay)
    );
    assert_eq!(
        w.issuer.handle_lock_message(now, LOCK_A, &ev),
        Err(Reason::EventReplay)
    );
    // After a restart: ids restored from the audit trail are refused ...
    w.issuer = issuer_with(|_| {});
    w.issuer
        .restore_lock_message(LOCK_A, e.event_id, e.timestamp_ms);
    assert_eq!(
        w.issuer.handle_lock_message(now, LOCK_A, &ev),
        Err(Reason::EventReplay)
    );
    // ... or, without them, everything timestamped before the restart.
    w.issuer = issuer_with(|_| {});
    w.issuer.refuse_lock_messages_before(now.0 + 2);
    assert_eq!(
        w.issuer.handle_lock_message(now, LOCK_A, &later[0]),
        Err(Reason::EventReplay)
    );
    assert!(w.issuer.handle_lock_message(now, LOCK_A, &later[1]).is_ok());
    // An entry leaves the cache only when LK-EVT-3 refuses its message anyway.
    let after = now.plus_ms(3_601_000 + 2);
    w.issuer.handle_timeout(after);
    assert_eq!(w.issuer.lock_state_sizes().0, 0);
    assert_eq!(
        w.issuer.handle_lock_message(after, LOCK_A, &later[1]),
        Err(Reason::StaleEvent)
    );
}

#[test]
fn lk_evt_1_lock_status_is_signed_and_carries_the_core_counts() {
    let mut w = World::new();
    let g = w.grant();
    let f = Forge::new(3, w.now);
    install(&mut w, &f);
    w.lock
        .handle_revocation(w.now, &f.revocation(&mut w.rng, w.now.secs()))
        .expect("applied");
    let input = StatusInput {
        uptime_s: 3_600,
        battery_pct: Some(87),
        flags: StatusFlags::MAINS_POWER | StatusFlags::TAMPER,
        counters: &[
            (Reason::Replay, 2),
            (Reason::UnknownTag, 40),
            (Reason::Replay, 1),
        ],
    };
    let msg = w.lock.status_message(w.now, &input, &mut w.rng);
    let Ok(LockReport::Status(st)) = w.issuer.handle_lock_message(w.now, LOCK_A, &msg) else {
        panic!("a valid status");
    };
    assert_eq!(st.lock_id, LOCK_A);
    assert_eq!(st.timestamp_ms, w.now.0);
    assert_eq!((st.uptime_s, st.battery_pct), (3_600, Some(87)));
    assert!(st.flags.contains(StatusFlags::TAMPER));
    assert_eq!((st.sessions, st.revocations, st.lockouts), (1, 1, 0));
    assert_eq!(
        st.counters,
        [
            StatusCounter {
                reason: Reason::UnknownTag.code(),
                count: 40
            },
            StatusCounter {
                reason: Reason::Replay.code(),
                count: 3
            },
        ]
    );
    // Signed with the lock key under its own domain: not a valid event, and not another
    // lock's status.
    assert_eq!(
        w.issuer.handle_lock_message(w.now, LOCK_B, &msg),
        Err(Reason::WrongLock)
    );
    let mut bad = msg.clone();
    bad[47] |= 0x08; // an undefined flag
    assert_eq!(
        w.issuer.handle_lock_message(w.now, LOCK_A, &bad),
        Err(Reason::FieldOutOfRange)
    );
    assert_eq!(
        w.issuer.handle_lock_message(w.now, LOCK_A, &flip(&msg, 42)),
        Err(Reason::BadEventSignature)
    );
    // A battery figure out of range is reported as unknown.
    let odd = StatusInput {
        battery_pct: Some(150),
        ..StatusInput::default()
    };
    let msg = w.lock.status_message(w.now, &odd, &mut w.rng);
    let Ok(LockReport::Status(st)) = w.issuer.handle_lock_message(w.now, LOCK_A, &msg) else {
        panic!("a valid status");
    };
    assert_eq!(st.battery_pct, None);
    let _ = g;
}

#[test]
fn lk_frm_4_event_kinds_and_status_fields() {
    let mut w = World::new();
    for kind in [EventKind::Lockout, EventKind::LockoutEnded] {
        let ev = w.lock.signed_event(
            w.now,
            kind,
            Some(Reason::BadResponseMac).filter(|_| kind == EventKind::Lockout),
            GrantId([1; 16]),
            SessionId([2; 8]),
            &mut w.rng,
        );
        let Ok(LockReport::Event(e)) = w.issuer.handle_lock_message(w.now, LOCK_A, &ev) else {
            panic!("kind {kind:?} is valid");
        };
        assert_eq!(e.kind, kind);
        let mut bad = ev.clone();
        bad[42] = 7;
        assert_eq!(
            w.issuer.handle_lock_message(w.now, LOCK_A, &bad),
            Err(Reason::FieldOutOfRange)
        );
    }
    let st = w
        .lock
        .status_message(w.now, &StatusInput::default(), &mut w.rng);
    for (at, value) in [(46, 150u8), (47, 0x08), (58, 33)] {
        let mut bad = st.clone();
        bad[at] = value;
        assert_eq!(
            w.issuer.handle_lock_message(w.now, LOCK_A, &bad),
            Err(Reason::FieldOutOfRange),
            "byte {at} = {value}"
        );
    }
    let mut t = st.clone();
    t[1] = 0x07;
    assert_eq!(
        w.issuer.handle_lock_message(w.now, LOCK_A, &t),
        Err(Reason::WrongType)
    );
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

/// LK-CRY-3 for what LK-REV-5 keeps: a tombstone's K_tag and K_adv appear nowhere in the
/// lock's Debug output.
#[test]
fn lk_cry_3_a_tombstone_prints_no_key() {
    let mut w = World::new();
    let f = Forge::new(0x77, w.now);
    install(&mut w, &f);
    w.lock
        .handle_revocation(w.now, &f.revocation(&mut w.rng, w.now.secs()))
        .expect("applied");
    assert_eq!(w.lock.stats().tombstones, 1);
    let keys = latchkey::crypto::derive_session_keys(&f.k_s, &LOCK_A, &f.header.session_id);
    let dump = format!("{:?}", w.lock);
    assert!(dump.contains("TagKey(<redacted>)"), "{dump}");
    for secret in [&keys.tag[..], &keys.adv[..]] {
        assert!(!dump.contains(&hex::encode(&secret[..4])));
        let decimal = format!("{:?}", &secret[..3]);
        assert!(!dump.contains(decimal.trim_matches(|c| c == '[' || c == ']')));
    }
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

/// The tunables of issue 8 (spec §9): a value outside its range is a configuration error,
/// never clamped; both ends of each range are accepted.
#[test]
fn new_tunables_are_validated_at_both_ends_of_their_ranges() {
    use latchkey::constants as c;
    let lock_ok = |f: &dyn Fn(&mut latchkey::LockConfig)| {
        let mut cfg = lock_config();
        f(&mut cfg);
        latchkey::Lock::new(cfg).map(|_| ()).map_err(|e| e.name)
    };
    for (t, set) in [
        (
            c::LOCKOUT_THRESHOLD.map(u64::from),
            &(|cfg: &mut latchkey::LockConfig, v: u64| cfg.lockout_threshold = v as u32)
                as &dyn Fn(&mut latchkey::LockConfig, u64),
        ),
        (c::LOCKOUT_WINDOW_S, &|cfg, v| cfg.lockout_window_s = v),
        (c::LOCKOUT_DURATION_S, &|cfg, v| cfg.lockout_duration_s = v),
    ] {
        assert_eq!(lock_ok(&|cfg| set(cfg, t.min)), Ok(()), "{}", t.name);
        assert_eq!(lock_ok(&|cfg| set(cfg, t.max)), Ok(()), "{}", t.name);
        assert_eq!(lock_ok(&|cfg| set(cfg, t.max + 1)), Err(t.name));
        if t.min > 0 {
            assert_eq!(lock_ok(&|cfg| set(cfg, t.min - 1)), Err(t.name));
        }
    }
    let issuer_ok = |f: &dyn Fn(&mut latchkey::IssuerConfig)| {
        let mut cfg = latchkey::IssuerConfig::new(key("issuer"));
        f(&mut cfg);
        latchkey::Issuer::new(cfg).map(|_| ()).map_err(|e| e.name)
    };
    type Set = dyn Fn(&mut latchkey::IssuerConfig, u64);
    for (t, set) in [
        (
            c::EVENT_WINDOW_S,
            &(|cfg: &mut latchkey::IssuerConfig, v| cfg.event_window_s = v) as &Set,
        ),
        (c::EVENT_REPLAY_CAPACITY.map(|v| v as u64), &|cfg, v| {
            cfg.event_replay_capacity = v as usize
        }),
        (c::RATE_GUEST_BURST.map(u64::from), &|cfg, v| {
            cfg.rate_guest_burst = v as u32
        }),
        (c::RATE_GUEST_PER_HOUR.map(u64::from), &|cfg, v| {
            cfg.rate_guest_per_hour = v as u32
        }),
        (c::RATE_LOCK_BURST.map(u64::from), &|cfg, v| {
            cfg.rate_lock_burst = v as u32
        }),
        (c::RATE_LOCK_PER_HOUR.map(u64::from), &|cfg, v| {
            cfg.rate_lock_per_hour = v as u32
        }),
    ] {
        assert_eq!(issuer_ok(&|cfg| set(cfg, t.min)), Ok(()), "{}", t.name);
        assert_eq!(issuer_ok(&|cfg| set(cfg, t.max)), Ok(()), "{}", t.name);
        assert_eq!(issuer_ok(&|cfg| set(cfg, t.min - 1)), Err(t.name));
        assert_eq!(issuer_ok(&|cfg| set(cfg, t.max + 1)), Err(t.name));
    }
}
