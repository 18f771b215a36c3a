//! The state directory: its layout, the registry of locks and guests, the live grants and
//! the revocations still being delivered.
//!
//! ```text
//! STATE_DIR/            0700
//!   issuer.key.pem      0600  PKCS#8 issuer signing key
//!   issuer.pub.pem      0644  SPKI public key (locks verify grants with it)
//!   registry.json       0600  locks {lock_id → public_key_pem}, guests {guest_id → {…}}
//!   grants.json         0600  the core's live grants (revocable after a restart)
//!   revocations.json    0600  signed revocations re-published until the lock confirms
//!   control.sock        0600  the running daemon's control socket
//!   issuer.lock, registry.lock  advisory locks (one daemon; one registry writer at a time)
//! ```
//!
//! Every file is replaced atomically (temp file, fsync, rename, fsync of the directory).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use latchkey::crypto::EnrollmentKey;
use latchkey::crypto::rsa::RsaPublicKey;
use latchkey::{GrantId, GuestId, LiveGrant, LockId, SessionId, UnixMillis};
use serde::{Deserialize, Deserializer, Serialize, Serializer, de};
use zeroize::Zeroizing;

use crate::error::IssuerdError;
use crate::fsutil::{self, FileLock, PRIVATE_FILE};
use crate::keys;
use crate::serde_ids::{hexid, hexids};

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
    /// `registry.json`.
    pub fn registry(&self) -> PathBuf {
        self.dir.join("registry.json")
    }
    /// `grants.json`.
    pub fn grants(&self) -> PathBuf {
        self.dir.join("grants.json")
    }
    /// `revocations.json`.
    pub fn revocations(&self) -> PathBuf {
        self.dir.join("revocations.json")
    }
    /// `control.sock`.
    pub fn control_socket(&self) -> PathBuf {
        self.dir.join("control.sock")
    }
    pub(crate) fn daemon_lock(&self) -> PathBuf {
        self.dir.join("issuer.lock")
    }
    pub(crate) fn registry_lock(&self) -> PathBuf {
        self.dir.join("registry.lock")
    }
}

// ------------------------------------------------------------------------------- registry

/// A registered lock.
#[derive(Debug, Clone)]
pub struct RegisteredLock {
    /// Its RSA public key (grants are wrapped to it; its events are verified with it).
    pub public_key: RsaPublicKey,
}

/// An enrolled guest.
#[derive(Debug, Clone)]
pub struct EnrolledGuest {
    /// The enrollment key shared with the guest (secret).
    pub enrollment_key: EnrollmentKey,
    /// The locks the guest may request grants for.
    pub allowed_locks: BTreeSet<LockId>,
    /// Whether the enrollment was revoked.
    pub revoked: bool,
}

/// The registry: who the issuer knows. `registry.json`, mode 0600 (it holds the guests'
/// enrollment keys).
#[derive(Debug, Clone, Default)]
pub struct Registry {
    /// Registered locks.
    pub locks: BTreeMap<LockId, RegisteredLock>,
    /// Enrolled guests.
    pub guests: BTreeMap<GuestId, EnrolledGuest>,
}

const REGISTRY_FORMAT: u32 = 1;

fn format_one() -> u32 {
    1
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegistryFileIn {
    #[serde(default = "format_one")]
    latchkey_issuer_registry: u32,
    #[serde(default)]
    locks: BTreeMap<String, String>,
    #[serde(default)]
    guests: BTreeMap<String, GuestIn>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GuestIn {
    enrollment_key_hex: SecretHex,
    #[serde(with = "hexids")]
    allowed_locks: BTreeSet<LockId>,
    #[serde(default)]
    revoked: bool,
}

#[derive(Serialize)]
struct RegistryFileOut<'a> {
    latchkey_issuer_registry: u32,
    locks: BTreeMap<String, String>,
    guests: BTreeMap<String, GuestOut<'a>>,
}

#[derive(Serialize)]
struct GuestOut<'a> {
    #[serde(serialize_with = "serialize_secret")]
    enrollment_key_hex: &'a EnrollmentKey,
    allowed_locks: Vec<String>,
    revoked: bool,
}

/// An enrollment key read from hex; the text is wiped after decoding.
struct SecretHex(EnrollmentKey);

impl<'de> Deserialize<'de> for SecretHex {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = Zeroizing::new(String::deserialize(d)?);
        decode_key_hex(&text)
            .map(SecretHex)
            .ok_or_else(|| de::Error::custom("enrollment key must be 64 hex digits"))
    }
}

