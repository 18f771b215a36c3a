//! The policy decision for one grant request (LK-ISS-12).

use std::fmt;

use jiff::tz::TimeZone;

use super::{AccessRule, ScheduleCheck, Usage};

/// A grant the policy allows, and its limits (`latchkey::issuer::Authorization`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Decision {
    /// Latest `not_after` allowed (Unix seconds, > now): the first of the end of the
    /// validity window, the end of the current schedule slot and `now + ` the role's cap.
    /// `None`: no cap beyond the issuer's `max_grant_validity_s`.
    pub not_after_max: Option<u64>,
    /// `max_unlocks` of the LockGrant: what is left of the rule's limit, at most
    /// `u16::MAX`; 0 = no limit.
    pub max_unlocks: u16,
}

/// Why the policy refuses a grant; the spec's reason names (§8.13).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// No access rule for this guest at this lock.
    NotAuthorized,
    /// `now` is outside `[valid_from, valid_until)`.
    OutsideAccessWindow,
    /// `now` is outside every slot of the schedule.
    OutsideSchedule,
    /// The rule's unlock limit is used up or allocated to unsettled grants.
    UnlockLimitReached,
}

impl Refusal {
    /// The spec's reason name.
    pub fn reason_name(&self) -> &'static str {
        match self {
            Refusal::NotAuthorized => "not_authorized",
            Refusal::OutsideAccessWindow => "outside_access_window",
            Refusal::OutsideSchedule => "outside_schedule",
            Refusal::UnlockLimitReached => "unlock_limit_reached",
        }
    }
}

impl From<Refusal> for latchkey::Reason {
    /// The core's reason code for the refusal (spec §8.13).
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::NotAuthorized => latchkey::Reason::NotAuthorized,
            Refusal::OutsideAccessWindow => latchkey::Reason::OutsideAccessWindow,
            Refusal::OutsideSchedule => latchkey::Reason::OutsideSchedule,
            Refusal::UnlockLimitReached => latchkey::Reason::UnlockLimitReached,
        }
    }
}

impl From<Decision> for latchkey::issuer::Authorization {
    fn from(d: Decision) -> Self {
        Self {
            not_after_max: d.not_after_max,
            max_unlocks: d.max_unlocks,
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason_name())
    }
}

/// Decides a grant request of the guest whose rule at the lock is `rule` (`None`: no rule,
/// `not_authorized`); see [`decide`].
pub fn authorize(
    now_s: u64,
    rule: Option<&AccessRule>,
    tz: &TimeZone,
    usage: &Usage,
) -> Result<Decision, Refusal> {
    decide(now_s, rule.ok_or(Refusal::NotAuthorized)?, tz, usage)
}

/// Decides a grant request at `now_s` (Unix seconds) under `rule`, with the schedule read
/// in the lock's time zone `tz` and the rule's unlock `usage` (see [`Usage::from_grants`]).
///
/// Checks, in order: the window (`valid_from ≤ now < valid_until`, else
/// `outside_access_window`), the schedule (inside a slot, else `outside_schedule`), the
/// unlock limit (`remaining = max − confirmed − outstanding`; 0 → `unlock_limit_reached`).
/// The grant is then capped at the first of `valid_until`, the end of the current slot
/// and `now + ` the role's cap, and carries `min(remaining, u16::MAX)` unlocks.
pub fn decide(
    now_s: u64,
    rule: &AccessRule,
    tz: &TimeZone,
    usage: &Usage,
) -> Result<Decision, Refusal> {
    if rule.valid_from().is_some_and(|from| now_s < from)
        || rule.valid_until().is_some_and(|until| now_s >= until)
    {
        return Err(Refusal::OutsideAccessWindow);
    }
    let slot_end = match rule.schedule().map(|s| s.check(now_s, tz)) {
        None | Some(ScheduleCheck::Always) => None,
        Some(ScheduleCheck::Inside { until_s }) => Some(until_s),
        Some(ScheduleCheck::Outside { .. }) => return Err(Refusal::OutsideSchedule),
    };
    let max_unlocks = match rule.max_unlocks() {
        None => 0,
        Some(max) => match usage.remaining(max) {
            0 => return Err(Refusal::UnlockLimitReached),
            remaining => u16::try_from(remaining).unwrap_or(u16::MAX),
        },
    };
    let role_cap = rule
        .role()
        .grant_cap_s()
        .map(|cap| now_s.saturating_add(cap));
    let not_after_max = [rule.valid_until(), slot_end, role_cap]
        .into_iter()
        .flatten()
        .min();
    Ok(Decision {
        not_after_max,
        max_unlocks,
    })
}

