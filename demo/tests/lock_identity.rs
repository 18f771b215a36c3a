//! Who sent a lock message, under the shipped Mosquitto deployment (mutual TLS, certificate
//! CN = username = client id, `deploy/mosquitto/acl`; spec §6.9, §11.13): the broker drops a
//! lock's publication on another lock's events topic; a message on its own topic that names
//! another lock is refused `wrong_lock` (LK-EVT-2); a replayed one `event_replay` (LK-EVT-4).
//! Refusals are audited as refusals, never as the events they claim to be.
// Test code: a failed unwrap is a failed test (support/ is shared test code).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use latchkey::frame::EventKind;
use latchkey::{GrantId, Lock, LockConfig, LockId, Reason, SessionId, topics};
use latchkey_demo::{LockSetup, Site};
use latchkey_issuer::IssuerEvent;
use latchkey_issuer::keys::{load_private_key, load_public_key};
use latchkey_issuer::store::{AuditFilter, kinds};
use latchkey_transport::mqtt::{MqttClient, QoS};
use support::mosquitto::Mode;
use support::{Env, WAIT};
use tokio::sync::broadcast;

const P: &str = topics::DEFAULT_PREFIX;

/// The core lock from the files `add-lock` wrote (its private key signs its messages).
fn core_lock(setup: &LockSetup) -> Lock {
    let dir = setup.config_file.parent().unwrap();
    let key = load_private_key(&dir.join("lock.key.pem"), "lock key").unwrap();
    let issuer = load_public_key(&dir.join("issuer.pub.pem"), "issuer key").unwrap();
    Lock::new(LockConfig::new(setup.lock_id, key, issuer)).unwrap()
}

/// An MQTT client with the lock's certificate (its identity at the broker).
async fn as_lock(site: &Site, lock: LockId) -> MqttClient {
    let identity = lock.to_string();
    let (client, _rx) = site
        .mqtt_client(&identity, &format!("latchkey-lock-{identity}"))
        .await
        .unwrap();
    client
}

fn event(lock: &Lock, kind: EventKind) -> Vec<u8> {
    let mut rng = latchkey_guest::os_seeded().unwrap();
    lock.signed_event(
        latchkey_guest::clock::system_now(),
        kind,
        None,
        GrantId([7; 16]),
        SessionId([7; 8]),
        &mut rng,
    )
}

/// Every issuer event until (and including) the first one `done` accepts.
async fn until(
    events: &mut broadcast::Receiver<IssuerEvent>,
    done: impl Fn(&IssuerEvent) -> bool,
) -> Vec<IssuerEvent> {
    let mut seen = Vec::new();
    let finished = tokio::time::timeout(WAIT, async {
        loop {
            let e = events.recv().await.unwrap();
            let last = done(&e);
            seen.push(e);
            if last {
                return;
            }
        }
    })
    .await;
    assert!(finished.is_ok(), "timed out; seen {seen:?}");
    seen
}

