//! What the detectors know about locks: each lock's time zone and, when known, its
//! coordinates. The daemon builds a [`LockDirectory`] from the registry's `locks` rows
//! (`timezone`, `latitude`, `longitude`) and passes it to every
//! [`AnomalyEngine::observe`](super::AnomalyEngine::observe) call.

use std::collections::BTreeMap;
use std::fmt;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use latchkey::LockId;

use super::geo::Coordinates;
use crate::policy::{UnknownTimeZone, time_zone};

/// One lock as the detectors see it.
#[derive(Debug, Clone, PartialEq)]
pub struct LockInfo {
    time_zone: TimeZone,
    coordinates: Option<Coordinates>,
}

impl LockInfo {
    /// A lock in `time_zone`, at `coordinates` if known.
    pub fn new(time_zone: TimeZone, coordinates: Option<Coordinates>) -> Self {
        Self {
            time_zone,
            coordinates,
        }
    }

    /// A lock whose time zone is given by IANA name, looked up like the policy's
    /// ([`crate::policy::time_zone`]).
    pub fn named(name: &str, coordinates: Option<Coordinates>) -> Result<Self, UnknownTimeZone> {
        Ok(Self::new(time_zone(name)?, coordinates))
    }

    /// A lock in UTC with no coordinates: what the detectors assume for a lock missing from
    /// the directory.
    pub fn unknown() -> Self {
        Self::new(TimeZone::UTC, None)
    }

    /// The lock's time zone.
    pub fn time_zone(&self) -> &TimeZone {
        &self.time_zone
    }

    /// The lock's IANA time zone name, or `"UTC"`-style offset text for a zone built
    /// without one.
    pub fn time_zone_name(&self) -> String {
        match self.time_zone.iana_name() {
            Some(name) => name.to_owned(),
            None => format!("{:?}", self.time_zone),
        }
    }

    /// Where the lock is, if known.
    pub fn coordinates(&self) -> Option<Coordinates> {
        self.coordinates
    }

    /// The wall-clock time at the lock at Unix milliseconds `at_ms` (DST-correct).
    pub fn local_time(&self, at_ms: u64) -> LocalTime {
        let civil = i64::try_from(at_ms)
            .ok()
            .and_then(|ms| Timestamp::from_millisecond(ms).ok())
            .map(|ts| self.time_zone.to_datetime(ts));
        match civil {
            Some(dt) => LocalTime {
                // jiff guarantees 0..=23 and 0..=59.
                hour: u8::try_from(dt.hour()).unwrap_or(0),
                minute: u8::try_from(dt.minute()).unwrap_or(0),
            },
            // Beyond jiff's range (year 9999): a record from a broken clock. UTC arithmetic
            // keeps the answer defined without inventing an offset.
            None => LocalTime {
                hour: ((at_ms / 3_600_000) % 24) as u8,
                minute: ((at_ms / 60_000) % 60) as u8,
            },
        }
    }
}

/// A wall-clock time of day at a lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct LocalTime {
    /// 0..=23.
    pub hour: u8,
    /// 0..=59.
    pub minute: u8,
}

impl fmt::Display for LocalTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.hour, self.minute)
    }
}

/// Every lock the detectors know, by id. A lock missing from it is taken as
/// [`LockInfo::unknown`] (UTC, no coordinates): its hours are read in UTC and the distance
/// check of impossible travel skips it.
#[derive(Debug, Clone)]
pub struct LockDirectory {
    locks: BTreeMap<LockId, LockInfo>,
    unknown: LockInfo,
}

impl Default for LockDirectory {
    fn default() -> Self {
        Self::new()
    }
}

impl LockDirectory {
    /// An empty directory.
    pub fn new() -> Self {
        Self {
            locks: BTreeMap::new(),
            unknown: LockInfo::unknown(),
        }
    }

    /// Adds or replaces a lock.
    pub fn insert(&mut self, lock_id: LockId, info: LockInfo) {
        self.locks.insert(lock_id, info);
    }

    /// Removes a lock; returns what was known of it.
    pub fn remove(&mut self, lock_id: &LockId) -> Option<LockInfo> {
        self.locks.remove(lock_id)
    }

    /// The lock, or [`LockInfo::unknown`] if the directory does not hold it.
    pub fn get(&self, lock_id: &LockId) -> &LockInfo {
        self.locks.get(lock_id).unwrap_or(&self.unknown)
    }

    /// Whether the directory holds this lock.
    pub fn contains(&self, lock_id: &LockId) -> bool {
        self.locks.contains_key(lock_id)
    }

    /// How many locks the directory holds.
    pub fn len(&self) -> usize {
        self.locks.len()
    }

    /// Whether the directory holds no lock.
    pub fn is_empty(&self) -> bool {
        self.locks.is_empty()
    }

    /// The locks, by id.
    pub fn iter(&self) -> impl Iterator<Item = (&LockId, &LockInfo)> {
        self.locks.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2025-03-30 (EU spring forward at 01:00 UTC) and 2025-10-26 (fall back at 01:00 UTC).
    const SPRING_FORWARD_UTC_MS: u64 = 1_743_296_400_000;
    const FALL_BACK_UTC_MS: u64 = 1_761_440_400_000;
    const HOUR_MS: u64 = 3_600_000;

    #[test]
    fn local_hour_follows_daylight_saving_time() {
        let berlin = LockInfo::named("Europe/Berlin", None).unwrap();
        // One minute before the switch it is 01:59 CET; one minute after, 03:01 CEST.
        let before = berlin.local_time(SPRING_FORWARD_UTC_MS - 60_000);
        let after = berlin.local_time(SPRING_FORWARD_UTC_MS + 60_000);
        assert_eq!((before.hour, before.minute), (1, 59));
        assert_eq!((after.hour, after.minute), (3, 1));
        // In autumn 02:xx happens twice: an hour before and right after the switch.
        let first = berlin.local_time(FALL_BACK_UTC_MS - HOUR_MS + 60_000);
        let second = berlin.local_time(FALL_BACK_UTC_MS + 60_000);
        assert_eq!(first.hour, 2);
        assert_eq!(second.hour, 2);
    }

    #[test]
    fn local_time_honours_half_hour_offsets() {
        let kolkata = LockInfo::named("Asia/Kolkata", None).unwrap();
        // 00:00 UTC is 05:30 IST.
        assert_eq!(kolkata.local_time(0).to_string(), "05:30");
    }

    #[test]
    fn a_lock_missing_from_the_directory_is_utc_without_coordinates() {
        let dir = LockDirectory::new();
        let info = dir.get(&LockId([7; 16]));
        assert_eq!(info.time_zone_name(), "UTC");
        assert_eq!(info.coordinates(), None);
        assert_eq!(
            info.local_time(5 * HOUR_MS + 7 * 60_000).to_string(),
            "05:07"
        );
    }

    #[test]
    fn a_timestamp_beyond_the_calendar_still_has_a_defined_local_time() {
        let berlin = LockInfo::named("Europe/Berlin", None).unwrap();
        let t = berlin.local_time(u64::MAX);
        assert!(t.hour < 24 && t.minute < 60);
    }
}