#[cfg(test)]
mod tests {
    use jiff::Timestamp;

    use super::*;
    use crate::policy::{AccessRuleSpec, GUEST_GRANT_CAP_S, Role, WeeklySchedule, time_zone};

    fn at(instant: &str) -> u64 {
        let ts: Timestamp = instant.parse().unwrap();
        u64::try_from(ts.as_second()).unwrap()
    }

    fn rule(spec: AccessRuleSpec) -> AccessRule {
        AccessRule::new(spec).unwrap()
    }

    fn resident() -> AccessRuleSpec {
        AccessRuleSpec::new(Role::Resident)
    }

    fn schedule(text: &str) -> Option<WeeklySchedule> {
        Some(WeeklySchedule::parse(text).unwrap())
    }

    fn utc() -> TimeZone {
        TimeZone::UTC
    }

    const NO_USE: Usage = Usage {
        confirmed_unlocks: 0,
        outstanding_allocation: 0,
    };

    #[test]
    fn refusals_use_the_spec_reason_names() {
        assert_eq!(Refusal::NotAuthorized.reason_name(), "not_authorized");
        assert_eq!(
            Refusal::OutsideAccessWindow.reason_name(),
            "outside_access_window"
        );
        assert_eq!(Refusal::OutsideSchedule.reason_name(), "outside_schedule");
        assert_eq!(
            Refusal::UnlockLimitReached.to_string(),
            "unlock_limit_reached"
        );
    }

    #[test]
    fn refusals_and_decisions_become_the_cores_reasons_and_authorizations() {
        for r in [
            Refusal::NotAuthorized,
            Refusal::OutsideAccessWindow,
            Refusal::OutsideSchedule,
            Refusal::UnlockLimitReached,
        ] {
            assert_eq!(latchkey::Reason::from(r).name(), r.reason_name());
        }
        let d = Decision {
            not_after_max: Some(7),
            max_unlocks: 3,
        };
        let a = latchkey::issuer::Authorization::from(d);
        assert_eq!((a.not_after_max, a.max_unlocks), (Some(7), 3));
    }

    #[test]
    fn no_rule_is_not_authorized() {
        assert_eq!(
            authorize(1_000, None, &utc(), &NO_USE),
            Err(Refusal::NotAuthorized)
        );
        let r = rule(resident());
        assert_eq!(
            authorize(1_000, Some(&r), &utc(), &NO_USE),
            Ok(Decision::default())
        );
    }

    #[test]
    fn an_open_ended_resident_is_uncapped_and_unlimited() {
        assert_eq!(
            decide(1_000, &rule(resident()), &utc(), &NO_USE),
            Ok(Decision {
                not_after_max: None,
                max_unlocks: 0
            })
        );
    }

    #[test]
    fn the_window_is_half_open() {
        let r = rule(AccessRuleSpec {
            valid_from: Some(1_000),
            valid_until: Some(2_000),
            ..resident()
        });
        assert_eq!(
            decide(999, &r, &utc(), &NO_USE),
            Err(Refusal::OutsideAccessWindow)
        );
        assert_eq!(
            decide(1_000, &r, &utc(), &NO_USE).map(|d| d.not_after_max),
            Ok(Some(2_000))
        );
        assert_eq!(
            decide(1_999, &r, &utc(), &NO_USE).map(|d| d.not_after_max),
            Ok(Some(2_000))
        );
        assert_eq!(
            decide(2_000, &r, &utc(), &NO_USE),
            Err(Refusal::OutsideAccessWindow)
        );
    }

