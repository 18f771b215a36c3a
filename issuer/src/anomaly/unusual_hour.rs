//! Detector 1: a guest unlocks at an hour unusual for them at this lock.
//!
//! Method. For each guest × lock pair the detector keeps a histogram of that guest's
//! unlocks by local hour (the lock's time zone, DST-correct), each unlock weighing 1 and
//! every weight decaying exponentially with a half-life (default 30 days), so old habits
//! fade and the history is "about the last two months". It also keeps one population
//! histogram of everyone's unlocks at every lock, by local hour, decayed alike. When an
//! unlock arrives at local hour `h`, the histograms first decay to its time; then, if the
//! pair's total weight `W` (the decayed number of prior unlocks) is at least
//! `min_history`, the smoothed probability of the window `h − k ..= h + k` (wrapping at
//! midnight) is
//!
//! ```text
//! n = Σ_{d=-k..=k} w[(h+d) mod 24]                      the guest's window
//! q = (population window + (2k+1)) / (population total + 24)
//! p = (n + (2k+1)·α + β·q) / (W + 24·α + β)
//! ```
//!
//! Laplace smoothing (α per hour) keeps `p > 0`; the β pseudo-unlocks spread like the
//! population's make an hour when many people unlock (Saturday noon) far less surprising
//! than one when nobody does (03:00): with plain Laplace smoothing (β = 0) a month of
//! history cannot tell the two apart, and the false alerts are five times as many
//! (`docs/anomaly.md`). The unlock is alerted when `p < max_probability`, with score
//! `−ln p`. The unlock is then added to both histograms (after scoring, so an alert never
//! scores itself; a new habit is learned and stops alerting after a few occurrences).
//!
//! Only `unlock` records with both a guest and a lock are looked at; the hour is taken
//! from the lock's own timestamp when the record has one.

use latchkey::{GuestId, LockId};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::alert::{Alert, AlertKind};
use super::bounded::LruMap;
use super::config::{AnomalyConfigError, check_f64, check_u64};
use super::locks::LockDirectory;
use super::record::{AuditRecord, RecordKind};

/// Settings of the unusual-hour detector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UnusualHourConfig {
    /// Whether the detector runs. Default true.
    pub enabled: bool,
    /// Decayed number of prior unlocks of the guest at the lock before any alert (a guest
    /// with less history has no habits to break). Default 20; 1..=10 000.
    pub min_history: f64,
    /// Half-life of an unlock's weight, seconds. Default 30 days; 1 hour..=10 years.
    pub half_life_s: u64,
    /// Laplace pseudo-count α added to each hour. Default 0.05; > 0 and ≤ 100.
    pub smoothing: f64,
    /// β: pseudo-unlocks spread like everyone's unlocks (all guests, all locks, by local
    /// hour), so an hour when people unlock (Saturday noon) is less surprising than one
    /// when nobody does (03:00). 0 gives plain Laplace smoothing. Default 32; 0..=1000.
    pub population_weight: f64,
    /// `k`: hours on each side of the unlock's hour that count as "the same time" (an
    /// 07:55 habit covers 08:05). Default 1; 0..=11.
    pub neighbour_hours: u8,
    /// Alert when the window's smoothed probability is below this. Default 0.01; in (0, 1).
    pub max_probability: f64,
}

impl Default for UnusualHourConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            min_history: 20.0,
            half_life_s: 30 * 86_400,
            smoothing: 0.05,
            population_weight: 32.0,
            neighbour_hours: 1,
            max_probability: 0.01,
        }
    }
}

impl UnusualHourConfig {
    pub(crate) fn validate(&self) -> Result<(), AnomalyConfigError> {
        check_f64(
            "unusual_hour.min_history",
            self.min_history,
            1.0,
            false,
            10_000.0,
            "1..=10000",
        )?;
        check_u64(
            "unusual_hour.half_life_s",
            self.half_life_s,
            3_600,
            315_360_000,
            "3600..=315360000 (1 hour to 10 years)",
        )?;
        check_f64(
            "unusual_hour.smoothing",
            self.smoothing,
            0.0,
            true,
            100.0,
            "> 0 and <= 100",
        )?;
        check_f64(
            "unusual_hour.population_weight",
            self.population_weight,
            0.0,
            false,
            1_000.0,
            "0..=1000",
        )?;
        check_u64(
            "unusual_hour.neighbour_hours",
            u64::from(self.neighbour_hours),
            0,
            11,
            "0..=11",
        )?;
        check_f64(
            "unusual_hour.max_probability",
            self.max_probability,
            0.0,
            true,
            1.0 - f64::EPSILON,
            "> 0 and < 1",
        )
    }
}

