//! The LockStatus heartbeat (spec §6.10, §7.2.9): the lock's health read from optional
//! files, and the rejections it counted since its previous report.
//!
//! Every refused input is counted, whether or not it was also published as a kind-2 event:
//! beacons (the quiet ones too, `unknown_tag`, `rssi_too_low`…, but not `foreign_company`,
//! other devices' adverts), Selects, Responses and grants-topic messages. A report carries
//! at most 32 reasons; beyond that the core keeps the 32 largest counts (§6.10) and the rest
//! are left out of that report. Counters restart at each report that was queued; a report
//! skipped while MQTT is down, or lost to a full queue, leaves them to the next one.
//!
//! Tamper detection is not supported: the `tamper` flag is always clear.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

use latchkey::frame::StatusFlags;
use latchkey::lock::StatusInput;
use latchkey::{Lock, Reason, UnixMillis};
use rand_core::CryptoRng;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::options::StatusOptions;

/// Rejections per reason since the previous report.
#[derive(Debug, Default)]
pub(crate) struct RejectionCounters {
    counts: HashMap<Reason, u32>,
}

impl RejectionCounters {
    /// Counts one refused input (`foreign_company` is not a refusal worth counting).
    pub(crate) fn count(&mut self, reason: Reason) {
        if reason.is_noise() {
            return;
        }
        let c = self.counts.entry(reason).or_default();
        *c = c.saturating_add(1);
    }

    fn snapshot(&self) -> Vec<(Reason, u32)> {
        self.counts.iter().map(|(r, n)| (*r, *n)).collect()
    }

    fn clear(&mut self) {
        self.counts.clear();
    }
}

/// A health file the lock reads at each report. A failure is logged once when it starts,
/// and its recovery once; a file that is not configured is never read.
#[derive(Debug)]
struct HealthFile {
    path: Option<PathBuf>,
    what: &'static str,
    failing: bool,
}

impl HealthFile {
    fn new(path: Option<PathBuf>, what: &'static str) -> Self {
        Self {
            path,
            what,
            failing: false,
        }
    }

    /// The file's value parsed by `parse`; `None` when unset, unreadable or unparseable.
    fn read<T>(&mut self, parse: impl Fn(&str) -> Option<T>) -> Option<T> {
        let path = self.path.clone()?;
        let value = std::fs::read_to_string(&path)
            .map_err(|e| e.to_string())
            .and_then(|text| {
                parse(text.trim()).ok_or_else(|| format!("unexpected content {:?}", text.trim()))
            });
        self.settle(&path, value)
    }

    fn settle<T>(&mut self, path: &Path, value: Result<T, String>) -> Option<T> {
        match value {
            Ok(v) => {
                if std::mem::take(&mut self.failing) {
                    info!(file = %path.display(), what = self.what, "health file readable again");
                }
                Some(v)
            }
            Err(error) => {
                if !std::mem::replace(&mut self.failing, true) {
                    warn!(
                        file = %path.display(),
                        what = self.what,
                        %error,
                        "cannot read a health file; reported as unknown until it can be read"
                    );
                }
                None
            }
        }
    }
}

/// A battery percentage as sysfs writes it (`87`); above 100 is not a percentage.
fn parse_percent(text: &str) -> Option<u8> {
    text.parse::<u8>().ok().filter(|p| *p <= 100)
}

/// sysfs `online`: `1` on mains power, `0` off.
fn parse_online(text: &str) -> Option<bool> {
    match text {
        "1" => Some(true),
        "0" => Some(false),
        _ => None,
    }
}

/// Whether `path` exists (an error other than "not found" counts as unknown).
fn exists(path: &Path) -> Result<bool, io::Error> {
    match std::fs::metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// The figures of one report, for the log.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StatusSummary {
    pub(crate) uptime_s: u32,
    pub(crate) battery_pct: Option<u8>,
    pub(crate) flags: StatusFlags,
    pub(crate) reasons: usize,
    pub(crate) rejections: u64,
}

/// The heartbeat's state: when the lock started, its health files and its counters.
#[derive(Debug)]
pub(crate) struct Heartbeat {
    started: Instant,
    battery: HealthFile,
    mains: HealthFile,
    clock_synced: HealthFile,
    pub(crate) counters: RejectionCounters,
}

impl Heartbeat {
    pub(crate) fn new(opts: &StatusOptions, started: Instant) -> Self {
        Self {
            started,
            battery: HealthFile::new(opts.battery_capacity_file.clone(), "battery capacity"),
            mains: HealthFile::new(opts.mains_online_file.clone(), "mains online"),
            clock_synced: HealthFile::new(opts.clock_synced_file.clone(), "clock synchronised"),
            counters: RejectionCounters::default(),
        }
    }

