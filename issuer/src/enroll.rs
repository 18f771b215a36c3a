//! Guest enrollment: `enroll-guest` and `rotate-guest-key`. Each makes a new enrollment key,
//! registers it (sealed) with the guest's access rules, and hands the guest its enrollment
//! bundle: a JSON file, a QR code (PNG, SVG, or on the terminal), or both.
//!
//! ```json
//! {"latchkey_enrollment":1,"guest_id":"<32 hex>","enrollment_key":"<64 hex>",
//!  "broker_url":"mqtts://broker:8883","locks":["<32 hex>",…],"company_id":65535}
//! ```
//!
//! The bundle file is pretty-printed; the QR text is the same JSON, compact. Every output
//! holds the guest's secret key: files are written mode 0600, and the registry is updated
//! in the same transaction, after the files: if writing one fails, nothing is registered
//! and the files already written are removed.

use std::path::{Path, PathBuf};

use latchkey::constants::DEFAULT_COMPANY_ID;
use latchkey::crypto::EnrollmentKey;
use latchkey::{GuestId, LockId};
use zeroize::Zeroizing;

use crate::commands::{ACTOR_CLI, check_broker_url};
use crate::error::IssuerdError;
use crate::fsutil::{self, PRIVATE_FILE};
use crate::qr;
use crate::rng::{Csprng, os_rng};
use crate::state::StatePaths;
use crate::store::{AccessChange, KekSource, NewGuest, OpenMode, Store};
use crate::time;

/// Where an enrollment bundle goes besides the terminal.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BundleFiles {
    /// The bundle as a JSON file.
    pub json: Option<PathBuf>,
    /// Its QR code as a PNG.
    pub qr_png: Option<PathBuf>,
    /// Its QR code as an SVG.
    pub qr_svg: Option<PathBuf>,
}

impl BundleFiles {
    fn paths(&self) -> impl Iterator<Item = &PathBuf> {
        [&self.json, &self.qr_png, &self.qr_svg]
            .into_iter()
            .flatten()
    }
}

/// Options of [`enroll_guest_with`] and [`enroll`].
#[derive(Debug, Clone)]
pub struct EnrollGuestOptions {
    /// The guest's id; random if `None`.
    pub guest_id: Option<GuestId>,
    /// The locks it may request grants for (at least one, all registered).
    pub locks: Vec<LockId>,
    /// The enrollment bundle file to write (0600); `None` writes none (a QR code only).
    pub out_file: Option<PathBuf>,
    /// QR code files (0600).
    pub qr_png: Option<PathBuf>,
    /// QR code as SVG (0600).
    pub qr_svg: Option<PathBuf>,
    /// The broker URL written into the bundle.
    pub broker_url: String,
    /// Company id written into the bundle.
    pub company_id: u16,
    /// A name for people.
    pub name: String,
    /// The access rule at each lock (role, window, schedule, unlock limit).
    pub access: AccessChange,
    /// Re-enroll an enrolled guest (new key) and overwrite existing files.
    pub force: bool,
    /// The registry's key-encryption key.
    pub kek: KekSource,
}

impl EnrollGuestOptions {
    /// Defaults for everything but the locks, the bundle path and the broker.
    pub fn new(
        locks: Vec<LockId>,
        out_file: impl Into<PathBuf>,
        broker_url: impl Into<String>,
    ) -> Self {
        Self {
            guest_id: None,
            locks,
            out_file: Some(out_file.into()),
            qr_png: None,
            qr_svg: None,
            broker_url: broker_url.into(),
            company_id: DEFAULT_COMPANY_ID,
            name: String::new(),
            access: AccessChange::default(),
            force: false,
            kek: KekSource::Auto,
        }
    }

    fn files(&self) -> BundleFiles {
        BundleFiles {
            json: self.out_file.clone(),
            qr_png: self.qr_png.clone(),
            qr_svg: self.qr_svg.clone(),
        }
    }
}

/// A guest just enrolled (or given a new key). `Debug` leaves the QR text out.
pub struct Enrollment {
    /// The guest.
    pub guest_id: GuestId,
    /// Its key version (1 at enrollment).
    pub key_version: u32,
    /// The bundle as compact JSON, the QR code's text (secret; wiped when dropped).
    pub qr_text: Zeroizing<String>,
}

impl std::fmt::Debug for Enrollment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enrollment")
            .field("guest_id", &self.guest_id)
            .field("key_version", &self.key_version)
            .field("qr_text", &"<redacted>")
            .finish()
    }
}

/// Enrolls a guest: generates its enrollment key, writes the enrollment bundle `out_file`
/// (mode 0600, JSON) and registers the guest with its allowed locks. Returns the guest id.
pub fn enroll_guest(
    state_dir: &Path,
    guest_id: Option<GuestId>,
    locks: &[LockId],
    out_file: &Path,
    broker_url: &str,
) -> Result<GuestId, IssuerdError> {
    let mut opts = EnrollGuestOptions::new(locks.to_vec(), out_file, broker_url);
    opts.guest_id = guest_id;
    enroll_guest_with(state_dir, &opts)
}

