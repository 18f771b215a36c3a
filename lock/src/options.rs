//! What [`Lockd::start`](crate::Lockd::start) needs, already loaded: the library's input.
//! The config file and CLI produce one of these ([`crate::config`]); the demo and tests
//! build it directly.

use std::path::PathBuf;

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
    /// Event token bucket: `(events per second, burst)`. `(0, 0)` publishes no events.
    pub event_rate: (u32, u32),
}

impl LockOptions {
    /// Options with every default: prefix `latchkey/v1`, company 0xFFFF, spec tunables, no
    /// state directory, unlock action `log`, 10 events/s with a burst of 50.
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
