//! Lock messages in the running daemon (LK-EVT-3, LK-EVT-4): stale, future and replayed
//! events are refused and audited as refusals, never as the events they claim to be; every
//! accepted status is recorded as the lock's latest; and the replay cache survives a
//! restart (it is rebuilt from the audit trail).

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use latchkey::frame::{EventKind, LockEventView};
use latchkey::{Reason, UnixMillis, topics};
use latchkey_issuer::IssuerEvent;
use latchkey_issuer::store::{AuditFilter, AuditSource, kinds};
use tokio::sync::broadcast;

const WINDOW_S: u64 = 60;

async fn verdict(events: &mut broadcast::Receiver<IssuerEvent>) -> Result<EventKind, Reason> {
    expect_event(
        events,
        "the issuer's verdict on a lock message",
        |e| match e {
            IssuerEvent::LockEvent(ev) => Some(Ok(ev.kind)),
            IssuerEvent::EventRefused { reason, .. } => Some(Err(*reason)),
            _ => None,
        },
    )
    .await
}

fn refused_with(p: &Provisioned, reason: Reason) -> u64 {
    store(&p.state())
        .audit_count(&AuditFilter {
            lock_id: Some(p.lock_id),
            kind: Some(kinds::LOCK_MESSAGE_REFUSED.into()),
            reason: Some(reason.name().into()),
            ..Default::default()
        })
        .unwrap()
}

/// Audit rows recorded as the lock's own (verified) messages.
fn lock_rows(p: &Provisioned) -> Vec<latchkey_issuer::store::AuditEntry> {
    store(&p.state())
        .audit(
            &AuditFilter {
                lock_id: Some(p.lock_id),
                source: Some(AuditSource::Lock),
                ..Default::default()
            },
            100,
            0,
        )
        .unwrap()
}

#[tokio::test]
async fn stale_future_and_replayed_messages_are_refused_and_audited_as_refusals() {
    let p = Provisioned::new();
    let mut r = Running::start_with(&p, |o| o.event_window_s = WINDOW_S).await;
    let (grant, session) = grant(&mut r.lock, &mut r.guest).await;
    let topic = topics::lock_events(PREFIX, &p.lock_id);
    let sign = |r: &mut Running, at: UnixMillis| {
        r.lock
            .lock
            .signed_event(at, EventKind::Unlock, None, grant, session, &mut r.lock.rng)
    };
    let late = sign(&mut r, UnixMillis(now().0 - (WINDOW_S + 30) * 1000));
    let early = sign(&mut r, UnixMillis(now().0 + (WINDOW_S + 30) * 1000));
    let fresh = sign(&mut r, now());
    for (payload, expected) in [
        (&late, Err(Reason::StaleEvent)),
        (&early, Err(Reason::FutureEvent)),
        (&fresh, Ok(EventKind::Unlock)),
        (&fresh, Err(Reason::EventReplay)),
    ] {
        r.lock.peer.publish(&topic, payload).await;
        assert_eq!(verdict(&mut r.events).await, expected);
    }
    let st = r.issuer.status().await.unwrap();
    assert_eq!(st.counters.events_verified, 1);
    assert_eq!(st.counters.events_refused.get("event_replay"), Some(&1));
    r.issuer.shutdown().await;

    for reason in [Reason::StaleEvent, Reason::FutureEvent, Reason::EventReplay] {
        assert_eq!(
            refused_with(&p, reason),
            1,
            "{reason:?} audited as a refusal"
        );
    }
    // Only the fresh one is a lock event in the trail, and the grant counts one unlock.
    let rows = lock_rows(&p);
    assert_eq!(rows.len(), 1, "{rows:?}");
    let id = LockEventView::parse(&fresh).unwrap().fields.event_id;
    assert_eq!(rows[0].entry.message_id, Some(id.to_string()));
    for refused in [&late, &early] {
        let claimed = LockEventView::parse(refused).unwrap().fields.event_id;
        assert!(
            store(&p.state())
                .recent_lock_messages(0)
                .unwrap()
                .iter()
                .all(|m| m.message_id != claimed.0),
            "a refused message never takes an id"
        );
    }
    assert_eq!(store(&p.state()).grant(&grant).unwrap().unwrap().unlocks, 1);
}

