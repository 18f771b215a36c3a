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
//! ```
//! use latchkey::{GrantId, GuestId, LockId};
//! use latchkey_issuer::anomaly::{
//!     AlertKind, AnomalyConfig, AnomalyEngine, AuditRecord, Coordinates, LockDirectory,
//!     LockInfo, RecordKind,
//! };
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut engine = AnomalyEngine::new(AnomalyConfig::default())?;
//! let lock = LockId([1; 16]);
//! let mut locks = LockDirectory::new();
//! locks.insert(lock, LockInfo::named("Europe/Berlin", Some(Coordinates::new(52.52, 13.405)?))?);
//!
//! // One audit row, mapped: a lock event of kind 5 for a guest's grant.
//! let record = AuditRecord::new(1_736_150_400_000, RecordKind::from_name("lockout").unwrap())
//!     .with_lock(lock)
//!     .with_guest(GuestId([2; 16]))
//!     .with_grant(GrantId([3; 16]))
//!     .with_reason("bad_response_mac")
//!     .with_lock_time(1_736_150_399_250);
//! let alerts = engine.observe(&record, &locks);
//! assert_eq!(alerts.len(), 1);
//! assert_eq!(alerts[0].kind, AlertKind::Lockout);
//! let json = serde_json::to_string(&alerts[0])?; // for {p}/alerts and the alerts table
//! assert!(json.starts_with(r#"{"alert_id":""#));
//! # Ok(())
//! # }
//! ```
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
pub use locks::{LocalTime, LockDirectory, LockInfo};
pub use record::{AuditRecord, ReasonCount, RecordKind};
pub use revoked_guest::RevokedGuestConfig;
pub use unusual_hour::UnusualHourConfig;
