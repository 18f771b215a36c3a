//! The enrollment bundle: every malformation has its own error, the file is private.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use latchkey::crypto::EnrollmentKey;
use latchkey::{GuestId, LockId};
use latchkey_guest::{BundleError, EnrollmentBundle};
use serde_json::{Value, json};

const GUEST: &str = "00112233445566778899aabbccddeeff";
const KEY: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";
const LOCK_A: &str = "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf";
const LOCK_B: &str = "b0b1b2b3b4b5b6b7b8b9babbbcbdbebf";

fn good() -> Value {
    json!({
        "latchkey_enrollment": 1,
        "guest_id": GUEST,
        "enrollment_key": KEY,
        "broker_url": "mqtts://guest:s3cret@broker.example:8883",
        "locks": [LOCK_A, LOCK_B],
        "company_id": 65535,
    })
}

fn with(field: &str, value: Value) -> String {
    let mut v = good();
    v[field] = value;
    v.to_string()
}

fn without(field: &str) -> String {
    let mut v = good();
    v.as_object_mut().expect("an object").remove(field);
    v.to_string()
}

fn err(text: &str) -> BundleError {
    match EnrollmentBundle::parse(text) {
        Ok(b) => panic!("accepted: {b:?}"),
        Err(e) => e,
    }
}

#[test]
fn a_good_bundle_parses() {
    let b = EnrollmentBundle::parse(&good().to_string()).unwrap();
    assert_eq!(b.guest_id(), GUEST.parse::<GuestId>().unwrap());
    assert_eq!(hex::encode(b.enrollment_key().expose()), KEY);
    assert_eq!(b.broker_url().host(), "broker.example");
    assert_eq!(b.broker_url().port(), 8883);
    assert_eq!(b.broker_url().password(), Some("s3cret"));
    assert_eq!(
        b.locks(),
        [LOCK_A.parse::<LockId>().unwrap(), LOCK_B.parse().unwrap()]
    );
    assert_eq!(b.company_id(), 0xFFFF);
    assert!(b.covers(&LOCK_A.parse().unwrap()));
    assert!(!b.covers(&LockId::ZERO));
}

#[test]
fn unknown_fields_are_ignored_and_company_id_may_be_hex() {
    let mut v = good();
    v["issued_by"] = json!("issuer-1");
    v["company_id"] = json!("0x05F1");
    let b = EnrollmentBundle::parse(&v.to_string()).unwrap();
    assert_eq!(b.company_id(), 0x05F1);
}

#[test]
fn debug_shows_neither_key_nor_password() {
    let b = EnrollmentBundle::parse(&good().to_string()).unwrap();
    let dbg = format!("{b:?}");
    assert!(!dbg.contains(KEY), "{dbg}");
    assert!(!dbg.contains(&KEY[..16]), "{dbg}");
    assert!(!dbg.contains("s3cret"), "{dbg}");
    assert!(dbg.contains(GUEST));
}

#[test]
fn malformed_json() {
    assert!(matches!(
        err("{\"latchkey_enrollment\": 1,"),
        BundleError::Json(_)
    ));
    assert!(matches!(err(""), BundleError::Json(_)));
    assert!(matches!(err("[1, 2]"), BundleError::NotAnObject));
    assert!(matches!(err("\"x\""), BundleError::NotAnObject));
    assert!(matches!(
        err("{\"guest_id\": \"x\"}"),
        BundleError::NotABundle
    ));
}

#[test]
fn wrong_version() {
    let e = err(&with("latchkey_enrollment", json!(2)));
    assert!(matches!(e, BundleError::UnsupportedVersion(2)));
    assert!(e.to_string().contains("version 2"), "{e}");
    for bad in [json!("1"), json!(1.5), json!(-1), json!(null)] {
        let e = err(&with("latchkey_enrollment", bad));
        assert!(
            matches!(
                e,
                BundleError::WrongType {
                    field: "latchkey_enrollment",
                    ..
                }
            ),
            "{e:?}"
        );
    }
}

#[test]
fn every_field_is_required() {
    for field in [
        "guest_id",
        "enrollment_key",
        "broker_url",
        "locks",
        "company_id",
    ] {
        let e = err(&without(field));
        assert!(
            matches!(e, BundleError::MissingField(f) if f == field),
            "{field}: {e:?}"
        );
    }
    assert!(matches!(
        err(&without("latchkey_enrollment")),
        BundleError::NotABundle
    ));
}

#[test]
fn wrong_json_types() {
    for (field, value) in [
        ("guest_id", json!(7)),
        ("enrollment_key", json!([1, 2])),
        ("broker_url", json!(false)),
        ("locks", json!(LOCK_A)),
        ("locks", json!([1])),
    ] {
        let e = err(&with(field, value));
        assert!(
            matches!(e, BundleError::WrongType { field: f, .. } if f == field),
            "{field}: {e:?}"
        );
    }
}

