//! # latchkey-harness
//!
//! The conformance harness of the Latchkey protocol. It replays the JSON vectors of
//! `vectors/` against an implementation under test — the reference in process, or any
//! implementation behind a shim process speaking JSON lines (`harness/SHIM.md`) — and reports
//! per case PASSED, FAILED, UNIMPLEMENTED or DISABLED, with requirement coverage.

pub mod broken;
pub mod coverage;
pub mod fuzz;
pub mod generate;
pub mod iut;
pub mod model;
pub mod report;
pub mod runner;
pub mod vectors;
