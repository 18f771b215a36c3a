//! The optional TOML config file.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use latchkey_guest::EnrollmentBundle;
use latchkey_guest::config::{BleChoice, ConfigFile, ConfigFileError};

fn bundle() -> EnrollmentBundle {
    EnrollmentBundle::new(
        "00112233445566778899aabbccddeeff"
            .parse()
            .expect("guest id"),
        latchkey::crypto::EnrollmentKey::from_bytes([1; 32]),
        "mqtt://127.0.0.1:1883",
        vec![],
        0x1234,
    )
    .expect("valid bundle")
}

#[test]
fn the_example_config_parses() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/guest.example.toml");
    let cfg = ConfigFile::load(path.as_ref()).unwrap();
    assert_eq!(cfg.ble.adapter.as_deref(), Some("hci0"));
    let opts = cfg.options(bundle()).unwrap();
    assert_eq!(opts.company_id, 0x1234);
    assert_eq!(
        opts.mqtt.client_id,
        "latchkey-guest-00112233445566778899aabbccddeeff"
    );
    assert_eq!(opts.timeouts.grant, Duration::from_secs(20));
}

#[test]
fn settings_override_the_bundle_and_defaults() {
    let cfg = ConfigFile::parse(
        r#"
        topic_prefix = "site/v1"
        grant_validity_s = 120
        company_id = 0x05F1
        [mqtt]
        url = "mqtt://10.0.0.1:1884"
        [timeouts]
        grant_s = 3.5
        attempt_s = 6
        "#,
    )
    .unwrap();
    let o = cfg.options(bundle()).unwrap();
    assert_eq!(o.topic_prefix, "site/v1");
    assert_eq!(o.grant_validity_s, 120);
    assert_eq!(o.company_id, 0x05F1);
    assert_eq!(o.mqtt.url.port(), 1884);
    assert_eq!(o.timeouts.grant, Duration::from_millis(3500));
    assert_eq!(o.timeouts.attempt, Duration::from_secs(6));
}

#[test]
fn typos_and_bad_values_are_refused() {
    let e = ConfigFile::parse("[mqtt]\nurll = \"x\"").unwrap_err();
    assert!(e.contains("urll"), "{e}");
    let cfg = ConfigFile::parse("[timeouts]\ngrant_s = -1").unwrap();
    assert!(matches!(
        cfg.options(bundle()),
        Err(ConfigFileError::Invalid { .. })
    ));
    let cfg = ConfigFile::parse("[mqtt]\nurl = \"http://x\"").unwrap();
    assert!(matches!(
        cfg.options(bundle()),
        Err(ConfigFileError::BrokerUrl(_))
    ));
    let cfg = ConfigFile::parse("[mqtt]\ncert_file = \"c.pem\"").unwrap();
    assert!(matches!(
        cfg.options(bundle()),
        Err(ConfigFileError::HalfClientAuth)
    ));
    assert_eq!("sim".parse::<BleChoice>().unwrap(), BleChoice::Sim);
    assert_eq!(
        "hci1".parse::<BleChoice>().unwrap(),
        BleChoice::Adapter("hci1".into())
    );
    assert!("../hci0".parse::<BleChoice>().is_err());
}

#[test]
fn an_mqtt_client_key_readable_by_others_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("guest.key");
    fs::write(&key, "-----BEGIN PRIVATE KEY-----\n").unwrap();
    fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).unwrap();
    let cfg = ConfigFile::parse(&format!(
        "[mqtt]\nurl = \"mqtts://b:8883\"\nca_file = \"ca.pem\"\ncert_file = \"c.pem\"\nkey_file = {:?}",
        key.display().to_string()
    ))
    .unwrap();
    let e = cfg.options(bundle()).unwrap_err();
    assert!(matches!(e, ConfigFileError::KeyNotPrivate { .. }), "{e:?}");
    assert!(e.to_string().contains("chmod 600"));
    fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();
    let o = cfg.options(bundle()).unwrap();
    assert!(o.mqtt.tls.is_some());
}

#[test]
fn the_deployment_config_parses() {
    // deploy/guest.toml documents this file for integrators; it must stay loadable.
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/guest.toml");
    if std::path::Path::new(path).exists() {
        let cfg = ConfigFile::load(path.as_ref()).unwrap();
        assert_eq!(cfg.ble.adapter.as_deref(), Some("hci0"));
    }
}
