//! The state directory's layout.
//!
//! ```text
//! STATE_DIR/            0700
//!   issuer.key.pem      0600  PKCS#8 issuer signing key
//!   issuer.pub.pem      0644  SPKI public key (locks verify grants with it)
//!   kek.key             0600  key-encryption key of the registry, unless configured
//!                             elsewhere (--kek-file, kek_file, LATCHKEY_ISSUER_KEK)
//!   registry.db         0600  SQLite (WAL: also registry.db-wal, registry.db-shm): locks,
//!                             guests (sealed keys), access rules, grants, revocations,
//!                             audit, alerts, admin users (see `store`)
//!   control.sock        0600  the running daemon's control socket
//!   issuer.lock               advisory lock: one daemon (or offline revocation) at a time
//! ```
//!
//! Before the registry moved to SQLite it was three JSON files, `registry.json`,
//! `grants.json` and `revocations.json`; the first open of such a directory imports them and
//! renames them `*.imported`.

use std::path::{Path, PathBuf};

/// Paths inside a state directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatePaths {
    dir: PathBuf,
}

impl StatePaths {
    /// The layout under `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }
    /// The directory itself.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    /// `issuer.key.pem`.
    pub fn issuer_key(&self) -> PathBuf {
        self.dir.join("issuer.key.pem")
    }
    /// `issuer.pub.pem`.
    pub fn issuer_pub(&self) -> PathBuf {
        self.dir.join("issuer.pub.pem")
    }
    /// `registry.db`.
    pub fn registry_db(&self) -> PathBuf {
        self.dir.join("registry.db")
    }
    /// The legacy `registry.json` (imported into `registry.db`).
    pub fn legacy_registry(&self) -> PathBuf {
        self.dir.join("registry.json")
    }
    /// The legacy `grants.json` (imported into `registry.db`).
    pub fn legacy_grants(&self) -> PathBuf {
        self.dir.join("grants.json")
    }
    /// The legacy `revocations.json` (imported into `registry.db`).
    pub fn legacy_revocations(&self) -> PathBuf {
        self.dir.join("revocations.json")
    }
    /// `control.sock`.
    pub fn control_socket(&self) -> PathBuf {
        self.dir.join("control.sock")
    }
    pub(crate) fn daemon_lock(&self) -> PathBuf {
        self.dir.join("issuer.lock")
    }
}
