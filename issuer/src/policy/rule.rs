//! The access rule of one guest at one lock (a row of the `access` table).

use std::num::NonZeroU32;

use serde::{Deserialize, Serialize};

use super::{Role, WeeklySchedule};

/// What a rule is made of, as the CLI, the web forms and the database give it. Times are
/// Unix seconds (UTC); the window is half-open, `valid_from ≤ now < valid_until`.
/// [`AccessRule::new`] checks it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessRuleSpec {
    /// The guest's role at the lock.
    pub role: Role,
    /// First second of access; `None`: from the start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_from: Option<u64>,
    /// First second without access; `None`: no end (not for a guest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<u64>,
    /// When in the week, in the lock's local time; `None`: at any time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<WeeklySchedule>,
    /// Most unlocks over the rule's grants together; `None`: no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_unlocks: Option<u32>,
}

impl AccessRuleSpec {
    /// A rule of `role` with no window, schedule or limit.
    pub fn new(role: Role) -> AccessRuleSpec {
        AccessRuleSpec {
            role,
            valid_from: None,
            valid_until: None,
            schedule: None,
            max_unlocks: None,
        }
    }
}

/// Why an access rule is invalid. Each message says how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    /// A `guest` without `valid_until`.
    #[error(
        "a guest's access must end: give valid_until (--valid-until), or make the role resident"
    )]
    GuestWithoutEnd,
    /// `valid_from ≥ valid_until`: the window holds no second.
    #[error("valid_from ({valid_from}) must be before valid_until ({valid_until})")]
    EmptyWindow {
        /// The start.
        valid_from: u64,
        /// The end.
        valid_until: u64,
    },
    /// An `admin` with a schedule.
    #[error("an admin is not restricted by a schedule: leave it out, or make the role resident")]
    AdminWithSchedule,
    /// An `admin` with an unlock limit.
    #[error(
        "an admin is not restricted by an unlock limit: leave it out, or make the role resident"
    )]
    AdminWithUnlockLimit,
    /// `max_unlocks = 0`.
    #[error("max_unlocks must be at least 1; leave it out for no limit")]
    ZeroUnlockLimit,
}

/// A checked access rule: the constraints of its [`Role`] hold, its window is not empty,
/// an `always` schedule is no schedule, and its unlock limit is at least 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "AccessRuleSpec", into = "AccessRuleSpec")]
pub struct AccessRule {
    role: Role,
    valid_from: Option<u64>,
    valid_until: Option<u64>,
    schedule: Option<WeeklySchedule>,
    max_unlocks: Option<NonZeroU32>,
}

impl AccessRule {
    /// Checks `spec`.
    pub fn new(spec: AccessRuleSpec) -> Result<AccessRule, RuleError> {
        let AccessRuleSpec {
            role,
            valid_from,
            valid_until,
            schedule,
            max_unlocks,
        } = spec;
        if role.requires_end() && valid_until.is_none() {
            return Err(RuleError::GuestWithoutEnd);
        }
        if let (Some(valid_from), Some(valid_until)) = (valid_from, valid_until)
            && valid_from >= valid_until
        {
            return Err(RuleError::EmptyWindow {
                valid_from,
                valid_until,
            });
        }
        let schedule = schedule.filter(|s| !s.is_always());
        let max_unlocks = match max_unlocks {
            None => None,
            Some(n) => Some(NonZeroU32::new(n).ok_or(RuleError::ZeroUnlockLimit)?),
        };
        if !role.may_be_restricted() {
            if schedule.is_some() {
                return Err(RuleError::AdminWithSchedule);
            }
            if max_unlocks.is_some() {
                return Err(RuleError::AdminWithUnlockLimit);
            }
        }
        Ok(AccessRule {
            role,
            valid_from,
            valid_until,
            schedule,
            max_unlocks,
        })
    }

    /// The guest's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// First second of access, if any.
    pub fn valid_from(&self) -> Option<u64> {
        self.valid_from
    }

    /// First second without access, if any (always set for a guest).
    pub fn valid_until(&self) -> Option<u64> {
        self.valid_until
    }

    /// The schedule; `None`: at any time.
    pub fn schedule(&self) -> Option<&WeeklySchedule> {
        self.schedule.as_ref()
    }

    /// The unlock limit (≥ 1); `None`: no limit.
    pub fn max_unlocks(&self) -> Option<u32> {
        self.max_unlocks.map(NonZeroU32::get)
    }

    /// The rule as its parts (for storage and forms).
    pub fn to_spec(&self) -> AccessRuleSpec {
        AccessRuleSpec::from(self.clone())
    }
}

