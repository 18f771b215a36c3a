//! Times as the pages show and the forms take them: UTC, `YYYY-MM-DD HH:MM:SS`, and the
//! `datetime-local` input's `YYYY-MM-DDTHH:MM[:SS]`. Civil-date arithmetic after Howard
//! Hinnant's `days_from_civil` / `civil_from_days` (proleptic Gregorian).

const MS_PER_DAY: u64 = 86_400_000;

/// Days since 1970-01-01 of a civil date.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

struct Civil {
    y: i64,
    mo: u32,
    d: u32,
    h: u64,
    mi: u64,
    s: u64,
}

fn civil(ms: u64) -> Civil {
    let days = ms / MS_PER_DAY;
    let rem = (ms % MS_PER_DAY) / 1000;
    let (y, mo, d) = civil_from_days(days as i64);
    Civil {
        y,
        mo,
        d,
        h: rem / 3600,
        mi: rem / 60 % 60,
        s: rem % 60,
    }
}

/// `2025-03-01 14:05:09 UTC`.
pub fn format_utc(ms: u64) -> String {
    let c = civil(ms);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
        c.y, c.mo, c.d, c.h, c.mi, c.s
    )
}

/// `2025-03-01 15:05:09 CET`: the wall clock of the IANA zone `zone` (a lock's), from the
/// database bundled with the issuer; `None` for UTC itself, an unknown zone or a time beyond
/// the calendar.
pub fn format_in_zone(ms: u64, zone: &str) -> Option<String> {
    let tz = crate::policy::time_zone(zone).ok()?;
    if tz == jiff::tz::TimeZone::UTC {
        return None;
    }
    let at = jiff::Timestamp::from_millisecond(i64::try_from(ms).ok()?).ok()?;
    Some(at.to_zoned(tz).strftime("%Y-%m-%d %H:%M:%S %Z").to_string())
}

/// `2025-03-01T14:05`, the value of a `datetime-local` input.
pub fn format_input(ms: u64) -> String {
    let c = civil(ms);
    format!("{:04}-{:02}-{:02}T{:02}:{:02}", c.y, c.mo, c.d, c.h, c.mi)
}

/// `14:00` (hour labels of the chart).
pub fn format_hour(ms: u64) -> String {
    let c = civil(ms);
    format!("{:02}:{:02}", c.h, c.mi)
}

/// `03-01` (day labels of the chart).
pub fn format_day(ms: u64) -> String {
    let c = civil(ms);
    format!("{:02}-{:02}", c.mo, c.d)
}

/// "5 min ago", "3 h ago", "2 d ago" (or "in …" for a time ahead of `now_ms`).
pub fn format_age(ms: u64, now_ms: u64) -> String {
    let (delta, ahead) = if ms > now_ms {
        (ms - now_ms, true)
    } else {
        (now_ms - ms, false)
    };
    let s = delta / 1000;
    let text = match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        3600..86_400 => format!("{} h", s / 3600),
        _ => format!("{} d", s / 86_400),
    };
    if ahead {
        format!("in {text}")
    } else {
        format!("{text} ago")
    }
}

/// Parses `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM`, `YYYY-MM-DDTHH:MM:SS` (or with a space for the
/// `T`) as UTC into Unix ms. Years 1970..=9999.
pub fn parse_utc(text: &str) -> Result<u64, String> {
    let bad = || {
        format!(
            "{text:?} is not a date and time like 2025-03-01T14:05 (UTC) or a date like 2025-03-01"
        )
    };
    let text_trim = text.trim();
    let (date, time) = match text_trim.split_once(['T', ' ']) {
        Some((d, t)) => (d, Some(t)),
        None => (text_trim, None),
    };
    let number = |s: &str, len: usize| -> Result<u32, String> {
        if s.len() != len || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        s.parse::<u32>().map_err(|_| bad())
    };
    let mut parts = date.split('-');
    let (Some(y), Some(mo), Some(d), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    let (y, mo, d) = (number(y, 4)?, number(mo, 2)?, number(d, 2)?);
    let y = i64::from(y);
    if y < 1970 || !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) {
        return Err(bad());
    }
    let (h, mi, s) = match time {
        None => (0, 0, 0),
        Some(t) => {
            let mut parts = t.split(':');
            let h = number(parts.next().unwrap_or(""), 2)?;
            let mi = number(parts.next().unwrap_or(""), 2)?;
            let s = match parts.next() {
                Some(s) => number(s, 2)?,
                None => 0,
            };
            if parts.next().is_some() || h > 23 || mi > 59 || s > 59 {
                return Err(bad());
            }
            (h, mi, s)
        }
    };
    let days = days_from_civil(y, mo, d);
    let secs = u64::try_from(days).map_err(|_| bad())? * 86_400
        + u64::from(h) * 3600
        + u64::from(mi) * 60
        + u64::from(s);
    Ok(secs * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_at_a_lock_are_its_wall_clock_with_the_zone_abbreviation() {
        // 2025-03-01 14:05:09 UTC.
        let ms = 1_740_837_909_000;
        assert_eq!(format_utc(ms), "2025-03-01 14:05:09 UTC");
        assert_eq!(
            format_in_zone(ms, "Europe/Paris").as_deref(),
            Some("2025-03-01 15:05:09 CET")
        );
        assert_eq!(
            format_in_zone(ms + 120 * 86_400_000, "Europe/Paris").as_deref(),
            Some("2025-06-29 16:05:09 CEST"),
            "daylight saving time"
        );
        assert_eq!(format_in_zone(ms, "UTC"), None);
        assert_eq!(format_in_zone(ms, "Mars/Olympus"), None);
    }

    #[test]
    fn known_instants_format_in_utc() {
        assert_eq!(format_utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_utc(951_782_400_000), "2000-02-29 00:00:00 UTC");
        assert_eq!(format_utc(1_740_837_909_000), "2025-03-01 14:05:09 UTC");
        assert_eq!(format_input(1_740_837_909_000), "2025-03-01T14:05");
    }

    #[test]
    fn parse_is_the_inverse_of_format() -> Result<(), String> {
        for ms in [0, 951_782_400_000, 1_740_837_900_000, 4_102_444_799_000] {
            assert_eq!(parse_utc(&format_input(ms))?, ms - ms % 60_000);
        }
        assert_eq!(parse_utc("2025-03-01T14:05:09")?, 1_740_837_909_000);
        assert_eq!(parse_utc("2025-03-01 14:05")?, 1_740_837_900_000);
        assert_eq!(parse_utc("2025-03-01")?, 1_740_787_200_000);
        Ok(())
    }

    #[test]
    fn malformed_or_impossible_dates_are_refused() {
        for bad in [
            "",
            "2025",
            "2025-02-29",
            "2024-13-01",
            "2024-01-32",
            "1969-12-31",
            "2025-03-01T24:00",
            "2025-03-01T14:60",
            "2025-03-01T14",
            "2025-3-1",
            "+025-03-01",
            "2025-03-01T14:05:09:01",
            "２０２５-03-01",
        ] {
            assert!(parse_utc(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn ages_read_naturally() {
        assert_eq!(format_age(0, 59_000), "59 s ago");
        assert_eq!(format_age(0, 5 * 60_000), "5 min ago");
        assert_eq!(format_age(0, 3 * 3_600_000), "3 h ago");
        assert_eq!(format_age(0, 2 * MS_PER_DAY), "2 d ago");
        assert_eq!(format_age(120_000, 0), "in 2 min");
    }
}
