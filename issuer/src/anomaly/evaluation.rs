//! Measures the engine on a [`Workload`]: per detector, how many injected anomalies it
//! found (recall) and how many alerts it raised on normal activity (false positives).
//!
//! Method. The engine observes every record of the workload in order. Each alert is
//! attributed to the record that raised it: a *true positive* if that record belongs to
//! an injected anomaly (of any kind), a *false positive* if it is normal activity. An
//! injected anomaly counts as *detected* when a detector meant for it (its
//! [`Detector`]) raised an alert on one of its records. Rates: false positives per 1 000
//! normal records, and per guest-week (guests × weeks of the workload).

use std::collections::BTreeSet;
use std::fmt;

use super::alert::{Alert, Detector};
use super::config::{AnomalyConfig, AnomalyConfigError};
use super::engine::AnomalyEngine;
use super::workload::Workload;

/// The figures of one detector (or of all, when `detector` is `None`).
#[derive(Debug, Clone, PartialEq)]
pub struct DetectorScore {
    /// The detector; `None` for the total.
    pub detector: Option<Detector>,
    /// Alerts raised.
    pub alerts: usize,
    /// Alerts raised by a record of an injected anomaly.
    pub true_positives: usize,
    /// Alerts raised by normal activity.
    pub false_positives: usize,
    /// Anomalies injected for this detector.
    pub injected: usize,
    /// Of those, how many it alerted on.
    pub detected: usize,
    /// False positives per 1 000 normal records.
    pub false_positives_per_1000_records: f64,
    /// False positives per guest-week.
    pub false_positives_per_guest_week: f64,
}

impl DetectorScore {
    /// detected / injected (1 when nothing was injected).
    pub fn recall(&self) -> f64 {
        if self.injected == 0 {
            1.0
        } else {
            self.detected as f64 / self.injected as f64
        }
    }
}

/// The result of one evaluation.
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// The workload's seed.
    pub seed: u64,
    /// The workload's length, weeks.
    pub weeks: u32,
    /// Records observed.
    pub records: usize,
    /// Of those, normal activity.
    pub normal_records: usize,
    /// Guests × weeks.
    pub guest_weeks: f64,
    /// One row per detector, in [`Detector::ALL`] order.
    pub detectors: Vec<DetectorScore>,
    /// The totals.
    pub total: DetectorScore,
    /// Every alert raised on normal activity, to see what the false positives are.
    pub false_alerts: Vec<Alert>,
}

impl Evaluation {
    /// The row of one detector.
    pub fn detector(&self, detector: Detector) -> Option<&DetectorScore> {
        self.detectors
            .iter()
            .find(|row| row.detector == Some(detector))
    }
}

/// Runs an engine with `config` over `workload` and scores it.
pub fn evaluate(
    workload: &Workload,
    config: &AnomalyConfig,
) -> Result<Evaluation, AnomalyConfigError> {
    let mut engine = AnomalyEngine::new(config.clone())?;
    // (alert, the anomaly of the record that raised it)
    let mut raised: Vec<(Alert, Option<usize>)> = Vec::new();
    for labeled in &workload.records {
        for alert in engine.observe(&labeled.record, &workload.directory) {
            raised.push((alert, labeled.anomaly));
        }
    }
    let normal_records = workload.normal_records();
    let guest_weeks = workload.guest_weeks();
    let score = |detector: Option<Detector>| {
        let mine: Vec<&(Alert, Option<usize>)> = raised
            .iter()
            .filter(|(a, _)| detector.is_none_or(|d| a.detector() == d))
            .collect();
        let false_positives = mine.iter().filter(|(_, label)| label.is_none()).count();
        let meant: Vec<usize> = (0..workload.anomalies.len())
            .filter(|&i| detector.is_none_or(|d| workload.anomalies[i].detector == d))
            .collect();
        let found: BTreeSet<usize> = mine
            .iter()
            .filter_map(|(a, label)| {
                let i = (*label)?;
                (workload.anomalies.get(i)?.detector == a.detector()).then_some(i)
            })
            .collect();
        DetectorScore {
            detector,
            alerts: mine.len(),
            true_positives: mine.len() - false_positives,
            false_positives,
            injected: meant.len(),
            detected: meant.iter().filter(|i| found.contains(i)).count(),
            false_positives_per_1000_records: per(
                false_positives as f64 * 1000.0,
                normal_records as f64,
            ),
            false_positives_per_guest_week: per(false_positives as f64, guest_weeks),
        }
    };
    Ok(Evaluation {
        seed: workload.config.seed,
        weeks: workload.config.weeks,
        records: workload.records.len(),
        normal_records,
        guest_weeks,
        detectors: Detector::ALL.iter().map(|d| score(Some(*d))).collect(),
        total: score(None),
        false_alerts: raised
            .iter()
            .filter(|(_, label)| label.is_none())
            .map(|(a, _)| a.clone())
            .collect(),
    })
}

