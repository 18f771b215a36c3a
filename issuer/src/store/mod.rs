//! The issuer's registry: `STATE_DIR/registry.db`, SQLite (WAL, mode 0600).
//!
//! It holds the locks, the guests (each enrollment key sealed under the key-encryption key,
//! [`kek`]), who may open what and when ([`access`]), every grant and its revocation
//! ([`grants`]), the audit trail ([`audit`]), anomaly alerts ([`alerts`]) and the admin web
//! users and sessions ([`admin`]). The daemon, the CLI and the web UI each open their own
//! [`Store`]; the daemon notices the others' commits ([`Store::changed_by_others`]) and
//! reloads.
//!
//! Invariants:
//! - No secret is stored in clear. An enrollment key is decrypted only by
//!   [`Store::enrollment_key`], into a value that wipes itself, when the core needs it.
//! - Every method that writes does so in one transaction; a failed one changes nothing.
//! - Grants and revocations are written only by the holder of the state directory's daemon
//!   lock (the daemon, or an offline command that took the lock), so the daemon's view of
//!   them never goes stale; the registry tables (locks, guests, access, admins) may be
//!   written by anyone at any time.

mod access;
mod admin;
mod alerts;
mod audit;
pub(crate) mod db;
mod grants;
mod guests;
pub mod kek;
mod legacy;
mod locks;
mod registry;

use std::fmt;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, Transaction};

pub use access::{AccessChange, AccessEntry, DEFAULT_ROLE};
pub use admin::{AdminSession, AdminUser};
pub use alerts::{Alert, AlertFilter};
pub use audit::{
    AuditBucket, AuditEntry, AuditFilter, AuditSource, LockMessageId, NewAudit, kinds,
};
pub use db::SCHEMA_VERSION;
pub use grants::{EventEffect, GrantFilter, GrantRecord, NewGrant, PendingRevocation};
pub use guests::{EnrolledGuest, NewGuest};
pub use kek::{Kek, KekOrigin, KekSource};
pub use legacy::LegacyImport;
pub use locks::{LockUpdate, NewLock, RegisteredLock, status_json};
pub use registry::{GuestEntry, RegistrySnapshot};

use crate::error::IssuerdError;
use crate::fsutil;
use crate::rng::{Csprng, os_rng};
use crate::state::StatePaths;

/// Whether [`Store::open`] may create the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// Create it (and, for the default key file, the KEK) if missing.
    Create,
    /// Refuse a state directory without one: a read-only command on a mistyped
    /// `--state-dir` must not leave files behind.
    Existing,
}

