//! Lockout after failed handshakes (LK-LCK-1..3): failures are counted per guest, across its
//! sessions, in a window that opens at the guest's first failure and lasts
//! `lockout_window_s`; a failure after the window opens a new one. When the count reaches
//! `lockout_threshold` inside a window the guest is locked out for `lockout_duration_s`.
//!
//! One record per guest, at most `cap` (the lock's `max_sessions`). When the table is full, a
//! new guest's failure evicts the record with no active lockout whose last failure is the
//! oldest (ties: smallest guest id); if every record is an active lockout, the new failure
//! is not counted (nothing is locked out to make room).

use alloc::collections::BTreeSet;
use hashbrown::HashMap;

use super::notices::{LockNotice, Notices};
use crate::{GrantId, GuestId, Reason, SessionId, UnixMillis};

/// Whether a Response refused with `r` after its challenge was consumed is a failed handshake
/// (LK-LCK-1). Refusals that say nothing about the guest's key (`session_revoked`,
/// `session_expired`, `locked_out`, `unlock_limit_reached`) are not.
pub(crate) const fn is_failed_handshake(r: Reason) -> bool {
    matches!(
        r,
        Reason::BadResponseMac
            | Reason::StepMismatch
            | Reason::ClockSkew
            | Reason::LateResponse
            | Reason::Truncated
            | Reason::TrailingBytes
            | Reason::UnsupportedVersion
    )
}

#[derive(Debug, Clone, Copy)]
struct Record {
    window_start: UnixMillis,
    failures: u32,
    last_failure: UnixMillis,
    /// The grant and session of the latest failure (the one that triggers a lockout).
    grant_id: GrantId,
    session_id: SessionId,
    locked_until: Option<UnixMillis>,
}

/// The tunables of lockout, in the units the table works in.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LockoutPolicy {
    /// 0 disables lockout.
    pub(crate) threshold: u32,
    pub(crate) window_ms: u64,
    pub(crate) duration_ms: u64,
    pub(crate) cap: usize,
}

#[derive(Debug)]
pub(crate) struct Lockouts {
    policy: LockoutPolicy,
    by_guest: HashMap<GuestId, Record>,
    /// `(locked_until, guest)` of every active lockout: the timer of LK-LCK-3.
    active: BTreeSet<(UnixMillis, GuestId)>,
}

impl Lockouts {
    pub(crate) fn new(policy: LockoutPolicy) -> Self {
        Self {
            policy,
            by_guest: HashMap::new(),
            active: BTreeSet::new(),
        }
    }

    /// Guests with a record (failures counted, or locked out).
    pub(crate) fn len(&self) -> usize {
        self.by_guest.len()
    }

    /// Active lockouts.
    pub(crate) fn active(&self) -> usize {
        self.active.len()
    }

    /// Whether `guest` is locked out at `now` (LK-LCK-2). One comparison when nobody is: the
    /// beacon path asks this for every valid beacon.
    #[inline]
    pub(crate) fn is_locked(&self, guest: &GuestId, now: UnixMillis) -> bool {
        !self.active.is_empty()
            && self
                .by_guest
                .get(guest)
                .and_then(|r| r.locked_until)
                .is_some_and(|until| now < until)
    }

    /// Counts a failed handshake of `guest` (LK-LCK-1). Returns `true` if it started a
    /// lockout (the caller drops the guest's pending authentications).
    pub(crate) fn record_failure(
        &mut self,
        now: UnixMillis,
        guest: GuestId,
        grant_id: GrantId,
        session_id: SessionId,
        reason: Reason,
        notices: &mut Notices,
    ) -> bool {
        if self.policy.threshold == 0 {
            return false;
        }
        // A lockout whose end no timeout has processed yet ends now, before the failure.
        if let Some(until) = self.by_guest.get(&guest).and_then(|r| r.locked_until) {
            if now < until {
                // Failures while locked out are not counted: the lockout already holds.
                return false;
            }
            self.end(until, guest, notices);
        }
        if !self.by_guest.contains_key(&guest) && !self.make_room() {
            return false;
        }
        let window_ms = self.policy.window_ms;
        let r = self.by_guest.entry(guest).or_insert(Record {
            window_start: now,
            failures: 0,
            last_failure: now,
            grant_id,
            session_id,
            locked_until: None,
        });
        if now.since(r.window_start) > window_ms {
            r.window_start = now;
            r.failures = 0;
        }
        r.failures = r.failures.saturating_add(1);
        r.last_failure = now;
        r.grant_id = grant_id;
        r.session_id = session_id;
        if r.failures < self.policy.threshold {
            return false;
        }
        let until = now.plus_ms(self.policy.duration_ms);
        r.locked_until = Some(until);
        r.failures = 0;
        self.active.insert((until, guest));
        notices.push(LockNotice::LockoutStarted {
            guest_id: guest,
            grant_id,
            session_id,
            reason,
            until,
        });
        true
    }

    /// Frees one record for a new guest when the table is full; `false` if every record is
    /// an active lockout.
    fn make_room(&mut self) -> bool {
        if self.by_guest.len() < self.policy.cap {
            return true;
        }
        let victim = self
            .by_guest
            .iter()
            .filter(|(_, r)| r.locked_until.is_none())
            .min_by_key(|(g, r)| (r.last_failure, **g))
            .map(|(g, _)| *g);
        match victim {
            Some(g) => {
                self.by_guest.remove(&g);
                true
            }
            None => false,
        }
    }

    fn end(&mut self, until: UnixMillis, guest: GuestId, notices: &mut Notices) {
        self.active.remove(&(until, guest));
        if let Some(r) = self.by_guest.remove(&guest) {
            notices.push(LockNotice::LockoutEnded {
                guest_id: guest,
                grant_id: r.grant_id,
                session_id: r.session_id,
            });
        }
    }

