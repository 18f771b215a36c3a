//! The RSA providers (`crypto::provider`) against each other: every compiled-in provider
//! (RustCrypto always; aws-lc-rs with the `aws-lc-rs` feature, which `cargo test
//! --workspace` turns on through the daemons) accepts and refuses exactly the same keys
//! (2048–4096 bits, e = 65537), and every provider's signatures verify and wrapped keys
//! unwrap under every other provider. Outputs are compared semantically (verify, unwrap),
//! never byte for byte: aws-lc-rs draws its randomness from its own DRBG.

use latchkey::crypto::SessionKey;
use latchkey::crypto::provider::{
    RsaProvider, default_rsa_provider, fastest_rsa_provider, rsa_provider_by_name, rsa_providers,
};
use latchkey::crypto::rsa::{DS_LOCK_GRANT, DS_REVOCATION, KeyError, RsaPrivateKey, RsaPublicKey};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use rsa::BoxedUint;
use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey};

fn key_der(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../vectors/keys/{name}.pk8.der",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn providers() -> Vec<&'static dyn RsaProvider> {
    rsa_providers().to_vec()
}

#[test]
fn provider_registry() {
    let names: Vec<&str> = providers().iter().map(|p| p.name()).collect();
    assert_eq!(
        names[0], "rustcrypto",
        "RustCrypto is the default, listed first"
    );
    assert_eq!(default_rsa_provider().name(), "rustcrypto");
    for n in &names {
        assert_eq!(rsa_provider_by_name(n).map(|p| p.name()), Some(*n));
    }
    assert!(rsa_provider_by_name("nope").is_none());
    if cfg!(feature = "aws-lc-rs") {
        assert_eq!(names, ["rustcrypto", "aws-lc-rs"]);
        assert_eq!(fastest_rsa_provider().name(), "aws-lc-rs");
    } else {
        assert_eq!(names, ["rustcrypto"]);
        assert_eq!(fastest_rsa_provider().name(), "rustcrypto");
    }
    // The default constructors use the default provider.
    let k = RsaPrivateKey::from_pkcs8_der(&key_der("issuer")).expect("issuer key");
    assert_eq!(k.provider().name(), "rustcrypto");
    assert_eq!(k.public_key().provider().name(), "rustcrypto");
}

/// Keys outside the protocol's range, as PKCS#8 and SPKI: every provider refuses them with
/// the same error, and accepts the project's own keys.
#[test]
fn key_size_and_exponent_checks_are_identical_across_providers() {
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let bad = [
        (
            "1024 bits",
            rsa::PrivateKey::new(&mut rng, 1024).expect("keygen"),
        ),
        (
            "e = 3",
            rsa::PrivateKey::new_with_exp(&mut rng, 2048, BoxedUint::from(3u64)).expect("keygen"),
        ),
        (
            "4104 bits",
            rsa::PrivateKey::new(&mut rng, 4104).expect("keygen"),
        ),
    ];
    for p in providers() {
        let name = p.name();
        for (what, k) in &bad {
            let pk8 = k.to_pkcs8_der().expect("pkcs8");
            let spki = k.to_public_key().to_public_key_der().expect("spki");
            assert_eq!(
                RsaPrivateKey::from_pkcs8_der_with(p, pk8.as_bytes()).err(),
                Some(KeyError::Unsupported),
                "[{name}] private key, {what}"
            );
            assert_eq!(
                RsaPublicKey::from_public_key_der_with(p, spki.as_bytes()).err(),
                Some(KeyError::Unsupported),
                "[{name}] public key, {what}"
            );
        }
        for garbage in [&b""[..], b"\x30\x03\x02\x01\x00", &[0xff; 64]] {
            assert_eq!(
                RsaPrivateKey::from_pkcs8_der_with(p, garbage).err(),
                Some(KeyError::Encoding),
                "[{name}]"
            );
            assert_eq!(
                RsaPublicKey::from_public_key_der_with(p, garbage).err(),
                Some(KeyError::Encoding),
                "[{name}]"
            );
        }
        for key in ["issuer", "lock-a", "lock-b", "rogue"] {
            let k = RsaPrivateKey::from_pkcs8_der_with(p, &key_der(key))
                .unwrap_or_else(|e| panic!("[{name}] {key}: {e}"));
            assert_eq!(k.provider().name(), name);
            let spki = k.public_key().to_public_key_der().expect("spki");
            let public = RsaPublicKey::from_public_key_der_with(p, &spki).expect("spki loads");
            assert_eq!(public.provider().name(), name);
            assert_eq!(public.size(), k.size());
        }
    }
}

/// The same key in every provider: same size, equal public keys, PKCS#8 that loads back to
/// the same public key, and a `Debug` that names the provider and no key material.
#[test]
fn same_key_same_public_half_and_no_secrets_in_debug() {
    let der = key_der("lock-a");
    let keys: Vec<RsaPrivateKey> = providers()
        .into_iter()
        .map(|p| RsaPrivateKey::from_pkcs8_der_with(p, &der).expect("lock-a"))
        .collect();
    for a in &keys {
        for b in &keys {
            assert_eq!(a.size(), b.size());
            assert_eq!(a.public_key(), b.public_key());
        }
        let back = RsaPrivateKey::from_pkcs8_der(&a.to_pkcs8_der().expect("pkcs8"))
            .expect("re-encoded key loads");
        assert_eq!(back.public_key(), a.public_key());
        let moved = a.with_provider(default_rsa_provider()).expect("moves");
        assert_eq!(moved.public_key(), a.public_key());
        let dbg = format!("{a:?} {:?}", a.clone());
        assert!(
            dbg.contains("redacted") && dbg.contains(a.provider().name()),
            "{dbg}"
        );
        assert!(!dbg.contains("0x") && dbg.len() < 200, "{dbg}");
    }
}

