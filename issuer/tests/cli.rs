//! The registry commands of the binary: enrollment with QR files and access rules, show,
//! set, audit, alerts, admin users, and re-keying the database.

// Test code, helpers included: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use latchkey_issuer::password::{PasswordCheck, verify_password};

struct Cli {
    _dir: tempfile::TempDir,
    root: PathBuf,
    state: PathBuf,
}

impl Cli {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_owned();
        Self {
            state: root.join("state"),
            root,
            _dir: dir,
        }
    }

    fn raw(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_latchkey-issuer"))
            .arg("--state-dir")
            .arg(&self.state)
            .args(args)
            .env("RUST_LOG", "warn")
            .env_remove("LATCHKEY_ISSUER_KEK")
            .output()
            .unwrap()
    }

    /// Runs a command that must succeed; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.raw(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs a command that must fail; returns stderr.
    fn fails(&self, args: &[&str]) -> String {
        let out = self.raw(args);
        assert!(!out.status.success(), "{args:?} succeeded");
        String::from_utf8(out.stderr).unwrap()
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        serde_json::from_str(&self.ok(args)).unwrap()
    }

    fn path(&self, name: &str) -> String {
        self.root.join(name).to_str().unwrap().to_owned()
    }
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// The text of the QR code in a PNG.
fn decode_png(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap();
    let mut reader = png::Decoder::new(std::io::Cursor::new(bytes))
        .read_info()
        .unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let (w, h) = (info.width as usize, info.height as usize);
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| buf[y * w + x]);
    let grids = img.detect_grids();
    assert_eq!(grids.len(), 1);
    grids[0].decode().unwrap().1
}

