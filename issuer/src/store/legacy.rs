//! Import of the JSON state files the issuer kept before the registry moved to SQLite:
//! `registry.json` (locks, guests with their enrollment keys in hex), `grants.json` (live
//! grants) and `revocations.json` (signed revocations being delivered). The first open of
//! such a state directory imports them in one transaction, then renames them `*.imported`.
//! `registry.json.imported` still holds the enrollment keys in clear: the log says to delete
//! it once the import is checked.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use latchkey::crypto::EnrollmentKey;
use latchkey::frame::RevocationView;
use latchkey::{GrantId, GuestId, LockId, SessionId};
use rusqlite::{Connection, params};
use serde::{Deserialize, Deserializer, de};
use zeroize::Zeroizing;

use super::Store;
use super::audit::{self, AuditSource, NewAudit};
use super::db::{self, int};
use super::grants::store_revocation;
use crate::error::IssuerdError;
use crate::fsutil;
use crate::keys;
use crate::serde_ids::{hexid, hexids};
use crate::state::StatePaths;

/// What an import brought in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LegacyImport {
    /// Locks registered.
    pub locks: usize,
    /// Guests enrolled (keys sealed, key version 1).
    pub guests: usize,
    /// Live grants.
    pub grants: usize,
    /// Pending revocations.
    pub revocations: usize,
    /// Entries skipped (already in the database, or naming an unregistered lock).
    pub skipped: usize,
}

/// Whether any legacy file is still there.
pub(crate) fn present(paths: &StatePaths) -> bool {
    [
        paths.legacy_registry(),
        paths.legacy_grants(),
        paths.legacy_revocations(),
    ]
    .iter()
    .any(|p| p.exists())
}

// ----------------------------------------------------------------------- file formats

