//! # Latchkey — sans-IO reference core
//!
//! This crate implements the three roles of the Latchkey protocol (`spec/latchkey.md`):
//! the [`Issuer`] that grants short-lived sessions, the [`Lock`] that verifies beacons and
//! runs the challenge–response, and the [`Guest`] (a phone) that advertises and answers.
//!
//! It does no I/O: no sockets, no async runtime, no clock and no global RNG.
//!
//! * Every input takes `now` ([`UnixMillis`]) from the caller. Each role clamps time to be
//!   non-decreasing (**LK-TIM-1**), so a clock that steps backwards never extends a budget.
//! * Randomness comes from a caller-provided [`rand_core::CryptoRng`], so tests and vectors
//!   are deterministic.
//! * Outputs are returned values; roles with timers expose `poll_timeout()` and
//!   `handle_timeout(now)`. Invariant: after any input, a driver calls `poll_timeout()` and
//!   arranges to call `handle_timeout` no later than the instant it returns.
//! * Every rejection is a [`Reason`] naming the requirement that produced it.
//! * Frames are parsed zero-copy from `&[u8]` into typed views and encoded into caller
//!   buffers; no input makes any function panic.
//!
//! The crate is `#![no_std]` + `alloc` when the default `std` feature is off.
#![cfg_attr(not(feature = "std"), no_std)]
// One audited exception: `crypto::aes_ni` calls its AES-NI functions after CPUID.
#![deny(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

pub mod constants;
pub mod crypto;
pub mod frame;
pub mod guest;
mod ids;
pub mod issuer;
pub mod lock;
mod reason;
mod time;
pub mod topics;

pub use guest::{Guest, GuestConfig};
pub use ids::{
    EventId, GrantId, GuestId, IdParseError, LockId, RequestId, RevocationId, SessionId,
};
pub use issuer::{Issuer, IssuerConfig, LiveGrant};
pub use lock::{Lock, LockConfig};
pub use reason::{Reason, Requirement};
pub use time::{Step, UnixMillis};