/// Parses a 32-byte key from 64 hex digits.
pub(crate) fn decode_key_hex(text: &str) -> Option<EnrollmentKey> {
    let mut raw = Zeroizing::new([0u8; 32]);
    hex::decode_to_slice(text.trim(), raw.as_mut_slice()).ok()?;
    Some(EnrollmentKey::from_bytes(*raw))
}

/// The 64 hex digits of a key (wiped when dropped).
pub(crate) fn encode_key_hex(key: &EnrollmentKey) -> Zeroizing<String> {
    Zeroizing::new(hex::encode(key.expose()))
}

fn serialize_secret<S: Serializer>(key: &&EnrollmentKey, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&encode_key_hex(key))
}

impl Registry {
    /// Loads `registry.json`; a missing file is an empty registry. Refuses a file that group
    /// or others can read (it holds secrets).
    pub fn load(path: &Path) -> Result<Self, IssuerdError> {
        if !path.exists() {
            return Ok(Self::default());
        }
        let bytes = fsutil::read_private(path, "registry")?;
        let file: RegistryFileIn = serde_json::from_slice(&bytes)
            .map_err(|e| IssuerdError::bad_file("registry", path, e))?;
        if file.latchkey_issuer_registry != REGISTRY_FORMAT {
            return Err(IssuerdError::bad_file(
                "registry",
                path,
                format!(
                    "unsupported format {} (this issuer reads format {REGISTRY_FORMAT})",
                    file.latchkey_issuer_registry
                ),
            ));
        }
        let mut reg = Self::default();
        for (id, pem) in &file.locks {
            let lock_id: LockId = id.parse().map_err(|e| {
                IssuerdError::bad_file("registry", path, format!("lock {id:?}: {e}"))
            })?;
            let public_key = keys::decode_public_pem(pem.as_bytes()).map_err(|e| {
                IssuerdError::bad_file("registry", path, format!("lock {lock_id}: {e}"))
            })?;
            reg.locks.insert(lock_id, RegisteredLock { public_key });
        }
        for (id, g) in file.guests {
            let guest_id: GuestId = id.parse().map_err(|e| {
                IssuerdError::bad_file("registry", path, format!("guest {id:?}: {e}"))
            })?;
            reg.guests.insert(
                guest_id,
                EnrolledGuest {
                    enrollment_key: g.enrollment_key_hex.0,
                    allowed_locks: g.allowed_locks,
                    revoked: g.revoked,
                },
            );
        }
        Ok(reg)
    }

    /// Writes `registry.json` atomically, mode 0600.
    pub fn save(&self, path: &Path) -> Result<(), IssuerdError> {
        let mut locks = BTreeMap::new();
        for (id, l) in &self.locks {
            locks.insert(id.to_string(), keys::public_key_pem(&l.public_key)?);
        }
        let out = RegistryFileOut {
            latchkey_issuer_registry: REGISTRY_FORMAT,
            locks,
            guests: self
                .guests
                .iter()
                .map(|(id, g)| {
                    (
                        id.to_string(),
                        GuestOut {
                            enrollment_key_hex: &g.enrollment_key,
                            allowed_locks: g
                                .allowed_locks
                                .iter()
                                .map(ToString::to_string)
                                .collect(),
                            revoked: g.revoked,
                        },
                    )
                })
                .collect(),
        };
        let mut bytes = Zeroizing::new(
            serde_json::to_vec_pretty(&out)
                .map_err(|e| IssuerdError::bad_file("registry", path, e))?,
        );
        bytes.push(b'\n');
        fsutil::write_atomic(path, &bytes, PRIVATE_FILE)
    }

    /// Read-modify-write under `registry.lock`, so the CLI and the daemon never lose each
    /// other's changes. `f`'s error leaves the file untouched.
    pub(crate) fn update<T>(
        paths: &StatePaths,
        f: impl FnOnce(&mut Registry) -> Result<T, IssuerdError>,
    ) -> Result<T, IssuerdError> {
        let _guard = FileLock::acquire(&paths.registry_lock())?;
        let mut reg = Self::load(&paths.registry())?;
        let out = f(&mut reg)?;
        reg.save(&paths.registry())?;
        Ok(out)
    }
}

// ------------------------------------------------------------------------------- grants

