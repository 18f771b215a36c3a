//! Anomaly alerts in the running daemon: the engine is fed the audit records it writes; a
//! new alert is stored, published on `{p}/alerts` (JSON of docs/alerts.schema.json) and
//! emitted. Two triggers: a burst of refused requests of one guest, and a lock's rejection
//! of a revoked session's beacon (`session_revoked`).

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use latchkey::frame::EventKind;
use latchkey::{Reason, topics};
use latchkey_issuer::IssuerEvent;
use latchkey_issuer::anomaly::AlertKind;
use latchkey_issuer::store::AlertFilter;

/// The schema every published alert must satisfy.
fn schema() -> jsonschema::Validator {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/alerts.schema.json");
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    jsonschema::validator_for(&schema).unwrap()
}

/// The next alert published on `{p}/alerts`, as JSON, checked against the schema.
async fn published(monitor: &mut Peer) -> serde_json::Value {
    let m = monitor.next(10_000).await.expect("an alert on {p}/alerts");
    assert_eq!(m.topic, latchkey_issuer::alerts_topic(PREFIX));
    let v: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
    let errors: Vec<String> = schema().iter_errors(&v).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{v}: {errors:?}");
    v
}

#[tokio::test]
async fn a_burst_of_refused_requests_raises_a_stored_and_published_alert() {
    let p = Provisioned::new();
    let r = Running::start(&p).await;
    let mut events = r.issuer.subscribe();
    let mut monitor = Peer::connect(
        &r.url,
        "test-monitor",
        Some(&latchkey_issuer::alerts_topic(PREFIX)),
    )
    .await;
    // Someone with the guest's id but not its key: every request fails to open.
    let mut forger = GuestPeer::with_key(
        p.guest_id,
        latchkey::crypto::EnrollmentKey::from_bytes([9; 32]),
        &r.url,
    )
    .await;
    for _ in 0..8 {
        let bad = forger.request(p.lock_id);
        forger.send(&bad).await;
    }
    let alert = expect_event(&mut events, "a failure-burst alert", |e| match e {
        IssuerEvent::Alert(a) => Some(a.clone()),
        _ => None,
    })
    .await;
    assert_eq!(alert.kind, AlertKind::FailureBurst);
    assert_eq!(alert.guest_id, Some(p.guest_id));
    let json = published(&mut monitor).await;
    assert_eq!(json["alert_id"], alert.alert_id.as_str());
    assert_eq!(json["kind"], "failure_burst");
    assert_eq!(json["detail"]["scope"], "guest");
    assert_eq!(json["detail"]["reasons"]["bad_seal"], 8);
    assert_eq!(r.issuer.status().await.unwrap().counters.alerts_raised, 1);
    r.issuer.shutdown().await;

    let stored = store(&p.state())
        .alerts(&AlertFilter::default(), 10, 0)
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].alert_id, alert.alert_id);
    assert_eq!(stored[0].kind, "failure_burst");
    assert_eq!(stored[0].severity, "warning");
    assert_eq!(stored[0].guest_id, Some(p.guest_id));
}

#[tokio::test]
async fn a_revoked_sessions_beacon_rejected_by_the_lock_raises_a_critical_alert() {
    let p = Provisioned::new();
    let mut r = Running::start(&p).await;
    let mut monitor = Peer::connect(
        &r.url,
        "test-monitor",
        Some(&latchkey_issuer::alerts_topic(PREFIX)),
    )
    .await;
    let (grant, session) = grant(&mut r.lock, &mut r.guest).await;
    r.issuer.revoke_grant(grant).await.unwrap();
    // The lock refuses the revoked session's beacon and reports it (kind 2).
    let ev = r.lock.lock.signed_event(
        now(),
        EventKind::Rejection,
        Some(Reason::SessionRevoked),
        grant,
        session,
        &mut r.lock.rng,
    );
    r.lock
        .peer
        .publish(&topics::lock_events(PREFIX, &p.lock_id), &ev)
        .await;
    let alert = expect_event(&mut r.events, "a revoked-guest alert", |e| match e {
        IssuerEvent::Alert(a) => Some(a.clone()),
        _ => None,
    })
    .await;
    assert_eq!(alert.kind, AlertKind::RevokedGuest);
    // The event names only the grant: the daemon filled in its guest.
    assert_eq!(alert.guest_id, Some(p.guest_id));
    assert_eq!(alert.lock_id, Some(p.lock_id));
    let json = published(&mut monitor).await;
    assert_eq!(json["severity"], "critical");
    assert_eq!(json["detail"]["source"], "lock");
    assert_eq!(json["detail"]["reason"], "session_revoked");
    r.issuer.shutdown().await;
    let stored = store(&p.state())
        .alerts(&AlertFilter::default(), 10, 0)
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].kind, "revoked_guest");
    assert_eq!(stored[0].detail["grant_id"], grant.to_string());
}

/// Sends `n` requests that fail to open (`bad_seal`) and waits for their refusals.
async fn bad_requests(p: &Provisioned, issuer: &latchkey_issuer::IssuerdHandle, n: usize) {
    let mut events = issuer.subscribe();
    let mut forger = GuestPeer::with_key(
        p.guest_id,
        latchkey::crypto::EnrollmentKey::from_bytes([9; 32]),
        issuer.broker_url(),
    )
    .await;
    for _ in 0..n {
        let bad = forger.request(p.lock_id);
        forger.send(&bad).await;
        let refused = expect_event(&mut events, "a refusal", |e| match e {
            IssuerEvent::RequestRefused { reason, .. } => Some(*reason),
            _ => None,
        })
        .await;
        assert_eq!(refused, Reason::BadSeal);
    }
}

#[tokio::test]
async fn the_warm_up_replays_the_trail_and_discards_its_alerts() {
    init_logs();
    let p = Provisioned::new();
    // Seven failures: one short of a guest's burst.
    let issuer = start_issuer(&p.state()).await;
    bad_requests(&p, &issuer, 7).await;
    assert_eq!(issuer.status().await.unwrap().counters.alerts_raised, 0);
    issuer.shutdown().await;

    // After a restart the engine remembers them: the eighth makes the burst.
    let issuer = start_issuer(&p.state()).await;
    let mut events = issuer.subscribe();
    bad_requests(&p, &issuer, 1).await;
    let alert = expect_event(&mut events, "the burst's alert", |e| match e {
        IssuerEvent::Alert(a) => Some(a.clone()),
        _ => None,
    })
    .await;
    assert_eq!(alert.detail["failures_in_window"], 8);
    issuer.shutdown().await;

    // Restarted again, the replay raises that alert once more and drops it: nothing is
    // raised, stored or published anew.
    let issuer = start_issuer(&p.state()).await;
    let mut monitor = Peer::connect(
        issuer.broker_url(),
        "test-monitor",
        Some(&latchkey_issuer::alerts_topic(PREFIX)),
    )
    .await;
    assert!(monitor.next(500).await.is_none());
    assert_eq!(issuer.status().await.unwrap().counters.alerts_raised, 0);
    issuer.shutdown().await;
    let stored = store(&p.state())
        .alerts(&AlertFilter::default(), 10, 0)
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert!(logged(&["anomaly engine warmed up", "alerts_discarded=1"]));
}
