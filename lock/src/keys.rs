//! Key files (docs/daemons.md, "Key files"): RSA keys as PEM, private keys PKCS#8 in files
//! only the owner may read.

use std::path::{Path, PathBuf};

use latchkey::crypto::provider::{RsaProvider, fastest_rsa_provider};
use latchkey::crypto::rsa::{KeyError, RsaPrivateKey, RsaPublicKey};
use zeroize::Zeroizing;

/// PEM label of a PKCS#8 private key.
const PRIVATE_LABEL: &str = "PRIVATE KEY";
/// PEM label of an SPKI public key.
const PUBLIC_LABEL: &str = "PUBLIC KEY";

/// Why a key file could not be used. Every message names the file.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// The file cannot be read (missing, no permission, …).
    #[error("cannot read key file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A private key file that the group or others may read: refused, the key may leak.
    #[error(
        "private key file {path} is readable by group or others (mode {mode:04o}); \
         restrict it with `chmod 600 {path}`"
    )]
    TooOpen {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Not PEM, or PEM with an unexpected label.
    #[error("key file {path} is not a PEM `{expected}` block: {detail}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// The label looked for.
        expected: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// PEM that does not hold a usable RSA key.
    #[error("key file {path}: {source}")]
    Key {
        /// The file.
        path: PathBuf,
        /// The core's verdict.
        #[source]
        source: KeyError,
    },
}

/// Refuses a private key (or other secret) file that the group or others may read.
///
/// Only meaningful on Unix; elsewhere every file passes.
pub fn check_private_file_mode(path: &Path) -> Result<(), KeyFileError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(path).map_err(|source| KeyFileError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(KeyFileError::TooOpen {
                path: path.to_owned(),
                mode,
            });
        }
    }
    Ok(())
}

fn read(path: &Path) -> Result<Zeroizing<Vec<u8>>, KeyFileError> {
    std::fs::read(path)
        .map(Zeroizing::new)
        .map_err(|source| KeyFileError::Read {
            path: path.to_owned(),
            source,
        })
}

fn decode_pem(
    path: &Path,
    text: &[u8],
    expected: &'static str,
) -> Result<Zeroizing<Vec<u8>>, KeyFileError> {
    let pem_err = |detail: String| KeyFileError::Pem {
        path: path.to_owned(),
        expected,
        detail,
    };
    let (label, der) = pem_rfc7468::decode_vec(text).map_err(|e| pem_err(e.to_string()))?;
    let der = Zeroizing::new(der);
    if label != expected {
        let hint = match label {
            "RSA PRIVATE KEY" => {
                " (PKCS#1; convert with `openssl pkcs8 -topk8 -nocrypt -in OLD -out NEW`)"
            }
            "RSA PUBLIC KEY" => " (PKCS#1; convert with `openssl rsa -RSAPublicKey_in -pubout`)",
            "ENCRYPTED PRIVATE KEY" => " (encrypted keys are not supported)",
            _ => "",
        };
        return Err(pem_err(format!("found `{label}`{hint}")));
    }
    Ok(der)
}

/// The RSA provider the daemon loads its keys into (reported in the startup log line):
/// aws-lc-rs with this crate's default `aws-lc-rs` feature (about ten times faster OAEP
/// decryption, the bulk of a grant install), else the core's RustCrypto default.
pub fn rsa_provider() -> &'static dyn RsaProvider {
    fastest_rsa_provider()
}

/// Loads a PKCS#8 PEM RSA private key, refusing a file that the group or others may read.
pub fn load_private_key(path: &Path) -> Result<RsaPrivateKey, KeyFileError> {
    check_private_file_mode(path)?;
    let text = read(path)?;
    let der = decode_pem(path, &text, PRIVATE_LABEL)?;
    RsaPrivateKey::from_pkcs8_der_with(rsa_provider(), &der).map_err(|source| KeyFileError::Key {
        path: path.to_owned(),
        source,
    })
}

/// Loads an SPKI PEM RSA public key.
pub fn load_public_key(path: &Path) -> Result<RsaPublicKey, KeyFileError> {
    let text = read(path)?;
    let der = decode_pem(path, &text, PUBLIC_LABEL)?;
    RsaPublicKey::from_public_key_der_with(rsa_provider(), &der).map_err(|source| {
        KeyFileError::Key {
            path: path.to_owned(),
            source,
        }
    })
}

/// PEM text of a private key (PKCS#8). The caller writes it with mode 0600.
pub fn private_key_pem(key: &RsaPrivateKey) -> Result<Zeroizing<String>, KeyError> {
    let der = key.to_pkcs8_der()?;
    pem_rfc7468::encode_string(PRIVATE_LABEL, pem_rfc7468::LineEnding::LF, &der)
        .map(Zeroizing::new)
        .map_err(|_| KeyError::Encoding)
}

/// PEM text of a public key (SPKI).
pub fn public_key_pem(key: &RsaPublicKey) -> Result<String, KeyError> {
    let der = key.to_public_key_der()?;
    pem_rfc7468::encode_string(PUBLIC_LABEL, pem_rfc7468::LineEnding::LF, &der)
        .map_err(|_| KeyError::Encoding)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_key() -> RsaPrivateKey {
        let der = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../vectors/keys/lock-a.pk8.der"
        ))
        .unwrap();
        RsaPrivateKey::from_pkcs8_der(&der).unwrap()
    }

    #[cfg(unix)]
    fn write_mode(path: &Path, text: &str, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(path, text).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn private_key_round_trips_through_a_0600_pem_file() {
        let dir = tempfile::tempdir().unwrap();
        let key = test_key();
        let path = dir.path().join("lock.key.pem");
        write_mode(&path, &private_key_pem(&key).unwrap(), 0o600);
        let loaded = load_private_key(&path).unwrap();
        assert_eq!(
            public_key_pem(&loaded.public_key()).unwrap(),
            public_key_pem(&key.public_key()).unwrap()
        );
    }

    #[cfg(unix)]
    #[test]
    fn group_or_world_readable_private_key_is_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock.key.pem");
        for mode in [0o640, 0o604, 0o644] {
            write_mode(&path, &private_key_pem(&test_key()).unwrap(), mode);
            let err = load_private_key(&path).unwrap_err();
            let msg = err.to_string();
            assert!(matches!(err, KeyFileError::TooOpen { .. }), "{msg}");
            assert!(msg.contains("chmod 600"), "{msg}");
            assert!(msg.contains(&path.display().to_string()), "{msg}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn wrong_pem_labels_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.pem");
        let public = public_key_pem(&test_key().public_key()).unwrap();
        write_mode(&path, &public, 0o600);
        let msg = load_private_key(&path).unwrap_err().to_string();
        assert!(msg.contains("found `PUBLIC KEY`"), "{msg}");
        write_mode(&path, "not pem at all", 0o600);
        assert!(matches!(
            load_public_key(&path),
            Err(KeyFileError::Pem { .. })
        ));
        let missing = dir.path().join("missing.pem");
        assert!(matches!(
            load_public_key(&missing),
            Err(KeyFileError::Read { .. })
        ));
    }
}
