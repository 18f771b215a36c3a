//! The files in `deploy/` are what the daemons actually read: every example config parses
//! with the daemon's own parser (unknown keys are errors there), and the broker ACL is
//! exactly the one docs/daemons.md and spec §6.9 describe. (The Mosquitto config itself is
//! run by the mutual-TLS tests, which start Mosquitto from it.)
// Test code: a failed unwrap is a failed test (support/ is shared test code).
#![allow(clippy::unwrap_used)]

mod support;

use std::path::PathBuf;

use latchkey_issuer::BrokerChoice;
use latchkey_issuer::config::{FileConfig, RunOverrides, resolve_run};
use support::mosquitto::deploy_file;

#[test]
fn issuer_toml_is_a_valid_issuer_config_for_mutual_tls() {
    let file = FileConfig::load(&deploy_file("issuer.toml")).expect("deploy/issuer.toml parses");
    let opts = resolve_run(
        PathBuf::from("/var/lib/latchkey-issuer"),
        &file,
        &RunOverrides::default(),
    )
    .expect("deploy/issuer.toml resolves");
    match opts.broker {
        BrokerChoice::External(m) => {
            assert!(m.url.is_tls());
            let tls = m.tls.expect("TLS files");
            assert!(tls.ca_file.is_some() && tls.client_auth.is_some());
        }
        other => panic!("expected the external broker, got {other:?}"),
    }
}

#[test]
fn lock_toml_is_a_valid_lock_config() {
    let f = latchkey_lock::LockFileConfig::read(&deploy_file("lock.toml"))
        .expect("deploy/lock.toml parses");
    assert_eq!(f.ble.adapter.as_deref(), Some("hci0"));
    assert!(f.mqtt.cert_file.is_some() && f.mqtt.key_file.is_some());
}

#[test]
fn guest_toml_is_a_valid_guest_config() {
    let f = latchkey_guest::config::ConfigFile::load(&deploy_file("guest.toml"))
        .expect("deploy/guest.toml parses");
    assert!(f.mqtt.cert_file.is_some() && f.mqtt.key_file.is_some());
}

#[test]
fn acl_is_exactly_the_documented_one() {
    let acl = std::fs::read_to_string(deploy_file("mosquitto/acl")).unwrap();
    let rules: Vec<&str> = acl
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert_eq!(
        rules,
        [
            "pattern read latchkey/v1/locks/%u/grants",
            "pattern write latchkey/v1/locks/%u/events",
            "pattern read latchkey/v1/guests/%u/grants",
            "pattern write latchkey/v1/requests/%u",
            "user issuer",
            "topic readwrite latchkey/v1/#",
            "user monitor",
            "topic read latchkey/v1/alerts",
        ]
    );
}

#[test]
fn mosquitto_conf_requires_client_certificates() {
    let conf = std::fs::read_to_string(deploy_file("mosquitto/mosquitto.conf")).unwrap();
    let settings: Vec<&str> = conf
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    for required in [
        "listener 8883",
        "require_certificate true",
        "use_identity_as_username true",
        "use_username_as_clientid true",
        "allow_anonymous false",
        "persistence true",
    ] {
        assert!(settings.contains(&required), "missing `{required}`");
    }
    assert!(settings.iter().any(|l| l.starts_with("acl_file ")));
}
