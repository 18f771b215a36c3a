//! Revocation through the control socket: signed Revocations the core `Lock` accepts,
//! re-published until the lock confirms them.

// Test code, helpers included: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;

use latchkey::frame::EventKind;
use latchkey::lock::{MessageOutcome, RevocationOutcome};
use latchkey::{GrantId, Reason};
use latchkey_issuer::control::{self, ControlReply, ControlRequest};
use latchkey_issuer::{IssuerEvent, Issuerd, IssuerdError};

use common::*;

async fn ctl(state: PathBuf, req: ControlRequest) -> Result<ControlReply, IssuerdError> {
    tokio::task::spawn_blocking(move || control::request(&state, &req))
        .await
        .unwrap()
}

#[tokio::test]
async fn revoke_grant_over_the_control_socket_publishes_a_revocation_the_lock_accepts() {
    init_logs();
    let p = Provisioned::new();
    let issuer = start_issuer(&p.state()).await;
    let url = issuer.broker_url().to_owned();
    let mut lock = LockPeer::connect(&p, &url).await;
    let mut guest = GuestPeer::connect(&p.bundle, &url).await;
    let mut events = issuer.subscribe();
    let (grant_id, session_id) = grant(&mut lock, &mut guest).await;
    assert!(lock.lock.has_session(&session_id));

    let reply = ctl(p.state(), ControlRequest::RevokeGrant { grant_id })
        .await
        .unwrap();
    let revoked = reply.revoked.unwrap();
    assert_eq!(revoked.len(), 1);
    assert_eq!(
        (revoked[0].grant_id, revoked[0].lock_id),
        (grant_id, p.lock_id)
    );

    let rev = lock.peer.next(10_000).await.expect("a Revocation");
    let out = lock
        .lock
        .handle_message(now(), &rev.payload, &mut lock.rng)
        .unwrap();
    assert_eq!(
        out,
        MessageOutcome::Revocation(RevocationOutcome {
            grant_id,
            session_removed: true
        })
    );
    assert!(!lock.lock.has_session(&session_id));
    assert!(logged(&["grant revoked", &grant_id.to_string()]));

    // The grant left the live set, in memory and on disk; the revocation awaits its
    // confirmation, also on disk.
    let st = issuer.status().await.unwrap();
    assert!(st.live_grants.is_empty());
    assert_eq!(st.pending_revocations.len(), 1);
    let reg = store(&p.state());
    assert!(reg.live_grants(now().secs()).unwrap().is_empty());
    let pending = reg.pending_revocations(now().secs()).unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].payload, rev.payload.to_vec());
    assert_eq!(pending[0].publishes, 1);

    // The lock's kind-4 event confirms it.
    lock.send_event(EventKind::RevocationApplied, grant_id, session_id)
        .await;
    let confirmed = expect_event(&mut events, "confirmation", |e| match e {
        IssuerEvent::RevocationConfirmed { grant_id, .. } => Some(*grant_id),
        _ => None,
    })
    .await;
    assert_eq!(confirmed, grant_id);
    assert!(
        issuer
            .status()
            .await
            .unwrap()
            .pending_revocations
            .is_empty()
    );

    // Revoking it again is refused with a clear error, and nothing is published.
    let again = ctl(p.state(), ControlRequest::RevokeGrant { grant_id }).await;
    match again {
        Err(IssuerdError::Control(msg)) => assert!(msg.contains("not live"), "{msg}"),
        other => panic!("{other:?}"),
    }
    assert!(lock.peer.next(300).await.is_none());
    issuer.shutdown().await;
}

#[tokio::test]
async fn an_unconfirmed_revocation_is_published_again() {
    init_logs();
    let p = Provisioned::new();
    let mut opts = options(&p.state());
    opts.revocation_retry = Duration::from_millis(500);
    let issuer = Issuerd::start(opts).await.unwrap();
    let url = issuer.broker_url().to_owned();
    let mut lock = LockPeer::connect(&p, &url).await;
    let mut guest = GuestPeer::connect(&p.bundle, &url).await;
    let (grant_id, _) = grant(&mut lock, &mut guest).await;

    issuer.revoke_grant(grant_id).await.unwrap();
    let first = lock.peer.next(5_000).await.expect("the Revocation");
    let second = lock.peer.next(5_000).await.expect("the Revocation again");
    assert_eq!(first.payload, second.payload, "the same signed message");
    // Idempotent at the lock.
    lock.lock
        .handle_message(now(), &first.payload, &mut lock.rng)
        .unwrap();
    lock.lock
        .handle_message(now(), &second.payload, &mut lock.rng)
        .unwrap();
    let st = issuer.status().await.unwrap();
    assert!(st.pending_revocations[0].publishes >= 2);
    assert!(st.counters.revocations_published >= 2);
    issuer.shutdown().await;
}

