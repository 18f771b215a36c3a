//! Evaluating a schedule at an instant, in the lock's time zone.
//!
//! Slots are wall-clock times. One occurrence of a run (start `S`, end `E` as local civil
//! datetimes) is the interval of instants `[resolve(S), resolve(E))`, where `resolve(t)`
//! is the first instant at which the lock's wall clock reads `t` or later:
//! - a time that exists once is that instant;
//! - a time repeated by a fall-back (a fold) is its first occurrence (jiff's `compatible`
//!   and `earlier`): a slot 01:00-02:30 on Europe/Berlin's 2026-10-25 ends at 02:30 CEST,
//!   before the repeated hour; a slot from 02:30 starts at 02:30 CEST and keeps running
//!   through the repeated hour;
//! - a time skipped by a spring-forward (a gap) is the transition itself, the first
//!   instant after the gap: 02:30 on Europe/Berlin's 2026-03-29 resolves to 03:00 CEST
//!   (01:00 UTC). A slot entirely inside the gap (02:00-03:00 that day) is empty.
//!
//! `resolve` never decreases, so occurrences keep their order; two occurrences whose
//! boundaries fall in the same gap become adjacent and join. An instant is inside the
//! schedule when an occurrence contains it; the slot's end is that (joined) occurrence's
//! end. Anything jiff cannot represent (beyond the years -9999..=9999) is treated as
//! outside: the policy fails closed.

use jiff::civil::{DateTime, Time};
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::{SignedDuration, Timestamp};

use super::{MINUTES_PER_WEEK, WeeklySchedule};

/// Where an instant stands in a schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScheduleCheck {
    /// Every minute of the week is allowed: no end.
    Always,
    /// Inside a slot that ends at `until_s` (Unix seconds, > now).
    Inside {
        /// The first instant after the slot.
        until_s: u64,
    },
    /// Outside every slot.
    Outside {
        /// When the next slot opens (Unix seconds), if it could be computed.
        next_start_s: Option<u64>,
    },
}

impl ScheduleCheck {
    /// Whether the instant is inside the schedule.
    pub fn is_inside(self) -> bool {
        !matches!(self, ScheduleCheck::Outside { .. })
    }
}

impl WeeklySchedule {
    /// Where `now_s` (Unix seconds) stands in this schedule in the time zone `tz`.
    pub fn check(&self, now_s: u64, tz: &TimeZone) -> ScheduleCheck {
        if self.is_always() {
            return ScheduleCheck::Always;
        }
        let outside = ScheduleCheck::Outside { next_start_s: None };
        let Some(now) = i64::try_from(now_s)
            .ok()
            .and_then(|s| Timestamp::from_second(s).ok())
        else {
            return outside;
        };
        let Some(occurrences) = self.occurrences_around(now, tz) else {
            return outside;
        };
        let now = now.as_second();
        let to_u64 = |s: i64| u64::try_from(s).ok();
        match occurrences.iter().find(|&&(a, b)| a <= now && now < b) {
            Some(&(_, end)) => match to_u64(end) {
                Some(until_s) => ScheduleCheck::Inside { until_s },
                None => outside,
            },
            None => ScheduleCheck::Outside {
                next_start_s: occurrences
                    .iter()
                    .map(|&(a, _)| a)
                    .find(|&a| a > now)
                    .and_then(to_u64),
            },
        }
    }

    /// The occurrences of every run in the weeks around `now` (from two weeks before to
    /// one week after the local week of `now`) as half-open intervals of Unix seconds,
    /// sorted, non-empty, with touching ones joined. Runs are shorter than a week, so an
    /// occurrence containing `now` starts in one of these weeks, and one that touches it
    /// through a gap is among them too; `None` when jiff cannot represent a date there.
    fn occurrences_around(&self, now: Timestamp, tz: &TimeZone) -> Option<Vec<(i64, i64)>> {
        let local = tz.to_datetime(now);
        let monday = local
            .date()
            .checked_sub(SignedDuration::from_hours(
                24 * i64::from(local.date().weekday().to_monday_zero_offset()),
            ))
            .ok()?
            .to_datetime(Time::midnight());
        let week = i64::from(MINUTES_PER_WEEK);
        let mut intervals = Vec::with_capacity(4 * self.runs().len());
        for k in -2..=1 {
            for run in self.runs() {
                let start = k * week + i64::from(run.start);
                let end = start + i64::from(run.len);
                let a = resolve(tz, minutes_after(monday, start)?)?;
                let b = resolve(tz, minutes_after(monday, end)?)?;
                if a < b {
                    intervals.push((a.as_second(), b.as_second()));
                }
            }
        }
        intervals.sort_unstable();
        let mut joined: Vec<(i64, i64)> = Vec::with_capacity(intervals.len());
        for (a, b) in intervals {
            match joined.last_mut() {
                Some(last) if a <= last.1 => last.1 = last.1.max(b),
                _ => joined.push((a, b)),
            }
        }
        Some(joined)
    }
}