    #[test]
    fn the_window_is_checked_before_the_schedule_and_the_limit() {
        let r = rule(AccessRuleSpec {
            valid_until: Some(at("2026-03-02T00:00:00Z")),
            schedule: schedule("Sun 10:00-11:00"),
            max_unlocks: Some(1),
            ..resident()
        });
        let used = Usage {
            confirmed_unlocks: 1,
            outstanding_allocation: 0,
        };
        assert_eq!(
            decide(at("2026-03-02T12:00:00Z"), &r, &utc(), &used),
            Err(Refusal::OutsideAccessWindow)
        );
        assert_eq!(
            decide(at("2026-03-01T12:00:00Z"), &r, &utc(), &used),
            Err(Refusal::OutsideSchedule)
        );
        assert_eq!(
            decide(at("2026-03-01T10:30:00Z"), &r, &utc(), &used),
            Err(Refusal::UnlockLimitReached)
        );
    }

    #[test]
    fn the_cap_is_the_end_of_the_current_slot() {
        let r = rule(AccessRuleSpec {
            schedule: schedule("Mon-Fri 08:00-18:00"),
            ..resident()
        });
        let berlin = time_zone("Europe/Berlin").unwrap();
        assert_eq!(
            decide(at("2026-03-02T11:59:00+01:00"), &r, &berlin, &NO_USE),
            Ok(Decision {
                not_after_max: Some(at("2026-03-02T17:00:00Z")),
                max_unlocks: 0
            })
        );
        assert_eq!(
            decide(at("2026-03-02T18:00:00+01:00"), &r, &berlin, &NO_USE),
            Err(Refusal::OutsideSchedule)
        );
    }

    #[test]
    fn valid_until_caps_the_slot_end() {
        let r = rule(AccessRuleSpec {
            valid_until: Some(at("2026-03-02T12:00:00Z")),
            schedule: schedule("Mon 08:00-18:00"),
            ..resident()
        });
        assert_eq!(
            decide(at("2026-03-02T11:00:00Z"), &r, &utc(), &NO_USE).map(|d| d.not_after_max),
            Ok(Some(at("2026-03-02T12:00:00Z")))
        );
        // And the slot end caps a later valid_until.
        let r = rule(AccessRuleSpec {
            valid_until: Some(at("2026-03-02T20:00:00Z")),
            schedule: schedule("Mon 08:00-18:00"),
            ..resident()
        });
        assert_eq!(
            decide(at("2026-03-02T11:00:00Z"), &r, &utc(), &NO_USE).map(|d| d.not_after_max),
            Ok(Some(at("2026-03-02T18:00:00Z")))
        );
    }

    #[test]
    fn a_guest_grant_is_capped_by_the_role() {
        let now = at("2026-03-02T11:00:00Z");
        let r = rule(AccessRuleSpec {
            valid_until: Some(at("2026-03-09T00:00:00Z")),
            ..AccessRuleSpec::new(Role::Guest)
        });
        assert_eq!(
            decide(now, &r, &utc(), &NO_USE).map(|d| d.not_after_max),
            Ok(Some(now + GUEST_GRANT_CAP_S))
        );
        // Near the end of its window or slot, those come first.
        let r = rule(AccessRuleSpec {
            valid_until: Some(now + 60),
            ..AccessRuleSpec::new(Role::Guest)
        });
        assert_eq!(
            decide(now, &r, &utc(), &NO_USE).map(|d| d.not_after_max),
            Ok(Some(now + 60))
        );
        let r = rule(AccessRuleSpec {
            valid_until: Some(at("2026-03-09T00:00:00Z")),
            schedule: schedule("Mon 08:00-11:05"),
            ..AccessRuleSpec::new(Role::Guest)
        });
        assert_eq!(
            decide(now, &r, &utc(), &NO_USE).map(|d| d.not_after_max),
            Ok(Some(at("2026-03-02T11:05:00Z")))
        );
    }

