//! The key-encryption key (KEK) and the sealing of enrollment keys under it.
//!
//! Every guest's enrollment key is stored AES-256-GCM-sealed: `nonce(12) ‖ ct(32) ‖
//! tag(16)`, AAD = `"latchkey/v1 registry enrollment-key\0" ‖ guest_id(16) ‖
//! u32_be(key_version)`. The AAD binds the ciphertext to its row: copied onto another guest,
//! or replayed under another key version, it does not open.
//!
//! The KEK comes from `--kek-file` (config `kek_file`: 64 hex digits or 32 raw bytes, a file
//! group or others cannot read), or from `LATCHKEY_ISSUER_KEK` (64 hex digits), else from
//! `STATE_DIR/kek.key`. It never enters the database; the database keeps
//! `meta.kek_check = hex(HMAC-SHA256(KEK, "latchkey/v1 registry kek-check"))` so that a
//! wrong KEK is named as such instead of surfacing as broken rows.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use hmac::{Hmac, Mac};
use latchkey::GuestId;
use latchkey::crypto::EnrollmentKey;
use rand_core::CryptoRng;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

use crate::error::IssuerdError;
use crate::fsutil::PRIVATE_FILE;

/// The environment variable holding the KEK as 64 hex digits.
pub const KEK_ENV: &str = "LATCHKEY_ISSUER_KEK";
/// The KEK file's name in the state directory when none is configured.
pub const DEFAULT_KEK_FILE: &str = "kek.key";
/// Length of a sealed enrollment key: nonce, ciphertext, tag.
pub const SEALED_KEY_LEN: usize = 12 + 32 + 16;

const DS_SEALED_KEY: &[u8] = b"latchkey/v1 registry enrollment-key\0";
const DS_KEK_CHECK: &[u8] = b"latchkey/v1 registry kek-check";
/// A KEK file is a few bytes; anything much larger is not one.
const MAX_KEK_FILE: u64 = 1024;

/// The 32-byte key-encryption key. Wiped when dropped; `Debug` never shows it.
#[derive(Clone)]
pub struct Kek(Zeroizing<[u8; 32]>);

impl fmt::Debug for Kek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Kek(<redacted>)")
    }
}

impl Kek {
    /// A KEK from its bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// A fresh random KEK.
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut k = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(k.as_mut_slice());
        Self(k)
    }

    /// Parses 64 hex digits (surrounding whitespace ignored).
    pub fn from_hex(text: &str) -> Option<Self> {
        let mut k = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(text.trim(), k.as_mut_slice()).ok()?;
        Some(Self(k))
    }

    /// The KEK as 64 hex digits (wiped when dropped).
    pub fn to_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(hex::encode(self.0.as_slice()))
    }

    /// `hex(HMAC-SHA256(KEK, "latchkey/v1 registry kek-check"))`, stored in `meta`.
    pub fn check_value(&self) -> String {
        hex::encode(self.check_mac())
    }

    /// Whether `stored` is this KEK's check value (constant time).
    pub fn matches_check_value(&self, stored: &str) -> bool {
        let mut expected = [0u8; 32];
        if hex::decode_to_slice(stored.trim(), &mut expected).is_err() {
            return false;
        }
        bool::from(self.check_mac().ct_eq(&expected))
    }

    fn check_mac(&self) -> [u8; 32] {
        // HMAC takes a key of any length: new_from_slice cannot fail.
        match <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(self.0.as_slice()) {
            Ok(mut mac) => {
                mac.update(DS_KEK_CHECK);
                mac.finalize().into_bytes().into()
            }
            Err(_) => [0u8; 32],
        }
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(&(*self.0).into())
    }

    /// Seals a guest's enrollment key for row (`guest_id`, `key_version`).
    pub fn seal_enrollment_key<R: CryptoRng + ?Sized>(
        &self,
        guest_id: &GuestId,
        key_version: u32,
        key: &EnrollmentKey,
        rng: &mut R,
    ) -> [u8; SEALED_KEY_LEN] {
        let mut nonce = [0u8; 12];
        rng.fill_bytes(&mut nonce);
        let mut out = [0u8; SEALED_KEY_LEN];
        out[..12].copy_from_slice(&nonce);
        let (body, tag_out) = out[12..].split_at_mut(32);
        body.copy_from_slice(key.expose());
        // GCM fails only for inputs beyond 2^36 bytes; this is 32.
        match self.cipher().encrypt_inout_detached(
            &Nonce::from(nonce),
            &row_aad(guest_id, key_version),
            body.into(),
        ) {
            Ok(tag) => tag_out.copy_from_slice(&tag),
            Err(_) => out.zeroize(),
        }
        out
    }

    /// Opens a sealed enrollment key of row (`guest_id`, `key_version`). `None` if it was
    /// sealed under another KEK, for another row, or altered.
    pub fn open_enrollment_key(
        &self,
        guest_id: &GuestId,
        key_version: u32,
        sealed: &[u8],
    ) -> Option<EnrollmentKey> {
        if sealed.len() != SEALED_KEY_LEN {
            return None;
        }
        let mut nonce = [0u8; 12];
        nonce.copy_from_slice(&sealed[..12]);
        let mut body = Zeroizing::new([0u8; 32]);
        body.copy_from_slice(&sealed[12..44]);
        let mut tag = [0u8; 16];
        tag.copy_from_slice(&sealed[44..]);
        self.cipher()
            .decrypt_inout_detached(
                &Nonce::from(nonce),
                &row_aad(guest_id, key_version),
                (&mut body[..]).into(),
                &Tag::from(tag),
            )
            .ok()?;
        Some(EnrollmentKey::from_bytes(*body))
    }
}

