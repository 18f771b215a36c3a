//! The daemon on the registry: CLI writes picked up while running, revocations made while
//! it was down published at its start, key rotation, and the audit trail it keeps.

// Test code, helpers included: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use latchkey::frame::EventKind;
use latchkey::lock::{MessageOutcome, RevocationOutcome};
use latchkey::{Reason, topics};
use latchkey_issuer::store::{AuditFilter, AuditSource, kinds};
use latchkey_issuer::{BundleFiles, IssuerEvent, RotateGuestKeyOptions};

use common::*;

/// Runs the issuer binary on `state`; returns stdout, panicking with stderr on failure.
async fn cli(state: PathBuf, args: Vec<String>) -> (String, String) {
    tokio::task::spawn_blocking(move || {
        let out = Command::new(env!("CARGO_BIN_EXE_latchkey-issuer"))
            .arg("--state-dir")
            .arg(&state)
            .args(&args)
            .env("RUST_LOG", "warn")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{args:?}: {stderr}");
        (String::from_utf8(out.stdout).unwrap(), stderr)
    })
    .await
    .unwrap()
}

/// A fresh beacon of `guest` for its lock, as the lock hears it.
fn beacon(
    lock: &mut LockPeer,
    guest: &mut GuestPeer,
) -> Result<latchkey::lock::BeaconOutcome, Reason> {
    let lock_id = lock.lock.config().lock_id;
    guest
        .guest
        .start_unlock(now(), lock_id, &mut guest.rng)
        .unwrap();
    let adv = guest.guest.advertisement(now()).unwrap();
    lock.lock.handle_beacon(now(), 0xFFFF, &adv, -50)
}

async fn refusal(events: &mut tokio::sync::broadcast::Receiver<IssuerEvent>) -> Reason {
    expect_event(events, "a refusal", |e| match e {
        IssuerEvent::RequestRefused { reason, .. } => Some(*reason),
        _ => None,
    })
    .await
}

fn path(p: &Path) -> String {
    p.to_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_guest_enrolled_by_the_cli_while_running_is_picked_up_and_granted() {
    init_logs();
    let p = Provisioned::new();
    let issuer = start_issuer(&p.state()).await;
    let url = issuer.broker_url().to_owned();
    let mut lock = LockPeer::connect(&p, &url).await;

    let bundle = p.dir.path().join("cli-guest.json");
    let (out, _) = cli(
        p.state(),
        [
            "enroll-guest",
            "--lock",
            &p.lock_id.to_string(),
            "--out",
            &path(&bundle),
            "--no-qr",
            "--name",
            "carol",
            "--broker-url",
            &url,
        ]
        .map(String::from)
        .to_vec(),
    )
    .await;
    let (id, _) = common::bundle(&bundle);
    assert_eq!(out.trim(), id.to_string(), "the guest id on stdout");

    let mut guest = GuestPeer::connect(&bundle, &url).await;
    let (grant_id, _) = grant(&mut lock, &mut guest).await;
    let st = issuer.status().await.unwrap();
    let g = st.guests.iter().find(|g| g.guest_id == id).unwrap();
    assert_eq!(g.name, "carol");
    assert!(st.live_grants.iter().any(|g| g.grant_id == grant_id));
    assert!(logged(&["registry reloaded"]));

    // An access rule removed by the CLI: the next request is refused.
    cli(
        p.state(),
        [
            "set-access",
            "--guest",
            &id.to_string(),
            "--lock",
            &p.lock_id.to_string(),
            "--remove",
        ]
        .map(String::from)
        .to_vec(),
    )
    .await;
    let mut events = issuer.subscribe();
    let req = guest.request(p.lock_id);
    guest.send(&req).await;
    assert_eq!(refusal(&mut events).await, Reason::NotAuthorized);
    issuer.shutdown().await;
}

#[tokio::test]
async fn a_revocation_made_while_the_issuer_was_down_is_published_at_start_and_the_lock_refuses_the_guest()
 {
    init_logs();
    let p = Provisioned::new();
    let issuer = start_issuer(&p.state()).await;
    let url = issuer.broker_url().to_owned();
    let mut lock = LockPeer::connect(&p, &url).await;
    let mut guest = GuestPeer::connect(&p.bundle, &url).await;
    let (grant_id, session_id) = grant(&mut lock, &mut guest).await;
    assert!(beacon(&mut lock, &mut guest).is_ok(), "the guest is let in");
    issuer.shutdown().await;

    // No daemon: the CLI signs the revocation and stores it.
    let (out, err) = cli(
        p.state(),
        ["revoke-guest", "--guest", &p.guest_id.to_string()]
            .map(String::from)
            .to_vec(),
    )
    .await;
    assert!(
        out.contains(&format!("revoked guest {} and 1 live grant(s)", p.guest_id)),
        "{out}"
    );
    assert!(out.contains(&grant_id.to_string()), "{out}");
    assert!(err.contains("published when it starts"), "{err}");
    let reg = store(&p.state());
    let pending = reg.pending_revocations(now().secs()).unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].publishes, 0, "not published yet");
    assert!(reg.guest(&p.guest_id).unwrap().unwrap().revoked());
    assert!(reg.live_grants(now().secs()).unwrap().is_empty());
    drop(reg);

    // Restarted on a new broker port: the lock and guest reconnect to it.
    next_second().await;
    let mut opts = options(&p.state());
    opts.revocation_retry = std::time::Duration::from_millis(300);
    let issuer = latchkey_issuer::Issuerd::start(opts).await.unwrap();
    let url = issuer.broker_url().to_owned();
    let mut events = issuer.subscribe();
    lock.peer = Peer::connect(
        &url,
        "test-lock-again",
        Some(&topics::lock_grants(PREFIX, &p.lock_id)),
    )
    .await;
    // The daemon publishes it at start (the lock's persistent session would hold it; this
    // peer subscribed later), and again until the lock confirms.
    let rev = lock.peer.next(10_000).await.expect("the stored Revocation");
    assert_eq!(rev.payload.as_ref(), pending[0].payload.as_slice());
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
    assert!(
        beacon(&mut lock, &mut guest).is_err(),
        "the lock refuses the guest"
    );
    assert!(logged(&[
        "publishing a revocation made while the issuer was not running",
        &grant_id.to_string()
    ]));

    // Its requests are refused too.
    let mut guest2 = GuestPeer::connect(&p.bundle, &url).await;
    guest2.rng = rng(0x21);
    let req = guest2.request(p.lock_id);
    guest2.send(&req).await;
    assert_eq!(refusal(&mut events).await, Reason::GuestRevoked);

    // The lock confirms; the issuer stops publishing and records it.
    lock.peer = Peer::connect(&url, "test-lock-events", None).await;
    lock.send_event(EventKind::RevocationApplied, grant_id, session_id)
        .await;
    expect_event(&mut events, "the confirmation", |e| match e {
        IssuerEvent::RevocationConfirmed { grant_id: g, .. } if *g == grant_id => Some(()),
        _ => None,
    })
    .await;
    assert!(
        issuer
            .status()
            .await
            .unwrap()
            .pending_revocations
            .is_empty()
    );
    issuer.shutdown().await;
    let reg = store(&p.state());
    let g = reg.grant(&grant_id).unwrap().unwrap();
    assert!(g.revocation_confirmed_at_ms.is_some());
    assert!(g.revocation_publishes >= 1);
    let trail = reg
        .audit(
            &AuditFilter {
                grant_id: Some(grant_id),
                ..Default::default()
            },
            50,
            0,
        )
        .unwrap();
    let kinds_seen: Vec<&str> = trail.iter().map(|e| e.entry.kind.as_str()).collect();
    for k in [
        kinds::GRANT_ISSUED,
        kinds::GRANT_REVOKED,
        kinds::REVOCATION_PUBLISHED,
        kinds::REVOCATION_APPLIED,
        kinds::REVOCATION_CONFIRMED,
    ] {
        assert!(kinds_seen.contains(&k), "{k} in {kinds_seen:?}");
    }
}

