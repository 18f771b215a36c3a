//! Enrolled guests: name, sealed enrollment key and its version, revocation, last use.
//!
//! The key is sealed here ([`super::kek`]) and opened only by [`Store::enrollment_key`].

use std::path::Path;

use latchkey::crypto::EnrollmentKey;
use latchkey::{GuestId, LockId};
use rusqlite::{Connection, OptionalExtension, params};

use super::Store;
use super::access::{self, AccessChange};
use super::audit::{self, AuditSource, NewAudit, kinds};
use super::db::{int, parse_id, uint, uint_opt};
use super::kek::SEALED_KEY_LEN;
use super::locks::check_name;
use crate::error::IssuerdError;

/// An enrolled guest (never its key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrolledGuest {
    /// Its id.
    pub guest_id: GuestId,
    /// A name for people; may be empty.
    pub name: String,
    /// Version of its enrollment key, 1 at enrollment, +1 at each rotation.
    pub key_version: u32,
    /// Enrolled at, Unix ms.
    pub created_at_ms: u64,
    /// Last key rotation, Unix ms.
    pub key_rotated_at_ms: Option<u64>,
    /// Revoked at, Unix ms.
    pub revoked_at_ms: Option<u64>,
    /// Last granted at, Unix ms.
    pub last_used_ms: Option<u64>,
}

impl EnrolledGuest {
    /// Whether its enrollment is revoked.
    pub fn revoked(&self) -> bool {
        self.revoked_at_ms.is_some()
    }
}

/// A guest to enroll.
#[derive(Debug, Clone)]
pub struct NewGuest {
    /// Its id.
    pub guest_id: GuestId,
    /// A name for people.
    pub name: String,
    /// Its new enrollment key.
    pub key: EnrollmentKey,
    /// The locks it may open (at least one, all registered).
    pub locks: Vec<LockId>,
    /// The access rule it gets at each of them.
    pub access: AccessChange,
}

const COLUMNS: &str =
    "guest_id, name, key_version, created_at_ms, key_rotated_at_ms, revoked_at_ms, last_used_ms";

type RawGuest = (
    String,
    String,
    i64,
    i64,
    Option<i64>,
    Option<i64>,
    Option<i64>,
);

fn finish(r: RawGuest) -> Result<EnrolledGuest, IssuerdError> {
    let (id, name, version, created, rotated, revoked, used) = r;
    Ok(EnrolledGuest {
        key_version: key_version(&id, version)?,
        guest_id: parse_id("guests", &id)?,
        name,
        created_at_ms: uint(created),
        key_rotated_at_ms: uint_opt(rotated),
        revoked_at_ms: uint_opt(revoked),
        last_used_ms: uint_opt(used),
    })
}

fn key_version(id: &str, v: i64) -> Result<u32, IssuerdError> {
    u32::try_from(v)
        .ok()
        .filter(|v| *v >= 1)
        .ok_or_else(|| IssuerdError::CorruptRow {
            table: "guests",
            key: id.chars().take(64).collect(),
            detail: format!("key_version {v} is not in 1..=4294967295"),
        })
}

pub(crate) fn exists(conn: &Connection, guest: &GuestId) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM guests WHERE guest_id = ?1)",
        [guest.to_string()],
        |r| r.get(0),
    )
}

/// Refuses an empty list or locks that are not registered (naming them).
pub(crate) fn check_locks(
    conn: &Connection,
    path: &Path,
    locks: &[LockId],
) -> Result<(), IssuerdError> {
    if locks.is_empty() {
        return Err(IssuerdError::NoLocks);
    }
    let mut unknown = Vec::new();
    for l in locks {
        if !super::locks::exists(conn, l).map_err(IssuerdError::db(path, "look up a lock"))? {
            unknown.push(l.to_string());
        }
    }
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(IssuerdError::UnknownLocks(unknown.join(", ")))
    }
}

/// Marks a guest revoked (keeping the first revocation time); `false` if unknown.
pub(crate) fn mark_revoked(
    conn: &Connection,
    guest: &GuestId,
    now_ms: u64,
) -> rusqlite::Result<bool> {
    conn.execute(
        "UPDATE guests SET revoked_at_ms = coalesce(revoked_at_ms, ?2) WHERE guest_id = ?1",
        params![guest.to_string(), int(now_ms)],
    )
    .map(|n| n == 1)
}