fn row_aad(guest_id: &GuestId, key_version: u32) -> Vec<u8> {
    let mut aad = Vec::with_capacity(DS_SEALED_KEY.len() + 20);
    aad.extend_from_slice(DS_SEALED_KEY);
    aad.extend_from_slice(&guest_id.0);
    aad.extend_from_slice(&key_version.to_be_bytes());
    aad
}

/// Where the KEK comes from.
#[derive(Debug, Clone, Default)]
pub enum KekSource {
    /// `LATCHKEY_ISSUER_KEK` if set, else `STATE_DIR/kek.key`.
    #[default]
    Auto,
    /// A key file (`--kek-file`, config `kek_file`).
    File(PathBuf),
    /// A key given directly (embedding, tests).
    Key(Kek),
}

/// Where a loaded KEK came from, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KekOrigin {
    /// A file.
    File(PathBuf),
    /// The environment variable.
    Env,
    /// Given by the caller.
    Given,
}

impl fmt::Display for KekOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(p) => write!(f, "file {}", p.display()),
            Self::Env => write!(f, "environment variable {KEK_ENV}"),
            Self::Given => f.write_str("the caller"),
        }
    }
}

impl KekSource {
    /// The file this source reads, if it reads one (`Auto` without the environment
    /// variable: `STATE_DIR/kek.key`).
    pub fn file(&self, state_dir: &Path) -> Option<PathBuf> {
        match self {
            Self::Auto if std::env::var_os(KEK_ENV).is_some() => None,
            Self::Auto => Some(state_dir.join(DEFAULT_KEK_FILE)),
            Self::File(p) => Some(p.clone()),
            Self::Key(_) => None,
        }
    }

    /// Whether this source is the default file `STATE_DIR/kek.key`.
    pub(crate) fn is_default_file(&self) -> bool {
        matches!(self, Self::Auto) && std::env::var_os(KEK_ENV).is_none()
    }

    /// Loads the KEK.
    pub fn load(&self, state_dir: &Path) -> Result<(Kek, KekOrigin), IssuerdError> {
        match self {
            Self::Key(k) => Ok((k.clone(), KekOrigin::Given)),
            Self::Auto => match std::env::var(KEK_ENV) {
                Ok(text) => {
                    let text = Zeroizing::new(text);
                    Kek::from_hex(&text)
                        .map(|k| (k, KekOrigin::Env))
                        .ok_or_else(|| IssuerdError::BadKek {
                            origin: KekOrigin::Env.to_string(),
                            detail: "not 64 hex digits".to_owned(),
                        })
                }
                Err(std::env::VarError::NotUnicode(_)) => Err(IssuerdError::BadKek {
                    origin: KekOrigin::Env.to_string(),
                    detail: "not UTF-8".to_owned(),
                }),
                Err(std::env::VarError::NotPresent) => {
                    let path = state_dir.join(DEFAULT_KEK_FILE);
                    read_kek_file(&path).map(|k| (k, KekOrigin::File(path)))
                }
            },
            Self::File(path) => read_kek_file(path).map(|k| (k, KekOrigin::File(path.clone()))),
        }
    }
}