#[test]
fn enrollment_with_qr_files_and_access_rules_shown_and_changed() {
    let c = Cli::new();
    assert_eq!(c.ok(&["keygen"]).trim().len(), 64);
    assert_eq!(mode(&c.state.join("kek.key")), 0o600);
    assert_eq!(mode(&c.state.join("registry.db")), 0o600);
    let lock = c
        .ok(&[
            "add-lock",
            "--out",
            &c.path("door"),
            "--broker-url",
            "mqtt://10.0.0.1:1883",
            "--name",
            "front door",
            "--timezone",
            "Europe/Zurich",
            "--position",
            "47.3769,8.5417",
        ])
        .trim()
        .to_owned();
    let png = c.root.join("alice.png");
    let svg = c.root.join("alice.svg");
    let guest = c
        .ok(&[
            "enroll-guest",
            "--lock",
            &lock,
            "--name",
            "alice",
            "--role",
            "resident",
            "--valid-from",
            "2026-01-01T00:00:00Z",
            "--valid-until",
            "1893456000",
            "--schedule",
            "Mon-Fri 08:00-18:00",
            "--max-unlocks",
            "20",
            "--qr-png",
            png.to_str().unwrap(),
            "--qr-svg",
            svg.to_str().unwrap(),
            "--no-qr",
            "--broker-url",
            "mqtt://10.0.0.1:1883",
        ])
        .trim()
        .to_owned();
    assert_eq!(guest.len(), 32, "the guest id on stdout");
    assert_eq!(mode(&png), 0o600);
    assert_eq!(mode(&svg), 0o600);
    // The QR text is the compact JSON bundle.
    let text = decode_png(&png);
    assert!(!text.contains('\n'));
    let bundle: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(bundle["guest_id"], guest.as_str());
    assert_eq!(bundle["locks"][0], lock.as_str());
    assert_eq!(bundle["broker_url"], "mqtt://10.0.0.1:1883");
    assert_eq!(bundle["enrollment_key"].as_str().unwrap().len(), 64);
    assert!(std::fs::read_to_string(&svg).unwrap().contains("<svg"));

    let g = c.json(&["show-guest", "--guest", &guest, "--json"]);
    assert_eq!(g["name"], "alice");
    assert_eq!(g["key_version"], 1);
    let rule = &g["access"][0];
    assert_eq!(rule["lock_id"], lock.as_str());
    assert_eq!(rule["role"], "resident");
    assert_eq!(rule["valid_from"], 1_767_225_600u64);
    assert_eq!(rule["valid_until"], 1_893_456_000u64);
    assert_eq!(rule["schedule"], "Mon-Fri 08:00-18:00");
    assert_eq!(rule["max_unlocks"], 20);
    assert!(
        !g.to_string()
            .contains(bundle["enrollment_key"].as_str().unwrap()),
        "never the key"
    );
    let text_out = c.ok(&["show-guest", "--guest", &guest]);
    assert!(
        text_out.contains("role resident") && text_out.contains("max 20 unlocks"),
        "{text_out}"
    );

    let l = c.json(&["show-lock", "--lock", &lock, "--json"]);
    assert_eq!(l["name"], "front door");
    assert_eq!(l["timezone"], "Europe/Zurich");
    assert_eq!(l["coordinates"][0], 47.3769);
    assert_eq!(l["key_fingerprint"].as_str().unwrap().len(), 64);
    assert_eq!(l["access"][0]["guest_id"], guest.as_str());

    // set-access changes only what it names; `none` clears.
    c.ok(&[
        "set-access",
        "--guest",
        &guest,
        "--lock",
        &lock,
        "--max-unlocks",
        "none",
        "--valid-until",
        "none",
    ]);
    let rule = &c.json(&["show-guest", "--guest", &guest, "--json"])["access"][0];
    assert_eq!(rule["max_unlocks"], serde_json::Value::Null);
    assert_eq!(rule["valid_until"], serde_json::Value::Null);
    assert_eq!(rule["role"], "resident");
    assert_eq!(rule["schedule"], "Mon-Fri 08:00-18:00");
    let e = c.fails(&[
        "set-access",
        "--guest",
        &guest,
        "--lock",
        &lock,
        "--valid-from",
        "2030-01-01T00:00:00Z",
        "--valid-until",
        "2029-01-01T00:00:00Z",
    ]);
    assert!(e.contains("valid_from") && e.contains("before"), "{e}");
    let e = c.fails(&[
        "set-access",
        "--guest",
        &guest,
        "--lock",
        &lock,
        "--schedule",
        "",
    ]);
    assert!(e.contains("schedule"), "{e}");
    let e = c.fails(&["set-access", "--guest", &guest, "--lock", &"0".repeat(32)]);
    assert!(e.contains("not registered"), "{e}");

    c.ok(&[
        "set-lock",
        "--lock",
        &lock,
        "--timezone",
        "Asia/Tokyo",
        "--position",
        "none",
    ]);
    let l = c.json(&["show-lock", "--lock", &lock, "--json"]);
    assert_eq!(l["timezone"], "Asia/Tokyo");
    assert_eq!(l["coordinates"], serde_json::Value::Null);
    let e = c.fails(&["set-lock", "--lock", &lock, "--timezone", "Nowhere/Land"]);
    assert!(e.contains("Nowhere/Land"), "{e}");

    // Existing files are not overwritten; with no output and no terminal nothing happens.
    let e = c.fails(&[
        "enroll-guest",
        "--lock",
        &lock,
        "--qr-png",
        png.to_str().unwrap(),
    ]);
    assert!(e.contains("already exists"), "{e}");
    let e = c.fails(&["enroll-guest", "--lock", &lock]);
    assert!(e.contains("nothing would hand the guest its bundle"), "{e}");

    // The audit trail has the admin actions, filterable.
    let all = c.json(&["audit", "--json", "--source", "admin"]);
    let kinds: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    for k in ["lock_added", "guest_enrolled", "access_set", "lock_updated"] {
        assert!(kinds.contains(&k), "{k} in {kinds:?}");
    }
    let of_guest = c.json(&["audit", "--json", "--guest", &guest, "--kind", "access_set"]);
    assert_eq!(of_guest.as_array().unwrap().len(), 1);
    assert_eq!(of_guest[0]["actor"], "cli");
    let none = c.json(&["audit", "--json", "--until", "2000-01-01T00:00:00Z"]);
    assert!(none.as_array().unwrap().is_empty());
    let limited = c.json(&["audit", "--json", "--limit", "2"]);
    assert_eq!(limited.as_array().unwrap().len(), 2);

    // list without a daemon reads the registry.
    let v = c.json(&["list", "--json"]);
    assert_eq!(v["mqtt"], "not running");
    assert_eq!(v["guests"][0]["name"], "alice");

    // Alerts: none yet; acknowledging an unknown one is an error.
    let alerts = c.json(&["alerts", "--json"]);
    assert!(alerts.as_array().unwrap().is_empty());
    assert!(c.fails(&["alerts", "--ack", "nope"]).contains("no alert"));
}

