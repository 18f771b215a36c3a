//! The access policy and rate limits in the running daemon (LK-ISS-11, LK-ISS-12): rules
//! written to the registry while it runs, decided by `policy::authorize` in the lock's time
//! zone, grants capped and limited as the LockGrant shows, refusals audited with their
//! reason, and the unlock accounting settled by the lock's own heartbeat.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use latchkey::Reason;
use latchkey::frame::{EventKind, LockGrantView};
use latchkey::lock::{GrantOutcome, MessageOutcome};
use latchkey_issuer::IssuerEvent;
use latchkey_issuer::policy::{Role, WeeklySchedule, time_zone};
use latchkey_issuer::status::GrantSummary;
use latchkey_issuer::store::{AccessChange, AuditFilter, LockUpdate, kinds};
use tokio::sync::broadcast;

/// The issuer's answer to the next request of the running test's guest.
async fn answer(events: &mut broadcast::Receiver<IssuerEvent>) -> Result<GrantSummary, Reason> {
    expect_event(events, "the issuer's answer", |e| match e {
        IssuerEvent::GrantIssued(g) => Some(Ok(*g)),
        IssuerEvent::RequestRefused { reason, .. } => Some(Err(*reason)),
        _ => None,
    })
    .await
}

/// Sends `payload` as the guest's request and returns the issuer's answer.
async fn ask(r: &mut Running, payload: &[u8]) -> Result<GrantSummary, Reason> {
    r.guest.send(payload).await;
    answer(&mut r.events).await
}

/// The LockGrant the lock received for the last grant.
async fn lock_grant(r: &mut Running) -> Vec<u8> {
    r.lock
        .peer
        .next(10_000)
        .await
        .expect("a LockGrant for the lock")
        .payload
        .to_vec()
}

fn set_access(p: &Provisioned, change: AccessChange) {
    store(&p.state())
        .set_access(&p.guest_id, &[p.lock_id], &change, now().0, "test")
        .unwrap();
}

fn refusals_with(p: &Provisioned, reason: Reason) -> u64 {
    store(&p.state())
        .audit_count(&AuditFilter {
            guest_id: Some(p.guest_id),
            kind: Some(kinds::REQUEST_REFUSED.into()),
            reason: Some(reason.name().into()),
            ..Default::default()
        })
        .unwrap()
}

#[tokio::test]
async fn rate_limited_after_the_burst_and_granted_again_after_the_refill() {
    let p = Provisioned::new();
    // Two at once, then one every two seconds.
    let mut r = Running::start_with(&p, |o| {
        o.rate_guest_burst = 2;
        o.rate_guest_per_hour = 1_800;
    })
    .await;
    let lock = p.lock_id;
    let reqs: Vec<Vec<u8>> = (0..3).map(|_| r.guest.request(lock)).collect();
    assert!(ask(&mut r, &reqs[0]).await.is_ok());
    assert!(ask(&mut r, &reqs[1]).await.is_ok());
    assert_eq!(ask(&mut r, &reqs[2]).await, Err(Reason::RateLimited));
    // A refused request takes nothing: after the refill the next one is granted.
    tokio::time::sleep(Duration::from_millis(2_200)).await;
    let again = r.guest.request(lock);
    assert!(ask(&mut r, &again).await.is_ok());
    assert_eq!(refusals_with(&p, Reason::RateLimited), 1);
    let st = r.issuer.status().await.unwrap();
    assert_eq!(st.counters.requests_refused.get("rate_limited"), Some(&1));
    r.issuer.shutdown().await;
}

/// The local wall clock at the lock `minutes` from now, floored to the minute, as
/// `(weekday, "HH:MM")`, and that instant in Unix seconds. (Zone offsets are whole minutes,
/// so flooring in UTC floors the local time too.)
fn local(zone: &jiff::tz::TimeZone, minutes: i64) -> (String, String, u64) {
    let s = (i64::try_from(now().secs()).unwrap() + minutes * 60) / 60 * 60;
    let at = jiff::Timestamp::from_second(s)
        .unwrap()
        .to_zoned(zone.clone());
    (
        at.strftime("%a").to_string(),
        at.strftime("%H:%M").to_string(),
        u64::try_from(s).unwrap(),
    )
}

