//! Registered locks: public key, name, time zone, position, when last heard from.

use latchkey::crypto::rsa::RsaPublicKey;
use latchkey::frame::{LockStatus, StatusFlags};
use latchkey::{LockId, Reason};
use rusqlite::{Connection, OptionalExtension, params};

use super::Store;
use super::audit::{self, AuditSource, NewAudit, kinds};
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
    /// Its last status report, as JSON ([`status_json`]).
    pub last_status_json: Option<String>,
    /// The highest lock timestamp (its clock, Unix ms) of the messages accepted from it.
    pub lock_time_high_water_ms: Option<u64>,
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

/// Checks an IANA time zone name against the database bundled with the issuer (the one
/// the policy evaluates schedules in).
pub(crate) fn check_timezone(name: &str) -> Result<(), IssuerdError> {
    crate::policy::time_zone(name)
        .map(|_| ())
        .map_err(|e| IssuerdError::invalid("time zone", e))
}

/// A LockStatus as JSON: the audit entry's detail and the lock's `last_status_json`.
/// Counters are keyed by reason name (`reason_NNN` for a code this build does not know).
pub fn status_json(st: &LockStatus) -> serde_json::Value {
    let counters: serde_json::Map<String, serde_json::Value> = st
        .counters
        .iter()
        .map(|c| {
            let name = Reason::from_code(c.reason)
                .map_or_else(|| format!("reason_{}", c.reason), |r| r.name().to_owned());
            (name, c.count.into())
        })
        .collect();
    serde_json::json!({
        "status_id": st.status_id.to_string(),
        "lock_time_ms": st.timestamp_ms,
        "uptime_s": st.uptime_s,
        "battery_pct": st.battery_pct,
        "mains_power": st.flags.contains(StatusFlags::MAINS_POWER),
        "clock_unsynchronised": st.flags.contains(StatusFlags::CLOCK_UNSYNCHRONISED),
        "tamper": st.flags.contains(StatusFlags::TAMPER),
        "sessions": st.sessions,
        "revocations": st.revocations,
        "lockouts": st.lockouts,
        "counters": counters,
    })
}

/// Notes a verified message of `lock`: last seen (issuer time), the high-water mark of its
/// timestamps (lock time) and, for a status, the status.
pub(crate) fn note_message(
    conn: &Connection,
    lock: &LockId,
    now_ms: u64,
    lock_time_ms: u64,
    status_json: Option<&str>,
) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE locks SET last_seen_ms = max(coalesce(last_seen_ms, 0), ?2),
                          lock_time_high_water_ms = max(coalesce(lock_time_high_water_ms, 0), ?3),
                          last_status_json = coalesce(?4, last_status_json)
         WHERE lock_id = ?1",
        params![
            lock.to_string(),
            int(now_ms),
            int(lock_time_ms),
            status_json
        ],
    )
    .map(|_| ())
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
                       created_at_ms, key_rotated_at_ms, last_seen_ms, last_status_json, \
                       lock_time_high_water_ms";

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
    Option<i64>,
);

fn finish(r: RawLock) -> Result<RegisteredLock, IssuerdError> {
    let (id, name, public_key_pem, timezone, lat, lon, created, rotated, seen, status, high) = r;
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
        lock_time_high_water_ms: uint_opt(high),
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

    /// Records a verified LockStatus, in one transaction: an audit entry (kind `status`,
    /// with its status id, so a redelivery is recognised and nothing else is done; the
    /// status as detail), the lock's latest status, `last_seen_ms` and timestamp
    /// high-water mark. Returns the audit entry, or `None` for a redelivery.
    pub fn record_lock_status(
        &mut self,
        st: &LockStatus,
        now_ms: u64,
    ) -> Result<Option<NewAudit>, IssuerdError> {
        let path = self.path.clone();
        let tx = self.tx()?;
        let detail = status_json(st);
        let entry = NewAudit::new(now_ms, AuditSource::Lock, kinds::STATUS)
            .lock(st.lock_id)
            .message(st.status_id, st.timestamp_ms)
            .detail(detail.clone());
        if !audit::insert(&tx, &entry).map_err(IssuerdError::db(&path, "record a lock status"))? {
            return Ok(None);
        }
        note_message(
            &tx,
            &st.lock_id,
            now_ms,
            st.timestamp_ms,
            Some(&detail.to_string()),
        )
        .map_err(IssuerdError::db(&path, "store a lock's status"))?;
        tx.commit().map_err(IssuerdError::db(&path, "commit"))?;
        Ok(Some(entry))
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

        assert_eq!(s.locks().unwrap().len(), 1);
    }

    #[test]
    fn a_status_is_recorded_once_as_the_locks_latest() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = testing::open(dir.path());
        let id = LockId([7; 16]);
        let new = NewLock {
            lock_id: id,
            public_key: key(),
            name: String::new(),
            timezone: "UTC".into(),
            coordinates: None,
        };
        s.add_lock(&new, false, 1_000, "cli").unwrap();
        let status = |n: u8, lock_time_ms| LockStatus {
            lock_id: id,
            status_id: latchkey::EventId([n; 16]),
            timestamp_ms: lock_time_ms,
            uptime_s: 60,
            battery_pct: Some(80),
            flags: StatusFlags::MAINS_POWER,
            sessions: 2,
            revocations: 1,
            lockouts: 0,
            counters: vec![
                latchkey::frame::StatusCounter {
                    reason: Reason::BadBeaconMac.code(),
                    count: 3,
                },
                latchkey::frame::StatusCounter {
                    reason: 999,
                    count: 1,
                },
            ],
        };
        let entry = s
            .record_lock_status(&status(1, 50_000), 9_000)
            .unwrap()
            .unwrap();
        assert_eq!(entry.kind, kinds::STATUS);
        assert_eq!(
            entry.detail.as_ref().unwrap()["counters"]["bad_beacon_mac"],
            3
        );
        assert_eq!(entry.detail.as_ref().unwrap()["counters"]["reason_999"], 1);
        assert!(
            s.record_lock_status(&status(1, 50_000), 9_500)
                .unwrap()
                .is_none(),
            "redelivery"
        );
        // An older status (lock time) does not lower the high-water mark.
        s.record_lock_status(&status(2, 40_000), 8_000)
            .unwrap()
            .unwrap();
        let l = s.lock(&id).unwrap().unwrap();
        assert_eq!(l.last_seen_ms, Some(9_000));
        assert_eq!(l.lock_time_high_water_ms, Some(50_000));
        let last: serde_json::Value =
            serde_json::from_str(l.last_status_json.as_deref().unwrap()).unwrap();
        assert_eq!(last["battery_pct"], 80);
        assert_eq!(last["mains_power"], true);
    }
}
