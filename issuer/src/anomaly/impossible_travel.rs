//! Detector 4: a guest unlocks at two locks too far apart for the time between.
//!
//! Method. For each guest the detector remembers its last `history_per_guest` unlocks (lock
//! and the lock's own timestamp). A new unlock at lock B is compared with each remembered
//! unlock at another lock A:
//!
//! - both locks have coordinates: the haversine distance `d` between them, less
//!   `distance_slack_m` (locks in one building, coordinate error), over the time between
//!   the unlocks plus `time_slack_s` (the two locks' clocks may disagree) gives a speed
//!   `v = max(0, d − slack) / (|Δt| + time_slack)`; above `max_speed_mps` is impossible
//!   travel, score `v / max_speed_mps`;
//! - either lock lacks coordinates: nothing can be said about distance. If
//!   `min_interval_without_coordinates_s` is set, unlocks at two different locks less than
//!   that apart are alerted (score `interval / |Δt|`); by default it is not set, because
//!   two locks without coordinates may be a building's street door and a flat's door
//!   seconds apart, and every such pair would alert.
//!
//! The worst pair is reported. Alerts are deduplicated per guest (`dedup_window_s` on the
//! issuer's clock). An unlock that raised the detector is marked suspect and is not used as
//! the starting point of later comparisons: whichever of the two was the impostor, the
//! guest's next ordinary unlock must not be measured from it (that would alert the real
//! guest walking home).
//!
//! Only unlocks count: a grant request travels over the Internet and says nothing about
//! where the phone is; a rejection may be an attacker relaying radio at a distance.

use std::collections::VecDeque;

use latchkey::{GuestId, LockId};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::alert::{Alert, AlertKind};
use super::bounded::LruMap;
use super::config::{AnomalyConfigError, check_f64, check_u64};
use super::locks::LockDirectory;
use super::record::{AuditRecord, RecordKind};

/// Settings of the impossible-travel detector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImpossibleTravelConfig {
    /// Whether the detector runs. Default true.
    pub enabled: bool,
    /// Fastest plausible door-to-door speed, m/s. Default 250 (an airliner's cruise speed:
    /// no real trip between two doors is faster); 50 catches more but alerts ordinary
    /// flights (docs/anomaly.md). > 0 and ≤ 300 000.
    pub max_speed_mps: f64,
    /// Distance subtracted before computing the speed, metres. Default 200; 0..=1 000 000.
    pub distance_slack_m: f64,
    /// Time added to the interval, seconds (clock disagreement between locks). Default 60;
    /// 0..=86 400.
    pub time_slack_s: u64,
    /// When a lock lacks coordinates: unlocks at two different locks closer in time than
    /// this alert. Default none (check disabled); 1..=86 400 when set.
    pub min_interval_without_coordinates_s: Option<u64>,
    /// Unlocks remembered per guest. Default 4; 1..=64.
    pub history_per_guest: usize,
    /// After an alert, the same guest is not alerted again for this long, seconds.
    /// Default 3 600; 0..=604 800.
    pub dedup_window_s: u64,
}

impl Default for ImpossibleTravelConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_speed_mps: 250.0,
            distance_slack_m: 200.0,
            time_slack_s: 60,
            min_interval_without_coordinates_s: None,
            history_per_guest: 4,
            dedup_window_s: 3_600,
        }
    }
}

impl ImpossibleTravelConfig {
    pub(crate) fn validate(&self) -> Result<(), AnomalyConfigError> {
        check_f64(
            "impossible_travel.max_speed_mps",
            self.max_speed_mps,
            0.0,
            true,
            300_000.0,
            "> 0 and <= 300000",
        )?;
        check_f64(
            "impossible_travel.distance_slack_m",
            self.distance_slack_m,
            0.0,
            false,
            1_000_000.0,
            "0..=1000000",
        )?;
        check_u64(
            "impossible_travel.time_slack_s",
            self.time_slack_s,
            0,
            86_400,
            "0..=86400",
        )?;
        if let Some(s) = self.min_interval_without_coordinates_s {
            check_u64(
                "impossible_travel.min_interval_without_coordinates_s",
                s,
                1,
                86_400,
                "1..=86400, or absent to disable",
            )?;
        }
        check_u64(
            "impossible_travel.history_per_guest",
            self.history_per_guest as u64,
            1,
            64,
            "1..=64",
        )?;
        check_u64(
            "impossible_travel.dedup_window_s",
            self.dedup_window_s,
            0,
            604_800,
            "0..=604800",
        )
    }
}

/// One remembered unlock.
#[derive(Debug, Clone, Copy)]
struct Visit {
    lock: LockId,
    event_ms: u64,
    /// It raised the detector: not a starting point for later comparisons.
    suspect: bool,
}

