//! The protocol suite, run against every broker (embedded, Mosquitto plain, TLS and mutual
//! TLS with the shipped ACL): grant → unlock, grant expiry, revocation, replayed beacon.

use std::time::Duration;

use latchkey::Reason;
use latchkey::frame::EventKind;
use latchkey_demo::attack::{Replayer, Sniffer};
use latchkey_guest::{GrantFallback, GuestError, Guestd, os_seeded};
use latchkey_issuer::IssuerEvent;

use super::{Env, late_clock, unix_now_s, wait_event, wait_stats};

/// An enrolled guest gets a grant over MQTT and unlocks over BLE; the lock and the guest
/// agree on who opened it with which grant, and the issuer receives the signed unlock event.
pub async fn grant_then_unlock(env: &mut Env) {
    let site = &mut env.site;
    let lock = site.add_lock().unwrap();
    let lockd = site.start_lock(&lock).await.unwrap();
    let guest = site.enroll_guest(&[lock.lock_id]).unwrap();
    let mut events = site.issuer().unwrap().subscribe();
    let mut unlocks = lockd.unlocks();
    let mut g = site.guest(&guest).await.unwrap();

    let report = g.unlock(lock.lock_id).await.expect("unlock");
    assert_eq!(report.lock_id, lock.lock_id);
    assert!(!report.grant_reused);
    assert!(report.grant_requests >= 1);
    let rec = tokio::time::timeout(super::WAIT, unlocks.recv())
        .await
        .expect("the lock reports the unlock")
        .unwrap();
    assert_eq!(
        (rec.grant_id, rec.guest_id),
        (report.grant_id, guest.guest_id)
    );
    let grant_id = report.grant_id;
    wait_event(&mut events, "the grant issued", |e| {
        matches!(e, IssuerEvent::GrantIssued(s) if s.grant_id == grant_id && s.guest_id == guest.guest_id)
    })
    .await;
    wait_event(&mut events, "the lock's signed unlock event", |e| {
        matches!(e, IssuerEvent::LockEvent(ev) if ev.kind == EventKind::Unlock && ev.grant_id == grant_id)
    })
    .await;

    // A second unlock reuses the held grant: no MQTT round trip.
    let again = g.unlock(lock.lock_id).await.expect("second unlock");
    assert!(again.grant_reused);
    assert_eq!(again.grant_id, grant_id);
    assert_eq!(lockd.stats().unlocks, 2);
    g.shutdown().await;
    lockd.shutdown().await.unwrap();
}

/// A grant stops working at its `not_after`, on the lock's clock: a phone whose clock runs
/// 10 s late still believes its 4-second grant is valid, but the lock refuses it; the phone
/// then drops it and unlocks with a fresh grant within the same unlock.
pub async fn grant_expiry(env: &mut Env) {
    const LATE: Duration = Duration::from_secs(10);
    let site = &mut env.site;
    let lock = site.add_lock().unwrap();
    let lockd = site.start_lock(&lock).await.unwrap();
    let guest = site.enroll_guest(&[lock.lock_id]).unwrap();
    let mut opts = site.guest_options(&guest).unwrap();
    opts.grant_validity_s = 4;
    // The phone reuses a held grant only if it outlives an attempt by its own clock:
    // a 5 s attempt + 10 s late clock leaves the expired grant "valid" for 5 s more.
    opts.timeouts.attempt = Duration::from_secs(5);
    opts.timeouts.connect = Duration::from_secs(4);
    let mut g = Guestd::with_env(
        opts,
        site.air().radio(&guest.radio),
        late_clock(LATE),
        os_seeded().unwrap(),
    )
    .await
    .unwrap();

    // The issuer refuses requests timestamped before it started (LK-ISS-5): let the late
    // clock pass the issuer's start first.
    let started = site.issuer().unwrap().status().await.unwrap().started_at_s;
    sleep_until_unix(started + LATE.as_secs() + 1).await;
    g.unlock(lock.lock_id).await.expect("unlock while valid");
    let held = g.held_grant(&lock.lock_id).unwrap();
    let (expired, not_after) = (held.grant_id, held.not_after);
    assert!(not_after <= unix_now_s() + 4, "the issuer granted ~4 s");

    // Computed, not guessed: until the grant has expired on the lock's clock.
    sleep_until_unix(not_after + 1).await;
    let mut unlocks = lockd.unlocks();
    let report = g.unlock(lock.lock_id).await.expect("a fresh grant unlocks");
    // The phone tried its grant first (its late clock says it is still valid); the lock no
    // longer arms an authentication for the expired session, so the Select found none, and
    // the phone dropped it for a fresh grant.
    assert_eq!(
        report.fallback,
        Some(GrantFallback {
            dropped_grant: expired,
            refused: Reason::NoPendingAuth,
        })
    );
    assert!(!report.grant_reused);
    assert_ne!(report.grant_id, expired);
    let rec = tokio::time::timeout(super::WAIT, unlocks.recv())
        .await
        .expect("the lock reports the unlock")
        .unwrap();
    assert_eq!(
        rec.grant_id, report.grant_id,
        "the expired grant never unlocked"
    );
    assert_eq!(lockd.stats().unlocks, 2);
    g.shutdown().await;
    lockd.shutdown().await.unwrap();
}

