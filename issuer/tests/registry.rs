//! The registry at rest: enrollment keys sealed under the KEK and absent from every
//! database file, a wrong KEK named as such, schema versions, and the import of the JSON
//! state files the issuer kept before.

// Test code, helpers included: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use latchkey::crypto::EnrollmentKey;
use latchkey::crypto::rsa::RsaPrivateKey;
use latchkey::{GrantId, GuestId, Issuer, IssuerConfig, LiveGrant, LockId, SessionId};
use latchkey_issuer::state::StatePaths;
use latchkey_issuer::store::kek::read_kek_file;
use latchkey_issuer::store::{KekSource, OpenMode, SCHEMA_VERSION, Store};
use latchkey_issuer::{IssuerdError, keys};

use common::*;

fn open(state: &Path, kek: KekSource) -> Result<Store, IssuerdError> {
    Store::open(&StatePaths::new(state), &kek, OpenMode::Existing)
}

/// Every file of the database, as bytes.
fn database_bytes(state: &Path) -> Vec<(String, Vec<u8>)> {
    std::fs::read_dir(state)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("registry.db")
        })
        .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn enrollment_keys_are_not_recoverable_from_the_database_files() {
    let p = Provisioned::new();
    // A connection held open from here keeps the writes below in the WAL file (the last
    // connection to close checkpoints it away).
    let reg = store(&p.state());
    let mut bundles = vec![p.bundle.clone()];
    for i in 0..5 {
        bundles.push(p.enroll(&format!("g{i}")).1);
    }
    // Rotation and re-enrolment write keys again; secure delete must not leave the old
    // ones in free pages either.
    let rotated = p.dir.path().join("rotated.json");
    let (rotated_id, _) = bundle(&bundles[1]);
    latchkey_issuer::rotate_guest_key(
        &p.state(),
        &latchkey_issuer::RotateGuestKeyOptions {
            guest_id: rotated_id,
            files: latchkey_issuer::BundleFiles {
                json: Some(rotated.clone()),
                ..Default::default()
            },
            broker_url: "mqtt://127.0.0.1:1883".into(),
            company_id: 0xFFFF,
            force: false,
            kek: KekSource::Auto,
        },
    )
    .unwrap();
    bundles.push(rotated);

    let files = database_bytes(&p.state());
    let wal = files
        .iter()
        .find(|(n, _)| n.ends_with("registry.db-wal"))
        .expect("a WAL file");
    assert!(wal.1.len() > 4096, "the WAL holds the recent writes");
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert!(
        names.iter().any(|n| n.ends_with("registry.db-shm")),
        "{names:?}"
    );
    let kek = read_kek_file(&p.state().join("kek.key")).unwrap();
    for b in &bundles {
        let (id, key) = bundle(b);
        let raw = key.expose();
        let lower = hex::encode(raw);
        let upper = lower.to_uppercase();
        for (name, bytes) in &files {
            assert!(!contains(bytes, raw), "raw key of {id} in {name}");
            assert!(
                !contains(bytes, lower.as_bytes()),
                "hex key of {id} in {name}"
            );
            assert!(
                !contains(bytes, upper.as_bytes()),
                "HEX key of {id} in {name}"
            );
        }
    }
    // Nor the KEK.
    let kek_hex = kek.to_hex();
    for (name, bytes) in &files {
        assert!(!contains(bytes, kek_hex.as_bytes()), "KEK in {name}");
    }
    // Yet the registry opens every current key.
    for b in &bundles[2..] {
        let (id, key) = bundle(b);
        assert!(reg.enrollment_key(&id).unwrap() == key);
    }
}

