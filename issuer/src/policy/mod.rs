//! The issuer's access policy (LK-ISS-12): who may get a grant for which lock, when, and
//! with how many unlocks. Pure and sans-IO: no database, no clock; `now` is an input.
//!
//! - [`Role`]: what a guest is at a lock (`admin`, `resident`, `guest`), the constraints of
//!   its [`AccessRule`] and its per-grant cap.
//! - [`WeeklySchedule`]: days × local-time ranges, parsed from a small grammar
//!   (`"Mon-Fri 08:00-18:00; Sat,Sun 10:00-12:30"`, `"daily 22:00-06:00"`, `"always"`),
//!   evaluated in the lock's time zone ([`time_zone`]) with defined DST semantics.
//! - [`AccessRule`]: role, validity window, schedule and unlock limit of one guest × lock.
//! - [`Usage`] / [`GrantUsage`]: the unlock accounting over a guest × lock's grants.
//! - [`decide`] / [`authorize`]: the decision, [`Decision`] (the cap and `max_unlocks` of
//!   the grant) or a [`Refusal`] named as in spec §8.13.
//!
//! `docs/policy.md` states the model, the grammar and the DST rules for operators.

mod accounting;
mod decision;
mod role;
mod rule;
mod schedule;
mod zone;

pub use accounting::{AccountingWindow, GrantUsage, Usage};
pub use decision::{Decision, Refusal, authorize, decide};
pub use role::{GUEST_GRANT_CAP_S, Role, UnknownRole};
pub use rule::{AccessRule, AccessRuleSpec, RuleError};
pub use schedule::{
    ClockTime, Day, MAX_SCHEDULE_LEN, ScheduleCheck, ScheduleError, ScheduleParseError, Slot,
    WeeklySchedule,
};
pub use zone::{UnknownTimeZone, time_zone};
