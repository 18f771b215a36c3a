//! `Guest::restore_grant`: a guest that restarts re-installs the GuestGrants it stored
//! (spec §7.3.2) and unlocks with them; what LK-GGR-1, -3, -4 refuse stays refused.

mod common;

use common::{GUEST, T0, World, enrollment_key};
use latchkey::crypto::EnrollmentKey;
use latchkey::{Guest, GuestConfig, GuestId, Reason};

fn restarted(id: GuestId, key: EnrollmentKey) -> Guest {
    Guest::new(GuestConfig::new(id, key)).expect("guest config")
}

#[test]
fn a_restored_grant_unlocks_like_the_original() {
    let mut w = World::new();
    let g = w.grant();
    let info = w.guest.grant(&common::LOCK_A).expect("held");
    // The process restarts: nothing outstanding, nothing held.
    w.guest = restarted(GUEST, enrollment_key());
    assert_eq!(
        w.guest.handle_grant(w.now, &g.guest_grant),
        Err(Reason::UnknownRequest),
        "from the network, an answer to no request is refused (LK-GGR-2)"
    );
    let restored = w
        .guest
        .restore_grant(w.now, &g.guest_grant)
        .expect("restored");
    assert_eq!(restored, info);
    assert!(w.unlock().is_ok());
}

#[test]
fn restore_checks_identity_seal_and_validity() {
    let mut w = World::new();
    let g = w.grant();
    let other = GuestId([0x77; 16]);
    assert_eq!(
        restarted(other, enrollment_key()).restore_grant(w.now, &g.guest_grant),
        Err(Reason::WrongGuest)
    );
    let wrong_key = EnrollmentKey::from_bytes([0x11; 32]);
    assert_eq!(
        restarted(GUEST, wrong_key).restore_grant(w.now, &g.guest_grant),
        Err(Reason::BadSeal)
    );
    let mut tampered = g.guest_grant;
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    assert_eq!(
        restarted(GUEST, enrollment_key()).restore_grant(w.now, &tampered),
        Err(Reason::BadSeal)
    );
    let info = w.guest.grant(&common::LOCK_A).expect("held");
    let after = latchkey::UnixMillis(info.not_after * 1000);
    assert_eq!(
        restarted(GUEST, enrollment_key()).restore_grant(after, &g.guest_grant),
        Err(Reason::GrantExpired)
    );
    assert_eq!(
        restarted(GUEST, enrollment_key()).restore_grant(T0, &g.guest_grant[..50]),
        Err(Reason::Truncated)
    );
}