#[tokio::test]
async fn revoke_guest_revokes_its_live_grants_and_refuses_its_requests() {
    init_logs();
    let p = Provisioned::new();
    let issuer = start_issuer(&p.state()).await;
    let url = issuer.broker_url().to_owned();
    let mut lock = LockPeer::connect(&p, &url).await;
    let mut guest = GuestPeer::connect(&p.bundle, &url).await;
    let mut events = issuer.subscribe();
    let (g1, s1) = grant(&mut lock, &mut guest).await;
    let (g2, s2) = grant(&mut lock, &mut guest).await;

    let reply = ctl(
        p.state(),
        ControlRequest::RevokeGuest {
            guest_id: p.guest_id,
        },
    )
    .await
    .unwrap();
    let mut revoked: Vec<GrantId> = reply.revoked.unwrap().iter().map(|r| r.grant_id).collect();
    revoked.sort();
    let mut want = vec![g1, g2];
    want.sort();
    assert_eq!(revoked, want);
    for _ in 0..2 {
        let rev = lock.peer.next(10_000).await.expect("a Revocation");
        lock.lock
            .handle_message(now(), &rev.payload, &mut lock.rng)
            .unwrap();
    }
    assert!(!lock.lock.has_session(&s1) && !lock.lock.has_session(&s2));

    // Its next request is refused, and the revocation is in the registry.
    let req = guest.request(p.lock_id);
    guest.send(&req).await;
    let r = expect_event(&mut events, "refusal", |e| match e {
        IssuerEvent::RequestRefused { reason, .. } => Some(*reason),
        _ => None,
    })
    .await;
    assert_eq!(r, Reason::GuestRevoked);
    let g = store(&p.state()).guest(&p.guest_id).unwrap().unwrap();
    assert!(g.revoked());

    // An unknown guest is an error.
    let unknown = ctl(
        p.state(),
        ControlRequest::RevokeGuest {
            guest_id: latchkey::GuestId([3; 16]),
        },
    )
    .await;
    assert!(matches!(unknown, Err(IssuerdError::Control(m)) if m.contains("not enrolled")));
    issuer.shutdown().await;
}

#[tokio::test]
async fn the_control_socket_is_private_and_survives_bad_requests() {
    init_logs();
    let p = Provisioned::new();
    let issuer = start_issuer(&p.state()).await;
    let sock = p.state().join("control.sock");
    let mode = std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    let path = sock.clone();
    let replies = tokio::task::spawn_blocking(move || {
        use std::io::{BufRead, BufReader, Write};
        let mut s = std::os::unix::net::UnixStream::connect(&path).unwrap();
        s.write_all(
            b"not json\n{\"cmd\":\"launch\"}\n{\"cmd\":\"revoke_grant\",\"grant_id\":\"XYZ\"}\n{\"cmd\":\"status\"}\n",
        )
        .unwrap();
        let mut r = BufReader::new(s);
        (0..4)
            .map(|_| {
                let mut line = String::new();
                r.read_line(&mut line).unwrap();
                serde_json::from_str::<ControlReply>(&line).unwrap()
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    assert!(replies[..3].iter().all(|r| !r.ok && r.error.is_some()));
    assert!(replies[2].error.as_deref().unwrap().contains("GrantId"));
    let status = replies[3].status.as_ref().expect("status after errors");
    assert_eq!(status.locks, vec![p.lock_id]);
    assert_eq!(status.guests[0].guest_id, p.guest_id);
    assert_eq!(status.mqtt, "connected");

    issuer.shutdown().await;
    assert!(!sock.exists(), "the socket is removed at shutdown");
    assert!(matches!(
        control::request(&p.state(), &ControlRequest::Status),
        Err(IssuerdError::ControlUnreachable { .. })
    ));
}