fn format_one() -> u32 {
    1
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegistryFile {
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

/// An enrollment key read from hex; the text is wiped after decoding.
struct SecretHex(EnrollmentKey);

impl<'de> Deserialize<'de> for SecretHex {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = Zeroizing::new(String::deserialize(d)?);
        let mut raw = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(text.trim(), raw.as_mut_slice())
            .map_err(|_| de::Error::custom("enrollment key must be 64 hex digits"))?;
        Ok(SecretHex(EnrollmentKey::from_bytes(*raw)))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GrantsFile {
    latchkey_issuer_grants: u32,
    grants: Vec<GrantIn>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GrantIn {
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RevocationsFile {
    latchkey_issuer_revocations: u32,
    pending: Vec<RevocationIn>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RevocationIn {
    #[serde(with = "hexid")]
    grant_id: GrantId,
    #[serde(with = "hexid")]
    lock_id: LockId,
    expires_at: u64,
    payload_hex: String,
    publishes: u32,
}

fn read_json<T: de::DeserializeOwned>(
    path: &Path,
    what: &'static str,
    private: bool,
) -> Result<Option<T>, IssuerdError> {
    if !path.exists() {
        return Ok(None);
    }
    let bytes = if private {
        fsutil::read_private(path, what)?
    } else {
        Zeroizing::new(fsutil::read_optional(path)?.unwrap_or_default())
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| IssuerdError::bad_file(what, path, e))
}

fn check_format(path: &Path, what: &'static str, found: u32) -> Result<(), IssuerdError> {
    if found == 1 {
        Ok(())
    } else {
        Err(IssuerdError::bad_file(
            what,
            path,
            format!("unsupported format {found} (this issuer imports format 1)"),
        ))
    }
}

// ---------------------------------------------------------------------------- import

/// Imports the legacy files into `store` and renames them. Every file is parsed before
/// anything is written; entries already in the database are kept as they are.
pub(crate) fn import(store: &mut Store, paths: &StatePaths) -> Result<LegacyImport, IssuerdError> {
    let reg_path = paths.legacy_registry();
    let grants_path = paths.legacy_grants();
    let revs_path = paths.legacy_revocations();
    let registry: Option<RegistryFile> = read_json(&reg_path, "registry", true)?;
    let grants: Option<GrantsFile> = read_json(&grants_path, "grants", false)?;
    let revocations: Option<RevocationsFile> = read_json(&revs_path, "revocations", false)?;
    if let Some(r) = &registry {
        check_format(&reg_path, "registry", r.latchkey_issuer_registry)?;
    }
    if let Some(g) = &grants {
        check_format(&grants_path, "grants", g.latchkey_issuer_grants)?;
    }
    if let Some(r) = &revocations {
        check_format(&revs_path, "revocations", r.latchkey_issuer_revocations)?;
    }

    let now_ms = crate::time::now().0;
    let db_path = store.path.clone();
    let err = |a| IssuerdError::db(&db_path, a);
    let mut out = LegacyImport::default();
    let tx = db::begin(&mut store.conn, &db_path)?;
    if let Some(reg) = &registry {
        for (id, pem) in &reg.locks {
            let lock_id: LockId = id.parse().map_err(|e| {
                IssuerdError::bad_file("registry", &reg_path, format!("lock {id:?}: {e}"))
            })?;
            // Validate the key: a broken one would fail every grant to this lock.
            let key = keys::decode_public_pem(pem.as_bytes()).map_err(|e| {
                IssuerdError::bad_file("registry", &reg_path, format!("lock {lock_id}: {e}"))
            })?;
            let n = tx
                .execute(
                    "INSERT INTO locks (lock_id, public_key_pem, created_at_ms) VALUES (?1, ?2, ?3)
                     ON CONFLICT (lock_id) DO NOTHING",
                    params![
                        lock_id.to_string(),
                        keys::public_key_pem(&key)?,
                        int(now_ms)
                    ],
                )
                .map_err(err("import a lock"))?;
            count(n, &mut out.locks, &mut out.skipped);
        }
        for (id, g) in &reg.guests {
            let guest_id: GuestId = id.parse().map_err(|e| {
                IssuerdError::bad_file("registry", &reg_path, format!("guest {id:?}: {e}"))
            })?;
            let sealed = store.kek.seal_enrollment_key(
                &guest_id,
                1,
                &g.enrollment_key_hex.0,
                &mut store.rng,
            );
            let n = tx
                .execute(
                    "INSERT INTO guests (guest_id, enrollment_key_sealed, key_version, created_at_ms,
                                         revoked_at_ms)
                     VALUES (?1, ?2, 1, ?3, ?4) ON CONFLICT (guest_id) DO NOTHING",
                    params![
                        guest_id.to_string(),
                        &sealed[..],
                        int(now_ms),
                        g.revoked.then_some(int(now_ms))
                    ],
                )
                .map_err(err("import a guest"))?;
            count(n, &mut out.guests, &mut out.skipped);
            if n == 1 {
                for lock in &g.allowed_locks {
                    let n = insert_access(&tx, &guest_id, lock, now_ms)
                        .map_err(err("import an access rule"))?;
                    if n == 0 {
                        out.skipped += 1;
                    }
                }
            }
        }
    }
    if let Some(file) = &grants {
        for g in &file.grants {
            let guest_known =
                super::guests::exists(&tx, &g.guest_id).map_err(err("look up a guest"))?;
            let n = if super::locks::exists(&tx, &g.lock_id).map_err(err("look up a lock"))? {
                tx.execute(
                    "INSERT INTO grants (grant_id, lock_id, guest_id, session_id, not_after)
                     VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (grant_id) DO NOTHING",
                    params![
                        g.grant_id.to_string(),
                        g.lock_id.to_string(),
                        guest_known.then(|| g.guest_id.to_string()),
                        g.session_id.to_string(),
                        int(g.not_after)
                    ],
                )
                .map_err(err("import a grant"))?
            } else {
                tracing::warn!(grant = %g.grant_id, lock = %g.lock_id, "grants.json: grant of an unregistered lock not imported");
                0
            };
            count(n, &mut out.grants, &mut out.skipped);
        }
    }
    if let Some(file) = &revocations {
        for r in &file.pending {
            let payload = hex::decode(&r.payload_hex).map_err(|e| {
                IssuerdError::bad_file(
                    "revocations",
                    &revs_path,
                    format!("grant {}: {e}", r.grant_id),
                )
            })?;
            let session = RevocationView::parse(&payload)
                .map(|v| v.fields.session_id)
                .map_err(|e| {
                    IssuerdError::bad_file(
                        "revocations",
                        &revs_path,
                        format!("grant {}: {e}", r.grant_id),
                    )
                })?;
            if !super::locks::exists(&tx, &r.lock_id).map_err(err("look up a lock"))? {
                tracing::warn!(grant = %r.grant_id, lock = %r.lock_id, "revocations.json: revocation for an unregistered lock not imported");
                out.skipped += 1;
                continue;
            }
            // The revoked grant left grants.json when it was revoked: record it from the
            // revocation (its guest is unknown).
            tx.execute(
                "INSERT INTO grants (grant_id, lock_id, session_id, not_after) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (grant_id) DO NOTHING",
                params![r.grant_id.to_string(), r.lock_id.to_string(), session.to_string(), int(r.expires_at)],
            )
            .map_err(err("import a revoked grant"))?;
            let stored = store_revocation(&tx, &r.grant_id, &payload, r.publishes, now_ms)
                .map_err(err("import a revocation"))?;
            count(usize::from(stored), &mut out.revocations, &mut out.skipped);
        }
    }
    audit::insert(
        &tx,
        &NewAudit::new(now_ms, AuditSource::Admin, "legacy_imported")
            .actor("import")
            .detail(serde_json::json!({
                "locks": out.locks, "guests": out.guests, "grants": out.grants,
                "revocations": out.revocations, "skipped": out.skipped,
            })),
    )
    .map_err(err("record the audit entry"))?;
    tx.commit().map_err(err("commit the import"))?;

    for p in [&reg_path, &grants_path, &revs_path] {
        rename_imported(p)?;
    }
    tracing::info!(
        locks = out.locks,
        guests = out.guests,
        grants = out.grants,
        revocations = out.revocations,
        skipped = out.skipped,
        "imported registry.json, grants.json and revocations.json into registry.db"
    );
    if registry.is_some() {
        tracing::warn!(
            file = %imported_name(&reg_path).display(),
            "the imported registry.json still holds the enrollment keys in clear: delete it once the import is checked"
        );
    }
    Ok(out)
}

fn count(n: usize, imported: &mut usize, skipped: &mut usize) {
    if n == 0 {
        *skipped += 1;
    } else {
        *imported += n;
    }
}

fn insert_access(
    conn: &Connection,
    guest: &GuestId,
    lock: &LockId,
    now_ms: u64,
) -> rusqlite::Result<usize> {
    if !super::locks::exists(conn, lock)? {
        return Ok(0);
    }
    // registry.json knew no roles or limits: unbounded access, the default role's.
    conn.execute(
        "INSERT INTO access (guest_id, lock_id, role, created_at_ms, updated_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?4)
         ON CONFLICT (guest_id, lock_id) DO NOTHING",
        params![
            guest.to_string(),
            lock.to_string(),
            super::access::DEFAULT_ROLE.name(),
            int(now_ms)
        ],
    )
}

fn imported_name(p: &Path) -> PathBuf {
    let mut name = p.as_os_str().to_owned();
    name.push(".imported");
    PathBuf::from(name)
}

fn rename_imported(p: &Path) -> Result<(), IssuerdError> {
    match std::fs::rename(p, imported_name(p)) {
        Ok(()) => Ok(()),
        // Not there, or another process renamed it first.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(IssuerdError::io("rename the imported file", p)(e)),
    }
}