#[test]
fn bad_values() {
    assert!(matches!(
        err(&with("guest_id", json!("0011"))),
        BundleError::BadGuestId(_)
    ));
    // Ids have one text form: lowercase (topic ACLs match it by string).
    let upper = GUEST.to_ascii_uppercase();
    assert!(matches!(
        err(&with("guest_id", json!(upper))),
        BundleError::BadGuestId(_)
    ));
    assert!(matches!(
        err(&with("enrollment_key", json!(&KEY[..62]))),
        BundleError::BadEnrollmentKey
    ));
    let not_hex = format!("zz{}", &KEY[2..]);
    assert!(matches!(
        err(&with("enrollment_key", json!(not_hex))),
        BundleError::BadEnrollmentKey
    ));
    assert!(matches!(
        err(&with("broker_url", json!("http://broker"))),
        BundleError::BadBrokerUrl(_)
    ));
    assert!(matches!(
        err(&with("broker_url", json!("broker:1883"))),
        BundleError::BadBrokerUrl(_)
    ));
    assert!(matches!(
        err(&with("locks", json!([LOCK_A, "nope"]))),
        BundleError::BadLockId { index: 1, .. }
    ));
    assert!(matches!(
        err(&with("locks", json!([LOCK_A, LOCK_A]))),
        BundleError::DuplicateLock(_)
    ));
    for bad in [
        json!(65536),
        json!(-1),
        json!("ffff"),
        json!("0x10000"),
        json!(1.5),
    ] {
        let e = err(&with("company_id", bad.clone()));
        assert!(matches!(e, BundleError::BadCompanyId(_)), "{bad}: {e:?}");
    }
}

#[test]
fn errors_never_echo_the_key() {
    let e = err(&with("enrollment_key", json!(format!("{KEY}00"))));
    assert!(!e.to_string().contains(&KEY[..16]), "{e}");
}

#[test]
fn save_writes_0600_and_load_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("enrollment.json");
    let b = EnrollmentBundle::parse(&good().to_string()).unwrap();
    b.save(&path).unwrap();
    let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let back = EnrollmentBundle::load(&path).unwrap();
    assert_eq!(back.guest_id(), b.guest_id());
    assert_eq!(back.enrollment_key(), b.enrollment_key());
    assert_eq!(back.broker_url(), b.broker_url());
    assert_eq!(back.locks(), b.locks());
    assert_eq!(back.company_id(), b.company_id());
    // The file is the documented format, parseable by anyone.
    let v: Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(v, good());
    // Saving again replaces it atomically, still 0600, and leaves no temporary behind.
    b.save(&path).unwrap();
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn save_over_a_wide_open_file_tightens_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("enrollment.json");
    fs::write(&path, "old").unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    let b = EnrollmentBundle::new(
        GUEST.parse().unwrap(),
        EnrollmentKey::from_bytes([7; 32]),
        "mqtt://127.0.0.1:1883",
        vec![],
        0xFFFF,
    )
    .unwrap();
    b.save(&path).unwrap();
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(EnrollmentBundle::load(&path).unwrap().locks().is_empty());
}

#[test]
fn group_or_world_readable_bundle_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("enrollment.json");
    fs::write(&path, good().to_string()).unwrap();
    for mode in [0o644, 0o640, 0o604, 0o660] {
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        let e = EnrollmentBundle::load(&path).unwrap_err();
        assert!(
            matches!(e, BundleError::NotPrivate { mode: m, .. } if m == mode),
            "{e:?}"
        );
        let msg = e.to_string();
        assert!(msg.contains("chmod 600"), "{msg}");
        assert!(msg.contains(&path.display().to_string()), "{msg}");
    }
    fs::set_permissions(&path, fs::Permissions::from_mode(0o400)).unwrap();
    EnrollmentBundle::load(&path).unwrap();
}

#[test]
fn unreadable_missing_or_odd_files() {
    let dir = tempfile::tempdir().unwrap();
    let e = EnrollmentBundle::load(dir.path().join("missing.json")).unwrap_err();
    assert!(matches!(e, BundleError::Read { .. }), "{e:?}");
    let sub = dir.path().join("sub");
    fs::create_dir(&sub).unwrap();
    fs::set_permissions(&sub, fs::Permissions::from_mode(0o700)).unwrap();
    let e = EnrollmentBundle::load(&sub).unwrap_err();
    assert!(matches!(e, BundleError::NotAFile { .. }), "{e:?}");
    let big = dir.path().join("big.json");
    fs::write(&big, vec![b' '; 70 * 1024]).unwrap();
    fs::set_permissions(&big, fs::Permissions::from_mode(0o600)).unwrap();
    let e = EnrollmentBundle::load(&big).unwrap_err();
    assert!(matches!(e, BundleError::TooLarge { .. }), "{e:?}");
}