/// [`enroll_guest`] with options.
pub fn enroll_guest_with(
    state_dir: &Path,
    opts: &EnrollGuestOptions,
) -> Result<GuestId, IssuerdError> {
    enroll(state_dir, opts).map(|e| e.guest_id)
}

/// [`enroll_guest_with`], returning the QR text too (for a terminal rendering).
pub fn enroll(state_dir: &Path, opts: &EnrollGuestOptions) -> Result<Enrollment, IssuerdError> {
    check_broker_url(&opts.broker_url)?;
    check_outputs(&opts.files(), opts.force)?;
    let paths = StatePaths::new(state_dir);
    let mut store = Store::open(&paths, &opts.kek, OpenMode::Create)?;
    enroll_in(&mut store, opts, ACTOR_CLI)
}

/// Enrolls a guest in an open registry, as `actor` (the audit trail's `cli`, `web:NAME`):
/// what `enroll-guest` and the admin web both do. The bundle goes to the files of `opts`
/// (none at all for the web, which shows it once) and is returned.
pub fn enroll_in(
    store: &mut Store,
    opts: &EnrollGuestOptions,
    actor: &str,
) -> Result<Enrollment, IssuerdError> {
    check_broker_url(&opts.broker_url)?;
    if opts.locks.is_empty() {
        return Err(IssuerdError::NoLocks);
    }
    let files = opts.files();
    check_outputs(&files, opts.force)?;
    let mut rng: Csprng = os_rng()?;
    let guest_id = opts.guest_id.unwrap_or_else(|| GuestId::random(&mut rng));
    let mut locks = opts.locks.clone();
    locks.sort();
    locks.dedup();
    let key = EnrollmentKey::random(&mut rng);
    let bundle = Bundle {
        guest_id,
        key: &key,
        broker_url: &opts.broker_url,
        locks: &locks,
        company_id: opts.company_id,
    };
    let guest = NewGuest {
        guest_id,
        name: opts.name.clone(),
        key: key.clone(),
        locks: locks.clone(),
        access: opts.access.clone(),
    };
    let key_version = store.enroll_guest(&guest, opts.force, time::now().0, actor, || {
        write_outputs(&bundle, &files)
    })?;
    Ok(Enrollment {
        guest_id,
        key_version,
        qr_text: bundle.json(false),
    })
}

/// Options of [`rotate_guest_key`].
#[derive(Debug, Clone)]
pub struct RotateGuestKeyOptions {
    /// The guest.
    pub guest_id: GuestId,
    /// Where its new bundle goes.
    pub files: BundleFiles,
    /// The broker URL written into the bundle.
    pub broker_url: String,
    /// Company id written into the bundle.
    pub company_id: u16,
    /// Overwrite existing files.
    pub force: bool,
    /// The registry's key-encryption key.
    pub kek: KekSource,
}

/// Gives an enrolled guest a new enrollment key (next key version) and writes its new
/// bundle; the old key stops working once the daemon reloads (at its next message). The
/// bundle lists the locks the guest has access rules at. Live grants stay valid until they
/// expire unless revoked (`rotate-guest-key --revoke-grants`).
pub fn rotate_guest_key(
    state_dir: &Path,
    opts: &RotateGuestKeyOptions,
) -> Result<Enrollment, IssuerdError> {
    check_broker_url(&opts.broker_url)?;
    check_outputs(&opts.files, opts.force)?;
    let paths = StatePaths::new(state_dir);
    let mut store = Store::open(&paths, &opts.kek, OpenMode::Existing)?;
    rotate_guest_key_in(&mut store, opts, ACTOR_CLI)
}

/// [`rotate_guest_key`] in an open registry, as `actor` (`rotate-guest-key` and the admin
/// web).
pub fn rotate_guest_key_in(
    store: &mut Store,
    opts: &RotateGuestKeyOptions,
    actor: &str,
) -> Result<Enrollment, IssuerdError> {
    check_broker_url(&opts.broker_url)?;
    check_outputs(&opts.files, opts.force)?;
    let locks: Vec<LockId> = store
        .access_of_guest(&opts.guest_id)?
        .into_iter()
        .map(|r| r.lock_id)
        .collect();
    let mut rng: Csprng = os_rng()?;
    let key = EnrollmentKey::random(&mut rng);
    let bundle = Bundle {
        guest_id: opts.guest_id,
        key: &key,
        broker_url: &opts.broker_url,
        locks: &locks,
        company_id: opts.company_id,
    };
    let key_version = store.rotate_guest_key(&opts.guest_id, &key, time::now().0, actor, || {
        write_outputs(&bundle, &opts.files)
    })?;
    Ok(Enrollment {
        guest_id: opts.guest_id,
        key_version,
        qr_text: bundle.json(false),
    })
}

