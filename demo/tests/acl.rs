//! The shipped broker ACL (`deploy/mosquitto/acl` under `deploy/mosquitto/mosquitto.conf`:
//! mutual TLS, certificate CN = username = client id) as a guest sees it (spec LK-DEP-1).
//!
//! Each test uses a control message that must arrive through the same broker path after
//! the forbidden one would have, so "nothing arrived" is not just "not yet". The lock's
//! side of the ACL is in `lock_identity.rs`.
// Test code: a failed unwrap is a failed test (support/ is shared test code).
#![allow(clippy::unwrap_used)]

mod support;

use latchkey::{Guest, GuestConfig, LockId, topics};
use latchkey_guest::EnrollmentBundle;
use latchkey_issuer::IssuerEvent;
use latchkey_transport::mqtt::{MqttClient, QoS};
use support::mosquitto::Mode;
use support::{Env, wait_event, wait_stats};

const P: &str = topics::DEFAULT_PREFIX;

fn core_guest(bundle: &EnrollmentBundle) -> Guest {
    Guest::new(GuestConfig::new(
        bundle.guest_id(),
        bundle.enrollment_key().clone(),
    ))
    .unwrap()
}

/// Publishes a fresh, sealed request of the bundle's guest for `lock` on its own topic;
/// returns the core guest that made it (to open the answer).
async fn send_request(client: &MqttClient, bundle: &EnrollmentBundle, lock: LockId) -> Guest {
    let mut core = core_guest(bundle);
    let mut rng = latchkey_guest::os_seeded().unwrap();
    let frame = core.request_grant(latchkey_guest::clock::system_now(), lock, 60, &mut rng);
    client
        .publish(
            &topics::requests(P, &bundle.guest_id()),
            frame.to_vec(),
            QoS::AtLeastOnce,
            false,
        )
        .await
        .unwrap();
    core
}

/// A guest subscribed to `latchkey/v1/locks/#` (and everything else) receives its own
/// GuestGrant, but not the LockGrant published to the lock for the same request, nor the
/// lock's events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guest_cannot_read_lock_topics() {
    let Some(mut env) = Env::mosquitto(Mode::MutualTls, "guest_cannot_read_lock_topics").await
    else {
        return;
    };
    let site = &mut env.site;
    let lock = site.add_lock().unwrap();
    let lockd = site.start_lock(&lock).await.unwrap();
    let spy = site.enroll_guest(&[lock.lock_id]).unwrap();
    let bundle = EnrollmentBundle::load(&spy.bundle_file).unwrap();
    let identity = spy.guest_id.to_string();
    let (client, mut rx) = site
        .mqtt_client(&identity, &format!("latchkey-guest-{identity}"))
        .await
        .unwrap();
    for filter in [
        format!("{P}/locks/#"),
        format!("{P}/locks/{}/grants", lock.lock_id),
        format!("{P}/#"),
        "#".to_owned(),
        topics::guest_grants(P, &spy.guest_id),
    ] {
        client.subscribe(&filter, QoS::AtLeastOnce).await.unwrap();
    }

    // A real, sealed request from the spy: the issuer publishes a LockGrant to the lock
    // and then (same connection, so in order) the GuestGrant to the spy.
    let mut events = site.issuer().unwrap().subscribe();
    let before = lockd.stats().grants_installed;
    let mut core = send_request(&client, &bundle, lock.lock_id).await;

    let first = tokio::time::timeout(support::WAIT, rx.recv())
        .await
        .expect("the spy's own GuestGrant arrives")
        .unwrap();
    assert_eq!(first.topic, topics::guest_grants(P, &spy.guest_id));
    let info = core
        .handle_grant(latchkey_guest::clock::system_now(), &first.payload)
        .expect("a GuestGrant sealed for the spy");
    // The lock did get its LockGrant, and the issuer its "grant installed" event.
    wait_stats(&lockd, "the spy's grant installed", |s| {
        s.grants_installed > before
    })
    .await;
    wait_event(&mut events, "the lock's grant-installed event", |e| {
        matches!(e, IssuerEvent::LockEvent(ev)
            if ev.grant_id == info.grant_id
                && ev.kind == latchkey::frame::EventKind::GrantInstalled)
    })
    .await;
    assert!(
        rx.try_recv().is_err(),
        "the guest received a message outside its own grants topic"
    );
    client.shutdown().await;
    lockd.shutdown().await.unwrap();
}

