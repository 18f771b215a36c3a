//! Weekly schedules: the times of the week, in the lock's local wall-clock time, at which
//! a rule allows access.
//!
//! A schedule is a set of minutes of the week (Monday 00:00 = minute 0). Whatever way it
//! was written, it is kept as its *runs*: maximal stretches of allowed minutes on the
//! week's circle. Ranges that touch or overlap therefore join ("08:00-12:00,12:00-18:00"
//! is "08:00-18:00"; "Mon 22:00-24:00; Tue 00:00-06:00" is "Mon 22:00-06:00"), and two
//! schedules that allow the same minutes are equal and print the same.
//!
//! - `grammar`: the text form (`"Mon-Fri 08:00-18:00; Sat,Sun 10:00-12:30"`).
//! - `render`: the canonical text and the JSON form, both read back to an equal value.
//! - `eval`: whether an instant is inside, and until when, with the DST rules.

mod eval;
mod grammar;
mod render;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use eval::ScheduleCheck;
pub use grammar::{MAX_SCHEDULE_LEN, ScheduleParseError};

pub(crate) const MINUTES_PER_DAY: u16 = 1_440;
pub(crate) const MINUTES_PER_WEEK: u16 = 7 * MINUTES_PER_DAY;

/// A day of the week; the week starts on Monday (ISO 8601).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Day {
    /// Monday.
    Mon,
    /// Tuesday.
    Tue,
    /// Wednesday.
    Wed,
    /// Thursday.
    Thu,
    /// Friday.
    Fri,
    /// Saturday.
    Sat,
    /// Sunday.
    Sun,
}

impl Day {
    /// The week, Monday first.
    pub const ALL: [Day; 7] = [
        Day::Mon,
        Day::Tue,
        Day::Wed,
        Day::Thu,
        Day::Fri,
        Day::Sat,
        Day::Sun,
    ];

    /// 0 for Monday … 6 for Sunday.
    pub fn index(self) -> u8 {
        self as u8
    }

    /// The day `index` (taken modulo 7) days after Monday.
    pub fn from_index(index: usize) -> Day {
        Day::ALL[index % 7]
    }

    /// The name the canonical text uses: `Mon` … `Sun`.
    pub fn short_name(self) -> &'static str {
        ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"][usize::from(self.index())]
    }

    /// A day from its three-letter or full English name, ignoring ASCII case.
    pub fn from_name(name: &str) -> Option<Day> {
        const FULL: [&str; 7] = [
            "monday",
            "tuesday",
            "wednesday",
            "thursday",
            "friday",
            "saturday",
            "sunday",
        ];
        Day::ALL.into_iter().find(|d| {
            name.eq_ignore_ascii_case(d.short_name())
                || name.eq_ignore_ascii_case(FULL[usize::from(d.index())])
        })
    }

    /// The first minute of this day in the week.
    fn first_minute(self) -> u16 {
        u16::from(self.index()) * MINUTES_PER_DAY
    }
}

impl fmt::Display for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.short_name())
    }
}

/// A local wall-clock time of day with minute precision, `00:00` to `24:00` (the end of
/// the day, allowed only as the end of a range).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClockTime(u16);

impl ClockTime {
    /// `00:00`.
    pub const MIDNIGHT: ClockTime = ClockTime(0);
    /// `24:00`, the end of the day.
    pub const END_OF_DAY: ClockTime = ClockTime(MINUTES_PER_DAY);

    /// `hour:minute`, with hour 0..=23 and minute 0..=59, or 24:00.
    pub fn new(hour: u8, minute: u8) -> Option<ClockTime> {
        match (hour, minute) {
            (24, 0) => Some(ClockTime::END_OF_DAY),
            (0..=23, 0..=59) => Some(ClockTime(u16::from(hour) * 60 + u16::from(minute))),
            _ => None,
        }
    }

    /// Minutes since midnight, 0..=1440.
    pub fn minutes(self) -> u16 {
        self.0
    }
}

impl fmt::Display for ClockTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.0 / 60, self.0 % 60)
    }
}

/// A string that is not a time of day `HH:MM` (00:00..23:59, or 24:00).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a time of day: write HH:MM with hours 00-23 and minutes 00-59, or 24:00")]
pub struct BadClockTime(pub String);

