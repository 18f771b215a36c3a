//! RSA for grants, revocations and events (spec §4.4): RSA-OAEP (SHA-256, MGF1-SHA-256,
//! label = the grant header) to wrap session keys to a lock, RSA-PSS (SHA-256, MGF1-SHA-256,
//! salt 32) over `DS || message-prefix` for signatures. Moduli of 2048–4096 bits, e = 65537.
//!
//! The operations are carried out by a pluggable [`RsaProvider`](super::provider) chosen
//! when a key is loaded: RustCrypto `rsa` by default (pure Rust, `no_std`), aws-lc-rs with
//! the `aws-lc-rs` feature. The constructors without a provider argument use the default;
//! the `*_with` constructors take one. Whatever the provider, the key checks here (2048–4096
//! bits, e = 65537) are the same. See [`provider`](super::provider) for how each provider
//! uses the caller's RNG (RustCrypto does; aws-lc-rs draws from its own DRBG).

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;

use rsa::pkcs1::{RsaPrivateKeyRef, RsaPublicKeyRef};
use rsa::pkcs8::der::Decode;
use rsa::pkcs8::{PrivateKeyInfoRef, SubjectPublicKeyInfoRef};
use zeroize::Zeroizing;

use super::SessionKey;
use super::provider::{RsaPrivateKeyOps, RsaProvider, RsaPublicKeyOps, default_rsa_provider};
use crate::constants::{RSA_MAX_BYTES, RSA_MIN_BYTES};

/// Domain separation of the LockGrant signature.
pub const DS_LOCK_GRANT: &[u8] = b"latchkey/v1 lock-grant\0";
/// Domain separation of the Revocation signature.
pub const DS_REVOCATION: &[u8] = b"latchkey/v1 revocation\0";
/// Domain separation of the LockEvent signature.
pub const DS_LOCK_EVENT: &[u8] = b"latchkey/v1 lock-event\0";
/// Domain separation of the LockStatus signature.
pub const DS_LOCK_STATUS: &[u8] = b"latchkey/v1 lock-status\0";

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

/// The acceptance check for every key, whichever provider holds it, on the encoding before
/// any provider sees it: the modulus must be 2048–4096 bits and e = 65537.
fn check_numbers(n: &[u8], e: &[u8]) -> Result<(), KeyError> {
    let strip = |x: &[u8]| x.iter().skip_while(|b| **b == 0).count();
    let size = strip(n);
    let e_ok = e.iter().skip_while(|b| **b == 0).eq([1u8, 0, 1].iter());
    if (RSA_MIN_BYTES..=RSA_MAX_BYTES).contains(&size) && e_ok {
        Ok(())
    } else {
        Err(KeyError::Unsupported)
    }
}

/// [`check_numbers`] on an SPKI DER encoding.
fn check_spki(der: &[u8]) -> Result<(), KeyError> {
    let spki = SubjectPublicKeyInfoRef::from_der(der).map_err(|_| KeyError::Encoding)?;
    let bits = spki
        .subject_public_key
        .as_bytes()
        .ok_or(KeyError::Encoding)?;
    let k = RsaPublicKeyRef::from_der(bits).map_err(|_| KeyError::Encoding)?;
    check_numbers(k.modulus.as_bytes(), k.public_exponent.as_bytes())
}

/// [`check_numbers`] on a PKCS#8 DER encoding.
fn check_pkcs8(der: &[u8]) -> Result<(), KeyError> {
    let info = PrivateKeyInfoRef::from_der(der).map_err(|_| KeyError::Encoding)?;
    let k =
        RsaPrivateKeyRef::from_der(info.private_key.as_bytes()).map_err(|_| KeyError::Encoding)?;
    check_numbers(k.modulus.as_bytes(), k.public_exponent.as_bytes())
}

/// An RSA private key (issuer signing key or lock key), held by an
/// [`RsaProvider`]. Zeroized on drop by the provider; `Debug` prints no key material.
pub struct RsaPrivateKey {
    ops: Box<dyn RsaPrivateKeyOps>,
    /// The public half, checked and cached at load.
    public: RsaPublicKey,
}

/// An RSA public key, held by an [`RsaProvider`]. Two keys are equal when their SPKI
/// encodings are, whichever providers hold them.
pub struct RsaPublicKey {
    ops: Box<dyn RsaPublicKeyOps>,
    spki: Vec<u8>,
}

impl RsaPrivateKey {
    /// Generates a key of `bits` (2048–4096) with e = 65537, with the default provider.
    pub fn generate<R: rand_core::CryptoRng + ?Sized>(
        rng: &mut R,
        bits: usize,
    ) -> Result<Self, KeyError> {
        Self::generate_with(default_rsa_provider(), rng, bits)
    }

    /// Generates a key of `bits` (2048–4096) with e = 65537, held by `provider`.
    pub fn generate_with<R: rand_core::CryptoRng + ?Sized>(
        provider: &'static dyn RsaProvider,
        mut rng: &mut R,
        bits: usize,
    ) -> Result<Self, KeyError> {
        if !(RSA_MIN_BYTES * 8..=RSA_MAX_BYTES * 8).contains(&bits) {
            return Err(KeyError::Unsupported);
        }
        Self::checked(provider.generate(&mut rng, bits)?)
    }