/// Every guest's sealed key, for re-keying.
pub(crate) fn sealed_keys(
    conn: &Connection,
    path: &Path,
) -> Result<Vec<(GuestId, u32, Vec<u8>)>, IssuerdError> {
    let mut stmt = conn
        .prepare("SELECT guest_id, key_version, enrollment_key_sealed FROM guests")
        .map_err(IssuerdError::db(path, "read sealed keys"))?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, Vec<u8>>(2)?,
            ))
        })
        .map_err(IssuerdError::db(path, "read sealed keys"))?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(IssuerdError::db(path, "read sealed keys"))?;
    rows.into_iter()
        .map(|(id, v, sealed)| Ok((parse_id("guests", &id)?, key_version(&id, v)?, sealed)))
        .collect()
}

pub(crate) fn replace_sealed_key(
    conn: &Connection,
    path: &Path,
    guest: &GuestId,
    sealed: &[u8; SEALED_KEY_LEN],
) -> Result<(), IssuerdError> {
    conn.execute(
        "UPDATE guests SET enrollment_key_sealed = ?2 WHERE guest_id = ?1",
        params![guest.to_string(), &sealed[..]],
    )
    .map(|_| ())
    .map_err(IssuerdError::db(path, "store a re-sealed key"))
}

impl Store {
    /// Enrolls a guest with its access rules, in one transaction. With `replace`, an
    /// enrolled guest is re-enrolled: new key (next key version), its old access rules
    /// replaced by the new ones, its revocation lifted. `before_commit` runs inside the
    /// transaction once every check passed (it writes the guest's bundle: if it fails,
    /// nothing is registered). Returns the key version.
    pub fn enroll_guest(
        &mut self,
        guest: &NewGuest,
        replace: bool,
        now_ms: u64,
        actor: &str,
        before_commit: impl FnOnce() -> Result<(), IssuerdError>,
    ) -> Result<u32, IssuerdError> {
        check_name(&guest.name)?;
        let path = self.path.clone();
        let id = guest.guest_id.to_string();
        let tx = super::db::begin(&mut self.conn, &path)?;
        check_locks(&tx, &path, &guest.locks)?;
        let old: Option<i64> = tx
            .query_row(
                "SELECT key_version FROM guests WHERE guest_id = ?1",
                [&id],
                |r| r.get(0),
            )
            .optional()
            .map_err(IssuerdError::db(&path, "look up a guest"))?;
        let version = match old {
            Some(_) if !replace => return Err(IssuerdError::GuestExists(guest.guest_id)),
            Some(v) => key_version(&id, v)?.checked_add(1).ok_or_else(|| {
                IssuerdError::invalid("key version", "the guest's key version is exhausted")
            })?,
            None => 1,
        };
        let sealed =
            self.kek
                .seal_enrollment_key(&guest.guest_id, version, &guest.key, &mut self.rng);
        if old.is_some() {
            tx.execute(
                "UPDATE guests SET name = ?2, enrollment_key_sealed = ?3, key_version = ?4,
                                   key_rotated_at_ms = ?5, revoked_at_ms = NULL
                 WHERE guest_id = ?1",
                params![id, guest.name, &sealed[..], version, int(now_ms)],
            )
            .map_err(IssuerdError::db(&path, "re-enroll a guest"))?;
            tx.execute("DELETE FROM access WHERE guest_id = ?1", [&id])
                .map_err(IssuerdError::db(&path, "replace access rules"))?;
        } else {
            tx.execute(
                "INSERT INTO guests (guest_id, name, enrollment_key_sealed, key_version,
                                     created_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![id, guest.name, &sealed[..], version, int(now_ms)],
            )
            .map_err(IssuerdError::db(&path, "enroll a guest"))?;
        }
        access::apply(
            &tx,
            &path,
            &guest.guest_id,
            &guest.locks,
            &guest.access,
            now_ms,
        )?;
        audit::insert(
            &tx,
            &NewAudit::new(now_ms, AuditSource::Admin, "guest_enrolled")
                .guest(guest.guest_id)
                .actor(actor)
                .detail(serde_json::json!({
                    "name": guest.name,
                    "key_version": version,
                    "re_enrolled": old.is_some(),
                    "locks": guest.locks.iter().map(ToString::to_string).collect::<Vec<_>>(),
                })),
        )
        .map_err(IssuerdError::db(&path, "record the audit entry"))?;
        before_commit()?;
        tx.commit().map_err(IssuerdError::db(&path, "commit"))?;
        Ok(version)
    }