    /// The health flags now.
    fn flags(&mut self) -> StatusFlags {
        let mut flags = StatusFlags::NONE;
        if self.mains.read(parse_online) == Some(true) {
            flags = flags | StatusFlags::MAINS_POWER;
        }
        // The flag is the absence of the file: only an error other than "missing" is a
        // failure to read it (and then the flag is left clear: unknown is not unsynchronised).
        if let Some(path) = self.clock_synced.path.clone() {
            let synced = exists(&path).map_err(|e| e.to_string());
            if self.clock_synced.settle(&path, synced) == Some(false) {
                flags = flags | StatusFlags::CLOCK_UNSYNCHRONISED;
            }
        }
        flags
    }

    /// A signed LockStatus with the counters since the previous one. Call
    /// [`Heartbeat::sent`] once it is queued, so that the counters restart.
    pub(crate) fn report<R: CryptoRng + ?Sized>(
        &mut self,
        lock: &Lock,
        now: UnixMillis,
        rng: &mut R,
    ) -> (Vec<u8>, StatusSummary) {
        let uptime_s = u32::try_from(self.started.elapsed().as_secs()).unwrap_or(u32::MAX);
        let battery_pct = self.battery.read(parse_percent);
        let flags = self.flags();
        let counters = self.counters.snapshot();
        let input = StatusInput {
            uptime_s,
            battery_pct,
            flags,
            counters: &counters,
        };
        let payload = lock.status_message(now, &input, rng);
        let summary = StatusSummary {
            uptime_s,
            battery_pct,
            flags,
            reasons: counters.len(),
            rejections: counters.iter().map(|(_, n)| u64::from(*n)).sum(),
        };
        debug!(?summary, "lock status built");
        (payload, summary)
    }

    /// The report was queued: the next one counts from zero.
    pub(crate) fn sent(&mut self) {
        self.counters.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_sum_per_reason_skip_foreign_adverts_and_restart_when_sent() {
        let mut c = RejectionCounters::default();
        for r in [
            Reason::UnknownTag,
            Reason::ForeignCompany,
            Reason::UnknownTag,
            Reason::NoPendingAuth,
        ] {
            c.count(r);
        }
        let mut got = c.snapshot();
        got.sort();
        let mut want = vec![(Reason::UnknownTag, 2), (Reason::NoPendingAuth, 1)];
        want.sort();
        assert_eq!(got, want);
        c.clear();
        assert!(c.snapshot().is_empty());
    }

    #[test]
    fn battery_percent_is_0_to_100_and_online_is_0_or_1() {
        assert_eq!(parse_percent("87"), Some(87));
        assert_eq!(parse_percent("100"), Some(100));
        for bad in ["101", "-1", "", "87%", "255"] {
            assert_eq!(parse_percent(bad), None, "{bad:?}");
        }
        assert_eq!(parse_online("1"), Some(true));
        assert_eq!(parse_online("0"), Some(false));
        assert_eq!(parse_online("yes"), None);
    }

    #[test]
    fn health_files_are_read_fresh_and_unknown_when_unreadable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("capacity");
        let mut f = HealthFile::new(Some(path.clone()), "battery capacity");
        assert_eq!(f.read(parse_percent), None);
        assert!(f.failing);
        std::fs::write(&path, "42\n").unwrap();
        assert_eq!(f.read(parse_percent), Some(42));
        assert!(!f.failing);
        std::fs::write(&path, "full").unwrap();
        assert_eq!(f.read(parse_percent), None);
        let mut unset = HealthFile::new(None, "mains online");
        assert_eq!(unset.read(parse_online), None);
        assert!(!unset.failing);
    }

    #[test]
    fn clock_flag_follows_the_synchronised_file() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("synchronized");
        let opts = StatusOptions {
            clock_synced_file: Some(marker.clone()),
            ..StatusOptions::default()
        };
        let mut hb = Heartbeat::new(&opts, Instant::now());
        assert_eq!(hb.flags(), StatusFlags::CLOCK_UNSYNCHRONISED);
        std::fs::write(&marker, "").unwrap();
        assert_eq!(hb.flags(), StatusFlags::NONE);
        // Not configured: never flagged.
        let mut plain = Heartbeat::new(&StatusOptions::default(), Instant::now());
        assert_eq!(plain.flags(), StatusFlags::NONE);
    }
}