#[test]
fn a_wrong_kek_is_refused_with_a_clear_error() {
    let p = Provisioned::new();
    let other = p.dir.path().join("other.kek");
    std::fs::write(&other, format!("{}\n", "ab".repeat(32))).unwrap();
    std::fs::set_permissions(&other, std::fs::Permissions::from_mode(0o600)).unwrap();
    let e = open(&p.state(), KekSource::File(other.clone())).unwrap_err();
    assert!(matches!(e, IssuerdError::WrongKek { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains(&other.display().to_string()), "{msg}");
    assert!(msg.contains("registry.db"), "{msg}");
    assert!(msg.contains("--kek-file"), "{msg}");

    // A missing KEK file for an existing database is never replaced by a new one.
    std::fs::remove_file(p.state().join("kek.key")).unwrap();
    let e = open(&p.state(), KekSource::Auto).unwrap_err();
    assert!(matches!(e, IssuerdError::NoKek { .. }), "{e:?}");
    assert!(!p.state().join("kek.key").exists());

    // The daemon refuses to start with a wrong KEK.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut o = options(&p.state());
    o.kek = KekSource::File(other);
    assert!(matches!(
        rt.block_on(latchkey_issuer::Issuerd::start(o)),
        Err(IssuerdError::WrongKek { .. })
    ));
}

#[test]
fn migrations_apply_from_empty_and_a_newer_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    // Read-only use of a directory without a registry creates nothing.
    assert!(matches!(
        open(&state, KekSource::Auto),
        Err(IssuerdError::NoRegistry { .. })
    ));
    assert!(!state.exists());

    let s = Store::open(&StatePaths::new(&state), &KekSource::Auto, OpenMode::Create).unwrap();
    drop(s);
    let db = state.join("registry.db");
    let mode = std::fs::metadata(&db).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let conn = rusqlite::Connection::open(&db).unwrap();
    let v: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(v, SCHEMA_VERSION);
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for t in [
        "access",
        "admin_sessions",
        "admin_users",
        "alerts",
        "audit",
        "grants",
        "guests",
        "locks",
        "meta",
    ] {
        assert!(tables.iter().any(|x| x == t), "{t} in {tables:?}");
    }
    let mode: String = conn
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");

    // Reopening applies nothing again; a database from a newer issuer is refused untouched.
    open(&state, KekSource::Auto).unwrap();
    conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .unwrap();
    drop(conn);
    let e = open(&state, KekSource::Auto).unwrap_err();
    assert!(
        matches!(e, IssuerdError::DatabaseTooNew { found, supported, .. }
            if found == SCHEMA_VERSION + 1 && supported == SCHEMA_VERSION),
        "{e:?}"
    );
    assert!(e.to_string().contains("newer latchkey-issuer"), "{e}");
}

// ------------------------------------------------------------------- legacy import

fn write_private(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// A state directory as the issuer left it before the registry moved to SQLite: keys,
/// registry.json, grants.json, revocations.json (written in their exact former shape).
struct LegacyState {
    dir: tempfile::TempDir,
    lock_id: LockId,
    live: (GuestId, EnrollmentKey),
    revoked_guest: GuestId,
    live_grant: GrantId,
    revoked_grant: GrantId,
    revocation: Vec<u8>,
}

impl LegacyState {
    fn state(&self) -> std::path::PathBuf {
        self.dir.path().join("state")
    }

    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        std::fs::create_dir(&state).unwrap();
        std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700)).unwrap();
        let mut rng = rng(0x33);
        let issuer_key = RsaPrivateKey::generate(&mut rng, 2048).unwrap();
        write_private(
            &state.join("issuer.key.pem"),
            &keys::private_key_pem(&issuer_key).unwrap(),
        );
        std::fs::write(
            state.join("issuer.pub.pem"),
            keys::public_key_pem(&issuer_key.public_key()).unwrap(),
        )
        .unwrap();
        let lock_key = RsaPrivateKey::generate(&mut rng, 2048).unwrap();
        let lock_id = LockId([0x11; 16]);
        let live_id = GuestId([0x22; 16]);
        let live_key = [0x5a; 32];
        let revoked_guest = GuestId([0x23; 16]);
        let now_s = now().secs();
        let live_grant = GrantId([0x44; 16]);
        let revoked_grant = GrantId([0x45; 16]);

        // The revocation as the old daemon signed it.
        let mut core = Issuer::new(IssuerConfig::new(issuer_key)).unwrap();
        core.restore_live_grant(LiveGrant {
            grant_id: revoked_grant,
            lock_id,
            guest_id: live_id,
            session_id: SessionId([0x66; 8]),
            not_after: now_s + 600,
        });
        let revocation = core
            .revoke_grant(now(), revoked_grant, &mut rng)
            .unwrap()
            .payload;

        let registry = serde_json::json!({
            "latchkey_issuer_registry": 1,
            "locks": { lock_id.to_string(): keys::public_key_pem(&lock_key.public_key()).unwrap() },
            "guests": {
                live_id.to_string(): {
                    "enrollment_key_hex": hex::encode(live_key),
                    "allowed_locks": [lock_id.to_string()],
                    "revoked": false
                },
                revoked_guest.to_string(): {
                    "enrollment_key_hex": "77".repeat(32),
                    "allowed_locks": [lock_id.to_string()],
                    "revoked": true
                }
            }
        });
        write_private(
            &state.join("registry.json"),
            &serde_json::to_string_pretty(&registry).unwrap(),
        );
        let grants = serde_json::json!({
            "latchkey_issuer_grants": 1,
            "grants": [{
                "grant_id": live_grant.to_string(),
                "lock_id": lock_id.to_string(),
                "guest_id": live_id.to_string(),
                "session_id": SessionId([0x55; 8]).to_string(),
                "not_after": now_s + 900
            }]
        });
        write_private(
            &state.join("grants.json"),
            &serde_json::to_string_pretty(&grants).unwrap(),
        );
        let revocations = serde_json::json!({
            "latchkey_issuer_revocations": 1,
            "pending": [{
                "grant_id": revoked_grant.to_string(),
                "lock_id": lock_id.to_string(),
                "expires_at": now_s + 600,
                "payload_hex": hex::encode(&revocation),
                "publishes": 3
            }]
        });
        write_private(
            &state.join("revocations.json"),
            &serde_json::to_string_pretty(&revocations).unwrap(),
        );
        Self {
            dir,
            lock_id,
            live: (live_id, EnrollmentKey::from_bytes(live_key)),
            revoked_guest,
            live_grant,
            revoked_grant,
            revocation,
        }
    }
}