fn per(numerator: f64, denominator: f64) -> f64 {
    if denominator > 0.0 {
        numerator / denominator
    } else {
        0.0
    }
}

impl fmt::Display for Evaluation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "seed {}, {} weeks: {} records ({} normal), {:.0} guest-weeks",
            self.seed, self.weeks, self.records, self.normal_records, self.guest_weeks
        )?;
        writeln!(
            f,
            "| detector | alerts | TP | FP | FP / 1000 normal records | FP / guest-week | injected | detected | recall |"
        )?;
        writeln!(f, "|---|---:|---:|---:|---:|---:|---:|---:|---:|")?;
        for row in self.detectors.iter().chain(std::iter::once(&self.total)) {
            writeln!(
                f,
                "| {} | {} | {} | {} | {:.3} | {:.4} | {} | {} | {:.2} |",
                row.detector.map_or("all", |d| d.name()),
                row.alerts,
                row.true_positives,
                row.false_positives,
                row.false_positives_per_1000_records,
                row.false_positives_per_guest_week,
                row.injected,
                row.detected,
                row.recall()
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::anomaly::workload::{WorkloadConfig, generate};

    /// The figures of docs/anomaly.md, as bounds: on three seeded five-week workloads every
    /// detector finds at least 90 % of its injected anomalies; the unusual-hour detector
    /// raises at most 0.06 false alerts per guest-week, the others at most 0.005 (measured:
    /// 0.012–0.042 and 0); all together at most 2 per 1 000 normal records.
    #[test]
    fn the_default_engine_meets_its_bounds_on_three_seeds() {
        for seed in 1..=3 {
            let workload = generate(&WorkloadConfig {
                seed,
                ..WorkloadConfig::default()
            })
            .unwrap();
            let eval = evaluate(&workload, &AnomalyConfig::default()).unwrap();
            for row in &eval.detectors {
                let detector = row.detector.unwrap();
                assert!(row.injected >= 10, "seed {seed} {detector}: {row:?}");
                assert!(
                    row.recall() >= 0.9,
                    "seed {seed} {detector}: recall\n{eval}"
                );
                let bound = match detector {
                    Detector::UnusualHour => 0.06,
                    _ => 0.005,
                };
                assert!(
                    row.false_positives_per_guest_week <= bound,
                    "seed {seed} {detector}: false positives\n{eval}\n{:#?}",
                    eval.false_alerts
                );
            }
            assert!(
                eval.total.false_positives_per_1000_records <= 2.0,
                "seed {seed}: {eval}"
            );
        }
    }

    #[test]
    fn a_disabled_detector_finds_nothing_and_the_others_are_unchanged() {
        let workload = generate(&WorkloadConfig {
            seed: 4,
            weeks: 4,
            ..WorkloadConfig::default()
        })
        .unwrap();
        let all = evaluate(&workload, &AnomalyConfig::default()).unwrap();
        let mut config = AnomalyConfig::default();
        config.revoked_guest.enabled = false;
        let without = evaluate(&workload, &config).unwrap();
        let revoked = without.detector(Detector::RevokedGuest).unwrap();
        assert_eq!((revoked.alerts, revoked.detected), (0, 0));
        assert_eq!(
            without.detector(Detector::UnusualHour),
            all.detector(Detector::UnusualHour)
        );
    }

    #[test]
    fn alerts_on_normal_records_are_false_positives() {
        let workload = generate(&WorkloadConfig {
            seed: 5,
            weeks: 4,
            anomalies_per_detector: 0,
            ..WorkloadConfig::default()
        })
        .unwrap();
        // A detector so eager that it alerts on nearly every unlock of a known guest.
        let mut config = AnomalyConfig::default();
        config.unusual_hour.max_probability = 0.99;
        config.unusual_hour.min_history = 1.0;
        let eval = evaluate(&workload, &config).unwrap();
        let row = eval.detector(Detector::UnusualHour).unwrap();
        assert!(row.alerts > 1_000, "{row:?}");
        assert_eq!(row.false_positives, row.alerts);
        assert_eq!(row.true_positives, 0);
        assert_eq!(row.injected, 0);
        assert_eq!(row.recall(), 1.0);
        assert_eq!(eval.false_alerts.len(), eval.total.false_positives);
    }
}