/// An enrollment bundle's content.
struct Bundle<'a> {
    guest_id: GuestId,
    key: &'a EnrollmentKey,
    broker_url: &'a str,
    locks: &'a [LockId],
    company_id: u16,
}

impl Bundle<'_> {
    /// The JSON text, built by hand so that no copy of the key outlives it (the result is
    /// wiped when dropped). `pretty`: one field per line, for the file.
    fn json(&self, pretty: bool) -> Zeroizing<String> {
        let key_hex = Zeroizing::new(hex::encode(self.key.expose()));
        let url = Zeroizing::new(serde_json::Value::String(self.broker_url.to_owned()).to_string());
        let locks: Vec<String> = self.locks.iter().map(|l| format!("\"{l}\"")).collect();
        let (nl, ind, sep) = if pretty {
            ("\n", "  ", ": ")
        } else {
            ("", "", ":")
        };
        let list_sep = if pretty { ", " } else { "," };
        let mut out = Zeroizing::new(String::with_capacity(256 + 36 * self.locks.len()));
        let mut field = |name: &str, value: &str, last: bool| {
            out.push_str(ind);
            out.push('"');
            out.push_str(name);
            out.push('"');
            out.push_str(sep);
            out.push_str(value);
            if !last {
                out.push(',');
            }
            out.push_str(nl);
        };
        field("latchkey_enrollment", "1", false);
        field("guest_id", &format!("\"{}\"", self.guest_id), false);
        field(
            "enrollment_key",
            &Zeroizing::new(format!("\"{}\"", key_hex.as_str())),
            false,
        );
        field("broker_url", &url, false);
        field("locks", &format!("[{}]", locks.join(list_sep)), false);
        field("company_id", &self.company_id.to_string(), true);
        let mut framed = Zeroizing::new(String::with_capacity(out.len() + 4));
        framed.push('{');
        framed.push_str(nl);
        framed.push_str(&out);
        framed.push('}');
        framed.push_str(nl);
        framed
    }
}

/// Refuses outputs that would overwrite a file (without `force`), and none at all is
/// caught by the caller (the terminal QR code counts).
fn check_outputs(files: &BundleFiles, force: bool) -> Result<(), IssuerdError> {
    if force {
        return Ok(());
    }
    for p in files.paths() {
        if p.exists() {
            return Err(IssuerdError::AlreadyExists { path: p.clone() });
        }
    }
    Ok(())
}

/// Writes the bundle file and QR codes; on failure removes those already written.
fn write_outputs(bundle: &Bundle<'_>, files: &BundleFiles) -> Result<(), IssuerdError> {
    let mut written: Vec<&Path> = Vec::new();
    let result = (|| {
        let compact = bundle.json(false);
        if let Some(p) = &files.json {
            write_private(p, bundle.json(true).as_bytes())?;
            written.push(p);
        }
        if let Some(p) = &files.qr_png {
            write_private(p, &qr::png(&compact)?)?;
            written.push(p);
        }
        if let Some(p) = &files.qr_svg {
            write_private(p, qr::svg(&compact)?.as_bytes())?;
            written.push(p);
        }
        Ok(())
    })();
    if result.is_err() {
        for p in written {
            let _ = std::fs::remove_file(p);
        }
    }
    result
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), IssuerdError> {
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
    {
        fsutil::ensure_private_dir(parent, false)?;
    }
    fsutil::write_atomic(path, bytes, PRIVATE_FILE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundle_json_is_the_documented_format_in_both_layouts_and_debug_hides_it() {
        let e = Enrollment {
            guest_id: GuestId([3; 16]),
            key_version: 1,
            qr_text: Zeroizing::new("secret".to_owned()),
        };
        assert!(!format!("{e:?}").contains("secret"));
        let key = EnrollmentKey::from_bytes([0xAB; 32]);
        let locks = [LockId([1; 16]), LockId([2; 16])];
        let b = Bundle {
            guest_id: GuestId([3; 16]),
            key: &key,
            broker_url: "mqtts://u:p\"w@h:8883",
            locks: &locks,
            company_id: 0x004C,
        };
        let compact = b.json(false);
        assert!(
            !compact.contains('\n') && !compact.contains(' '),
            "{}",
            compact.as_str()
        );
        for text in [compact.as_str(), b.json(true).as_str()] {
            let v: serde_json::Value = serde_json::from_str(text).unwrap();
            assert_eq!(v["latchkey_enrollment"], 1);
            assert_eq!(v["guest_id"], GuestId([3; 16]).to_string());
            assert_eq!(v["enrollment_key"], "ab".repeat(32));
            assert_eq!(v["broker_url"], "mqtts://u:p\"w@h:8883");
            assert_eq!(v["locks"][1], LockId([2; 16]).to_string());
            assert_eq!(v["company_id"], 76);
        }
    }
}
