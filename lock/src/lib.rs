//! # latchkey-lock — the Latchkey lock daemon
//!
//! A thin driver around the sans-IO core [`latchkey::Lock`] (docs/daemons.md, "Lock"):
//!
//! - scans beacons and serves the Latchkey GATT service through any
//!   [`LockRadio`](latchkey_transport::radio::LockRadio) (BlueZ in the binary, the simulated
//!   air in the demo and tests);
//! - installs grants and applies revocations from `{prefix}/locks/{id}/grants` (MQTT QoS 1,
//!   persistent session), persisting each accepted message under `state_dir/messages/` and
//!   replaying them at start, with the unlock counts of limited grants;
//! - answers GATT writes with success or the ATT application error `reason.att_code()`;
//! - carries out unlocks ([`UnlockAction`]: log, command or GPIO pulse) without blocking;
//! - publishes signed LockEvents on `{prefix}/locks/{id}/events` (rejections behind a token
//!   bucket, everything else never dropped by it), including the core's lockout notices;
//! - publishes a signed LockStatus heartbeat with its health and rejection counters.
//!
//! ```no_run
//! # async fn demo(opts: latchkey_lock::LockOptions, radio: latchkey_transport::radio::SimRadio)
//! # -> Result<(), latchkey_lock::LockdError> {
//! let handle = latchkey_lock::Lockd::start(opts, radio).await?;
//! let mut unlocks = handle.unlocks();
//! if let Ok(u) = unlocks.recv().await {
//!     println!("unlocked by guest {}", u.guest_id);
//! }
//! handle.shutdown().await
//! # }
//! ```
//!
//! Invariants: one task owns the `Lock`; bad input from the radio or MQTT never panics or
//! stops the daemon (it is refused with a [`latchkey::Reason`], logged once and reported
//! as an event); challenges are keyed by connection id, never by a device address.

mod clock;
pub mod config;
mod daemon;
mod events;
pub mod gatt;
pub mod keys;
pub mod logging;
mod options;
mod persist;
mod status;
pub mod unlock_action;

pub use clock::{now, os_rng};
pub use config::{BleAdapter, ConfigError, ConfigOverrides, LoadedLockConfig, LockFileConfig};
pub use daemon::{LockStats, Lockd, LockdError, LockdHandle, UnlockRecord};
pub use options::{
    DEFAULT_EVENT_BURST, DEFAULT_EVENTS_PER_SEC, DEFAULT_STATUS_INTERVAL_S, LockOptions,
    STATUS_INTERVAL_RANGE_S, StatusOptions, Tunables, client_id,
};
pub use unlock_action::{GpioAction, UnlockAction};

/// The daemon's entry points under the name used in docs/daemons.md (`lockd::Lockd`).
pub mod lockd {
    pub use crate::daemon::{LockStats, Lockd, LockdError, LockdHandle, UnlockRecord};
    pub use crate::options::{LockOptions, StatusOptions, Tunables};
    pub use crate::unlock_action::UnlockAction;
}