/// Reads a KEK file: 64 hex digits, or exactly 32 raw bytes. Refused if group or others may
/// read it (the mode is checked on the opened file).
pub fn read_kek_file(path: &Path) -> Result<Kek, IssuerdError> {
    let origin = || KekOrigin::File(path.to_owned()).to_string();
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(IssuerdError::NoKek {
                path: path.to_owned(),
            });
        }
        Err(e) => return Err(IssuerdError::io("open key-encryption key", path)(e)),
    };
    let meta = file
        .metadata()
        .map_err(IssuerdError::io("inspect key-encryption key", path))?;
    if !meta.is_file() {
        return Err(IssuerdError::BadKek {
            origin: origin(),
            detail: "not a regular file".to_owned(),
        });
    }
    let mode = meta.mode() & 0o777;
    let credentials = std::env::var_os("CREDENTIALS_DIRECTORY").map(PathBuf::from);
    if !mode_is_private(path, mode, credentials.as_deref()) {
        return Err(IssuerdError::InsecurePermissions {
            what: "key-encryption key",
            path: path.to_owned(),
            mode,
        });
    }
    let mut bytes = Zeroizing::new(Vec::new());
    file.take(MAX_KEK_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(IssuerdError::io("read key-encryption key", path))?;
    if let Some(k) = std::str::from_utf8(&bytes).ok().and_then(Kek::from_hex) {
        return Ok(k);
    }
    if bytes.len() == 32 {
        let mut raw = [0u8; 32];
        raw.copy_from_slice(&bytes);
        let k = Kek::from_bytes(raw);
        raw.zeroize();
        return Ok(k);
    }
    Err(IssuerdError::BadKek {
        origin: origin(),
        detail: format!("{} bytes that are not 64 hex digits", bytes.len()),
    })
}

/// Whether a KEK file's mode keeps it private: nobody but its owner may read it. A systemd
/// credential (`LoadCredential=`, a file under `$CREDENTIALS_DIRECTORY`) is the exception
/// for the group bits: systemd grants the service user read access with an ACL, which shows
/// as group bits (the ACL mask) although no group gets access; others must still have none.
fn mode_is_private(path: &Path, mode: u32, credentials_dir: Option<&Path>) -> bool {
    if mode & 0o007 != 0 {
        return false;
    }
    if mode & 0o070 == 0 {
        return true;
    }
    let real = |p: &Path| std::fs::canonicalize(p).ok();
    match (credentials_dir.and_then(real), real(path)) {
        (Some(dir), Some(file)) => file.starts_with(dir),
        _ => false,
    }
}

