//! RSA key files: PKCS#8 private keys (`BEGIN PRIVATE KEY`, mode 0600) and SPKI public keys
//! (`BEGIN PUBLIC KEY`), PEM ⇄ DER with `pem-rfc7468`, DER ⇄ key with the core.
//!
//! Keys are loaded into [`rsa_provider`]: aws-lc-rs with this crate's default `aws-lc-rs`
//! feature (about ten times faster RSA-PSS signing, the issuer's per-grant cost), else the
//! core's RustCrypto default.

use std::path::Path;

use latchkey::crypto::provider::{RsaProvider, fastest_rsa_provider};
use latchkey::crypto::rsa::{RsaPrivateKey, RsaPublicKey};
use pem_rfc7468::LineEnding;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::error::IssuerdError;
use crate::fsutil;

const PRIVATE_LABEL: &str = "PRIVATE KEY";
const PUBLIC_LABEL: &str = "PUBLIC KEY";

/// The RSA provider the daemon loads its keys into (reported in the startup log line).
pub fn rsa_provider() -> &'static dyn RsaProvider {
    fastest_rsa_provider()
}

/// The PKCS#8 PEM text of a private key (wiped when dropped).
pub fn private_key_pem(key: &RsaPrivateKey) -> Result<Zeroizing<String>, IssuerdError> {
    let der = key.to_pkcs8_der().map_err(IssuerdError::Key)?;
    pem_rfc7468::encode_string(PRIVATE_LABEL, LineEnding::LF, &der)
        .map(Zeroizing::new)
        .map_err(|e| IssuerdError::Config(format!("PEM encoding failed: {e}")))
}

/// The SPKI PEM text of a public key.
pub fn public_key_pem(key: &RsaPublicKey) -> Result<String, IssuerdError> {
    let der = key.to_public_key_der().map_err(IssuerdError::Key)?;
    pem_rfc7468::encode_string(PUBLIC_LABEL, LineEnding::LF, &der)
        .map_err(|e| IssuerdError::Config(format!("PEM encoding failed: {e}")))
}

/// Parses SPKI PEM text into a key, or says what is wrong with it.
pub(crate) fn decode_public_pem(pem: &[u8]) -> Result<RsaPublicKey, String> {
    let (label, der) = pem_rfc7468::decode_vec(pem).map_err(|e| format!("PEM: {e}"))?;
    if label != PUBLIC_LABEL {
        return Err(format!(
            "expected a `-----BEGIN {PUBLIC_LABEL}-----` PEM block, found `{label}`"
        ));
    }
    RsaPublicKey::from_public_key_der_with(rsa_provider(), &der).map_err(|e| e.to_string())
}

/// Parses SPKI PEM text; `what` and `path` only label the error.
pub fn parse_public_key_pem(
    pem: &[u8],
    what: &'static str,
    path: &Path,
) -> Result<RsaPublicKey, IssuerdError> {
    decode_public_pem(pem).map_err(|e| IssuerdError::bad_file(what, path, e))
}

/// Loads a private key file, refusing one that group or others can read.
pub fn load_private_key(path: &Path, what: &'static str) -> Result<RsaPrivateKey, IssuerdError> {
    let pem = fsutil::read_private(path, what)?;
    let (label, der) =
        pem_rfc7468::decode_vec(&pem).map_err(|e| IssuerdError::bad_file(what, path, e))?;
    let der = Zeroizing::new(der);
    if label != PRIVATE_LABEL {
        return Err(IssuerdError::bad_file(
            what,
            path,
            format!(
                "expected a PKCS#8 `-----BEGIN {PRIVATE_LABEL}-----` PEM block, found `{label}`"
            ),
        ));
    }
    RsaPrivateKey::from_pkcs8_der_with(rsa_provider(), &der)
        .map_err(|e| IssuerdError::bad_file(what, path, e))
}

/// Loads a public key file.
pub fn load_public_key(path: &Path, what: &'static str) -> Result<RsaPublicKey, IssuerdError> {
    let pem = std::fs::read(path).map_err(IssuerdError::io("read", path))?;
    parse_public_key_pem(&pem, what, path)
}

/// SHA-256 of the SPKI DER, hex: what an operator compares to check a key out of band.
pub fn fingerprint(key: &RsaPublicKey) -> Result<String, IssuerdError> {
    let der = key.to_public_key_der().map_err(IssuerdError::Key)?;
    Ok(hex::encode(Sha256::digest(&der)))
}