/// One guest's unlocks at one lock by local hour, with decayed weights.
#[derive(Debug, Clone, PartialEq)]
struct HourHistogram {
    weights: [f64; 24],
    /// Unlocks ever added (not decayed), for the evidence.
    unlocks: u64,
    /// The event time the weights are decayed to.
    decayed_to_ms: u64,
}

impl HourHistogram {
    fn new(now_ms: u64) -> Self {
        Self {
            weights: [0.0; 24],
            unlocks: 0,
            decayed_to_ms: now_ms,
        }
    }

    /// Decays the weights to `t_ms`. An unlock older than the last one (a late event)
    /// decays nothing: weights never grow.
    fn decay_to(&mut self, t_ms: u64, half_life_ms: f64) {
        if t_ms <= self.decayed_to_ms {
            return;
        }
        let factor = (-((t_ms - self.decayed_to_ms) as f64) / half_life_ms).exp2();
        for w in &mut self.weights {
            *w *= factor;
        }
        self.decayed_to_ms = t_ms;
    }

    /// The decayed number of unlocks.
    fn mass(&self) -> f64 {
        self.weights.iter().sum()
    }

    /// The weight of the hours `hour − k ..= hour + k` (wrapping at midnight).
    fn window(&self, hour: u8, k: u8) -> f64 {
        // k ≥ 12 would count an hour twice; validation keeps it ≤ 11, this keeps it sane.
        let k = i32::from(k.min(11));
        (-k..=k)
            .map(|d| self.weights[(i32::from(hour) + d).rem_euclid(24) as usize])
            .sum()
    }

    /// The hours holding at least a tenth of the weight, most used first: the guest's
    /// habits, for the evidence.
    fn usual_hours(&self) -> Vec<u8> {
        let mass = self.mass();
        let mut hours: Vec<(u8, f64)> = (0u8..24)
            .zip(self.weights)
            .filter(|&(_, w)| mass > 0.0 && w >= 0.1 * mass)
            .collect();
        hours.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        hours.into_iter().map(|(h, _)| h).collect()
    }
}

/// Detector 1 (see the module docs).
#[derive(Debug, Clone)]
pub struct UnusualHourDetector {
    config: UnusualHourConfig,
    pairs: LruMap<(GuestId, LockId), HourHistogram>,
    /// Every guest's unlocks at every lock, by local hour: the prior.
    population: HourHistogram,
}

impl UnusualHourDetector {
    /// A detector with no history, holding at most `max_pairs` guest × lock histograms.
    pub fn new(config: UnusualHourConfig, max_pairs: usize) -> Self {
        Self {
            config,
            pairs: LruMap::new(max_pairs),
            population: HourHistogram::new(0),
        }
    }

    /// The smoothed probability that this guest unlocks at this lock within `k` hours of
    /// `hour`, and the population's share of that window (itself smoothed by one
    /// pseudo-unlock per hour):
    ///
    /// ```text
    /// q = (population window + (2k+1)) / (population mass + 24)
    /// p = (guest window + (2k+1)·α + β·q) / (guest mass + 24·α + β)
    /// ```
    fn probability(
        c: &UnusualHourConfig,
        population: &HourHistogram,
        histogram: &HourHistogram,
        hour: u8,
    ) -> (f64, f64) {
        let k = c.neighbour_hours.min(11);
        let width = f64::from(2 * k + 1);
        let q = (population.window(hour, k) + width) / (population.mass() + 24.0);
        let p = (histogram.window(hour, k) + width * c.smoothing + c.population_weight * q)
            / (histogram.mass() + 24.0 * c.smoothing + c.population_weight);
        (p, q)
    }

