//! Unlock accounting: how much of a guest × lock's unlock limit its grants have used or
//! may still use.
//!
//! Every grant carries an allocation, its `max_unlocks` (0: unlimited), which the lock
//! enforces (LK-LIM-2). The issuer learns of unlocks only from the lock's unlock events
//! (kind 1) that it accepts. A grant's allocation stays *outstanding* while an unlock
//! event of it could still be accepted; afterwards only its confirmed unlocks count.
//!
//! When can that last event arrive? The lock unlocks with a grant only while its own clock
//! says `now < not_after`, and stamps the unlock event with that same clock, so an unlock
//! event of the grant has `timestamp_s < not_after`. The issuer accepts an event only
//! while `now_s ≤ timestamp_s + event_window_s` (LK-EVT-3, else `stale_event`), and each
//! event once (LK-EVT-4). Hence once the issuer's `now_s ≥ not_after + event_window_s`,
//! no further unlock event of that grant will ever be accepted: its confirmed count is
//! final. `max_clock_skew_s` is added as a margin for an event stamped a moment after its
//! unlock. A revocation the lock confirmed (a kind-4 event stamped `t`) ends the grant at
//! the lock earlier: its unlock events then have `timestamp_s ≤ t`, so the end becomes
//! `min(not_after, t + 1)`. A revocation the lock has not confirmed changes nothing: the
//! lock may still be using the grant.
//!
//! **Settled by the lock's own messages.** A lock's messages reach the issuer in the order
//! the lock sent them (one MQTT connection, QoS 1, one topic), and a live lock sends a
//! LockStatus every minute. So once the issuer has accepted a message from the lock stamped
//! (lock clock) at or after `not_after`, every unlock event of the grant, all stamped
//! before `not_after` and sent before that message, has arrived or is lost: the grant is
//! settled at once, not `event_window_s` later. Likewise for a confirmed revocation: the
//! revocation-applied event is itself such a message. This assumes in-order delivery and a
//! lock clock that does not run backwards; `docs/policy.md` says what breaks it. The
//! `not_after + max_clock_skew_s + event_window_s` bound still applies when the lock is
//! silent.
//!
//! The result is exact with respect to the accepted events: if each grant is issued with
//! at most the remaining allocation, the accepted unlock events of a rule never exceed its
//! `max_unlocks`. What it cannot see: unlocks whose events were lost (a lock's event
//! queue or rate limit dropped them, the broker lost them) or were refused as
//! `stale_event` (a lock offline for longer than `event_window_s`). Those unlocks happened
//! but are never counted, so a lock that loses events lets a guest unlock more often than
//! the rule says, up to the allocations of the grants concerned; the lock's own per-grant
//! count (LK-LIM-1) still bounds each grant.

/// The issuer tunables the accounting depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountingWindow {
    /// `max_clock_skew_s`: margin between an unlock and its event's timestamp.
    pub max_clock_skew_s: u64,
    /// `event_window_s` (LK-EVT-3): how old an event the issuer still accepts.
    pub event_window_s: u64,
}

/// One grant of the guest × lock, as the registry records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrantUsage {
    /// The grant's `max_unlocks` (LockGrant field); 0: unlimited.
    pub max_unlocks: u16,
    /// Unlock events (kind 1) of this grant the issuer has accepted.
    pub unlocks: u32,
    /// The grant's `not_after` (Unix seconds).
    pub not_after: u64,
    /// Lock timestamp (Unix seconds) of the accepted revocation-applied event (kind 4) of
    /// this grant, if the lock confirmed its revocation.
    pub revocation_applied_at: Option<u64>,
    /// The highest timestamp (the lock's clock, Unix ms) of the messages (events and
    /// statuses) the issuer accepted from this grant's lock, if any.
    pub lock_high_water_ms: Option<u64>,
}