#[tokio::test]
async fn a_rotated_guest_key_turns_the_old_bundle_into_bad_seal_and_the_new_one_works() {
    let p = Provisioned::new();
    let Running {
        issuer,
        url,
        mut lock,
        guest: mut old,
        mut events,
    } = Running::start(&p).await;
    let (first, _) = grant(&mut lock, &mut old).await;

    let new_bundle = p.dir.path().join("rotated.json");
    let png = p.dir.path().join("rotated.png");
    let rotated = latchkey_issuer::rotate_guest_key(
        &p.state(),
        &RotateGuestKeyOptions {
            guest_id: p.guest_id,
            files: BundleFiles {
                json: Some(new_bundle.clone()),
                qr_png: Some(png.clone()),
                qr_svg: None,
            },
            broker_url: url.clone(),
            company_id: 0xFFFF,
            force: false,
            kek: Default::default(),
        },
    )
    .unwrap();
    assert_eq!(rotated.key_version, 2);
    let (_, new_key) = common::bundle(&new_bundle);
    let (_, old_key) = common::bundle(&p.bundle);
    assert!(new_key != old_key);
    assert!(
        rotated.qr_text.contains(&hex::encode(new_key.expose())),
        "the QR text is the new bundle"
    );
    assert!(png.exists());

    let req = old.request(p.lock_id);
    old.send(&req).await;
    assert_eq!(refusal(&mut events).await, Reason::BadSeal);

    let mut new = GuestPeer::connect(&new_bundle, &url).await;
    // Same guest, so another seed: request ids must differ from the old peer's.
    new.rng = rng(0x21);
    let (second, _) = grant(&mut lock, &mut new).await;
    assert_ne!(first, second);
    // The grant issued under the old key stays live (revoke it with --revoke-grants).
    let live = issuer.status().await.unwrap().live_grants;
    assert!(live.iter().any(|g| g.grant_id == first));

    // rotate-guest-key --revoke-grants through the running daemon.
    let (out, _) = cli(
        p.state(),
        [
            "rotate-guest-key",
            "--guest",
            &p.guest_id.to_string(),
            "--out",
            &path(&p.dir.path().join("third.json")),
            "--no-qr",
            "--broker-url",
            &url,
            "--revoke-grants",
        ]
        .map(String::from)
        .to_vec(),
    )
    .await;
    assert!(out.contains("revoked 2 live grant(s)"), "{out}");
    assert!(issuer.status().await.unwrap().live_grants.is_empty());
    let reg = store(&p.state());
    assert_eq!(reg.guest(&p.guest_id).unwrap().unwrap().key_version, 3);
    assert!(!reg.guest(&p.guest_id).unwrap().unwrap().revoked());
    issuer.shutdown().await;
}