    /// Scores one record; pushes an alert if it is an unlock at an unusual hour.
    pub fn observe(&mut self, record: &AuditRecord, locks: &LockDirectory, out: &mut Vec<Alert>) {
        if !self.config.enabled || record.kind != RecordKind::Unlock {
            return;
        }
        let (Some(guest), Some(lock)) = (record.guest_id, record.lock_id) else {
            return;
        };
        let info = locks.get(&lock);
        let t = record.event_time_ms();
        let local = info.local_time(t);
        let half_life_ms = self.config.half_life_s as f64 * 1000.0;
        self.population.decay_to(t, half_life_ms);
        let histogram = self
            .pairs
            .touch_or_insert_with((guest, lock), || HourHistogram::new(t));
        histogram.decay_to(t, half_life_ms);
        let history = histogram.mass();
        if history >= self.config.min_history {
            let (p, population_share) =
                Self::probability(&self.config, &self.population, histogram, local.hour);
            if p < self.config.max_probability {
                out.push(Alert::new(
                    AlertKind::UnusualHour,
                    record.at_ms,
                    Some(lock),
                    Some(guest),
                    -p.ln(),
                    "",
                    json!({
                        "event_time_ms": t,
                        "local_time": local.to_string(),
                        "local_hour": local.hour,
                        "time_zone": info.time_zone_name(),
                        "probability": p,
                        "max_probability": self.config.max_probability,
                        "population_share": population_share,
                        "history": history,
                        "unlocks_seen": histogram.unlocks,
                        "usual_hours": histogram.usual_hours(),
                        "grant_id": record.grant_id.map(|g| g.to_string()),
                    }),
                ));
            }
        }
        let hour = usize::from(local.hour);
        histogram.weights[hour] += 1.0;
        histogram.unlocks = histogram.unlocks.saturating_add(1);
        self.population.weights[hour] += 1.0;
        self.population.unlocks = self.population.unlocks.saturating_add(1);
    }

    /// How many guest × lock histograms are held.
    pub fn tracked_pairs(&self) -> usize {
        self.pairs.len()
    }

