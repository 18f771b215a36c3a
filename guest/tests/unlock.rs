//! The guest daemon against a core issuer and a core lock: real embedded broker, simulated
//! air.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{
    IssuerLog, LockLog, LockMode, LockSetup, TestClock, World, rng, sniffer, spawn_issuer,
    spawn_lock, within,
};
use latchkey::crypto::EnrollmentKey;
use latchkey::frame::BeaconView;
use latchkey::{Guest, GuestConfig, GuestId, Issuer, IssuerConfig, Reason, UnixMillis, topics};
use latchkey_guest::{GuestError, UnlockStep, WallClock};
use latchkey_transport::mqtt::QoS;
use tokio::time::Instant;

fn assert_send<T: Send>(_: &T) {}

#[tokio::test(flavor = "multi_thread")]
async fn full_unlock_reports_timings_and_cleans_up() {
    let w = World::new(TestClock::system()).await;
    let mut issuer = spawn_issuer(&w).await;
    let mut lock = spawn_lock(&w, LockSetup::default()).await;
    let mut air = sniffer(&w).await;
    let mut guest = w.guest(w.options()).await;

    let fut = guest.unlock(w.lock_id);
    assert_send(&fut);
    let report = within(20, "unlock", fut).await.unwrap();

    assert_eq!(report.lock_id, w.lock_id);
    assert!(!report.grant_reused);
    assert_eq!(report.grant_requests, 1);
    assert!(report.select_tries >= 1);
    let t = report.timings;
    for (name, d) in [
        ("grant", t.grant),
        ("connect", t.connect),
        ("select", t.select),
        ("challenge", t.challenge),
        ("response", t.response),
    ] {
        assert!(d > Duration::ZERO, "{name} timing is zero");
    }
    // The sim's GATT latency is 10 ms each way: every GATT step costs at least 20 ms.
    assert!(t.select >= Duration::from_millis(20));
    assert!(t.response >= Duration::from_millis(20));
    assert!(t.total >= t.grant + t.connect + t.select + t.challenge + t.response);
    assert_eq!(
        issuer.log.recv().await,
        Some(IssuerLog::Granted(w.guest_id))
    );
    match lock
        .wait_for("unlock", |l| matches!(l, LockLog::Unlocked(_)))
        .await
    {
        LockLog::Unlocked(u) => {
            assert_eq!(u.guest_id, w.guest_id);
            assert_eq!(u.grant_id, report.grant_id);
            assert_eq!(u.session_id, report.session_id);
        }
        other => panic!("{other:?}"),
    }
    lock.wait_for("disconnect", |l| *l == LockLog::Disconnected)
        .await;

    // Advertising stopped with the outcome: the air goes quiet.
    tokio::time::sleep(Duration::from_millis(300)).await;
    while air.try_recv().is_ok() {}
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        air.try_recv().is_err(),
        "still advertising after the unlock"
    );

    // A second unlock reuses the live grant: no MQTT round trip, a new attempt number.
    let again = within(20, "second unlock", guest.unlock(w.lock_id))
        .await
        .unwrap();
    assert!(again.grant_reused);
    assert_eq!(again.grant_requests, 0);
    assert!(again.timings.grant < Duration::from_millis(50));
    assert_eq!(again.grant_id, report.grant_id);
    assert_eq!(guest.stats().requests_sent, 1);
    assert_eq!(guest.stats().grants_accepted, 1);
    guest.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_guest_unlocks_with_the_grant_it_stored() {
    let w = World::new(TestClock::system()).await;
    let _issuer = spawn_issuer(&w).await;
    let _lock = spawn_lock(&w, LockSetup::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut opts = w.options();
    opts.grant_dir = Some(dir.path().join("grants"));

    let mut first = w.guest(opts.clone()).await;
    let report = within(20, "unlock", first.unlock(w.lock_id)).await.unwrap();
    assert!(!report.grant_reused);
    first.shutdown().await;
    let stored = dir.path().join(format!("grants/{}.guestgrant", w.lock_id));
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&stored).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);

    // A new process: the stored grant is restored and used without the network.
    let mut second = w.guest(opts.clone()).await;
    let held = second.held_grant(&w.lock_id).expect("restored at start");
    assert_eq!(held.grant_id, report.grant_id);
    let again = within(20, "unlock after restart", second.unlock(w.lock_id))
        .await
        .unwrap();
    assert!(again.grant_reused);
    assert_eq!(again.grant_requests, 0);
    assert_eq!(again.grant_id, report.grant_id);

    // Dropping the grant deletes the file too.
    second.drop_grant(&w.lock_id);
    assert!(!stored.exists());
    second.shutdown().await;

    // A corrupted file is deleted at start, and the guest asks for a new grant.
    std::fs::write(&stored, "00").unwrap();
    std::fs::set_permissions(&stored, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let third = w.guest(opts).await;
    assert!(third.held_grant(&w.lock_id).is_none());
    assert!(!stored.exists());
    third.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn lock_refusal_is_reported_with_its_reason() {
    let w = World::new(TestClock::system()).await;
    let _issuer = spawn_issuer(&w).await;
    // The air delivers −60 dBm; a +20 dBm threshold refuses every beacon (LK-ADV-4), so no
    // authentication is pending and the Select gets 0x80.
    let mut lock = spawn_lock(
        &w,
        LockSetup {
            rssi_threshold_dbm: 20,
            ..LockSetup::default()
        },
    )
    .await;
    let mut guest = w.guest(w.options()).await;

    let started = Instant::now();
    let err = within(20, "unlock", guest.unlock(w.lock_id))
        .await
        .unwrap_err();
    match &err {
        GuestError::Refused { step, reason } => {
            assert_eq!(*step, UnlockStep::Select);
            assert_eq!(*reason, Reason::NoPendingAuth);
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(err.reason(), Some(Reason::NoPendingAuth));
    let msg = err.to_string();
    assert!(msg.contains("no_pending_auth (LK-SEL-1)"), "{msg}");
    // The Select was retried for select_retry_for (600 ms), not forever.
    assert!(started.elapsed() < Duration::from_secs(5));
    let seen = {
        lock.wait_for("disconnect", |l| *l == LockLog::Disconnected)
            .await;
        lock.drain()
    };
    assert!(!seen.iter().any(|l| matches!(l, LockLog::Armed { .. })));

    // Again, with the grant now held: refused the same way, it is replaced by a fresh one
    // once, and the error says both.
    let err = within(20, "second unlock", guest.unlock(w.lock_id))
        .await
        .unwrap_err();
    match &err {
        GuestError::FreshGrantFailed {
            refused, source, ..
        } => {
            assert_eq!(*refused, Reason::NoPendingAuth);
            assert!(
                matches!(
                    **source,
                    GuestError::Refused {
                        step: UnlockStep::Select,
                        reason: Reason::NoPendingAuth
                    }
                ),
                "{source:?}"
            );
        }
        other => panic!("expected a fallback that failed, got {other:?}"),
    }
    assert_eq!(err.reason(), Some(Reason::NoPendingAuth));
    assert_eq!(guest.stats().requests_sent, 2, "one fallback, not more");
    guest.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_held_grant_the_lock_lost_is_replaced_by_a_fresh_one_in_the_same_unlock() {
    let w = World::new(TestClock::system()).await;
    let _issuer = spawn_issuer(&w).await;
    let lock = spawn_lock(&w, LockSetup::default()).await;
    let mut guest = w.guest(w.options()).await;
    let first = within(20, "unlock", guest.unlock(w.lock_id)).await.unwrap();

    // The lock restarts with no state: the held grant's beacons are unknown to it.
    drop(lock);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut lock = spawn_lock(&w, LockSetup::default()).await;
    let report = within(
        30,
        "unlock after the lock lost its state",
        guest.unlock(w.lock_id),
    )
    .await
    .unwrap();
    let fallback = report.fallback.expect("the held grant was replaced");
    assert_eq!(fallback.dropped_grant, first.grant_id);
    assert_eq!(fallback.refused, Reason::NoPendingAuth);
    assert!(!report.grant_reused);
    assert_eq!(report.grant_requests, 1);
    assert_ne!(report.grant_id, first.grant_id);
    assert_eq!(
        guest.held_grant(&w.lock_id).map(|g| g.grant_id),
        Some(report.grant_id)
    );
    let json = report.to_json();
    assert_eq!(json["fallback"]["refused"], "no_pending_auth");
    assert_eq!(
        json["fallback"]["dropped_grant"],
        first.grant_id.to_string()
    );
    assert!(report.to_string().contains("was refused (no_pending_auth)"));
    let refused = lock
        .wait_for("the old beacon refused", |l| {
            *l == LockLog::BeaconRefused(Reason::UnknownTag)
        })
        .await;
    assert_eq!(refused, LockLog::BeaconRefused(Reason::UnknownTag));
    assert!(matches!(
        lock.wait_for("the unlock", |l| matches!(l, LockLog::Unlocked(_)))
            .await,
        LockLog::Unlocked(u) if u.grant_id == report.grant_id
    ));
    // A report without a fallback says so.
    assert!(first.fallback.is_none());
    assert!(first.to_json()["fallback"].is_null());
    guest.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_revoked_guest_drops_its_grant_and_is_told_why_no_fresh_one_came() {
    let w = World::new(TestClock::system()).await;
    let mut issuer = spawn_issuer(&w).await;
    let mut lock = spawn_lock(&w, LockSetup::default()).await;
    let mut opts = w.options();
    opts.timeouts.grant = Duration::from_millis(1500);
    opts.timeouts.grant_retry = Duration::from_millis(500);
    let mut guest = w.guest(opts).await;
    let first = within(20, "unlock", guest.unlock(w.lock_id)).await.unwrap();
    assert_eq!(
        issuer.log.recv().await,
        Some(IssuerLog::Granted(w.guest_id))
    );

    assert_eq!(issuer.revoke_guest(w.guest_id).await, 1);
    lock.wait_for("the revocation applied", |l| {
        *l == LockLog::RevocationApplied
    })
    .await;

    let err = within(20, "unlock after the revocation", guest.unlock(w.lock_id))
        .await
        .unwrap_err();
    match &err {
        GuestError::FreshGrantFailed {
            lock,
            dropped,
            refused,
            source,
        } => {
            assert_eq!(*lock, w.lock_id);
            assert_eq!(*dropped, first.grant_id);
            assert_eq!(*refused, Reason::NoPendingAuth);
            assert!(
                matches!(**source, GuestError::GrantTimeout { .. }),
                "{source:?}"
            );
        }
        other => panic!("expected a fallback that failed, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(msg.contains("did not accept the grant held"), "{msg}");
    assert!(msg.contains("revoked"), "{msg}");
    assert_eq!(err.reason(), None);
    assert_eq!(
        err.fallback().map(|f| (f.dropped_grant, f.refused)),
        Some((first.grant_id, Reason::NoPendingAuth))
    );
    // The lock knew the beacons were the revoked session's (LK-REV-5); the issuer refused
    // the fresh request; the guest holds no grant any more.
    lock.wait_for("the revoked beacon", |l| {
        *l == LockLog::BeaconRefused(Reason::SessionRevoked)
    })
    .await;
    let refusal = within(5, "the issuer's refusal", async {
        loop {
            if let Some(IssuerLog::Refused(r)) = issuer.log.recv().await {
                return r;
            }
        }
    })
    .await;
    assert_eq!(refusal, Reason::GuestRevoked);
    assert!(guest.held_grant(&w.lock_id).is_none());
    guest.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn beacons_below_threshold_are_what_the_lock_refused() {
    let w = World::new(TestClock::system()).await;
    let _issuer = spawn_issuer(&w).await;
    let mut lock = spawn_lock(
        &w,
        LockSetup {
            rssi_threshold_dbm: 20,
            ..LockSetup::default()
        },
    )
    .await;
    let mut guest = w.guest(w.options()).await;
    let _ = guest.unlock(w.lock_id).await;
    let l = lock
        .wait_for("a refused beacon", |l| {
            matches!(l, LockLog::BeaconRefused(_))
        })
        .await;
    assert_eq!(l, LockLog::BeaconRefused(Reason::RssiTooLow));
    guest.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn grant_that_never_comes_times_out_after_retrying() {
    let w = World::new(TestClock::system()).await;
    // No issuer. Watch the requests topic instead.
    let prefix = topics::DEFAULT_PREFIX;
    let (_c, mut requests) = w
        .client(
            "test-watcher",
            &topics::requests_filter(prefix),
            &format!("{prefix}/requests/probe"),
        )
        .await;
    let mut opts = w.options();
    opts.timeouts.grant = Duration::from_millis(1500);
    opts.timeouts.grant_retry = Duration::from_millis(400);
    let mut guest = w.guest(opts).await;

    let started = Instant::now();
    let err = within(10, "unlock", guest.unlock(w.lock_id))
        .await
        .unwrap_err();
    let took = started.elapsed();
    match err {
        GuestError::GrantTimeout {
            lock,
            requests,
            connected,
            ..
        } => {
            assert_eq!(lock, w.lock_id);
            assert!(requests >= 3, "only {requests} requests in 1.5 s");
            assert!(connected);
        }
        other => panic!("expected a grant timeout, got {other:?}"),
    }
    assert!(
        took >= Duration::from_millis(1500),
        "gave up early: {took:?}"
    );
    assert!(took < Duration::from_millis(2500), "gave up late: {took:?}");

    // Each retry is a new request (new request id, so a new frame), on our topic.
    let mut frames = BTreeSet::new();
    while let Ok(m) = requests.try_recv() {
        assert_eq!(m.topic, topics::requests(prefix, &w.guest_id));
        frames.insert(m.payload.to_vec());
    }
    assert!(frames.len() >= 3, "{} distinct requests", frames.len());
    // No BLE was touched: nothing was advertised for a grant we do not hold.
    assert!(guest.held_grant(&w.lock_id).is_none());
    guest.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn grant_for_another_guest_is_ignored_and_next_unlock_works() {
    let w = World::new(TestClock::system()).await;
    let mut issuer = spawn_issuer(&w).await;
    let _lock = spawn_lock(&w, LockSetup::default()).await;

    // A genuine GuestGrant, but for guest B, lands on our topic (a misrouting broker, or
    // an attacker replaying it there).
    let mut r = rng(11);
    let other = GuestId::random(&mut r);
    let other_key = EnrollmentKey::random(&mut r);
    let mut side_issuer = Issuer::new(IssuerConfig::new(w.issuer_key.clone())).unwrap();
    side_issuer.add_lock(w.lock_id, w.lock_key.public_key());
    side_issuer.add_guest(other, other_key.clone(), BTreeSet::from([w.lock_id]));
    let mut b = Guest::new(GuestConfig::new(other, other_key)).unwrap();
    let now = w.clock.now();
    let req = b.request_grant(now, w.lock_id, 300, &mut r);
    let misrouted = side_issuer
        .handle_request(now, other, &req, &mut r)
        .unwrap()
        .guest_grant;

    let prefix = topics::DEFAULT_PREFIX;
    let ours = topics::guest_grants(prefix, &w.guest_id);
    let (intruder, _rx) = w.client("test-intruder", "test/none", "test/none").await;
    let mut guest = w.guest(w.options()).await;
    // Our SUBSCRIBE went out after CONNACK on our own connection; let it land before a
    // stranger publishes on another connection.
    tokio::time::sleep(Duration::from_millis(300)).await;
    intruder
        .publish(&ours, &b"garbage"[..], QoS::AtLeastOnce, false)
        .await
        .unwrap();
    intruder
        .publish(&ours, misrouted.to_vec(), QoS::AtLeastOnce, false)
        .await
        .unwrap();
    within(5, "both messages handled", async {
        loop {
            guest.poll_grants();
            if guest.stats().grants_rejected >= 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let stats = guest.stats();
    assert_eq!(stats.grants_accepted, 0);
    assert_eq!(stats.last_rejection, Some(Reason::WrongGuest));
    assert!(guest.held_grant(&w.lock_id).is_none());

    let report = within(20, "unlock", guest.unlock(w.lock_id)).await.unwrap();
    assert!(!report.grant_reused);
    assert_eq!(
        issuer.log.recv().await,
        Some(IssuerLog::Granted(w.guest_id))
    );
    assert_eq!(guest.stats().grants_accepted, 1);
    guest.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn advertisement_is_refreshed_at_the_step_boundary() {
    // "Now" is 700 ms before a step boundary. The lock's radio comes up only after the
    // boundary, so the guest must still be advertising then, with the new step's beacon:
    // its Select names the current step's tag, which only that beacon armed.
    let w = World::new(TestClock::system()).await;
    let _issuer = spawn_issuer(&w).await;
    let mut air = sniffer(&w).await;
    let mut guest = w.guest(w.options()).await;
    // Set up first, then move every peer's clock to 700 ms before a boundary.
    let boundary_at = w.clock.stand_before_step_boundary(700);
    let boundary = boundary_at.step();
    let mut lock = spawn_lock(
        &w,
        LockSetup {
            radio_from: Some(boundary_at.plus_ms(150)),
            ..LockSetup::default()
        },
    )
    .await;
    assert!(
        w.clock.now() < UnixMillis(boundary_at.0 - 300),
        "setup took too long to stand before the boundary"
    );

    let report = within(20, "unlock", guest.unlock(w.lock_id)).await.unwrap();
    assert!(report.timings.connect >= Duration::from_millis(100));

    let mut steps = Vec::new();
    while let Ok((at, a)) = air.try_recv() {
        let b = BeaconView::parse(&a.data).unwrap();
        steps.push((at, b.step().0, b.attempt(), b.tag()));
    }
    let before: Vec<_> = steps.iter().filter(|s| s.1 + 1 == boundary.0).collect();
    let after: Vec<_> = steps.iter().filter(|s| s.1 == boundary.0).collect();
    assert!(
        !before.is_empty(),
        "no beacon of the step before the boundary"
    );
    assert!(
        !after.is_empty(),
        "the beacon was not refreshed at the boundary"
    );
    // Same attempt, new tag; the new beacon appears within one advertising interval.
    assert_eq!(before[0].2, after[0].2);
    assert_ne!(before[0].3, after[0].3);
    assert!(after[0].0 < boundary_at.plus_ms(150));
    let armed = lock
        .wait_for("armed", |l| matches!(l, LockLog::Armed { .. }))
        .await;
    assert_eq!(
        armed,
        LockLog::Armed {
            step: boundary.0,
            attempt: after[0].2
        }
    );
    guest.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn impostor_lock_gets_no_response() {
    let w = World::new(TestClock::system()).await;
    let _issuer = spawn_issuer(&w).await;
    let mut lock = spawn_lock(
        &w,
        LockSetup {
            mode: LockMode::Impostor,
            ..LockSetup::default()
        },
    )
    .await;
    let mut guest = w.guest(w.options()).await;
    let err = within(20, "unlock", guest.unlock(w.lock_id))
        .await
        .unwrap_err();
    match err {
        GuestError::ChallengeRejected { reason } => {
            assert!(
                matches!(reason, Reason::SessionMismatch | Reason::BadLockMac),
                "{reason}"
            );
        }
        other => panic!("expected the challenge to be rejected, got {other:?}"),
    }
    lock.wait_for("disconnect", |l| *l == LockLog::Disconnected)
        .await;
    let seen = lock.drain();
    assert!(!seen.contains(&LockLog::ResponseWritten), "{seen:?}");
    guest.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn no_lock_in_range() {
    let w = World::new(TestClock::system()).await;
    let _issuer = spawn_issuer(&w).await;
    let mut opts = w.options();
    opts.timeouts.connect = Duration::from_millis(500);
    let mut guest = w.guest(opts).await;
    let mut air = sniffer(&w).await;
    let err = within(20, "unlock", guest.unlock(w.lock_id))
        .await
        .unwrap_err();
    assert!(matches!(err, GuestError::NoLockFound { .. }), "{err:?}");
    // It did advertise while looking, and stopped when it gave up.
    assert!(air.try_recv().is_ok());
    tokio::time::sleep(Duration::from_millis(300)).await;
    while air.try_recv().is_ok() {}
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(air.try_recv().is_err());
    guest.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn attempt_times_out_as_a_whole() {
    let w = World::new(TestClock::system()).await;
    let _issuer = spawn_issuer(&w).await;
    let mut opts = w.options();
    opts.timeouts.attempt = Duration::from_millis(400);
    let mut guest = w.guest(opts).await;
    let err = within(20, "unlock", guest.unlock(w.lock_id))
        .await
        .unwrap_err();
    // The search for the lock gets what is left of the attempt (just under 400 ms, the
    // first advertisement came first), and reports its own error: the attempt's timeout
    // waits a grace past it.
    assert!(
        matches!(
            err,
            GuestError::NoLockFound { waited }
                if waited <= Duration::from_millis(400) && waited >= Duration::from_millis(300)
        ),
        "{err:?}"
    );
    guest.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn lock_outside_the_enrollment_is_refused_at_once() {
    let w = World::new(TestClock::system()).await;
    let mut guest = w.guest(w.options()).await;
    let stranger = latchkey::LockId::random(&mut rng(99));
    let err = guest.unlock(stranger).await.unwrap_err();
    assert!(matches!(err, GuestError::LockNotEnrolled { lock } if lock == stranger));
    assert_eq!(guest.stats().requests_sent, 0);
    guest.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn cancelled_unlock_stops_advertising() {
    let w = World::new(TestClock::system()).await;
    let _issuer = spawn_issuer(&w).await;
    let mut guest = w.guest(w.options()).await;
    let mut air = sniffer(&w).await;
    let cancel = tokio_util::sync::CancellationToken::new();
    let c2 = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(700)).await;
        c2.cancel();
    });
    let err = within(10, "unlock", guest.unlock_until(w.lock_id, &cancel))
        .await
        .unwrap_err();
    assert!(matches!(err, GuestError::Cancelled), "{err:?}");
    assert!(air.try_recv().is_ok(), "it never advertised");
    tokio::time::sleep(Duration::from_millis(300)).await;
    while air.try_recv().is_ok() {}
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(air.try_recv().is_err(), "still advertising after cancel");
    guest.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_broker_is_a_clear_error() {
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut r = rng(2);
    let bundle = latchkey_guest::EnrollmentBundle::new(
        GuestId::random(&mut r),
        EnrollmentKey::random(&mut r),
        &format!("mqtt://127.0.0.1:{port}"),
        vec![],
        0xFFFF,
    )
    .unwrap();
    let mut opts = latchkey_guest::GuestOptions::new(bundle);
    opts.timeouts.mqtt_connect = Duration::from_millis(500);
    let air = latchkey_transport::radio::SimAir::default();
    let err = latchkey_guest::Guestd::new(opts, air.radio("phone"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, GuestError::BrokerUnreachable { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains(&format!("127.0.0.1:{port}")));
}

#[tokio::test(flavor = "multi_thread")]
async fn grant_expiring_mid_attempt_ends_it() {
    let w = World::new(TestClock::system()).await;
    let _issuer = spawn_issuer(&w).await;
    let mut opts = w.options();
    // The issuer grants exactly what is asked: the grant dies 1–2 s from now, while the
    // guest is still looking for a lock (none is in range).
    opts.grant_validity_s = 2;
    let mut guest = w.guest(opts).await;
    let started = Instant::now();
    let err = within(20, "unlock", guest.unlock(w.lock_id))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            GuestError::GrantUnusable {
                reason: Reason::GrantExpired,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    // The dead grant is dropped: the next unlock asks for a new one.
    assert!(guest.held_grant(&w.lock_id).is_none());
    guest.shutdown().await;
}
