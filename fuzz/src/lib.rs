//! Shared code of the Latchkey fuzz targets (`fuzz_targets/*.rs` are one-line wrappers).
//!
//! * [`frames`]: one check per parser — no panic, exact rejection reasons for the fixed
//!   frames, and decode → encode → decode is the identity for every accepted input (through
//!   the reference's own encoders and through the harness's JSON `decode`/`encode`).
//! * [`shim`]: the shim protocol's JSON lines against the in-process reference
//!   (`ReferenceIut::handle`): every request gets an object with a boolean `"ok"`.
//! * [`lock_sm`], [`guest_sm`], [`issuer_sm`]: each role driven by an `arbitrary` sequence
//!   of timed inputs built from sessions forged with fixed keys, next to a model that knows
//!   every key, and checks the security invariants after every step.
//!
//! A violated invariant panics with a message naming it; libFuzzer records the input.

pub mod common;
pub mod frames;
pub mod guest_sm;
pub mod issuer_sm;
pub mod lock_sm;
pub mod shim;
