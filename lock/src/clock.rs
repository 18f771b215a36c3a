//! Time and randomness as the daemons feed them to the core (docs/daemons.md, "Shared
//! conventions").

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use latchkey::UnixMillis;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

/// Wall-clock now; a clock before 1970 saturates to 0.
pub fn now() -> UnixMillis {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis();
    UnixMillis(u64::try_from(ms).unwrap_or(u64::MAX))
}

/// A ChaCha20 CSPRNG seeded from the OS, created once per daemon.
pub fn os_rng() -> Result<ChaCha20Rng, getrandom::Error> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed)?;
    let rng = ChaCha20Rng::from_seed(seed);
    zeroize::Zeroize::zeroize(&mut seed);
    Ok(rng)
}

/// How long from `now` until `at` (zero if it has passed).
pub(crate) fn until(at: UnixMillis, now: UnixMillis) -> Duration {
    Duration::from_millis(at.0.saturating_sub(now.0))
}
