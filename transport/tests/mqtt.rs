//! MQTT client against the embedded broker.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use latchkey_transport::broker::EmbeddedBroker;
use latchkey_transport::mqtt::{
    Backoff, ConnectionState, Incoming, MqttClient, MqttConfig, MqttError, MqttUrl, NoJitter, QoS,
};
use tokio::sync::{mpsc, watch};

use common::within;

fn start_broker(addr: &str) -> EmbeddedBroker {
    let addr: SocketAddr = addr.parse().expect("literal address");
    EmbeddedBroker::start(addr).expect("embedded broker starts")
}

fn config(broker: SocketAddr, client_id: &str) -> MqttConfig {
    let url = MqttUrl::parse(&format!("mqtt://{broker}")).expect("valid url");
    let mut cfg = MqttConfig::new(url, client_id);
    // Fast, deterministic retries keep the reconnect tests short.
    cfg.backoff = Backoff {
        base: Duration::from_millis(20),
        cap: Duration::from_millis(200),
    };
    cfg
}

fn spawn(cfg: MqttConfig) -> (MqttClient, mpsc::Receiver<Incoming>) {
    MqttClient::spawn_with_jitter(cfg, Box::new(NoJitter)).expect("client config is valid")
}

async fn wait_state(state: &mut watch::Receiver<ConnectionState>, want: ConnectionState) {
    within(
        5,
        &format!("state {want:?}"),
        state.wait_for(|s| *s == want),
    )
    .await
    .expect("client task alive");
}

async fn recv(rx: &mut mpsc::Receiver<Incoming>) -> Incoming {
    within(5, "an incoming publish", rx.recv())
        .await
        .expect("incoming channel open")
}

#[tokio::test]
async fn publish_subscribe_round_trip() {
    common::init_tracing();
    let broker = start_broker("127.0.0.1:0");
    let (client, mut rx) = spawn(config(broker.local_addr(), "roundtrip"));
    wait_state(&mut client.state(), ConnectionState::Connected).await;

    client
        .subscribe("lk/test/#", QoS::AtLeastOnce)
        .await
        .expect("subscribe");
    // The SUBACK is not surfaced; retry the publish until the subscription is live.
    let got = within(5, "round trip", async {
        loop {
            client
                .publish("lk/test/a", &b"hello"[..], QoS::AtLeastOnce, false)
                .await
                .expect("publish");
            if let Ok(Some(msg)) = tokio::time::timeout(Duration::from_millis(100), rx.recv()).await
            {
                break msg;
            }
        }
    })
    .await;
    assert_eq!(got.topic, "lk/test/a");
    assert_eq!(got.payload, Bytes::from_static(b"hello"));
    assert!(!got.retain);
    client.shutdown().await;
}

#[tokio::test]
async fn retained_message_is_flagged_retain() {
    common::init_tracing();
    let broker = start_broker("127.0.0.1:0");
    let (publisher, _prx) = spawn(config(broker.local_addr(), "retain-pub"));
    wait_state(&mut publisher.state(), ConnectionState::Connected).await;
    publisher
        .publish("lk/retained", &b"state"[..], QoS::AtLeastOnce, true)
        .await
        .expect("publish");

    let (sub, mut rx) = spawn(config(broker.local_addr(), "retain-sub"));
    wait_state(&mut sub.state(), ConnectionState::Connected).await;
    // Subscribe until the retained message (published asynchronously) shows up.
    let got = within(5, "retained message", async {
        loop {
            sub.subscribe("lk/retained", QoS::AtLeastOnce)
                .await
                .expect("subscribe");
            if let Ok(Some(msg)) = tokio::time::timeout(Duration::from_millis(200), rx.recv()).await
            {
                break msg;
            }
        }
    })
    .await;
    assert_eq!(got.payload, Bytes::from_static(b"state"));
    assert!(got.retain);
}

#[tokio::test]
async fn oversize_incoming_payload_is_dropped_and_connection_survives() {
    common::init_tracing();
    let broker = start_broker("127.0.0.1:0");
    let mut small = config(broker.local_addr(), "small-cap");
    small.max_payload = 16;
    let (sub, mut rx) = spawn(small);
    let (publisher, _prx) = spawn(config(broker.local_addr(), "big-pub"));
    wait_state(&mut sub.state(), ConnectionState::Connected).await;
    wait_state(&mut publisher.state(), ConnectionState::Connected).await;
    sub.subscribe("lk/cap/#", QoS::AtLeastOnce)
        .await
        .expect("subscribe");

    // Keep sending big-then-small pairs until a small one arrives; no big one may arrive.
    let got = within(5, "small payload after big ones", async {
        loop {
            publisher
                .publish("lk/cap/big", vec![7u8; 100], QoS::AtLeastOnce, false)
                .await
                .expect("publish big");
            publisher
                .publish("lk/cap/small", &b"ok"[..], QoS::AtLeastOnce, false)
                .await
                .expect("publish small");
            if let Ok(Some(msg)) = tokio::time::timeout(Duration::from_millis(100), rx.recv()).await
            {
                break msg;
            }
        }
    })
    .await;
    assert_eq!(got.topic, "lk/cap/small");
    assert_eq!(*sub.state().borrow(), ConnectionState::Connected);
    while let Ok(msg) = rx.try_recv() {
        assert!(msg.payload.len() <= 16, "oversize payload delivered");
    }
}

