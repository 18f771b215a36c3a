//! Project Wycheproof vectors (C2SP/wycheproof, Apache-2.0) run through the exact code
//! paths the protocol uses (spec §4.1): `ShortCmac` for the beacon CMAC, the HMAC-SHA256
//! behind every tag and MAC, `Hkdf<Sha256>` as the key schedule calls it, `Aes256Gcm`
//! through `AeadInOut` as the seals call it, and RSA-OAEP / RSA-PSS as the grant code calls
//! them, through every compiled-in RSA provider (RustCrypto always; aws-lc-rs with the
//! `aws-lc-rs` feature, which `cargo test --workspace` turns on through the daemons).
//!
//! The vectors are data that live beside the project, never inside it: they are read from
//! `$LATCHKEY_WYCHEPROOF_DIR`, else from `<repo>/../shared/wycheproof/`. A missing directory
//! fails the test with the places it looked.
//!
//! Per file, every case is counted as valid / invalid / acceptable (exercised through the
//! protocol's path) or not applicable (outside what the protocol can ever feed that path,
//! e.g. 192-bit AES keys); `valid` must be accepted with the expected output, `invalid`
//! rejected, and `acceptable` is reported with how it was treated and must be treated the
//! same way twice.

use std::fmt;
use std::path::PathBuf;

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{AeadInOut, KeyInit as _};
use hkdf::Hkdf;
use latchkey::crypto::provider::{RsaProvider, rsa_providers};
use latchkey::crypto::rsa::{RsaPrivateKey, RsaPublicKey};
use latchkey::crypto::{ShortCmac, beacon_mac, ct_eq, hmac_sha256};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use serde::Deserialize;
use sha2::Sha256;

// ------------------------------------------------------------------ loading

const ENV: &str = "LATCHKEY_WYCHEPROOF_DIR";

fn vectors_dir() -> PathBuf {
    let default = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/wycheproof");
    match std::env::var_os(ENV) {
        Some(d) => {
            let d = PathBuf::from(d);
            assert!(
                d.is_dir(),
                "Wycheproof vectors: ${ENV} names {}, which is not a directory",
                d.display()
            );
            d
        }
        None => {
            assert!(
                default.is_dir(),
                "Wycheproof vectors not found: expected them in {} (the `shared/wycheproof/` \
                 directory beside the repository), or in a directory named by ${ENV}",
                default.display()
            );
            default
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct File<G> {
    algorithm: String,
    number_of_tests: usize,
    test_groups: Vec<G>,
}

fn load<G: for<'de> Deserialize<'de>>(name: &str) -> File<G> {
    let path = vectors_dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "Wycheproof vector file {} could not be read ({e}); expected beside the \
             repository in shared/wycheproof/ or in ${ENV}",
            path.display()
        )
    });
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn h(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap_or_else(|e| panic!("bad hex {s:?}: {e}"))
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "lowercase")]
enum Expect {
    Valid,
    Invalid,
    Acceptable,
}

// ------------------------------------------------------------------ tallying

#[derive(Default)]
struct Tally {
    file: String,
    valid: usize,
    invalid: usize,
    acceptable: usize,
    not_applicable: usize,
    notes: Vec<String>,
}

impl Tally {
    fn new(file: impl Into<String>) -> Self {
        Self {
            file: file.into(),
            ..Self::default()
        }
    }

    /// Checks one exercised case: `accepted` is what the protocol's path did, `output_ok`
    /// whether its output (if any) equals the expected one. `again` re-runs the case.
    fn check(
        &mut self,
        tc_id: u32,
        comment: &str,
        expect: Expect,
        accepted: bool,
        output_ok: bool,
        again: impl Fn() -> bool,
    ) {
        match expect {
            Expect::Valid => {
                self.valid += 1;
                assert!(
                    accepted,
                    "{} tcId {tc_id} ({comment}): valid case rejected",
                    self.file
                );
                assert!(
                    output_ok,
                    "{} tcId {tc_id} ({comment}): valid case, wrong output",
                    self.file
                );
            }
            Expect::Invalid => {
                self.invalid += 1;
                assert!(
                    !accepted,
                    "{} tcId {tc_id} ({comment}): invalid case accepted",
                    self.file
                );
            }
            Expect::Acceptable => {
                self.acceptable += 1;
                assert_eq!(
                    again(),
                    accepted,
                    "{} tcId {tc_id} ({comment}): acceptable case treated differently on a \
                     second run",
                    self.file
                );
                self.notes.push(format!(
                    "acceptable tcId {tc_id} ({comment}): {}",
                    if accepted { "accepted" } else { "rejected" }
                ));
            }
        }
    }

