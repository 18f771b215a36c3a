//! Boundaries of the lock's checks and timers, exactly at the edge: the cases mutation
//! testing (`cargo mutants`, docs/assurance.md) showed the scenario tests did not pin.

mod common;

use common::{Forge, RSSI_NEAR, World, lock_config};
use latchkey::lock::{BeaconOutcome, ConnId};
use latchkey::{Reason, UnixMillis};

fn install(w: &mut World, f: &Forge) {
    let g = f.lock_grant(&mut w.rng);
    w.lock
        .handle_grant(w.now, &g, &mut w.rng)
        .expect("installs");
}

/// LK-ADV-6: a session is valid from `not_before` inclusive.
#[test]
fn a_beacon_at_exactly_not_before_is_accepted() {
    let mut w = World::new();
    let mut f = Forge::new(0x31, w.now);
    f.header.not_before = w.now.secs();
    install(&mut w, &f);
    let at = UnixMillis::from_secs(f.header.not_before);
    assert!(matches!(
        w.lock
            .handle_beacon(at.max(w.now), 0xFFFF, &f.beacon(w.now.step(), 1), RSSI_NEAR),
        Ok(BeaconOutcome::Armed { .. })
    ));
}

/// LK-ADV-7: a beacon whose attempt was replaced by a newer one is a replay, not a repeat
/// of the pending authentication.
#[test]
fn a_replaced_attempt_heard_again_is_a_replay() {
    let mut w = World::new();
    let f = Forge::new(0x32, w.now);
    install(&mut w, &f);
    let s = w.now.step();
    let first = f.beacon(s, 1);
    assert!(matches!(w.hear(&first), Ok(BeaconOutcome::Armed { .. })));
    assert!(matches!(
        w.hear(&f.beacon(s, 2)),
        Ok(BeaconOutcome::Armed { .. })
    ));
    assert_eq!(w.hear(&f.beacon(s, 2)), Ok(BeaconOutcome::AlreadyPending));
    assert_eq!(w.hear(&first), Err(Reason::Replay));
}

/// LK-SEL-3: at the challenge cap, a connection's new Select replaces its own challenge.
#[test]
fn at_the_challenge_cap_a_connection_may_replace_its_own_challenge() {
    let mut cfg = lock_config();
    cfg.max_challenges = 1;
    let mut w = World::with_lock_config(cfg);
    let f = Forge::new(0x33, w.now);
    install(&mut w, &f);
    let s = w.now.step();
    w.hear(&f.beacon(s, 1)).expect("armed");
    w.lock
        .handle_select(w.now, ConnId(1), &f.select(s, 1), &mut w.rng)
        .expect("first challenge");
    w.hear(&f.beacon(s, 2)).expect("armed again");
    w.lock
        .handle_select(w.now, ConnId(1), &f.select(s, 2), &mut w.rng)
        .expect("the same connection replaces its challenge at the cap");
    assert_eq!(w.lock.stats().challenges, 1);
}

/// The driver's timer: `poll_timeout` names the first instant at which a pending
/// authentication or a challenge has expired (one past its window), never earlier, so
/// `handle_timeout` at that instant purges it and the timer moves on.
#[test]
fn poll_timeout_names_the_first_instant_past_each_window() {
    let mut w = World::new();
    let f = Forge::new(0x34, w.now);
    install(&mut w, &f);
    let cfg = lock_config();
    let s = w.now.step();
    let armed_at = w.now;
    w.hear(&f.beacon(s, 1)).expect("armed");
    let pending_deadline = armed_at.plus_ms(cfg.connection_window_ms + 1);
    assert_eq!(
        w.lock.poll_timeout(),
        Some(pending_deadline.min(s.next_start()))
    );
    if pending_deadline < s.next_start() {
        w.lock.handle_timeout(UnixMillis(pending_deadline.0 - 1));
        assert_eq!(w.lock.stats().pending, 1, "not purged a millisecond early");
        w.lock.handle_timeout(pending_deadline);
        assert_eq!(w.lock.stats().pending, 0, "purged at the deadline");
    }

    let mut w = World::new();
    install(&mut w, &f);
    w.hear(&f.beacon(s, 1)).expect("armed");
    let issued_at = w.now;
    w.lock
        .handle_select(w.now, ConnId(1), &f.select(s, 1), &mut w.rng)
        .expect("challenge");
    let challenge_deadline = issued_at.plus_ms(cfg.response_budget_ms + 1);
    assert_eq!(
        w.lock.poll_timeout(),
        Some(challenge_deadline.min(s.next_start()))
    );
    w.lock.handle_timeout(UnixMillis(challenge_deadline.0 - 1));
    assert_eq!(
        w.lock.stats().challenges,
        1,
        "not purged a millisecond early"
    );
    w.lock.handle_timeout(challenge_deadline);
    assert_eq!(w.lock.stats().challenges, 0, "purged at the deadline");
}
