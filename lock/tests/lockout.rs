//! Lockout after failed handshakes (LK-LCK-1..3) as the daemon carries it out: the core's
//! notices become kind-5 and kind-6 events, the locked-out guest is refused `locked_out`,
//! and the lockout ends by itself on the daemon's timer.

// Test helpers outside #[test] fns count as non-test code for clippy; unwrapping is how
// a test fails here.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{COMPANY, Outcome, World, attempt, avoid_step_boundary, wait_stats};
use latchkey::frame::EventKind;
use latchkey::{Guest, LockId, Reason};
use latchkey_lock::LockdHandle;
use latchkey_lock::gatt::{CHALLENGE_CHAR_UUID, RESPONSE_CHAR_UUID, SERVICE_UUID};
use latchkey_transport::radio::{GattLink, GuestRadio, SimGattLink, SimRadio};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

/// The shortest lockout the core allows (spec §9: 10..=86 400 s).
const LOCKOUT_S: u64 = 10;

/// Arms a beacon of `guest`, Selects it and reads the challenge; returns the open link and
/// the correct Response, not yet written.
async fn hold_challenge(
    guest: &mut Guest,
    radio: &SimRadio,
    lock_id: LockId,
    handle: &LockdHandle,
) -> (SimGattLink, Vec<u8>) {
    let mut rng = ChaCha20Rng::seed_from_u64(99);
    let now = common::now();
    guest.start_unlock(now, lock_id, &mut rng).unwrap();
    let beacon = guest.advertisement(now).unwrap().to_vec();
    let armed = handle.stats().beacons_armed;
    radio.set_advertisement(COMPANY, beacon).await.unwrap();
    wait_stats(handle, "the beacon armed", |s| s.beacons_armed > armed).await;
    let link = radio
        .connect(SERVICE_UUID, Duration::from_secs(5))
        .await
        .unwrap();
    let select = guest.select(common::now()).unwrap();
    link.write(CHALLENGE_CHAR_UUID, &select).await.unwrap();
    radio.stop_advertising().await.unwrap();
    let challenge = link.read(CHALLENGE_CHAR_UUID).await.unwrap();
    let response = guest.handle_challenge(common::now(), &challenge).unwrap();
    (link, response.to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_handshakes_lock_the_guest_out_until_the_lockout_ends_by_itself() {
    let mut w = World::new("lockout").await;
    let mut opts = w.lock_options(None);
    opts.tunables.lockout_threshold = 2;
    opts.tunables.lockout_duration_s = LOCKOUT_S;
    // Room for the held challenge to outlive two failed attempts (LK-RSP-3).
    opts.tunables.response_budget_ms = 10_000;
    opts.status.interval = Duration::from_secs(1);
    let lock = w.start_lock(opts).await;
    let (_observer, mut events) = w.observe_events("lockout").await;
    let (_status_observer, mut statuses) = w.observe_events("lockout-status").await;

    // Two sessions of one guest: the same enrollment, two grants.
    let mut guest = w.enroll_guest(21);
    let mut twin = Guest::new(guest.config().clone()).unwrap();
    let grant = w.issue_grant(&mut guest);
    let twin_grant = w.issue_grant(&mut twin);
    w.deliver_until(&lock, &grant.lock_grant, |s| s.grants_installed >= 1)
        .await;
    w.deliver_until(&lock, &twin_grant.lock_grant, |s| s.grants_installed >= 2)
        .await;
    let radio = w.air.radio("guest");
    let twin_radio = w.air.radio("twin");

    // The twin holds a challenge; then two failed handshakes of the guest lock it out.
    avoid_step_boundary().await;
    let (twin_link, twin_response) = hold_challenge(&mut twin, &twin_radio, w.lock_id, &lock).await;
    for _ in 0..2 {
        let a = attempt(&mut guest, &radio, w.lock_id, &lock, true).await;
        assert_eq!(
            a.outcome,
            Outcome::ResponseRefused(Reason::BadResponseMac.att_code())
        );
    }
    let started = w
        .next_event(&mut events, |e| e.kind == EventKind::Lockout)
        .await;
    let locked_at = std::time::Instant::now();
    assert_eq!(started.reason, Reason::BadResponseMac.code());
    assert_eq!(
        (started.grant_id, started.session_id),
        (grant.grant_id, grant.session_id)
    );
    assert_eq!(lock.stats().lockouts_started, 1);
    assert_eq!(lock.stats().core.lockouts, 1);

    // LK-LCK-2: the twin's verified Response on its older challenge is refused too (0x8C),
    // and it is not counted as another failure.
    let err = twin_link
        .write(RESPONSE_CHAR_UUID, &twin_response)
        .await
        .unwrap_err();
    assert_eq!(
        err.att().map(|a| a.code()),
        Some(Reason::LockedOut.att_code())
    );
    twin_link.disconnect().await.unwrap();
    // (The guest's own beacon, still on air a moment after its second failure, may be
    // reported `locked_out` first, with no ids: beacon refusals name no session.)
    let ev = w
        .next_event(&mut events, |e| {
            e.kind == EventKind::Rejection && e.session_id == twin_grant.session_id
        })
        .await;
    assert_eq!(ev.reason, Reason::LockedOut.code());
    assert_eq!(ev.grant_id, twin_grant.grant_id);

    // Its beacons never arm: the Select finds nothing pending, and the beacon refusal is
    // reported once as an event and in the status counters.
    let a = attempt(&mut guest, &radio, w.lock_id, &lock, false).await;
    assert_eq!(
        a.outcome,
        Outcome::SelectRefused(Reason::NoPendingAuth.att_code())
    );
    // Counted in the status reports: one Response and at least the two beacon reports the
    // attempt waited for; one report at least saw the lockout active.
    let mut locked_out = 0;
    let mut saw_active = false;
    while locked_out < 3 {
        let st = w.next_status(&mut statuses, 5).await;
        saw_active |= st.lockouts == 1;
        locked_out += st
            .counters
            .iter()
            .filter(|c| c.reason == Reason::LockedOut.code())
            .map(|c| c.count)
            .sum::<u32>();
    }
    assert!(saw_active);

    // LK-LCK-3: the daemon wakes at locked_until and reports the end, with the same ids.
    let ended = w
        .next_event_within(&mut events, LOCKOUT_S + 5, |e| {
            e.kind == EventKind::LockoutEnded
        })
        .await;
    assert!(locked_at.elapsed() >= Duration::from_secs(LOCKOUT_S - 1));
    assert_eq!(ended.reason, 0);
    assert_eq!(
        (ended.grant_id, ended.session_id),
        (grant.grant_id, grant.session_id)
    );
    let s = lock.stats();
    assert_eq!((s.lockouts_ended, s.core.lockouts), (1, 0), "{s:?}");

    // The guest unlocks again.
    let a = attempt(&mut guest, &radio, w.lock_id, &lock, false).await;
    assert_eq!(a.outcome, Outcome::Unlocked);
    assert_eq!(lock.stats().events_lost, 0);
    lock.shutdown().await.unwrap();
}
