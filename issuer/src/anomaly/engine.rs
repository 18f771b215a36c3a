//! The engine: every detector over one stream of audit records.

use super::alert::Alert;
use super::config::{AnomalyConfig, AnomalyConfigError};
use super::failure_burst::FailureBurstDetector;
use super::impossible_travel::ImpossibleTravelDetector;
use super::locks::LockDirectory;
use super::record::AuditRecord;
use super::revoked_guest::RevokedGuestDetector;
use super::unusual_hour::UnusualHourDetector;

/// Runs the four detectors over audit records, one at a time, in the order they were
/// recorded. Sans-IO: time comes from the records, nothing is read or written; the same
/// records give the same alerts (with the same ids). Memory is bounded by
/// [`MemoryLimits`](super::MemoryLimits).
#[derive(Debug, Clone)]
pub struct AnomalyEngine {
    unusual_hour: UnusualHourDetector,
    failure_burst: FailureBurstDetector,
    revoked_guest: RevokedGuestDetector,
    impossible_travel: ImpossibleTravelDetector,
    records_observed: u64,
}

/// How much state the engine holds (for metrics and the memory tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineState {
    /// Records observed since the engine was created.
    pub records_observed: u64,
    /// Guest × lock hour histograms.
    pub hour_histograms: usize,
    /// Hour histograms evicted to respect the cap.
    pub hour_histograms_evicted: u64,
    /// Per-lock failure windows.
    pub lock_failure_windows: usize,
    /// Per-guest failure windows.
    pub guest_failure_windows: usize,
    /// Guests tracked by the revoked-guest detector.
    pub revoked_guests: usize,
    /// Guests tracked by the impossible-travel detector.
    pub travelling_guests: usize,
}

impl AnomalyEngine {
    /// An engine with no history. Fails if a setting is out of range.
    pub fn new(config: AnomalyConfig) -> Result<Self, AnomalyConfigError> {
        config.validate()?;
        let limits = config.limits;
        Ok(Self {
            unusual_hour: UnusualHourDetector::new(
                config.unusual_hour,
                limits.max_guest_lock_pairs,
            ),
            failure_burst: FailureBurstDetector::new(
                config.failure_burst,
                limits.max_locks,
                limits.max_guests,
            ),
            revoked_guest: RevokedGuestDetector::new(config.revoked_guest, limits.max_guests),
            impossible_travel: ImpossibleTravelDetector::new(
                config.impossible_travel,
                limits.max_guests,
            ),
            records_observed: 0,
        })
    }

    /// Scores one record and returns the alerts it raises (usually none), in detector
    /// order: unusual hour, failure burst / lockout, revoked guest, impossible travel.
    /// Never panics, whatever the record holds.
    pub fn observe(&mut self, record: &AuditRecord, locks: &LockDirectory) -> Vec<Alert> {
        self.records_observed = self.records_observed.saturating_add(1);
        let mut alerts = Vec::new();
        self.unusual_hour.observe(record, locks, &mut alerts);
        self.failure_burst.observe(record, &mut alerts);
        self.revoked_guest.observe(record, &mut alerts);
        self.impossible_travel.observe(record, locks, &mut alerts);
        alerts
    }

    /// How much state the engine holds.
    pub fn state(&self) -> EngineState {
        let (lock_failure_windows, guest_failure_windows) = self.failure_burst.tracked();
        EngineState {
            records_observed: self.records_observed,
            hour_histograms: self.unusual_hour.tracked_pairs(),
            hour_histograms_evicted: self.unusual_hour.evicted_pairs(),
            lock_failure_windows,
            guest_failure_windows,
            revoked_guests: self.revoked_guest.tracked(),
            travelling_guests: self.impossible_travel.tracked(),
        }
    }
}

#[cfg(test)]
mod tests {
    use latchkey::{GuestId, LockId};

    use super::*;
    use crate::anomaly::config::MemoryLimits;
    use crate::anomaly::record::RecordKind;

    const T0: u64 = 1_736_121_600_000;

    fn id16(n: u32) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[..4].copy_from_slice(&n.to_be_bytes());
        b
    }

    #[test]
    fn an_invalid_config_is_refused() {
        let mut config = AnomalyConfig::default();
        config.impossible_travel.max_speed_mps = 0.0;
        let err = AnomalyEngine::new(config).unwrap_err();
        assert_eq!(err.field, "impossible_travel.max_speed_mps");
    }

    #[test]
    fn memory_stays_within_the_limits_however_many_guests_and_locks() {
        let config = AnomalyConfig {
            limits: MemoryLimits {
                max_guests: 50,
                max_locks: 20,
                max_guest_lock_pairs: 100,
            },
            ..AnomalyConfig::default()
        };
        let mut engine = AnomalyEngine::new(config).unwrap();
        let locks = LockDirectory::new();
        for i in 0..5_000u32 {
            let base = AuditRecord::new(T0 + u64::from(i) * 1_000, RecordKind::Unlock)
                .with_lock(LockId(id16(i % 300)))
                .with_guest(GuestId(id16(i)));
            engine.observe(&base, &locks);
            let mut failure = base.clone();
            failure.kind = RecordKind::Rejection;
            failure.reason = Some("bad_response_mac".into());
            engine.observe(&failure, &locks);
            let mut revoked = failure.clone();
            revoked.reason = Some("session_revoked".into());
            engine.observe(&revoked, &locks);
        }
        let s = engine.state();
        assert_eq!(s.records_observed, 15_000);
        assert_eq!(s.hour_histograms, 100);
        assert_eq!(s.hour_histograms_evicted, 4_900);
        assert_eq!(s.lock_failure_windows, 20);
        assert_eq!(s.guest_failure_windows, 50);
        assert_eq!(s.revoked_guests, 50);
        assert_eq!(s.travelling_guests, 50);
    }

    #[test]
    fn the_same_records_give_the_same_alerts() {
        let locks = LockDirectory::new();
        let records: Vec<_> = (0..200u32)
            .map(|i| {
                AuditRecord::new(T0 + u64::from(i) * 7_000, RecordKind::Rejection)
                    .with_lock(LockId(id16(i % 3)))
                    .with_guest(GuestId(id16(i % 5)))
                    .with_reason(if i % 2 == 0 {
                        "bad_response_mac"
                    } else {
                        "session_revoked"
                    })
            })
            .collect();
        let run = || {
            let mut engine = AnomalyEngine::new(AnomalyConfig::default()).unwrap();
            records
                .iter()
                .flat_map(|r| engine.observe(r, &locks))
                .collect::<Vec<_>>()
        };
        let first = run();
        assert!(!first.is_empty());
        assert_eq!(first, run());
    }

    #[test]
    fn garbage_records_never_panic() {
        let mut engine = AnomalyEngine::new(AnomalyConfig::default()).unwrap();
        let locks = LockDirectory::new();
        for kind in RecordKind::ALL {
            for at in [0, 1, u64::MAX - 1, u64::MAX] {
                let r = AuditRecord::new(at, *kind)
                    .with_lock(LockId::ZERO)
                    .with_guest(GuestId::ZERO)
                    .with_lock_time(u64::MAX - at)
                    .with_reason("lockout")
                    .with_counter("bad_beacon_mac", u32::MAX);
                engine.observe(&r, &locks);
                engine.observe(&AuditRecord::new(at, *kind), &locks);
            }
        }
        assert_eq!(engine.state().records_observed, 72);
    }
}
