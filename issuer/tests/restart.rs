//! An issuer restarted on the same state directory: keys, registry and live grants
//! survive, and nothing captured before the restart can be replayed after it (LK-ISS-5).

// Test code, helpers included: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use latchkey::Reason;
use latchkey::lock::{GrantOutcome, MessageOutcome, RevocationOutcome};
use latchkey_issuer::{BrokerChoice, IssuerEvent, Issuerd};
use latchkey_transport::broker::EmbeddedBroker;
use latchkey_transport::mqtt::{MqttConfig, MqttUrl};

use common::*;

#[tokio::test]
async fn restart_keeps_keys_registry_and_grants_and_refuses_earlier_requests() {
    init_logs();
    let p = Provisioned::new();
    // The broker outlives the issuer, as an external one would.
    let broker =
        tokio::task::spawn_blocking(|| EmbeddedBroker::start("127.0.0.1:0".parse().unwrap()))
            .await
            .unwrap()
            .unwrap();
    let url = broker.url();
    let external = || {
        let mut o = options(&p.state());
        o.broker = BrokerChoice::External(MqttConfig::new(
            MqttUrl::parse(&url).unwrap(),
            "latchkey-issuer",
        ));
        o
    };
    let issuer_pub = std::fs::read(p.state().join("issuer.pub.pem")).unwrap();

    let first = Issuerd::start(external()).await.unwrap();
    first
        .wait_subscribed(Duration::from_secs(10))
        .await
        .unwrap();
    let mut lock = LockPeer::connect(&p, &url).await;
    let mut guest = GuestPeer::connect(&p.bundle, &url).await;
    let captured = guest.request(p.lock_id);
    guest.send(&captured).await;
    let lg = lock.peer.next(10_000).await.expect("a LockGrant");
    let MessageOutcome::Grant(GrantOutcome::Installed {
        grant_id,
        session_id,
        ..
    }) = lock
        .lock
        .handle_message(now(), &lg.payload, &mut lock.rng)
        .unwrap()
    else {
        panic!("not installed");
    };
    assert!(guest.peer.next(10_000).await.is_some());
    first.shutdown().await;

    // LK-ISS-5 refuses requests timestamped before the restart second: let it tick over.
    next_second().await;

    let second = Issuerd::start(external()).await.unwrap();
    second
        .wait_subscribed(Duration::from_secs(10))
        .await
        .unwrap();
    let mut events = second.subscribe();
    let st = second.status().await.unwrap();
    assert_eq!(st.locks, vec![p.lock_id], "registry survived");
    assert_eq!(st.guests.len(), 1);
    assert_eq!(st.live_grants.len(), 1, "live grant restored");
    assert_eq!(st.live_grants[0].grant_id, grant_id);
    assert_eq!(
        std::fs::read(p.state().join("issuer.pub.pem")).unwrap(),
        issuer_pub,
        "same issuer key"
    );

    // The request captured before the restart is refused.
    guest.send(&captured).await;
    let reason = expect_event(
        &mut events,
        "refusal of the captured request",
        |e| match e {
            IssuerEvent::RequestRefused { reason, .. } => Some(*reason),
            _ => None,
        },
    )
    .await;
    assert_eq!(reason, Reason::StaleRequest);
    assert!(lock.peer.next(300).await.is_none());
    assert!(logged(&[
        "grant request refused",
        &p.guest_id.to_string(),
        "stale_request (LK-ISS-4)"
    ]));

    // The grant issued before the restart is revoked after it, with a Revocation signed by
    // the same key (the lock still verifies with the issuer.pub.pem it was given).
    second.revoke_grant(grant_id).await.unwrap();
    let rev = lock.peer.next(10_000).await.expect("a Revocation");
    assert_eq!(
        lock.lock
            .handle_message(now(), &rev.payload, &mut lock.rng)
            .unwrap(),
        MessageOutcome::Revocation(RevocationOutcome {
            grant_id,
            session_removed: true
        })
    );
    assert!(!lock.lock.has_session(&session_id));

    // A fresh request is served as usual.
    let fresh = guest.request(p.lock_id);
    guest.send(&fresh).await;
    assert!(lock.peer.next(10_000).await.is_some());
    second.shutdown().await;

    // A third start sees the revocation still pending (unconfirmed) and the new grant.
    let third = Issuerd::start(external()).await.unwrap();
    let st = third.status().await.unwrap();
    assert_eq!(st.pending_revocations.len(), 1);
    assert_eq!(st.pending_revocations[0].grant_id, grant_id);
    assert_eq!(st.live_grants.len(), 1);
    assert_ne!(st.live_grants[0].grant_id, grant_id);
    // ...and publishes the pending revocation again at once.
    let again = lock
        .peer
        .next(10_000)
        .await
        .expect("the Revocation re-published");
    assert_eq!(again.payload, rev.payload);
    third.shutdown().await;
    tokio::task::spawn_blocking(move || broker.stop())
        .await
        .unwrap();
}
