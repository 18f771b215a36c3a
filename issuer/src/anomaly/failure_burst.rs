//! Detector 2: bursts of failures, per lock and per guest, and lockouts.
//!
//! Method. A *failure* is a lock `rejection` or an issuer `request_refused` whose reason is
//! in `failure_reasons` (by default the failed handshakes of LK-LCK-1, forged beacons, and
//! the issuer's refusals that a wrong key or probing produces), or, for a lock, a
//! `status` counter of such a reason (a count of `n` weighs `n`). Failures are counted in
//! a sliding window per lock (`lock_window_s`) and per guest (`guest_window_s`) on the
//! issuer's clock (`at_ms`). When a window's count reaches its threshold a burst starts and
//! one `failure_burst` alert is raised; the burst lasts while failures keep coming (it ends
//! once a whole window passes without one), and a burst still going after
//! `realert_after_s` raises one follow-up alert per such period. Score = failures in the
//! window / threshold (≥ 1).
//!
//! A `lockout` record (the lock locked a guest out, LK-LCK-1) is always a `lockout` alert:
//! the lock has already counted the failures, so no threshold applies. Score 1.
//!
//! Memory: a window keeps at most `threshold` entries (once it holds that many, the
//! threshold is reached whatever their weights), so per-key state is bounded; the number of
//! keys is capped by the engine's limits.

use std::collections::{BTreeMap, VecDeque};

use latchkey::{GuestId, LockId};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::alert::{Alert, AlertKind};
use super::bounded::LruMap;
use super::config::{AnomalyConfigError, check_u64};
use super::record::{AuditRecord, RecordKind};

/// Settings of the failure-burst detector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FailureBurstConfig {
    /// Whether the detector runs (lockout alerts included). Default true.
    pub enabled: bool,
    /// Reason names that count as failures. Default: `bad_response_mac`,
    /// `step_mismatch`, `clock_skew`, `late_response`, `truncated`, `trailing_bytes`,
    /// `unsupported_version` (LK-LCK-1's failed handshakes), `bad_beacon_mac` (forged
    /// beacons), `bad_seal`, `unknown_guest`, `not_authorized`, `rate_limited` (issuer
    /// refusals of a wrong key, an unknown identity, probing and flooding). At most 256.
    pub failure_reasons: Vec<String>,
    /// Failures at one lock that make a burst. Default 20; 1..=10 000.
    pub lock_threshold: u32,
    /// The per-lock window, seconds. Default 600; 1..=604 800.
    pub lock_window_s: u64,
    /// Failures by one guest (at any lock or the issuer) that make a burst. Default 8;
    /// 1..=10 000.
    pub guest_threshold: u32,
    /// The per-guest window, seconds. Default 600; 1..=604 800.
    pub guest_window_s: u64,
    /// A burst still going this long after its last alert raises another. Default 3 600;
    /// 60..=604 800.
    pub realert_after_s: u64,
}

impl Default for FailureBurstConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            failure_reasons: [
                "bad_response_mac",
                "step_mismatch",
                "clock_skew",
                "late_response",
                "truncated",
                "trailing_bytes",
                "unsupported_version",
                "bad_beacon_mac",
                "bad_seal",
                "unknown_guest",
                "not_authorized",
                "rate_limited",
            ]
            .map(String::from)
            .to_vec(),
            lock_threshold: 20,
            lock_window_s: 600,
            guest_threshold: 8,
            guest_window_s: 600,
            realert_after_s: 3_600,
        }
    }
}

impl FailureBurstConfig {
    pub(crate) fn validate(&self) -> Result<(), AnomalyConfigError> {
        check_u64(
            "failure_burst.failure_reasons",
            self.failure_reasons.len() as u64,
            0,
            256,
            "at most 256 reason names",
        )?;
        check_u64(
            "failure_burst.lock_threshold",
            self.lock_threshold.into(),
            1,
            10_000,
            "1..=10000",
        )?;
        check_u64(
            "failure_burst.lock_window_s",
            self.lock_window_s,
            1,
            604_800,
            "1..=604800",
        )?;
        check_u64(
            "failure_burst.guest_threshold",
            self.guest_threshold.into(),
            1,
            10_000,
            "1..=10000",
        )?;
        check_u64(
            "failure_burst.guest_window_s",
            self.guest_window_s,
            1,
            604_800,
            "1..=604800",
        )?;
        check_u64(
            "failure_burst.realert_after_s",
            self.realert_after_s,
            60,
            604_800,
            "60..=604800",
        )
    }
}

