//! Notices: things the lock decided on its own (a lockout started or ended) that the driver
//! reports, e.g. as LockEvents of kinds 5 and 6. Pulled sans-IO style with
//! [`Lock::poll_notice`](super::Lock::poll_notice); the driver drains them after every input
//! and timeout.

use alloc::collections::VecDeque;

use crate::{GrantId, GuestId, Reason, SessionId, UnixMillis};

/// Something the lock reports without being asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockNotice {
    /// A guest reached `lockout_threshold` failed handshakes (LK-LCK-1): its pending
    /// authentications were dropped and its beacons and Responses are refused `locked_out`
    /// until `until` (LK-LCK-2).
    LockoutStarted {
        /// The locked-out guest.
        guest_id: GuestId,
        /// The grant of the failure that triggered the lockout.
        grant_id: GrantId,
        /// Its session.
        session_id: SessionId,
        /// The reason of that failure.
        reason: Reason,
        /// When the lockout ends (lock clock).
        until: UnixMillis,
    },
    /// A lockout ended at its `until` (LK-LCK-3).
    LockoutEnded {
        /// The guest.
        guest_id: GuestId,
        /// The grant of the failure that triggered the lockout.
        grant_id: GrantId,
        /// Its session.
        session_id: SessionId,
    },
}

/// A bounded queue of notices. Each guest record yields at most one notice per lockout start
/// and end, so a driver that drains after every input never comes near the cap; one that
/// never drains loses the oldest notices, never memory.
#[derive(Debug)]
pub(crate) struct Notices {
    cap: usize,
    queue: VecDeque<LockNotice>,
}

impl Notices {
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            cap: cap.max(1),
            queue: VecDeque::new(),
        }
    }

    pub(crate) fn push(&mut self, n: LockNotice) {
        if self.queue.len() >= self.cap {
            self.queue.pop_front();
        }
        self.queue.push_back(n);
    }

    pub(crate) fn pop(&mut self) -> Option<LockNotice> {
        self.queue.pop_front()
    }

    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ended(i: u8) -> LockNotice {
        LockNotice::LockoutEnded {
            guest_id: GuestId([i; 16]),
            grant_id: GrantId([i; 16]),
            session_id: SessionId([i; 8]),
        }
    }

    #[test]
    fn the_queue_is_fifo_and_bounded_dropping_the_oldest() {
        let mut q = Notices::new(2);
        q.push(ended(1));
        q.push(ended(2));
        q.push(ended(3));
        assert_eq!(q.len(), 2);
        assert_eq!(q.pop(), Some(ended(2)));
        assert_eq!(q.pop(), Some(ended(3)));
        assert_eq!(q.pop(), None);
    }
}
