//! Login throttling, pure: after `max_failures` failed logins of one account within
//! `window_ms`, the account refuses every login for `lockout_ms`. Failures while locked are
//! not counted (the lockout does not grow: an attacker cannot lock an operator out for
//! longer than one period by hammering), and a success clears the count.

use super::model::LoginState;

/// The throttling settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginPolicy {
    /// Failures that lock the account.
    pub max_failures: u32,
    /// Window in which they are counted, ms.
    pub window_ms: u64,
    /// How long the lockout lasts, ms.
    pub lockout_ms: u64,
}

impl LoginPolicy {
    /// Whether `state` refuses logins at `now_ms`.
    pub fn is_locked(&self, state: &LoginState, now_ms: u64) -> bool {
        state.locked_until_ms.is_some_and(|until| now_ms < until)
    }

    /// The state after a failed login at `now_ms` (the account was not locked).
    pub fn after_failure(&self, state: &LoginState, now_ms: u64) -> LoginState {
        let in_window = state.failed_logins > 0
            && now_ms.saturating_sub(state.first_failure_ms) < self.window_ms;
        let (failed_logins, first_failure_ms) = if in_window {
            (
                state.failed_logins.saturating_add(1),
                state.first_failure_ms,
            )
        } else {
            (1, now_ms)
        };
        if failed_logins >= self.max_failures {
            LoginState {
                failed_logins: 0,
                first_failure_ms: 0,
                locked_until_ms: Some(now_ms.saturating_add(self.lockout_ms)),
            }
        } else {
            LoginState {
                failed_logins,
                first_failure_ms,
                locked_until_ms: None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: LoginPolicy = LoginPolicy {
        max_failures: 3,
        window_ms: 60_000,
        lockout_ms: 300_000,
    };

    #[test]
    fn max_failures_within_the_window_lock_the_account() {
        let mut s = LoginState::default();
        for t in [1_000, 2_000] {
            s = POLICY.after_failure(&s, t);
            assert!(!POLICY.is_locked(&s, t));
        }
        s = POLICY.after_failure(&s, 3_000);
        assert_eq!(s.locked_until_ms, Some(303_000));
        assert!(POLICY.is_locked(&s, 302_999));
        assert!(!POLICY.is_locked(&s, 303_000), "the lockout ends by itself");
    }

    #[test]
    fn failures_spread_wider_than_the_window_do_not_lock() {
        let mut s = LoginState::default();
        for t in [0, 40_000, 80_000, 120_000, 160_000] {
            s = POLICY.after_failure(&s, t);
            assert!(!POLICY.is_locked(&s, t), "at {t}");
        }
        // 160 000 opened a new window; two more failures inside it make three and lock.
        s = POLICY.after_failure(&s, 170_000);
        assert!(!POLICY.is_locked(&s, 170_000));
        s = POLICY.after_failure(&s, 175_000);
        assert!(POLICY.is_locked(&s, 175_000));
    }

    #[test]
    fn the_count_restarts_after_a_lockout() {
        let mut s = LoginState::default();
        for t in [0, 1, 2] {
            s = POLICY.after_failure(&s, t);
        }
        assert!(POLICY.is_locked(&s, 3));
        let after = 400_000;
        assert!(!POLICY.is_locked(&s, after));
        s = POLICY.after_failure(&s, after);
        assert_eq!(s.failed_logins, 1);
        assert_eq!(s.locked_until_ms, None);
    }
}
