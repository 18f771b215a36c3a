//! The default RSA provider: RustCrypto `rsa` 0.10, pure Rust and `no_std` + `alloc`.
//!
//! Private-key operations use blinding with the caller's RNG. `rsa` 0.10 computes on
//! `crypto-bigint` `BoxedUint` with constant-time modular arithmetic, its answer to
//! RUSTSEC-2023-0071 (Marvin); see `docs/assurance.md` for what that does and does not
//! cover. Every random value (PSS salt, OAEP seed, blinding factor, key generation) comes
//! from the caller's RNG, so outputs are reproducible under a seeded RNG; the conformance
//! vectors are generated with this provider.
//!
//! Known deviation: `rsa` 0.10.0's OAEP decoding does not check that the leading octet of
//! the encoded message is zero (RFC 8017 §7.1.2 step 3.g; Wycheproof RSA-OAEP tcId 23).
//! `tests/wycheproof.rs` pins it.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;

use rand_core::CryptoRng;
use rsa::oaep::Oaep;
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use rsa::pss::Pss;
use rsa::traits::PublicKeyParts;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::provider::{RsaPrivateKeyOps, RsaProvider, RsaPublicKeyOps};
use super::rsa::{KeyError, PSS_SALT_LEN};

/// The RustCrypto provider (`rsa` 0.10). The default.
#[derive(Debug, Clone, Copy, Default)]
pub struct RustCrypto;

/// The RustCrypto provider instance.
pub static RUSTCRYPTO: RustCrypto = RustCrypto;

impl RsaProvider for RustCrypto {
    fn name(&self) -> &'static str {
        "rustcrypto"
    }

    fn load_private_key(&self, pkcs8_der: &[u8]) -> Result<Box<dyn RsaPrivateKeyOps>, KeyError> {
        let k = rsa::PrivateKey::from_pkcs8_der(pkcs8_der).map_err(|_| KeyError::Encoding)?;
        Ok(Box::new(Private(k)))
    }

    fn load_public_key(&self, spki_der: &[u8]) -> Result<Box<dyn RsaPublicKeyOps>, KeyError> {
        let k = rsa::PublicKey::from_public_key_der(spki_der).map_err(|_| KeyError::Encoding)?;
        Ok(Box::new(Public(k)))
    }

    fn generate(
        &self,
        rng: &mut dyn CryptoRng,
        bits: usize,
    ) -> Result<Box<dyn RsaPrivateKeyOps>, KeyError> {
        let k = rsa::PrivateKey::new(rng, bits).map_err(|_| KeyError::Generation)?;
        Ok(Box::new(Private(k)))
    }
}

/// `rsa::PrivateKey` zeroizes its secret components on drop.
#[derive(Clone)]
struct Private(rsa::PrivateKey);

#[derive(Clone)]
struct Public(rsa::PublicKey);

fn digest(ds: &[u8], msg: &[u8]) -> sha2::digest::Output<Sha256> {
    Sha256::new().chain_update(ds).chain_update(msg).finalize()
}

impl RsaPrivateKeyOps for Private {
    fn provider(&self) -> &'static dyn RsaProvider {
        &RUSTCRYPTO
    }

    fn size(&self) -> usize {
        self.0.as_public_key().size()
    }

    fn to_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        // `SecretDocument` zeroizes its own copy on drop.
        let doc = self.0.to_pkcs8_der().map_err(|_| KeyError::Encoding)?;
        Ok(Zeroizing::new(doc.as_bytes().to_vec()))
    }

    fn public_key(&self) -> Result<Box<dyn RsaPublicKeyOps>, KeyError> {
        Ok(Box::new(Public(self.0.to_public_key())))
    }

    fn sign_pss_sha256(&self, rng: &mut dyn CryptoRng, ds: &[u8], msg: &[u8]) -> Option<Vec<u8>> {
        self.0
            .sign_with_rng(
                rng,
                Pss::<Sha256>::new_with_salt(PSS_SALT_LEN),
                &digest(ds, msg),
            )
            .ok()
    }

    fn decrypt_oaep_sha256(
        &self,
        rng: &mut dyn CryptoRng,
        label: &[u8],
        ciphertext: &[u8],
    ) -> Option<Zeroizing<Vec<u8>>> {
        self.0
            .decrypt_blinded(
                rng,
                Oaep::<Sha256>::new_with_label(label.to_vec()),
                ciphertext,
            )
            .ok()
            .map(Zeroizing::new)
    }

    fn clone_box(&self) -> Box<dyn RsaPrivateKeyOps> {
        Box::new(self.clone())
    }
}

impl RsaPublicKeyOps for Public {
    fn provider(&self) -> &'static dyn RsaProvider {
        &RUSTCRYPTO
    }

    fn size(&self) -> usize {
        self.0.size()
    }

    fn to_spki_der(&self) -> Result<Vec<u8>, KeyError> {
        Ok(self
            .0
            .to_public_key_der()
            .map_err(|_| KeyError::Encoding)?
            .as_bytes()
            .to_vec())
    }

    fn verify_pss_sha256(&self, ds: &[u8], msg: &[u8], sig: &[u8]) -> bool {
        self.0
            .verify(
                Pss::<Sha256>::new_with_salt(PSS_SALT_LEN),
                &digest(ds, msg),
                sig,
            )
            .is_ok()
    }

    fn encrypt_oaep_sha256(
        &self,
        rng: &mut dyn CryptoRng,
        label: &[u8],
        plaintext: &[u8],
    ) -> Option<Vec<u8>> {
        self.0
            .encrypt(
                rng,
                Oaep::<Sha256>::new_with_label(label.to_vec()),
                plaintext,
            )
            .ok()
    }

    fn clone_box(&self) -> Box<dyn RsaPublicKeyOps> {
        Box::new(self.clone())
    }
}

impl fmt::Debug for Private {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RustCrypto RSA private key <redacted>")
    }
}
