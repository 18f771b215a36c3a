//! The enrollment bundle: what the issuer hands a guest at enrollment (docs/daemons.md,
//! "Issuer", `enroll-guest`).
//!
//! ```json
//! {"latchkey_enrollment": 1, "guest_id": "<32 hex>", "enrollment_key": "<64 hex>",
//!  "broker_url": "mqtts://broker:8883", "locks": ["<32 hex>", …], "company_id": 65535}
//! ```
//!
//! It holds the guest's secret enrollment key, so it is stored mode 0600 and a copy that
//! group or others can read is refused.

use std::fmt;
use std::path::{Path, PathBuf};

use latchkey::crypto::EnrollmentKey;
use latchkey::{GuestId, IdParseError, LockId};
use latchkey_transport::mqtt::{MqttUrl, MqttUrlError};
use serde_json::{Map, Value};
use zeroize::{Zeroize, Zeroizing};

use crate::private_file::{ReadPrivateError, read_private, write_private};

/// The only bundle format version this guest reads and writes.
pub const BUNDLE_VERSION: u64 = 1;

/// Largest bundle accepted: a real one is well under 4 KiB even with many locks.
pub const MAX_BUNDLE_LEN: u64 = 64 * 1024;

/// Why an enrollment bundle was refused. One variant per malformation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    /// The file could not be read.
    #[error("cannot read enrollment bundle {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file could not be written.
    #[error("cannot write enrollment bundle {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Group or others may read the file, which holds a secret key.
    #[error(
        "enrollment bundle {} is readable by group or others (mode {mode:04o}) but holds \
         this guest's secret enrollment key; fix it with: chmod 600 {}",
        path.display(),
        path.display()
    )]
    NotPrivate {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A directory or another non-regular file.
    #[error("enrollment bundle {} is not a regular file", path.display())]
    NotAFile {
        /// The path.
        path: PathBuf,
    },
    /// Bigger than [`MAX_BUNDLE_LEN`].
    #[error("enrollment bundle is {len} bytes, more than the {max}-byte limit")]
    TooLarge {
        /// Its size.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// Not JSON at all.
    #[error("enrollment bundle is not valid JSON: {0}")]
    Json(#[source] serde_json::Error),
    /// JSON, but not an object.
    #[error("enrollment bundle must be a JSON object")]
    NotAnObject,
    /// An object without the `latchkey_enrollment` marker.
    #[error("not a Latchkey enrollment bundle: it has no \"latchkey_enrollment\" field")]
    NotABundle,
    /// A version this guest does not read.
    #[error("unsupported enrollment bundle version {0}: this guest reads version {BUNDLE_VERSION}")]
    UnsupportedVersion(u64),
    /// A required field is absent.
    #[error("enrollment bundle lacks the required field \"{0}\"")]
    MissingField(&'static str),
    /// A field has the wrong JSON type.
    #[error("enrollment bundle field \"{field}\" must be {expected}")]
    WrongType {
        /// The field.
        field: &'static str,
        /// What it must be.
        expected: &'static str,
    },
    /// `guest_id` is not 32 lowercase hex digits.
    #[error("enrollment bundle field \"guest_id\": {0} (lowercase)")]
    BadGuestId(IdParseError),
    /// `enrollment_key` is not 64 hex digits.
    #[error("enrollment bundle field \"enrollment_key\" must be 64 hex digits (32 bytes)")]
    BadEnrollmentKey,
    /// `broker_url` is not an `mqtt://` or `mqtts://` URL.
    #[error("enrollment bundle field \"broker_url\": {0}")]
    BadBrokerUrl(MqttUrlError),
    /// An entry of `locks` is not 32 lowercase hex digits.
    #[error("enrollment bundle field \"locks\", entry {index}: {source} (lowercase)")]
    BadLockId {
        /// Position in the array.
        index: usize,
        /// Why.
        source: IdParseError,
    },
    /// A lock is listed twice.
    #[error("enrollment bundle field \"locks\" lists lock {0} twice")]
    DuplicateLock(LockId),
    /// No readable QR code in an image.
    #[error("cannot read an enrollment QR code from {}: {detail}", path.display())]
    QrImage {
        /// The image.
        path: PathBuf,
        /// Why.
        detail: String,
    },
    /// `company_id` is not a 16-bit company identifier.
    #[error(
        "enrollment bundle field \"company_id\" must be an integer in 0..=65535 or a \
         \"0x…\" hex string, got {0}"
    )]
    BadCompanyId(String),
}

/// A guest's enrollment: identity, secret key, broker and the locks it may open.
///
/// `Debug` never shows the enrollment key or the broker password (LK-CRY-3).
#[derive(Clone)]
pub struct EnrollmentBundle {
    guest_id: GuestId,
    enrollment_key: EnrollmentKey,
    broker_url: MqttUrl,
    // As written, so `save` reproduces credentials the parsed form hides.
    broker_url_text: Zeroizing<String>,
    locks: Vec<LockId>,
    company_id: u16,
}

impl EnrollmentBundle {
    /// A bundle from its parts; `broker_url` is checked like a parsed one.
    pub fn new(
        guest_id: GuestId,
        enrollment_key: EnrollmentKey,
        broker_url: &str,
        locks: Vec<LockId>,
        company_id: u16,
    ) -> Result<Self, BundleError> {
        let url = MqttUrl::parse(broker_url).map_err(BundleError::BadBrokerUrl)?;
        for (i, l) in locks.iter().enumerate() {
            if locks[..i].contains(l) {
                return Err(BundleError::DuplicateLock(*l));
            }
        }
        Ok(Self {
            guest_id,
            enrollment_key,
            broker_url: url,
            broker_url_text: Zeroizing::new(broker_url.to_owned()),
            locks,
            company_id,
        })
    }

    /// Parses the JSON text of a bundle. Unknown fields are ignored (a later minor
    /// addition must not lock old guests out); everything listed in the module docs is
    /// required and checked.
    pub fn parse(text: &str) -> Result<Self, BundleError> {
        let value: Value = serde_json::from_str(text).map_err(BundleError::Json)?;
        let Value::Object(mut obj) = value else {
            return Err(BundleError::NotAnObject);
        };
        let result = Self::from_object(&mut obj);
        // The key's hex text was taken out above; wipe any copy left in the tree.
        wipe(obj);
        result
    }

    fn from_object(obj: &mut Map<String, Value>) -> Result<Self, BundleError> {
        match obj.get("latchkey_enrollment") {
            None => return Err(BundleError::NotABundle),
            Some(v) => match v.as_u64() {
                Some(BUNDLE_VERSION) => {}
                Some(other) => return Err(BundleError::UnsupportedVersion(other)),
                None => {
                    return Err(BundleError::WrongType {
                        field: "latchkey_enrollment",
                        expected: "the integer 1",
                    });
                }
            },
        }
        let guest_id = str_field(obj, "guest_id")?
            .parse::<GuestId>()
            .map_err(BundleError::BadGuestId)?;
        let enrollment_key = match obj.remove("enrollment_key") {
            None => return Err(BundleError::MissingField("enrollment_key")),
            Some(Value::String(s)) => {
                let s = Zeroizing::new(s);
                let mut bytes = Zeroizing::new([0u8; 32]);
                hex::decode_to_slice(s.as_bytes(), bytes.as_mut_slice())
                    .map_err(|_| BundleError::BadEnrollmentKey)?;
                EnrollmentKey::from_bytes(*bytes)
            }
            Some(_) => {
                return Err(BundleError::WrongType {
                    field: "enrollment_key",
                    expected: "a string of 64 hex digits",
                });
            }
        };
        let broker_url = str_field(obj, "broker_url")?.to_owned();
        let locks = match obj.get("locks") {
            None => return Err(BundleError::MissingField("locks")),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(index, item)| match item {
                    Value::String(s) => s
                        .parse::<LockId>()
                        .map_err(|source| BundleError::BadLockId { index, source }),
                    _ => Err(BundleError::WrongType {
                        field: "locks",
                        expected: "an array of lock id strings (32 hex digits each)",
                    }),
                })
                .collect::<Result<Vec<_>, _>>()?,
            Some(_) => {
                return Err(BundleError::WrongType {
                    field: "locks",
                    expected: "an array of lock id strings (32 hex digits each)",
                });
            }
        };
        let company_id = match obj.get("company_id") {
            None => return Err(BundleError::MissingField("company_id")),
            Some(v) => company_id(v)?,
        };
        Self::new(guest_id, enrollment_key, &broker_url, locks, company_id)
    }

    /// Reads and parses a bundle file, refusing one that group or others can read.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, BundleError> {
        let path = path.as_ref();
        let text =
            read_private(path, MAX_BUNDLE_LEN).map_err(|e| read_error(path, e, MAX_BUNDLE_LEN))?;
        Self::parse(&text)
    }

    /// Reads the bundle from a PNG of its QR code (`latchkey-issuer enroll-guest
    /// --qr-png`), refusing an image that group or others can read.
    pub fn load_qr_png(path: impl AsRef<Path>) -> Result<Self, BundleError> {
        Self::parse(&crate::qr::read_qr_png(path.as_ref())?)
    }

    /// Writes the bundle to `path`, mode 0600, atomically (temporary file, fsync, rename).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), BundleError> {
        let path = path.as_ref();
        write_private(path, self.to_json().as_bytes()).map_err(|source| BundleError::Write {
            path: path.to_owned(),
            source,
        })
    }

    /// The bundle as JSON text (it contains the secret key; never log it).
    pub fn to_json(&self) -> Zeroizing<String> {
        let key_hex = Zeroizing::new(hex::encode(self.enrollment_key.expose()));
        let url = Zeroizing::new(
            serde_json::to_string(self.broker_url_text.as_str()).unwrap_or_default(),
        );
        let locks: Vec<String> = self.locks.iter().map(|l| format!("\"{l}\"")).collect();
        let mut out = Zeroizing::new(String::with_capacity(256 + 36 * self.locks.len()));
        out.push_str("{\n  \"latchkey_enrollment\": ");
        out.push_str(&BUNDLE_VERSION.to_string());
        out.push_str(",\n  \"guest_id\": \"");
        out.push_str(&self.guest_id.to_string());
        out.push_str("\",\n  \"enrollment_key\": \"");
        out.push_str(&key_hex);
        out.push_str("\",\n  \"broker_url\": ");
        out.push_str(&url);
        out.push_str(",\n  \"locks\": [");
        out.push_str(&locks.join(", "));
        out.push_str("],\n  \"company_id\": ");
        out.push_str(&self.company_id.to_string());
        out.push_str("\n}\n");
        out
    }

    /// This guest's identity.
    pub fn guest_id(&self) -> GuestId {
        self.guest_id
    }

    /// The secret key shared with the issuer.
    pub fn enrollment_key(&self) -> &EnrollmentKey {
        &self.enrollment_key
    }

    /// The issuer's broker.
    pub fn broker_url(&self) -> &MqttUrl {
        &self.broker_url
    }

    /// The locks this guest was enrolled for (empty: the issuer did not say).
    pub fn locks(&self) -> &[LockId] {
        &self.locks
    }

    /// The Bluetooth company id to advertise under.
    pub fn company_id(&self) -> u16 {
        self.company_id
    }

    /// Whether the enrollment covers `lock` (an empty list covers every lock).
    pub fn covers(&self, lock: &LockId) -> bool {
        self.locks.is_empty() || self.locks.contains(lock)
    }
}

