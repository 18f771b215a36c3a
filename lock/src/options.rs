//! What [`Lockd::start`](crate::Lockd::start) needs, already loaded: the library's input.
//! The config file and CLI produce one of these ([`crate::config`]); the demo and tests
//! build it directly.

use std::path::PathBuf;
use std::time::Duration;

use latchkey::constants as c;
use latchkey::crypto::rsa::{RsaPrivateKey, RsaPublicKey};
use latchkey::{LockConfig, LockId};
use latchkey_transport::mqtt::MqttConfig;
use serde::Deserialize;

use crate::unlock_action::UnlockAction;

/// Default event rate: tokens per second of the events token bucket.
pub const DEFAULT_EVENTS_PER_SEC: u32 = 10;
/// Default burst of the events token bucket.
pub const DEFAULT_EVENT_BURST: u32 = 50;
/// Default interval between two LockStatus reports (spec §6.10), in seconds.
pub const DEFAULT_STATUS_INTERVAL_S: u64 = 60;
/// The interval a config file may set (`[status] interval_s`), in seconds: often enough
/// for the issuer to settle unlock accounting soon after a grant ends, rarely enough to
/// cost nothing (one RSA signature per report).
pub const STATUS_INTERVAL_RANGE_S: std::ops::RangeInclusive<u64> = 10..=3_600;

/// The lock's tunables (spec §9): the [`LockConfig`] fields that are not identity or keys.
/// The defaults and allowed ranges are the core's; [`latchkey::Lock::new`] checks them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Tunables {
    /// Minimum RSSI (dBm) of an accepted beacon, −127..=20 (LK-ADV-4).
    pub rssi_threshold_dbm: i16,
    /// Beacon → Select window (ms), 1 000..=60 000 (LK-SEL-2).
    pub connection_window_ms: u64,
    /// Challenge → Response budget (ms), 100..=10 000 (LK-RSP-3).
    pub response_budget_ms: u64,
    /// Tolerated phone clock skew (s), 1..=300 (LK-RSP-5, LK-GRT-6).
    pub max_clock_skew_s: u64,
    /// Longest grant validity accepted (s), 60..=2 678 400 (LK-GRT-4).
    pub max_grant_validity_s: u64,
    /// Session table capacity, 1..=1 000 000 (LK-GRT-9).
    pub max_sessions: usize,
    /// Pending-authentication capacity, 1..=65 535 (LK-ADV-8).
    pub max_pending: usize,
    /// Outstanding-challenge capacity, 1..=256 (LK-SEL-3).
    pub max_challenges: usize,
    /// Replay cache capacity, 16..=1 000 000 (LK-ADV-9).
    pub replay_capacity: usize,
    /// Revocation list capacity, 16..=1 000 000 (LK-REV-4).
    pub revocation_capacity: usize,
    /// Failed handshakes within `lockout_window_s` that lock a guest out, 0..=1 000;
    /// 0 disables lockout (LK-LCK-1).
    pub lockout_threshold: u32,
    /// Window in which a guest's failed handshakes are counted (s), 10..=86 400 (LK-LCK-1).
    pub lockout_window_s: u64,
    /// Length of a lockout (s), 10..=86 400 (LK-LCK-3).
    pub lockout_duration_s: u64,
}