/// Whose failures a window counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    Lock,
    Guest,
}

impl Scope {
    fn name(self) -> &'static str {
        match self {
            Scope::Lock => "lock",
            Scope::Guest => "guest",
        }
    }
}

/// One counted failure (or a status counter's worth of them).
#[derive(Debug, Clone, Copy)]
struct Failure {
    at_ms: u64,
    weight: u32,
    /// Index into `failure_reasons`.
    reason: u16,
}

/// A burst in progress.
#[derive(Debug, Clone)]
struct Burst {
    started_at_ms: u64,
    last_alert_at_ms: u64,
    failures: u64,
    /// Failures of the burst by reason index; bounded by the number of configured reasons.
    reasons: BTreeMap<u16, u64>,
}

/// The sliding window of one lock or guest.
#[derive(Debug, Clone, Default)]
struct FailureWindow {
    entries: VecDeque<Failure>,
    total: u64,
    newest_ms: u64,
    burst: Option<Burst>,
}

/// An alert a window asks for.
struct BurstReport {
    in_window: u64,
    failures: u64,
    started_at_ms: u64,
    continued: bool,
    reasons: BTreeMap<u16, u64>,
}

/// How a window decides: its threshold, length and re-alert period.
#[derive(Debug, Clone, Copy)]
struct WindowRule {
    threshold: u32,
    window_ms: u64,
    realert_ms: u64,
}

impl FailureWindow {
    /// Counts `weight` failures of reason index `reason` at `at_ms`; returns a report when
    /// an alert is due.
    fn add(
        &mut self,
        at_ms: u64,
        weight: u32,
        reason: u16,
        rule: WindowRule,
    ) -> Option<BurstReport> {
        // A record a little out of order is counted at the newest time seen, so the window
        // never runs backwards.
        let now = at_ms.max(self.newest_ms);
        self.newest_ms = now;
        let horizon = now.saturating_sub(rule.window_ms);
        while let Some(front) = self.entries.front().copied() {
            if front.at_ms > horizon {
                break;
            }
            self.entries.pop_front();
            self.total -= u64::from(front.weight);
        }
        if self.entries.is_empty() {
            // A whole window without a failure: whatever burst there was is over.
            self.burst = None;
        }
        self.entries.push_back(Failure {
            at_ms: now,
            weight,
            reason,
        });
        self.total += u64::from(weight);
        if let Some(burst) = &mut self.burst {
            burst.failures = burst.failures.saturating_add(u64::from(weight));
            let count = burst.reasons.entry(reason).or_default();
            *count = count.saturating_add(u64::from(weight));
        }
        let reached = self.total >= u64::from(rule.threshold);
        let report = match &mut self.burst {
            None if reached => {
                let mut reasons = BTreeMap::new();
                for f in &self.entries {
                    *reasons.entry(f.reason).or_default() += u64::from(f.weight);
                }
                self.burst = Some(Burst {
                    started_at_ms: now,
                    last_alert_at_ms: now,
                    failures: self.total,
                    reasons: reasons.clone(),
                });
                Some(BurstReport {
                    in_window: self.total,
                    failures: self.total,
                    started_at_ms: now,
                    continued: false,
                    reasons,
                })
            }
            Some(burst)
                if reached && now.saturating_sub(burst.last_alert_at_ms) >= rule.realert_ms =>
            {
                burst.last_alert_at_ms = now;
                Some(BurstReport {
                    in_window: self.total,
                    failures: burst.failures,
                    started_at_ms: burst.started_at_ms,
                    continued: true,
                    reasons: burst.reasons.clone(),
                })
            }
            _ => None,
        };
        // Once the window holds `threshold` entries the threshold is reached whatever
        // their weights: older entries add nothing the decision needs.
        while self.entries.len() > rule.threshold as usize {
            if let Some(old) = self.entries.pop_front() {
                self.total -= u64::from(old.weight);
            }
        }
        report
    }
}