#[tokio::test]
async fn outgoing_requests_are_validated() {
    common::init_tracing();
    let broker = start_broker("127.0.0.1:0");
    let (client, _rx) = spawn(config(broker.local_addr(), "validate"));
    let big = vec![0u8; 64 * 1024 + 1];
    assert!(matches!(
        client.publish("a", big, QoS::AtMostOnce, false).await,
        Err(MqttError::PayloadTooLarge {
            size: 65537,
            max: 65536
        })
    ));
    for bad in ["", "a/+", "a/#"] {
        assert!(
            matches!(
                client.publish(bad, &b""[..], QoS::AtMostOnce, false).await,
                Err(MqttError::InvalidTopic(_))
            ),
            "topic {bad:?}"
        );
    }
    for bad in ["", "a/#/b", "a+"] {
        assert!(
            matches!(
                client.subscribe(bad, QoS::AtMostOnce).await,
                Err(MqttError::InvalidFilter(_))
            ),
            "filter {bad:?}"
        );
    }
    assert!(client.subscriptions().is_empty());
}

/// rumqttd cannot be restarted in-process, but stopping an `EmbeddedBroker` closes its port
/// and connections; a new one on the same port is a fresh rumqttd that knows nothing of our
/// subscriptions. Receiving on it therefore proves the client re-subscribed on CONNACK.
#[tokio::test]
async fn reconnects_and_resubscribes_after_broker_restart() {
    common::init_tracing();
    let first = start_broker("127.0.0.1:0");
    let addr = first.local_addr();
    let (sub, mut rx) = spawn(config(addr, "resub"));
    let mut state = sub.state();
    wait_state(&mut state, ConnectionState::Connected).await;
    sub.subscribe("lk/resub/#", QoS::AtLeastOnce)
        .await
        .expect("subscribe");

    first.stop();
    wait_state(&mut state, ConnectionState::Disconnected).await;

    let second = start_broker(&addr.to_string());
    wait_state(&mut state, ConnectionState::Connected).await;

    let (publisher, _prx) = spawn(config(second.local_addr(), "resub-pub"));
    wait_state(&mut publisher.state(), ConnectionState::Connected).await;
    let got = within(5, "publish after re-subscribe", async {
        loop {
            publisher
                .publish("lk/resub/x", &b"again"[..], QoS::AtLeastOnce, false)
                .await
                .expect("publish");
            if let Ok(Some(msg)) = tokio::time::timeout(Duration::from_millis(100), rx.recv()).await
            {
                break msg;
            }
        }
    })
    .await;
    assert_eq!(got.topic, "lk/resub/x");
    assert_eq!(got.payload, Bytes::from_static(b"again"));
    assert_eq!(
        sub.subscriptions(),
        vec![("lk/resub/#".to_owned(), QoS::AtLeastOnce)]
    );
}

#[tokio::test]
async fn connects_once_a_late_broker_appears() {
    common::init_tracing();
    // Reserve a free port, release it, and start the client before any broker exists.
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let (client, _rx) = spawn(config(addr, "late"));
    let mut state = client.state();
    wait_state(&mut state, ConnectionState::Disconnected).await;
    let _broker = start_broker(&addr.to_string());
    wait_state(&mut state, ConnectionState::Connected).await;
}

#[tokio::test]
async fn persistent_session_delivers_qos1_published_while_offline() {
    common::init_tracing();
    let broker = start_broker("127.0.0.1:0");
    let addr = broker.local_addr();

    let (sub, mut rx) = spawn(config(addr, "offline-sub"));
    wait_state(&mut sub.state(), ConnectionState::Connected).await;
    sub.subscribe("lk/offline", QoS::AtLeastOnce)
        .await
        .expect("subscribe");
    // Make sure the subscription is live before going offline.
    let (publisher, _prx) = spawn(config(addr, "offline-pub"));
    wait_state(&mut publisher.state(), ConnectionState::Connected).await;
    within(5, "subscription live", async {
        loop {
            publisher
                .publish("lk/offline", &b"warmup"[..], QoS::AtLeastOnce, false)
                .await
                .expect("publish");
            if let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(100), rx.recv()).await {
                break;
            }
        }
    })
    .await;
    sub.shutdown().await;
    drop(rx);

    publisher
        .publish("lk/offline", &b"while-away"[..], QoS::AtLeastOnce, false)
        .await
        .expect("publish");

    // Same client id, and no subscribe call: the broker's stored session delivers it.
    let (back, mut rx) = spawn(config(addr, "offline-sub"));
    let got = within(5, "queued message", async {
        loop {
            let msg = recv(&mut rx).await;
            if msg.payload.as_ref() == b"while-away" {
                break msg;
            }
        }
    })
    .await;
    assert_eq!(got.topic, "lk/offline");
    back.shutdown().await;
}

/// Captures formatted log output so a test can count lines.
#[derive(Clone, Default)]
struct Capture(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("capture lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_broker_that_stays_down_is_logged_once_not_per_retry() {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    // Current-thread test runtime: the client task logs on this thread too.
    let _guard = tracing::subscriber::set_default(subscriber);

    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let mut cfg = config(addr, "down");
    cfg.backoff = Backoff {
        base: Duration::from_millis(1),
        cap: Duration::from_millis(5),
    };
    let (client, _rx) = spawn(cfg);
    let mut state = client.state();
    let mut failures = 0;
    within(5, "ten failed attempts", async {
        while failures < 10 {
            state.changed().await.expect("client alive");
            if *state.borrow_and_update() == ConnectionState::Disconnected {
                failures += 1;
            }
        }
    })
    .await;
    client.shutdown().await;

    let text = String::from_utf8(capture.0.lock().expect("capture lock").clone()).expect("utf8");
    let count = |needle: &str| text.lines().filter(|l| l.contains(needle)).count();
    assert_eq!(count("MQTT connection failed"), 1, "log:\n{text}");
    assert_eq!(count("MQTT reconnecting in"), 1, "log:\n{text}");
    assert_eq!(count("MQTT connected"), 0, "log:\n{text}");
}
