//! Enrollment by QR code: the issuer renders the bundle as a PNG, the guest reads it back
//! (`enroll --qr-image`), or takes the QR text (`enroll --text`), and gets the same bundle.

// Test code, helpers included: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use latchkey_guest::EnrollmentBundle;
use latchkey_issuer::{EnrollGuestOptions, enroll};

const BIN: &str = env!("CARGO_BIN_EXE_latchkey-guest");

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .expect("the binary runs")
}

fn same(a: &EnrollmentBundle, b: &EnrollmentBundle) {
    assert_eq!(a.guest_id(), b.guest_id());
    assert!(a.enrollment_key() == b.enrollment_key(), "same key");
    assert_eq!(a.broker_url().to_string(), b.broker_url().to_string());
    assert_eq!(a.locks(), b.locks());
    assert_eq!(a.company_id(), b.company_id());
}

/// An issuer with one lock; enrolls a guest with a JSON bundle and a QR PNG.
fn enrolled(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf, String) {
    let state = dir.join("issuer");
    latchkey_issuer::keygen(&state).expect("keygen");
    let lock = latchkey_issuer::add_lock(&state, None, &dir.join("lock"), "mqtt://10.1.2.3:1883")
        .expect("add-lock");
    let json = dir.join("bundle.json");
    let png = dir.join("bundle.png");
    let mut opts = EnrollGuestOptions::new(vec![lock], &json, "mqtts://broker.example:8883");
    opts.qr_png = Some(png.clone());
    opts.company_id = 0x004C;
    let e = enroll(&state, &opts).expect("enroll-guest");
    (json, png, e.qr_text.to_string())
}

#[test]
fn the_issuers_qr_png_decodes_to_the_same_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let (json, png, qr_text) = enrolled(dir.path());
    let from_file = EnrollmentBundle::load(&json).expect("the JSON bundle");
    let from_qr = EnrollmentBundle::load_qr_png(&png).expect("the QR image");
    same(&from_file, &from_qr);
    assert_eq!(from_qr.company_id(), 0x004C);
    // The QR text is the compact form of the same JSON.
    assert!(!qr_text.contains('\n'));
    same(&from_file, &EnrollmentBundle::parse(&qr_text).unwrap());

    // Like a bundle file, an image others can read is refused.
    std::fs::set_permissions(&png, std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = EnrollmentBundle::load_qr_png(&png).unwrap_err().to_string();
    assert!(e.contains("chmod 600"), "{e}");
}

#[test]
fn enroll_qr_image_and_text_store_the_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let (json, png, qr_text) = enrolled(dir.path());
    let expected = EnrollmentBundle::load(&json).unwrap();

    let a = dir.path().join("guest-a");
    let out = run(&[
        "enroll",
        "--qr-image",
        png.to_str().unwrap(),
        "--state-dir",
        a.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stored = a.join("enrollment.json");
    assert_eq!(
        std::fs::metadata(&stored).unwrap().permissions().mode() & 0o777,
        0o600
    );
    same(&expected, &EnrollmentBundle::load(&stored).unwrap());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&expected.guest_id().to_string()),
        "{stdout}"
    );

    let b = dir.path().join("guest-b");
    let out = run(&[
        "enroll",
        "--text",
        &qr_text,
        "--state-dir",
        b.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    same(
        &expected,
        &EnrollmentBundle::load(b.join("enrollment.json")).unwrap(),
    );

    // A PNG without a QR code is a usage error that says so.
    let blank = dir.path().join("blank.png");
    std::fs::copy(dir.path().join("lock").join("lock.toml"), &blank).unwrap();
    std::fs::set_permissions(&blank, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = run(&[
        "enroll",
        "--qr-image",
        blank.to_str().unwrap(),
        "--state-dir",
        b.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot read an enrollment QR code"), "{err}");
    // --qr-image and --bundle exclude each other.
    let out = run(&[
        "enroll",
        "--qr-image",
        png.to_str().unwrap(),
        "--bundle",
        json.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
}
