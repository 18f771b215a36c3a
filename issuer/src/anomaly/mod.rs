//! # Anomaly alerts over the audit trail (contract §4)
//!
//! A pure, sans-IO scorer: the daemon feeds each audit record, as it is recorded, to
//! [`AnomalyEngine::observe`] with the current [`LockDirectory`] and publishes the returned
//! [`Alert`]s on `{p}/alerts` (QoS 1) and stores them. No clock is read (time comes from
//! the records), nothing is written, and the same records give the same alerts with the
//! same ids. Method, defaults and measured false-positive rates: `docs/anomaly.md`.
//!
//! Detectors (one file each):
//! - [`unusual_hour`]: an unlock at an hour unusual for this guest at this lock
//!   (decayed, Laplace-smoothed hour histogram in the lock's time zone).
//! - [`failure_burst`]: failures per lock and per guest in a sliding window, one alert per
//!   burst; every `lockout` record is an alert.
//! - [`revoked_guest`]: a revoked session's beacon at a lock or a grant request refused
//!   `guest_revoked`, deduplicated per guest.
//! - [`impossible_travel`]: unlocks at two locks whose distance over the time between
//!   implies an impossible speed (haversine), or, without coordinates, an optional
//!   minimum interval.
//!
//! Around them: [`record`] (the input), [`locks`] and [`geo`] (time zones, coordinates),
//! [`alert`] (the output and its JSON), [`config`] (settings and memory caps), [`engine`],
//! and for measuring: [`workload`] (a seeded synthetic month of a building, with injected
//! anomalies and ground truth) and [`evaluation`] (recall and false-positive rates).
//!
//! Invariants:
//! - Memory is bounded: every map of per-guest, per-lock or per-pair state has a cap
//!   ([`MemoryLimits`]) and evicts its least recently used entry; every window has a fixed
//!   maximum length. Evicting forgets history; it never raises an alert or panics.
//! - No input panics: ids, times and reasons from outside are all handled (times saturate,
//!   unknown locks are UTC without coordinates, unknown reasons are ignored).

pub mod alert;
mod bounded;
pub mod config;
pub mod engine;
pub mod evaluation;
pub mod failure_burst;
pub mod geo;
pub mod impossible_travel;
pub mod locks;
pub mod record;
pub mod revoked_guest;
pub mod unusual_hour;
pub mod workload;

pub use alert::{Alert, AlertKind, Detector, Severity};
pub use config::{AnomalyConfig, AnomalyConfigError, MemoryLimits};
pub use engine::{AnomalyEngine, EngineState};
pub use failure_burst::FailureBurstConfig;
pub use geo::{Coordinates, CoordinatesError};
pub use impossible_travel::ImpossibleTravelConfig;
pub use locks::{LocalTime, LockDirectory, LockInfo, UnknownTimeZone, time_zone_by_name};
pub use record::{AuditRecord, ReasonCount, RecordKind};
pub use revoked_guest::RevokedGuestConfig;
pub use unusual_hour::UnusualHourConfig;
