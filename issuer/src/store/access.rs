//! Access rules: which guest may open which lock, in which role, from when until when, on
//! which weekly schedule and how many times. One row per guest × lock; a guest without a
//! row for a lock is not authorized there (LK-ISS-7). Deciding with a rule is the policy
//! module's job; this file only stores rules, after basic checks.

use std::fmt;
use std::str::FromStr;

use latchkey::{GuestId, LockId};
use rusqlite::{Connection, OptionalExtension, params};

use super::Store;
use super::audit::{self, AuditSource, NewAudit};
use super::db::{int, parse_id, uint, uint_opt};
use crate::error::IssuerdError;

/// Longest schedule text accepted.
pub const MAX_SCHEDULE_LEN: usize = 2048;

/// A guest's role at a lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Role {
    /// Manages the lock.
    Admin,
    /// Lives there.
    Resident,
    /// A visitor.
    #[default]
    Guest,
}

impl Role {
    /// The column value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Resident => "resident",
            Self::Guest => "guest",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "admin" => Ok(Self::Admin),
            "resident" => Ok(Self::Resident),
            "guest" => Ok(Self::Guest),
            _ => Err(format!("{s:?} is not a role (admin, resident or guest)")),
        }
    }
}

/// A stored access rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessRule {
    /// The guest.
    pub guest_id: GuestId,
    /// The lock.
    pub lock_id: LockId,
    /// Its role there.
    pub role: Role,
    /// No access before (Unix s).
    pub valid_from: Option<u64>,
    /// No access from (Unix s).
    pub valid_until: Option<u64>,
    /// Weekly schedule, as given (the policy module parses it).
    pub schedule: Option<String>,
    /// Most unlocks in total at this lock.
    pub max_unlocks: Option<u32>,
    /// Created at, Unix ms.
    pub created_at_ms: u64,
    /// Last changed at, Unix ms.
    pub updated_at_ms: u64,
}

/// Changes to an access rule. `None` keeps the field (for a new rule: role `guest`, no
/// window, no schedule, no limit); `Some(None)` clears it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessChange {
    /// The role.
    pub role: Option<Role>,
    /// Start of the access window (Unix s).
    pub valid_from: Option<Option<u64>>,
    /// End of the access window (Unix s).
    pub valid_until: Option<Option<u64>>,
    /// Weekly schedule text.
    pub schedule: Option<Option<String>>,
    /// Unlock limit.
    pub max_unlocks: Option<Option<u32>>,
}

impl AccessChange {
    fn apply(
        &self,
        guest_id: GuestId,
        lock_id: LockId,
        old: Option<AccessRule>,
        now_ms: u64,
    ) -> AccessRule {
        let mut r = old.unwrap_or(AccessRule {
            guest_id,
            lock_id,
            role: Role::default(),
            valid_from: None,
            valid_until: None,
            schedule: None,
            max_unlocks: None,
            created_at_ms: now_ms,
            updated_at_ms: now_ms,
        });
        if let Some(role) = self.role {
            r.role = role;
        }
        if let Some(v) = self.valid_from {
            r.valid_from = v;
        }
        if let Some(v) = self.valid_until {
            r.valid_until = v;
        }
        if let Some(v) = &self.schedule {
            r.schedule.clone_from(v);
        }
        if let Some(v) = self.max_unlocks {
            r.max_unlocks = v;
        }
        r.updated_at_ms = now_ms;
        r
    }

    fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "role": self.role.map(Role::as_str),
            "valid_from": self.valid_from,
            "valid_until": self.valid_until,
            "schedule": self.schedule,
            "max_unlocks": self.max_unlocks,
        })
    }
}

/// Checks what the store can check of a schedule: present, bounded, printable, and valid
/// JSON when it looks like JSON. Its grammar belongs to the policy module.
pub(crate) fn check_schedule(text: &str) -> Result<(), IssuerdError> {
    let t = text.trim();
    if t.is_empty() || text.len() > MAX_SCHEDULE_LEN || text.chars().any(char::is_control) {
        return Err(IssuerdError::invalid(
            "schedule",
            format!(
                "give 1 to {MAX_SCHEDULE_LEN} printable characters, e.g. \
                 \"Mon-Fri 08:00-18:00; Sat 09:00-12:00\""
            ),
        ));
    }
    if t.starts_with(['{', '['])
        && let Err(e) = serde_json::from_str::<serde_json::Value>(t)
    {
        return Err(IssuerdError::invalid(
            "schedule",
            format!("invalid JSON: {e}"),
        ));
    }
    Ok(())
}

