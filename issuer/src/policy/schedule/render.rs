//! The canonical forms of a schedule: text (`Display`) and JSON (serde), both read back
//! to an equal [`WeeklySchedule`].
//!
//! Each run is cut into pieces that start on one day: a piece ends at the run's end when
//! that is on the same day, or on the next day before the piece's start time (a range
//! crossing midnight, `22:00-06:00`); otherwise it ends at 24:00 and the next piece starts
//! at 00:00. Days with equal pieces are grouped (`Mon-Fri`, `Sat,Sun`, `daily`), groups in
//! the order of their first day, ranges by start. The whole week prints `always`.
//!
//! JSON (the `access.schedule_json` column):
//! `{"slots":[{"days":["mon","tue"],"start":"08:00","end":"18:00"}]}` — one slot per
//! group and range; `always` is one slot of every day from 00:00 to 24:00.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{ClockTime, Day, MINUTES_PER_DAY, Slot, WeeklySchedule};

/// A range of one day: its start, and its end (< start when it ends the next day).
type DayRange = (ClockTime, ClockTime);

/// Groups of days with the same ranges, in the order of their first day.
fn groups(schedule: &WeeklySchedule) -> Vec<(Vec<Day>, Vec<DayRange>)> {
    let day_len = u32::from(MINUTES_PER_DAY);
    let mut by_day: [Vec<DayRange>; 7] = Default::default();
    for run in schedule.runs() {
        let mut p = u32::from(run.start);
        let end = p + u32::from(run.len);
        while p < end {
            let day_start = p - p % day_len;
            let next_midnight = day_start + day_len;
            let start = p % day_len;
            let (piece_end, end_time) = if end <= next_midnight {
                (end, end - day_start)
            } else if start != 0 && end - next_midnight < start {
                (end, end - next_midnight)
            } else {
                (next_midnight, day_len)
            };
            let day = (day_start / day_len) as usize % 7;
            by_day[day].push((minute_time(start), minute_time(end_time)));
            p = piece_end;
        }
    }
    let mut groups: Vec<(Vec<Day>, Vec<DayRange>)> = Vec::new();
    for (i, mut ranges) in by_day.into_iter().enumerate() {
        if ranges.is_empty() {
            continue;
        }
        ranges.sort();
        let day = Day::from_index(i);
        match groups.iter_mut().find(|(_, r)| *r == ranges) {
            Some((days, _)) => days.push(day),
            None => groups.push((vec![day], ranges)),
        }
    }
    groups
}

/// A minute of the day (0..=1440) as a clock time; callers stay in range.
fn minute_time(m: u32) -> ClockTime {
    ClockTime(
        u16::try_from(m)
            .unwrap_or(MINUTES_PER_DAY)
            .min(MINUTES_PER_DAY),
    )
}

/// The canonical slots: one per (group of days, range).
pub(super) fn canonical_slots(schedule: &WeeklySchedule) -> Vec<Slot> {
    groups(schedule)
        .into_iter()
        .flat_map(|(days, ranges)| {
            ranges.into_iter().map(move |(start, end)| Slot {
                days: days.clone(),
                start,
                end,
            })
        })
        .collect()
}

/// `Mon-Fri`, `Mon,Wed`, `Sat,Sun`, `Mon,Fri-Sun`, `daily`.
fn days_text(days: &[Day]) -> String {
    if days.len() == 7 {
        return "daily".into();
    }
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while let Some(&first) = days.get(i) {
        let mut j = i;
        while days
            .get(j + 1)
            .is_some_and(|d| d.index() == days[j].index() + 1)
        {
            j += 1;
        }
        if j - i >= 2 {
            parts.push(format!("{first}-{}", days[j]));
        } else {
            parts.extend(days[i..=j].iter().map(Day::to_string));
        }
        i = j + 1;
    }
    parts.join(",")
}

impl fmt::Display for WeeklySchedule {
    /// The canonical text: it parses back to an equal schedule.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_always() {
            return f.write_str("always");
        }
        for (n, (days, ranges)) in groups(self).iter().enumerate() {
            if n > 0 {
                f.write_str("; ")?;
            }
            f.write_str(&days_text(days))?;
            for (k, (start, end)) in ranges.iter().enumerate() {
                let sep = if k == 0 { ' ' } else { ',' };
                write!(f, "{sep}{start}-{end}")?;
            }
        }
        Ok(())
    }
}

/// The JSON form.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScheduleJson {
    slots: Vec<Slot>,
}