impl Default for Tunables {
    fn default() -> Self {
        Self {
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
}

impl Tunables {
    /// Copies the tunables into a core configuration.
    pub fn apply(&self, cfg: &mut LockConfig) {
        cfg.rssi_threshold_dbm = self.rssi_threshold_dbm;
        cfg.connection_window_ms = self.connection_window_ms;
        cfg.response_budget_ms = self.response_budget_ms;
        cfg.max_clock_skew_s = self.max_clock_skew_s;
        cfg.max_grant_validity_s = self.max_grant_validity_s;
        cfg.max_sessions = self.max_sessions;
        cfg.max_pending = self.max_pending;
        cfg.max_challenges = self.max_challenges;
        cfg.replay_capacity = self.replay_capacity;
        cfg.revocation_capacity = self.revocation_capacity;
        cfg.lockout_threshold = self.lockout_threshold;
        cfg.lockout_window_s = self.lockout_window_s;
        cfg.lockout_duration_s = self.lockout_duration_s;
    }
}

/// The LockStatus heartbeat (spec §6.10): how often, and where the lock reads its health.
/// The issuer relies on it to settle unlock accounting (a status stamped after a grant's
/// `not_after` proves every earlier event of the lock was delivered), so it is never rate
/// limited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusOptions {
    /// Time between two reports. One goes out as soon as MQTT is connected, at start and
    /// at every reconnect; none is queued while it is down (it would go stale, LK-EVT-3).
    /// The config file allows [`STATUS_INTERVAL_RANGE_S`]; the library takes any non-zero
    /// interval (tests use shorter ones).
    pub interval: Duration,
    /// A file holding the battery charge in percent (0..=100), e.g.
    /// `/sys/class/power_supply/BAT0/capacity`. `None`, or a file that cannot be read or
    /// parsed: reported as 255, "no battery or unknown".
    pub battery_capacity_file: Option<PathBuf>,
    /// A file holding `1` while the lock runs on mains power, e.g.
    /// `/sys/class/power_supply/AC/online` (flag `mains_power`).
    pub mains_online_file: Option<PathBuf>,
    /// A file that exists while the system clock is synchronised, e.g.
    /// `/run/systemd/timesync/synchronized`: when configured and missing, the report sets
    /// `clock_unsynchronised`. Unset: the flag is never set.
    pub clock_synced_file: Option<PathBuf>,
}

impl Default for StatusOptions {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(DEFAULT_STATUS_INTERVAL_S),
            battery_capacity_file: None,
            mains_online_file: None,
            clock_synced_file: None,
        }
    }
}

/// Everything the lock daemon needs, with keys loaded.
#[derive(Debug, Clone)]
pub struct LockOptions {
    /// This lock's identity.
    pub lock_id: LockId,
    /// The lock's RSA key: unwraps session keys, signs events.
    pub lock_key: RsaPrivateKey,
    /// The issuer's public key: verifies grants and revocations.
    pub issuer_key: RsaPublicKey,
    /// Broker connection. Its `client_id` should be `latchkey-lock-{lock_id}` (stable, so
    /// the broker's persistent session queues grants sent while the lock is offline).
    pub mqtt: MqttConfig,
    /// Topic prefix, default [`latchkey::topics::DEFAULT_PREFIX`].
    pub topic_prefix: String,
    /// Company id expected before the beacon payload (default 0xFFFF, the SIG test id).
    pub company_id: u16,
    /// Spec §9 tunables.
    pub tunables: Tunables,
    /// Where accepted grants and revocations are kept across restarts. `None` keeps
    /// nothing: a restarted lock forgets its sessions and revocations (tests, demos).
    pub state_dir: Option<PathBuf>,
    /// What an unlock does.
    pub unlock: UnlockAction,
    /// Token bucket of the rejection events (kind 2): `(events per second, burst)`.
    /// `(0, 0)` publishes no rejection events. Every other event (unlock, grant installed,
    /// revocation applied, lockout started and ended) and the LockStatus reports are never
    /// rate limited.
    pub event_rate: (u32, u32),
    /// The LockStatus heartbeat.
    pub status: StatusOptions,
}

impl LockOptions {
    /// Options with every default: prefix `latchkey/v1`, company 0xFFFF, spec tunables, no
    /// state directory, unlock action `log`, 10 rejection events/s with a burst of 50, a
    /// LockStatus every 60 s with no battery or power files.
    /// The MQTT client id is set to `latchkey-lock-{lock_id}`.
    pub fn new(
        lock_id: LockId,
        lock_key: RsaPrivateKey,
        issuer_key: RsaPublicKey,
        mut mqtt: MqttConfig,
    ) -> Self {
        mqtt.client_id = client_id(&lock_id);
        Self {
            lock_id,
            lock_key,
            issuer_key,
            mqtt,
            topic_prefix: latchkey::topics::DEFAULT_PREFIX.to_owned(),
            company_id: c::DEFAULT_COMPANY_ID,
            tunables: Tunables::default(),
            state_dir: None,
            unlock: UnlockAction::Log,
            event_rate: (DEFAULT_EVENTS_PER_SEC, DEFAULT_EVENT_BURST),
            status: StatusOptions::default(),
        }
    }

    /// The core's configuration.
    pub fn lock_config(&self) -> LockConfig {
        let mut cfg = LockConfig::new(self.lock_id, self.lock_key.clone(), self.issuer_key.clone());
        cfg.company_id = self.company_id;
        self.tunables.apply(&mut cfg);
        cfg
    }
}

/// The stable MQTT client id of a lock (docs/daemons.md, "MQTT").
pub fn client_id(lock_id: &LockId) -> String {
    format!("latchkey-lock-{lock_id}")
}
