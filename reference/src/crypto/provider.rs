//! Pluggable RSA crypto providers, in the style of rustls's `CryptoProvider`.
//!
//! The protocol's RSA operations (spec §4.4: RSA-PSS SHA-256 salt 32 over `DS || msg`,
//! RSA-OAEP SHA-256 with a label) are carried out by an [`RsaProvider`]. A provider loads
//! keys and returns key objects ([`RsaPrivateKeyOps`], [`RsaPublicKeyOps`]) that do the
//! operations; [`RsaPrivateKey`](super::rsa::RsaPrivateKey) and
//! [`RsaPublicKey`](super::rsa::RsaPublicKey) wrap them, so the rest of the crate does not
//! know which provider is in use. Providers are `&'static dyn RsaProvider` values, chosen
//! when a key is loaded (`RsaPrivateKey::from_pkcs8_der_with(provider, der)`).
//!
//! | provider | crate | `no_std` | where |
//! |---|---|---|---|
//! | [`RUSTCRYPTO`](super::rustcrypto::RUSTCRYPTO) (default) | `rsa` 0.10 (pure Rust) | yes | always |
//! | `AWS_LC_RS` | `aws-lc-rs` (AWS-LC, C + assembly) | no | feature `aws-lc-rs` |
//!
//! The checks that decide whether a key is acceptable (2048–4096 bits, e = 65537) live in
//! the wrapper types, not in the providers, so they are enforced identically whichever
//! provider holds the key.
//!
//! **Randomness.** The RustCrypto provider draws PSS salts, OAEP seeds and blinding factors
//! from the caller's RNG, so its outputs are reproducible under a seeded RNG (the
//! conformance vectors are generated with it). The aws-lc-rs provider ignores the caller's
//! RNG for these and draws from AWS-LC's own DRBG (seeded from the operating system); its
//! signatures and ciphertexts are therefore not reproducible, and anything comparing them
//! must compare semantically (verify, decrypt), never byte for byte.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;

use rand_core::CryptoRng;
use zeroize::Zeroizing;

use super::rsa::KeyError;

/// A source of RSA keys: loads PKCS#8 private keys and SPKI public keys, and generates keys.
///
/// Implementations do not check key sizes or exponents; the callers in
/// [`rsa`](super::rsa) do, identically for every provider.
pub trait RsaProvider: Send + Sync + fmt::Debug {
    /// A short stable name (`"rustcrypto"`, `"aws-lc-rs"`), for logs and selection.
    fn name(&self) -> &'static str;

    /// Loads a PKCS#8 (v1) DER RSA private key.
    fn load_private_key(&self, pkcs8_der: &[u8]) -> Result<Box<dyn RsaPrivateKeyOps>, KeyError>;

    /// Loads an SPKI (X.509 SubjectPublicKeyInfo) DER RSA public key.
    fn load_public_key(&self, spki_der: &[u8]) -> Result<Box<dyn RsaPublicKeyOps>, KeyError>;

    /// Generates a key of `bits` bits with e = 65537. `bits` is already within 2048–4096.
    fn generate(
        &self,
        rng: &mut dyn CryptoRng,
        bits: usize,
    ) -> Result<Box<dyn RsaPrivateKeyOps>, KeyError>;
}

/// The private-key operations a provider implements. Implementations zeroize their key
/// material on drop and must not print it in `Debug`.
pub trait RsaPrivateKeyOps: Send + Sync {
    /// The provider that holds this key.
    fn provider(&self) -> &'static dyn RsaProvider;

    /// Modulus length in bytes.
    fn size(&self) -> usize;

    /// The PKCS#8 (v1) DER encoding.
    fn to_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>, KeyError>;

    /// The public half, held by the same provider.
    fn public_key(&self) -> Result<Box<dyn RsaPublicKeyOps>, KeyError>;

    /// RSA-PSS (SHA-256, MGF1-SHA-256, salt 32) over `ds || msg`; `None` if signing failed.
    fn sign_pss_sha256(&self, rng: &mut dyn CryptoRng, ds: &[u8], msg: &[u8]) -> Option<Vec<u8>>;

    /// RSA-OAEP (SHA-256, MGF1-SHA-256) decryption with `label`; `None` on any failure.
    /// The error does not say why (no padding oracle).
    fn decrypt_oaep_sha256(
        &self,
        rng: &mut dyn CryptoRng,
        label: &[u8],
        ciphertext: &[u8],
    ) -> Option<Zeroizing<Vec<u8>>>;

    /// A copy of the key (`Clone` for trait objects).
    fn clone_box(&self) -> Box<dyn RsaPrivateKeyOps>;
}

/// The public-key operations a provider implements.
pub trait RsaPublicKeyOps: Send + Sync {
    /// The provider that holds this key.
    fn provider(&self) -> &'static dyn RsaProvider;

    /// Modulus length in bytes.
    fn size(&self) -> usize;

    /// The SPKI DER encoding (canonical DER).
    fn to_spki_der(&self) -> Result<Vec<u8>, KeyError>;

    /// Verifies an RSA-PSS (SHA-256, MGF1-SHA-256, salt 32) signature over `ds || msg`.
    fn verify_pss_sha256(&self, ds: &[u8], msg: &[u8], sig: &[u8]) -> bool;

    /// RSA-OAEP (SHA-256, MGF1-SHA-256) encryption of `plaintext` with `label`.
    fn encrypt_oaep_sha256(
        &self,
        rng: &mut dyn CryptoRng,
        label: &[u8],
        plaintext: &[u8],
    ) -> Option<Vec<u8>>;

    /// A copy of the key (`Clone` for trait objects).
    fn clone_box(&self) -> Box<dyn RsaPublicKeyOps>;
}

/// The default provider: RustCrypto (pure Rust, `no_std`). Used by the constructors that
/// take no provider (`RsaPrivateKey::from_pkcs8_der`, …) and by the vector generator.
pub fn default_rsa_provider() -> &'static dyn RsaProvider {
    &super::rustcrypto::RUSTCRYPTO
}

/// Every provider compiled in, default first.
pub fn rsa_providers() -> &'static [&'static dyn RsaProvider] {
    static PROVIDERS: &[&dyn RsaProvider] = &[
        &super::rustcrypto::RUSTCRYPTO,
        #[cfg(feature = "aws-lc-rs")]
        &super::aws_lc::AWS_LC_RS,
    ];
    PROVIDERS
}

/// The fastest provider compiled in: aws-lc-rs with the `aws-lc-rs` feature, else
/// RustCrypto. Daemons on Linux use this.
pub fn fastest_rsa_provider() -> &'static dyn RsaProvider {
    #[cfg(feature = "aws-lc-rs")]
    {
        &super::aws_lc::AWS_LC_RS
    }
    #[cfg(not(feature = "aws-lc-rs"))]
    {
        default_rsa_provider()
    }
}

/// The compiled-in provider called `name` (see [`RsaProvider::name`]).
pub fn rsa_provider_by_name(name: &str) -> Option<&'static dyn RsaProvider> {
    rsa_providers().iter().copied().find(|p| p.name() == name)
}
