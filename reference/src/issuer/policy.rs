//! The issuer's access policy hook (LK-ISS-12): after the fixed checks, a policy decides
//! whether a guest may have a grant at a lock now, and caps what it gets. The core ships
//! [`AllowAll`] (no constraint beyond the guest's allowed locks, LK-ISS-7) and
//! [`StaticAccess`] (per guest and lock: an access window and an unlock limit); a daemon
//! plugs in its own (weekly schedules in a lock's time zone, unlock accounting) behind the
//! same trait.

use alloc::collections::BTreeMap;

use crate::{GuestId, LockId, Reason};

/// What a policy allows for one grant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Authorization {
    /// Latest `not_after` the policy allows (end of the access window or schedule slot),
    /// Unix seconds; `None` = no cap.
    pub not_after_max: Option<u64>,
    /// `max_unlocks` for the LockGrant (LK-LIM-1); 0 = no limit.
    pub max_unlocks: u16,
}

/// Decides grant requests that passed the issuer's fixed checks (LK-ISS-12).
pub trait AccessPolicy {
    /// Called for a request that passed LK-FRM, LK-ISS-1..8 and LK-ISS-7. `Ok`: the grant
    /// may be issued, capped as returned. `Err`: one of `not_authorized`,
    /// `outside_access_window`, `outside_schedule`, `unlock_limit_reached` (any other reason
    /// is reported as `not_authorized`).
    fn authorize(
        &mut self,
        now_s: u64,
        guest: GuestId,
        lock: LockId,
    ) -> Result<Authorization, Reason>;
}

/// The reason a policy refusal is reported with: the four of LK-ISS-12 as they are, anything
/// else as `not_authorized` (a policy cannot make the issuer report, say, `bad_seal`).
pub(crate) fn refusal(r: Reason) -> Reason {
    match r {
        Reason::NotAuthorized
        | Reason::OutsideAccessWindow
        | Reason::OutsideSchedule
        | Reason::UnlockLimitReached => r,
        _ => Reason::NotAuthorized,
    }
}

/// No constraint beyond the guest's allowed locks: every grant as requested, no unlock limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AllowAll;

impl AccessPolicy for AllowAll {
    fn authorize(&mut self, _: u64, _: GuestId, _: LockId) -> Result<Authorization, Reason> {
        Ok(Authorization::default())
    }
}

/// The access of one guest at one lock under [`StaticAccess`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AccessRule {
    /// First second of access (Unix s, UTC); `None` = since ever.
    pub valid_from: Option<u64>,
    /// End of access, exclusive (Unix s, UTC); `None` = no end. Grants end by then.
    pub valid_until: Option<u64>,
    /// Unlocks per grant; `None` = no limit.
    pub max_unlocks: Option<u16>,
}

/// Per guest × lock access windows and unlock limits. A pair without a rule is not
/// constrained further (the guest's allowed locks still apply, LK-ISS-7). Access is
/// `[valid_from, valid_until)`; outside it a request is `outside_access_window`, inside it
/// the grant ends by `valid_until` and carries `max_unlocks`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StaticAccess {
    rules: BTreeMap<(GuestId, LockId), AccessRule>,
}

impl StaticAccess {
    /// No rules.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets (or replaces) the rule of `guest` at `lock`.
    pub fn set(&mut self, guest: GuestId, lock: LockId, rule: AccessRule) {
        self.rules.insert((guest, lock), rule);
    }

    /// The rule of `guest` at `lock`, if any.
    pub fn rule(&self, guest: &GuestId, lock: &LockId) -> Option<&AccessRule> {
        self.rules.get(&(*guest, *lock))
    }
}

impl AccessPolicy for StaticAccess {
    fn authorize(
        &mut self,
        now_s: u64,
        guest: GuestId,
        lock: LockId,
    ) -> Result<Authorization, Reason> {
        let Some(r) = self.rules.get(&(guest, lock)) else {
            return Ok(Authorization::default());
        };
        if r.valid_from.is_some_and(|from| now_s < from)
            || r.valid_until.is_some_and(|until| now_s >= until)
        {
            return Err(Reason::OutsideAccessWindow);
        }
        Ok(Authorization {
            not_after_max: r.valid_until,
            max_unlocks: r.max_unlocks.unwrap_or(0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const G: GuestId = GuestId([1; 16]);
    const L: LockId = LockId([2; 16]);

    #[test]
    fn static_access_is_half_open_and_caps_the_grant() {
        let mut p = StaticAccess::new();
        assert_eq!(p.authorize(5, G, L), Ok(Authorization::default()));
        p.set(
            G,
            L,
            AccessRule {
                valid_from: Some(100),
                valid_until: Some(200),
                max_unlocks: Some(3),
            },
        );
        assert_eq!(p.authorize(99, G, L), Err(Reason::OutsideAccessWindow));
        assert_eq!(
            p.authorize(100, G, L),
            Ok(Authorization {
                not_after_max: Some(200),
                max_unlocks: 3
            })
        );
        assert_eq!(p.authorize(200, G, L), Err(Reason::OutsideAccessWindow));
        assert_eq!(p.rule(&G, &L).map(|r| r.max_unlocks), Some(Some(3)));
        assert_eq!(
            p.authorize(150, G, LockId([3; 16])),
            Ok(Authorization::default())
        );
    }

    #[test]
    fn only_the_policy_reasons_pass_through() {
        for r in [
            Reason::NotAuthorized,
            Reason::OutsideAccessWindow,
            Reason::OutsideSchedule,
            Reason::UnlockLimitReached,
        ] {
            assert_eq!(refusal(r), r);
        }
        assert_eq!(refusal(Reason::BadSeal), Reason::NotAuthorized);
    }
}
