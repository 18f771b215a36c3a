//! keygen, add-lock and enroll-guest: the files they write, their contents and modes.

// Test code, helpers included: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use latchkey::crypto::rsa::{DS_LOCK_EVENT, RsaPrivateKey};
use latchkey_issuer::keys::{load_private_key, load_public_key};
use latchkey_issuer::{
    AddLockOptions, EnrollGuestOptions, Issuerd, IssuerdError, KeygenOptions, add_lock_with,
    enroll_guest, enroll_guest_with, keygen_with,
};

use common::{Provisioned, bundle, options, store};

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn pem_label(p: &Path) -> String {
    std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_owned()
}

#[test]
fn keygen_writes_a_private_pkcs8_key_and_a_public_spki_key() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("nested/state");
    let out = latchkey_issuer::keygen(&state).unwrap();
    assert_eq!(mode(&state), 0o700);
    assert_eq!(mode(&out.key_file), 0o600);
    assert_eq!(mode(&out.pub_file), 0o644);
    assert_eq!(pem_label(&out.key_file), "-----BEGIN PRIVATE KEY-----");
    assert_eq!(pem_label(&out.pub_file), "-----BEGIN PUBLIC KEY-----");
    let key = load_private_key(&out.key_file, "issuer key").unwrap();
    assert_eq!(key.size(), 256, "2048 bits by default");
    assert!(key.public_key() == load_public_key(&out.pub_file, "issuer pub").unwrap());
    assert_eq!(out.fingerprint.len(), 64);

    // An existing key is never replaced by accident.
    match latchkey_issuer::keygen(&state) {
        Err(IssuerdError::AlreadyExists { path }) => assert_eq!(path, out.key_file),
        other => panic!("{other:?}"),
    }
    let forced = keygen_with(
        &state,
        &KeygenOptions {
            bits: 2048,
            force: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert_ne!(forced.fingerprint, out.fingerprint);
    assert!(matches!(
        keygen_with(
            &state,
            &KeygenOptions {
                bits: 1024,
                force: true,
                ..Default::default()
            }
        ),
        Err(IssuerdError::Key(_))
    ));
}

#[test]
fn add_lock_writes_the_lock_files_and_registers_its_key() {
    let p = Provisioned::new();
    let key_file = p.lock_dir.join("lock.key.pem");
    let pub_file = p.lock_dir.join("issuer.pub.pem");
    let toml_file = p.lock_dir.join("lock.toml");
    assert_eq!(mode(&p.lock_dir), 0o700);
    assert_eq!(mode(&key_file), 0o600);
    assert_eq!(mode(&toml_file), 0o600);
    assert_eq!(pem_label(&key_file), "-----BEGIN PRIVATE KEY-----");
    // The lock gets exactly the issuer's public key.
    assert_eq!(
        std::fs::read(&pub_file).unwrap(),
        std::fs::read(p.state().join("issuer.pub.pem")).unwrap()
    );

    let cfg: toml::Table = toml::from_str(&std::fs::read_to_string(&toml_file).unwrap()).unwrap();
    assert_eq!(
        cfg["lock_id"].as_str(),
        Some(p.lock_id.to_string().as_str())
    );
    let abs_key = std::fs::canonicalize(&key_file).unwrap();
    assert_eq!(cfg["lock_key_file"].as_str(), abs_key.to_str());
    assert_eq!(
        cfg["issuer_public_key_file"].as_str(),
        std::fs::canonicalize(&pub_file).unwrap().to_str()
    );
    assert_eq!(cfg["mqtt"]["url"].as_str(), Some("mqtt://127.0.0.1:1883"));
    assert_eq!(cfg["company_id"].as_integer(), Some(0xFFFF));
    assert!(cfg["state_dir"].as_str().is_some());

    // registry.db is private and holds the lock's public key.
    assert_eq!(mode(&p.state().join("registry.db")), 0o600);
    let registered_lock = store(&p.state()).lock(&p.lock_id).unwrap().unwrap();
    assert!(
        registered_lock
            .public_key_pem
            .starts_with("-----BEGIN PUBLIC KEY-----")
    );
    let lock_key = load_private_key(&key_file, "lock key").unwrap();
    let registered = registered_lock.public_key().unwrap();
    assert!(registered == lock_key.public_key());
    // A signature by the lock's key verifies with the registered key.
    let mut rng = common::rng(1);
    let sig = lock_key.sign(&mut rng, DS_LOCK_EVENT, b"m");
    assert!(registered.verify(DS_LOCK_EVENT, b"m", &sig));

    // Same id again: refused without --force, re-keyed with it.
    let mut again = AddLockOptions::new(p.dir.path().join("other"), "mqtt://h:1883");
    again.lock_id = Some(p.lock_id);
    assert!(matches!(
        add_lock_with(&p.state(), &again),
        Err(IssuerdError::LockExists(id)) if id == p.lock_id
    ));
    again.force = true;
    add_lock_with(&p.state(), &again).unwrap();
    let rekeyed = store(&p.state()).lock(&p.lock_id).unwrap().unwrap();
    assert!(rekeyed.public_key().unwrap() != lock_key.public_key());
    assert!(rekeyed.key_rotated_at_ms.is_some());
}

#[test]
fn add_lock_needs_an_issuer_key_and_a_valid_broker_url() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let out = dir.path().join("lock");
    assert!(matches!(
        latchkey_issuer::add_lock(&state, None, &out, "mqtt://h:1883"),
        Err(IssuerdError::NoIssuerKey { .. })
    ));
    latchkey_issuer::keygen(&state).unwrap();
    let e = latchkey_issuer::add_lock(&state, None, &out, "http://u:secret@h").unwrap_err();
    assert!(matches!(e, IssuerdError::BrokerUrl { .. }), "{e:?}");
    assert!(!e.to_string().contains("secret"), "{e}");
}