#[test]
fn legacy_json_state_is_imported_once_and_renamed() {
    let l = LegacyState::new();
    let state = l.state();
    // Read-only commands import too (the files exist), and the KEK is created.
    let reg = open(&state, KekSource::Auto).unwrap();
    assert!(state.join("kek.key").exists());
    for f in ["registry.json", "grants.json", "revocations.json"] {
        assert!(!state.join(f).exists(), "{f} renamed");
        assert!(state.join(format!("{f}.imported")).exists(), "{f}.imported");
    }
    let locks = reg.locks().unwrap();
    assert_eq!(locks.len(), 1);
    assert_eq!(locks[0].lock_id, l.lock_id);
    assert_eq!(locks[0].timezone, "UTC");
    let (live_id, live_key) = &l.live;
    assert!(reg.enrollment_key(live_id).unwrap() == *live_key);
    assert_eq!(reg.guest(live_id).unwrap().unwrap().key_version, 1);
    assert!(reg.guest(&l.revoked_guest).unwrap().unwrap().revoked());
    assert_eq!(reg.access_of_guest(live_id).unwrap()[0].lock_id, l.lock_id);

    let now_s = now().secs();
    let live = reg.live_grants(now_s).unwrap();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].grant_id, l.live_grant);
    let pending = reg.pending_revocations(now_s).unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].grant_id, l.revoked_grant);
    assert_eq!(pending[0].payload, l.revocation);
    assert_eq!(pending[0].publishes, 3);
    let imported = reg
        .audit(
            &latchkey_issuer::store::AuditFilter {
                kind: Some("legacy_imported".into()),
                ..Default::default()
            },
            10,
            0,
        )
        .unwrap();
    assert_eq!(imported.len(), 1);
    assert_eq!(imported[0].entry.detail.as_ref().unwrap()["guests"], 2);
    // The plaintext keys are not in the database.
    for (name, bytes) in database_bytes(&state) {
        assert!(
            !contains(&bytes, hex::encode(live_key.expose()).as_bytes()),
            "{name}"
        );
        assert!(!contains(&bytes, live_key.expose()), "{name}");
    }
    drop(reg);
    // A second open imports nothing more.
    let again = open(&state, KekSource::Auto).unwrap();
    assert_eq!(again.guests().unwrap().len(), 2);
}

#[tokio::test]
async fn a_daemon_on_a_legacy_state_directory_serves_its_guests_and_revocations() {
    init_logs();
    let l = LegacyState::new();
    let issuer = start_issuer(&l.state()).await;
    let st = issuer.status().await.unwrap();
    assert_eq!(st.locks, vec![l.lock_id]);
    assert_eq!(st.guests.len(), 2);
    assert!(
        st.guests
            .iter()
            .any(|g| g.guest_id == l.revoked_guest && g.revoked)
    );
    assert_eq!(st.live_grants.len(), 1);
    assert_eq!(st.pending_revocations[0].grant_id, l.revoked_grant);

    // The imported guest's key still opens its requests.
    let url = issuer.broker_url().to_owned();
    let (id, key) = (l.live.0, l.live.1.clone());
    let mut guest = GuestPeer::with_key(id, key, &url).await;
    let mut events = issuer.subscribe();
    let req = guest.request(l.lock_id);
    guest.send(&req).await;
    let issued = expect_event(&mut events, "a grant", |e| match e {
        latchkey_issuer::IssuerEvent::GrantIssued(g) => Some(*g),
        _ => None,
    })
    .await;
    assert_eq!(issued.guest_id, id);
    issuer.shutdown().await;
}
