//! A lock's health as the locks page shows it, from when it was last heard from and its last
//! LockStatus: the worst finding wins.

use super::model::LockView;

/// Battery charge below which a lock is flagged.
pub const LOW_BATTERY_PCT: u8 = 20;

/// How a lock is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// Heard from recently, nothing wrong reported.
    Ok,
    /// Working, with findings to look at (low battery, unsynchronised clock, lockouts).
    Warning(Vec<String>),
    /// Tamper reported, or not heard from for longer than the offline limit.
    Alarm(Vec<String>),
    /// Never heard from.
    Unknown,
}

impl Health {
    /// The CSS class and the one-word label.
    pub fn badge(&self) -> (&'static str, &'static str) {
        match self {
            Health::Ok => ("ok", "ok"),
            Health::Warning(_) => ("warn", "warning"),
            Health::Alarm(_) => ("alarm", "alarm"),
            Health::Unknown => ("unknown", "never seen"),
        }
    }

    /// The findings, for the tooltip and the detail line.
    pub fn findings(&self) -> &[String] {
        match self {
            Health::Warning(f) | Health::Alarm(f) => f,
            Health::Ok | Health::Unknown => &[],
        }
    }
}

/// The health of `lock` at `now_ms`; `offline_after_ms` without news makes it offline.
pub fn lock_health(lock: &LockView, now_ms: u64, offline_after_ms: u64) -> Health {
    let Some(last_seen) = lock.last_seen_ms else {
        return Health::Unknown;
    };
    let mut alarms = Vec::new();
    let mut warnings = Vec::new();
    if now_ms.saturating_sub(last_seen) > offline_after_ms {
        alarms.push(format!(
            "offline: not heard from for more than {} min",
            offline_after_ms / 60_000
        ));
    }
    if let Some(status) = &lock.status {
        if status.tamper {
            alarms.push("tamper switch set".to_owned());
        }
        match status.battery_pct {
            Some(pct) if pct < LOW_BATTERY_PCT && !status.mains_power => {
                warnings.push(format!("battery low ({pct}%)"));
            }
            _ => {}
        }
        if status.clock_unsynchronised {
            warnings.push("clock not synchronised".to_owned());
        }
        if status.lockouts > 0 {
            warnings.push(format!("{} guest(s) locked out", status.lockouts));
        }
    }
    if !alarms.is_empty() {
        alarms.extend(warnings);
        Health::Alarm(alarms)
    } else if !warnings.is_empty() {
        Health::Warning(warnings)
    } else {
        Health::Ok
    }
}

#[cfg(test)]
mod tests {
    use latchkey::LockId;

    use super::*;
    use crate::web::model::LockStatusView;

    fn lock(last_seen_ms: Option<u64>, status: Option<LockStatusView>) -> LockView {
        LockView {
            lock_id: LockId([1; 16]),
            name: "front".into(),
            timezone: "UTC".into(),
            last_seen_ms,
            status,
        }
    }

    #[test]
    fn a_lock_never_heard_from_is_unknown() {
        assert_eq!(lock_health(&lock(None, None), 0, 60_000), Health::Unknown);
    }

    #[test]
    fn a_recent_lock_without_findings_is_ok_and_a_silent_one_offline() {
        let l = lock(Some(1_000), Some(LockStatusView::default()));
        assert_eq!(lock_health(&l, 61_000, 60_000), Health::Ok);
        assert!(
            matches!(lock_health(&l, 61_001, 60_000), Health::Alarm(f) if f[0].starts_with("offline"))
        );
    }

    #[test]
    fn findings_rank_tamper_above_battery_and_clock() {
        let status = LockStatusView {
            battery_pct: Some(5),
            clock_unsynchronised: true,
            ..LockStatusView::default()
        };
        let warn = lock_health(&lock(Some(0), Some(status)), 0, 60_000);
        assert_eq!(
            warn,
            Health::Warning(vec![
                "battery low (5%)".into(),
                "clock not synchronised".into()
            ])
        );
        let tampered = LockStatusView {
            tamper: true,
            ..status
        };
        let alarm = lock_health(&lock(Some(0), Some(tampered)), 0, 60_000);
        assert_eq!(alarm.badge().0, "alarm");
        assert_eq!(alarm.findings().len(), 3);
        let mains = LockStatusView {
            mains_power: true,
            battery_pct: Some(5),
            ..LockStatusView::default()
        };
        assert_eq!(
            lock_health(&lock(Some(0), Some(mains)), 0, 60_000),
            Health::Ok,
            "on mains, a low battery is no worry"
        );
    }
}
