//! What a driver gives the lock to build a LockStatus (spec §6.10): its own health figures and
//! the rejection counters it aggregated since its previous status (§7.2.9: beacon rejections
//! are counted, not sent one by one).

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use crate::Reason;
use crate::frame::{MAX_STATUS_COUNTERS, StatusCounter, StatusFlags};

/// The driver's part of a LockStatus; the lock adds its session, revocation and lockout
/// counts ([`Lock::status_message`](super::Lock::status_message)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StatusInput<'a> {
    /// Seconds since the lock started.
    pub uptime_s: u32,
    /// Battery charge in percent (0..=100); `None` for no battery or unknown.
    pub battery_pct: Option<u8>,
    /// Power, clock and tamper flags.
    pub flags: StatusFlags,
    /// Rejections since the previous status, per reason (repeats are summed).
    pub counters: &'a [(Reason, u32)],
}

/// The counters of a LockStatus: one per reason with a non-zero count, sorted by code; when
/// more than [`MAX_STATUS_COUNTERS`] reasons have counts, the largest counts are kept (ties:
/// the smaller code).
pub(crate) fn aggregate(counters: &[(Reason, u32)]) -> Vec<StatusCounter> {
    let mut by_code: BTreeMap<u16, u32> = BTreeMap::new();
    for (r, n) in counters.iter().filter(|(_, n)| *n > 0) {
        let c = by_code.entry(r.code()).or_default();
        *c = c.saturating_add(*n);
    }
    let mut v: Vec<StatusCounter> = by_code
        .into_iter()
        .map(|(reason, count)| StatusCounter { reason, count })
        .collect();
    if v.len() > MAX_STATUS_COUNTERS {
        v.sort_by(|a, b| b.count.cmp(&a.count).then(a.reason.cmp(&b.reason)));
        v.truncate(MAX_STATUS_COUNTERS);
        v.sort_by_key(|c| c.reason);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_merge_per_reason_drop_zeros_and_sort_by_code() {
        let v = aggregate(&[
            (Reason::Replay, 3),
            (Reason::UnknownTag, 5),
            (Reason::Replay, 4),
            (Reason::BadBeaconMac, 0),
            (Reason::UnknownTag, u32::MAX),
        ]);
        assert_eq!(
            v,
            [
                StatusCounter {
                    reason: 19,
                    count: u32::MAX
                },
                StatusCounter {
                    reason: 24,
                    count: 7
                },
            ]
        );
    }

    #[test]
    fn beyond_32_reasons_the_largest_counts_are_kept() {
        let all: Vec<(Reason, u32)> = Reason::ALL
            .iter()
            .enumerate()
            .map(|(i, r)| (*r, i as u32 + 1))
            .collect();
        assert!(all.len() > MAX_STATUS_COUNTERS);
        let v = aggregate(&all);
        assert_eq!(v.len(), MAX_STATUS_COUNTERS);
        assert!(v.windows(2).all(|w| w[0].reason < w[1].reason));
        let smallest_kept = v.iter().map(|c| c.count).min();
        assert_eq!(
            smallest_kept,
            Some((all.len() - MAX_STATUS_COUNTERS + 1) as u32)
        );
    }
}