impl Serialize for WeeklySchedule {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        ScheduleJson {
            slots: canonical_slots(self),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for WeeklySchedule {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let json = ScheduleJson::deserialize(d)?;
        WeeklySchedule::from_slots(&json.slots).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn canonical(text: &str) -> String {
        WeeklySchedule::parse(text).unwrap().to_string()
    }

    #[test]
    fn canonical_text_groups_days_and_keeps_crossing_ranges() {
        assert_eq!(
            canonical("Sat,Sun 10:00-12:30; Mon-Fri 08:00-18:00"),
            "Mon-Fri 08:00-18:00; Sat,Sun 10:00-12:30"
        );
        assert_eq!(canonical("daily 22:00-06:00"), "daily 22:00-06:00");
        assert_eq!(canonical("Mon-Sun 9:00-10:00"), "daily 09:00-10:00");
        assert_eq!(canonical("Fri-Mon 09:00-10:00"), "Mon,Fri-Sun 09:00-10:00");
        assert_eq!(canonical("Mon,Wed 09:00-10:00"), "Mon,Wed 09:00-10:00");
        assert_eq!(canonical("always"), "always");
        assert_eq!(canonical("daily 00:00-24:00"), "always");
    }

    #[test]
    fn canonical_text_joins_adjacent_ranges() {
        assert_eq!(canonical("Mon 08:00-12:00,12:00-18:00"), "Mon 08:00-18:00");
        assert_eq!(
            canonical("Mon 22:00-24:00; Tue 00:00-06:00"),
            "Mon 22:00-06:00"
        );
        assert_eq!(
            canonical("Sun 22:00-24:00; Mon 00:00-06:00"),
            "Sun 22:00-06:00"
        );
        assert_eq!(canonical("Mon 20:00-00:00"), "Mon 20:00-24:00");
    }

    #[test]
    fn runs_longer_than_a_day_print_as_whole_days() {
        assert_eq!(canonical("Mon-Fri 00:00-24:00"), "Mon-Fri 00:00-24:00");
        // Friday 18:00 to Monday 08:00.
        assert_eq!(
            canonical("Fri 18:00-24:00; Sat,Sun 00:00-24:00; Mon 00:00-08:00"),
            "Mon 00:00-08:00; Fri 18:00-24:00; Sat,Sun 00:00-24:00"
        );
        // 22:00 to 23:00 the next day: not a crossing range (its end is after its start).
        assert_eq!(
            canonical("Mon 22:00-24:00; Tue 00:00-23:00"),
            "Mon 22:00-24:00; Tue 00:00-23:00"
        );
    }

    #[test]
    fn json_form_is_slots_of_days_and_times() {
        let s = WeeklySchedule::parse("Mon-Fri 08:00-12:00,13:00-17:00; Sun 22:00-06:00").unwrap();
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(
            json,
            r#"{"slots":[{"days":["mon","tue","wed","thu","fri"],"start":"08:00","end":"12:00"},{"days":["mon","tue","wed","thu","fri"],"start":"13:00","end":"17:00"},{"days":["sun"],"start":"22:00","end":"06:00"}]}"#
        );
        assert_eq!(serde_json::from_str::<WeeklySchedule>(&json).unwrap(), s);
        let always = serde_json::to_string(&WeeklySchedule::always()).unwrap();
        assert_eq!(
            serde_json::from_str::<WeeklySchedule>(&always).unwrap(),
            WeeklySchedule::always()
        );
    }

    #[test]
    fn invalid_json_schedules_are_refused() {
        for bad in [
            r#"{"slots":[]}"#,
            r#"{"slots":[{"days":[],"start":"08:00","end":"09:00"}]}"#,
            r#"{"slots":[{"days":["mon"],"start":"08:00","end":"08:00"}]}"#,
            r#"{"slots":[{"days":["mon"],"start":"24:00","end":"08:00"}]}"#,
            r#"{"slots":[{"days":["mon"],"start":"8h","end":"09:00"}]}"#,
            r#"{"slots":[{"days":["moon"],"start":"08:00","end":"09:00"}]}"#,
            r#"{"slots":[{"days":["mon"],"start":"08:00","end":"09:00","tz":"UTC"}]}"#,
            r#""Mon 08:00-09:00""#,
        ] {
            assert!(
                serde_json::from_str::<WeeklySchedule>(bad).is_err(),
                "{bad}"
            );
        }
    }

    fn arb_schedule() -> impl Strategy<Value = WeeklySchedule> {
        super::super::strategies::slots()
            .prop_map(|slots| WeeklySchedule::from_slots(&slots).unwrap())
    }

    proptest! {
        #[test]
        fn canonical_text_round_trips(s in arb_schedule()) {
            let text = s.to_string();
            let back = WeeklySchedule::parse(&text).unwrap();
            prop_assert_eq!(&back, &s, "text {}", text);
            prop_assert_eq!(back.to_string(), text);
        }

        #[test]
        fn json_round_trips(s in arb_schedule()) {
            let json = serde_json::to_string(&s).unwrap();
            let back: WeeklySchedule = serde_json::from_str(&json).unwrap();
            prop_assert_eq!(&back, &s);
            prop_assert_eq!(serde_json::to_string(&back).unwrap(), json);
        }

        #[test]
        fn canonical_slots_rebuild_the_schedule(s in arb_schedule()) {
            prop_assert_eq!(WeeklySchedule::from_slots(&s.slots()).unwrap(), s);
        }
    }
}