impl FromStr for ClockTime {
    type Err = BadClockTime;

    /// `H:MM` or `HH:MM`; `24:00` is accepted (it can only end a range).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadClockTime(s.chars().take(16).collect());
        let (h, m) = s.split_once(':').ok_or_else(bad)?;
        let digits = |t: &str, n: std::ops::RangeInclusive<usize>| {
            n.contains(&t.len()) && t.bytes().all(|b| b.is_ascii_digit())
        };
        if !digits(h, 1..=2) || !digits(m, 2..=2) {
            return Err(bad());
        }
        let hour = h.parse::<u8>().map_err(|_| bad())?;
        let minute = m.parse::<u8>().map_err(|_| bad())?;
        ClockTime::new(hour, minute).ok_or_else(bad)
    }
}

impl Serialize for ClockTime {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ClockTime {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Access on `days` from `start` to `end`, local time. When `end < start` the range
/// crosses midnight: it starts on each listed day and ends on the next (`22:00-06:00`;
/// `22:00-00:00` is `22:00-24:00`). `start = end` and a start of `24:00` are refused.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Slot {
    /// The days the range starts on.
    pub days: Vec<Day>,
    /// First allowed minute.
    pub start: ClockTime,
    /// First minute no longer allowed (on the next day when `end < start`).
    pub end: ClockTime,
}

/// Length in minutes (1..=1440) of the range `start-end`, or why it is invalid.
fn range_length(start: ClockTime, end: ClockTime) -> Result<u16, SlotRangeError> {
    let (s, e) = (start.minutes(), end.minutes());
    if s == MINUTES_PER_DAY {
        Err(SlotRangeError::StartsAtEndOfDay)
    } else if s == e {
        Err(SlotRangeError::Empty)
    } else if e > s {
        Ok(e - s)
    } else {
        Ok(MINUTES_PER_DAY - s + e)
    }
}

/// Why a range `start-end` is invalid (shared by the text and the JSON form).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SlotRangeError {
    StartsAtEndOfDay,
    Empty,
}

/// A structured schedule (the JSON form, or slots from a web form) that is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// No slot at all: a schedule allows at least one minute (omit it for "always").
    #[error("a schedule needs at least one slot; leave the schedule out for access at all times")]
    NoSlots,
    /// A slot lists no day.
    #[error("slot {slot}: no days listed")]
    NoDays {
        /// Index of the slot (from 0).
        slot: usize,
    },
    /// A slot whose start equals its end.
    #[error("slot {slot}: the range {start}-{end} is empty; use 00:00-24:00 for a whole day")]
    EmptyRange {
        /// Index of the slot (from 0).
        slot: usize,
        /// Its start.
        start: ClockTime,
        /// Its end.
        end: ClockTime,
    },
    /// A slot starting at 24:00.
    #[error("slot {slot}: 24:00 can only end a range; start at 00:00 instead")]
    StartsAtEndOfDay {
        /// Index of the slot (from 0).
        slot: usize,
    },
}

/// A maximal stretch of allowed minutes: `start` (minute of the week, < 10 080) and
/// `len` minutes (1..=10 080), possibly wrapping from Sunday into Monday.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Run {
    pub(crate) start: u16,
    pub(crate) len: u16,
}

/// A weekly schedule in the lock's local time. Build it with [`WeeklySchedule::parse`]
/// (text), [`WeeklySchedule::from_slots`] (forms) or serde (the JSON form); print the
/// canonical text with `Display`. Evaluate it with [`WeeklySchedule::check`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WeeklySchedule {
    /// Sorted by start, pairwise apart (neither touching nor overlapping on the circle);
    /// never empty; `[{0, 10 080}]` when every minute is allowed.
    runs: Vec<Run>,
}

impl WeeklySchedule {
    /// Every minute of the week (`"always"`).
    pub fn always() -> WeeklySchedule {
        WeeklySchedule {
            runs: vec![Run {
                start: 0,
                len: MINUTES_PER_WEEK,
            }],
        }
    }

    /// Whether every minute of the week is allowed: the schedule restricts nothing.
    pub fn is_always(&self) -> bool {
        self.runs.first().is_some_and(|r| r.len == MINUTES_PER_WEEK)
    }

    /// Parses the text form (grammar in `docs/policy.md`).
    pub fn parse(text: &str) -> Result<WeeklySchedule, ScheduleParseError> {
        grammar::parse(text)
    }