/// One guest's recent unlocks.
#[derive(Debug, Clone, Default)]
struct Trail {
    visits: VecDeque<Visit>,
    last_alert_at_ms: Option<u64>,
}

/// The worst pair found for a new unlock.
#[derive(Debug, Clone, Copy)]
struct Leg {
    from: Visit,
    interval_ms: u64,
    /// Metres, when both locks have coordinates.
    distance_m: Option<f64>,
    /// m/s, when both locks have coordinates.
    speed_mps: Option<f64>,
    score: f64,
}

/// Detector 4 (see the module docs).
#[derive(Debug, Clone)]
pub struct ImpossibleTravelDetector {
    config: ImpossibleTravelConfig,
    guests: LruMap<GuestId, Trail>,
}

impl ImpossibleTravelDetector {
    /// A detector with no history, holding at most `max_guests` guests.
    pub fn new(config: ImpossibleTravelConfig, max_guests: usize) -> Self {
        Self {
            config,
            guests: LruMap::new(max_guests),
        }
    }

    /// The leg from `from` to an unlock at `lock` at `event_ms`, if it is impossible.
    fn impossible_leg(
        &self,
        from: Visit,
        lock: LockId,
        event_ms: u64,
        locks: &LockDirectory,
    ) -> Option<Leg> {
        if from.suspect || from.lock == lock {
            return None;
        }
        let c = &self.config;
        let interval_ms = event_ms.abs_diff(from.event_ms);
        let coordinates = (
            locks.get(&from.lock).coordinates(),
            locks.get(&lock).coordinates(),
        );
        match coordinates {
            (Some(a), Some(b)) => {
                let distance_m = a.distance_m(&b);
                let seconds = interval_ms as f64 / 1000.0 + c.time_slack_s as f64;
                let speed = (distance_m - c.distance_slack_m).max(0.0) / seconds.max(1e-3);
                (speed > c.max_speed_mps).then_some(Leg {
                    from,
                    interval_ms,
                    distance_m: Some(distance_m),
                    speed_mps: Some(speed),
                    score: speed / c.max_speed_mps,
                })
            }
            _ => {
                let min_ms = c.min_interval_without_coordinates_s?.saturating_mul(1000);
                (interval_ms < min_ms).then_some(Leg {
                    from,
                    interval_ms,
                    distance_m: None,
                    speed_mps: None,
                    score: min_ms as f64 / (interval_ms.max(1) as f64),
                })
            }
        }
    }

    /// Scores one record; pushes an `impossible_travel` alert if it is an unlock too far
    /// from one of the guest's recent unlocks.
    pub fn observe(&mut self, record: &AuditRecord, locks: &LockDirectory, out: &mut Vec<Alert>) {
        if !self.config.enabled || record.kind != RecordKind::Unlock {
            return;
        }
        let (Some(guest), Some(lock)) = (record.guest_id, record.lock_id) else {
            return;
        };
        let event_ms = record.event_time_ms();
        let worst = self.guests.get(&guest).and_then(|trail| {
            trail
                .visits
                .iter()
                .filter_map(|v| self.impossible_leg(*v, lock, event_ms, locks))
                .max_by(|a, b| a.score.total_cmp(&b.score))
        });
        let dedup_ms = self.config.dedup_window_s.saturating_mul(1000);
        let history = self.config.history_per_guest.max(1);
        let max_speed = self.config.max_speed_mps;
        let trail = self.guests.touch_or_insert_with(guest, Trail::default);
        trail.visits.push_back(Visit {
            lock,
            event_ms,
            suspect: worst.is_some(),
        });
        while trail.visits.len() > history {
            trail.visits.pop_front();
        }
        let Some(leg) = worst else { return };
        if let Some(last) = trail.last_alert_at_ms
            && record.at_ms.saturating_sub(last) < dedup_ms
        {
            return;
        }
        trail.last_alert_at_ms = Some(record.at_ms);
        out.push(Alert::new(
            AlertKind::ImpossibleTravel,
            record.at_ms,
            Some(lock),
            Some(guest),
            leg.score,
            &format!("{}/{}", leg.from.lock, leg.from.event_ms),
            json!({
                "method": if leg.distance_m.is_some() { "distance" } else { "min_interval" },
                "from_lock_id": leg.from.lock.to_string(),
                "from_event_time_ms": leg.from.event_ms,
                "event_time_ms": event_ms,
                "interval_s": leg.interval_ms as f64 / 1000.0,
                "distance_m": leg.distance_m,
                "speed_mps": leg.speed_mps,
                "max_speed_mps": max_speed,
                "min_interval_without_coordinates_s":
                    self.config.min_interval_without_coordinates_s,
                "grant_id": record.grant_id.map(|g| g.to_string()),
            }),
        ));
    }

