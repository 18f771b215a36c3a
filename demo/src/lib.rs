//! # latchkey-demo — the one-process demo and the daemons' end-to-end test harness
//!
//! - [`demo::run`]: the README's main job. An embedded MQTT broker, the issuer, a lock and
//!   a phone on one simulated air ([`SimAir`](latchkey_transport::radio::SimAir)):
//!   enrollment by QR code, a real unlock with the timing of each step, a replayed beacon and
//!   a wrong-key guest (both refused), then the guest's revocation and its refusal at the
//!   lock and at the issuer, with the audit trail printed.
//! - [`Site`]: a whole deployment in a temporary directory, built only through the
//!   daemons' own entry points and files (`keygen`, `add_lock` → `lock.toml`,
//!   `enroll_guest` → bundle or QR code, `Issuerd::start`, `Lockd::start`, `Guestd::new`). The
//!   end-to-end tests in `tests/` run it against the embedded broker and against Mosquitto
//!   (plain, TLS, mutual TLS with the shipped `deploy/mosquitto` config and ACL).
//! - [`attack`]: a sniffer and a beacon replayer on the simulated air.
//!
//! Nothing here makes a protocol decision: that is the core's (`latchkey`), driven by the
//! daemons.

pub mod attack;
pub mod demo;
mod error;
pub mod site;

pub use demo::{DemoOptions, DemoOutcome};
pub use error::DemoError;
pub use site::{Endpoint, GuestSetup, LockSetup, Site};