    /// The union of `slots`.
    pub fn from_slots(slots: &[Slot]) -> Result<WeeklySchedule, ScheduleError> {
        if slots.is_empty() {
            return Err(ScheduleError::NoSlots);
        }
        let mut minutes = WeekMinutes::default();
        for (i, slot) in slots.iter().enumerate() {
            if slot.days.is_empty() {
                return Err(ScheduleError::NoDays { slot: i });
            }
            let len = range_length(slot.start, slot.end).map_err(|e| match e {
                SlotRangeError::StartsAtEndOfDay => ScheduleError::StartsAtEndOfDay { slot: i },
                SlotRangeError::Empty => ScheduleError::EmptyRange {
                    slot: i,
                    start: slot.start,
                    end: slot.end,
                },
            })?;
            for day in &slot.days {
                minutes.insert(day.first_minute() + slot.start.minutes(), len);
            }
        }
        Ok(minutes.into_schedule())
    }

    /// The canonical slots: what `Display` prints, one slot per (days, range).
    pub fn slots(&self) -> Vec<Slot> {
        render::canonical_slots(self)
    }

    pub(crate) fn runs(&self) -> &[Run] {
        &self.runs
    }
}

impl FromStr for WeeklySchedule {
    type Err = ScheduleParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        WeeklySchedule::parse(s)
    }
}

/// The minutes of the week as a bit set: unions, joins and the circle come for free.
#[derive(Debug, Clone)]
struct WeekMinutes([u64; WeekMinutes::WORDS]);

impl Default for WeekMinutes {
    fn default() -> Self {
        WeekMinutes([0; WeekMinutes::WORDS])
    }
}

impl WeekMinutes {
    const WORDS: usize = (MINUTES_PER_WEEK as usize).div_ceil(64);

    /// Adds `len` minutes from minute `start`, wrapping from Sunday into Monday.
    fn insert(&mut self, start: u16, len: u16) {
        for i in 0..len {
            let m = usize::from((start + i) % MINUTES_PER_WEEK);
            self.0[m / 64] |= 1 << (m % 64);
        }
    }

    fn contains(&self, minute: u16) -> bool {
        let m = usize::from(minute % MINUTES_PER_WEEK);
        self.0[m / 64] & (1 << (m % 64)) != 0
    }

    /// The maximal runs on the circle, sorted by start. Callers insert at least one minute.
    fn into_schedule(self) -> WeeklySchedule {
        let Some(gap) = (0..MINUTES_PER_WEEK).find(|&m| !self.contains(m)) else {
            return WeeklySchedule::always();
        };
        let mut runs = Vec::new();
        let mut open: Option<Run> = None;
        // One turn of the circle starting just after an unset minute: no run is cut.
        for step in 1..=MINUTES_PER_WEEK {
            let m = (gap + step) % MINUTES_PER_WEEK;
            match (self.contains(m), open.as_mut()) {
                (true, Some(run)) => run.len += 1,
                (true, None) => open = Some(Run { start: m, len: 1 }),
                (false, Some(_)) => runs.extend(open.take()),
                (false, None) => {}
            }
        }
        runs.extend(open);
        runs.sort_by_key(|r| r.start);
        WeeklySchedule { runs }
    }
}

/// Random schedules for the property tests of the submodules.
#[cfg(test)]
pub(super) mod strategies {
    use proptest::prelude::*;

    use super::{ClockTime, Day, Slot};

    /// A valid slot: some days, a non-empty range (possibly crossing midnight).
    pub(crate) fn slot() -> impl Strategy<Value = Slot> {
        (
            proptest::sample::subsequence(Day::ALL.to_vec(), 1..=7),
            0u16..1_440,
            0u16..=1_440,
        )
            .prop_filter("non-empty range", |(_, s, e)| s != e)
            .prop_map(|(days, s, e)| Slot {
                days,
                start: ClockTime(s),
                end: ClockTime(e),
            })
    }