    /// Gives an enrolled guest a new enrollment key (next key version); the old key stops
    /// working as soon as the daemon reloads. `before_commit` as for
    /// [`Store::enroll_guest`]. Returns the new key version.
    pub fn rotate_guest_key(
        &mut self,
        guest: &GuestId,
        key: &EnrollmentKey,
        now_ms: u64,
        actor: &str,
        before_commit: impl FnOnce() -> Result<(), IssuerdError>,
    ) -> Result<u32, IssuerdError> {
        let path = self.path.clone();
        let id = guest.to_string();
        let tx = super::db::begin(&mut self.conn, &path)?;
        let old: i64 = tx
            .query_row(
                "SELECT key_version FROM guests WHERE guest_id = ?1",
                [&id],
                |r| r.get(0),
            )
            .optional()
            .map_err(IssuerdError::db(&path, "look up a guest"))?
            .ok_or(IssuerdError::UnknownGuest(*guest))?;
        let version = key_version(&id, old)?.checked_add(1).ok_or_else(|| {
            IssuerdError::invalid("key version", "the guest's key version is exhausted")
        })?;
        let sealed = self
            .kek
            .seal_enrollment_key(guest, version, key, &mut self.rng);
        tx.execute(
            "UPDATE guests SET enrollment_key_sealed = ?2, key_version = ?3, key_rotated_at_ms = ?4
             WHERE guest_id = ?1",
            params![id, &sealed[..], version, int(now_ms)],
        )
        .map_err(IssuerdError::db(&path, "rotate a guest's key"))?;
        audit::insert(
            &tx,
            &NewAudit::new(now_ms, AuditSource::Admin, "guest_key_rotated")
                .guest(*guest)
                .actor(actor)
                .detail(serde_json::json!({ "key_version": version })),
        )
        .map_err(IssuerdError::db(&path, "record the audit entry"))?;
        before_commit()?;
        tx.commit().map_err(IssuerdError::db(&path, "commit"))?;
        Ok(version)
    }

    /// Marks a guest revoked (its requests are refused from the daemon's next reload).
    /// Returns whether it was newly revoked; an unknown guest is an error. Its grants are
    /// revoked separately (by the daemon, or [`Store::record_offline_revocations`]).
    pub fn revoke_guest(
        &mut self,
        guest: &GuestId,
        now_ms: u64,
        actor: &str,
    ) -> Result<bool, IssuerdError> {
        let path = self.path.clone();
        let tx = self.tx()?;
        let before = tx
            .query_row(
                "SELECT revoked_at_ms FROM guests WHERE guest_id = ?1",
                [guest.to_string()],
                |r| r.get::<_, Option<i64>>(0),
            )
            .optional()
            .map_err(IssuerdError::db(&path, "look up a guest"))?
            .ok_or(IssuerdError::UnknownGuest(*guest))?;
        if before.is_some() {
            return Ok(false);
        }
        mark_revoked(&tx, guest, now_ms).map_err(IssuerdError::db(&path, "revoke a guest"))?;
        audit::commit_with(
            tx,
            &path,
            &NewAudit::new(now_ms, AuditSource::Admin, kinds::GUEST_REVOKED)
                .guest(*guest)
                .actor(actor),
        )?;
        Ok(true)
    }

