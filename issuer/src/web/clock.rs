//! Where the web layer reads the time (session expiry, login lockout, the chart's window):
//! the system clock in the daemon, a settable one in tests.

use std::fmt::Debug;

/// A source of "now", in Unix milliseconds.
pub trait Clock: Send + Sync + Debug + 'static {
    /// Now.
    fn now_ms(&self) -> u64;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        crate::time::now().0
    }
}
