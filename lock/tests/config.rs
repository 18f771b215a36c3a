//! lock.toml loading: keys, path resolution, overrides, refusals with clear messages.

// Test helpers outside #[test] fns count as non-test code for clippy; unwrapping is how
// a test fails here.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use latchkey_lock::keys::{private_key_pem, public_key_pem};
use latchkey_lock::{
    BleAdapter, ConfigError, ConfigOverrides, LoadedLockConfig, LockFileConfig, UnlockAction,
};

const LOCK_ID: &str = "00112233445566778899aabbccddeeff";

fn write(path: &Path, text: &str, mode: u32) {
    std::fs::write(path, text).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    #[cfg(not(unix))]
    let _ = mode;
}

/// A directory with the lock's key (0600), the issuer's public key and `lock.toml`.
fn setup(extra: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    write(
        &dir.path().join("lock.key.pem"),
        &private_key_pem(&common::key("lock-a")).unwrap(),
        0o600,
    );
    write(
        &dir.path().join("issuer.pub.pem"),
        &public_key_pem(&common::key("issuer").public_key()).unwrap(),
        0o644,
    );
    let config = dir.path().join("lock.toml");
    write(
        &config,
        &format!(
            "lock_id = \"{LOCK_ID}\"\nlock_key_file = \"lock.key.pem\"\n\
             issuer_public_key_file = \"issuer.pub.pem\"\nstate_dir = \"state\"\n{extra}"
        ),
        0o644,
    );
    (dir, config)
}

const MQTT: &str = "[mqtt]\nurl = \"mqtt://127.0.0.1:1883\"\n";

#[test]
fn a_minimal_file_loads_with_the_defaults() {
    let (dir, config) = setup(MQTT);
    let opts = LoadedLockConfig::from_file(&config).unwrap();
    assert_eq!(opts.lock_id.to_string(), LOCK_ID);
    assert_eq!(opts.mqtt.client_id, format!("latchkey-lock-{LOCK_ID}"));
    assert_eq!(opts.topic_prefix, "latchkey/v1");
    assert_eq!(opts.company_id, 0xFFFF);
    // Relative paths are resolved against the config file's directory.
    assert_eq!(opts.state_dir, Some(dir.path().join("state")));
    assert_eq!(opts.unlock, UnlockAction::Log);
    assert_eq!(opts.event_rate, (10, 50));
    assert_eq!(opts.tunables, latchkey_lock::Tunables::default());
    assert_eq!(opts.tunables.lockout_threshold, 5);
    assert_eq!(opts.status, latchkey_lock::StatusOptions::default());
    assert_eq!(opts.status.interval, Duration::from_secs(60));
}

#[test]
fn status_and_lockout_keys_load_with_paths_resolved() {
    let (dir, config) = setup(&format!(
        "{MQTT}[tunables]\nlockout_threshold = 0\nlockout_window_s = 60\n\
         lockout_duration_s = 10\n[status]\ninterval_s = 3600\n\
         battery_capacity_file = \"bat/capacity\"\n\
         mains_online_file = \"/sys/class/power_supply/AC/online\"\n\
         clock_synced_file = \"/run/systemd/timesync/synchronized\"\n"
    ));
    let opts = LoadedLockConfig::from_file(&config).unwrap();
    let t = opts.tunables;
    assert_eq!(
        (
            t.lockout_threshold,
            t.lockout_window_s,
            t.lockout_duration_s
        ),
        (0, 60, 10)
    );
    let cfg = opts.lock_config();
    assert_eq!(
        (
            cfg.lockout_threshold,
            cfg.lockout_window_s,
            cfg.lockout_duration_s
        ),
        (0, 60, 10)
    );
    let s = &opts.status;
    assert_eq!(s.interval, Duration::from_secs(3600));
    assert_eq!(
        s.battery_capacity_file.as_deref(),
        Some(dir.path().join("bat/capacity").as_path())
    );
    assert_eq!(
        s.mains_online_file.as_deref(),
        Some(Path::new("/sys/class/power_supply/AC/online"))
    );
    assert_eq!(
        s.clock_synced_file.as_deref(),
        Some(Path::new("/run/systemd/timesync/synchronized"))
    );
}