    /// How many histograms were evicted to respect the cap.
    pub fn evicted_pairs(&self) -> u64 {
        self.pairs.evicted()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::anomaly::locks::LockInfo;

    const HOUR_MS: u64 = 3_600_000;
    const DAY_MS: u64 = 24 * HOUR_MS;
    /// 2025-01-06 00:00 UTC, a Monday.
    const T0: u64 = 1_736_121_600_000;
    const GUEST: GuestId = GuestId([1; 16]);
    const LOCK: LockId = LockId([2; 16]);

    fn unlock(at_ms: u64) -> AuditRecord {
        AuditRecord::new(at_ms, RecordKind::Unlock)
            .with_lock(LOCK)
            .with_guest(GUEST)
    }

    /// The defaults without the population prior and with a shorter history, so one
    /// guest's habits alone decide (p = (window + 3α) / (W + 24α)).
    fn laplace_only() -> UnusualHourConfig {
        UnusualHourConfig {
            population_weight: 0.0,
            min_history: 10.0,
            ..UnusualHourConfig::default()
        }
    }

    fn utc_directory() -> LockDirectory {
        let mut dir = LockDirectory::new();
        dir.insert(LOCK, LockInfo::named("UTC", None).unwrap());
        dir
    }

    /// Feeds a morning habit: one unlock at 08:00 + `minute` every day for `days` days.
    fn learn_mornings(d: &mut UnusualHourDetector, locks: &LockDirectory, days: u64) {
        let mut out = Vec::new();
        for day in 0..days {
            d.observe(&unlock(T0 + day * DAY_MS + 8 * HOUR_MS), locks, &mut out);
        }
        assert!(out.is_empty(), "a regular habit raised {out:?}");
    }

    #[test]
    fn no_alert_before_min_history_however_odd_the_hour() {
        let locks = utc_directory();
        let mut d = UnusualHourDetector::new(laplace_only(), 10);
        learn_mornings(&mut d, &locks, 9);
        let mut out = Vec::new();
        // Ninth prior unlock: history 9 (< 10) even before decay.
        d.observe(&unlock(T0 + 9 * DAY_MS + 3 * HOUR_MS), &locks, &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn a_3am_unlock_of_a_morning_person_is_alerted_with_minus_log_p() {
        let locks = utc_directory();
        let mut d = UnusualHourDetector::new(laplace_only(), 10);
        learn_mornings(&mut d, &locks, 30);
        let mut out = Vec::new();
        d.observe(
            &unlock(T0 + 30 * DAY_MS + 3 * HOUR_MS + 12 * 60_000),
            &locks,
            &mut out,
        );
        assert_eq!(out.len(), 1);
        let alert = &out[0];
        assert_eq!(alert.kind, AlertKind::UnusualHour);
        assert_eq!(alert.guest_id, Some(GUEST));
        assert_eq!(alert.lock_id, Some(LOCK));
        let p = alert.detail["probability"].as_f64().unwrap();
        assert!(p < 0.02, "{p}");
        assert!((alert.score + p.ln()).abs() < 1e-12);
        assert_eq!(alert.detail["local_time"], "03:12");
        assert_eq!(alert.detail["usual_hours"], json!([8]));
    }

    #[test]
    fn a_neighbouring_hour_of_the_habit_is_not_alerted() {
        let locks = utc_directory();
        let mut d = UnusualHourDetector::new(laplace_only(), 10);
        learn_mornings(&mut d, &locks, 20);
        let mut out = Vec::new();
        // 09:59 is hour 9, next to 8.
        d.observe(
            &unlock(T0 + 20 * DAY_MS + 9 * HOUR_MS + 59 * 60_000),
            &locks,
            &mut out,
        );
        // 07:00 is hour 7, next to 8 on the other side.
        d.observe(&unlock(T0 + 21 * DAY_MS + 7 * HOUR_MS), &locks, &mut out);
        assert!(out.is_empty(), "{out:?}");
        // 11:00 is outside the ±1 window of both the habit and the 09:59 unlock.
        d.observe(&unlock(T0 + 22 * DAY_MS + 11 * HOUR_MS), &locks, &mut out);
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn the_hour_window_wraps_at_midnight() {
        let locks = utc_directory();
        let mut d = UnusualHourDetector::new(laplace_only(), 10);
        let mut out = Vec::new();
        // A night-shift habit at 23:30.
        for day in 0..20 {
            d.observe(
                &unlock(T0 + day * DAY_MS + 23 * HOUR_MS + 30 * 60_000),
                &locks,
                &mut out,
            );
        }
        // 00:10 is hour 0, the neighbour of 23 across midnight.
        d.observe(&unlock(T0 + 21 * DAY_MS + 10 * 60_000), &locks, &mut out);
        assert!(out.is_empty(), "{out:?}");
    }

    #[test]
    fn hours_are_read_in_the_locks_time_zone_across_dst() {
        // Europe/Berlin: 08:00 local is 07:00 UTC in winter and 06:00 UTC in summer.
        let mut locks = LockDirectory::new();
        locks.insert(LOCK, LockInfo::named("Europe/Berlin", None).unwrap());
        let mut d = UnusualHourDetector::new(laplace_only(), 10);
        let mut out = Vec::new();
        // 2025-03-10 .. 2025-03-29 (CET), then 2025-03-31 .. (CEST), all at 08:00 local.
        let march_10 = 1_741_564_800_000; // 2025-03-10 00:00 UTC
        for day in 0..20 {
            d.observe(
                &unlock(march_10 + day * DAY_MS + 7 * HOUR_MS),
                &locks,
                &mut out,
            );
        }
        for day in 21..28 {
            d.observe(
                &unlock(march_10 + day * DAY_MS + 6 * HOUR_MS),
                &locks,
                &mut out,
            );
        }
        assert!(
            out.is_empty(),
            "the same local hour after DST raised {out:?}"
        );
    }

    #[test]
    fn history_decays_so_a_long_absence_needs_new_history() {
        let locks = utc_directory();
        let config = UnusualHourConfig {
            half_life_s: 7 * 86_400,
            ..laplace_only()
        };
        let mut d = UnusualHourDetector::new(config, 10);
        learn_mornings(&mut d, &locks, 20);
        let mut out = Vec::new();
        // Ten weeks later the 20 unlocks weigh 20/1024 < 10: no habits to break.
        d.observe(&unlock(T0 + 90 * DAY_MS + 3 * HOUR_MS), &locks, &mut out);
        assert!(out.is_empty(), "{out:?}");
    }

    #[test]
    fn a_late_event_neither_decays_nor_inflates_the_history() {
        let mut h = HourHistogram::new(T0);
        h.weights[8] = 10.0;
        h.decay_to(T0 + DAY_MS, 86_400_000.0);
        assert!((h.mass() - 5.0).abs() < 1e-9);
        h.decay_to(T0, 86_400_000.0);
        assert!((h.mass() - 5.0).abs() < 1e-9);
        assert_eq!(h.decayed_to_ms, T0 + DAY_MS);
    }

    #[test]
    fn a_repeated_new_hour_is_learned_and_stops_alerting() {
        let locks = utc_directory();
        let mut d = UnusualHourDetector::new(laplace_only(), 10);
        learn_mornings(&mut d, &locks, 20);
        let mut alerts = 0;
        for day in 20..30 {
            let mut out = Vec::new();
            d.observe(&unlock(T0 + day * DAY_MS + 22 * HOUR_MS), &locks, &mut out);
            alerts += out.len();
        }
        assert!((1..=3).contains(&alerts), "{alerts} alerts");
    }

    #[test]
    fn evicting_a_pair_forgets_its_history_without_alerting() {
        let locks = utc_directory();
        let mut d = UnusualHourDetector::new(laplace_only(), 1);
        learn_mornings(&mut d, &locks, 20);
        let other = AuditRecord::new(T0 + 20 * DAY_MS, RecordKind::Unlock)
            .with_lock(LOCK)
            .with_guest(GuestId([9; 16]));
        let mut out = Vec::new();
        d.observe(&other, &locks, &mut out);
        assert_eq!((d.tracked_pairs(), d.evicted_pairs()), (1, 1));
        d.observe(&unlock(T0 + 21 * DAY_MS + 3 * HOUR_MS), &locks, &mut out);
        assert!(out.is_empty(), "{out:?}");
    }

    #[test]
    fn the_population_prior_spares_hours_when_others_unlock_but_not_3am() {
        let locks = utc_directory();
        let mut d = UnusualHourDetector::new(UnusualHourConfig::default(), 100);
        let mut out = Vec::new();
        for day in 0..40 {
            // Ten neighbours come home at noon; our guest at 08:00.
            for n in 0..10u8 {
                let other = AuditRecord::new(T0 + day * DAY_MS + 12 * HOUR_MS, RecordKind::Unlock)
                    .with_lock(LockId([n + 100; 16]))
                    .with_guest(GuestId([n + 100; 16]));
                d.observe(&other, &locks, &mut out);
            }
            d.observe(&unlock(T0 + day * DAY_MS + 8 * HOUR_MS), &locks, &mut out);
        }
        assert!(out.is_empty(), "{out:?}");
        // Noon is new for this guest but common in the building: no alert.
        d.observe(
            &unlock(T0 + 40 * DAY_MS + 12 * HOUR_MS + 30 * 60_000),
            &locks,
            &mut out,
        );
        assert!(out.is_empty(), "{out:?}");
        // Nobody unlocks at 03:00.
        d.observe(&unlock(T0 + 41 * DAY_MS + 3 * HOUR_MS), &locks, &mut out);
        assert_eq!(out.len(), 1);
        let share = out[0].detail["population_share"].as_f64().unwrap();
        assert!(share < 0.02, "{share}");
    }

    #[test]
    fn records_other_than_unlocks_or_without_ids_are_ignored() {
        let locks = utc_directory();
        let mut d = UnusualHourDetector::new(laplace_only(), 10);
        let mut out = Vec::new();
        d.observe(
            &AuditRecord::new(T0, RecordKind::GrantIssued)
                .with_lock(LOCK)
                .with_guest(GUEST),
            &locks,
            &mut out,
        );
        d.observe(
            &AuditRecord::new(T0, RecordKind::Unlock).with_lock(LOCK),
            &locks,
            &mut out,
        );
        assert_eq!(d.tracked_pairs(), 0);
        assert!(out.is_empty());
    }
}