impl fmt::Debug for EnrollmentBundle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnrollmentBundle")
            .field("guest_id", &self.guest_id)
            .field("enrollment_key", &self.enrollment_key)
            .field("broker_url", &self.broker_url)
            .field("locks", &self.locks)
            .field("company_id", &self.company_id)
            .finish()
    }
}

/// A private file's read error as a bundle error.
pub(crate) fn read_error(path: &Path, e: ReadPrivateError, max: u64) -> BundleError {
    match e {
        ReadPrivateError::Io(source) => BundleError::Read {
            path: path.to_owned(),
            source,
        },
        ReadPrivateError::NotPrivate(mode) => BundleError::NotPrivate {
            path: path.to_owned(),
            mode,
        },
        ReadPrivateError::NotAFile => BundleError::NotAFile {
            path: path.to_owned(),
        },
        ReadPrivateError::TooLarge(len) => BundleError::TooLarge { len, max },
    }
}

fn str_field<'a>(obj: &'a Map<String, Value>, field: &'static str) -> Result<&'a str, BundleError> {
    match obj.get(field) {
        None => Err(BundleError::MissingField(field)),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(BundleError::WrongType {
            field,
            expected: "a string",
        }),
    }
}

fn company_id(v: &Value) -> Result<u16, BundleError> {
    let parsed = match v {
        Value::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
        Value::String(s) => s
            .strip_prefix("0x")
            .or_else(|| s.strip_prefix("0X"))
            .filter(|h| !h.is_empty() && h.len() <= 4)
            .and_then(|h| u16::from_str_radix(h, 16).ok()),
        _ => None,
    };
    parsed.ok_or_else(|| BundleError::BadCompanyId(v.to_string()))
}

/// Overwrites every string left in a parsed bundle before it is freed.
fn wipe(obj: Map<String, Value>) {
    for (mut k, v) in obj {
        k.zeroize();
        wipe_value(v);
    }
}

fn wipe_value(v: Value) {
    match v {
        Value::String(mut s) => s.zeroize(),
        Value::Array(items) => items.into_iter().for_each(wipe_value),
        Value::Object(obj) => wipe(obj),
        _ => {}
    }
}