#[test]
fn enroll_guest_writes_a_private_bundle_and_registers_the_guest() {
    let p = Provisioned::new();
    assert_eq!(mode(&p.bundle), 0o600);
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&p.bundle).unwrap()).unwrap();
    assert_eq!(v["latchkey_enrollment"], 1);
    assert_eq!(v["guest_id"], p.guest_id.to_string());
    assert_eq!(v["broker_url"], "mqtt://127.0.0.1:1883");
    assert_eq!(v["locks"], serde_json::json!([p.lock_id.to_string()]));
    assert_eq!(v["company_id"], 0xFFFF);
    assert_eq!(v["enrollment_key"].as_str().unwrap().len(), 64);

    let (id, key) = bundle(&p.bundle);
    let reg = store(&p.state());
    assert!(
        reg.enrollment_key(&id).unwrap() == key,
        "bundle and registry share the key"
    );
    let rules = reg.access_of_guest(&id).unwrap();
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0].lock_id, p.lock_id);
    let g = reg.guest(&id).unwrap().unwrap();
    assert!(!g.revoked());
    assert_eq!(g.key_version, 1);

    // Unknown locks, no locks, an existing bundle and an existing guest are refused.
    let out = p.dir.path().join("x.json");
    let stranger = latchkey::LockId([9; 16]);
    let e = enroll_guest(&p.state(), None, &[stranger], &out, "mqtt://h").unwrap_err();
    assert!(e.to_string().contains(&stranger.to_string()), "{e}");
    assert!(!out.exists());
    assert!(matches!(
        enroll_guest(&p.state(), None, &[], &out, "mqtt://h"),
        Err(IssuerdError::NoLocks)
    ));
    assert!(matches!(
        enroll_guest(&p.state(), None, &[p.lock_id], &p.bundle, "mqtt://h"),
        Err(IssuerdError::AlreadyExists { .. })
    ));
    let mut again = EnrollGuestOptions::new(vec![p.lock_id], &out, "mqtt://h");
    again.guest_id = Some(p.guest_id);
    assert!(matches!(
        enroll_guest_with(&p.state(), &again),
        Err(IssuerdError::GuestExists(id)) if id == p.guest_id
    ));
}

#[test]
fn a_group_or_world_readable_private_key_is_refused_with_the_fix() {
    let p = Provisioned::new();
    let key = p.state().join("issuer.key.pem");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = load_private_key(&key, "issuer private key").unwrap_err();
    let msg = e.to_string();
    assert!(
        matches!(e, IssuerdError::InsecurePermissions { mode: 0o644, .. }),
        "{e:?}"
    );
    assert!(msg.contains(&key.display().to_string()), "{msg}");
    assert!(msg.contains("chmod 600"), "{msg}");

    // The daemon refuses to start on it too.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let started = rt.block_on(Issuerd::start(options(&p.state())));
    match started {
        Err(IssuerdError::InsecurePermissions { path, .. }) => assert_eq!(path, key),
        other => panic!("{other:?}"),
    }

    // So is a lock key, a registry that others can read, and a readable KEK.
    let lock_key = p.lock_dir.join("lock.key.pem");
    std::fs::set_permissions(&lock_key, std::fs::Permissions::from_mode(0o640)).unwrap();
    assert!(matches!(
        load_private_key(&lock_key, "lock key"),
        Err(IssuerdError::InsecurePermissions { .. })
    ));
    let open = || {
        latchkey_issuer::store::Store::open(
            &latchkey_issuer::state::StatePaths::new(p.state()),
            &latchkey_issuer::store::KekSource::Auto,
            latchkey_issuer::store::OpenMode::Existing,
        )
    };
    let reg = p.state().join("registry.db");
    std::fs::set_permissions(&reg, std::fs::Permissions::from_mode(0o604)).unwrap();
    assert!(matches!(
        open(),
        Err(IssuerdError::InsecurePermissions { path, .. }) if path == reg
    ));
    std::fs::set_permissions(&reg, std::fs::Permissions::from_mode(0o600)).unwrap();
    let kek = p.state().join("kek.key");
    assert_eq!(mode(&kek), 0o600);
    std::fs::set_permissions(&kek, std::fs::Permissions::from_mode(0o640)).unwrap();
    let e = open().unwrap_err();
    assert!(
        matches!(&e, IssuerdError::InsecurePermissions { path, .. } if *path == kek),
        "{e:?}"
    );
    assert!(e.to_string().contains("chmod 600"), "{e}");
}

#[test]
fn a_key_file_of_the_wrong_kind_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("k.pem");
    let mut rng = common::rng(2);
    let k = RsaPrivateKey::generate(&mut rng, 2048).unwrap();
    let public = latchkey_issuer::keys::public_key_pem(&k.public_key()).unwrap();
    std::fs::write(&f, public).unwrap();
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
    let e = load_private_key(&f, "lock key").unwrap_err().to_string();
    assert!(e.contains("PRIVATE KEY") && e.contains("PUBLIC KEY"), "{e}");
}