/// Every provider's signatures verify under every provider, and only over the same domain
/// separation and message.
#[test]
fn signatures_verify_across_providers() {
    let der = key_der("issuer");
    let mut rng = ChaCha20Rng::seed_from_u64(11);
    let msg = b"a grant frame, more or less";
    for signer_p in providers() {
        let signer = RsaPrivateKey::from_pkcs8_der_with(signer_p, &der).expect("issuer");
        let sig = signer.sign(&mut rng, DS_LOCK_GRANT, msg);
        assert_eq!(sig.len(), signer.size());
        for verifier_p in providers() {
            let v = signer
                .public_key()
                .with_provider(verifier_p)
                .expect("public");
            let pair = format!("{} -> {}", signer_p.name(), verifier_p.name());
            assert!(
                v.verify(DS_LOCK_GRANT, msg, &sig),
                "{pair}: valid signature"
            );
            assert!(!v.verify(DS_REVOCATION, msg, &sig), "{pair}: other domain");
            assert!(
                !v.verify(DS_LOCK_GRANT, b"another", &sig),
                "{pair}: other message"
            );
            let mut bad = sig.clone();
            bad[17] ^= 1;
            assert!(!v.verify(DS_LOCK_GRANT, msg, &bad), "{pair}: flipped bit");
            assert!(!v.verify(DS_LOCK_GRANT, msg, &sig[1..]), "{pair}: short");
            assert!(!v.verify(DS_LOCK_GRANT, msg, &[]), "{pair}: empty");
        }
    }
}

/// Every provider's wrapped session keys unwrap under every provider, only with the same
/// label and the right key.
#[test]
fn wrapped_keys_unwrap_across_providers() {
    let der = key_der("lock-a");
    let other = key_der("lock-b");
    let mut rng = ChaCha20Rng::seed_from_u64(13);
    let k_s = SessionKey::from_bytes([0x5a; 32]);
    let label = b"header bytes";
    for wrap_p in providers() {
        let to = RsaPrivateKey::from_pkcs8_der_with(wrap_p, &der)
            .expect("lock-a")
            .public_key();
        let wrapped = to.wrap_session_key(&mut rng, label, &k_s).expect("wraps");
        assert_eq!(wrapped.len(), to.size());
        for unwrap_p in providers() {
            let pair = format!("{} -> {}", wrap_p.name(), unwrap_p.name());
            let lock = RsaPrivateKey::from_pkcs8_der_with(unwrap_p, &der).expect("lock-a");
            let got = lock
                .unwrap_session_key(&mut rng, label, &wrapped)
                .unwrap_or_else(|| panic!("{pair}: unwraps"));
            assert_eq!(got.expose(), k_s.expose(), "{pair}");
            assert!(
                lock.unwrap_session_key(&mut rng, b"other label", &wrapped)
                    .is_none(),
                "{pair}: other label"
            );
            let wrong = RsaPrivateKey::from_pkcs8_der_with(unwrap_p, &other).expect("lock-b");
            assert!(
                wrong
                    .unwrap_session_key(&mut rng, label, &wrapped)
                    .is_none(),
                "{pair}: other key"
            );
            let mut bad = wrapped.clone();
            bad[40] ^= 1;
            assert!(
                lock.unwrap_session_key(&mut rng, label, &bad).is_none(),
                "{pair}: flipped bit"
            );
            assert!(
                lock.unwrap_session_key(&mut rng, label, &wrapped[1..])
                    .is_none(),
                "{pair}: short"
            );
        }
    }
}

/// Keys generated by each provider work in every provider. The RustCrypto provider is
/// reproducible under a seeded RNG; aws-lc-rs generates from its own DRBG.
#[test]
fn generated_keys_work_across_providers() {
    let mut rng = ChaCha20Rng::seed_from_u64(17);
    for gen_p in providers() {
        let k = RsaPrivateKey::generate_with(gen_p, &mut rng, 2048).expect("generates");
        assert_eq!((k.size(), k.provider().name()), (256, gen_p.name()));
        assert_eq!(
            RsaPrivateKey::generate_with(gen_p, &mut rng, 1024).err(),
            Some(KeyError::Unsupported)
        );
        let sig = k.sign(&mut rng, DS_LOCK_GRANT, b"m");
        for p in providers() {
            let moved = k.with_provider(p).expect("loads");
            assert!(moved.public_key().verify(DS_LOCK_GRANT, b"m", &sig));
        }
    }
    let a = RsaPrivateKey::generate(&mut ChaCha20Rng::seed_from_u64(1), 2048).expect("gen");
    let b = RsaPrivateKey::generate(&mut ChaCha20Rng::seed_from_u64(1), 2048).expect("gen");
    assert_eq!(
        a.public_key(),
        b.public_key(),
        "RustCrypto keygen is seeded"
    );
}
