//! Access rules: which guest may open which lock, in which role, from when until when, on
//! which weekly schedule and how many times. One row per guest × lock; a guest without a
//! row for a lock is not authorized there (LK-ISS-7). The rule itself is the policy
//! module's [`AccessRule`] (checked by [`AccessRule::new`] before it is written); deciding
//! with it is [`crate::policy::decide`]'s job.
//!
//! The schedule is stored as the policy's JSON form (`schedule_json`); a row written as
//! schedule text (by hand, or by an earlier build) is read with [`WeeklySchedule::parse`].

use latchkey::{GuestId, LockId};
use rusqlite::{Connection, OptionalExtension, params};

use super::Store;
use super::audit::{self, AuditSource, NewAudit};
use super::db::{int, parse_id, uint, uint_opt};
use crate::error::IssuerdError;
use crate::policy::{AccessRule, AccessRuleSpec, Role, RuleError, WeeklySchedule};

/// A stored access rule: the rule of one guest at one lock, and when it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessEntry {
    /// The guest.
    pub guest_id: GuestId,
    /// The lock.
    pub lock_id: LockId,
    /// The rule (role, window, schedule, unlock limit), checked.
    pub rule: AccessRule,
    /// Created at, Unix ms: the rule's unlock limit counts the grants issued since.
    pub created_at_ms: u64,
    /// Last changed at, Unix ms.
    pub updated_at_ms: u64,
}

/// Changes to an access rule. `None` keeps the field (for a new rule: role `resident`, no
/// window, no schedule, no limit); `Some(None)` clears it. The result must be a valid
/// [`AccessRule`] (a `guest` needs `valid_until`, an `admin` takes no schedule or limit).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessChange {
    /// The role.
    pub role: Option<Role>,
    /// Start of the access window (Unix s).
    pub valid_from: Option<Option<u64>>,
    /// End of the access window (Unix s).
    pub valid_until: Option<Option<u64>>,
    /// Weekly schedule, in the lock's local time.
    pub schedule: Option<Option<WeeklySchedule>>,
    /// Unlock limit.
    pub max_unlocks: Option<Option<u32>>,
}

/// The role of a rule the change does not name: unbounded, unrestricted access until told
/// otherwise (a `guest` would need an end).
pub const DEFAULT_ROLE: Role = Role::Resident;

impl AccessChange {
    /// A change that sets every field as `rule` has it.
    pub fn from_rule(rule: &AccessRule) -> Self {
        let spec = rule.to_spec();
        Self {
            role: Some(spec.role),
            valid_from: Some(spec.valid_from),
            valid_until: Some(spec.valid_until),
            schedule: Some(spec.schedule),
            max_unlocks: Some(spec.max_unlocks),
        }
    }

    /// `old` (or a new rule) with this change applied, checked.
    pub fn apply_to(&self, old: Option<&AccessRule>) -> Result<AccessRule, RuleError> {
        let mut spec = old.map_or_else(|| AccessRuleSpec::new(DEFAULT_ROLE), AccessRule::to_spec);
        if let Some(role) = self.role {
            spec.role = role;
        }
        if let Some(v) = self.valid_from {
            spec.valid_from = v;
        }
        if let Some(v) = self.valid_until {
            spec.valid_until = v;
        }
        if let Some(v) = &self.schedule {
            spec.schedule.clone_from(v);
        }
        if let Some(v) = self.max_unlocks {
            spec.max_unlocks = v;
        }
        AccessRule::new(spec)
    }

    fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "role": self.role.map(Role::name),
            "valid_from": self.valid_from,
            "valid_until": self.valid_until,
            "schedule": self.schedule.as_ref().map(|s| s.as_ref().map(ToString::to_string)),
            "max_unlocks": self.max_unlocks,
        })
    }
}

/// A rule the policy refuses, naming the guest and lock it was for.
fn refused(guest: &GuestId, lock: &LockId, e: &RuleError) -> IssuerdError {
    IssuerdError::invalid("access rule", format!("guest {guest} at lock {lock}: {e}"))
}

/// Reads a `schedule_json` column: the policy's JSON form, or schedule text.
fn read_schedule(text: &str) -> Result<WeeklySchedule, String> {
    let t = text.trim();
    if t.starts_with('{') {
        serde_json::from_str(t).map_err(|e| format!("schedule JSON: {e}"))
    } else {
        WeeklySchedule::parse(t).map_err(|e| format!("schedule text: {e}"))
    }
}

const COLUMNS: &str = "guest_id, lock_id, role, valid_from, valid_until, schedule_json, \
                       max_unlocks, created_at_ms, updated_at_ms";

type RawRule = (
    String,
    String,
    String,
    Option<i64>,
    Option<i64>,
    Option<String>,
    Option<i64>,
    i64,
    i64,
);