    /// One to five slots.
    pub(crate) fn slots() -> impl Strategy<Value = Vec<Slot>> {
        proptest::collection::vec(slot(), 1..6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(days: &[Day], start: &str, end: &str) -> Slot {
        Slot {
            days: days.to_vec(),
            start: start.parse().unwrap(),
            end: end.parse().unwrap(),
        }
    }

    #[test]
    fn clock_times_are_hh_mm_with_24_00_as_end_of_day() {
        assert_eq!("08:30".parse::<ClockTime>().unwrap().minutes(), 510);
        assert_eq!("8:30".parse::<ClockTime>().unwrap().to_string(), "08:30");
        assert_eq!("24:00".parse::<ClockTime>().unwrap(), ClockTime::END_OF_DAY);
        assert_eq!("00:00".parse::<ClockTime>().unwrap(), ClockTime::MIDNIGHT);
        for bad in [
            "24:01", "23:60", "8", "08:0", "008:00", "+8:00", "08:00:00", "", "ab:cd",
        ] {
            assert!(bad.parse::<ClockTime>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn day_names_are_three_letters_or_full_ignoring_case() {
        assert_eq!(Day::from_name("mon"), Some(Day::Mon));
        assert_eq!(Day::from_name("SUNDAY"), Some(Day::Sun));
        assert_eq!(Day::from_name("Thurs"), None);
        assert_eq!(Day::from_index(9), Day::Wed);
    }

    #[test]
    fn touching_and_overlapping_ranges_join_into_one_run() {
        let joined = WeeklySchedule::from_slots(&[
            slot(&[Day::Mon], "08:00", "12:00"),
            slot(&[Day::Mon], "12:00", "18:00"),
            slot(&[Day::Mon], "10:00", "13:00"),
        ])
        .unwrap();
        let single = WeeklySchedule::from_slots(&[slot(&[Day::Mon], "08:00", "18:00")]).unwrap();
        assert_eq!(joined, single);
        assert_eq!(
            joined.runs(),
            &[Run {
                start: 8 * 60,
                len: 600
            }]
        );
    }

    #[test]
    fn a_range_ending_at_or_before_its_start_ends_the_next_day() {
        let crossing = WeeklySchedule::from_slots(&[slot(&[Day::Fri], "22:00", "06:00")]).unwrap();
        assert_eq!(
            crossing.runs(),
            &[Run {
                start: 4 * 1440 + 22 * 60,
                len: 480
            }]
        );
        let to_midnight =
            WeeklySchedule::from_slots(&[slot(&[Day::Fri], "22:00", "00:00")]).unwrap();
        let to_24 = WeeklySchedule::from_slots(&[slot(&[Day::Fri], "22:00", "24:00")]).unwrap();
        assert_eq!(to_midnight, to_24);
    }

    #[test]
    fn a_sunday_night_range_wraps_into_monday_as_one_run() {
        let s = WeeklySchedule::from_slots(&[
            slot(&[Day::Sun], "22:00", "24:00"),
            slot(&[Day::Mon], "00:00", "06:00"),
        ])
        .unwrap();
        assert_eq!(
            s.runs(),
            &[Run {
                start: 6 * 1440 + 22 * 60,
                len: 480
            }]
        );
    }

    #[test]
    fn every_minute_of_the_week_is_always() {
        let s = WeeklySchedule::from_slots(&[slot(&Day::ALL, "00:00", "24:00")]).unwrap();
        assert!(s.is_always());
        assert_eq!(s, WeeklySchedule::always());
        let almost = WeeklySchedule::from_slots(&[slot(&Day::ALL, "00:01", "24:00")]).unwrap();
        assert!(!almost.is_always());
    }

    #[test]
    fn invalid_slots_are_refused_with_their_index() {
        assert_eq!(WeeklySchedule::from_slots(&[]), Err(ScheduleError::NoSlots));
        let ok = slot(&[Day::Mon], "08:00", "09:00");
        assert_eq!(
            WeeklySchedule::from_slots(&[ok.clone(), slot(&[], "08:00", "09:00")]),
            Err(ScheduleError::NoDays { slot: 1 })
        );
        assert!(matches!(
            WeeklySchedule::from_slots(&[ok.clone(), slot(&[Day::Tue], "09:00", "09:00")]),
            Err(ScheduleError::EmptyRange { slot: 1, .. })
        ));
        assert_eq!(
            WeeklySchedule::from_slots(&[slot(&[Day::Tue], "24:00", "06:00")]),
            Err(ScheduleError::StartsAtEndOfDay { slot: 0 })
        );
    }
}