#[tokio::test]
async fn schedules_in_the_locks_zone_and_access_windows_refuse_and_cap() {
    let p = Provisioned::new();
    let zone_name = "America/New_York";
    store(&p.state())
        .update_lock(
            &p.lock_id,
            &LockUpdate {
                timezone: Some(zone_name.into()),
                ..Default::default()
            },
            now().0,
            "test",
        )
        .unwrap();
    let zone = time_zone(zone_name).unwrap();
    let mut r = Running::start(&p).await;
    let lock = p.lock_id;

    // A slot from an hour ago to five minutes from now, on today's weekday at the lock
    // (a slot may cross midnight: it belongs to the day it starts).
    let (day, start, _) = local(&zone, -60);
    let (_, end, end_s) = local(&zone, 5);
    let inside = WeeklySchedule::parse(&format!("{day} {start}-{end}")).unwrap();
    set_access(
        &p,
        AccessChange {
            schedule: Some(Some(inside)),
            ..Default::default()
        },
    );
    let req = r.guest.request(lock);
    let g = ask(&mut r, &req).await.expect("granted inside the slot");
    assert_eq!(
        g.not_after, end_s,
        "the grant ends with the slot, not after 600 s"
    );
    let lg = lock_grant(&mut r).await;
    assert_eq!(LockGrantView::parse(&lg).unwrap().header.not_after, end_s);

    // A slot two hours from now: outside.
    let (day, start, _) = local(&zone, 120);
    let (_, end, _) = local(&zone, 180);
    let later = WeeklySchedule::parse(&format!("{day} {start}-{end}")).unwrap();
    set_access(
        &p,
        AccessChange {
            schedule: Some(Some(later)),
            ..Default::default()
        },
    );
    let req = r.guest.request(lock);
    assert_eq!(ask(&mut r, &req).await, Err(Reason::OutsideSchedule));

    // No schedule, but access only from an hour from now.
    let in_an_hour = now().secs() + 3_600;
    set_access(
        &p,
        AccessChange {
            schedule: Some(None),
            valid_from: Some(Some(in_an_hour)),
            ..Default::default()
        },
    );
    let req = r.guest.request(lock);
    assert_eq!(ask(&mut r, &req).await, Err(Reason::OutsideAccessWindow));

    // A guest whose access ends in 100 s gets a grant ending then.
    let until = now().secs() + 100;
    set_access(
        &p,
        AccessChange {
            role: Some(Role::Guest),
            valid_from: Some(None),
            valid_until: Some(Some(until)),
            ..Default::default()
        },
    );
    let req = r.guest.request(lock);
    assert_eq!(ask(&mut r, &req).await.unwrap().not_after, until);

    r.issuer.shutdown().await;
    assert_eq!(refusals_with(&p, Reason::OutsideSchedule), 1);
    assert_eq!(refusals_with(&p, Reason::OutsideAccessWindow), 1);
}

#[tokio::test]
async fn an_unlock_limit_is_carried_by_the_lock_grant_and_settled_by_the_locks_heartbeat() {
    let p = Provisioned::new();
    set_access(
        &p,
        AccessChange {
            max_unlocks: Some(Some(1)),
            ..Default::default()
        },
    );
    let mut r = Running::start(&p).await;
    let lock = p.lock_id;

    // A two-second grant carrying the whole allowance.
    let req = r.guest.request_for(lock, 2);
    let first = ask(&mut r, &req).await.expect("the first grant");
    let lg = lock_grant(&mut r).await;
    assert_eq!(LockGrantView::parse(&lg).unwrap().header.max_unlocks, 1);
    let out = r
        .lock
        .lock
        .handle_message(now(), &lg, &mut r.lock.rng)
        .unwrap();
    assert!(matches!(
        out,
        MessageOutcome::Grant(GrantOutcome::Installed { .. })
    ));
    assert_eq!(
        store(&p.state())
            .grant(&first.grant_id)
            .unwrap()
            .unwrap()
            .max_unlocks,
        1,
        "recorded with its max_unlocks"
    );

    // While the grant may still unlock, its allocation is outstanding.
    let req = r.guest.request(lock);
    assert_eq!(ask(&mut r, &req).await, Err(Reason::UnlockLimitReached));
    // Its end passes; without word from the lock the allocation stays reserved.
    tokio::time::sleep(Duration::from_millis(2_300)).await;
    assert!(now().secs() >= first.not_after);
    let req = r.guest.request(lock);
    assert_eq!(ask(&mut r, &req).await, Err(Reason::UnlockLimitReached));

    // The lock's heartbeat, stamped after the grant's end, settles it: unused, it frees
    // the allowance.
    r.lock.send_status(now()).await;
    expect_event(&mut r.events, "the lock's status", |e| {
        matches!(e, IssuerEvent::LockStatus(s) if s.lock_id == lock).then_some(())
    })
    .await;
    let req = r.guest.request_for(lock, 2);
    let second = ask(&mut r, &req)
        .await
        .expect("granted after the heartbeat");
    let lg = lock_grant(&mut r).await;
    assert_eq!(LockGrantView::parse(&lg).unwrap().header.max_unlocks, 1);

    // This time the guest unlocks once: after the heartbeat the unlock counts, and the
    // allowance is spent for good.
    r.lock
        .send_event(EventKind::Unlock, second.grant_id, second.session_id)
        .await;
    expect_event(&mut r.events, "the unlock event", |e| {
        matches!(e, IssuerEvent::LockEvent(ev) if ev.kind == EventKind::Unlock).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(2_300)).await;
    r.lock.send_status(now()).await;
    expect_event(&mut r.events, "the lock's second status", |e| {
        matches!(e, IssuerEvent::LockStatus(s) if s.lock_id == lock).then_some(())
    })
    .await;
    let req = r.guest.request(lock);
    assert_eq!(ask(&mut r, &req).await, Err(Reason::UnlockLimitReached));
    r.issuer.shutdown().await;

    let reg = store(&p.state());
    assert_eq!(reg.grant(&second.grant_id).unwrap().unwrap().unlocks, 1);
    assert_eq!(refusals_with(&p, Reason::UnlockLimitReached), 3);
}
