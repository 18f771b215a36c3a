//! The unlock path end to end: a core Issuer and Guest as peers, the grant delivered over a
//! real MQTT broker, the guest driven over the simulated air.

// Test helpers outside #[test] fns count as non-test code for clippy; unwrapping is how
// a test fails here.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Attempt, Outcome, World, attempt, wait_stats};
use latchkey::Reason;
use latchkey::frame::EventKind;
use latchkey_lock::gatt::{CHALLENGE_CHAR_UUID, SERVICE_UUID};
use latchkey_transport::radio::{GattLink, GuestRadio};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_unlock_answers_success_and_publishes_a_verified_unlock_event() {
    let mut w = World::new("full").await;
    let lock = w.start_lock(w.lock_options(None)).await;
    let (_observer, mut events) = w.observe_events("full").await;
    let (mut guest, grant) = w.installed_guest(&lock, 1, 0).await;
    let installed = w
        .next_event(&mut events, |e| e.kind == EventKind::GrantInstalled)
        .await;
    assert_eq!(installed.grant_id, grant.grant_id);

    let mut unlocks = lock.unlocks();
    let radio = w.air.radio("guest");
    let Attempt { outcome, .. } = attempt(&mut guest, &radio, w.lock_id, &lock, false).await;
    assert_eq!(outcome, Outcome::Unlocked);

    let record = common::within(5, "the unlock record", unlocks.recv())
        .await
        .unwrap();
    assert_eq!(record.grant_id, grant.grant_id);
    assert_eq!(record.session_id, grant.session_id);
    assert_eq!(record.guest_id, guest.config().guest_id);
    assert!(record.actuated);

    let ev = w
        .next_event(&mut events, |e| e.kind == EventKind::Unlock)
        .await;
    assert_eq!(ev.lock_id, w.lock_id);
    assert_eq!(ev.grant_id, grant.grant_id);
    assert_eq!(ev.session_id, grant.session_id);
    assert_eq!(ev.reason, 0);

    let s = lock.stats();
    assert_eq!((s.unlocks, s.beacons_armed, s.challenges_issued), (1, 1, 1));
    lock.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beacon_below_the_rssi_threshold_arms_nothing_and_select_is_refused() {
    let mut w = World::new("rssi").await;
    let lock = w.start_lock(w.lock_options(None)).await;
    let (mut guest, _) = w.installed_guest(&lock, 2, 0).await;

    // The lock's threshold is the default −70 dBm; this guest is heard at −90.
    w.air.set_rssi("guest", "lock", -90);
    let radio = w.air.radio("guest");
    let Attempt { outcome, .. } = attempt(&mut guest, &radio, w.lock_id, &lock, false).await;
    assert_eq!(
        outcome,
        Outcome::SelectRefused(Reason::NoPendingAuth.att_code())
    );
    let s = lock.stats();
    assert_eq!(s.beacons_armed, 0);
    assert!(s.beacon_rejections >= 2, "{s:?}");
    assert_eq!(s.unlocks, 0);
    lock.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beacon_replayed_by_a_third_radio_after_the_guest_stopped_unlocks_nothing() {
    let mut w = World::new("replay").await;
    let lock = w.start_lock(w.lock_options(None)).await;
    let (mut guest, _) = w.installed_guest(&lock, 3, 0).await;

    let radio = w.air.radio("guest");
    let first = attempt(&mut guest, &radio, w.lock_id, &lock, false).await;
    assert_eq!(first.outcome, Outcome::Unlocked);
    let mut unlocks = lock.unlocks();

    // The attacker re-advertises the captured beacon and names it in a Select.
    let attacker = w.air.radio("attacker");
    let heard = lock.stats().adverts;
    attacker
        .set_advertisement(common::COMPANY, first.beacon.clone())
        .await
        .unwrap();
    wait_stats(&lock, "the replayed beacon is heard", |s| {
        s.adverts >= heard + 3
    })
    .await;
    let link = attacker
        .connect(SERVICE_UUID, Duration::from_secs(5))
        .await
        .unwrap();
    let mut select = vec![0x01];
    select.extend_from_slice(&first.beacon[5..15]); // tag and attempt
    let err = link.write(CHALLENGE_CHAR_UUID, &select).await.unwrap_err();
    assert_eq!(
        err.att().map(|a| a.code()),
        Some(Reason::NoPendingAuth.att_code())
    );
    attacker.stop_advertising().await.unwrap();
    link.disconnect().await.unwrap();

    let s = lock.stats();
    assert_eq!((s.unlocks, s.beacons_armed), (1, 1), "{s:?}");
    assert!(s.beacon_rejections >= 1, "{s:?}");
    assert!(unlocks.try_recv().is_err());
    lock.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_response_mac_gets_att_0x87_and_a_rejection_event() {
    let mut w = World::new("badmac").await;
    let lock = w.start_lock(w.lock_options(None)).await;
    let (_observer, mut events) = w.observe_events("badmac").await;
    let (mut guest, grant) = w.installed_guest(&lock, 4, 0).await;

    let radio = w.air.radio("guest");
    let Attempt { outcome, .. } = attempt(&mut guest, &radio, w.lock_id, &lock, true).await;
    assert_eq!(outcome, Outcome::ResponseRefused(0x87));

    let ev = w
        .next_event(&mut events, |e| e.kind == EventKind::Rejection)
        .await;
    assert_eq!(ev.reason, Reason::BadResponseMac.code());
    assert_eq!(ev.session_id, grant.session_id);
    assert_eq!(ev.grant_id, grant.grant_id);
    let s = lock.stats();
    assert_eq!((s.unlocks, s.response_rejections), (0, 1));
    lock.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reading_the_challenge_without_a_select_is_no_challenge() {
    let w = World::new("noread").await;
    let lock = w.start_lock(w.lock_options(None)).await;
    let radio = w.air.radio("guest");
    let link = radio
        .connect(SERVICE_UUID, Duration::from_secs(5))
        .await
        .unwrap();
    let err = link.read(CHALLENGE_CHAR_UUID).await.unwrap_err();
    assert_eq!(
        err.att().map(|a| a.code()),
        Some(Reason::NoChallenge.att_code())
    );
    // A malformed Select is 0x8A, and the daemon keeps serving.
    let err = link
        .write(CHALLENGE_CHAR_UUID, &[1, 2, 3])
        .await
        .unwrap_err();
    assert_eq!(err.att().map(|a| a.code()), Some(0x8A));
    link.disconnect().await.unwrap();
    assert_eq!(lock.stats().select_rejections, 1);
    lock.shutdown().await.unwrap();
}