    #[test]
    fn an_admin_is_capped_only_by_its_window() {
        let r = rule(AccessRuleSpec {
            valid_until: Some(5_000),
            ..AccessRuleSpec::new(Role::Admin)
        });
        assert_eq!(
            decide(1_000, &r, &utc(), &NO_USE),
            Ok(Decision {
                not_after_max: Some(5_000),
                max_unlocks: 0
            })
        );
    }

    #[test]
    fn the_cap_on_dst_days_is_the_utc_instant_of_the_slot_end() {
        let r = rule(AccessRuleSpec {
            schedule: schedule("Sun 01:00-02:30"),
            ..resident()
        });
        let cases = [
            // Spring forward: 02:30 does not exist; the slot ends at 03:00 CEST.
            (
                "Europe/Berlin",
                "2026-03-29T01:45:00+01:00",
                "2026-03-29T01:00:00Z",
            ),
            (
                "America/New_York",
                "2026-03-08T01:45:00-05:00",
                "2026-03-08T07:00:00Z",
            ),
            // Fall back in Berlin: 02:30 occurs twice; the slot ends at the first (CEST).
            (
                "Europe/Berlin",
                "2026-10-25T02:00:00+02:00",
                "2026-10-25T00:30:00Z",
            ),
            // Fall back in New York repeats 01:00-01:59: the slot starts at the first
            // 01:00 (EDT) and ends at the only 02:30 (EST), 2.5 h of real time.
            (
                "America/New_York",
                "2026-11-01T01:45:00-04:00",
                "2026-11-01T07:30:00Z",
            ),
            (
                "America/New_York",
                "2026-11-01T01:45:00-05:00",
                "2026-11-01T07:30:00Z",
            ),
        ];
        for (zone, now, cap) in cases {
            let tz = time_zone(zone).unwrap();
            assert_eq!(
                decide(at(now), &r, &tz, &NO_USE).map(|d| d.not_after_max),
                Ok(Some(at(cap))),
                "{zone} at {now}"
            );
        }
    }

    #[test]
    fn remaining_unlocks_are_granted_and_none_left_is_refused() {
        let r = rule(AccessRuleSpec {
            max_unlocks: Some(10),
            ..resident()
        });
        let usage = |confirmed_unlocks, outstanding_allocation| Usage {
            confirmed_unlocks,
            outstanding_allocation,
        };
        assert_eq!(
            decide(0, &r, &utc(), &usage(0, 0)).map(|d| d.max_unlocks),
            Ok(10)
        );
        assert_eq!(
            decide(0, &r, &utc(), &usage(3, 4)).map(|d| d.max_unlocks),
            Ok(3)
        );
        assert_eq!(
            decide(0, &r, &utc(), &usage(3, 7)),
            Err(Refusal::UnlockLimitReached)
        );
        // More used than the limit (the limit was lowered): saturates at 0, refused.
        assert_eq!(
            decide(0, &r, &utc(), &usage(12, u32::MAX)),
            Err(Refusal::UnlockLimitReached)
        );
    }

    #[test]
    fn a_limit_above_u16_is_granted_as_u16_max() {
        let r = rule(AccessRuleSpec {
            max_unlocks: Some(100_000),
            ..resident()
        });
        assert_eq!(
            decide(0, &r, &utc(), &NO_USE).map(|d| d.max_unlocks),
            Ok(u16::MAX)
        );
        let used = Usage {
            confirmed_unlocks: 100_000 - 65_535,
            outstanding_allocation: 1,
        };
        assert_eq!(
            decide(0, &r, &utc(), &used).map(|d| d.max_unlocks),
            Ok(65_534)
        );
    }
}