/// Detector 2 (see the module docs).
#[derive(Debug, Clone)]
pub struct FailureBurstDetector {
    config: FailureBurstConfig,
    locks: LruMap<LockId, FailureWindow>,
    guests: LruMap<GuestId, FailureWindow>,
}

impl FailureBurstDetector {
    /// A detector with empty windows, holding at most `max_locks` lock windows and
    /// `max_guests` guest windows.
    pub fn new(config: FailureBurstConfig, max_locks: usize, max_guests: usize) -> Self {
        Self {
            config,
            locks: LruMap::new(max_locks),
            guests: LruMap::new(max_guests),
        }
    }

    /// The index of `reason` in `failure_reasons`, if it counts as a failure.
    fn failure_index(&self, reason: &str) -> Option<u16> {
        let i = self
            .config
            .failure_reasons
            .iter()
            .position(|r| r == reason)?;
        u16::try_from(i).ok()
    }

    /// Scores one record; pushes `lockout` and `failure_burst` alerts.
    pub fn observe(&mut self, record: &AuditRecord, out: &mut Vec<Alert>) {
        if !self.config.enabled {
            return;
        }
        match record.kind {
            RecordKind::Lockout => out.push(lockout_alert(record)),
            RecordKind::Rejection | RecordKind::RequestRefused => {
                let Some(reason) = record.reason().and_then(|r| self.failure_index(r)) else {
                    return;
                };
                if record.lock_id.is_some() {
                    self.count(Scope::Lock, record, 1, reason, out);
                }
                if record.guest_id.is_some() {
                    self.count(Scope::Guest, record, 1, reason, out);
                }
            }
            RecordKind::Status if record.lock_id.is_some() => {
                for counter in &record.counters {
                    if let Some(reason) = self.failure_index(&counter.reason)
                        && counter.count > 0
                    {
                        self.count(Scope::Lock, record, counter.count, reason, out);
                    }
                }
            }
            _ => {}
        }
    }

    /// Counts `weight` failures of `record` in the window of its lock or guest.
    fn count(
        &mut self,
        scope: Scope,
        record: &AuditRecord,
        weight: u32,
        reason: u16,
        out: &mut Vec<Alert>,
    ) {
        let c = &self.config;
        let (threshold, window_s) = match scope {
            Scope::Lock => (c.lock_threshold, c.lock_window_s),
            Scope::Guest => (c.guest_threshold, c.guest_window_s),
        };
        let rule = WindowRule {
            threshold,
            window_ms: window_s.saturating_mul(1000),
            realert_ms: c.realert_after_s.saturating_mul(1000),
        };
        // A lock burst names no guest (many may be involved); a guest burst names the lock
        // of the failure that crossed the threshold.
        let (window, guest) = match (scope, record.lock_id, record.guest_id) {
            (Scope::Guest, _, Some(g)) => (
                self.guests.touch_or_insert_with(g, FailureWindow::default),
                Some(g),
            ),
            (Scope::Lock, Some(l), _) => (
                self.locks.touch_or_insert_with(l, FailureWindow::default),
                None,
            ),
            _ => return,
        };
        let Some(report) = window.add(record.at_ms, weight, reason, rule) else {
            return;
        };
        let trigger = if report.continued {
            format!("{}/continued", scope.name())
        } else {
            scope.name().to_owned()
        };
        let name = |i: u16| {
            self.config
                .failure_reasons
                .get(usize::from(i))
                .cloned()
                .unwrap_or_default()
        };
        let reasons: BTreeMap<String, u64> =
            report.reasons.iter().map(|(&i, &n)| (name(i), n)).collect();
        out.push(Alert::new(
            AlertKind::FailureBurst,
            record.at_ms,
            record.lock_id,
            guest,
            report.in_window as f64 / f64::from(threshold.max(1)),
            &trigger,
            json!({
                "scope": scope.name(),
                "failures_in_window": report.in_window,
                "threshold": threshold,
                "window_s": window_s,
                "burst_started_at_ms": report.started_at_ms,
                "failures_in_burst": report.failures,
                "continued": report.continued,
                "reasons": reasons,
                "trigger": {
                    "kind": record.kind.name(),
                    "reason": name(reason),
                    "grant_id": record.grant_id.map(|g| g.to_string()),
                },
            }),
        ));
    }

