//! Wall-clock time as the core takes it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use latchkey::UnixMillis;

/// Now, in Unix milliseconds; a clock before 1970 saturates to 0.
pub fn now() -> UnixMillis {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    UnixMillis(ms)
}

/// How long from `now` until `at` (zero if it has passed).
pub(crate) fn until(now: UnixMillis, at: UnixMillis) -> Duration {
    Duration::from_millis(at.since(now))
}

/// A Unix time in ms as RFC 3339 UTC to the second (`… ms` if out of range), for people.
pub fn show_utc_ms(ms: u64) -> String {
    i64::try_from(ms)
        .ok()
        .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
        .map_or_else(|| format!("{ms} ms"), |t| format!("{t:.0}"))
}
