//! RSA for grants, revocations and events (spec §4.4): RSA-OAEP (SHA-256, MGF1-SHA-256,
//! label = the grant header) to wrap session keys to a lock, RSA-PSS (SHA-256, MGF1-SHA-256,
//! salt 32) over `DS || message-prefix` for signatures. Moduli of 2048–4096 bits, e = 65537.
//!
//! Private-key operations use blinding with the caller's RNG: `rsa` 0.10 computes on
//! `crypto-bigint` with constant-time arithmetic, the fix for RUSTSEC-2023-0071 (Marvin).

use alloc::vec::Vec;
use core::fmt;

use rsa::oaep::Oaep;
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use rsa::pss::Pss;
use rsa::traits::PublicKeyParts;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::SessionKey;
use crate::constants::{RSA_MAX_BYTES, RSA_MIN_BYTES};

/// Domain separation of the LockGrant signature.
pub const DS_LOCK_GRANT: &[u8] = b"latchkey/v1 lock-grant\0";
/// Domain separation of the Revocation signature.
pub const DS_REVOCATION: &[u8] = b"latchkey/v1 revocation\0";
/// Domain separation of the LockEvent signature.
pub const DS_LOCK_EVENT: &[u8] = b"latchkey/v1 lock-event\0";

/// PSS salt length in bytes.
pub const PSS_SALT_LEN: usize = 32;

/// A key could not be loaded or generated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyError {
    /// The DER/PEM encoding is not a PKCS#8 / SPKI RSA key.
    Encoding,
    /// The modulus is outside 2048–4096 bits, or the exponent is not 65537.
    Unsupported,
    /// Key generation failed.
    Generation,
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyError::Encoding => "not a PKCS#8/SPKI RSA key",
            KeyError::Unsupported => "RSA key must be 2048-4096 bits with e = 65537",
            KeyError::Generation => "RSA key generation failed",
        })
    }
}

#[cfg(feature = "std")]
impl std::error::Error for KeyError {}

fn check_public(k: &rsa::PublicKey) -> Result<(), KeyError> {
    let size = k.size();
    let e_ok = k
        .e()
        .to_be_bytes()
        .iter()
        .skip_while(|b| **b == 0)
        .eq([1u8, 0, 1].iter());
    if (RSA_MIN_BYTES..=RSA_MAX_BYTES).contains(&size) && e_ok {
        Ok(())
    } else {
        Err(KeyError::Unsupported)
    }
}

/// An RSA private key (issuer signing key or lock key). Zeroized on drop by `rsa`.
#[derive(Clone)]
pub struct RsaPrivateKey(rsa::PrivateKey);

/// An RSA public key.
#[derive(Clone, PartialEq)]
pub struct RsaPublicKey(rsa::PublicKey);

impl RsaPrivateKey {
    /// Generates a key of `bits` (2048–4096) with e = 65537.
    pub fn generate<R: rand_core::CryptoRng + ?Sized>(
        rng: &mut R,
        bits: usize,
    ) -> Result<Self, KeyError> {
        if !(RSA_MIN_BYTES * 8..=RSA_MAX_BYTES * 8).contains(&bits) {
            return Err(KeyError::Unsupported);
        }
        rsa::PrivateKey::new(rng, bits)
            .map(Self)
            .map_err(|_| KeyError::Generation)
    }

    /// Loads a PKCS#8 DER private key.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, KeyError> {
        let k = rsa::PrivateKey::from_pkcs8_der(der).map_err(|_| KeyError::Encoding)?;
        check_public(k.as_public_key())?;
        Ok(Self(k))
    }

    /// The PKCS#8 DER encoding (secret: zeroized when dropped).
    pub fn to_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        let doc = self.0.to_pkcs8_der().map_err(|_| KeyError::Encoding)?;
        Ok(Zeroizing::new(doc.as_bytes().to_vec()))
    }

    /// The public half.
    pub fn public_key(&self) -> RsaPublicKey {
        RsaPublicKey(self.0.to_public_key())
    }

    /// Modulus length in bytes (= signature and ciphertext length).
    pub fn size(&self) -> usize {
        self.0.as_public_key().size()
    }

    /// RSA-PSS signature over `ds || msg`.
    pub fn sign<R: rand_core::CryptoRng + ?Sized>(
        &self,
        rng: &mut R,
        ds: &[u8],
        msg: &[u8],
    ) -> Vec<u8> {
        let digest = Sha256::new().chain_update(ds).chain_update(msg).finalize();
        // Signing only fails for a modulus too small for the encoding, which keys loaded here
        // cannot have; an empty signature then fails verification instead of panicking.
        self.0
            .sign_with_rng(rng, Pss::<Sha256>::new_with_salt(PSS_SALT_LEN), &digest)
            .unwrap_or_default()
    }

    /// RSA-OAEP decryption of a wrapped session key with `label`.
    pub fn unwrap_session_key<R: rand_core::CryptoRng + ?Sized>(
        &self,
        rng: &mut R,
        label: &[u8],
        wrapped: &[u8],
    ) -> Option<SessionKey> {
        let pt = Zeroizing::new(
            self.0
                .decrypt_blinded(rng, Oaep::<Sha256>::new_with_label(label.to_vec()), wrapped)
                .ok()?,
        );
        let raw: [u8; 32] = pt.as_slice().try_into().ok()?;
        Some(SessionKey::from_bytes(raw))
    }
}

impl RsaPublicKey {
    /// Loads an SPKI DER public key.
    pub fn from_public_key_der(der: &[u8]) -> Result<Self, KeyError> {
        let k = rsa::PublicKey::from_public_key_der(der).map_err(|_| KeyError::Encoding)?;
        check_public(&k)?;
        Ok(Self(k))
    }

    /// The SPKI DER encoding.
    pub fn to_public_key_der(&self) -> Result<Vec<u8>, KeyError> {
        Ok(self
            .0
            .to_public_key_der()
            .map_err(|_| KeyError::Encoding)?
            .as_bytes()
            .to_vec())
    }

    /// Modulus length in bytes.
    pub fn size(&self) -> usize {
        self.0.size()
    }

    /// Verifies an RSA-PSS signature over `ds || msg`.
    pub fn verify(&self, ds: &[u8], msg: &[u8], sig: &[u8]) -> bool {
        let digest = Sha256::new().chain_update(ds).chain_update(msg).finalize();
        self.0
            .verify(Pss::<Sha256>::new_with_salt(PSS_SALT_LEN), &digest, sig)
            .is_ok()
    }

    /// RSA-OAEP encryption of a session key with `label`.
    pub fn wrap_session_key<R: rand_core::CryptoRng + ?Sized>(
        &self,
        rng: &mut R,
        label: &[u8],
        k_s: &SessionKey,
    ) -> Option<Vec<u8>> {
        self.0
            .encrypt(
                rng,
                Oaep::<Sha256>::new_with_label(label.to_vec()),
                k_s.expose(),
            )
            .ok()
    }
}

impl fmt::Debug for RsaPrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RsaPrivateKey({} bits, <redacted>)", self.size() * 8)
    }
}

impl fmt::Debug for RsaPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RsaPublicKey({} bits)", self.size() * 8)
    }
}