    /// One guest.
    pub fn guest(&self, guest: &GuestId) -> Result<Option<EnrolledGuest>, IssuerdError> {
        self.conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM guests WHERE guest_id = ?1"),
                [guest.to_string()],
                |r| RawGuest::try_from(r),
            )
            .optional()
            .map_err(self.err("read a guest"))?
            .map(finish)
            .transpose()
    }

    /// Every guest, by id.
    pub fn guests(&self) -> Result<Vec<EnrolledGuest>, IssuerdError> {
        let mut stmt = self
            .conn
            .prepare(&format!("SELECT {COLUMNS} FROM guests ORDER BY guest_id"))
            .map_err(self.err("list guests"))?;
        let rows = stmt
            .query_map([], |r| RawGuest::try_from(r))
            .map_err(self.err("list guests"))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(self.err("list guests"))?;
        rows.into_iter().map(finish).collect()
    }

    /// How many guests are enrolled, and how many of them are not revoked.
    pub fn guest_counts(&self) -> Result<(u64, u64), IssuerdError> {
        self.conn
            .query_row(
                "SELECT count(*), count(*) - count(revoked_at_ms) FROM guests",
                [],
                |r| Ok((uint(r.get(0)?), uint(r.get(1)?))),
            )
            .map_err(self.err("count guests"))
    }

    /// Guests whose name contains `name_contains` (ASCII case ignored; `None`: all), by name
    /// then id, `limit` from `offset`; and how many match.
    pub fn guests_page(
        &self,
        name_contains: Option<&str>,
        limit: u32,
        offset: u64,
    ) -> Result<(Vec<EnrolledGuest>, u64), IssuerdError> {
        let filter = "?1 IS NULL OR instr(lower(name), lower(?1)) > 0";
        let total: i64 = self
            .conn
            .query_row(
                &format!("SELECT count(*) FROM guests WHERE {filter}"),
                [name_contains],
                |r| r.get(0),
            )
            .map_err(self.err("count guests"))?;
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT {COLUMNS} FROM guests WHERE {filter}
                 ORDER BY name, guest_id LIMIT ?2 OFFSET ?3"
            ))
            .map_err(self.err("list guests"))?;
        let rows = stmt
            .query_map(params![name_contains, limit, int(offset)], |r| {
                RawGuest::try_from(r)
            })
            .map_err(self.err("list guests"))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(self.err("list guests"))?;
        let guests = rows.into_iter().map(finish).collect::<Result<_, _>>()?;
        Ok((guests, uint(total)))
    }

    /// Opens a guest's sealed enrollment key, for the core. The key wipes itself when
    /// dropped; it is never logged or stored elsewhere.
    pub fn enrollment_key(&self, guest: &GuestId) -> Result<EnrollmentKey, IssuerdError> {
        let (version, sealed): (i64, Vec<u8>) = self
            .conn
            .query_row(
                "SELECT key_version, enrollment_key_sealed FROM guests WHERE guest_id = ?1",
                [guest.to_string()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(self.err("read a sealed key"))?
            .ok_or(IssuerdError::UnknownGuest(*guest))?;
        let key_version = key_version(&guest.to_string(), version)?;
        self.kek
            .open_enrollment_key(guest, key_version, &sealed)
            .ok_or(IssuerdError::SealedKeyInvalid {
                guest_id: *guest,
                key_version,
            })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::policy::Role;
    use crate::store::locks::NewLock;
    use crate::store::testing;

    pub(crate) fn lock(s: &mut Store, b: u8) -> LockId {
        let mut rng = crate::rng::seeded_rng([b; 32]);
        let key = latchkey::crypto::rsa::RsaPrivateKey::generate(&mut rng, 2048).unwrap();
        let id = LockId([b; 16]);
        s.add_lock(
            &NewLock {
                lock_id: id,
                public_key: key.public_key(),
                name: String::new(),
                timezone: "UTC".into(),
                coordinates: None,
            },
            false,
            0,
            "test",
        )
        .unwrap();
        id
    }

    fn new_guest(id: u8, key: u8, locks: Vec<LockId>) -> NewGuest {
        NewGuest {
            guest_id: GuestId([id; 16]),
            name: format!("guest {id}"),
            key: EnrollmentKey::from_bytes([key; 32]),
            locks,
            access: AccessChange {
                role: Some(Role::Resident),
                max_unlocks: Some(Some(5)),
                ..Default::default()
            },
        }
    }

    #[test]
    fn enrolment_seals_the_key_and_stores_the_access_rules() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = testing::open(dir.path());
        let l = lock(&mut s, 1);
        let g = new_guest(2, 0x77, vec![l]);
        assert_eq!(s.enroll_guest(&g, false, 100, "cli", || Ok(())).unwrap(), 1);
        assert!(s.enrollment_key(&g.guest_id).unwrap() == g.key);
        let rec = s.guest(&g.guest_id).unwrap().unwrap();
        assert_eq!(
            (rec.key_version, rec.name.as_str(), rec.revoked()),
            (1, "guest 2", false)
        );
        let rules = s.access_of_guest(&g.guest_id).unwrap();
        assert_eq!(rules.len(), 1);
        assert_eq!(
            (rules[0].rule.role(), rules[0].rule.max_unlocks()),
            (Role::Resident, Some(5))
        );

        // Again without replace: refused; a failing bundle writer registers nothing.
        assert!(matches!(
            s.enroll_guest(&g, false, 200, "cli", || Ok(())),
            Err(IssuerdError::GuestExists(_))
        ));
        let other = new_guest(3, 0x78, vec![l]);
        let e = s
            .enroll_guest(&other, false, 200, "cli", || Err(IssuerdError::Stopped))
            .unwrap_err();
        assert!(matches!(e, IssuerdError::Stopped));
        assert!(s.guest(&other.guest_id).unwrap().is_none());
        // Unknown locks are named.
        let stray = new_guest(4, 1, vec![l, LockId([9; 16])]);
        let e = s
            .enroll_guest(&stray, false, 0, "cli", || Ok(()))
            .unwrap_err();
        assert!(e.to_string().contains(&LockId([9; 16]).to_string()), "{e}");

        // Re-enrolment: a new key version, the old rules replaced, revocation lifted.
        s.revoke_guest(&g.guest_id, 300, "cli").unwrap();
        let mut again = new_guest(2, 0x99, vec![l]);
        again.access = AccessChange::default();
        assert_eq!(
            s.enroll_guest(&again, true, 400, "cli", || Ok(())).unwrap(),
            2
        );
        let rec = s.guest(&g.guest_id).unwrap().unwrap();
        assert!(!rec.revoked());
        assert!(s.enrollment_key(&g.guest_id).unwrap() == again.key);
        assert_eq!(
            s.access_of_guest(&g.guest_id).unwrap()[0].rule.role(),
            crate::store::DEFAULT_ROLE
        );
    }

    #[test]
    fn rotation_bumps_the_key_version_and_revocation_is_recorded_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = testing::open(dir.path());
        let l = lock(&mut s, 1);
        let g = new_guest(2, 0x77, vec![l]);
        s.enroll_guest(&g, false, 100, "cli", || Ok(())).unwrap();
        let k2 = EnrollmentKey::from_bytes([0x55; 32]);
        assert_eq!(
            s.rotate_guest_key(&g.guest_id, &k2, 200, "cli", || Ok(()))
                .unwrap(),
            2
        );
        assert!(s.enrollment_key(&g.guest_id).unwrap() == k2);
        assert_eq!(
            s.guest(&g.guest_id).unwrap().unwrap().key_rotated_at_ms,
            Some(200)
        );
        assert!(matches!(
            s.rotate_guest_key(&GuestId([9; 16]), &k2, 0, "cli", || Ok(())),
            Err(IssuerdError::UnknownGuest(_))
        ));

        assert!(s.revoke_guest(&g.guest_id, 300, "cli").unwrap());
        assert!(!s.revoke_guest(&g.guest_id, 400, "cli").unwrap());
        assert_eq!(
            s.guest(&g.guest_id).unwrap().unwrap().revoked_at_ms,
            Some(300)
        );
        assert!(matches!(
            s.revoke_guest(&GuestId([9; 16]), 0, "cli"),
            Err(IssuerdError::UnknownGuest(_))
        ));
    }

    #[test]
    fn a_sealed_key_copied_onto_another_guest_does_not_open() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = testing::open(dir.path());
        let l = lock(&mut s, 1);
        let a = new_guest(2, 0x11, vec![l]);
        let b = new_guest(3, 0x22, vec![l]);
        s.enroll_guest(&a, false, 0, "cli", || Ok(())).unwrap();
        s.enroll_guest(&b, false, 0, "cli", || Ok(())).unwrap();
        // An attacker with write access to the database copies a's sealed key onto b.
        s.conn
            .execute(
                "UPDATE guests SET enrollment_key_sealed =
                    (SELECT enrollment_key_sealed FROM guests WHERE guest_id = ?1)
                 WHERE guest_id = ?2",
                [a.guest_id.to_string(), b.guest_id.to_string()],
            )
            .unwrap();
        assert!(matches!(
            s.enrollment_key(&b.guest_id),
            Err(IssuerdError::SealedKeyInvalid { guest_id, key_version: 1 }) if guest_id == b.guest_id
        ));
        assert!(s.enrollment_key(&a.guest_id).unwrap() == a.key);
        // Nor does a key replayed under another key version.
        s.conn
            .execute(
                "UPDATE guests SET key_version = 2 WHERE guest_id = ?1",
                [a.guest_id.to_string()],
            )
            .unwrap();
        assert!(matches!(
            s.enrollment_key(&a.guest_id),
            Err(IssuerdError::SealedKeyInvalid { .. })
        ));
    }
}
