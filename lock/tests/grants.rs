//! The grants topic: bad payloads, revocations, persistence across restarts, broker
//! restarts.

// Test helpers outside #[test] fns count as non-test code for clippy; unwrapping is how
// a test fails here.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Outcome, World, attempt, wait_stats, within};
use latchkey::Reason;
use latchkey::frame::EventKind;
use latchkey_transport::mqtt::ConnectionState;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_truncated_and_forged_payloads_are_refused_and_the_next_grant_installs() {
    let mut w = World::new("garbage").await;
    let lock = w.start_lock(w.lock_options(None)).await;
    let (_observer, mut events) = w.observe_events("garbage").await;
    let (mut guest, _) = w.installed_guest(&lock, 5, 0).await;
    w.next_event(&mut events, |e| e.kind == EventKind::GrantInstalled)
        .await;

    let second = w.issue_grant(&mut guest);
    let good = &second.lock_grant;
    let mut forged = good.clone();
    *forged.last_mut().unwrap() ^= 0x01;
    let mut trailing = good.clone();
    trailing.push(0);
    let mut other_lock = good.clone();
    other_lock[2] ^= 0x01;
    let bad: Vec<(Vec<u8>, Reason)> = vec![
        (vec![], Reason::Truncated),
        (vec![0x01], Reason::Truncated),
        (vec![0x02, 0x01, 0, 0], Reason::UnsupportedVersion),
        (vec![0x01, 0x07, 0, 0], Reason::WrongType),
        (good[..100].to_vec(), Reason::Truncated),
        (trailing, Reason::TrailingBytes),
        (forged, Reason::BadSignature),
        (other_lock, Reason::WrongLock),
    ];
    for (payload, _) in &bad {
        w.publish_grants(payload).await;
    }
    w.publish_grants(good).await;
    wait_stats(&lock, "every payload processed", |s| {
        s.message_rejections == bad.len() as u64 && s.grants_installed == 2
    })
    .await;
    assert_eq!(lock.stats().core.sessions, 2);

    // Each refusal is reported with its reason, in order, and the install too (in its own
    // lane: it may overtake the rejections).
    let mut got = Vec::new();
    let mut installed = None;
    while got.len() < bad.len() || installed.is_none() {
        let ev = w
            .next_event(&mut events, |e| {
                matches!(e.kind, EventKind::Rejection | EventKind::GrantInstalled)
            })
            .await;
        match ev.kind {
            EventKind::Rejection => got.push(ev.reason),
            _ => installed = Some(ev.grant_id),
        }
    }
    let want: Vec<u16> = bad.iter().map(|(_, r)| r.code()).collect();
    assert_eq!(got, want);
    assert_eq!(installed, Some(second.grant_id));
    lock.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_over_mqtt_refuses_the_next_unlock() {
    let mut w = World::new("revoke").await;
    let lock = w.start_lock(w.lock_options(None)).await;
    let (_observer, mut events) = w.observe_events("revoke").await;
    let (mut guest, grant) = w.installed_guest(&lock, 6, 0).await;

    let now = common::now();
    let revocation = w
        .issuer
        .revoke_grant(now, grant.grant_id, &mut w.rng)
        .unwrap();
    w.deliver_until(&lock, &revocation.payload, |s| s.revocations_applied >= 1)
        .await;
    let ev = w
        .next_event(&mut events, |e| e.kind == EventKind::RevocationApplied)
        .await;
    assert_eq!(
        (ev.grant_id, ev.session_id),
        (grant.grant_id, grant.session_id)
    );
    assert_eq!(lock.stats().core.sessions, 0);

    let radio = w.air.radio("guest");
    let a = attempt(&mut guest, &radio, w.lock_id, &lock, false).await;
    assert_eq!(
        a.outcome,
        Outcome::SelectRefused(Reason::NoPendingAuth.att_code())
    );
    assert_eq!(lock.stats().unlocks, 0);

    // LK-REV-5: the revoked guest's beacon is recognised by its tombstone and reported
    // with the revoked grant's ids, once however often it is heard.
    let ev = w
        .next_event(&mut events, |e| {
            e.kind == EventKind::Rejection && e.reason == Reason::SessionRevoked.code()
        })
        .await;
    assert_eq!(
        (ev.grant_id, ev.session_id),
        (grant.grant_id, grant.session_id)
    );
    assert_eq!(lock.stats().core.tombstones, 1);
    assert_no_more_session_revoked(&w, &mut events).await;
    lock.shutdown().await.unwrap();
}

/// No further `session_revoked` rejection event within half a second.
async fn assert_no_more_session_revoked(
    w: &World,
    events: &mut tokio::sync::mpsc::Receiver<latchkey_transport::mqtt::Incoming>,
) {
    let more = tokio::time::timeout(
        Duration::from_millis(500),
        w.next_event(events, |e| e.reason == Reason::SessionRevoked.code()),
    )
    .await;
    assert!(
        more.is_err(),
        "a repeated beacon was reported again: {more:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_lock_keeps_its_sessions_and_revocations() {
    let mut w = World::new("restart").await;
    let state = tempfile::tempdir().unwrap();
    let lock = w
        .start_lock(w.lock_options(Some(state.path().to_owned())))
        .await;
    let mut kept = w.enroll_guest(7);
    let mut revoked = w.enroll_guest(8);
    let keep = w.issue_grant(&mut kept);
    let gone = w.issue_grant(&mut revoked);
    w.deliver_until(&lock, &keep.lock_grant, |s| s.grants_installed >= 1)
        .await;
    w.deliver_until(&lock, &gone.lock_grant, |s| s.grants_installed >= 2)
        .await;
    let revocation = w
        .issuer
        .revoke_grant(common::now(), gone.grant_id, &mut w.rng)
        .unwrap();
    w.deliver_until(&lock, &revocation.payload, |s| s.revocations_applied >= 1)
        .await;

    // The revoked grant's file stays until its not_after, for its tombstone.
    let mut want = vec![
        format!("{}.grant", keep.grant_id),
        format!("{}.grant", gone.grant_id),
        format!("{}.revocation", gone.grant_id),
    ];
    want.sort();
    assert_eq!(stored_files(state.path()), want);
    lock.shutdown().await.unwrap();

    // Same state directory, new process-equivalent: no grant is sent again.
    let lock = w
        .start_lock(w.lock_options(Some(state.path().to_owned())))
        .await;
    let (_observer, mut events) = w.observe_events("restart").await;
    let s = lock.stats();
    assert_eq!(
        (s.core.sessions, s.core.revocations, s.core.tombstones),
        (1, 1, 1),
        "{s:?}"
    );

    let radio = w.air.radio("guest");
    let a = attempt(&mut kept, &radio, w.lock_id, &lock, false).await;
    assert_eq!(a.outcome, Outcome::Unlocked);

    // The rebuilt tombstone still names the revoked guest's beacons.
    let a = attempt(&mut revoked, &radio, w.lock_id, &lock, false).await;
    assert_eq!(
        a.outcome,
        Outcome::SelectRefused(Reason::NoPendingAuth.att_code())
    );
    let ev = w
        .next_event(&mut events, |e| e.reason == Reason::SessionRevoked.code())
        .await;
    assert_eq!(ev.grant_id, gone.grant_id);

    // The revoked grant delivered again is still refused.
    let before = lock.stats().message_rejections;
    w.deliver_until(&lock, &gone.lock_grant, |s| s.message_rejections > before)
        .await;
    assert_eq!(lock.stats().core.sessions, 1);
    lock.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_resubscribes_after_the_broker_restarts() {
    let mut w = World::new("brokerrestart").await;
    let lock = w.start_lock(w.lock_options(None)).await;
    let mut state = lock.mqtt_state();

    let broker = w.broker.take().unwrap();
    tokio::task::spawn_blocking(move || broker.stop())
        .await
        .unwrap();
    within(
        10,
        "lock sees the broker go",
        state.wait_for(|s| *s != ConnectionState::Connected),
    )
    .await
    .unwrap();

    // A fresh broker on the same port knows nothing of the lock's subscription.
    w.broker = Some(common::start_broker(w.addr).await);
    common::wait_connected(&mut state).await;
    common::wait_connected(&mut w.publisher.state()).await;

    let (mut guest, _) = w.installed_guest(&lock, 9, 0).await;
    let radio = w.air.radio("guest");
    let a = attempt(&mut guest, &radio, w.lock_id, &lock, false).await;
    assert_eq!(a.outcome, Outcome::Unlocked);
    lock.shutdown().await.unwrap();
}

fn stored_files(state: &std::path::Path) -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(state.join("messages"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limited_grants_unlock_count_survives_restarts() {
    let mut w = World::new("count").await;
    let state = tempfile::tempdir().unwrap();
    let dir = Some(state.path().to_owned());
    let lock = w.start_lock(w.lock_options(dir.clone())).await;
    let (mut guest, grant) = w.installed_guest(&lock, 12, 2).await;
    let radio = w.air.radio("guest");
    let a = attempt(&mut guest, &radio, w.lock_id, &lock, false).await;
    assert_eq!(a.outcome, Outcome::Unlocked);
    let count_file = state
        .path()
        .join(format!("messages/{}.unlocks", grant.grant_id));
    assert_eq!(std::fs::read_to_string(&count_file).unwrap(), "1\n");
    lock.shutdown().await.unwrap();

    // Restarted: the count is restored, so one unlock is left, not two.
    let lock = w.start_lock(w.lock_options(dir.clone())).await;
    let a = attempt(&mut guest, &radio, w.lock_id, &lock, false).await;
    assert_eq!(a.outcome, Outcome::Unlocked);
    assert_eq!(std::fs::read_to_string(&count_file).unwrap(), "2\n");
    lock.shutdown().await.unwrap();

    // Restarted again: LK-LIM-2 refuses the spent grant's beacon, which never arms.
    let lock = w.start_lock(w.lock_options(dir.clone())).await;
    let (_observer, mut events) = w.observe_events("count").await;
    let a = attempt(&mut guest, &radio, w.lock_id, &lock, false).await;
    assert_eq!(
        a.outcome,
        Outcome::SelectRefused(Reason::NoPendingAuth.att_code())
    );
    w.next_event(&mut events, |e| {
        e.kind == EventKind::Rejection && e.reason == Reason::UnlockLimitReached.code()
    })
    .await;
    let s = lock.stats();
    assert_eq!((s.unlocks, s.beacons_armed), (0, 0), "{s:?}");
    lock.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unlocks_and_installs_are_published_while_rejections_are_rate_limited() {
    let mut w = World::new("mustdeliver").await;
    let mut opts = w.lock_options(None);
    opts.event_rate = (1, 1);
    let lock = w.start_lock(opts).await;
    let (_observer, mut events) = w.observe_events("mustdeliver").await;
    // Empty the rejection bucket, and keep it empty.
    w.deliver_until(&lock, &[0x01], |s| s.message_rejections >= 1)
        .await;
    for _ in 0..30 {
        w.publish_grants(&[0x01]).await;
    }
    wait_stats(&lock, "the flood processed", |s| s.message_rejections >= 31).await;
    let dropped = lock.stats().events_dropped;
    assert!(dropped >= 25, "{:?}", lock.stats());

    let (mut guest, grant) = w.installed_guest(&lock, 13, 0).await;
    let radio = w.air.radio("guest");
    let a = attempt(&mut guest, &radio, w.lock_id, &lock, false).await;
    assert_eq!(a.outcome, Outcome::Unlocked);
    for kind in [EventKind::GrantInstalled, EventKind::Unlock] {
        let ev = w.next_event(&mut events, |e| e.kind == kind).await;
        assert_eq!(ev.grant_id, grant.grant_id);
    }
    let s = lock.stats();
    assert_eq!(s.events_lost, 0, "{s:?}");
    lock.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_flood_is_rate_limited_and_counted() {
    let w = World::new("flood").await;
    let mut opts = w.lock_options(None);
    opts.event_rate = (1, 2);
    let lock = w.start_lock(opts).await;
    // Make sure the subscription is live: rejections are counted as they arrive.
    w.deliver_until(&lock, &[0x01], |s| s.message_rejections >= 1)
        .await;
    let before = lock.stats();
    for _ in 0..20 {
        w.publish_grants(&[0x01]).await;
    }
    wait_stats(&lock, "the flood processed", |s| {
        s.message_rejections >= before.message_rejections + 20
    })
    .await;
    // A burst of 2 and 1/s: at most a handful of the 21 rejections become events.
    let s = lock.stats();
    assert!(s.events_dropped >= 15, "{s:?}");
    assert!(s.events_published <= 6, "{s:?}");
    assert_eq!(lock.events_dropped(), s.events_dropped);
    lock.shutdown().await.unwrap();
}