#[test]
fn admin_users_are_argon2id_hashes_set_from_a_private_file() {
    let c = Cli::new();
    c.ok(&["keygen"]);
    let pw = c.root.join("pw");
    std::fs::write(&pw, "correct horse battery\n").unwrap();
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = c.fails(&[
        "admin-user",
        "add",
        "alice",
        "--password-file",
        pw.to_str().unwrap(),
    ]);
    assert!(e.contains("chmod 600"), "{e}");
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
    c.ok(&[
        "admin-user",
        "add",
        "alice",
        "--password-file",
        pw.to_str().unwrap(),
    ]);
    let e = c.fails(&[
        "admin-user",
        "add",
        "alice",
        "--password-file",
        pw.to_str().unwrap(),
    ]);
    assert!(e.contains("already exists"), "{e}");
    let users = c.json(&["admin-user", "list", "--json"]);
    assert_eq!(users[0]["name"], "alice");
    assert!(!users.to_string().contains("argon2"), "never the hash");

    let conn = rusqlite::Connection::open(c.state.join("registry.db")).unwrap();
    let hash_of_alice = || -> String {
        conn.query_row(
            "SELECT password_hash FROM admin_users WHERE name = 'alice'",
            [],
            |r| r.get(0),
        )
        .unwrap()
    };
    let hash = hash_of_alice();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert_eq!(
        verify_password("correct horse battery", &hash),
        PasswordCheck::Match,
        "the web's login accepts what admin-user stored"
    );

    std::fs::write(&pw, "another good password\n").unwrap();
    c.ok(&[
        "admin-user",
        "passwd",
        "alice",
        "--password-file",
        pw.to_str().unwrap(),
    ]);
    assert_eq!(
        verify_password("another good password", &hash_of_alice()),
        PasswordCheck::Match
    );
    std::fs::write(&pw, "short\n").unwrap();
    assert!(
        c.fails(&[
            "admin-user",
            "passwd",
            "alice",
            "--password-file",
            pw.to_str().unwrap()
        ])
        .contains("10")
    );
    assert!(
        c.fails(&[
            "admin-user",
            "passwd",
            "bob",
            "--password-file",
            pw.to_str().unwrap()
        ])
        .contains("no admin user")
    );
    c.ok(&["admin-user", "remove", "alice"]);
    assert!(
        c.json(&["admin-user", "list", "--json"])
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[test]
fn rekey_db_reseals_under_a_new_kek_and_the_old_one_is_refused() {
    let c = Cli::new();
    c.ok(&["keygen"]);
    let lock = c
        .ok(&[
            "add-lock",
            "--out",
            &c.path("door"),
            "--broker-url",
            "mqtt://h:1883",
        ])
        .trim()
        .to_owned();
    let bundle = c.path("g.json");
    let guest = c
        .ok(&[
            "enroll-guest",
            "--lock",
            &lock,
            "--out",
            &bundle,
            "--broker-url",
            "mqtt://h:1883",
        ])
        .trim()
        .to_owned();
    let new_kek = c.path("new.kek");
    c.ok(&["rekey-db", "--new-kek-file", &new_kek]);
    assert_eq!(mode(Path::new(&new_kek)), 0o600);

    // The old kek.key no longer opens the registry; the new one does, with the same keys.
    let e = c.fails(&["show-guest", "--guest", &guest]);
    assert!(e.contains("does not match"), "{e}");
    let g = c.json(&[
        "--kek-file",
        &new_kek,
        "show-guest",
        "--guest",
        &guest,
        "--json",
    ]);
    assert_eq!(g["key_version"], 1);
    let reg = latchkey_issuer::store::Store::open(
        &latchkey_issuer::state::StatePaths::new(&c.state),
        &latchkey_issuer::store::KekSource::File(new_kek.clone().into()),
        latchkey_issuer::store::OpenMode::Existing,
    )
    .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&bundle).unwrap()).unwrap();
    let mut key = [0u8; 32];
    hex::decode_to_slice(v["enrollment_key"].as_str().unwrap(), &mut key).unwrap();
    assert!(
        reg.enrollment_key(&guest.parse().unwrap()).unwrap()
            == latchkey::crypto::EnrollmentKey::from_bytes(key)
    );
    drop(reg);

    // From the environment too.
    let out = Command::new(env!("CARGO_BIN_EXE_latchkey-issuer"))
        .arg("--state-dir")
        .arg(&c.state)
        .args(["show-guest", "--guest", &guest, "--json"])
        .env(
            "LATCHKEY_ISSUER_KEK",
            std::fs::read_to_string(&new_kek).unwrap().trim(),
        )
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(env!("CARGO_BIN_EXE_latchkey-issuer"))
        .arg("--state-dir")
        .arg(&c.state)
        .args(["list"])
        .env("LATCHKEY_ISSUER_KEK", "not hex")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("LATCHKEY_ISSUER_KEK"));
}