#[test]
fn command_line_values_override_the_file() {
    let (_dir, config) = setup(&format!(
        "company_id = 0x1234\n{MQTT}[tunables]\nrssi_threshold_dbm = -60\n\
         [unlock]\ngpio = {{ line = 4 }}\n[ble]\nadapter = \"hci0\"\n"
    ));
    let overrides = ConfigOverrides {
        broker_url: Some("mqtt://10.0.0.1:1999".into()),
        company_id: Some(0x0059),
        rssi_threshold_dbm: Some(-80),
        unlock_command: Some("/bin/true".into()),
        adapter: Some("hci1".into()),
        topic_prefix: Some("site/a".into()),
        ..Default::default()
    };
    let loaded = LoadedLockConfig::load(Some(&config), &overrides).unwrap();
    let o = &loaded.options;
    assert_eq!(o.mqtt.url.to_string(), "mqtt://10.0.0.1:1999");
    assert_eq!(o.company_id, 0x0059);
    assert_eq!(o.tunables.rssi_threshold_dbm, -80);
    assert_eq!(o.topic_prefix, "site/a");
    assert_eq!(
        o.unlock,
        UnlockAction::Command {
            command: "/bin/true".into(),
            timeout: Duration::from_secs(10)
        }
    );
    assert_eq!(loaded.adapter, BleAdapter::Hci("hci1".into()));
}

#[cfg(unix)]
#[test]
fn a_group_readable_lock_key_is_refused_with_the_chmod_fix() {
    use std::os::unix::fs::PermissionsExt;
    let (dir, config) = setup(MQTT);
    let key = dir.path().join("lock.key.pem");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o640)).unwrap();
    let msg = LoadedLockConfig::from_file(&config)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("chmod 600"), "{msg}");
    assert!(msg.contains("lock.key.pem"), "{msg}");
}

#[test]
fn refusals_name_the_key_at_fault() {
    let cases: [(&str, &str); 11] = [
        (
            &format!("{MQTT}[status]\ninterval_s = 9\n"),
            "status.interval_s",
        ),
        (&format!("{MQTT}[status]\ninterval_s = 3601\n"), "10..=3600"),
        (&format!("{MQTT}[status]\nbattery = \"x\"\n"), "battery"),
        (
            &format!("{MQTT}[tunables]\nlockout_duration_s = 5\n"),
            "lockout_duration_s",
        ),
        ("", "mqtt.url"),
        ("[mqtt]\nurl = \"http://x\"\n", "mqtt.url"),
        (&format!("{MQTT}typo_key = 1\n"), "typo_key"),
        (
            &format!("{MQTT}[tunables]\nmax_challenges = 999\n"),
            "max_challenges",
        ),
        (
            &format!("{MQTT}[unlock]\ncommand = \"x\"\ngpio = {{ line = 1 }}\n"),
            "either",
        ),
        (&format!("{MQTT}[ble]\nadapter = \"bt0\"\n"), "ble.adapter"),
        (&format!("{MQTT}[mqtt.extra]\n"), "extra"),
    ];
    for (extra, needle) in cases {
        let (_dir, config) = setup(extra);
        let msg = LoadedLockConfig::from_file(&config)
            .unwrap_err()
            .to_string();
        assert!(msg.contains(needle), "{extra:?}: {msg}");
    }
    let err = LoadedLockConfig::load(None, &ConfigOverrides::default()).unwrap_err();
    assert!(
        matches!(err, ConfigError::Missing { key: "lock_id", .. }),
        "{err}"
    );
}

#[test]
fn sim_adapter_parses_for_in_process_use() {
    let (_dir, config) = setup(&format!("{MQTT}[ble]\nadapter = \"sim\"\n"));
    let loaded = LoadedLockConfig::load(Some(&config), &ConfigOverrides::default()).unwrap();
    assert_eq!(loaded.adapter, BleAdapter::Sim);
}

#[test]
fn the_example_config_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("lock.example.toml");
    let file = LockFileConfig::read(&path).unwrap();
    assert_eq!(file.lock_id.as_deref(), Some(LOCK_ID));
    assert_eq!(file.tunables, latchkey_lock::Tunables::default());
    assert_eq!(file.unlock.gpio.unwrap().line, 17);
    assert_eq!(file.status.interval_s, 60);
    assert!(file.status.battery_capacity_file.is_some());
}

#[test]
fn the_deployment_config_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/lock.toml");
    let file = LockFileConfig::read(&path).unwrap();
    assert_eq!(file.tunables, latchkey_lock::Tunables::default());
    assert_eq!(file.status.interval_s, 60);
}
