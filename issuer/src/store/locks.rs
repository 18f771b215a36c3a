//! Registered locks: public key, name, time zone, position, when last heard from.

use latchkey::LockId;
use latchkey::crypto::rsa::RsaPublicKey;
use rusqlite::{Connection, OptionalExtension, params};

use super::Store;
use super::audit::{self, AuditSource, NewAudit};
use super::db::{int, parse_id, uint, uint_opt};
use crate::error::IssuerdError;
use crate::keys;

/// A registered lock.
#[derive(Debug, Clone, PartialEq)]
pub struct RegisteredLock {
    /// Its id.
    pub lock_id: LockId,
    /// A name for people ("front door"); may be empty.
    pub name: String,
    /// Its RSA public key, SPKI PEM (grants are wrapped to it; its messages verified).
    pub public_key_pem: String,
    /// IANA time zone of the lock's site (schedules are local time).
    pub timezone: String,
    /// Latitude and longitude in degrees, if known.
    pub coordinates: Option<(f64, f64)>,
    /// Registered at, Unix ms.
    pub created_at_ms: u64,
    /// Last key rotation, Unix ms.
    pub key_rotated_at_ms: Option<u64>,
    /// Last verified message from it, Unix ms (issuer clock).
    pub last_seen_ms: Option<u64>,
    /// Its last status report, as JSON.
    pub last_status_json: Option<String>,
}

impl RegisteredLock {
    /// Parses its public key.
    pub fn public_key(&self) -> Result<RsaPublicKey, IssuerdError> {
        keys::decode_public_pem(self.public_key_pem.as_bytes()).map_err(|e| {
            IssuerdError::CorruptRow {
                table: "locks",
                key: self.lock_id.to_string(),
                detail: format!("public key: {e}"),
            }
        })
    }
}

/// A lock to register.
#[derive(Debug, Clone)]
pub struct NewLock {
    /// Its id.
    pub lock_id: LockId,
    /// Its public key.
    pub public_key: RsaPublicKey,
    /// A name for people.
    pub name: String,
    /// IANA time zone (`UTC` if unknown).
    pub timezone: String,
    /// Latitude and longitude in degrees.
    pub coordinates: Option<(f64, f64)>,
}

/// Changes to a lock's description; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct LockUpdate {
    /// New name.
    pub name: Option<String>,
    /// New IANA time zone.
    pub timezone: Option<String>,
    /// New position; `Some(None)` forgets it.
    pub coordinates: Option<Option<(f64, f64)>>,
}

/// Checks an IANA time zone name against the bundled database.
pub(crate) fn check_timezone(name: &str) -> Result<(), IssuerdError> {
    jiff::tz::TimeZone::get(name).map(|_| ()).map_err(|_| {
        IssuerdError::invalid(
            "time zone",
            format!("{name:?} is not an IANA time zone name (e.g. Europe/Zurich, UTC)"),
        )
    })
}

/// Checks a position in degrees.
pub(crate) fn check_coordinates((lat, lon): (f64, f64)) -> Result<(), IssuerdError> {
    if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
        return Err(IssuerdError::invalid(
            "position",
            format!("{lat},{lon}: latitude must be within ±90 and longitude within ±180 degrees"),
        ));
    }
    Ok(())
}

pub(crate) fn check_name(name: &str) -> Result<(), IssuerdError> {
    if name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(IssuerdError::invalid(
            "name",
            "at most 200 characters, without control characters",
        ));
    }
    Ok(())
}

const COLUMNS: &str = "lock_id, name, public_key_pem, timezone, latitude, longitude, \
                       created_at_ms, key_rotated_at_ms, last_seen_ms, last_status_json";

/// A row, in [`COLUMNS`] order.
type RawLock = (
    String,
    String,
    String,
    String,
    Option<f64>,
    Option<f64>,
    i64,
    Option<i64>,
    Option<i64>,
    Option<String>,
);

fn finish(r: RawLock) -> Result<RegisteredLock, IssuerdError> {
    let (id, name, public_key_pem, timezone, lat, lon, created, rotated, seen, status) = r;
    Ok(RegisteredLock {
        lock_id: parse_id("locks", &id)?,
        name,
        public_key_pem,
        timezone,
        coordinates: lat.zip(lon),
        created_at_ms: uint(created),
        key_rotated_at_ms: uint_opt(rotated),
        last_seen_ms: uint_opt(seen),
        last_status_json: status,
    })
}

pub(crate) fn exists(conn: &Connection, lock: &LockId) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM locks WHERE lock_id = ?1)",
        [lock.to_string()],
        |r| r.get(0),
    )
}

