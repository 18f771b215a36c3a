//! Requests in, grants out, over a real embedded broker: the core `Lock` and `Guest` are
//! the peers and must accept what the issuer publishes.

// Test code, helpers included: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use latchkey::frame::EventKind;
use latchkey::lock::{GrantOutcome, MessageOutcome};
use latchkey::{GuestId, LockId, Reason, topics};
use latchkey_issuer::IssuerEvent;

use common::*;

#[tokio::test]
async fn an_accepted_request_publishes_a_lock_grant_and_a_guest_grant_both_verifiable() {
    init_logs();
    let p = Provisioned::new();
    let issuer = start_issuer(&p.state()).await;
    let url = issuer.broker_url().to_owned();
    let mut lock = LockPeer::connect(&p, &url).await;
    let mut guest = GuestPeer::connect(&p.bundle, &url).await;
    let mut events = issuer.subscribe();

    let req = guest.request(p.lock_id);
    guest.send(&req).await;

    let lg = within(10, "the LockGrant", lock.peer.next(10_000))
        .await
        .unwrap();
    assert_eq!(lg.topic, topics::lock_grants(PREFIX, &p.lock_id));
    assert!(!lg.retain);
    let installed = lock
        .lock
        .handle_message(now(), &lg.payload, &mut lock.rng)
        .unwrap();
    let MessageOutcome::Grant(GrantOutcome::Installed {
        grant_id,
        session_id,
        guest_id,
        ..
    }) = installed
    else {
        panic!("{installed:?}");
    };
    assert_eq!(guest_id, p.guest_id);

    let gg = within(10, "the GuestGrant", guest.peer.next(10_000))
        .await
        .unwrap();
    assert_eq!(gg.topic, topics::guest_grants(PREFIX, &p.guest_id));
    let info = guest.guest.handle_grant(now(), &gg.payload).unwrap();
    assert_eq!(
        (info.grant_id, info.session_id, info.lock_id),
        (grant_id, session_id, p.lock_id)
    );
    assert!(info.not_after > now().secs());

    let issued = expect_event(&mut events, "GrantIssued", |e| match e {
        IssuerEvent::GrantIssued(g) => Some(*g),
        _ => None,
    })
    .await;
    assert_eq!(issued.grant_id, grant_id);
    assert!(logged(&["grant issued", &grant_id.to_string()]));

    // The grant is live and persisted for revocation after a restart.
    let st = issuer.status().await.unwrap();
    assert_eq!(st.live_grants.len(), 1);
    assert_eq!(st.counters.requests_accepted, 1);
    let reg = store(&p.state());
    let saved = reg.live_grants(now().secs()).unwrap();
    assert_eq!(saved.len(), 1);
    assert_eq!(saved[0].grant_id, grant_id);
    assert_eq!(saved[0].session_id, session_id);
    assert!(
        reg.guest(&p.guest_id)
            .unwrap()
            .unwrap()
            .last_used_ms
            .is_some(),
        "last use noted"
    );

    // A lock event for it is verified and logged.
    lock.send_event(EventKind::GrantInstalled, grant_id, session_id)
        .await;
    let ev = expect_event(&mut events, "the lock event", |e| match e {
        IssuerEvent::LockEvent(ev) => Some(*ev),
        _ => None,
    })
    .await;
    assert_eq!((ev.lock_id, ev.grant_id), (p.lock_id, grant_id));
    assert!(logged(&[
        "lock event: grant_installed",
        &p.lock_id.to_string()
    ]));

    issuer.shutdown().await;
}

