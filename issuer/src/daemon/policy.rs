//! The daemon's access policy (LK-ISS-12) over the registry: the guest × lock access rule,
//! the lock's time zone and the rule's unlock usage (from its grants) go to
//! [`policy::authorize`]; its [`Refusal`](policy::Refusal) becomes the core's reason and its
//! [`Decision`](policy::Decision) the core's [`Authorization`].

use latchkey::issuer::{AccessPolicy, Authorization};
use latchkey::{GuestId, LockId, Reason};
use tracing::error;

use crate::error::IssuerdError;
use crate::policy::{self, AccountingWindow, Decision, Refusal, Usage};
use crate::store::Store;

/// [`AccessPolicy`] reading the registry at each request (the CLI and the web may have
/// changed a rule a moment ago).
pub(crate) struct RegistryPolicy<'a> {
    pub(crate) store: &'a Store,
    pub(crate) window: AccountingWindow,
}

/// Why the policy could not decide.
enum Undecided {
    Refused(Refusal),
    Registry(IssuerdError),
}

impl From<IssuerdError> for Undecided {
    fn from(e: IssuerdError) -> Self {
        Self::Registry(e)
    }
}

impl RegistryPolicy<'_> {
    fn decide(&self, now_s: u64, guest: GuestId, lock: LockId) -> Result<Decision, Undecided> {
        let Some(entry) = self.store.access_rule(&guest, &lock)? else {
            return Err(Undecided::Refused(Refusal::NotAuthorized));
        };
        let registered = self
            .store
            .lock(&lock)?
            .ok_or(IssuerdError::LockNotRegistered(lock))?;
        let tz = policy::time_zone(&registered.timezone)
            .map_err(|e| IssuerdError::invalid("time zone of a lock", e))?;
        // Counting grants costs a query; only a limited rule needs it.
        let usage = match entry.rule.max_unlocks() {
            Some(_) => self.store.rule_usage(&entry, now_s, &self.window)?,
            None => Usage::default(),
        };
        policy::authorize(now_s, Some(&entry.rule), &tz, &usage).map_err(Undecided::Refused)
    }
}

impl AccessPolicy for RegistryPolicy<'_> {
    fn authorize(
        &mut self,
        now_s: u64,
        guest: GuestId,
        lock: LockId,
    ) -> Result<Authorization, Reason> {
        match self.decide(now_s, guest, lock) {
            Ok(d) => Ok(d.into()),
            Err(Undecided::Refused(r)) => Err(r.into()),
            // Fail closed: a rule that cannot be read grants nothing.
            Err(Undecided::Registry(e)) => {
                error!(
                    guest = %guest, lock = %lock, error = %e,
                    "access policy: cannot read the registry; request refused (not_authorized)"
                );
                Err(Reason::NotAuthorized)
            }
        }
    }
}