    /// How many lock and guest windows are held.
    pub fn tracked(&self) -> (usize, usize) {
        (self.locks.len(), self.guests.len())
    }
}

fn lockout_alert(record: &AuditRecord) -> Alert {
    Alert::new(
        AlertKind::Lockout,
        record.at_ms,
        record.lock_id,
        record.guest_id,
        1.0,
        "",
        json!({
            "reason": record.reason(),
            "grant_id": record.grant_id.map(|g| g.to_string()),
            "event_time_ms": record.event_time_ms(),
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_736_121_600_000;
    const LOCK: LockId = LockId([2; 16]);
    const GUEST: GuestId = GuestId([1; 16]);

    fn rejection(at_ms: u64, reason: &str) -> AuditRecord {
        AuditRecord::new(at_ms, RecordKind::Rejection)
            .with_lock(LOCK)
            .with_guest(GUEST)
            .with_reason(reason)
    }

    fn detector(guest_threshold: u32, lock_threshold: u32) -> FailureBurstDetector {
        FailureBurstDetector::new(
            FailureBurstConfig {
                guest_threshold,
                lock_threshold,
                guest_window_s: 60,
                lock_window_s: 60,
                realert_after_s: 600,
                ..FailureBurstConfig::default()
            },
            10,
            10,
        )
    }

    fn kinds(out: &[Alert]) -> Vec<(AlertKind, &str)> {
        out.iter()
            .map(|a| (a.kind, a.detail["scope"].as_str().unwrap_or("")))
            .collect()
    }

    #[test]
    fn a_burst_raises_one_alert_not_one_per_failure() {
        let mut d = detector(3, 100);
        let mut out = Vec::new();
        for i in 0..10 {
            d.observe(&rejection(T0 + i * 1_000, "bad_response_mac"), &mut out);
        }
        assert_eq!(kinds(&out), [(AlertKind::FailureBurst, "guest")]);
        let alert = &out[0];
        assert_eq!(alert.at_ms, T0 + 2_000);
        assert_eq!(alert.guest_id, Some(GUEST));
        assert_eq!(alert.lock_id, Some(LOCK));
        assert_eq!(alert.detail["failures_in_window"], 3);
        assert_eq!(alert.score, 1.0);
    }

    #[test]
    fn failures_spread_wider_than_the_window_never_reach_the_threshold() {
        let mut d = detector(3, 100);
        let mut out = Vec::new();
        // One failure every 30 s with a 60 s window: at most 2 in any window (the entry
        // exactly one window old has left it).
        for i in 0..20 {
            d.observe(&rejection(T0 + i * 30_000, "clock_skew"), &mut out);
        }
        assert!(out.is_empty(), "{out:?}");
    }

    #[test]
    fn a_quiet_window_ends_the_burst_and_the_next_burst_alerts_again() {
        let mut d = detector(3, 100);
        let mut out = Vec::new();
        for i in 0..3 {
            d.observe(&rejection(T0 + i * 1_000, "bad_response_mac"), &mut out);
        }
        // Exactly one window after the last failure the window is empty: burst over.
        for i in 0..3 {
            d.observe(
                &rejection(T0 + 62_000 + i * 1_000, "bad_response_mac"),
                &mut out,
            );
        }
        assert_eq!(out.len(), 2);
        assert_eq!(out[1].detail["continued"], false);
        assert_ne!(out[0].alert_id, out[1].alert_id);
    }

    #[test]
    fn a_sustained_burst_realerts_once_per_period() {
        let mut d = detector(3, 100);
        let mut out = Vec::new();
        // One failure every 10 s for 25 minutes: one burst, realert after 600 s.
        for i in 0..150 {
            d.observe(&rejection(T0 + i * 10_000, "bad_response_mac"), &mut out);
        }
        assert_eq!(out.len(), 3, "{:?}", kinds(&out));
        assert_eq!(out[1].detail["continued"], true);
        assert_eq!(out[1].at_ms - out[0].at_ms, 600_000);
        assert_eq!(out[2].detail["burst_started_at_ms"], out[0].at_ms);
        assert!(out[2].detail["failures_in_burst"].as_u64().unwrap() > 100);
    }

    #[test]
    fn reasons_outside_the_failure_list_are_not_counted() {
        let mut d = detector(2, 2);
        let mut out = Vec::new();
        for i in 0..10 {
            d.observe(&rejection(T0 + i, "no_pending_auth"), &mut out);
            d.observe(&rejection(T0 + i, "outside_schedule"), &mut out);
            d.observe(
                &AuditRecord::new(T0 + i, RecordKind::Unlock).with_lock(LOCK),
                &mut out,
            );
        }
        assert!(out.is_empty());
        assert_eq!(d.tracked(), (0, 0));
    }

    #[test]
    fn failures_from_many_guests_make_a_lock_burst() {
        let mut d = detector(100, 5);
        let mut out = Vec::new();
        for i in 0..5u8 {
            let r = AuditRecord::new(T0 + u64::from(i) * 1_000, RecordKind::Rejection)
                .with_lock(LOCK)
                .with_guest(GuestId([i + 10; 16]))
                .with_reason("step_mismatch");
            d.observe(&r, &mut out);
        }
        assert_eq!(kinds(&out), [(AlertKind::FailureBurst, "lock")]);
        assert_eq!(out[0].guest_id, None);
        assert_eq!(out[0].detail["reasons"]["step_mismatch"], 5);
    }

    #[test]
    fn status_counters_weigh_their_count_at_the_lock() {
        let mut d = detector(100, 50);
        let mut out = Vec::new();
        let status = AuditRecord::new(T0, RecordKind::Status)
            .with_lock(LOCK)
            .with_counter("unknown_tag", 5_000)
            .with_counter("bad_beacon_mac", 80);
        d.observe(&status, &mut out);
        assert_eq!(kinds(&out), [(AlertKind::FailureBurst, "lock")]);
        assert_eq!(out[0].detail["failures_in_window"], 80);
        assert_eq!(out[0].score, 80.0 / 50.0);
        assert_eq!(out[0].detail["reasons"], json!({"bad_beacon_mac": 80}));
        let (locks, _) = d.tracked();
        assert_eq!(locks, 1);
    }

    #[test]
    fn a_lockout_is_always_an_alert() {
        let mut d = detector(100, 100);
        let mut out = Vec::new();
        for i in 0..3 {
            let r = AuditRecord::new(T0 + i, RecordKind::Lockout)
                .with_lock(LOCK)
                .with_guest(GUEST)
                .with_reason("bad_response_mac");
            d.observe(&r, &mut out);
        }
        assert_eq!(out.len(), 3);
        assert!(out.iter().all(|a| a.kind == AlertKind::Lockout));
        assert_eq!(out[0].detail["reason"], "bad_response_mac");
    }

    #[test]
    fn window_memory_is_bounded_by_the_threshold() {
        let mut d = detector(4, 4);
        let mut out = Vec::new();
        for i in 0..1_000 {
            d.observe(&rejection(T0 + i, "bad_response_mac"), &mut out);
        }
        let window = d.guests.get(&GUEST).unwrap();
        assert_eq!(window.entries.len(), 4);
        let window = d.locks.get(&LOCK).unwrap();
        assert_eq!(window.entries.len(), 4);
    }

    #[test]
    fn an_out_of_order_record_never_runs_the_window_backwards() {
        let mut d = detector(3, 100);
        let mut out = Vec::new();
        d.observe(&rejection(T0 + 100_000, "bad_response_mac"), &mut out);
        d.observe(&rejection(T0, "bad_response_mac"), &mut out);
        d.observe(&rejection(T0 + 1, "bad_response_mac"), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(d.guests.get(&GUEST).unwrap().newest_ms, T0 + 100_000);
    }
}