fn audit_count(site: &Site, filter: &AuditFilter) -> u64 {
    site.registry().unwrap().audit_count(filter).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_publishing_on_another_locks_events_topic_is_dropped_by_the_broker() {
    let Some(mut env) = Env::mosquitto(
        Mode::MutualTls,
        "a_lock_publishing_on_another_locks_events_topic_is_dropped_by_the_broker",
    )
    .await
    else {
        return;
    };
    let site = &mut env.site;
    let (a, b) = (site.add_lock().unwrap(), site.add_lock().unwrap());
    let lock_a = core_lock(&a);
    let client = as_lock(site, a.lock_id).await;
    let mut events = site.issuer().unwrap().subscribe();

    // Forbidden: A's signed events on B's topic (a genuine one, and one of kind 4 that
    // would confirm a revocation at B).
    for kind in [EventKind::Unlock, EventKind::RevocationApplied] {
        client
            .publish(
                &topics::lock_events(P, &b.lock_id),
                event(&lock_a, kind),
                QoS::AtLeastOnce,
                false,
            )
            .await
            .unwrap();
    }
    // Control: a valid event on A's own topic, sent after them on the same connection.
    client
        .publish(
            &topics::lock_events(P, &a.lock_id),
            event(&lock_a, EventKind::GrantInstalled),
            QoS::AtLeastOnce,
            false,
        )
        .await
        .unwrap();
    let seen = until(
        &mut events,
        |e| matches!(e, IssuerEvent::LockEvent(ev) if ev.lock_id == a.lock_id),
    )
    .await;
    let b_id = b.lock_id;
    assert!(
        !seen.iter().any(|e| matches!(e,
            IssuerEvent::EventRefused { lock_id, .. } if *lock_id == b_id)
            || matches!(e, IssuerEvent::LockEvent(ev) if ev.lock_id == b_id)),
        "a message on B's topic reached the issuer: {seen:?}"
    );
    // Nothing recorded for B: no event, no refusal.
    let at_b = AuditFilter {
        lock_id: Some(b_id),
        ..Default::default()
    };
    let admin_rows = audit_count(
        site,
        &AuditFilter {
            source: Some(latchkey_issuer::store::AuditSource::Admin),
            ..at_b.clone()
        },
    );
    assert_eq!(
        audit_count(site, &at_b),
        admin_rows,
        "only B's registration"
    );
    client.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_its_own_topic_a_message_naming_another_lock_or_replayed_is_refused() {
    let Some(mut env) = Env::mosquitto(
        Mode::MutualTls,
        "on_its_own_topic_a_message_naming_another_lock_or_replayed_is_refused",
    )
    .await
    else {
        return;
    };
    let site = &mut env.site;
    let (a, b) = (site.add_lock().unwrap(), site.add_lock().unwrap());
    let (lock_a, lock_b) = (core_lock(&a), core_lock(&b));
    let client = as_lock(site, a.lock_id).await;
    let mut events = site.issuer().unwrap().subscribe();
    let own = topics::lock_events(P, &a.lock_id);

    // B's genuine, signed event, re-published by A on A's topic: the frame names B, the
    // TLS identity bound to the topic is A's.
    client
        .publish(
            &own,
            event(&lock_b, EventKind::Unlock),
            QoS::AtLeastOnce,
            false,
        )
        .await
        .unwrap();
    let seen = until(&mut events, |e| {
        matches!(e, IssuerEvent::EventRefused { .. })
    })
    .await;
    assert!(
        matches!(seen.last(), Some(IssuerEvent::EventRefused { lock_id, reason: Reason::WrongLock }) if *lock_id == a.lock_id),
        "{seen:?}"
    );

    // A's own event, twice: recorded once, the copy refused as a replay.
    let ev = event(&lock_a, EventKind::Unlock);
    for _ in 0..2 {
        client
            .publish(&own, ev.clone(), QoS::AtLeastOnce, false)
            .await
            .unwrap();
    }
    let seen = until(&mut events, |e| {
        matches!(e, IssuerEvent::EventRefused { .. })
    })
    .await;
    assert!(
        seen.iter()
            .any(|e| matches!(e, IssuerEvent::LockEvent(ev) if ev.lock_id == a.lock_id)),
        "{seen:?}"
    );
    assert!(
        matches!(
            seen.last(),
            Some(IssuerEvent::EventRefused {
                reason: Reason::EventReplay,
                ..
            })
        ),
        "{seen:?}"
    );
    client.shutdown().await;

    let refused = |reason: Reason| AuditFilter {
        lock_id: Some(a.lock_id),
        kind: Some(kinds::LOCK_MESSAGE_REFUSED.into()),
        reason: Some(reason.name().into()),
        ..Default::default()
    };
    assert_eq!(audit_count(site, &refused(Reason::WrongLock)), 1);
    assert_eq!(audit_count(site, &refused(Reason::EventReplay)), 1);
    let unlocks = |lock: LockId| AuditFilter {
        lock_id: Some(lock),
        kind: Some(kinds::UNLOCK.into()),
        ..Default::default()
    };
    assert_eq!(audit_count(site, &unlocks(a.lock_id)), 1, "recorded once");
    assert_eq!(
        audit_count(site, &unlocks(b.lock_id)),
        0,
        "never as B's event"
    );
}