/// Writes a new random KEK to `path` as 64 hex digits, mode 0600. Never replaces a file.
pub fn create_kek_file<R: CryptoRng + ?Sized>(
    path: &Path,
    rng: &mut R,
) -> Result<Kek, IssuerdError> {
    let kek = Kek::generate(rng);
    let mut text = kek.to_hex();
    text.push('\n');
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(PRIVATE_FILE)
        .open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => IssuerdError::AlreadyExists {
                path: path.to_owned(),
            },
            _ => IssuerdError::io("create key-encryption key", path)(e),
        })?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(IssuerdError::io("write key-encryption key", path))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(IssuerdError::io("fsync directory", dir))?;
    }
    Ok(kek)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::seeded_rng;
    use std::os::unix::fs::PermissionsExt;

    fn key(b: u8) -> EnrollmentKey {
        EnrollmentKey::from_bytes([b; 32])
    }

    #[test]
    fn a_sealed_key_opens_only_for_its_own_row_and_kek() {
        let kek = Kek::from_bytes([1; 32]);
        let mut rng = seeded_rng([2; 32]);
        let g = GuestId([3; 16]);
        let sealed = kek.seal_enrollment_key(&g, 1, &key(9), &mut rng);
        assert!(
            kek.open_enrollment_key(&g, 1, &sealed)
                .is_some_and(|k| k == key(9))
        );
        // Another guest, another key version, another KEK, a flipped bit: all refused.
        assert!(
            kek.open_enrollment_key(&GuestId([4; 16]), 1, &sealed)
                .is_none()
        );
        assert!(kek.open_enrollment_key(&g, 2, &sealed).is_none());
        assert!(
            Kek::from_bytes([5; 32])
                .open_enrollment_key(&g, 1, &sealed)
                .is_none()
        );
        let mut flipped = sealed;
        flipped[20] ^= 1;
        assert!(kek.open_enrollment_key(&g, 1, &flipped).is_none());
        assert!(kek.open_enrollment_key(&g, 1, &sealed[..59]).is_none());
        // The ciphertext does not contain the key.
        assert!(!sealed.windows(32).any(|w| w == [9u8; 32]));
        // Fresh nonces: sealing twice gives two different blobs.
        assert_ne!(sealed, kek.seal_enrollment_key(&g, 1, &key(9), &mut rng));
    }

    #[test]
    fn the_check_value_recognises_only_its_kek() {
        let a = Kek::from_bytes([1; 32]);
        let b = Kek::from_bytes([2; 32]);
        let check = a.check_value();
        assert_eq!(check.len(), 64);
        assert!(a.matches_check_value(&check));
        assert!(!b.matches_check_value(&check));
        assert!(!a.matches_check_value("not hex"));
        assert!(!format!("{a:?}").contains("0101"), "Debug hides the key");
    }

    #[test]
    fn kek_files_are_hex_or_raw_and_must_be_private() {
        let dir = tempfile::tempdir().unwrap();
        let mut rng = seeded_rng([7; 32]);
        let hex_file = dir.path().join("k.hex");
        let created = create_kek_file(&hex_file, &mut rng).unwrap();
        let mode = std::fs::metadata(&hex_file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(std::fs::read_to_string(&hex_file).unwrap().trim().len(), 64);
        assert!(read_kek_file(&hex_file).unwrap().check_value() == created.check_value());
        assert!(matches!(
            create_kek_file(&hex_file, &mut rng),
            Err(IssuerdError::AlreadyExists { .. })
        ));

        let raw_file = dir.path().join("k.raw");
        std::fs::write(&raw_file, [0xAB; 32]).unwrap();
        std::fs::set_permissions(&raw_file, std::fs::Permissions::from_mode(0o400)).unwrap();
        let raw = read_kek_file(&raw_file).unwrap();
        assert_eq!(raw.check_value(), Kek::from_bytes([0xAB; 32]).check_value());

        std::fs::set_permissions(&hex_file, std::fs::Permissions::from_mode(0o640)).unwrap();
        let e = read_kek_file(&hex_file).unwrap_err();
        assert!(
            matches!(e, IssuerdError::InsecurePermissions { mode: 0o640, .. }),
            "{e:?}"
        );
        assert!(e.to_string().contains("chmod 600"), "{e}");

        // A systemd credential shows the ACL mask as group bits; only there are they allowed.
        let creds = dir.path().join("credentials");
        std::fs::create_dir(&creds).unwrap();
        let cred = creds.join("issuer.kek");
        std::fs::write(&cred, "cd".repeat(32)).unwrap();
        std::fs::set_permissions(&cred, std::fs::Permissions::from_mode(0o440)).unwrap();
        assert!(mode_is_private(&cred, 0o440, Some(&creds)));
        assert!(!mode_is_private(&cred, 0o440, None));
        assert!(
            !mode_is_private(&hex_file, 0o440, Some(&creds)),
            "outside the directory"
        );
        assert!(!mode_is_private(&cred, 0o444, Some(&creds)), "others never");
        let sneaky = creds.join("..").join("k.hex");
        assert!(
            !mode_is_private(&sneaky, 0o440, Some(&creds)),
            "no way out with .."
        );
        assert!(mode_is_private(&hex_file, 0o600, None));

        let bad = dir.path().join("k.bad");
        std::fs::write(&bad, "abc\n").unwrap();
        std::fs::set_permissions(&bad, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(
            read_kek_file(&bad),
            Err(IssuerdError::BadKek { .. })
        ));
        assert!(matches!(
            read_kek_file(&dir.path().join("missing")),
            Err(IssuerdError::NoKek { .. })
        ));
    }
}