impl TryFrom<AccessRuleSpec> for AccessRule {
    type Error = RuleError;

    fn try_from(spec: AccessRuleSpec) -> Result<Self, Self::Error> {
        AccessRule::new(spec)
    }
}

impl From<AccessRule> for AccessRuleSpec {
    fn from(rule: AccessRule) -> Self {
        AccessRuleSpec {
            role: rule.role,
            valid_from: rule.valid_from,
            valid_until: rule.valid_until,
            schedule: rule.schedule,
            max_unlocks: rule.max_unlocks.map(NonZeroU32::get),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(role: Role) -> AccessRuleSpec {
        AccessRuleSpec::new(role)
    }

    #[test]
    fn a_guest_rule_without_an_end_is_invalid() {
        assert_eq!(
            AccessRule::new(spec(Role::Guest)),
            Err(RuleError::GuestWithoutEnd)
        );
        let ok = AccessRule::new(AccessRuleSpec {
            valid_until: Some(2_000),
            ..spec(Role::Guest)
        })
        .unwrap();
        assert_eq!(ok.valid_until(), Some(2_000));
    }

    #[test]
    fn residents_and_admins_may_be_open_ended() {
        for role in [Role::Resident, Role::Admin] {
            let rule = AccessRule::new(spec(role)).unwrap();
            assert_eq!(rule.role(), role);
            assert_eq!((rule.valid_from(), rule.valid_until()), (None, None));
        }
    }

    #[test]
    fn an_empty_window_is_invalid() {
        for (from, until) in [(100, 100), (101, 100)] {
            assert_eq!(
                AccessRule::new(AccessRuleSpec {
                    valid_from: Some(from),
                    valid_until: Some(until),
                    ..spec(Role::Resident)
                }),
                Err(RuleError::EmptyWindow {
                    valid_from: from,
                    valid_until: until
                })
            );
        }
    }

    #[test]
    fn an_admin_is_not_restricted_by_schedule_or_count() {
        let schedule = WeeklySchedule::parse("Mon 08:00-09:00").ok();
        assert_eq!(
            AccessRule::new(AccessRuleSpec {
                schedule,
                ..spec(Role::Admin)
            }),
            Err(RuleError::AdminWithSchedule)
        );
        assert_eq!(
            AccessRule::new(AccessRuleSpec {
                max_unlocks: Some(3),
                ..spec(Role::Admin)
            }),
            Err(RuleError::AdminWithUnlockLimit)
        );
        // "always" restricts nothing, so an admin may have it; it is kept as no schedule.
        let rule = AccessRule::new(AccessRuleSpec {
            schedule: Some(WeeklySchedule::always()),
            ..spec(Role::Admin)
        })
        .unwrap();
        assert_eq!(rule.schedule(), None);
    }

    #[test]
    fn an_unlock_limit_of_zero_is_invalid() {
        assert_eq!(
            AccessRule::new(AccessRuleSpec {
                max_unlocks: Some(0),
                ..spec(Role::Resident)
            }),
            Err(RuleError::ZeroUnlockLimit)
        );
        let rule = AccessRule::new(AccessRuleSpec {
            max_unlocks: Some(1),
            ..spec(Role::Resident)
        })
        .unwrap();
        assert_eq!(rule.max_unlocks(), Some(1));
    }

    #[test]
    fn rules_round_trip_through_json_and_are_checked_when_read() {
        let rule = AccessRule::new(AccessRuleSpec {
            role: Role::Guest,
            valid_from: Some(1_000),
            valid_until: Some(2_000),
            schedule: WeeklySchedule::parse("Sat,Sun 10:00-12:30").ok(),
            max_unlocks: Some(5),
        })
        .unwrap();
        let json = serde_json::to_string(&rule).unwrap();
        assert_eq!(
            json,
            r#"{"role":"guest","valid_from":1000,"valid_until":2000,"schedule":{"slots":[{"days":["sat","sun"],"start":"10:00","end":"12:30"}]},"max_unlocks":5}"#
        );
        assert_eq!(serde_json::from_str::<AccessRule>(&json).unwrap(), rule);
        assert_eq!(AccessRule::new(rule.to_spec()).unwrap(), rule);
        let err = serde_json::from_str::<AccessRule>(r#"{"role":"guest"}"#).unwrap_err();
        assert!(err.to_string().contains("must end"), "{err}");
        assert!(serde_json::from_str::<AccessRule>(r#"{"role":"resident","extra":1}"#).is_err());
    }
}
