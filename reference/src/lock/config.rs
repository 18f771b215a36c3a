//! The lock's configuration: identity, keys and tunables (spec §9).

use core::fmt;

use crate::LockId;
use crate::constants::{self as c, Tunable};
use crate::crypto::rsa::{RsaPrivateKey, RsaPublicKey};

/// Everything a [`Lock`](super::Lock) needs. Build with [`LockConfig::new`], adjust
/// tunables, then [`Lock::new`](super::Lock::new) validates the ranges.
#[derive(Debug, Clone)]
pub struct LockConfig {
    /// This lock's identity.
    pub lock_id: LockId,
    /// Company id expected before the beacon payload.
    pub company_id: u16,
    /// The lock's RSA key (unwraps session keys, signs events).
    pub lock_key: RsaPrivateKey,
    /// The issuer's RSA public key (verifies grants and revocations).
    pub issuer_key: RsaPublicKey,
    /// Minimum RSSI of an accepted beacon (dBm).
    pub rssi_threshold_dbm: i16,
    /// Beacon → Select window (ms).
    pub connection_window_ms: u64,
    /// Challenge → Response budget (ms).
    pub response_budget_ms: u64,
    /// Tolerated phone clock skew (s).
    pub max_clock_skew_s: u64,
    /// Longest grant validity accepted (s).
    pub max_grant_validity_s: u64,
    /// Session table capacity.
    pub max_sessions: usize,
    /// Pending-authentication capacity.
    pub max_pending: usize,
    /// Outstanding-challenge capacity.
    pub max_challenges: usize,
    /// Replay cache capacity.
    pub replay_capacity: usize,
    /// Revocation list capacity.
    pub revocation_capacity: usize,
    /// Failed handshakes that lock a guest out (LK-LCK-1); 0 disables lockout.
    pub lockout_threshold: u32,
    /// Window in which a guest's failed handshakes are counted (s).
    pub lockout_window_s: u64,
    /// Length of a lockout (s, LK-LCK-3).
    pub lockout_duration_s: u64,
}

/// A tunable is outside its allowed range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfigError {
    /// The tunable's name.
    pub name: &'static str,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "configuration value `{}` is outside its allowed range (spec §9)",
            self.name
        )
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ConfigError {}

pub(crate) fn check<T: PartialOrd + Copy>(t: Tunable<T>, v: T) -> Result<(), ConfigError> {
    if t.allows(v) {
        Ok(())
    } else {
        Err(ConfigError { name: t.name })
    }
}

impl LockConfig {
    /// A configuration with every tunable at its default.
    pub fn new(lock_id: LockId, lock_key: RsaPrivateKey, issuer_key: RsaPublicKey) -> Self {
        Self {
            lock_id,
            company_id: c::DEFAULT_COMPANY_ID,
            lock_key,
            issuer_key,
            rssi_threshold_dbm: c::RSSI_THRESHOLD_DBM.default,
            connection_window_ms: c::CONNECTION_WINDOW_MS.default,
            response_budget_ms: c::RESPONSE_BUDGET_MS.default,
            max_clock_skew_s: c::MAX_CLOCK_SKEW_S.default,
            max_grant_validity_s: c::MAX_GRANT_VALIDITY_S.default,
            max_sessions: c::MAX_SESSIONS.default,
            max_pending: c::MAX_PENDING.default,
            max_challenges: c::MAX_CHALLENGES.default,
            replay_capacity: c::REPLAY_CAPACITY.default,
            revocation_capacity: c::REVOCATION_CAPACITY.default,
            lockout_threshold: c::LOCKOUT_THRESHOLD.default,
            lockout_window_s: c::LOCKOUT_WINDOW_S.default,
            lockout_duration_s: c::LOCKOUT_DURATION_S.default,
        }
    }

    /// Checks every tunable against its allowed range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check(c::RSSI_THRESHOLD_DBM, self.rssi_threshold_dbm)?;
        check(c::CONNECTION_WINDOW_MS, self.connection_window_ms)?;
        check(c::RESPONSE_BUDGET_MS, self.response_budget_ms)?;
        check(c::MAX_CLOCK_SKEW_S, self.max_clock_skew_s)?;
        check(c::MAX_GRANT_VALIDITY_S, self.max_grant_validity_s)?;
        check(c::MAX_SESSIONS, self.max_sessions)?;
        check(c::MAX_PENDING, self.max_pending)?;
        check(c::MAX_CHALLENGES, self.max_challenges)?;
        check(c::REPLAY_CAPACITY, self.replay_capacity)?;
        check(c::REVOCATION_CAPACITY, self.revocation_capacity)?;
        check(c::LOCKOUT_THRESHOLD, self.lockout_threshold)?;
        check(c::LOCKOUT_WINDOW_S, self.lockout_window_s)?;
        check(c::LOCKOUT_DURATION_S, self.lockout_duration_s)
    }
}
