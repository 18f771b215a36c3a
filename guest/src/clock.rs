//! Wall-clock time for the core: `now` is read at each input (docs/daemons.md, "Time").

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use latchkey::UnixMillis;

/// Where the daemon reads the time it hands the core. Injected so tests can place "now"
/// just before a step boundary instead of waiting up to 30 s for one.
pub trait WallClock: Send + Sync + fmt::Debug {
    /// The current time in Unix milliseconds.
    fn now(&self) -> UnixMillis;
}

/// The system clock. A clock before 1970 saturates to 0.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl WallClock for SystemClock {
    fn now(&self) -> UnixMillis {
        system_now()
    }
}

/// `SystemTime::now()` as [`UnixMillis`], saturating to 0 before 1970.
pub fn system_now() -> UnixMillis {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    UnixMillis(u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
}

/// How long from `now` until `at` (zero if `at` has passed).
pub(crate) fn until(now: UnixMillis, at: UnixMillis) -> Duration {
    Duration::from_millis(at.since(now))
}
