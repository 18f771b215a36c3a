//! The `latchkey-guest` binary: enroll, show, unlock exit codes.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::{IssuerLog, TestClock, World, spawn_issuer, within};

const BIN: &str = env!("CARGO_BIN_EXE_latchkey-guest");

fn run(args: &[&str], cwd: &Path) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(cwd)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .expect("the binary runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn help_explains_every_command_and_the_exit_status() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(&["--help"], dir.path());
    assert!(out.status.success());
    let help = text(&out.stdout);
    for word in [
        "enroll",
        "unlock",
        "show",
        "Exit status",
        "--config",
        "--log-format",
    ] {
        assert!(help.contains(word), "--help lacks {word}:\n{help}");
    }
    let out = run(&["unlock", "--help"], dir.path());
    let help = text(&out.stdout);
    for word in [
        "--lock",
        "--timeout-s",
        "--ble",
        "--attempt-timeout-s",
        "--json",
        "sim",
    ] {
        assert!(help.contains(word), "unlock --help lacks {word}:\n{help}");
    }
}

#[test]
fn enroll_stores_the_bundle_privately_and_show_hides_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let key = "11".repeat(32);
    let bundle = format!(
        r#"{{"latchkey_enrollment":1,"guest_id":"{}","enrollment_key":"{key}","broker_url":"mqtt://127.0.0.1:1883","locks":["{}"],"company_id":65535}}"#,
        "ab".repeat(16),
        "cd".repeat(16)
    );
    let out = run(
        &["enroll", "--text", &bundle, "--state-dir", "st"],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stored = dir.path().join("st/enrollment.json");
    assert_eq!(
        fs::metadata(&stored).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        fs::metadata(dir.path().join("st"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o700
    );
    assert!(!text(&out.stdout).contains(&key));

    let out = run(&["show", "--state-dir", "st"], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert!(shown.contains(&"ab".repeat(16)), "{shown}");
    assert!(shown.contains(&"cd".repeat(16)), "{shown}");
    assert!(!shown.contains(&key), "{shown}");

    // Another guest's bundle does not silently replace this one.
    let other = bundle.replace(&"ab".repeat(16), &"ef".repeat(16));
    let out = run(
        &["enroll", "--text", &other, "--state-dir", "st"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--force"),
        "{}",
        text(&out.stderr)
    );
    let out = run(
        &["enroll", "--text", &other, "--state-dir", "st", "--force"],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn enroll_refuses_bad_bundles_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        &["enroll", "--text", "{\"latchkey_enrollment\":2}"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("unsupported enrollment bundle version 2"));

    let file = dir.path().join("b.json");
    fs::write(&file, "{}").unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
    let out = run(&["enroll", "--bundle", "b.json"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("chmod 600"),
        "{}",
        text(&out.stderr)
    );

    let out = run(
        &["unlock", "--lock", &"00".repeat(16), "--state-dir", "none"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("enroll"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unlock_without_a_lock_in_range_exits_1_with_the_reason() {
    let w = World::new(TestClock::system()).await;
    let mut issuer = spawn_issuer(&w).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("enrollment.json");
    w.bundle().save(&path).unwrap();
    let lock = w.lock_id.to_string();
    let cwd = dir.path().to_owned();
    let out = tokio::task::spawn_blocking(move || {
        run(
            &[
                "unlock",
                "--lock",
                &lock,
                "--bundle",
                "enrollment.json",
                "--ble",
                "sim",
                "--attempt-timeout-s",
                "1",
                "--json",
            ],
            &cwd,
        )
    })
    .await
    .unwrap();
    // The grant came over MQTT; then nothing on the simulated air answered.
    assert_eq!(
        within(5, "issuer log", issuer.log.recv()).await,
        Some(IssuerLog::Granted(w.guest_id))
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("no lock advertising the Latchkey service"),
        "{stderr}"
    );
    let v: serde_json::Value = serde_json::from_str(text(&out.stdout).trim()).unwrap();
    assert_eq!(v["outcome"], "failed");
}
