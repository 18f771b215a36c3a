//! The embedded broker's bind, and one daemon per state directory.

// Test code, helpers included: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use latchkey_issuer::{BrokerChoice, Issuerd, IssuerdError};
use latchkey_transport::broker::BrokerError;

use common::*;

#[tokio::test]
async fn an_occupied_port_fails_the_start_with_a_clear_error() {
    init_logs();
    let p = Provisioned::new();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let mut opts = options(&p.state());
    opts.broker = BrokerChoice::Embedded { listen: addr };
    let e = Issuerd::start(opts).await.unwrap_err();
    assert!(
        matches!(e, IssuerdError::Broker(BrokerError::Bind { addr: a, .. }) if a == addr),
        "{e:?}"
    );
    let msg = e.to_string();
    assert!(
        msg.contains(&addr.to_string()) && msg.contains("cannot bind"),
        "{msg}"
    );

    // The failed start left nothing behind: the next one on a free port works.
    assert!(!p.state().join("control.sock").exists());
    let issuer = start_issuer(&p.state()).await;
    issuer.shutdown().await;
}

#[test]
fn the_binary_exits_non_zero_on_an_occupied_port() {
    let p = Provisioned::new();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_latchkey-issuer"))
        .arg("--state-dir")
        .arg(p.state())
        .args(["run", "--listen", &addr.to_string()])
        .env("RUST_LOG", "error")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("latchkey-issuer run did not exit on an occupied port");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(
        err.contains("cannot bind the embedded MQTT broker"),
        "{err}"
    );
    assert!(err.contains(&addr.to_string()), "{err}");
}

#[tokio::test]
async fn a_second_daemon_on_the_same_state_directory_is_refused() {
    init_logs();
    let p = Provisioned::new();
    let first = start_issuer(&p.state()).await;
    let e = Issuerd::start(options(&p.state())).await.unwrap_err();
    assert!(matches!(e, IssuerdError::AlreadyRunning { .. }), "{e:?}");
    // keygen --force is refused while the daemon runs, too.
    let forced = latchkey_issuer::keygen_with(
        &p.state(),
        &latchkey_issuer::KeygenOptions {
            bits: 2048,
            force: true,
            ..Default::default()
        },
    );
    assert!(matches!(forced, Err(IssuerdError::AlreadyRunning { .. })));
    // The first one is unaffected.
    assert_eq!(first.status().await.unwrap().locks, vec![p.lock_id]);
    first.shutdown().await;
}

#[tokio::test]
async fn the_cli_round_trip_keygen_add_lock_enroll_list() {
    // The binary's offline commands and `list` without a running daemon.
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("s");
    let bin = env!("CARGO_BIN_EXE_latchkey-issuer");
    let run = |args: &[&str]| {
        let out = Command::new(bin)
            .arg("--state-dir")
            .arg(&state)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let fp = run(&["keygen", "--bits", "2048"]);
    assert_eq!(fp.len(), 64);
    let lock_dir = dir.path().join("door");
    let lock = run(&[
        "add-lock",
        "--out",
        lock_dir.to_str().unwrap(),
        "--broker-url",
        "mqtt://10.0.0.1:1883",
    ]);
    assert_eq!(lock.len(), 32);
    let bundle = dir.path().join("g.json");
    let guest = run(&[
        "enroll-guest",
        "--lock",
        &lock,
        "--out",
        bundle.to_str().unwrap(),
        "--broker-url",
        "mqtt://10.0.0.1:1883",
    ]);
    let listed = run(&["list", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(v["locks"][0], lock.as_str());
    assert_eq!(v["guests"][0]["guest_id"], guest.as_str());
    assert_eq!(v["mqtt"], "not running");
    // Without a daemon, revoking an unknown grant fails clearly.
    let out = Command::new(bin)
        .arg("--state-dir")
        .arg(&state)
        .args(["revoke-grant", "--grant", &"0".repeat(32)])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not live"));
}
