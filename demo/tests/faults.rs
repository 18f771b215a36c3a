//! Faults: a broker killed and restarted, a lock offline while its grant is published,
//! garbage on every topic, an issuer restart. After each, the daemons keep running and the
//! next valid flow works.
// Test code: a failed unwrap is a failed test (support/ is shared test code).
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use latchkey::{GuestId, LockId, Reason, topics};
use latchkey_guest::{GuestError, Guestd};
use latchkey_issuer::IssuerEvent;
use latchkey_lock::Lockd;
use latchkey_transport::mqtt::{ConnectionState, Incoming, MqttClient, QoS};
use support::mosquitto::Mode;
use support::{Env, wait_event, wait_stats};

const P: &str = topics::DEFAULT_PREFIX;

/// Mosquitto (the shipped mutual-TLS config) is killed with SIGKILL mid-session and
/// restarted on the same port with nothing remembered. The lock and the guest reconnect and
/// re-subscribe; the lock keeps its installed session (the guest's held grant still
/// opens it), and a grant issued after the restart is installed and opens it too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_killed_and_restarted() {
    let Some(mut env) = Env::mosquitto(Mode::MutualTls, "broker_killed_and_restarted").await else {
        return;
    };
    let lock = env.site.add_lock().unwrap();
    let lockd = env.site.start_lock(&lock).await.unwrap();
    let guest = env.site.enroll_guest(&[lock.lock_id]).unwrap();
    let mut g = env.site.guest(&guest).await.unwrap();
    let first = g
        .unlock(lock.lock_id)
        .await
        .expect("unlock before the crash");

    let broker = env.mosquitto_mut();
    broker.kill();
    broker.restart();

    // The lock is back and subscribed once a grant requested now reaches it.
    env.site
        .wait_lock_ready(&lock, &lockd)
        .await
        .expect("the lock re-subscribes after the broker restart");
    // The session installed before the crash survived in the lock.
    let reused = g
        .unlock(lock.lock_id)
        .await
        .expect("unlock with the held grant");
    assert!(reused.grant_reused);
    assert_eq!(reused.grant_id, first.grant_id);
    // A new grant, issued through the restarted broker.
    g.drop_grant(&lock.lock_id);
    let fresh = g
        .unlock(lock.lock_id)
        .await
        .expect("unlock with a new grant");
    assert!(!fresh.grant_reused);
    assert_ne!(fresh.grant_id, first.grant_id);
    assert_eq!(lockd.stats().unlocks, 3);
    g.shutdown().await;
    lockd.shutdown().await.unwrap();
}