fn check(rule: &AccessRule) -> Result<(), IssuerdError> {
    if let (Some(from), Some(until)) = (rule.valid_from, rule.valid_until)
        && from >= until
    {
        return Err(IssuerdError::invalid(
            "access rule",
            format!(
                "valid-from ({from}) must be before valid-until ({until}) for guest {} at lock {}",
                rule.guest_id, rule.lock_id
            ),
        ));
    }
    if let Some(s) = &rule.schedule {
        check_schedule(s)?;
    }
    if rule.max_unlocks == Some(0) {
        return Err(IssuerdError::invalid(
            "access rule",
            "max-unlocks must be at least 1 (revoke the guest or remove the rule to deny access)",
        ));
    }
    Ok(())
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

fn finish(r: RawRule) -> Result<AccessRule, IssuerdError> {
    let (guest, lock, role, from, until, schedule, max, created, updated) = r;
    let role = role.parse().map_err(|e| IssuerdError::CorruptRow {
        table: "access",
        key: format!("{guest}/{lock}"),
        detail: e,
    })?;
    Ok(AccessRule {
        guest_id: parse_id("access", &guest)?,
        lock_id: parse_id("access", &lock)?,
        role,
        valid_from: uint_opt(from),
        valid_until: uint_opt(until),
        schedule,
        max_unlocks: max.map(|m| u32::try_from(m).unwrap_or(u32::MAX)),
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

pub(crate) fn get(
    conn: &Connection,
    guest: &GuestId,
    lock: &LockId,
) -> Result<Option<AccessRule>, rusqlite::Error> {
    let raw = conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM access WHERE guest_id = ?1 AND lock_id = ?2"),
            [guest.to_string(), lock.to_string()],
            |r| RawRule::try_from(r),
        )
        .optional()?;
    // A malformed row reads as absent here; the listing functions report it.
    Ok(raw.and_then(|r| finish(r).ok()))
}

/// Writes `rule` (insert or replace).
pub(crate) fn put(conn: &Connection, rule: &AccessRule) -> Result<(), IssuerdError> {
    check(rule)?;
    conn.execute(
        "INSERT INTO access (guest_id, lock_id, role, valid_from, valid_until, schedule_json,
                             max_unlocks, created_at_ms, updated_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT (guest_id, lock_id) DO UPDATE SET
            role = excluded.role, valid_from = excluded.valid_from,
            valid_until = excluded.valid_until, schedule_json = excluded.schedule_json,
            max_unlocks = excluded.max_unlocks, updated_at_ms = excluded.updated_at_ms",
        params![
            rule.guest_id.to_string(),
            rule.lock_id.to_string(),
            rule.role.as_str(),
            rule.valid_from.map(int),
            rule.valid_until.map(int),
            rule.schedule,
            rule.max_unlocks,
            int(rule.created_at_ms),
            int(rule.updated_at_ms),
        ],
    )
    .map(|_| ())
    .map_err(|e| IssuerdError::invalid("access rule", e))
}

/// Applies `change` to the rules of `guest` at each of `locks` (creating missing ones).
pub(crate) fn apply(
    conn: &Connection,
    guest: &GuestId,
    locks: &[LockId],
    change: &AccessChange,
    now_ms: u64,
) -> Result<(), IssuerdError> {
    for lock in locks {
        let old = get(conn, guest, lock).map_err(|e| IssuerdError::invalid("access rule", e))?;
        put(conn, &change.apply(*guest, *lock, old, now_ms))?;
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
        apply(&tx, guest, locks, change, now_ms)?;
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
    ) -> Result<Option<AccessRule>, IssuerdError> {
        get(&self.conn, guest, lock).map_err(self.err("read an access rule"))
    }

    /// Every rule of a guest, by lock.
    pub fn access_of_guest(&self, guest: &GuestId) -> Result<Vec<AccessRule>, IssuerdError> {
        query(&self.conn, "guest_id = ?1", guest.to_string())
            .map_err(self.err("read access rules"))?
            .into_iter()
            .map(finish)
            .collect()
    }

    /// Every rule at a lock, by guest.
    pub fn access_at_lock(&self, lock: &LockId) -> Result<Vec<AccessRule>, IssuerdError> {
        query(&self.conn, "lock_id = ?1", lock.to_string())
            .map_err(self.err("read access rules"))?
            .into_iter()
            .map(finish)
            .collect()
    }
}
