//! Time as the core sees it: Unix milliseconds from the caller, and 30-second steps.

use crate::constants::STEP_SECONDS;

/// A wall-clock instant in milliseconds since the Unix epoch, supplied by the driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct UnixMillis(pub u64);

impl UnixMillis {
    /// From whole seconds.
    pub const fn from_secs(s: u64) -> Self {
        Self(s.saturating_mul(1000))
    }
    /// Whole seconds (floor).
    pub const fn secs(self) -> u64 {
        self.0 / 1000
    }
    /// The beacon time step containing this instant.
    pub const fn step(self) -> Step {
        let s = self.secs() / STEP_SECONDS;
        // u32 steps last until the year 6053; saturate rather than wrap beyond.
        Step(if s > u32::MAX as u64 {
            u32::MAX
        } else {
            s as u32
        })
    }
    /// `self + ms`, saturating.
    pub const fn plus_ms(self, ms: u64) -> Self {
        Self(self.0.saturating_add(ms))
    }
    /// Milliseconds elapsed since `earlier` (0 if `earlier` is later).
    pub const fn since(self, earlier: UnixMillis) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
    /// The wire form used in GATT values: u32 seconds, saturating.
    pub const fn secs_u32(self) -> u32 {
        let s = self.secs();
        if s > u32::MAX as u64 {
            u32::MAX
        } else {
            s as u32
        }
    }
}

/// A beacon time step: `floor(unix_seconds / 30)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Step(pub u32);

impl Step {
    /// The first instant of this step.
    pub const fn start(self) -> UnixMillis {
        UnixMillis::from_secs(self.0 as u64 * STEP_SECONDS)
    }
    /// The first instant of the next step.
    pub const fn next_start(self) -> UnixMillis {
        UnixMillis::from_secs((self.0 as u64 + 1) * STEP_SECONDS)
    }
}

/// Per-role monotonic clamp (**LK-TIM-1**): time never goes backwards inside a role.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Clock {
    last: UnixMillis,
}

impl Clock {
    pub(crate) fn observe(&mut self, now: UnixMillis) -> UnixMillis {
        if now > self.last {
            self.last = now;
        }
        self.last
    }

    pub(crate) fn now(&self) -> UnixMillis {
        self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_boundaries() {
        assert_eq!(UnixMillis(29_999).step(), Step(0));
        assert_eq!(UnixMillis(30_000).step(), Step(1));
        assert_eq!(Step(2).start(), UnixMillis(60_000));
        assert_eq!(Step(2).next_start(), UnixMillis(90_000));
    }

    #[test]
    fn lk_tim_1_clock_never_goes_backwards() {
        let mut c = Clock::default();
        assert_eq!(c.observe(UnixMillis(10)), UnixMillis(10));
        assert_eq!(c.observe(UnixMillis(5)), UnixMillis(10));
        assert_eq!(c.now(), UnixMillis(10));
        assert_eq!(c.observe(UnixMillis(11)), UnixMillis(11));
        assert_eq!(c.now(), UnixMillis(11));
    }

    /// Steps and the wire's u32 seconds saturate instead of wrapping (year 6053 and
    /// 2106 respectively): a far-future clock never maps to a small, valid-looking value.
    #[test]
    fn far_future_times_saturate() {
        let max_step_ms = (u32::MAX as u64) * STEP_SECONDS * 1000;
        assert_eq!(UnixMillis(max_step_ms).step(), Step(u32::MAX));
        assert_eq!(UnixMillis(max_step_ms - 1).step(), Step(u32::MAX - 1));
        assert_eq!(
            UnixMillis(max_step_ms + STEP_SECONDS * 1000).step(),
            Step(u32::MAX)
        );
        assert_eq!(UnixMillis(u64::MAX).step(), Step(u32::MAX));
        let max_secs_ms = (u32::MAX as u64) * 1000;
        assert_eq!(UnixMillis(max_secs_ms).secs_u32(), u32::MAX);
        assert_eq!(UnixMillis(max_secs_ms - 1000).secs_u32(), u32::MAX - 1);
        assert_eq!(UnixMillis(max_secs_ms + 1000).secs_u32(), u32::MAX);
        assert_eq!(UnixMillis(u64::MAX).secs_u32(), u32::MAX);
    }
}