/// While the lock daemon is stopped, a guest obtains a grant for it: the broker queues the
/// LockGrant in the lock's persistent session (QoS 1, LK-DEP-2), and the restarted lock
/// installs it, so the guest's held grant opens the lock.
async fn grant_queued_while_lock_is_stopped(mut env: Env) {
    let lock = env.site.add_lock().unwrap();
    let lockd = env.site.start_lock(&lock).await.unwrap();
    lockd.shutdown().await.unwrap();

    let guest = env.site.enroll_guest(&[lock.lock_id]).unwrap();
    let mut opts = env.site.guest_options(&guest).unwrap();
    opts.timeouts.attempt = Duration::from_secs(2);
    opts.timeouts.connect = Duration::from_secs(1);
    let mut g = env.site.guest_with(&guest, opts).await.unwrap();
    let mut events = env.site.issuer().unwrap().subscribe();
    let err = g
        .unlock(lock.lock_id)
        .await
        .expect_err("no lock on air while it is stopped");
    assert!(matches!(err, GuestError::NoLockFound { .. }), "{err}");
    let held = g
        .held_grant(&lock.lock_id)
        .expect("the guest got its grant");
    wait_event(
        &mut events,
        "the grant issued",
        |e| matches!(e, IssuerEvent::GrantIssued(s) if s.grant_id == held.grant_id),
    )
    .await;

    // Back up, without the readiness probe: only the queued message can bring the grant.
    let lockd = Lockd::start(
        env.site.lock_options(&lock).unwrap(),
        env.site.air().radio(&lock.radio),
    )
    .await
    .unwrap();
    wait_stats(&lockd, "the queued grant installed", |s| {
        s.core.sessions >= 1 && s.grants_installed >= 1
    })
    .await;
    let report = g
        .unlock(lock.lock_id)
        .await
        .expect("unlock with the queued grant");
    assert!(report.grant_reused);
    assert_eq!(report.grant_id, held.grant_id);
    g.shutdown().await;
    lockd.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grant_queued_while_lock_is_stopped_mosquitto() {
    if let Some(env) = Env::mosquitto(
        Mode::MutualTls,
        "grant_queued_while_lock_is_stopped_mosquitto",
    )
    .await
    {
        grant_queued_while_lock_is_stopped(env).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grant_queued_while_lock_is_stopped_embedded() {
    grant_queued_while_lock_is_stopped(Env::embedded().await).await;
}

/// Deterministic junk of `len` bytes.
fn junk(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// `msg` with one byte flipped at `at` (from the end if negative).
fn flipped(msg: &[u8], at: isize) -> Vec<u8> {
    let mut v = msg.to_vec();
    let i = if at < 0 {
        v.len() - at.unsigned_abs()
    } else {
        at as usize
    };
    v[i] ^= 0x01;
    v
}

/// Garbage, truncated, oversized and tampered (bad signature, bad seal) payloads, and
/// verbatim replays, on every topic of the protocol and a few malformed ones. No daemon
/// stops; each refusal is counted; the next unlock with a new grant works.
///
/// `huge`: also send a 300 KiB payload (the embedded broker refuses packets over 68 KiB
/// and disconnects the sender, so only Mosquitto gets it).
async fn garbage_on_every_topic(mut env: Env, huge: bool) {
    let site = &mut env.site;
    let lock = site.add_lock().unwrap();
    let lockd = site.start_lock(&lock).await.unwrap();
    let guest = site.enroll_guest(&[lock.lock_id]).unwrap();
    // A raw client allowed to send more than the daemons accept.
    let mut spy_config = site.endpoint().config("spy", "spy");
    spy_config.max_payload = 512 * 1024;
    let (spy, mut captured) = MqttClient::spawn(spy_config).unwrap();
    let mut spy_state = spy.state();
    tokio::time::timeout(
        support::WAIT,
        spy_state.wait_for(|s| *s == ConnectionState::Connected),
    )
    .await
    .unwrap()
    .unwrap();
    spy.subscribe(&format!("{P}/#"), QoS::AtLeastOnce)
        .await
        .unwrap();
    let mut g = site.guest(&guest).await.unwrap();
    let mut events = site.issuer().unwrap().subscribe();
    let report = g.unlock(lock.lock_id).await.expect("unlock");
    wait_event(&mut events, "the unlock event", |e| {
        matches!(e, IssuerEvent::LockEvent(ev) if ev.kind == latchkey::frame::EventKind::Unlock)
    })
    .await;

    // One real message of each kind, as they went over the broker.
    let mut real = std::collections::BTreeMap::<String, Incoming>::new();
    while let Ok(m) = captured.try_recv() {
        real.entry(m.topic.clone()).or_insert(m);
    }
    let request = &real[&topics::requests(P, &guest.guest_id)].payload;
    let guest_grant = &real[&topics::guest_grants(P, &guest.guest_id)].payload;
    let lock_grants_topic = topics::lock_grants(P, &lock.lock_id);
    let lock_events_topic = topics::lock_events(P, &lock.lock_id);
    let lock_grant = &real[&lock_grants_topic].payload;
    let event = &real[&lock_events_topic].payload;

    let generic = |seed: u64| {
        let mut v = vec![
            Vec::new(),
            vec![0x01],
            junk(7, seed),
            junk(90, seed + 1),
            junk(600, seed + 2),
            junk(5_000, seed + 3),
            // Over the daemons' 64 KiB cap: dropped by the transport.
            junk(64 * 1024 + 1, seed + 4),
        ];
        if huge {
            v.push(junk(300 * 1024, seed + 5));
        }
        v
    };
    let stranger = GuestId([0xab; 16]).to_string();
    let other_lock = LockId([0xcd; 16]).to_string();
    let mut plan: Vec<(String, Vec<u8>)> = Vec::new();
    let tampered = |real: &[u8]| {
        vec![
            flipped(real, -1),
            flipped(real, 20),
            real[..real.len() - 1].to_vec(),
            real.to_vec(),
        ]
    };
    for (topic, real) in [
        (topics::requests(P, &guest.guest_id), request),
        (topics::guest_grants(P, &guest.guest_id), guest_grant),
        (lock_grants_topic.clone(), lock_grant),
        (lock_events_topic.clone(), event),
    ] {
        for p in generic(topic.len() as u64)
            .into_iter()
            .chain(tampered(real))
        {
            plan.push((topic.clone(), p));
        }
    }
    for topic in [
        format!("{P}/requests/{stranger}"),
        format!("{P}/requests/NOT-HEX"),
        format!("{P}/locks/{other_lock}/events"),
        format!("{P}/locks/zz/events"),
        format!("{P}/guests/{stranger}/grants"),
    ] {
        plan.push((topic.clone(), junk(70, 9)));
        plan.push((topic, request.to_vec()));
    }

    let before_lock = lockd.stats();
    let before_issuer = site.issuer().unwrap().status().await.unwrap().counters;
    for (topic, payload) in &plan {
        spy.publish(topic, payload.clone(), QoS::AtLeastOnce, false)
            .await
            .unwrap();
    }
    // Every payload up to 64 KiB on the lock's grants topic is refused and counted, except
    // the verbatim LockGrant (a QoS 1 duplicate: already installed, not an error).
    let to_lock = plan
        .iter()
        .filter(|(t, p)| *t == lock_grants_topic && p.len() <= 64 * 1024 && p[..] != lock_grant[..])
        .count() as u64;
    let after_lock = wait_stats(&lockd, "every bad grant refused", |s| {
        s.message_rejections >= before_lock.message_rejections + to_lock
    })
    .await;
    assert_eq!(after_lock.grants_installed, before_lock.grants_installed);
    assert_eq!(
        after_lock.revocations_applied,
        before_lock.revocations_applied
    );
    // The issuer refused the requests and events (a tampered signature:
    // bad_event_signature), and the lock reported the grants it refused as signed events.
    // The messages on topics naming no valid id were published last; the issuer may still
    // be working through the queue when the others are refused.
    let (mut event_refused, mut lock_reported, mut malformed) = (false, false, false);
    while !(event_refused && lock_reported && malformed) {
        let e = wait_event(&mut events, "the tampered messages refused", |e| {
            matches!(
                e,
                IssuerEvent::EventRefused { .. }
                    | IssuerEvent::LockEvent(_)
                    | IssuerEvent::MalformedTopic { .. }
            )
        })
        .await;
        match e {
            IssuerEvent::MalformedTopic { topic } if topic.ends_with("/zz/events") => {
                malformed = true
            }
            IssuerEvent::EventRefused {
                reason: Reason::BadEventSignature,
                ..
            } => event_refused = true,
            IssuerEvent::LockEvent(ev)
                if ev.kind == latchkey::frame::EventKind::Rejection
                    && ev.reason == Reason::BadSignature.code() =>
            {
                lock_reported = true
            }
            _ => {}
        }
    }
    let issuer = site.issuer().unwrap();
    let after_issuer = issuer.status().await.unwrap().counters;
    assert_eq!(
        after_issuer.requests_accepted,
        before_issuer.requests_accepted
    );
    let refused: u64 = after_issuer.requests_refused.values().sum();
    let refused_before: u64 = before_issuer.requests_refused.values().sum();
    assert!(refused > refused_before, "{after_issuer:?}");
    assert!(after_issuer.malformed_topics > before_issuer.malformed_topics);

    // The guest refuses every bad GuestGrant (bad seal, unknown request, junk).
    g.poll_grants();
    assert!(g.stats().grants_rejected > 0, "{:?}", g.stats());

    // Everyone still works: a new grant, a new unlock.
    g.drop_grant(&lock.lock_id);
    let next = g
        .unlock(lock.lock_id)
        .await
        .expect("unlock after the garbage");
    assert_ne!(next.grant_id, report.grant_id);
    assert_eq!(lockd.stats().unlocks, 2);
    spy.shutdown().await;
    g.shutdown().await;
    lockd.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_every_topic_mosquitto() {
    if let Some(env) = Env::mosquitto(Mode::Plain, "garbage_on_every_topic_mosquitto").await {
        garbage_on_every_topic(env, true).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_every_topic_embedded() {
    garbage_on_every_topic(Env::embedded().await, false).await;
}

/// The issuer is stopped and started again on the same state directory: its key and
/// registry survive (a guest enrolled before the restart gets a grant the lock accepts),
/// and a grant issued before the restart can still be revoked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issuer_restart_keeps_keys_registry_and_grants() {
    let mut env = Env::embedded().await;
    let site = &mut env.site;
    let lock = site.add_lock().unwrap();
    let lockd = site.start_lock(&lock).await.unwrap();
    let alice = site.enroll_guest(&[lock.lock_id]).unwrap();
    let bob = site.enroll_guest(&[lock.lock_id]).unwrap();
    let mut a = site.guest(&alice).await.unwrap();
    let old = a
        .unlock(lock.lock_id)
        .await
        .expect("unlock before the restart");

    site.stop_issuer().await;
    site.start_issuer().await.expect("the issuer restarts");

    // Bob was enrolled before the restart and never asked for anything.
    let mut b: Guestd<_> = site.guest(&bob).await.unwrap();
    b.unlock(lock.lock_id)
        .await
        .expect("a grant from the restarted issuer");

    // Alice's pre-restart grant is still known to the issuer, and revocable.
    let revoked = site
        .issuer()
        .unwrap()
        .revoke_grant(old.grant_id)
        .await
        .expect("revoke a grant issued before the restart");
    assert_eq!(revoked.grant_id, old.grant_id);
    wait_stats(&lockd, "revocation applied", |s| s.revocations_applied >= 1).await;
    // The revoked grant no longer opens: the lock arms nothing for it, and Alice (who is
    // not revoked) unlocks with a fresh grant from the restarted issuer.
    let again = a
        .unlock(lock.lock_id)
        .await
        .expect("a fresh grant after the revoked one");
    assert_eq!(
        again.fallback.map(|f| (f.dropped_grant, f.refused)),
        Some((old.grant_id, Reason::NoPendingAuth))
    );
    assert_ne!(again.grant_id, old.grant_id);
    assert_eq!(lockd.stats().unlocks, 3);
    a.shutdown().await;
    b.shutdown().await;
    lockd.shutdown().await.unwrap();
}
