//! Command-line values: times (RFC 3339 or Unix seconds), positions, and values an option
//! may clear with `none`.

use std::str::FromStr;

/// A value, or `none` to clear it (`set-access --valid-until none`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clearable<T> {
    /// Set to this.
    Set(T),
    /// Clear.
    Clear,
}

impl<T> Clearable<T> {
    /// `Some(Some(v))`, or `Some(None)` for `none`: the shape of a registry change.
    pub fn change(self) -> Option<T> {
        match self {
            Self::Set(v) => Some(v),
            Self::Clear => None,
        }
    }
}

/// Parses `none` or a value with `parse`.
pub fn clearable<T>(
    s: &str,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<Clearable<T>, String> {
    if s == "none" {
        Ok(Clearable::Clear)
    } else {
        parse(s).map(Clearable::Set)
    }
}

/// A time: Unix seconds, or RFC 3339 with an offset (`2026-05-01T08:00:00Z`,
/// `2026-05-01T10:00:00+02:00`). Returns Unix seconds.
pub fn parse_time(s: &str) -> Result<u64, String> {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s
            .parse()
            .map_err(|_| format!("{s:?} is too large for Unix seconds"));
    }
    let t = jiff::Timestamp::from_str(s).map_err(|e| {
        format!(
            "{s:?} is neither Unix seconds nor an RFC 3339 time like 2026-05-01T08:00:00Z ({e})"
        )
    })?;
    u64::try_from(t.as_second()).map_err(|_| format!("{s:?} is before 1970"))
}

/// [`parse_time`] in Unix milliseconds.
pub fn parse_time_ms(s: &str) -> Result<u64, String> {
    parse_time(s).map(|t| t.saturating_mul(1000))
}

/// `LAT,LON` in degrees.
pub fn parse_position(s: &str) -> Result<(f64, f64), String> {
    let bad = || format!("{s:?}: give LATITUDE,LONGITUDE in degrees, e.g. 47.3769,8.5417");
    let (a, b) = s.split_once(',').ok_or_else(bad)?;
    let lat: f64 = a.trim().parse().map_err(|_| bad())?;
    let lon: f64 = b.trim().parse().map_err(|_| bad())?;
    if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
        return Err(format!(
            "{s:?}: latitude must be within ±90 and longitude within ±180"
        ));
    }
    Ok((lat, lon))
}

/// An unlock limit, at least 1.
pub fn parse_max_unlocks(s: &str) -> Result<u32, String> {
    match s.parse::<u32>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!(
            "{s:?}: give a number of unlocks from 1 to 4294967295"
        )),
    }
}

/// A Unix time in ms as RFC 3339 UTC, for output (`-` if unknown).
pub fn show_ms(ms: Option<u64>) -> String {
    ms.map_or_else(|| "-".to_owned(), crate::time::show_utc_ms)
}

/// A Unix time in s as RFC 3339 UTC, for output (`-` if unknown).
pub fn show_s(s: Option<u64>) -> String {
    show_ms(s.map(|s| s.saturating_mul(1000)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_unix_seconds_or_rfc3339() {
        assert_eq!(parse_time("1777622400"), Ok(1_777_622_400));
        assert_eq!(parse_time("2026-05-01T08:00:00Z"), Ok(1_777_622_400));
        assert_eq!(parse_time("2026-05-01T10:00:00+02:00"), Ok(1_777_622_400));
        assert!(parse_time("2026-05-01").is_err(), "a date has no time zone");
        assert!(parse_time("1969-12-31T23:59:59Z").is_err());
        assert!(parse_time("").is_err());
        assert_eq!(parse_time_ms("10"), Ok(10_000));
        assert_eq!(show_s(Some(1_777_622_400)), "2026-05-01T08:00:00Z");
        assert_eq!(show_ms(None), "-");
    }

    #[test]
    fn positions_limits_and_none() {
        assert_eq!(parse_position("47.37, 8.54"), Ok((47.37, 8.54)));
        assert!(parse_position("91,0").is_err());
        assert!(parse_position("47.37").is_err());
        assert_eq!(parse_max_unlocks("3"), Ok(3));
        assert!(parse_max_unlocks("0").is_err());
        assert_eq!(clearable("none", parse_max_unlocks), Ok(Clearable::Clear));
        assert_eq!(clearable("2", parse_max_unlocks), Ok(Clearable::Set(2)));
        assert_eq!(Clearable::Set(2).change(), Some(2));
    }
}