    /// How many guests are tracked.
    pub fn tracked(&self) -> usize {
        self.guests.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::anomaly::geo::Coordinates;
    use crate::anomaly::locks::LockInfo;

    const T0: u64 = 1_736_121_600_000;
    const MIN: u64 = 60_000;
    const GUEST: GuestId = GuestId([1; 16]);
    const BERLIN_A: LockId = LockId([0xa1; 16]);
    const BERLIN_B: LockId = LockId([0xa2; 16]);
    const LISBON: LockId = LockId([0xb1; 16]);
    const NOWHERE_1: LockId = LockId([0xc1; 16]);
    const NOWHERE_2: LockId = LockId([0xc2; 16]);

    fn directory() -> LockDirectory {
        let mut dir = LockDirectory::new();
        let at = |lat, lon| Some(Coordinates::new(lat, lon).unwrap());
        dir.insert(
            BERLIN_A,
            LockInfo::named("Europe/Berlin", at(52.5200, 13.4050)).unwrap(),
        );
        // About 5.6 km east of BERLIN_A.
        dir.insert(
            BERLIN_B,
            LockInfo::named("Europe/Berlin", at(52.5200, 13.4880)).unwrap(),
        );
        dir.insert(
            LISBON,
            LockInfo::named("Europe/Lisbon", at(38.7223, -9.1393)).unwrap(),
        );
        dir.insert(NOWHERE_1, LockInfo::named("Europe/Berlin", None).unwrap());
        dir.insert(NOWHERE_2, LockInfo::named("Europe/Berlin", None).unwrap());
        dir
    }

    fn unlock(at_ms: u64, lock: LockId) -> AuditRecord {
        AuditRecord::new(at_ms, RecordKind::Unlock)
            .with_lock(lock)
            .with_guest(GUEST)
    }

    fn run(d: &mut ImpossibleTravelDetector, records: &[AuditRecord]) -> Vec<Alert> {
        let dir = directory();
        let mut out = Vec::new();
        for r in records {
            d.observe(r, &dir, &mut out);
        }
        out
    }

    #[test]
    fn berlin_then_lisbon_within_an_hour_is_impossible() {
        let mut d = ImpossibleTravelDetector::new(ImpossibleTravelConfig::default(), 10);
        let out = run(
            &mut d,
            &[unlock(T0, BERLIN_A), unlock(T0 + 60 * MIN, LISBON)],
        );
        assert_eq!(out.len(), 1);
        let a = &out[0];
        assert_eq!(a.kind, AlertKind::ImpossibleTravel);
        assert_eq!((a.lock_id, a.guest_id), (Some(LISBON), Some(GUEST)));
        assert_eq!(a.detail["method"], "distance");
        assert_eq!(a.detail["from_lock_id"], BERLIN_A.to_string());
        let speed = a.detail["speed_mps"].as_f64().unwrap();
        // ≈ 2 311 km in 3 660 s.
        assert!((600.0..650.0).contains(&speed), "{speed}");
        assert!((a.score - speed / 250.0).abs() < 1e-9);
    }

    #[test]
    fn a_plausible_trip_between_nearby_locks_is_not_alerted() {
        let mut d = ImpossibleTravelDetector::new(ImpossibleTravelConfig::default(), 10);
        // 5.6 km in 10 minutes: 9 m/s.
        let out = run(
            &mut d,
            &[unlock(T0, BERLIN_A), unlock(T0 + 10 * MIN, BERLIN_B)],
        );
        assert!(out.is_empty(), "{out:?}");
    }

    #[test]
    fn the_speed_threshold_is_a_boundary() {
        // 2 311 km / 250 m/s ≈ 9 245 s; with 60 s slack the boundary is ≈ 9 185 s.
        let berlin_lisbon = {
            let dir = directory();
            dir.get(&BERLIN_A)
                .coordinates()
                .unwrap()
                .distance_m(&dir.get(&LISBON).coordinates().unwrap())
        };
        let boundary_ms = ((berlin_lisbon - 200.0) / 250.0 - 60.0) * 1000.0;
        let mut d = ImpossibleTravelDetector::new(ImpossibleTravelConfig::default(), 10);
        let later = (boundary_ms + 1_000.0) as u64;
        assert!(run(&mut d, &[unlock(T0, BERLIN_A), unlock(T0 + later, LISBON)]).is_empty());
        let mut d = ImpossibleTravelDetector::new(ImpossibleTravelConfig::default(), 10);
        let sooner = (boundary_ms - 1_000.0) as u64;
        assert_eq!(
            run(&mut d, &[unlock(T0, BERLIN_A), unlock(T0 + sooner, LISBON)]).len(),
            1
        );
    }

    #[test]
    fn the_lock_timestamps_are_used_and_order_does_not_matter() {
        let mut d = ImpossibleTravelDetector::new(ImpossibleTravelConfig::default(), 10);
        // Lisbon's event arrives first although it happened 20 minutes after Berlin's.
        let lisbon = unlock(T0 + 2 * MIN, LISBON).with_lock_time(T0 + 20 * MIN);
        let berlin = unlock(T0 + 3 * MIN, BERLIN_A).with_lock_time(T0);
        let out = run(&mut d, &[lisbon, berlin]);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].detail["interval_s"], 1_200.0);
    }

    #[test]
    fn without_coordinates_the_check_is_disabled_by_default() {
        let mut d = ImpossibleTravelDetector::new(ImpossibleTravelConfig::default(), 10);
        let out = run(
            &mut d,
            &[unlock(T0, NOWHERE_1), unlock(T0 + 1_000, NOWHERE_2)],
        );
        assert!(out.is_empty());
        let mut d = ImpossibleTravelDetector::new(ImpossibleTravelConfig::default(), 10);
        let out = run(&mut d, &[unlock(T0, NOWHERE_1), unlock(T0 + 1_000, LISBON)]);
        assert!(out.is_empty());
    }

    #[test]
    fn without_coordinates_a_minimum_interval_can_be_required() {
        let config = ImpossibleTravelConfig {
            min_interval_without_coordinates_s: Some(120),
            ..ImpossibleTravelConfig::default()
        };
        let mut d = ImpossibleTravelDetector::new(config.clone(), 10);
        let out = run(
            &mut d,
            &[unlock(T0, NOWHERE_1), unlock(T0 + 30_000, NOWHERE_2)],
        );
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].detail["method"], "min_interval");
        assert_eq!(out[0].score, 4.0);
        let mut d = ImpossibleTravelDetector::new(config, 10);
        let out = run(
            &mut d,
            &[unlock(T0, NOWHERE_1), unlock(T0 + 120_000, NOWHERE_2)],
        );
        assert!(out.is_empty());
    }

    #[test]
    fn the_same_lock_twice_is_never_travel() {
        let config = ImpossibleTravelConfig {
            min_interval_without_coordinates_s: Some(120),
            ..ImpossibleTravelConfig::default()
        };
        let mut d = ImpossibleTravelDetector::new(config, 10);
        let out = run(&mut d, &[unlock(T0, NOWHERE_1), unlock(T0 + 1, NOWHERE_1)]);
        assert!(out.is_empty());
    }

    #[test]
    fn alerts_are_deduplicated_per_guest() {
        let mut d = ImpossibleTravelDetector::new(ImpossibleTravelConfig::default(), 10);
        let out = run(
            &mut d,
            &[
                unlock(T0, BERLIN_A),
                unlock(T0 + 10 * MIN, LISBON),
                unlock(T0 + 20 * MIN, BERLIN_B),
                unlock(T0 + 30 * MIN, LISBON),
            ],
        );
        assert_eq!(out.len(), 1, "{out:?}");
    }

    #[test]
    fn a_suspect_unlock_is_not_the_start_of_later_legs() {
        let mut d = ImpossibleTravelDetector::new(ImpossibleTravelConfig::default(), 10);
        // The impostor in Lisbon, then (after the dedup window) the real guest at home
        // again: measured from Lisbon it would be impossible, but Lisbon is suspect and
        // BERLIN_A → BERLIN_B is an ordinary trip.
        let out = run(
            &mut d,
            &[
                unlock(T0, BERLIN_A),
                unlock(T0 + 30 * MIN, LISBON),
                unlock(T0 + 100 * MIN, BERLIN_B),
            ],
        );
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].lock_id, Some(LISBON));
    }

    #[test]
    fn history_is_bounded_per_guest() {
        let config = ImpossibleTravelConfig {
            history_per_guest: 2,
            ..ImpossibleTravelConfig::default()
        };
        let mut d = ImpossibleTravelDetector::new(config, 10);
        // Berlin, then two Lisbon unlocks a day later push Berlin out of the history.
        let day = 24 * 60 * MIN;
        let records = [
            unlock(T0, BERLIN_A),
            unlock(T0 + day, LISBON),
            unlock(T0 + day + MIN, LISBON),
        ];
        assert!(run(&mut d, &records).is_empty());
        assert_eq!(d.guests.get(&GUEST).unwrap().visits.len(), 2);
    }
}