fn finish(r: RawRule) -> Result<AccessEntry, IssuerdError> {
    let (guest, lock, role, from, until, schedule, max, created, updated) = r;
    let corrupt = |detail: String| IssuerdError::CorruptRow {
        table: "access",
        key: format!("{guest}/{lock}"),
        detail,
    };
    let role: Role = role
        .parse()
        .map_err(|e: crate::policy::UnknownRole| corrupt(e.to_string()))?;
    let schedule = schedule
        .as_deref()
        .map(read_schedule)
        .transpose()
        .map_err(corrupt)?;
    let rule = AccessRule::new(AccessRuleSpec {
        role,
        valid_from: uint_opt(from),
        valid_until: uint_opt(until),
        schedule,
        max_unlocks: max.map(|m| u32::try_from(m).unwrap_or(u32::MAX)),
    })
    .map_err(|e| corrupt(format!("{e}; fix it with `latchkey-issuer set-access`")))?;
    Ok(AccessEntry {
        guest_id: parse_id("access", &guest)?,
        lock_id: parse_id("access", &lock)?,
        rule,
        created_at_ms: uint(created),
        updated_at_ms: uint(updated),
    })
}

fn query(conn: &Connection, where_: &str, arg: String) -> rusqlite::Result<Vec<RawRule>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM access WHERE {where_} ORDER BY guest_id, lock_id"
    ))?;
    stmt.query_map([arg], |r| RawRule::try_from(r))?.collect()
}

/// The stored rule of `guest` at `lock`, if any (a row that does not read is an error).
pub(crate) fn get(
    conn: &Connection,
    path: &std::path::Path,
    guest: &GuestId,
    lock: &LockId,
) -> Result<Option<AccessEntry>, IssuerdError> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM access WHERE guest_id = ?1 AND lock_id = ?2"),
        [guest.to_string(), lock.to_string()],
        |r| RawRule::try_from(r),
    )
    .optional()
    .map_err(IssuerdError::db(path, "read an access rule"))?
    .map(finish)
    .transpose()
}

/// Writes `entry` (insert or replace).
fn put(conn: &Connection, path: &std::path::Path, e: &AccessEntry) -> Result<(), IssuerdError> {
    let spec = e.rule.to_spec();
    let schedule = spec
        .schedule
        .as_ref()
        .map(serde_json::to_string)
        .transpose()
        .map_err(|err| IssuerdError::invalid("schedule", err))?;
    conn.execute(
        "INSERT INTO access (guest_id, lock_id, role, valid_from, valid_until, schedule_json,
                             max_unlocks, created_at_ms, updated_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT (guest_id, lock_id) DO UPDATE SET
            role = excluded.role, valid_from = excluded.valid_from,
            valid_until = excluded.valid_until, schedule_json = excluded.schedule_json,
            max_unlocks = excluded.max_unlocks, updated_at_ms = excluded.updated_at_ms",
        params![
            e.guest_id.to_string(),
            e.lock_id.to_string(),
            spec.role.name(),
            spec.valid_from.map(int),
            spec.valid_until.map(int),
            schedule,
            spec.max_unlocks,
            int(e.created_at_ms),
            int(e.updated_at_ms),
        ],
    )
    .map(|_| ())
    .map_err(IssuerdError::db(path, "write an access rule"))
}

/// Applies `change` to the rules of `guest` at each of `locks` (creating missing ones),
/// each checked by [`AccessRule::new`] before anything is written.
pub(crate) fn apply(
    conn: &Connection,
    path: &std::path::Path,
    guest: &GuestId,
    locks: &[LockId],
    change: &AccessChange,
    now_ms: u64,
) -> Result<(), IssuerdError> {
    let mut entries = Vec::with_capacity(locks.len());
    for lock in locks {
        let old = get(conn, path, guest, lock)?;
        let rule = change
            .apply_to(old.as_ref().map(|o| &o.rule))
            .map_err(|e| refused(guest, lock, &e))?;
        entries.push(AccessEntry {
            guest_id: *guest,
            lock_id: *lock,
            rule,
            created_at_ms: old.map_or(now_ms, |o| o.created_at_ms),
            updated_at_ms: now_ms,
        });
    }
    for e in &entries {
        put(conn, path, e)?;
    }
    Ok(())
}

impl Store {
    /// Creates or changes the access rules of `guest` at `locks` (all registered).
    pub fn set_access(
        &mut self,
        guest: &GuestId,
        locks: &[LockId],
        change: &AccessChange,
        now_ms: u64,
        actor: &str,
    ) -> Result<(), IssuerdError> {
        let path = self.path.clone();
        let tx = self.tx()?;
        if !super::guests::exists(&tx, guest).map_err(IssuerdError::db(&path, "look up a guest"))? {
            return Err(IssuerdError::UnknownGuest(*guest));
        }
        super::guests::check_locks(&tx, &path, locks)?;
        apply(&tx, &path, guest, locks, change, now_ms)?;
        audit::commit_with(
            tx,
            &path,
            &NewAudit::new(now_ms, AuditSource::Admin, "access_set")
                .guest(*guest)
                .actor(actor)
                .detail(serde_json::json!({
                    "locks": locks.iter().map(ToString::to_string).collect::<Vec<_>>(),
                    "change": change.to_json(),
                })),
        )
    }