/// Sleeps until the system clock reaches Unix second `s`.
async fn sleep_until_unix(s: u64) {
    let at = std::time::UNIX_EPOCH + Duration::from_secs(s);
    if let Ok(left) = at.duration_since(std::time::SystemTime::now()) {
        tokio::time::sleep(left).await;
    }
}

/// The issuer revokes a live grant; the lock applies the signed Revocation (and confirms it
/// with an event), refuses the grant's beacon (`session_revoked`, reported), and the guest
/// unlocks only with a fresh grant. Then the guest itself is revoked: its grant is refused at
/// the lock and its request for a new one at the issuer (`guest_revoked`).
pub async fn revocation_refused(env: &mut Env) {
    let site = &mut env.site;
    let lock = site.add_lock().unwrap();
    let lockd = site.start_lock(&lock).await.unwrap();
    let guest = site.enroll_guest(&[lock.lock_id]).unwrap();
    let mut opts = site.guest_options(&guest).unwrap();
    // The grant that must not come after the guest's revocation is not waited for long.
    opts.timeouts.grant = Duration::from_secs(3);
    let mut g = site.guest_with(&guest, opts).await.unwrap();
    let report = g
        .unlock(lock.lock_id)
        .await
        .expect("unlock before revocation");

    let mut events = site.issuer().unwrap().subscribe();
    let revoked = site
        .issuer()
        .unwrap()
        .revoke_grant(report.grant_id)
        .await
        .expect("revoke a live grant");
    assert_eq!(
        (revoked.grant_id, revoked.lock_id),
        (report.grant_id, lock.lock_id)
    );
    wait_stats(&lockd, "revocation applied", |s| s.revocations_applied >= 1).await;
    let grant_id = report.grant_id;
    wait_event(
        &mut events,
        "the lock confirms the revocation",
        |e| matches!(e, IssuerEvent::RevocationConfirmed { grant_id: g, .. } if *g == grant_id),
    )
    .await;

    // The guest still holds the grant and tries it.
    assert!(g.held_grant(&lock.lock_id).is_some());
    let mut unlocks = lockd.unlocks();
    let again = g
        .unlock(lock.lock_id)
        .await
        .expect("the guest itself is not revoked: a fresh grant unlocks");
    // The revocation removed the session, so its beacon armed nothing and the Select found
    // no pending authentication; the guest dropped the grant and asked for a fresh one.
    assert_eq!(
        again.fallback,
        Some(GrantFallback {
            dropped_grant: grant_id,
            refused: Reason::NoPendingAuth,
        })
    );
    assert_ne!(again.grant_id, grant_id);
    let rec = tokio::time::timeout(super::WAIT, unlocks.recv())
        .await
        .expect("the lock reports the unlock")
        .unwrap();
    assert_eq!(
        rec.grant_id, again.grant_id,
        "the revoked grant never unlocked"
    );
    assert_eq!(lockd.stats().unlocks, 2);
    // LK-REV-5: the lock recognised the revoked grant's beacon and reported it.
    wait_event(&mut events, "the lock's session_revoked event", |e| {
        matches!(e, IssuerEvent::LockEvent(ev) if ev.kind == EventKind::Rejection
            && ev.reason == Reason::SessionRevoked.code() && ev.grant_id == grant_id)
    })
    .await;

    // Revoking the guest leaves it nothing: the lock refuses the grant it holds, and the
    // issuer the fresh one it asks for (`guest_revoked`; the guest hears no answer).
    let live = again.grant_id;
    let revoked = site
        .issuer()
        .unwrap()
        .revoke_guest(guest.guest_id)
        .await
        .expect("revoke the guest");
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0].grant_id, live);
    wait_stats(&lockd, "guest revocation applied", |s| {
        s.revocations_applied >= 2
    })
    .await;
    let err = g
        .unlock(lock.lock_id)
        .await
        .expect_err("a revoked guest must not unlock");
    assert!(
        matches!(
            &err,
            GuestError::FreshGrantFailed { dropped, refused: Reason::NoPendingAuth, source, .. }
                if *dropped == live && matches!(**source, GuestError::GrantTimeout { .. })
        ),
        "{err}"
    );
    wait_event(&mut events, "the issuer's guest_revoked refusal", |e| {
        matches!(e, IssuerEvent::RequestRefused { guest_id, reason: Reason::GuestRevoked }
            if *guest_id == guest.guest_id)
    })
    .await;
    assert_eq!(lockd.stats().unlocks, 2);
    g.shutdown().await;
    lockd.shutdown().await.unwrap();
}