impl Store {
    /// Registers a lock. With `rekey`, an already registered lock gets the new key (and
    /// keeps its description); without, it is refused.
    pub fn add_lock(
        &mut self,
        lock: &NewLock,
        rekey: bool,
        now_ms: u64,
        actor: &str,
    ) -> Result<(), IssuerdError> {
        check_name(&lock.name)?;
        check_timezone(&lock.timezone)?;
        if let Some(c) = lock.coordinates {
            check_coordinates(c)?;
        }
        let pem = keys::public_key_pem(&lock.public_key)?;
        let path = self.path.clone();
        let tx = self.tx()?;
        let id = lock.lock_id.to_string();
        let known =
            exists(&tx, &lock.lock_id).map_err(IssuerdError::db(&path, "look up a lock"))?;
        if known && !rekey {
            return Err(IssuerdError::LockExists(lock.lock_id));
        }
        let kind = if known {
            tx.execute(
                "UPDATE locks SET public_key_pem = ?2, key_rotated_at_ms = ?3 WHERE lock_id = ?1",
                params![id, pem, int(now_ms)],
            )
            .map_err(IssuerdError::db(&path, "re-key a lock"))?;
            "lock_key_rotated"
        } else {
            let (lat, lon) = lock.coordinates.unzip();
            tx.execute(
                "INSERT INTO locks (lock_id, name, public_key_pem, timezone, latitude, longitude,
                                    created_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![id, lock.name, pem, lock.timezone, lat, lon, int(now_ms)],
            )
            .map_err(IssuerdError::db(&path, "register a lock"))?;
            "lock_added"
        };
        audit::commit_with(
            tx,
            &path,
            &NewAudit::new(now_ms, AuditSource::Admin, kind)
                .lock(lock.lock_id)
                .actor(actor)
                .detail(serde_json::json!({ "fingerprint": keys::fingerprint(&lock.public_key)? })),
        )
    }

    /// Gives a registered lock a new public key (its id, description and access rules stay).
    pub fn rotate_lock_key(
        &mut self,
        lock: &LockId,
        key: &RsaPublicKey,
        now_ms: u64,
        actor: &str,
    ) -> Result<(), IssuerdError> {
        let Some(existing) = self.lock(lock)? else {
            return Err(IssuerdError::LockNotRegistered(*lock));
        };
        self.add_lock(
            &NewLock {
                lock_id: *lock,
                public_key: key.clone(),
                name: existing.name,
                timezone: existing.timezone,
                coordinates: existing.coordinates,
            },
            true,
            now_ms,
            actor,
        )
    }

    /// Changes a lock's name, time zone or position.
    pub fn update_lock(
        &mut self,
        lock: &LockId,
        update: &LockUpdate,
        now_ms: u64,
        actor: &str,
    ) -> Result<(), IssuerdError> {
        if let Some(n) = &update.name {
            check_name(n)?;
        }
        if let Some(tz) = &update.timezone {
            check_timezone(tz)?;
        }
        if let Some(Some(c)) = update.coordinates {
            check_coordinates(c)?;
        }
        let path = self.path.clone();
        let tx = self.tx()?;
        let id = lock.to_string();
        if !exists(&tx, lock).map_err(IssuerdError::db(&path, "look up a lock"))? {
            return Err(IssuerdError::LockNotRegistered(*lock));
        }
        if let Some(n) = &update.name {
            tx.execute(
                "UPDATE locks SET name = ?2 WHERE lock_id = ?1",
                params![id, n],
            )
            .map_err(IssuerdError::db(&path, "rename a lock"))?;
        }
        if let Some(tz) = &update.timezone {
            tx.execute(
                "UPDATE locks SET timezone = ?2 WHERE lock_id = ?1",
                params![id, tz],
            )
            .map_err(IssuerdError::db(&path, "set a lock's time zone"))?;
        }
        if let Some(c) = update.coordinates {
            let (lat, lon) = c.unzip();
            tx.execute(
                "UPDATE locks SET latitude = ?2, longitude = ?3 WHERE lock_id = ?1",
                params![id, lat, lon],
            )
            .map_err(IssuerdError::db(&path, "set a lock's position"))?;
        }
        audit::commit_with(
            tx,
            &path,
            &NewAudit::new(now_ms, AuditSource::Admin, "lock_updated")
                .lock(*lock)
                .actor(actor)
                .detail(serde_json::json!({
                    "name": update.name,
                    "timezone": update.timezone,
                    "coordinates": update.coordinates.map(|c| c.map(|(a, b)| [a, b])),
                })),
        )
    }