/// An open registry.
pub struct Store {
    conn: Connection,
    kek: Kek,
    kek_origin: KekOrigin,
    path: PathBuf,
    data_version: i64,
    /// Nonces of sealed keys.
    rng: Csprng,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .field("kek_origin", &self.kek_origin)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (or creates) `STATE_DIR/registry.db`: checks its mode, applies migrations,
    /// checks the KEK against `meta.kek_check` (storing it in a new database), and imports
    /// the legacy `registry.json` / `grants.json` / `revocations.json` if they are still
    /// there (renaming them `*.imported`).
    pub fn open(paths: &StatePaths, kek: &KekSource, mode: OpenMode) -> Result<Self, IssuerdError> {
        let path = paths.registry_db();
        let exists = path.exists();
        let legacy = legacy::present(paths);
        if !exists && !legacy && mode == OpenMode::Existing {
            return Err(IssuerdError::NoRegistry { path });
        }
        fsutil::ensure_private_dir(paths.dir(), true)?;
        let mut rng = os_rng()?;
        // A new database under the default key file gets a new KEK; an existing database
        // never does (its secrets are sealed under the old one).
        if !exists
            && kek.is_default_file()
            && let Some(file) = kek.file(paths.dir())
            && !file.exists()
        {
            kek::create_kek_file(&file, &mut rng)?;
            tracing::info!(path = %file.display(), "created the key-encryption key (back it up apart from the state directory)");
        }
        let (kek, kek_origin) = kek.load(paths.dir())?;
        db::ensure_private_file(&path)?;
        let mut conn = db::connect(&path)?;
        db::migrate(&mut conn, &path)?;
        let mut store = Self {
            conn,
            kek,
            kek_origin,
            data_version: 0,
            path,
            rng,
        };
        store.check_kek()?;
        if legacy {
            legacy::import(&mut store, paths)?;
        }
        store.data_version = db::data_version(&store.conn, &store.path)?;
        Ok(store)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where the KEK came from.
    pub fn kek_origin(&self) -> &KekOrigin {
        &self.kek_origin
    }

    /// Whether another connection (a CLI command, the web UI) committed since the last
    /// call (or since opening): the caller then reloads what it caches.
    pub fn changed_by_others(&mut self) -> Result<bool, IssuerdError> {
        let v = db::data_version(&self.conn, &self.path)?;
        let changed = v != self.data_version;
        self.data_version = v;
        Ok(changed)
    }

    /// Re-seals every enrollment key under `new` and stores its check value, in one
    /// transaction; then checkpoints and vacuums so that no page sealed under the old KEK
    /// is left in the file. Returns the number of keys re-sealed. The caller must make sure
    /// no other process uses the database meanwhile (the daemon would keep the old KEK).
    pub fn rekey(&mut self, new: Kek) -> Result<usize, IssuerdError> {
        let path = self.path.clone();
        let tx = db::begin(&mut self.conn, &path)?;
        let rows = guests::sealed_keys(&tx, &path)?;
        for (guest_id, key_version, sealed) in &rows {
            let key = self
                .kek
                .open_enrollment_key(guest_id, *key_version, sealed)
                .ok_or(IssuerdError::SealedKeyInvalid {
                    guest_id: *guest_id,
                    key_version: *key_version,
                })?;
            let resealed = new.seal_enrollment_key(guest_id, *key_version, &key, &mut self.rng);
            guests::replace_sealed_key(&tx, &path, guest_id, &resealed)?;
        }
        db::set_meta(&tx, "kek_check", &new.check_value())
            .map_err(IssuerdError::db(&path, "store the KEK check value"))?;
        tx.commit()
            .map_err(IssuerdError::db(&path, "commit the re-keying"))?;
        self.kek = new;
        self.kek_origin = KekOrigin::Given;
        self.conn
            .execute_batch(
                "PRAGMA wal_checkpoint(TRUNCATE); VACUUM; PRAGMA wal_checkpoint(TRUNCATE);",
            )
            .map_err(IssuerdError::db(&path, "vacuum after re-keying"))?;
        self.data_version = db::data_version(&self.conn, &self.path)?;
        Ok(rows.len())
    }

    fn check_kek(&mut self) -> Result<(), IssuerdError> {
        let path = self.path.clone();
        let tx = db::begin(&mut self.conn, &path)?;
        match db::meta(&tx, "kek_check")
            .map_err(IssuerdError::db(&path, "read the KEK check value"))?
        {
            Some(stored) if self.kek.matches_check_value(&stored) => Ok(()),
            Some(_) => Err(IssuerdError::WrongKek {
                origin: self.kek_origin.to_string(),
                path,
            }),
            None => {
                db::set_meta(&tx, "kek_check", &self.kek.check_value())
                    .map_err(IssuerdError::db(&path, "store the KEK check value"))?;
                tx.commit()
                    .map_err(IssuerdError::db(&path, "commit the KEK check value"))
            }
        }
    }

    /// A write transaction, taken at once (so a busy database waits here, not at commit).
    fn tx(&mut self) -> Result<Transaction<'_>, IssuerdError> {
        db::begin(&mut self.conn, &self.path)
    }

    fn err(&self, action: &'static str) -> impl FnOnce(rusqlite::Error) -> IssuerdError {
        IssuerdError::db(&self.path, action)
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! A store in a temporary state directory, with a fixed KEK.
    use super::*;

    pub(crate) fn kek() -> Kek {
        Kek::from_bytes([0x4B; 32])
    }

    pub(crate) fn open(dir: &Path) -> Store {
        Store::open(
            &StatePaths::new(dir),
            &KekSource::Key(kek()),
            OpenMode::Create,
        )
        .unwrap()
    }
}
