//! Loading, writing and resolving vector files.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::model::{KeyPair, VectorFile};

/// The vector files, in the order they are run.
pub const FILES: &[&str] = &[
    "primitives.json",
    "frames.json",
    "lock.json",
    "guest.json",
    "issuer.json",
];

/// An error reading or writing vectors.
#[derive(Debug)]
pub enum VectorError {
    /// A file could not be read or written.
    Io(PathBuf, std::io::Error),
    /// A file is not valid vector JSON.
    Json(PathBuf, serde_json::Error),
    /// A `key:` / `pub:` reference names no key of the file.
    UnknownKey(String),
}

impl std::fmt::Display for VectorError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VectorError::Io(p, e) => write!(f, "{}: {e}", p.display()),
            VectorError::Json(p, e) => write!(f, "{}: not a valid vector file: {e}", p.display()),
            VectorError::UnknownKey(k) => write!(f, "vector refers to unknown key `{k}`"),
        }
    }
}

impl std::error::Error for VectorError {}

/// The directory holding the vectors: `$LATCHKEY_VECTORS`, else `vectors/` of the source tree.
pub fn default_dir() -> PathBuf {
    match std::env::var_os("LATCHKEY_VECTORS") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../vectors"),
    }
}

/// Reads every vector file of `dir`.
pub fn load_all(dir: &Path) -> Result<Vec<VectorFile>, VectorError> {
    FILES.iter().map(|f| load(&dir.join(f))).collect()
}

/// Reads one vector file.
pub fn load(path: &Path) -> Result<VectorFile, VectorError> {
    let text = fs::read_to_string(path).map_err(|e| VectorError::Io(path.to_path_buf(), e))?;
    serde_json::from_str(&text).map_err(|e| VectorError::Json(path.to_path_buf(), e))
}

/// The canonical text of a vector file (what is checked in).
pub fn to_text(file: &VectorFile) -> String {
    let mut s = serde_json::to_string_pretty(file).unwrap_or_default();
    s.push('\n');
    s
}

/// Replaces every string `key:NAME` with the private key's PKCS#8 hex and `pub:NAME` with the
/// public key's SPKI hex, so a shim receives self-contained configurations.
pub fn expand_keys(v: &Value, keys: &BTreeMap<String, KeyPair>) -> Result<Value, VectorError> {
    Ok(match v {
        Value::String(s) => {
            if let Some(name) = s.strip_prefix("key:") {
                let k = keys
                    .get(name)
                    .ok_or_else(|| VectorError::UnknownKey(s.clone()))?;
                Value::String(k.pkcs8.clone())
            } else if let Some(name) = s.strip_prefix("pub:") {
                let k = keys
                    .get(name)
                    .ok_or_else(|| VectorError::UnknownKey(s.clone()))?;
                Value::String(k.spki.clone())
            } else {
                v.clone()
            }
        }
        Value::Array(a) => Value::Array(
            a.iter()
                .map(|x| expand_keys(x, keys))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| Ok((k.clone(), expand_keys(x, keys)?)))
                .collect::<Result<_, VectorError>>()?,
        ),
        _ => v.clone(),
    })
}