    /// The next lockout end (LK-LCK-3), for `poll_timeout`.
    pub(crate) fn next_end(&self) -> Option<UnixMillis> {
        self.active.first().map(|(until, _)| *until)
    }

    /// Ends every lockout whose `locked_until` is at or before `now` (LK-LCK-3).
    pub(crate) fn handle_timeout(&mut self, now: UnixMillis, notices: &mut Notices) {
        while let Some(&(until, guest)) = self.active.first() {
            if until > now {
                break;
            }
            self.end(until, guest, notices);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(threshold: u32, cap: usize) -> LockoutPolicy {
        LockoutPolicy {
            threshold,
            window_ms: 10_000,
            duration_ms: 60_000,
            cap,
        }
    }

    fn g(i: u8) -> GuestId {
        GuestId([i; 16])
    }

    fn fail(l: &mut Lockouts, n: &mut Notices, t: u64, guest: u8) -> bool {
        l.record_failure(
            UnixMillis(t),
            g(guest),
            GrantId([guest; 16]),
            SessionId([guest; 8]),
            Reason::BadResponseMac,
            n,
        )
    }

    #[test]
    fn threshold_failures_in_one_window_lock_out_until_the_duration_ends() {
        let mut l = Lockouts::new(policy(3, 4));
        let mut n = Notices::new(8);
        assert!(!fail(&mut l, &mut n, 1_000, 1));
        assert!(!fail(&mut l, &mut n, 2_000, 1));
        assert!(!l.is_locked(&g(1), UnixMillis(2_000)));
        assert!(
            fail(&mut l, &mut n, 11_000, 1),
            "third failure, 10 s after the first"
        );
        assert!(l.is_locked(&g(1), UnixMillis(11_000)));
        assert!(!l.is_locked(&g(2), UnixMillis(11_000)));
        assert_eq!(l.next_end(), Some(UnixMillis(71_000)));
        assert!(matches!(
            n.pop(),
            Some(LockNotice::LockoutStarted {
                until: UnixMillis(71_000),
                ..
            })
        ));
        // Failures while locked out are not counted.
        assert!(!fail(&mut l, &mut n, 20_000, 1));
        assert!(l.is_locked(&g(1), UnixMillis(70_999)));
        assert!(!l.is_locked(&g(1), UnixMillis(71_000)));
        l.handle_timeout(UnixMillis(70_999), &mut n);
        assert_eq!(n.len(), 0);
        l.handle_timeout(UnixMillis(71_000), &mut n);
        assert!(matches!(n.pop(), Some(LockNotice::LockoutEnded { .. })));
        assert_eq!((l.len(), l.active()), (0, 0));
    }

    #[test]
    fn a_failure_after_the_window_starts_a_new_count() {
        let mut l = Lockouts::new(policy(2, 4));
        let mut n = Notices::new(8);
        assert!(!fail(&mut l, &mut n, 0, 1));
        assert!(!fail(&mut l, &mut n, 10_001, 1), "window of 10 s exceeded");
        assert!(fail(&mut l, &mut n, 20_001, 1));
    }

    #[test]
    fn threshold_zero_disables_lockout() {
        let mut l = Lockouts::new(policy(0, 4));
        let mut n = Notices::new(8);
        for t in 0..10 {
            assert!(!fail(&mut l, &mut n, t, 1));
        }
        assert_eq!(l.len(), 0);
    }

    #[test]
    fn a_full_table_evicts_the_oldest_unlocked_record_and_never_a_lockout() {
        let mut l = Lockouts::new(policy(2, 2));
        let mut n = Notices::new(8);
        fail(&mut l, &mut n, 0, 1);
        fail(&mut l, &mut n, 1, 1); // guest 1 locked out
        fail(&mut l, &mut n, 2, 2);
        fail(&mut l, &mut n, 3, 3); // evicts guest 2's record
        assert_eq!(l.len(), 2);
        assert!(
            !fail(&mut l, &mut n, 4, 2),
            "guest 2 starts again at one failure"
        );
        // Guest 3 was evicted for guest 2; lock out guest 2, then nothing is evictable.
        assert!(fail(&mut l, &mut n, 5, 2));
        assert!(!fail(&mut l, &mut n, 6, 4));
        assert!(
            !fail(&mut l, &mut n, 7, 4),
            "not counted: every record is a lockout"
        );
        assert!(!l.is_locked(&g(4), UnixMillis(7)));
    }

    #[test]
    fn a_lockout_past_its_end_ends_before_a_new_failure_counts() {
        let mut l = Lockouts::new(policy(1, 2));
        let mut n = Notices::new(8);
        assert!(fail(&mut l, &mut n, 0, 1));
        n.pop();
        assert!(
            fail(&mut l, &mut n, 60_000, 1),
            "no timeout ran; the new failure counts"
        );
        assert!(matches!(n.pop(), Some(LockNotice::LockoutEnded { .. })));
        assert!(matches!(n.pop(), Some(LockNotice::LockoutStarted { .. })));
        assert_eq!(l.active(), 1);
    }

    #[test]
    fn only_handshake_failures_count() {
        for r in [
            Reason::BadResponseMac,
            Reason::StepMismatch,
            Reason::ClockSkew,
            Reason::LateResponse,
            Reason::Truncated,
            Reason::TrailingBytes,
            Reason::UnsupportedVersion,
        ] {
            assert!(is_failed_handshake(r), "{r}");
        }
        for r in [
            Reason::SessionRevoked,
            Reason::SessionExpired,
            Reason::LockedOut,
            Reason::UnlockLimitReached,
            Reason::NoChallenge,
        ] {
            assert!(!is_failed_handshake(r), "{r}");
        }
    }
}