/// The civil datetime `minutes` after `base` (wall-clock arithmetic: every day 24 h).
fn minutes_after(base: DateTime, minutes: i64) -> Option<DateTime> {
    base.checked_add(SignedDuration::from_secs(minutes.checked_mul(60)?))
        .ok()
}

/// The first instant at which the wall clock in `tz` reads `dt` or later (module docs).
fn resolve(tz: &TimeZone, dt: DateTime) -> Option<Timestamp> {
    let ambiguous = tz.to_ambiguous_timestamp(dt);
    match ambiguous.offset() {
        AmbiguousOffset::Unambiguous { .. } | AmbiguousOffset::Fold { .. } => {
            ambiguous.earlier().ok()
        }
        AmbiguousOffset::Gap { after, .. } => {
            // Read with the offset after the gap, `dt` names an instant before the
            // transition; the transition that follows it is the end of the gap.
            let before_gap = after.to_timestamp(dt).ok()?;
            tz.following(before_gap)
                .next()
                .map(|t| t.timestamp())
                .or_else(|| ambiguous.compatible().ok())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::time_zone;

    /// Unix seconds of an RFC 3339 instant (wall-clock time and its UTC offset).
    fn at(instant: &str) -> u64 {
        let ts: Timestamp = instant.parse().unwrap();
        u64::try_from(ts.as_second()).unwrap()
    }

    /// What a check should say, with instants in RFC 3339.
    #[derive(Debug, Clone, Copy)]
    enum Want {
        /// Inside, the slot ending at this instant.
        In(&'static str),
        /// Outside, the next slot opening at this instant.
        Out(&'static str),
    }

    /// Checks `schedule` in `zone` at each `(now, want)`.
    fn assert_checks(schedule: &str, zone: &str, cases: &[(&str, Want)]) {
        let s = WeeklySchedule::parse(schedule).unwrap();
        let tz = time_zone(zone).unwrap();
        for &(now, want) in cases {
            let expected = match want {
                Want::In(until) => ScheduleCheck::Inside { until_s: at(until) },
                Want::Out(next) => ScheduleCheck::Outside {
                    next_start_s: Some(at(next)),
                },
            };
            assert_eq!(
                s.check(at(now), &tz),
                expected,
                "{schedule:?} in {zone} at {now}"
            );
        }
    }

    use Want::{In, Out};

    // 2026-03-02 is a Monday.
    const WEEKDAYS: &str = "Mon-Fri 08:00-18:00";

    #[test]
    fn a_slot_includes_its_start_and_excludes_its_end() {
        let (open, close) = ("2026-03-02T08:00:00+01:00", "2026-03-02T18:00:00+01:00");
        let tomorrow = "2026-03-03T08:00:00+01:00";
        assert_checks(
            WEEKDAYS,
            "Europe/Berlin",
            &[
                ("2026-03-02T07:59:59+01:00", Out(open)),
                (open, In(close)),
                ("2026-03-02T17:59:59+01:00", In(close)),
                (close, Out(tomorrow)),
                ("2026-03-02T18:00:01+01:00", Out(tomorrow)),
            ],
        );
    }

    #[test]
    fn the_weekend_is_outside_a_weekday_schedule_until_monday() {
        // Saturday 2026-03-07.
        assert_checks(
            WEEKDAYS,
            "UTC",
            &[("2026-03-07T12:00:00Z", Out("2026-03-09T08:00:00Z"))],
        );
    }

    #[test]
    fn a_slot_crossing_midnight_runs_into_the_next_day() {
        let end = "2026-03-03T06:00:00Z";
        assert_checks(
            "Mon 22:00-06:00",
            "UTC",
            &[
                ("2026-03-02T23:59:59Z", In(end)),
                ("2026-03-03T00:00:00Z", In(end)),
                ("2026-03-03T05:59:59Z", In(end)),
                (end, Out("2026-03-09T22:00:00Z")),
                // The slot belongs to the day it starts: Monday 00:30 is not in it.
                ("2026-03-02T00:30:00Z", Out("2026-03-02T22:00:00Z")),
            ],
        );
    }

    #[test]
    fn a_sunday_night_slot_wraps_into_monday() {
        // Sunday 2026-03-08 23:59:59 → Monday 2026-03-09 00:00:00.
        let end = "2026-03-09T06:00:00Z";
        assert_checks(
            "Sun 22:00-06:00",
            "UTC",
            &[
                ("2026-03-08T23:59:59Z", In(end)),
                ("2026-03-09T00:00:00Z", In(end)),
                (end, Out("2026-03-15T22:00:00Z")),
            ],
        );
    }

    #[test]
    fn adjacent_slots_join_so_the_slot_runs_to_the_later_end() {
        assert_checks(
            "Mon 08:00-12:00,12:00-18:00",
            "UTC",
            &[("2026-03-02T11:59:00Z", In("2026-03-02T18:00:00Z"))],
        );
        assert_checks(
            "Mon 20:00-24:00; Tue 00:00-02:00",
            "UTC",
            &[("2026-03-02T23:00:00Z", In("2026-03-03T02:00:00Z"))],
        );
    }

    #[test]
    fn always_has_no_end() {
        let s = WeeklySchedule::parse("always").unwrap();
        let tz = time_zone("Europe/Berlin").unwrap();
        let now = at("2026-03-29T02:30:00+02:00");
        assert_eq!(s.check(now, &tz), ScheduleCheck::Always);
        assert!(ScheduleCheck::Always.is_inside());
    }

    #[test]
    fn spring_forward_in_berlin_resolves_skipped_boundaries_to_03_00() {
        // 2026-03-29 (Sunday): 02:00 CET jumps to 03:00 CEST (01:00 UTC).
        let z = "Europe/Berlin";
        assert_checks(
            "Sun 01:00-02:30",
            z,
            &[
                ("2026-03-29T01:30:00+01:00", In("2026-03-29T03:00:00+02:00")),
                ("2026-03-29T01:59:59+01:00", In("2026-03-29T01:00:00Z")),
                (
                    "2026-03-29T03:00:00+02:00",
                    Out("2026-04-05T01:00:00+02:00"),
                ),
            ],
        );
        // Starting in the gap: the slot opens at 03:00 CEST.
        assert_checks(
            "Sun 02:30-04:00",
            z,
            &[
                (
                    "2026-03-29T01:59:59+01:00",
                    Out("2026-03-29T03:00:00+02:00"),
                ),
                ("2026-03-29T03:00:00+02:00", In("2026-03-29T04:00:00+02:00")),
            ],
        );
    }

    #[test]
    fn a_slot_inside_the_spring_forward_gap_does_not_exist_that_day() {
        let next_week = "2026-04-05T02:00:00+02:00";
        assert_checks(
            "Sun 02:00-03:00",
            "Europe/Berlin",
            &[
                ("2026-03-29T01:59:59+01:00", Out(next_week)),
                ("2026-03-29T03:00:00+02:00", Out(next_week)),
                // The Sunday before, it exists.
                ("2026-03-22T02:30:00+01:00", In("2026-03-22T03:00:00+01:00")),
            ],
        );
    }

    #[test]
    fn slots_meeting_in_the_gap_join() {
        // 01:00-02:15 ends at the transition, 02:45-04:00 starts there.
        assert_checks(
            "Sun 01:00-02:15,02:45-04:00",
            "Europe/Berlin",
            &[("2026-03-29T01:30:00+01:00", In("2026-03-29T04:00:00+02:00"))],
        );
    }

    #[test]
    fn spring_forward_in_new_york_ends_a_slot_at_03_00_edt() {
        // 2026-03-08 (Sunday): 02:00 EST jumps to 03:00 EDT (07:00 UTC).
        let z = "America/New_York";
        assert_checks(
            "Sun 00:00-02:30",
            z,
            &[("2026-03-08T01:00:00-05:00", In("2026-03-08T07:00:00Z"))],
        );
        assert_checks(
            "Sat 22:00-02:30",
            z,
            &[("2026-03-07T23:00:00-05:00", In("2026-03-08T03:00:00-04:00"))],
        );
        // A 02:00-04:00 slot lasts one hour of real time that day.
        assert_checks(
            "Sun 02:00-04:00",
            z,
            &[
                ("2026-03-08T01:59:59-05:00", Out("2026-03-08T07:00:00Z")),
                ("2026-03-08T03:00:00-04:00", In("2026-03-08T04:00:00-04:00")),
            ],
        );
    }

    #[test]
    fn fall_back_in_berlin_ends_at_the_first_occurrence_of_a_repeated_time() {
        // 2026-10-25 (Sunday): 03:00 CEST falls back to 02:00 CET (01:00 UTC);
        // 02:00-02:59 happens twice.
        let next_week = "2026-11-01T01:00:00+01:00";
        assert_checks(
            "Sun 01:00-02:30",
            "Europe/Berlin",
            &[
                ("2026-10-25T02:15:00+02:00", In("2026-10-25T02:30:00+02:00")),
                ("2026-10-25T02:30:00+02:00", Out(next_week)),
                // The repeated 02:15 (CET) is after the slot's end.
                ("2026-10-25T02:15:00+01:00", Out(next_week)),
            ],
        );
    }

    #[test]
    fn fall_back_in_berlin_starts_at_the_first_occurrence_and_covers_the_repeat() {
        // First 02:30 (CEST) opens it; the repeated hour (CET) stays inside, 2.5 h in all.
        let end = "2026-10-25T03:00:00Z";
        assert_checks(
            "Sun 02:30-04:00",
            "Europe/Berlin",
            &[
                ("2026-10-25T02:29:59+02:00", Out("2026-10-25T00:30:00Z")),
                ("2026-10-25T02:30:00+02:00", In(end)),
                ("2026-10-25T02:00:00+01:00", In(end)),
                ("2026-10-25T02:15:00+01:00", In(end)),
                ("2026-10-25T03:59:59+01:00", In(end)),
                (
                    "2026-10-25T04:00:00+01:00",
                    Out("2026-11-01T02:30:00+01:00"),
                ),
            ],
        );
    }

    #[test]
    fn fall_back_in_new_york_cap_is_the_first_01_30() {
        // 2026-11-01 (Sunday): 02:00 EDT falls back to 01:00 EST (06:00 UTC).
        let z = "America/New_York";
        assert_checks(
            "Sun 00:00-01:30",
            z,
            &[
                ("2026-11-01T01:10:00-04:00", In("2026-11-01T05:30:00Z")),
                // The second 01:10 (EST) is outside: the slot ended at the first 01:30.
                (
                    "2026-11-01T01:10:00-05:00",
                    Out("2026-11-08T00:00:00-05:00"),
                ),
            ],
        );
        // A slot over the whole night lasts one hour longer in real time.
        assert_checks(
            "Sat 22:00-06:00",
            z,
            &[
                ("2026-11-01T01:30:00-05:00", In("2026-11-01T06:00:00-05:00")),
                ("2026-11-01T01:30:00-04:00", In("2026-11-01T11:00:00Z")),
            ],
        );
    }

    #[test]
    fn half_hour_offsets_are_honoured() {
        // Asia/Kolkata is UTC+05:30 all year.
        assert_checks(
            WEEKDAYS,
            "Asia/Kolkata",
            &[
                ("2026-03-02T08:00:00+05:30", In("2026-03-02T12:30:00Z")),
                ("2026-03-02T02:29:59Z", Out("2026-03-02T02:30:00Z")),
            ],
        );
        // Australia/Adelaide: ACDT (+10:30) ends 2026-04-05 03:00 → 02:00 ACST (+09:30).
        let z = "Australia/Adelaide";
        assert_checks(
            "Sun 01:00-02:30",
            z,
            &[
                ("2026-04-05T02:10:00+10:30", In("2026-04-04T16:00:00Z")),
                (
                    "2026-04-05T02:10:00+09:30",
                    Out("2026-04-12T01:00:00+09:30"),
                ),
            ],
        );
        // ACDT starts 2026-10-04 02:00 ACST → 03:00 ACDT: 02:30 resolves to 03:00 ACDT.
        assert_checks(
            "Sun 00:00-02:30",
            z,
            &[("2026-10-04T01:00:00+09:30", In("2026-10-04T03:00:00+10:30"))],
        );
        assert_checks(
            "Sun 00:00-02:30",
            z,
            &[("2026-10-04T01:00:00+09:30", In("2026-10-03T16:30:00Z"))],
        );
    }

    #[test]
    fn instants_jiff_cannot_represent_are_outside() {
        let s = WeeklySchedule::parse(WEEKDAYS).unwrap();
        let tz = TimeZone::UTC;
        let unknown = ScheduleCheck::Outside { next_start_s: None };
        assert_eq!(s.check(u64::MAX, &tz), unknown);
        assert_eq!(s.check(253_402_300_799, &tz), unknown); // 9999-12-31T23:59:59Z
        assert_eq!(
            WeeklySchedule::always().check(u64::MAX, &tz),
            ScheduleCheck::Always
        );
    }

    /// Whether local minute-of-week `m` is in `slots`, straight from the slot definition
    /// (independent of the run merging).
    fn in_slots(slots: &[super::super::Slot], m: i64) -> bool {
        let week = i64::from(MINUTES_PER_WEEK);
        slots.iter().any(|s| {
            let (start, end) = (i64::from(s.start.minutes()), i64::from(s.end.minutes()));
            let len = if end > start {
                end - start
            } else {
                1_440 - start + end
            };
            s.days.iter().any(|d| {
                let first = i64::from(d.index()) * 1_440 + start;
                (m - first).rem_euclid(week) < len
            })
        })
    }

    /// The check by brute force, minute by minute, for a zone at a fixed `offset_s` over
    /// the week around `now`.
    fn reference(slots: &[super::super::Slot], now: i64, offset_s: i64) -> ScheduleCheck {
        // Unix second 0 was a Thursday: local minute-of-week from Monday 00:00.
        let minute_of_week = |t: i64| (t + offset_s + 3 * 86_400).div_euclid(60);
        let boundary = |m: i64| m * 60 - offset_s - 3 * 86_400;
        let here = minute_of_week(now);
        let week = i64::from(MINUTES_PER_WEEK);
        let want = !in_slots(slots, here);
        match (1..=week)
            .map(|k| here + k)
            .find(|&m| in_slots(slots, m) == want)
        {
            None if !want => ScheduleCheck::Always,
            None => ScheduleCheck::Outside { next_start_s: None },
            Some(m) if want => ScheduleCheck::Outside {
                next_start_s: u64::try_from(boundary(m)).ok(),
            },
            Some(m) => ScheduleCheck::Inside {
                until_s: u64::try_from(boundary(m)).unwrap(),
            },
        }
    }

    proptest::proptest! {
        #[test]
        fn check_matches_the_slots_minute_by_minute_in_utc(
            slots in super::super::strategies::slots(),
            // 2026-01-01 .. 2027-01-01
            now in 1_767_225_600i64..1_798_761_600,
        ) {
            let s = WeeklySchedule::from_slots(&slots).unwrap();
            let got = s.check(u64::try_from(now).unwrap(), &TimeZone::UTC);
            proptest::prop_assert_eq!(got, reference(&slots, now, 0), "{}", s);
        }

        #[test]
        fn check_matches_the_slots_in_berlin_summer_time(
            slots in super::super::strategies::slots(),
            // 2026-04-13 .. 2026-10-10: CEST (+02:00) a week either side.
            now in 1_776_038_400i64..1_791_590_400,
        ) {
            let s = WeeklySchedule::from_slots(&slots).unwrap();
            let got = s.check(u64::try_from(now).unwrap(), &time_zone("Europe/Berlin").unwrap());
            proptest::prop_assert_eq!(got, reference(&slots, now, 7_200), "{}", s);
        }
    }
}