#[tokio::test]
async fn a_replayed_request_gets_no_grant() {
    init_logs();
    let p = Provisioned::new();
    let issuer = start_issuer(&p.state()).await;
    let url = issuer.broker_url().to_owned();
    let mut lock = LockPeer::connect(&p, &url).await;
    let mut guest = GuestPeer::connect(&p.bundle, &url).await;
    let mut events = issuer.subscribe();

    let req = guest.request(p.lock_id);
    guest.send(&req).await;
    assert!(lock.peer.next(10_000).await.is_some());
    assert!(guest.peer.next(10_000).await.is_some());

    guest.send(&req).await;
    let reason = expect_event(&mut events, "the replay refusal", |e| match e {
        IssuerEvent::RequestRefused { reason, .. } => Some(*reason),
        _ => None,
    })
    .await;
    assert_eq!(reason, Reason::RequestReplay);
    assert!(
        lock.peer.next(300).await.is_none(),
        "no LockGrant for a replay"
    );
    assert!(
        guest.peer.next(100).await.is_none(),
        "no GuestGrant for a replay"
    );
    assert!(logged(&[
        "grant request refused",
        &p.guest_id.to_string(),
        "request_replay (LK-ISS-5)"
    ]));
    let st = issuer.status().await.unwrap();
    assert_eq!(st.counters.requests_accepted, 1);
    assert_eq!(st.counters.requests_refused.get("request_replay"), Some(&1));
    issuer.shutdown().await;
}

#[tokio::test]
async fn bad_requests_and_events_are_refused_with_a_logged_reason_and_serving_goes_on() {
    init_logs();
    let p = Provisioned::new();
    let issuer = start_issuer(&p.state()).await;
    let url = issuer.broker_url().to_owned();
    let mut lock = LockPeer::connect(&p, &url).await;
    let mut guest = GuestPeer::connect(&p.bundle, &url).await;
    let mut events = issuer.subscribe();
    let gid = p.guest_id.to_string();
    let lid = p.lock_id.to_string();

    async fn refused(
        events: &mut tokio::sync::broadcast::Receiver<IssuerEvent>,
        what: &str,
    ) -> Reason {
        expect_event(events, what, |e| match e {
            IssuerEvent::RequestRefused { reason, .. } => Some(*reason),
            IssuerEvent::EventRefused { reason, .. } => Some(*reason),
            _ => None,
        })
        .await
    }

    // Garbage, too long, and a request sealed with the wrong key.
    guest.send(b"hello").await;
    assert_eq!(refused(&mut events, "garbage").await, Reason::Truncated);
    let mut long = guest.request(p.lock_id);
    long.resize(1000, 0xAA);
    guest.send(&long).await;
    assert_eq!(
        refused(&mut events, "too long").await,
        Reason::TrailingBytes
    );
    let mut forger = GuestPeer::with_key(
        p.guest_id,
        latchkey::crypto::EnrollmentKey::from_bytes([7; 32]),
        &url,
    )
    .await;
    let forged = forger.request(p.lock_id);
    forger.send(&forged).await;
    assert_eq!(refused(&mut events, "bad seal").await, Reason::BadSeal);
    // A request on another guest's topic, and one from nobody enrolled.
    let stranger = GuestId([0x55; 16]);
    let topic = topics::requests(PREFIX, &stranger);
    let req = guest.request(p.lock_id);
    guest.peer.publish(&topic, &req).await;
    assert_eq!(
        refused(&mut events, "mismatch").await,
        Reason::GuestMismatch
    );
    // Over the 64 KiB cap: dropped by the transport before the core, with a warning.
    guest.send(&vec![0u8; 66 * 1024]).await;
    // A topic that names no guest.
    guest
        .peer
        .publish(&format!("{PREFIX}/requests/NOT-HEX"), b"x")
        .await;
    expect_event(&mut events, "malformed topic", |e| match e {
        IssuerEvent::MalformedTopic { topic } => Some(topic.clone()),
        _ => None,
    })
    .await;

    // Events: garbage, a wrong signature (another key claiming to be the lock), an event
    // naming another lock, an unknown lock.
    let ev_topic = topics::lock_events(PREFIX, &p.lock_id);
    lock.peer.publish(&ev_topic, b"\x01\x05junk").await;
    assert_eq!(
        refused(&mut events, "event garbage").await,
        Reason::Truncated
    );
    let mut rng = rng(3);
    let impostor_key = latchkey::crypto::rsa::RsaPrivateKey::generate(&mut rng, 2048).unwrap();
    let issuer_pub =
        latchkey_issuer::keys::load_public_key(&p.state().join("issuer.pub.pem"), "k").unwrap();
    let impostor = latchkey::Lock::new(latchkey::LockConfig::new(
        p.lock_id,
        impostor_key,
        issuer_pub,
    ))
    .unwrap();
    let forged_ev = impostor.signed_event(
        now(),
        EventKind::Unlock,
        None,
        latchkey::GrantId::ZERO,
        latchkey::SessionId::ZERO,
        &mut rng,
    );
    lock.peer.publish(&ev_topic, &forged_ev).await;
    assert_eq!(
        refused(&mut events, "forged event").await,
        Reason::BadEventSignature
    );
    let other = LockId([0x66; 16]);
    lock.peer
        .publish(&topics::lock_events(PREFIX, &other), &forged_ev)
        .await;
    assert_eq!(refused(&mut events, "wrong lock").await, Reason::WrongLock);

    // Each refusal was logged once with its reason and requirement.
    for (subject, reason) in [
        (gid.as_str(), "truncated (LK-FRM-1)"),
        (gid.as_str(), "trailing_bytes (LK-FRM-1)"),
        (gid.as_str(), "bad_seal (LK-ISS-3)"),
        (&stranger.to_string(), "guest_mismatch (LK-ISS-1)"),
        (lid.as_str(), "truncated (LK-FRM-1)"),
        (lid.as_str(), "bad_event_signature (LK-EVT-1)"),
        (&other.to_string(), "wrong_lock (LK-EVT-2)"),
    ] {
        assert!(logged(&["refused", subject, reason]), "{subject} {reason}");
    }
    assert!(logged(&["dropping oversize MQTT payload"]));
    assert!(logged(&["topic names no valid id", "NOT-HEX"]));

    // And the next valid request is served.
    let req = guest.request(p.lock_id);
    guest.send(&req).await;
    let lg = lock.peer.next(10_000).await.expect("a LockGrant");
    lock.lock
        .handle_message(now(), &lg.payload, &mut lock.rng)
        .unwrap();
    let gg = guest.peer.next(10_000).await.expect("a GuestGrant");
    guest.guest.handle_grant(now(), &gg.payload).unwrap();
    let st = issuer.status().await.unwrap();
    assert_eq!(st.counters.requests_accepted, 1);
    assert_eq!(st.counters.events_verified, 0);
    assert_eq!(st.counters.malformed_topics, 1);
    issuer.shutdown().await;
}