    /// One lock.
    pub fn lock(&self, lock: &LockId) -> Result<Option<RegisteredLock>, IssuerdError> {
        self.conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM locks WHERE lock_id = ?1"),
                [lock.to_string()],
                |r| RawLock::try_from(r),
            )
            .optional()
            .map_err(self.err("read a lock"))?
            .map(finish)
            .transpose()
    }

    /// Every lock, by id.
    pub fn locks(&self) -> Result<Vec<RegisteredLock>, IssuerdError> {
        let mut stmt = self
            .conn
            .prepare(&format!("SELECT {COLUMNS} FROM locks ORDER BY lock_id"))
            .map_err(self.err("list locks"))?;
        let rows = stmt
            .query_map([], |r| RawLock::try_from(r))
            .map_err(self.err("list locks"))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(self.err("list locks"))?;
        rows.into_iter().map(finish).collect()
    }

    /// Notes that a verified message arrived from `lock`.
    pub fn note_lock_seen(&mut self, lock: &LockId, now_ms: u64) -> Result<(), IssuerdError> {
        self.conn
            .execute(
                "UPDATE locks SET last_seen_ms = max(coalesce(last_seen_ms, 0), ?2)
                 WHERE lock_id = ?1",
                params![lock.to_string(), int(now_ms)],
            )
            .map(|_| ())
            .map_err(self.err("note a lock as seen"))
    }

    /// Stores a lock's latest status report (JSON) and notes it as seen.
    pub fn set_lock_status(
        &mut self,
        lock: &LockId,
        status_json: &str,
        now_ms: u64,
    ) -> Result<(), IssuerdError> {
        self.conn
            .execute(
                "UPDATE locks SET last_status_json = ?2,
                                  last_seen_ms = max(coalesce(last_seen_ms, 0), ?3)
                 WHERE lock_id = ?1",
                params![lock.to_string(), status_json, int(now_ms)],
            )
            .map(|_| ())
            .map_err(self.err("store a lock's status"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing;

    fn key() -> RsaPublicKey {
        let mut rng = crate::rng::seeded_rng([1; 32]);
        latchkey::crypto::rsa::RsaPrivateKey::generate(&mut rng, 2048)
            .unwrap()
            .public_key()
    }

    #[test]
    fn locks_are_registered_described_and_rekeyed() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = testing::open(dir.path());
        let id = LockId([7; 16]);
        let k = key();
        let new = NewLock {
            lock_id: id,
            public_key: k.clone(),
            name: "front door".into(),
            timezone: "Europe/Zurich".into(),
            coordinates: Some((47.37, 8.54)),
        };
        s.add_lock(&new, false, 1_000, "cli").unwrap();
        assert!(matches!(
            s.add_lock(&new, false, 2_000, "cli"),
            Err(IssuerdError::LockExists(l)) if l == id
        ));
        let l = s.lock(&id).unwrap().unwrap();
        assert_eq!(l.name, "front door");
        assert_eq!(l.coordinates, Some((47.37, 8.54)));
        assert!(l.public_key().unwrap() == k);
        assert_eq!(l.key_rotated_at_ms, None);

        s.update_lock(
            &id,
            &LockUpdate {
                timezone: Some("America/New_York".into()),
                coordinates: Some(None),
                ..Default::default()
            },
            3_000,
            "cli",
        )
        .unwrap();
        let l = s.lock(&id).unwrap().unwrap();
        assert_eq!(
            (l.timezone.as_str(), l.coordinates),
            ("America/New_York", None)
        );
        assert_eq!(l.name, "front door");

        let bad_tz = LockUpdate {
            timezone: Some("Mars/Olympus".into()),
            ..Default::default()
        };
        let e = s.update_lock(&id, &bad_tz, 4_000, "cli").unwrap_err();
        assert!(e.to_string().contains("Mars/Olympus"), "{e}");
        assert!(matches!(
            s.update_lock(&LockId([8; 16]), &LockUpdate::default(), 0, "cli"),
            Err(IssuerdError::LockNotRegistered(_))
        ));
        let far = LockUpdate {
            coordinates: Some(Some((91.0, 0.0))),
            ..Default::default()
        };
        assert!(s.update_lock(&id, &far, 0, "cli").is_err());

        s.note_lock_seen(&id, 9_000).unwrap();
        s.note_lock_seen(&id, 8_000).unwrap();
        assert_eq!(s.lock(&id).unwrap().unwrap().last_seen_ms, Some(9_000));
        assert_eq!(s.locks().unwrap().len(), 1);
    }
}