/// A guest publishing on another guest's requests topic reaches nobody: the issuer sees
/// nothing on the victim's topic, while the same client's next message on its own topic
/// arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guest_cannot_publish_as_another_guest() {
    let Some(mut env) =
        Env::mosquitto(Mode::MutualTls, "guest_cannot_publish_as_another_guest").await
    else {
        return;
    };
    let site = &mut env.site;
    let lock = site.add_lock().unwrap();
    let victim = site.enroll_guest(&[lock.lock_id]).unwrap();
    let mallory = site.enroll_guest(&[lock.lock_id]).unwrap();
    let bundle = EnrollmentBundle::load(&mallory.bundle_file).unwrap();
    let identity = mallory.guest_id.to_string();
    let (client, _rx) = site
        .mqtt_client(&identity, &format!("latchkey-guest-{identity}"))
        .await
        .unwrap();
    let mut events = site.issuer().unwrap().subscribe();
    let mut core = core_guest(&bundle);
    let mut rng = latchkey_guest::os_seeded().unwrap();
    let now = latchkey_guest::clock::system_now();

    // Forbidden: a valid request of Mallory's on the victim's topic, and junk there.
    let forged = core.request_grant(now, lock.lock_id, 60, &mut rng);
    for payload in [forged.to_vec(), b"junk".to_vec()] {
        client
            .publish(
                &topics::requests(P, &victim.guest_id),
                payload,
                QoS::AtLeastOnce,
                false,
            )
            .await
            .unwrap();
    }
    // Control: junk on Mallory's own topic, which she may write.
    client
        .publish(
            &topics::requests(P, &mallory.guest_id),
            &b"control"[..],
            QoS::AtLeastOnce,
            false,
        )
        .await
        .unwrap();

    let mut seen = Vec::new();
    let mallory_id = mallory.guest_id;
    let control = tokio::time::timeout(support::WAIT, async {
        loop {
            let e = events.recv().await.unwrap();
            let done = matches!(&e, IssuerEvent::RequestRefused { guest_id, .. } if *guest_id == mallory_id);
            seen.push(e);
            if done {
                return;
            }
        }
    })
    .await;
    assert!(control.is_ok(), "the control message reached the issuer");
    let victim_id = victim.guest_id;
    assert!(
        !seen.iter().any(|e| matches!(e,
            IssuerEvent::RequestRefused { guest_id, .. } if *guest_id == victim_id)
            || matches!(e, IssuerEvent::GrantIssued(g) if g.guest_id == victim_id)),
        "a message on the victim's topic reached the issuer: {seen:?}"
    );
    let status = site.issuer().unwrap().status().await.unwrap();
    assert_eq!(status.counters.requests_accepted, 0);
    client.shutdown().await;
}

/// The issuer's anomaly alerts (`latchkey/v1/alerts`, JSON) reach the read-only `monitor`
/// identity, never a guest or a lock subscribed to them (and to everything else). The
/// control: a grant published after the alert, which the guest and the lock do receive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_are_readable_by_the_monitor_identity_only() {
    let Some(mut env) = Env::mosquitto(
        Mode::MutualTls,
        "alerts_are_readable_by_the_monitor_identity_only",
    )
    .await
    else {
        return;
    };
    let site = &mut env.site;
    let lock = site.add_lock().unwrap();
    let spy = site.enroll_guest(&[lock.lock_id]).unwrap();
    let bundle = EnrollmentBundle::load(&spy.bundle_file).unwrap();
    let alerts = latchkey_issuer::alerts_topic(P);

    let (monitor, mut monitor_rx) = site.mqtt_client("monitor", "monitor").await.unwrap();
    monitor.subscribe(&alerts, QoS::AtLeastOnce).await.unwrap();
    let guest_identity = spy.guest_id.to_string();
    let (guest, mut guest_rx) = site
        .mqtt_client(&guest_identity, &format!("latchkey-guest-{guest_identity}"))
        .await
        .unwrap();
    let lock_identity = lock.lock_id.to_string();
    let (lockc, mut lock_rx) = site
        .mqtt_client(&lock_identity, &format!("latchkey-lock-{lock_identity}"))
        .await
        .unwrap();
    for (client, own) in [
        (&guest, topics::guest_grants(P, &spy.guest_id)),
        (&lockc, topics::lock_grants(P, &lock.lock_id)),
    ] {
        for filter in [alerts.clone(), format!("{P}/#"), own] {
            client.subscribe(&filter, QoS::AtLeastOnce).await.unwrap();
        }
    }
    // The subscriptions are in place once a message through them comes back: the monitor
    // cannot publish, so wait for the spy's own grant below instead, after the alert.
    let mut events = site.issuer().unwrap().subscribe();

    // Eight requests of the spy that fail to parse: a burst of one guest's failures.
    for _ in 0..8 {
        guest
            .publish(
                &topics::requests(P, &spy.guest_id),
                &b"junk"[..],
                QoS::AtLeastOnce,
                false,
            )
            .await
            .unwrap();
    }
    let alert = match wait_event(&mut events, "the failure-burst alert", |e| {
        matches!(e, IssuerEvent::Alert(_))
    })
    .await
    {
        IssuerEvent::Alert(a) => a,
        other => panic!("{other:?}"),
    };
    let got = tokio::time::timeout(support::WAIT, monitor_rx.recv())
        .await
        .expect("the monitor receives the alert")
        .unwrap();
    assert_eq!(got.topic, alerts);
    let json: serde_json::Value = serde_json::from_slice(&got.payload).unwrap();
    assert_eq!(json["alert_id"], alert.alert_id.as_str());
    assert_eq!(json["guest_id"], spy.guest_id.to_string());

    // Control: a valid request after the alert; the issuer publishes the LockGrant and the
    // GuestGrant after it on the same connection, so anything the broker let through to
    // the guest or the lock would have arrived first.
    send_request(&guest, &bundle, lock.lock_id).await;
    for (who, rx, own) in [
        (
            "guest",
            &mut guest_rx,
            topics::guest_grants(P, &spy.guest_id),
        ),
        ("lock", &mut lock_rx, topics::lock_grants(P, &lock.lock_id)),
    ] {
        let first = tokio::time::timeout(support::WAIT, rx.recv())
            .await
            .unwrap_or_else(|_| panic!("the {who} receives its grant"))
            .unwrap();
        assert_eq!(first.topic, own, "the {who} received {} first", first.topic);
        assert!(rx.try_recv().is_err(), "nothing else for the {who}");
    }
    for c in [monitor, guest, lockc] {
        c.shutdown().await;
    }
}