    fn not_applicable(&mut self) {
        self.not_applicable += 1;
    }

    fn exercised(&self) -> usize {
        self.valid + self.invalid + self.acceptable
    }

    fn finish(self, number_of_tests: usize) {
        eprintln!("{self}");
        for n in &self.notes {
            eprintln!("  {n}");
        }
        assert_eq!(
            self.exercised() + self.not_applicable,
            number_of_tests,
            "{}: every case is either exercised or reported not applicable",
            self.file
        );
        assert!(self.exercised() > 0, "{}: no case exercised", self.file);
    }
}

impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "wycheproof {}: valid {}, invalid {}, acceptable {}, not applicable {}",
            self.file, self.valid, self.invalid, self.acceptable, self.not_applicable
        )
    }
}

// ------------------------------------------------------------------ MAC files

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MacGroup {
    key_size: usize,
    tag_size: usize,
    tests: Vec<MacCase>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MacCase {
    tc_id: u32,
    comment: String,
    key: String,
    msg: String,
    tag: String,
    result: Expect,
}

/// The protocol's comparison: the computed MAC truncated to the tag's length, compared in
/// constant time (`ct_eq`, LK-CRY-1). A tag of the wrong length never matches.
fn tag_matches(full: &[u8], tag: &[u8], tag_size_bits: usize) -> bool {
    let n = tag_size_bits / 8;
    n <= full.len() && tag.len() == n && ct_eq(&full[..n], tag)
}

/// The beacon MAC: AES-128-CMAC of at most one block through `ShortCmac`, 16-byte keys only.
/// Other key sizes and longer messages cannot reach that path; they are counted as not
/// applicable and cross-checked against the `cmac` crate (which `ShortCmac` replaces).
#[test]
fn aes_cmac_through_short_cmac() {
    use cmac::{Cmac, KeyInit, Mac};

    fn library(key: &[u8], msg: &[u8]) -> Option<Vec<u8>> {
        fn run<M: Mac + KeyInit>(key: &[u8], msg: &[u8]) -> Option<Vec<u8>> {
            let mut m = <M as KeyInit>::new_from_slice(key).ok()?;
            m.update(msg);
            Some(m.finalize().into_bytes().to_vec())
        }
        match key.len() {
            16 => run::<Cmac<aes::Aes128>>(key, msg),
            24 => run::<Cmac<aes::Aes192>>(key, msg),
            32 => run::<Cmac<aes::Aes256>>(key, msg),
            _ => None,
        }
    }

    let file: File<MacGroup> = load("aes_cmac_test.json");
    assert_eq!(file.algorithm, "AES-CMAC");
    let mut t = Tally::new("aes_cmac_test.json");
    let (mut lib_agree, mut lib_no_key, mut beacon_len) = (0, 0, 0);
    for g in &file.test_groups {
        for c in &g.tests {
            let (key, msg, tag) = (h(&c.key), h(&c.msg), h(&c.tag));
            let run = || -> Option<bool> {
                let key: [u8; 16] = key.as_slice().try_into().ok()?;
                // Both block cipher backends (AES-NI where present, the `aes` crate) must
                // give the same MAC; the verdict is the one the lock would reach.
                let full = ShortCmac::new(&key).mac(&msg)?;
                let portable = ShortCmac::new_portable(&key).mac(&msg)?;
                assert_eq!(full, portable, "backends disagree on tcId {}", c.tc_id);
                Some(tag_matches(&full, &tag, g.tag_size))
            };
            // The library agrees with Wycheproof on every case it can key (all of them, for
            // the in-domain ones too).
            match library(&key, &msg) {
                Some(full) => {
                    assert_eq!(
                        tag_matches(&full, &tag, g.tag_size),
                        c.result == Expect::Valid,
                        "cmac crate disagrees with tcId {}",
                        c.tc_id
                    );
                    lib_agree += 1;
                }
                None => lib_no_key += 1,
            }
            let Some(accepted) = (g.key_size == 128).then(run).flatten() else {
                t.not_applicable();
                continue;
            };
            if msg.len() == 15 {
                // Exactly the beacon's MAC input: also through `beacon_mac` (first 8 bytes).
                let key: [u8; 16] = key.as_slice().try_into().expect("16-byte key");
                let input: [u8; 15] = msg.as_slice().try_into().expect("15 bytes");
                let cmac = ShortCmac::new(&key);
                let short = beacon_mac(&cmac, &input);
                let full = cmac.mac(&msg).expect("one block");
                assert_eq!(short[..], full[..8], "tcId {}", c.tc_id);
                if c.result == Expect::Valid {
                    assert!(ct_eq(&short, &tag[..8]), "tcId {}", c.tc_id);
                }
                beacon_len += 1;
            }
            t.check(c.tc_id, &c.comment, c.result, accepted, accepted, || {
                run().unwrap_or(false)
            });
        }
    }
    eprintln!(
        "  cmac crate: agrees on {lib_agree} cases, cannot key {lib_no_key} (key sizes AES \
         does not have; Wycheproof marks them invalid); {beacon_len} cases of the beacon's \
         15-byte length also through beacon_mac"
    );
    t.finish(file.number_of_tests);
}

/// The HMAC-SHA256 behind `beacon_tag`, `lock_mac` and `response_mac`: the same function
/// (`hmac_sha256`), keyed with `new_from_slice`, fed in parts, truncated and compared with
/// `ct_eq` as the protocol does. Every case reaches it (HMAC takes any key length).
#[test]
fn hmac_sha256_through_the_protocol_hmac() {
    let file: File<MacGroup> = load("hmac_sha256_test.json");
    assert_eq!(file.algorithm, "HMACSHA256");
    let mut t = Tally::new("hmac_sha256_test.json");
    for g in &file.test_groups {
        for c in &g.tests {
            let (key, msg, tag) = (h(&c.key), h(&c.msg), h(&c.tag));
            assert_eq!(key.len() * 8, g.key_size, "tcId {}", c.tc_id);
            let run = || {
                let whole = hmac_sha256(&key, &[&msg]);
                // The protocol feeds fields as separate parts; the split must not matter.
                let mid = msg.len() / 2;
                let parts = hmac_sha256(&key, &[b"", &msg[..mid], &msg[mid..]]);
                assert_eq!(whole, parts, "tcId {}: parts change the HMAC", c.tc_id);
                tag_matches(&whole, &tag, g.tag_size)
            };
            let accepted = run();
            t.check(c.tc_id, &c.comment, c.result, accepted, accepted, run);
        }
    }
    t.finish(file.number_of_tests);
}

// ------------------------------------------------------------------ HKDF

#[derive(Deserialize)]
struct HkdfGroup {
    tests: Vec<HkdfCase>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HkdfCase {
    tc_id: u32,
    comment: String,
    ikm: String,
    salt: String,
    info: String,
    size: usize,
    okm: String,
    result: Expect,
}

/// The key schedule's HKDF (`kdf.rs`): `Hkdf::<Sha256>::new(Some(salt), ikm)` then
/// `expand_multi_info`. Invalid cases (output longer than 255 × 32 bytes) must error.
#[test]
fn hkdf_sha256_through_the_key_schedule_api() {
    let file: File<HkdfGroup> = load("hkdf_sha256_test.json");
    assert_eq!(file.algorithm, "HKDF-SHA-256");
    let mut t = Tally::new("hkdf_sha256_test.json");
    for g in &file.test_groups {
        for c in &g.tests {
            let (ikm, salt, info, okm) = (h(&c.ikm), h(&c.salt), h(&c.info), h(&c.okm));
            let run = || -> Option<Vec<u8>> {
                let hk = Hkdf::<Sha256>::new(Some(&salt), &ikm);
                let mut out = vec![0u8; c.size];
                // kdf.rs passes info as parts (length byte, label, ids): split it likewise.
                let k = info.len().min(1);
                let parts: [&[u8]; 2] = [&info[..k], &info[k..]];
                hk.expand_multi_info(&parts, &mut out).ok()?;
                let mut single = vec![0u8; c.size];
                hk.expand(&info, &mut single).ok()?;
                assert_eq!(out, single, "tcId {}: parts change the output", c.tc_id);
                Some(out)
            };
            let out = run();
            let ok = out.as_deref() == Some(&okm[..]);
            t.check(c.tc_id, &c.comment, c.result, out.is_some(), ok, || {
                run().is_some()
            });
        }
    }
    t.finish(file.number_of_tests);
}

// ------------------------------------------------------------------ AES-GCM

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AeadGroup {
    iv_size: usize,
    key_size: usize,
    tag_size: usize,
    tests: Vec<AeadCase>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AeadCase {
    tc_id: u32,
    comment: String,
    key: String,
    iv: String,
    aad: String,
    msg: String,
    ct: String,
    tag: String,
    result: Expect,
}

/// The seals (`seal.rs`): `Aes256Gcm` with 12-byte nonces and 16-byte tags through
/// `AeadInOut::{encrypt,decrypt}_inout_detached`. Other key, nonce or tag sizes cannot reach
/// that path (the types fix them) and are not applicable.
#[test]
fn aes_256_gcm_through_the_seal_api() {
    let file: File<AeadGroup> = load("aes_gcm_test.json");
    assert_eq!(file.algorithm, "AES-GCM");
    let mut t = Tally::new("aes_gcm_test.json");
    for g in &file.test_groups {
        for c in &g.tests {
            if (g.key_size, g.iv_size, g.tag_size) != (256, 96, 128) {
                t.not_applicable();
                continue;
            }
            let key: [u8; 32] = h(&c.key).try_into().expect("32-byte key");
            let nonce: [u8; 12] = h(&c.iv).try_into().expect("12-byte nonce");
            let (aad, msg, ct) = (h(&c.aad), h(&c.msg), h(&c.ct));
            let tag: [u8; 16] = h(&c.tag).try_into().expect("16-byte tag");
            let cipher = Aes256Gcm::new(&key.into());
            let open = || -> Option<Vec<u8>> {
                let mut body = ct.clone();
                cipher
                    .decrypt_inout_detached(
                        &nonce.into(),
                        &aad,
                        (&mut body[..]).into(),
                        &tag.into(),
                    )
                    .ok()?;
                Some(body)
            };
            let opened = open();
            let mut output_ok = opened.as_deref() == Some(&msg[..]);
            if c.result == Expect::Valid {
                // Sealing the plaintext gives exactly the ciphertext and tag.
                let mut body = msg.clone();
                let sealed_tag = cipher
                    .encrypt_inout_detached(&nonce.into(), &aad, (&mut body[..]).into())
                    .expect("seal");
                output_ok &= body == ct && sealed_tag.as_slice() == tag;
            }
            t.check(
                c.tc_id,
                &c.comment,
                c.result,
                opened.is_some(),
                output_ok,
                || open().is_some(),
            );
        }
    }
    t.finish(file.number_of_tests);
}

// ------------------------------------------------------------------ RSA

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OaepGroup {
    key_size: usize,
    sha: String,
    mgf_sha: String,
    private_key_pkcs8: String,
    tests: Vec<OaepCase>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OaepCase {
    tc_id: u32,
    comment: String,
    msg: String,
    ct: String,
    label: String,
    result: Expect,
}

/// Invalid RSA-OAEP cases a provider accepts: `(tcId, why)`, per provider name. The test
/// asserts that exactly these cases still deviate, so the list goes stale, and fails, the
/// day the library is fixed.
///
/// RustCrypto: `rsa` 0.10.0's OAEP decoding omits RFC 8017 §7.1.2 step 3.g, "if Y is
/// nonzero, output 'decryption error'" (`decrypt_inner` in `src/algorithms/oaep.rs` never
/// looks at `em[0]`; 0.9 did). aws-lc-rs: none (AWS-LC checks `Y` in constant time,
/// `RSA_padding_check_PKCS1_OAEP_mgf1`).
///
/// Reach in Latchkey: `unwrap_session_key` (LK-GRT-3) returns the key for any such encoding
/// of 32 bytes. It runs only on grants whose issuer signature verified (LK-GRT-2 comes
/// first) and OAEP encryption is public anyway, so nobody gains a capability; but a lock
/// built on a conforming RFC 8017 library answers `unwrap_failed` where the reference
/// installs the grant.
fn rsa_oaep_known_library_deviations(provider: &str) -> &'static [(u32, &'static str)] {
    match provider {
        "rustcrypto" => &[(
            23,
            "rsa 0.10.0 does not check that the leading octet Y of EM is zero (RFC 8017 §7.1.2 3.g)",
        )],
        _ => &[],
    }
}

/// Session-key unwrapping (LK-GRT-3), for every compiled-in RSA provider: the provider's
/// OAEP decryption that `RsaPrivateKey::unwrap_session_key` calls
/// (`RsaPrivateKeyOps::decrypt_oaep_sha256`), on every case; and `unwrap_session_key`
/// itself, which must agree: the key for a 32-byte plaintext, nothing for every other case.
#[test]
fn rsa_oaep_2048_sha256_through_the_unwrap_path() {
    let file: File<OaepGroup> = load("rsa_oaep_2048_sha256_mgf1sha256_test.json");
    assert_eq!(file.algorithm, "RSAES-OAEP");
    for provider in rsa_providers() {
        rsa_oaep_with(*provider, &file);
    }
}

fn rsa_oaep_with(provider: &'static dyn RsaProvider, file: &File<OaepGroup>) {
    let name = provider.name();
    let mut t = Tally::new(format!(
        "rsa_oaep_2048_sha256_mgf1sha256_test.json [{name}]"
    ));
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let (mut unwrapped, mut unwrap_refused) = (0, 0);
    let mut deviations = Vec::new();
    let known_deviations = rsa_oaep_known_library_deviations(name);
    for g in &file.test_groups {
        assert_eq!(
            (g.key_size, g.sha.as_str(), g.mgf_sha.as_str()),
            (2048, "SHA-256", "SHA-256")
        );
        let der = h(&g.private_key_pkcs8);
        let raw = provider
            .load_private_key(&der)
            .expect("vector key (provider)");
        let ours = RsaPrivateKey::from_pkcs8_der_with(provider, &der).expect("vector key");
        assert_eq!(ours.provider().name(), name);
        for c in &g.tests {
            let (msg, ct, label) = (h(&c.msg), h(&c.ct), h(&c.label));
            let run = |rng: &mut ChaCha20Rng| -> Option<Vec<u8>> {
                raw.decrypt_oaep_sha256(rng, &label, &ct)
                    .map(|p| p.to_vec())
            };
            let pt = run(&mut rng);
            let key = ours.unwrap_session_key(&mut rng, &label, &ct);
            match (&pt, &key) {
                (Some(p), Some(k)) => {
                    assert_eq!(&k.expose()[..], &p[..], "[{name}] tcId {}", c.tc_id);
                    unwrapped += 1;
                }
                (Some(p), None) => {
                    assert_ne!(
                        p.len(),
                        32,
                        "[{name}] tcId {}: 32-byte plaintext refused",
                        c.tc_id
                    );
                    unwrap_refused += 1;
                }
                (None, None) => unwrap_refused += 1,
                (None, Some(_)) => {
                    panic!(
                        "[{name}] tcId {}: unwrap accepts what OAEP refuses",
                        c.tc_id
                    )
                }
            }
            if let Some((_, why)) = known_deviations.iter().find(|(id, _)| *id == c.tc_id) {
                assert_eq!(c.result, Expect::Invalid, "tcId {}", c.tc_id);
                if pt.is_some() {
                    t.invalid += 1;
                    deviations.push(c.tc_id);
                    t.notes.push(format!(
                        "KNOWN LIBRARY BUG: invalid tcId {} ({}) accepted: {why}",
                        c.tc_id, c.comment
                    ));
                    continue;
                }
            }
            let ok = pt.as_deref() == Some(&msg[..]);
            t.check(c.tc_id, &c.comment, c.result, pt.is_some(), ok, || {
                run(&mut ChaCha20Rng::seed_from_u64(2)).is_some()
            });
        }
    }
    eprintln!(
        "  [{name}] unwrap_session_key: returned the key for {unwrapped} case(s) (32-byte \
         plaintext), nothing for {unwrap_refused}"
    );
    assert!(unwrapped > 0, "no 32-byte case reached unwrap_session_key");
    let known: Vec<u32> = known_deviations.iter().map(|(id, _)| *id).collect();
    assert_eq!(
        deviations, known,
        "[{name}] the provider no longer accepts every case listed in \
         rsa_oaep_known_library_deviations: it was fixed, remove them from the list"
    );
    t.finish(file.number_of_tests);
}

/// The shape of Wycheproof tcId 23 at the protocol's own input: a 32-byte session key
/// OAEP-encoded for `vectors/keys/lock-a` (label and seed fixed), encrypted once with the
/// leading octet `Y = 0` (conforming) and once with `Y = 1` (RFC 8017: decryption error).
/// Built outside Rust with textbook RFC 8017 §7.1.1 and `c = EM^e mod n`.
const OAEP_LABEL: &[u8] = b"latchkey/v1 wycheproof tcId 23 shape";
const OAEP_Y0: &str = "3490daef0ca91a6c341b7666cc2a631b380797a5c68a63b86ef4f7f4af28e9d711104eb9ffb0ecf41482738ae5711c4242f197b8728a912bb5ef236fdc3b91b2406ad2ec2dcb55d3bd8e8d82344304089f8a62a8c85bdd2de0250e39e0830ca09d5eb6ca6cae63e87ce8a6ff99748d177fa459677d387e4d9877ec35485df03d7f5dff8a480213fcab4c910646e23999bc65ebb10692b263839c17bec41da7cdebb44e439a3d143d789afe6f2991adbd18021ce7347506be9fdd810cd866c365ace613fec7c8ddd79e6feb3e8b60a8dde31f5ade6094d633a80de997e086df1f731050a4f66101f23634ee40f1f66e0c77323b8314f47a342ab36bc17f4b2627";
const OAEP_Y1: &str = "195efeff98940c1b6a3bc16b54f059849856642332b5d1f9d8c1b30bc1e6b2660343c5342f51f5515ea1ccb3ca2e0448b8a708865ec28ed6915c127a40ea72891e33c808414991481460815c3c345b05799621e58b3de54eb40a3229dc6c72bcd2a2da88a04b83593f24981bf71d479d7b999db5d67a1c13bf2fae6b585771827156ac7240a544f62ace369298222c9e699b28a76e5971edd7ff5331dd53265431566e6f6e38968b93061848b374f62fad2ab5c7fdfb3e245f7c6976ee6a446a89066ae381728e7dce840ed40d8c90c88d669c8ba945a90d410a7a311f4e82320441d8b3fb298d946e41ede48eb1f5b8ea9971ede03c75b20f63efbe9508fe39";

/// The library deviation above reaches `unwrap_session_key` with the RustCrypto provider:
/// it returns the key for the `Y = 1` encoding too. This test pins that known behaviour per
/// provider (see [`rsa_oaep_known_library_deviations`]): RustCrypto accepts it (and the test
/// fails once `rsa` refuses it), aws-lc-rs refuses it.
#[test]
fn rsa_oaep_nonzero_leading_octet_reaches_unwrap_session_key() {
    let path = format!(
        "{}/../vectors/keys/lock-a.pk8.der",
        env!("CARGO_MANIFEST_DIR")
    );
    let der = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    for provider in rsa_providers() {
        let name = provider.name();
        let lock = RsaPrivateKey::from_pkcs8_der_with(*provider, &der).expect("lock-a key");
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let want: Vec<u8> = (0x20..0x40).collect();
        let y0 = lock
            .unwrap_session_key(&mut rng, OAEP_LABEL, &h(OAEP_Y0))
            .expect("a conforming encoding unwraps");
        assert_eq!(&y0.expose()[..], &want[..], "[{name}]");
        assert!(
            lock.unwrap_session_key(&mut rng, b"another label", &h(OAEP_Y0))
                .is_none(),
            "[{name}]"
        );
        let y1 = lock.unwrap_session_key(&mut rng, OAEP_LABEL, &h(OAEP_Y1));
        let deviates = rsa_oaep_known_library_deviations(name)
            .iter()
            .any(|(id, _)| *id == 23);
        if deviates {
            assert!(
                y1.is_some_and(|k| k.expose()[..] == want[..]),
                "[{name}] unwrap_session_key now refuses an OAEP encoding with Y = 1: the \
                 library was fixed; drop tcId 23 from rsa_oaep_known_library_deviations"
            );
            eprintln!(
                "KNOWN LIBRARY BUG reaches the protocol [{name}]: unwrap_session_key accepts \
                 an RSA-OAEP encoding whose leading octet is 1 (RFC 8017 §7.1.2 3.g)"
            );
        } else {
            assert!(
                y1.is_none(),
                "[{name}] unwrap_session_key accepts an RSA-OAEP encoding with Y = 1"
            );
            eprintln!("[{name}] refuses an RSA-OAEP encoding whose leading octet is 1");
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PssGroup {
    key_size: usize,
    sha: String,
    mgf_sha: String,
    s_len: usize,
    public_key_der: String,
    tests: Vec<PssCase>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PssCase {
    tc_id: u32,
    comment: String,
    msg: String,
    sig: String,
    result: Expect,
}

/// Grant, revocation and event signatures (LK-GRT-2, LK-REV-2, LK-EVT-1), for every
/// compiled-in RSA provider: the provider's verification that `RsaPublicKey::verify` calls
/// (`RsaPublicKeyOps::verify_pss_sha256`, salt 32, SHA-256 over `ds || msg`) with an empty
/// domain-separation prefix, which hashes exactly the message, and `RsaPublicKey::verify`
/// itself, which must agree.
#[test]
fn rsa_pss_2048_sha256_salt32_through_the_verify_path() {
    let file: File<PssGroup> = load("rsa_pss_2048_sha256_mgf1_32_test.json");
    assert_eq!(file.algorithm, "RSASSA-PSS");
    for provider in rsa_providers() {
        rsa_pss_with(*provider, &file);
    }
}

fn rsa_pss_with(provider: &'static dyn RsaProvider, file: &File<PssGroup>) {
    let name = provider.name();
    let mut t = Tally::new(format!("rsa_pss_2048_sha256_mgf1_32_test.json [{name}]"));
    for g in &file.test_groups {
        assert_eq!(
            (g.key_size, g.sha.as_str(), g.mgf_sha.as_str(), g.s_len),
            (2048, "SHA-256", "SHA-256", 32)
        );
        let der = h(&g.public_key_der);
        let raw = provider
            .load_public_key(&der)
            .expect("vector key (provider)");
        let ours = RsaPublicKey::from_public_key_der_with(provider, &der).expect("vector key");
        assert_eq!(ours.provider().name(), name);
        for c in &g.tests {
            let (msg, sig) = (h(&c.msg), h(&c.sig));
            let run = || {
                let inner = raw.verify_pss_sha256(b"", &msg, &sig);
                // A domain-separation prefix is hashed as the front of the message.
                let split = msg.len().min(1);
                assert_eq!(
                    raw.verify_pss_sha256(&msg[..split], &msg[split..], &sig),
                    inner,
                    "[{name}] tcId {}: ds || msg split changes the result",
                    c.tc_id
                );
                assert_eq!(
                    ours.verify(b"", &msg, &sig),
                    inner,
                    "[{name}] tcId {}: RsaPublicKey::verify disagrees with its inner call",
                    c.tc_id
                );
                inner
            };
            let accepted = run();
            t.check(c.tc_id, &c.comment, c.result, accepted, accepted, run);
        }
    }
    t.finish(file.number_of_tests);
}