#[tokio::test]
async fn a_status_is_recorded_with_its_id_as_the_locks_latest() {
    let p = Provisioned::new();
    let mut r = Running::start(&p).await;
    let status = r.lock.send_status(now()).await;
    let got = expect_event(&mut r.events, "the status", |e| match e {
        IssuerEvent::LockStatus(s) => Some(s.clone()),
        _ => None,
    })
    .await;
    assert_eq!(got.battery_pct, Some(90));
    // The same status again is a replay.
    r.lock
        .peer
        .publish(&topics::lock_events(PREFIX, &p.lock_id), &status)
        .await;
    assert_eq!(verdict(&mut r.events).await, Err(Reason::EventReplay));
    r.issuer.shutdown().await;

    let rows = lock_rows(&p);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].entry.kind, kinds::STATUS);
    assert_eq!(rows[0].entry.message_id, Some(got.status_id.to_string()));
    let l = store(&p.state()).lock(&p.lock_id).unwrap().unwrap();
    assert!(l.last_seen_ms.is_some());
    assert_eq!(l.lock_time_high_water_ms, Some(got.timestamp_ms));
    let last: serde_json::Value = serde_json::from_str(&l.last_status_json.unwrap()).unwrap();
    assert_eq!(last["battery_pct"], 90);
    assert_eq!(last["status_id"], got.status_id.to_string());
}

#[tokio::test]
async fn the_replay_cache_survives_a_restart() {
    let p = Provisioned::new();
    let mut r = Running::start(&p).await;
    let (grant, session) = grant(&mut r.lock, &mut r.guest).await;
    let ev = r.lock.lock.signed_event(
        now(),
        EventKind::Unlock,
        None,
        grant,
        session,
        &mut r.lock.rng,
    );
    let topic = topics::lock_events(PREFIX, &p.lock_id);
    r.lock.peer.publish(&topic, &ev).await;
    assert_eq!(verdict(&mut r.events).await, Ok(EventKind::Unlock));
    let Running { issuer, lock, .. } = r;
    drop(lock);
    issuer.shutdown().await;

    // A new issuer on the same state (and a new embedded broker): the message accepted
    // before the restart is a replay after it.
    let issuer = start_issuer(&p.state()).await;
    let mut events = issuer.subscribe();
    let lock = LockPeer::connect(&p, issuer.broker_url()).await;
    lock.peer.publish(&topic, &ev).await;
    assert_eq!(verdict(&mut events).await, Err(Reason::EventReplay));
    issuer.shutdown().await;
    assert_eq!(refused_with(&p, Reason::EventReplay), 1);
    assert_eq!(store(&p.state()).grant(&grant).unwrap().unwrap().unlocks, 1);
}

#[tokio::test]
async fn every_accepted_event_kind_is_recorded_with_its_grants_guest() {
    let p = Provisioned::new();
    let mut r = Running::start(&p).await;
    let (grant, session) = grant(&mut r.lock, &mut r.guest).await;
    let kinds = [
        (EventKind::Unlock, None),
        (EventKind::Rejection, Some(Reason::BadResponseMac)),
        (EventKind::GrantInstalled, None),
        (EventKind::Lockout, Some(Reason::BadResponseMac)),
        (EventKind::LockoutEnded, None),
        (EventKind::RevocationApplied, None),
    ];
    let topic = topics::lock_events(PREFIX, &p.lock_id);
    let mut alerts = r.issuer.subscribe();
    for (kind, reason) in kinds {
        let ev = r
            .lock
            .lock
            .signed_event(now(), kind, reason, grant, session, &mut r.lock.rng);
        r.lock.peer.publish(&topic, &ev).await;
        assert_eq!(verdict(&mut r.events).await, Ok(kind));
    }
    // A lockout is always worth an alert.
    let alert = expect_event(&mut alerts, "the lockout alert", |e| match e {
        IssuerEvent::Alert(a) => Some(a.clone()),
        _ => None,
    })
    .await;
    assert_eq!(alert.kind, latchkey_issuer::anomaly::AlertKind::Lockout);
    r.issuer.shutdown().await;

    let rows = lock_rows(&p);
    for (kind, reason) in kinds {
        let row = rows
            .iter()
            .find(|r| r.entry.kind == kind.name())
            .unwrap_or_else(|| panic!("no {} row in {rows:?}", kind.name()));
        assert_eq!(row.entry.guest_id, Some(p.guest_id), "{}", kind.name());
        assert_eq!(row.entry.grant_id, Some(grant));
        assert_eq!(row.entry.reason.as_deref(), reason.map(Reason::name));
    }
    let l = store(&p.state()).lock(&p.lock_id).unwrap().unwrap();
    assert!(l.lock_time_high_water_ms.is_some() && l.last_seen_ms.is_some());
}
