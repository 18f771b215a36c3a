//! # latchkey-issuer — the Latchkey issuer daemon
//!
//! A thin driver around the sans-IO [`latchkey::Issuer`]: it keeps the issuer's state in a
//! directory, talks MQTT through `latchkey-transport`, and carries out what the core
//! returns. Every protocol decision (seal, window, replay, enrollment, policy) is the core's.
//!
//! - Offline commands, plain functions: [`keygen`], [`add_lock`], [`enroll_guest`] (and
//!   their `_with` variants taking options), [`rotate_guest_key`], [`rotate_lock_key`],
//!   [`revoke::revoke_offline`].
//! - The registry ([`store::Store`]): SQLite, enrollment keys sealed under a key-encryption
//!   key, access rules, grants, revocations, audit trail, alerts, admin users.
//! - The daemon: [`Issuerd::start`] returns an [`IssuerdHandle`] to revoke grants and
//!   guests, read the status, watch [`IssuerEvent`]s and shut down.
//! - The control socket ([`control`]) lets the CLI talk to a running daemon.
//!
//! Invariants:
//! - Bad input never panics and never stops the daemon: every MQTT payload goes to the
//!   core, and each refusal is logged once, with its reason and requirement.
//! - A grant is persisted (`registry.db`) before it is published, so every grant that left
//!   the issuer can be revoked after a restart; after a restart requests timestamped before
//!   it are refused (LK-ISS-5).
//! - No secret is stored in clear: enrollment keys are sealed under the KEK, which never
//!   enters the database.
//! - Private files are written mode 0600, atomically, and a private key, KEK or registry
//!   that group or others can read is refused.

pub mod anomaly;
pub mod cli;
pub mod commands;
pub mod config;
pub mod control;
mod daemon;
pub mod enroll;
pub mod error;
mod fsutil;
pub mod keys;
pub mod logging;
pub mod password;
pub mod policy;
pub mod qr;
pub mod revoke;
pub mod rng;
mod serde_ids;
pub mod state;
pub mod status;
pub mod store;
pub mod time;
pub mod web;

pub use commands::{
    AddLockOptions, AddedLock, KeygenOptions, KeygenOutput, add_lock, add_lock_with, keygen,
    keygen_with, rotate_lock_key, update_lock,
};
pub use config::{AnomalyOptions, BrokerChoice, IssuerOptions, WebOptions};
pub use daemon::alerts::alerts_topic;
pub use daemon::{Issuerd, IssuerdHandle};
pub use enroll::{
    BundleFiles, EnrollGuestOptions, Enrollment, RotateGuestKeyOptions, enroll, enroll_guest,
    enroll_guest_with, enroll_in, rotate_guest_key, rotate_guest_key_in,
};
pub use error::IssuerdError;
pub use status::{IssuerEvent, IssuerStatus, RevokedGrant};

/// The daemon under the name the design uses (`issuerd::Issuerd::start`).
pub mod issuerd {
    pub use crate::config::{BrokerChoice, IssuerOptions};
    pub use crate::daemon::{Issuerd, IssuerdHandle};
}