#[tokio::test]
async fn a_guest_not_allowed_at_a_lock_and_an_unknown_lock_get_no_grant() {
    init_logs();
    let p = Provisioned::new();
    // A second lock the guest is not allowed at, added while the issuer runs.
    let issuer = start_issuer(&p.state()).await;
    let url = issuer.broker_url().to_owned();
    let other_dir = p.dir.path().join("lock2");
    let other = latchkey_issuer::add_lock(&p.state(), None, &other_dir, &url).unwrap();
    let mut guest = GuestPeer::connect(&p.bundle, &url).await;
    let mut events = issuer.subscribe();
    let req = guest.request(other);
    guest.send(&req).await;
    let r = expect_event(&mut events, "refusal", |e| match e {
        IssuerEvent::RequestRefused { reason, .. } => Some(*reason),
        _ => None,
    })
    .await;
    assert_eq!(r, Reason::NotAuthorized);
    let req = guest.request(LockId([1; 16]));
    guest.send(&req).await;
    let r = expect_event(&mut events, "refusal", |e| match e {
        IssuerEvent::RequestRefused { reason, .. } => Some(*reason),
        _ => None,
    })
    .await;
    assert_eq!(r, Reason::UnknownLock);
    assert!(guest.peer.next(200).await.is_none());

    // A guest enrolled while the issuer runs is served without a restart.
    let (_, bundle) = p.enroll("late");
    let mut late = GuestPeer::connect(&bundle, &url).await;
    let req = late.request(p.lock_id);
    late.send(&req).await;
    let gg = late
        .peer
        .next(10_000)
        .await
        .expect("a grant for the late guest");
    late.guest.handle_grant(now(), &gg.payload).unwrap();
    assert_eq!(issuer.status().await.unwrap().guests.len(), 2);
    issuer.shutdown().await;
}
