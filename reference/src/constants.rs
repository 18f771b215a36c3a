//! Protocol constants (spec §9). Values a deployment may tune live in the role configs,
//! with these defaults and ranges; values fixed by v1 are plain constants.

/// Protocol version carried in the first byte of every frame.
pub const VERSION: u8 = 0x01;
/// Length of one beacon time step, in seconds (fixed in v1).
pub const STEP_SECONDS: u64 = 30;
/// A beacon's step may differ from the lock's by at most this many steps (fixed in v1).
pub const STEP_WINDOW: u32 = 1;
/// Default Bluetooth SIG company id carried before the beacon payload (0xFFFF: testing).
pub const DEFAULT_COMPANY_ID: u16 = 0xFFFF;

/// A configurable constant: default and inclusive allowed range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tunable<T> {
    /// Name as used in the spec and config files.
    pub name: &'static str,
    /// Default value.
    pub default: T,
    /// Smallest allowed value.
    pub min: T,
    /// Largest allowed value.
    pub max: T,
}

impl<T: PartialOrd + Copy> Tunable<T> {
    /// Whether `v` lies in the allowed range.
    pub fn allows(&self, v: T) -> bool {
        v >= self.min && v <= self.max
    }

    /// The same tunable with its values converted (e.g. to print or test them uniformly).
    pub fn map<U>(self, f: impl Fn(T) -> U) -> Tunable<U> {
        Tunable {
            name: self.name,
            default: f(self.default),
            min: f(self.min),
            max: f(self.max),
        }
    }
}

/// Minimum RSSI (dBm) of a beacon the lock accepts.
pub const RSSI_THRESHOLD_DBM: Tunable<i16> = Tunable {
    name: "rssi_threshold_dbm",
    default: -70,
    min: -127,
    max: 20,
};
/// How long after a beacon arms an authentication the guest may Select it.
pub const CONNECTION_WINDOW_MS: Tunable<u64> = Tunable {
    name: "connection_window_ms",
    default: 10_000,
    min: 1_000,
    max: 60_000,
};
/// How long after issuing a challenge the lock accepts the response.
pub const RESPONSE_BUDGET_MS: Tunable<u64> = Tunable {
    name: "response_budget_ms",
    default: 2_000,
    min: 100,
    max: 10_000,
};
/// Largest tolerated difference between the peer's clock and ours, in seconds.
pub const MAX_CLOCK_SKEW_S: Tunable<u64> = Tunable {
    name: "max_clock_skew_s",
    default: 30,
    min: 1,
    max: 300,
};
/// Longest validity (not_after − not_before) of a grant, in seconds.
pub const MAX_GRANT_VALIDITY_S: Tunable<u64> = Tunable {
    name: "max_grant_validity_s",
    default: 86_400,
    min: 60,
    max: 2_678_400,
};
/// Most sessions a lock holds at once.
pub const MAX_SESSIONS: Tunable<usize> = Tunable {
    name: "max_sessions",
    default: 1_024,
    min: 1,
    max: 1_000_000,
};
/// Most pending (armed, not yet selected) authentications a lock holds at once.
pub const MAX_PENDING: Tunable<usize> = Tunable {
    name: "max_pending",
    default: 64,
    min: 1,
    max: 65_535,
};
/// Most outstanding challenges (one per GATT connection) a lock holds at once.
pub const MAX_CHALLENGES: Tunable<usize> = Tunable {
    name: "max_challenges",
    default: 8,
    min: 1,
    max: 256,
};
/// Capacity of the lock's beacon replay cache.
pub const REPLAY_CAPACITY: Tunable<usize> = Tunable {
    name: "replay_capacity",
    default: 4_096,
    min: 16,
    max: 1_000_000,
};
/// Capacity of the lock's revocation list.
pub const REVOCATION_CAPACITY: Tunable<usize> = Tunable {
    name: "revocation_capacity",
    default: 1_024,
    min: 16,
    max: 1_000_000,
};
/// Failed handshakes of one guest that lock it out (LK-LCK-1); 0 disables lockout.
pub const LOCKOUT_THRESHOLD: Tunable<u32> = Tunable {
    name: "lockout_threshold",
    default: 5,
    min: 0,
    max: 1_000,
};
/// Length of the window in which a guest's failed handshakes are counted, in seconds.
pub const LOCKOUT_WINDOW_S: Tunable<u64> = Tunable {
    name: "lockout_window_s",
    default: 300,
    min: 10,
    max: 86_400,
};
/// How long a lockout lasts, in seconds (LK-LCK-3).
pub const LOCKOUT_DURATION_S: Tunable<u64> = Tunable {
    name: "lockout_duration_s",
    default: 900,
    min: 10,
    max: 86_400,
};
/// The issuer accepts requests whose timestamp is within ± this many seconds.
pub const REQUEST_WINDOW_S: Tunable<u64> = Tunable {
    name: "request_window_s",
    default: 60,
    min: 5,
    max: 600,
};
/// Capacity of the issuer's request-id replay cache.
pub const REQUEST_CACHE_CAPACITY: Tunable<usize> = Tunable {
    name: "request_cache_capacity",
    default: 65_536,
    min: 16,
    max: 10_000_000,
};
/// The issuer accepts lock messages whose timestamp is within ± this many seconds
/// (LK-EVT-3).
pub const EVENT_WINDOW_S: Tunable<u64> = Tunable {
    name: "event_window_s",
    default: 3_600,
    min: 60,
    max: 86_400,
};
/// Capacity of the issuer's replay cache of lock message ids, per lock (LK-EVT-4).
pub const EVENT_REPLAY_CAPACITY: Tunable<usize> = Tunable {
    name: "event_replay_capacity",
    default: 4_096,
    min: 16,
    max: 1_000_000,
};
/// Grant requests a guest may make in a burst (LK-ISS-11).
pub const RATE_GUEST_BURST: Tunable<u32> = Tunable {
    name: "rate_guest_burst",
    default: 10,
    min: 1,
    max: 10_000,
};
/// Grant requests per hour a guest's bucket refills (LK-ISS-11).
pub const RATE_GUEST_PER_HOUR: Tunable<u32> = Tunable {
    name: "rate_guest_per_hour",
    default: 120,
    min: 1,
    max: 1_000_000,
};
/// Grant requests for one lock in a burst (LK-ISS-11).
pub const RATE_LOCK_BURST: Tunable<u32> = Tunable {
    name: "rate_lock_burst",
    default: 60,
    min: 1,
    max: 10_000,
};
/// Grant requests per hour a lock's bucket refills (LK-ISS-11).
pub const RATE_LOCK_PER_HOUR: Tunable<u32> = Tunable {
    name: "rate_lock_per_hour",
    default: 3_600,
    min: 1,
    max: 1_000_000,
};
/// Most grant requests a guest keeps outstanding.
pub const MAX_OUTSTANDING_REQUESTS: Tunable<usize> = Tunable {
    name: "max_outstanding_requests",
    default: 16,
    min: 1,
    max: 256,
};

/// RSA modulus sizes (bytes) accepted for issuer and lock keys: 2048..=4096 bits.
pub const RSA_MIN_BYTES: usize = 256;
/// See [`RSA_MIN_BYTES`].
pub const RSA_MAX_BYTES: usize = 512;