    /// Loads a PKCS#8 DER private key with the default provider.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, KeyError> {
        Self::from_pkcs8_der_with(default_rsa_provider(), der)
    }

    /// Loads a PKCS#8 DER private key into `provider`.
    pub fn from_pkcs8_der_with(
        provider: &'static dyn RsaProvider,
        der: &[u8],
    ) -> Result<Self, KeyError> {
        check_pkcs8(der)?;
        Self::checked(provider.load_private_key(der)?)
    }

    fn checked(ops: Box<dyn RsaPrivateKeyOps>) -> Result<Self, KeyError> {
        let public = RsaPublicKey::from_ops(ops.public_key()?)?;
        Ok(Self { ops, public })
    }

    /// The same key, held by `provider` (re-encoded through PKCS#8).
    pub fn with_provider(&self, provider: &'static dyn RsaProvider) -> Result<Self, KeyError> {
        Self::from_pkcs8_der_with(provider, &self.to_pkcs8_der()?)
    }

    /// The provider holding this key.
    pub fn provider(&self) -> &'static dyn RsaProvider {
        self.ops.provider()
    }

    /// The PKCS#8 DER encoding (secret: zeroized when dropped).
    pub fn to_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        self.ops.to_pkcs8_der()
    }

    /// The public half, held by the same provider.
    pub fn public_key(&self) -> RsaPublicKey {
        self.public.clone()
    }

    /// Modulus length in bytes (= signature and ciphertext length).
    pub fn size(&self) -> usize {
        self.ops.size()
    }

    /// RSA-PSS signature over `ds || msg`.
    pub fn sign<R: rand_core::CryptoRng + ?Sized>(
        &self,
        mut rng: &mut R,
        ds: &[u8],
        msg: &[u8],
    ) -> Vec<u8> {
        // Signing only fails for a modulus too small for the encoding, which keys loaded here
        // cannot have; an empty signature then fails verification instead of panicking.
        self.ops
            .sign_pss_sha256(&mut rng, ds, msg)
            .unwrap_or_default()
    }

    /// RSA-OAEP decryption of a wrapped session key with `label`.
    pub fn unwrap_session_key<R: rand_core::CryptoRng + ?Sized>(
        &self,
        mut rng: &mut R,
        label: &[u8],
        wrapped: &[u8],
    ) -> Option<SessionKey> {
        let pt = self.ops.decrypt_oaep_sha256(&mut rng, label, wrapped)?;
        let raw: [u8; 32] = pt.as_slice().try_into().ok()?;
        Some(SessionKey::from_bytes(raw))
    }
}

impl RsaPublicKey {
    /// Loads an SPKI DER public key with the default provider.
    pub fn from_public_key_der(der: &[u8]) -> Result<Self, KeyError> {
        Self::from_public_key_der_with(default_rsa_provider(), der)
    }

    /// Loads an SPKI DER public key into `provider`.
    pub fn from_public_key_der_with(
        provider: &'static dyn RsaProvider,
        der: &[u8],
    ) -> Result<Self, KeyError> {
        check_spki(der)?;
        Self::from_ops(provider.load_public_key(der)?)
    }

    fn from_ops(ops: Box<dyn RsaPublicKeyOps>) -> Result<Self, KeyError> {
        let spki = ops.to_spki_der()?;
        check_spki(&spki)?;
        Ok(Self { ops, spki })
    }

    /// The same key, held by `provider`.
    pub fn with_provider(&self, provider: &'static dyn RsaProvider) -> Result<Self, KeyError> {
        Self::from_public_key_der_with(provider, &self.spki)
    }

    /// The provider holding this key.
    pub fn provider(&self) -> &'static dyn RsaProvider {
        self.ops.provider()
    }

    /// The SPKI DER encoding.
    pub fn to_public_key_der(&self) -> Result<Vec<u8>, KeyError> {
        Ok(self.spki.clone())
    }

    /// Modulus length in bytes.
    pub fn size(&self) -> usize {
        self.ops.size()
    }

    /// Verifies an RSA-PSS signature over `ds || msg`.
    pub fn verify(&self, ds: &[u8], msg: &[u8], sig: &[u8]) -> bool {
        self.ops.verify_pss_sha256(ds, msg, sig)
    }

    /// RSA-OAEP encryption of a session key with `label`.
    pub fn wrap_session_key<R: rand_core::CryptoRng + ?Sized>(
        &self,
        mut rng: &mut R,
        label: &[u8],
        k_s: &SessionKey,
    ) -> Option<Vec<u8>> {
        self.ops.encrypt_oaep_sha256(&mut rng, label, k_s.expose())
    }
}

impl Clone for RsaPrivateKey {
    fn clone(&self) -> Self {
        Self {
            ops: self.ops.clone_box(),
            public: self.public.clone(),
        }
    }
}

impl Clone for RsaPublicKey {
    fn clone(&self) -> Self {
        Self {
            ops: self.ops.clone_box(),
            spki: self.spki.clone(),
        }
    }
}

impl PartialEq for RsaPublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.spki == other.spki
    }
}

impl Eq for RsaPublicKey {}

impl fmt::Debug for RsaPrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "RsaPrivateKey({} bits, {}, <redacted>)",
            self.size() * 8,
            self.provider().name()
        )
    }
}

impl fmt::Debug for RsaPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "RsaPublicKey({} bits, {})",
            self.size() * 8,
            self.provider().name()
        )
    }
}