/// A third radio re-advertising a beacon captured during an unlock arms nothing: the lock
/// refuses it (`replay`, reported to the issuer as a signed event), a Select naming it is
/// refused, and nothing unlocks.
pub async fn replayed_beacon_refused(env: &mut Env) {
    let site = &mut env.site;
    let lock = site.add_lock().unwrap();
    let options = site.lock_options(&lock).unwrap();
    let company = options.company_id;
    let lockd = site.start_lock_with(&lock, options).await.unwrap();
    let guest = site.enroll_guest(&[lock.lock_id]).unwrap();
    let mut g = site.guest(&guest).await.unwrap();

    let sniffer = Sniffer::start(site.air(), "sniffer", company)
        .await
        .unwrap();
    // Subscribed before the unlock: the lock reports a refused beacon once, possibly
    // already while the phone is still advertising it.
    let mut events = site.issuer().unwrap().subscribe();
    g.unlock(lock.lock_id).await.expect("unlock");
    g.shutdown().await;
    let captured = sniffer.stop();
    let beacon = captured
        .last()
        .expect("the sniffer heard the beacon")
        .clone();

    let before = lockd.stats();
    let replayer = Replayer::start(site.air(), "attacker", company, beacon)
        .await
        .unwrap();
    wait_stats(&lockd, "the replayed beacon refused", |s| {
        s.beacon_rejections > before.beacon_rejections
    })
    .await;
    let lock_id = lock.lock_id;
    wait_event(&mut events, "the lock's replay event", |e| {
        matches!(e, IssuerEvent::LockEvent(ev)
            if ev.lock_id == lock_id
                && ev.kind == EventKind::Rejection
                && ev.reason == Reason::Replay.code())
    })
    .await;
    let refusal = replayer
        .try_select()
        .await
        .unwrap()
        .expect_err("the Select of a replayed beacon is refused");
    assert_eq!(refusal.reason, Some(Reason::NoPendingAuth));
    replayer.stop().await.unwrap();
    let after = lockd.stats();
    assert_eq!(after.unlocks, 1);
    assert_eq!(after.beacons_armed, before.beacons_armed, "nothing armed");
    lockd.shutdown().await.unwrap();
}