impl GrantUsage {
    /// The first second (issuer time) at which no unlock event of this grant can be
    /// accepted any more: from then on its allocation is no longer outstanding.
    pub fn settles_at(&self, window: &AccountingWindow) -> u64 {
        let end_at_lock = match self.revocation_applied_at {
            Some(t) => self.not_after.min(t.saturating_add(1)),
            None => self.not_after,
        };
        end_at_lock
            .saturating_add(window.max_clock_skew_s)
            .saturating_add(window.event_window_s)
    }

    /// Whether the lock's own messages settled the grant: its revocation was confirmed,
    /// or the issuer accepted a message of the lock stamped at or after `not_after`. The
    /// lock's messages arrive in order, so no unlock event of the grant is still on its way.
    pub fn settled_by_lock(&self) -> bool {
        self.revocation_applied_at.is_some()
            || self
                .lock_high_water_ms
                .is_some_and(|t| t >= self.not_after.saturating_mul(1000))
    }

    /// Unlocks this grant may still produce that the issuer could accept: its allocation
    /// less its confirmed unlocks while unsettled, 0 afterwards (settled by the lock's
    /// messages, or past [`GrantUsage::settles_at`]). An unlimited grant counts as
    /// `u32::MAX` until it settles.
    pub fn outstanding(&self, now_s: u64, window: &AccountingWindow) -> u32 {
        if self.settled_by_lock() || now_s >= self.settles_at(window) {
            return 0;
        }
        let allocation = match self.max_unlocks {
            0 => u32::MAX,
            n => u32::from(n),
        };
        allocation.saturating_sub(self.unlocks)
    }
}

/// Usage of a rule's unlock limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Unlocks confirmed by accepted events, over all the rule's grants.
    pub confirmed_unlocks: u32,
    /// Unlocks the rule's unsettled grants may still produce.
    pub outstanding_allocation: u32,
}