const GRANTS_FORMAT: u32 = 1;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct GrantsFile {
    latchkey_issuer_grants: u32,
    grants: Vec<GrantEntry>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct GrantEntry {
    #[serde(with = "hexid")]
    grant_id: GrantId,
    #[serde(with = "hexid")]
    lock_id: LockId,
    #[serde(with = "hexid")]
    guest_id: GuestId,
    #[serde(with = "hexid")]
    session_id: SessionId,
    not_after: u64,
}

/// Loads `grants.json` (missing: none).
pub fn load_grants(path: &Path) -> Result<Vec<LiveGrant>, IssuerdError> {
    let Some(bytes) = fsutil::read_optional(path)? else {
        return Ok(Vec::new());
    };
    let file: GrantsFile =
        serde_json::from_slice(&bytes).map_err(|e| IssuerdError::bad_file("grants", path, e))?;
    if file.latchkey_issuer_grants != GRANTS_FORMAT {
        return Err(IssuerdError::bad_file(
            "grants",
            path,
            format!("unsupported format {}", file.latchkey_issuer_grants),
        ));
    }
    Ok(file
        .grants
        .into_iter()
        .map(|g| LiveGrant {
            grant_id: g.grant_id,
            lock_id: g.lock_id,
            guest_id: g.guest_id,
            session_id: g.session_id,
            not_after: g.not_after,
        })
        .collect())
}

/// Writes `grants.json` atomically.
pub fn save_grants(path: &Path, grants: &[LiveGrant]) -> Result<(), IssuerdError> {
    let file = GrantsFile {
        latchkey_issuer_grants: GRANTS_FORMAT,
        grants: grants
            .iter()
            .map(|g| GrantEntry {
                grant_id: g.grant_id,
                lock_id: g.lock_id,
                guest_id: g.guest_id,
                session_id: g.session_id,
                not_after: g.not_after,
            })
            .collect(),
    };
    let mut bytes =
        serde_json::to_vec_pretty(&file).map_err(|e| IssuerdError::bad_file("grants", path, e))?;
    bytes.push(b'\n');
    fsutil::write_atomic(path, &bytes, PRIVATE_FILE)
}

// -------------------------------------------------------------------------- revocations

/// A signed Revocation the issuer re-publishes until the lock reports it applied (a kind-4
/// LockEvent for the grant) or the revoked grant would have expired anyway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingRevocation {
    /// The revoked grant.
    pub grant_id: GrantId,
    /// Its lock.
    pub lock_id: LockId,
    /// The revoked grant's not_after (Unix s): no need to deliver after it.
    pub expires_at: u64,
    /// The signed Revocation.
    pub payload: Vec<u8>,
    /// How often it was published so far.
    pub publishes: u32,
    /// When to publish it next (not persisted: after a restart, at once).
    pub next_publish: UnixMillis,
}

const REVOCATIONS_FORMAT: u32 = 1;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RevocationsFile {
    latchkey_issuer_revocations: u32,
    pending: Vec<RevocationEntry>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RevocationEntry {
    #[serde(with = "hexid")]
    grant_id: GrantId,
    #[serde(with = "hexid")]
    lock_id: LockId,
    expires_at: u64,
    payload_hex: String,
    publishes: u32,
}

/// Loads `revocations.json` (missing: none).
pub fn load_revocations(path: &Path) -> Result<Vec<PendingRevocation>, IssuerdError> {
    let Some(bytes) = fsutil::read_optional(path)? else {
        return Ok(Vec::new());
    };
    let file: RevocationsFile = serde_json::from_slice(&bytes)
        .map_err(|e| IssuerdError::bad_file("revocations", path, e))?;
    if file.latchkey_issuer_revocations != REVOCATIONS_FORMAT {
        return Err(IssuerdError::bad_file(
            "revocations",
            path,
            format!("unsupported format {}", file.latchkey_issuer_revocations),
        ));
    }
    file.pending
        .into_iter()
        .map(|r| {
            let payload = hex::decode(&r.payload_hex).map_err(|e| {
                IssuerdError::bad_file("revocations", path, format!("grant {}: {e}", r.grant_id))
            })?;
            Ok(PendingRevocation {
                grant_id: r.grant_id,
                lock_id: r.lock_id,
                expires_at: r.expires_at,
                payload,
                publishes: r.publishes,
                next_publish: UnixMillis(0),
            })
        })
        .collect()
}

/// Writes `revocations.json` atomically.
pub fn save_revocations<'a>(
    path: &Path,
    pending: impl IntoIterator<Item = &'a PendingRevocation>,
) -> Result<(), IssuerdError> {
    let file = RevocationsFile {
        latchkey_issuer_revocations: REVOCATIONS_FORMAT,
        pending: pending
            .into_iter()
            .map(|r| RevocationEntry {
                grant_id: r.grant_id,
                lock_id: r.lock_id,
                expires_at: r.expires_at,
                payload_hex: hex::encode(&r.payload),
                publishes: r.publishes,
            })
            .collect(),
    };
    let mut bytes = serde_json::to_vec_pretty(&file)
        .map_err(|e| IssuerdError::bad_file("revocations", path, e))?;
    bytes.push(b'\n');
    fsutil::write_atomic(path, &bytes, PRIVATE_FILE)
}