    /// Removes the rule of `guest` at `lock`: the guest may no longer open it.
    pub fn remove_access(
        &mut self,
        guest: &GuestId,
        lock: &LockId,
        now_ms: u64,
        actor: &str,
    ) -> Result<(), IssuerdError> {
        let path = self.path.clone();
        let tx = self.tx()?;
        let n = tx
            .execute(
                "DELETE FROM access WHERE guest_id = ?1 AND lock_id = ?2",
                [guest.to_string(), lock.to_string()],
            )
            .map_err(IssuerdError::db(&path, "remove an access rule"))?;
        if n == 0 {
            return Err(IssuerdError::NoAccessRule {
                guest_id: *guest,
                lock_id: *lock,
            });
        }
        audit::commit_with(
            tx,
            &path,
            &NewAudit::new(now_ms, AuditSource::Admin, "access_removed")
                .guest(*guest)
                .lock(*lock)
                .actor(actor),
        )
    }

    /// The rule of `guest` at `lock`, if any.
    pub fn access_rule(
        &self,
        guest: &GuestId,
        lock: &LockId,
    ) -> Result<Option<AccessEntry>, IssuerdError> {
        get(&self.conn, &self.path, guest, lock)
    }

    /// Every rule of a guest, by lock.
    pub fn access_of_guest(&self, guest: &GuestId) -> Result<Vec<AccessEntry>, IssuerdError> {
        query(&self.conn, "guest_id = ?1", guest.to_string())
            .map_err(self.err("read access rules"))?
            .into_iter()
            .map(finish)
            .collect()
    }

    /// Every rule at a lock, by guest.
    pub fn access_at_lock(&self, lock: &LockId) -> Result<Vec<AccessEntry>, IssuerdError> {
        query(&self.conn, "lock_id = ?1", lock.to_string())
            .map_err(self.err("read access rules"))?
            .into_iter()
            .map(finish)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::grants::tests::setup;
    use crate::store::testing;

    #[test]
    fn rules_are_checked_by_the_policy_before_they_are_written() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = testing::open(dir.path());
        let (l, g) = setup(&mut s);
        let rule = s.access_rule(&g, &l).unwrap().unwrap();
        assert_eq!(rule.rule.role(), DEFAULT_ROLE, "a new rule without a role");

        // A guest without an end is refused, naming the fix; nothing changes.
        let e = s
            .set_access(
                &g,
                &[l],
                &AccessChange {
                    role: Some(Role::Guest),
                    ..Default::default()
                },
                10,
                "test",
            )
            .unwrap_err();
        assert!(e.to_string().contains("--valid-until"), "{e}");
        assert_eq!(s.access_rule(&g, &l).unwrap().unwrap(), rule);

        let schedule = WeeklySchedule::parse("Sat,Sun 10:00-12:30; Mon-Fri 8:00-18:00").unwrap();
        s.set_access(
            &g,
            &[l],
            &AccessChange {
                role: Some(Role::Guest),
                valid_until: Some(Some(5_000)),
                schedule: Some(Some(schedule.clone())),
                ..Default::default()
            },
            20,
            "test",
        )
        .unwrap();
        let got = s.access_rule(&g, &l).unwrap().unwrap();
        assert_eq!(got.rule.schedule(), Some(&schedule));
        assert_eq!((got.created_at_ms, got.updated_at_ms), (0, 20));
        // Stored as the policy's JSON form.
        let stored: String = s
            .conn
            .query_row("SELECT schedule_json FROM access", [], |r| r.get(0))
            .unwrap();
        assert!(stored.starts_with(r#"{"slots":"#), "{stored}");

        // A row written as text (by hand, or an earlier build) still reads.
        s.conn
            .execute("UPDATE access SET schedule_json = 'daily 22:00-06:00'", [])
            .unwrap();
        let text = s.access_rule(&g, &l).unwrap().unwrap();
        assert_eq!(
            text.rule.schedule().map(ToString::to_string).as_deref(),
            Some("daily 22:00-06:00")
        );
        // An admin may not keep a schedule.
        let e = s
            .set_access(
                &g,
                &[l],
                &AccessChange {
                    role: Some(Role::Admin),
                    ..Default::default()
                },
                30,
                "test",
            )
            .unwrap_err();
        assert!(e.to_string().contains("admin"), "{e}");
    }
}