impl Usage {
    /// Adds up `grants` (those issued under the rule, revoked or not) at `now_s`.
    /// Sums saturate: an overflow reads as "limit reached", never as room.
    pub fn from_grants<'a>(
        now_s: u64,
        window: &AccountingWindow,
        grants: impl IntoIterator<Item = &'a GrantUsage>,
    ) -> Usage {
        grants.into_iter().fold(Usage::default(), |u, g| Usage {
            confirmed_unlocks: u.confirmed_unlocks.saturating_add(g.unlocks),
            outstanding_allocation: u
                .outstanding_allocation
                .saturating_add(g.outstanding(now_s, window)),
        })
    }

    /// Unlocks left under a limit of `max`: `max − confirmed − outstanding`, at least 0.
    pub fn remaining(&self, max: u32) -> u32 {
        max.saturating_sub(self.confirmed_unlocks)
            .saturating_sub(self.outstanding_allocation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: AccountingWindow = AccountingWindow {
        max_clock_skew_s: 30,
        event_window_s: 3_600,
    };

    fn grant(max_unlocks: u16, unlocks: u32, not_after: u64) -> GrantUsage {
        GrantUsage {
            max_unlocks,
            unlocks,
            not_after,
            revocation_applied_at: None,
            lock_high_water_ms: None,
        }
    }

    #[test]
    fn an_allocation_is_outstanding_until_not_after_plus_skew_plus_event_window() {
        let g = grant(5, 2, 10_000);
        assert_eq!(g.settles_at(&WINDOW), 10_000 + 30 + 3_600);
        assert_eq!(g.outstanding(9_999, &WINDOW), 3);
        assert_eq!(g.outstanding(10_000, &WINDOW), 3);
        assert_eq!(g.outstanding(13_629, &WINDOW), 3);
        assert_eq!(g.outstanding(13_630, &WINDOW), 0);
    }

    #[test]
    fn after_settling_only_confirmed_unlocks_count() {
        let grants = [grant(5, 2, 10_000), grant(3, 1, 20_000)];
        assert_eq!(
            Usage::from_grants(15_000, &WINDOW, &grants),
            Usage {
                confirmed_unlocks: 3,
                outstanding_allocation: 2
            }
        );
        assert_eq!(
            Usage::from_grants(23_630, &WINDOW, &grants),
            Usage {
                confirmed_unlocks: 3,
                outstanding_allocation: 0
            }
        );
    }

    #[test]
    fn a_confirmed_revocation_settles_the_grant_at_once() {
        let mut g = grant(5, 1, 10_000);
        assert_eq!(g.outstanding(5_000, &WINDOW), 4);
        // The revocation-applied event is itself a message of the lock sent after every
        // unlock of the grant: nothing of the grant is still on its way.
        g.revocation_applied_at = Some(4_000);
        assert!(g.settled_by_lock());
        assert_eq!(g.outstanding(5_000, &WINDOW), 0);
        // The bound without the lock's messages is unchanged.
        assert_eq!(g.settles_at(&WINDOW), 4_001 + 30 + 3_600);
        g.revocation_applied_at = Some(12_000);
        assert_eq!(g.settles_at(&WINDOW), 13_630);
    }

    #[test]
    fn a_lock_message_stamped_at_or_after_not_after_settles_the_grant() {
        let mut g = grant(5, 2, 10_000);
        // The lock's latest message is from before the end: still outstanding.
        g.lock_high_water_ms = Some(9_999_999);
        assert!(!g.settled_by_lock());
        assert_eq!(g.outstanding(10_010, &WINDOW), 3);
        // Its heartbeat at not_after (lock clock) settles it, long before the event window.
        g.lock_high_water_ms = Some(10_000_000);
        assert!(g.settled_by_lock());
        assert_eq!(g.outstanding(10_010, &WINDOW), 0);
        let u = Usage::from_grants(10_010, &WINDOW, &[g]);
        assert_eq!(
            u,
            Usage {
                confirmed_unlocks: 2,
                outstanding_allocation: 0
            }
        );
        // A silent lock: only the bound settles it.
        g.lock_high_water_ms = None;
        assert_eq!(g.outstanding(13_629, &WINDOW), 3);
        assert_eq!(g.outstanding(13_630, &WINDOW), 0);
    }

    #[test]
    fn an_unlimited_grant_blocks_a_limit_until_it_settles() {
        let g = grant(0, 7, 10_000);
        assert_eq!(g.outstanding(10_000, &WINDOW), u32::MAX - 7);
        let u = Usage::from_grants(10_000, &WINDOW, &[g]);
        assert_eq!(u.remaining(1_000_000), 0);
        let u = Usage::from_grants(13_630, &WINDOW, &[g]);
        assert_eq!(u.outstanding_allocation, 0);
        assert_eq!(u.remaining(10), 3);
    }

    #[test]
    fn more_confirmed_unlocks_than_allocated_leave_nothing_outstanding() {
        // A lock that lost its count may let a grant overshoot; never negative.
        assert_eq!(grant(2, 5, 10_000).outstanding(0, &WINDOW), 0);
    }

    #[test]
    fn sums_saturate_instead_of_wrapping() {
        let grants = [grant(0, u32::MAX, 10_000), grant(0, 5, 10_000)];
        let u = Usage::from_grants(0, &WINDOW, &grants);
        assert_eq!(u.confirmed_unlocks, u32::MAX);
        assert_eq!(u.remaining(u32::MAX), 0);
        let far = grant(1, 0, u64::MAX);
        assert_eq!(far.settles_at(&WINDOW), u64::MAX);
        assert_eq!(far.outstanding(u64::MAX - 1, &WINDOW), 1);
    }

    #[test]
    fn remaining_is_max_less_confirmed_less_outstanding() {
        let u = Usage {
            confirmed_unlocks: 3,
            outstanding_allocation: 4,
        };
        assert_eq!(u.remaining(10), 3);
        assert_eq!(u.remaining(7), 0);
        assert_eq!(u.remaining(5), 0);
    }
}
