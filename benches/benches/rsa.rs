//! RSA grant costs per crypto provider (issue #6: "issuer grants per second per core ≥ 0.8×
//! `openssl speed rsa2048` signs/s; the lock's grant install (decrypt + verify) ≤ 1.2×
//! OpenSSL's cost"). Every compiled-in RSA provider (`crypto::provider`) is measured in the
//! same groups: RustCrypto always, aws-lc-rs with this crate's default `aws-lc-rs` feature.
//!
//! * `rsa_issuer_grant/{provider}/handle_request`: `Issuer::handle_request` for a fresh
//!   sealed request up to the finished grant (open the request, every check, draw `K_s`,
//!   RSA-OAEP wrap to the lock, RSA-PSS sign, seal the guest grant). Baselines in the same
//!   group: `pss_sign` (the issuer key's RSA-PSS over a grant-sized message) and
//!   `oaep_encrypt` (wrapping 32 bytes to the lock key).
//! * `rsa_lock_grant_install/{provider}/handle_grant`: `Lock::handle_grant` for a fresh
//!   grant (parse, PSS verify, every check, OAEP decrypt, key schedule, install).
//!   Baselines: `oaep_decrypt` and `pss_verify` on the same grant's bytes.
//!
//! Fresh issuers, locks and requests are built untimed (`iter_batched`); keys are the fixed
//! ones in `vectors/keys/`, all 2048-bit. Compare with `openssl speed -seconds 3 rsa2048`
//! run on the same machine (see `benches/README.md`).

use std::collections::BTreeSet;
use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use latchkey::crypto::EnrollmentKey;
use latchkey::crypto::provider::{RsaProvider, rsa_providers};
use latchkey::crypto::rsa::{DS_LOCK_GRANT, RsaPrivateKey, RsaPublicKey};
use latchkey::frame::LockGrantView;
use latchkey::issuer::IssuerConfig;
use latchkey::lock::GrantOutcome;
use latchkey::{Guest, GuestConfig, GuestId, Issuer, Lock, LockConfig, LockId, UnixMillis};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const LOCK: LockId = LockId([0xA0; 16]);
const GUEST: GuestId = GuestId([0x61; 16]);
const ENROLLMENT: [u8; 32] = [0x5A; 32];
/// 2027-01-15T08:00:10Z.
const T0: UnixMillis = UnixMillis(1_800_000_010_000);
const VALIDITY_S: u32 = 600;

fn key(provider: &'static dyn RsaProvider, name: &str) -> RsaPrivateKey {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../vectors/keys")
        .join(format!("{name}.pk8.der"));
    let der = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    RsaPrivateKey::from_pkcs8_der_with(provider, &der)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The keys of one provider: the issuer's signing key and the lock's key pair, with each
/// side's view of the other's public key held by the same provider.
struct Keys {
    issuer: RsaPrivateKey,
    issuer_pub: RsaPublicKey,
    lock: RsaPrivateKey,
    lock_pub: RsaPublicKey,
}

impl Keys {
    fn new(p: &'static dyn RsaProvider) -> Self {
        let issuer = key(p, "issuer");
        let lock = key(p, "lock-a");
        Self {
            issuer_pub: issuer.public_key(),
            lock_pub: lock.public_key(),
            issuer,
            lock,
        }
    }

    fn issuer(&self) -> Issuer {
        let mut iss = Issuer::new(IssuerConfig::new(self.issuer.clone())).expect("issuer config");
        iss.add_lock(LOCK, self.lock_pub.clone());
        iss.add_guest(
            GUEST,
            EnrollmentKey::from_bytes(ENROLLMENT),
            BTreeSet::from([LOCK]),
        );
        iss
    }

    fn lock(&self) -> Lock {
        let mut cfg = LockConfig::new(LOCK, self.lock.clone(), self.issuer_pub.clone());
        cfg.max_sessions = 16;
        Lock::new(cfg).expect("lock config")
    }
}

/// A fresh sealed GrantRequest (new request id) from the guest.
fn request(guest: &mut Guest, rng: &mut ChaCha20Rng) -> Vec<u8> {
    guest.request_grant(T0, LOCK, VALIDITY_S, rng).to_vec()
}

fn guest() -> Guest {
    Guest::new(GuestConfig::new(
        GUEST,
        EnrollmentKey::from_bytes(ENROLLMENT),
    ))
    .expect("guest config")
}

fn issuer_grant(c: &mut Criterion) {
    let mut g = c.benchmark_group("rsa_issuer_grant");
    g.sample_size(30).measurement_time(Duration::from_secs(6));
    for p in rsa_providers() {
        let name = p.name();
        let keys = Keys::new(*p);
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let mut guest = guest();
        g.bench_function(format!("{name}/handle_request"), |b| {
            b.iter_batched(
                || (keys.issuer(), request(&mut guest, &mut rng)),
                |(mut iss, req)| {
                    let mut r = ChaCha20Rng::seed_from_u64(2);
                    black_box(
                        iss.handle_request(T0, GUEST, &req, &mut r)
                            .expect("granted"),
                    )
                },
                BatchSize::SmallInput,
            )
        });
        // A grant-sized signed message: header, wrap, and the length prefixes.
        let msg = [0x42u8; 84 + 256];
        g.bench_function(format!("{name}/pss_sign"), |b| {
            b.iter(|| black_box(keys.issuer.sign(&mut rng, DS_LOCK_GRANT, black_box(&msg))))
        });
        let k_s = latchkey::crypto::SessionKey::from_bytes([7; 32]);
        g.bench_function(format!("{name}/oaep_encrypt"), |b| {
            b.iter(|| {
                black_box(
                    keys.lock_pub
                        .wrap_session_key(&mut rng, black_box(&msg[..82]), &k_s),
                )
            })
        });
    }
    g.finish();
}

fn lock_grant_install(c: &mut Criterion) {
    let mut g = c.benchmark_group("rsa_lock_grant_install");
    g.sample_size(30).measurement_time(Duration::from_secs(6));
    for p in rsa_providers() {
        let name = p.name();
        let keys = Keys::new(*p);
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let mut guest = guest();
        let mut iss = keys.issuer();
        let grant = iss
            .handle_request(T0, GUEST, &request(&mut guest, &mut rng), &mut rng)
            .expect("granted")
            .lock_grant;
        g.bench_function(format!("{name}/handle_grant"), |b| {
            b.iter_batched(
                || keys.lock(),
                |mut lock| {
                    let out = lock.handle_grant(T0, &grant, &mut rng);
                    assert!(matches!(out, Ok(GrantOutcome::Installed { .. })));
                    black_box(lock)
                },
                BatchSize::SmallInput,
            )
        });
        let v = LockGrantView::parse(&grant).expect("grant parses");
        g.bench_function(format!("{name}/oaep_decrypt"), |b| {
            b.iter(|| {
                black_box(
                    keys.lock
                        .unwrap_session_key(&mut rng, v.header_bytes, black_box(v.wrapped))
                        .expect("unwraps"),
                )
            })
        });
        g.bench_function(format!("{name}/pss_verify"), |b| {
            b.iter(|| {
                assert!(
                    keys.issuer_pub
                        .verify(DS_LOCK_GRANT, black_box(v.signed), v.signature)
                )
            })
        });
    }
    g.finish();
}

criterion_group!(benches, issuer_grant, lock_grant_install);
criterion_main!(benches);
