//! What the daemon loads into the core: every lock's key and every guest's key version,
//! revocation and allowed locks. The keys themselves are opened one guest at a time with
//! [`Store::enrollment_key`], only for guests whose entry changed.

use std::collections::{BTreeMap, BTreeSet};

use latchkey::{GuestId, LockId};

use super::Store;
use super::db::parse_id;
use crate::error::IssuerdError;

/// A guest as the core needs it (never its key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestEntry {
    /// A name for people.
    pub name: String,
    /// Its key version: a change means a new key to load.
    pub key_version: u32,
    /// Whether its enrollment is revoked.
    pub revoked: bool,
    /// The locks it has an access rule at.
    pub allowed_locks: BTreeSet<LockId>,
}

/// The registry's locks and guests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistrySnapshot {
    /// Locks and their SPKI PEM public keys.
    pub locks: BTreeMap<LockId, String>,
    /// Guests.
    pub guests: BTreeMap<GuestId, GuestEntry>,
}

impl Store {
    /// Reads the locks, the guests and their allowed locks (one read transaction, so the
    /// three agree).
    pub fn registry_snapshot(&mut self) -> Result<RegistrySnapshot, IssuerdError> {
        let path = self.path.clone();
        let err = |a| IssuerdError::db(&path, a);
        let tx = self.conn.transaction().map_err(err("begin a read"))?;
        let mut snap = RegistrySnapshot::default();
        {
            let mut stmt = tx
                .prepare("SELECT lock_id, public_key_pem FROM locks")
                .map_err(err("read locks"))?;
            let rows = stmt
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
                .map_err(err("read locks"))?;
            for row in rows {
                let (id, pem) = row.map_err(err("read locks"))?;
                snap.locks.insert(parse_id("locks", &id)?, pem);
            }
        }
        for g in guests_of(&tx, &path)? {
            snap.guests.insert(g.0, g.1);
        }
        {
            let mut stmt = tx
                .prepare("SELECT guest_id, lock_id FROM access")
                .map_err(err("read access rules"))?;
            let rows = stmt
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
                .map_err(err("read access rules"))?;
            for row in rows {
                let (g, l) = row.map_err(err("read access rules"))?;
                let g: GuestId = parse_id("access", &g)?;
                if let Some(entry) = snap.guests.get_mut(&g) {
                    entry.allowed_locks.insert(parse_id("access", &l)?);
                }
            }
        }
        tx.finish().map_err(err("end a read"))?;
        Ok(snap)
    }
}

fn guests_of(
    conn: &rusqlite::Connection,
    path: &std::path::Path,
) -> Result<Vec<(GuestId, GuestEntry)>, IssuerdError> {
    let err = |a| IssuerdError::db(path, a);
    let mut stmt = conn
        .prepare("SELECT guest_id, name, key_version, revoked_at_ms IS NOT NULL FROM guests")
        .map_err(err("read guests"))?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, bool>(3)?,
            ))
        })
        .map_err(err("read guests"))?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(err("read guests"))?;
    rows.into_iter()
        .map(|(id, name, version, revoked)| {
            let key_version = u32::try_from(version).map_err(|_| IssuerdError::CorruptRow {
                table: "guests",
                key: id.clone(),
                detail: format!("key_version {version}"),
            })?;
            Ok((
                parse_id("guests", &id)?,
                GuestEntry {
                    name,
                    key_version,
                    revoked,
                    allowed_locks: BTreeSet::new(),
                },
            ))
        })
        .collect()
}
