//! # latchkey-guest — the guest (phone) daemon
//!
//! On Linux this crate plays the phone of the Latchkey protocol (`spec/latchkey.md` §7.3,
//! `docs/daemons.md` "Guest"). It is thin: the sans-IO core ([`latchkey::Guest`]) makes every
//! protocol decision; this crate reads the enrollment, talks MQTT and BLE, keeps time.
//!
//! An unlock ([`Guestd::unlock`]):
//! 1. **Grant.** Reuse the grant held for the lock if it outlives an attempt; otherwise
//!    publish a sealed GrantRequest on `{prefix}/requests/{guest}` (QoS 1) and wait for the
//!    GuestGrant on `{prefix}/guests/{guest}/grants`, publishing a new request (new request
//!    id) every 5 s. The subscription is made before the first request and kept in a
//!    persistent session (client id `latchkey-guest-{guest_id}`).
//! 2. **Advertise** the core's beacon, re-registered at every step boundary the core names
//!    through `poll_timeout` (new step, tag and MAC; same attempt).
//! 3. **Connect** to the Latchkey service ([`gatt::service_spec`]), write the Select (again,
//!    briefly, while the lock answers `no_pending_auth`), stop advertising, read the
//!    Challenge and verify it (LK-GST-1..5).
//! 4. **Respond**, and hand the write's result to the core: success is an unlock; an ATT
//!    application error is the lock's [`Reason`](latchkey::Reason).
//! 5. Stop advertising and disconnect, whatever happened; report per-step timings.
//! 6. **Fall back** once: a held grant the lock did not accept (its beacons armed nothing,
//!    `no_pending_auth`, or the lock refused it as dead) is dropped, and steps 1–5 run again
//!    with a fresh grant ([`UnlockReport::fallback`], [`GuestError::FreshGrantFailed`]).
//!
//! Invariants:
//! - Nothing keys on a BLE address (phones randomise them): the lock is recognised by the
//!   Challenge's MAC, which only the holder of our session can produce.
//! - The enrollment key never appears in logs or `Debug` output; the bundle is stored 0600
//!   and a copy readable by others is refused.
//! - A payload the core rejects is logged with its reason and ignored; it never stops the
//!   daemon.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod ble;
pub mod bundle;
pub mod clock;
pub mod config;
mod error;
pub mod gatt;
mod grant;
mod grant_store;
mod guestd;
mod options;
mod private_file;
pub mod qr;
mod report;
mod rng;

pub use bundle::{BundleError, EnrollmentBundle};
pub use clock::{SystemClock, WallClock};
pub use error::{GuestError, UnlockStep};
pub use grant::GuestStats;
pub use guestd::Guestd;
pub use options::{DEFAULT_GRANT_VALIDITY_S, GuestOptions, Timeouts, client_id};
pub use report::{GrantFallback, StepTimings, UnlockReport};
pub use rng::{RngError, os_seeded};