#[tokio::test]
async fn the_daemon_audits_grants_refusals_verified_events_once_and_refused_messages() {
    let p = Provisioned::new();
    let Running {
        issuer,
        url,
        mut lock,
        mut guest,
        mut events,
    } = Running::start(&p).await;
    let (grant_id, session_id) = grant(&mut lock, &mut guest).await;

    // An unlock event, delivered twice (a QoS 1 redelivery or a replay): recorded and
    // counted once; the second copy is refused (event_replay) and audited as a refusal.
    let ev = lock.lock.signed_event(
        now(),
        EventKind::Unlock,
        None,
        grant_id,
        session_id,
        &mut lock.rng,
    );
    let ev_topic = topics::lock_events(PREFIX, &p.lock_id);
    lock.peer.publish(&ev_topic, &ev).await;
    lock.peer.publish(&ev_topic, &ev).await;
    // A forged message on the lock's topic, then a bad request.
    lock.peer.publish(&ev_topic, b"\x01\x05forged").await;
    let mut forger = GuestPeer::with_key(
        p.guest_id,
        latchkey::crypto::EnrollmentKey::from_bytes([9; 32]),
        &url,
    )
    .await;
    let bad = forger.request(p.lock_id);
    forger.send(&bad).await;
    assert_eq!(refusal(&mut events).await, Reason::BadSeal);
    let st = issuer.status().await.unwrap();
    assert_eq!(st.counters.events_verified, 1);
    assert_eq!(st.counters.events_refused.get("event_replay"), Some(&1));
    issuer.shutdown().await;

    let reg = store(&p.state());
    let at = |kind: &str| AuditFilter {
        kind: Some(kind.to_owned()),
        ..Default::default()
    };
    let unlocks = reg.audit(&at(kinds::UNLOCK), 10, 0).unwrap();
    assert_eq!(unlocks.len(), 1, "recorded once");
    let u = &unlocks[0].entry;
    assert_eq!(u.source, AuditSource::Lock);
    assert_eq!(u.lock_id, Some(p.lock_id));
    assert_eq!(u.guest_id, Some(p.guest_id), "the guest of the grant");
    assert_eq!(u.grant_id, Some(grant_id));
    assert!(u.message_id.is_some() && u.lock_time_ms.is_some());
    assert_eq!(reg.grant(&grant_id).unwrap().unwrap().unlocks, 1);

    let refused = reg.audit(&at(kinds::LOCK_MESSAGE_REFUSED), 10, 0).unwrap();
    let mut reasons: Vec<&str> = refused
        .iter()
        .filter_map(|r| r.entry.reason.as_deref())
        .collect();
    reasons.sort_unstable();
    assert_eq!(reasons, ["event_replay", "truncated"]);
    assert!(
        refused.iter().all(|r| r.entry.message_id.is_none()),
        "never as the event it claims"
    );

    let bad_seal = AuditFilter {
        guest_id: Some(p.guest_id),
        reason: Some("bad_seal".into()),
        ..Default::default()
    };
    assert_eq!(reg.audit_count(&bad_seal).unwrap(), 1);
    assert_eq!(reg.audit_count(&at(kinds::GRANT_ISSUED)).unwrap(), 1);
    let by_lock = AuditFilter {
        lock_id: Some(p.lock_id),
        source: Some(AuditSource::Lock),
        ..Default::default()
    };
    assert_eq!(reg.audit_count(&by_lock).unwrap(), 1);
    let admin = AuditFilter {
        source: Some(AuditSource::Admin),
        ..Default::default()
    };
    let admin_kinds: Vec<String> = reg
        .audit(&admin, 10, 0)
        .unwrap()
        .into_iter()
        .map(|e| e.entry.kind)
        .collect();
    assert!(
        admin_kinds.contains(&"lock_added".to_owned()),
        "{admin_kinds:?}"
    );
    assert!(
        admin_kinds.contains(&"guest_enrolled".to_owned()),
        "{admin_kinds:?}"
    );

    // What a restarted issuer restores into its replay cache.
    let ids = reg.recent_lock_messages(0).unwrap();
    assert_eq!(ids.len(), 1);
    assert_eq!(ids[0].lock_id, p.lock_id);
    assert_eq!(&ids[0].message_id[..], &ev[18..34]);
    assert!(
        reg.lock(&p.lock_id)
            .unwrap()
            .unwrap()
            .last_seen_ms
            .is_some()
    );
}
