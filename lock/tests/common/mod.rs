//! Shared test fixtures: a real embedded broker on a free loopback port, a core `Issuer` and
//! `Guest` as the lock's peers, and a guest driven over the simulated air. No mocks.

#![allow(dead_code)]

use std::collections::BTreeSet;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use latchkey::crypto::EnrollmentKey;
use latchkey::crypto::rsa::{DS_LOCK_EVENT, RsaPrivateKey};
use latchkey::frame::{LockEvent, LockEventView, LockStatus, MessageType};
use latchkey::issuer::{AccessPolicy, Authorization, IssuedGrant, LockReport};
use latchkey::{
    Guest, GuestConfig, GuestId, Issuer, IssuerConfig, LockId, Reason, UnixMillis, topics,
};
use latchkey_lock::gatt::{CHALLENGE_CHAR_UUID, RESPONSE_CHAR_UUID, SERVICE_UUID};
use latchkey_lock::{LockOptions, LockStats, Lockd, LockdHandle};
use latchkey_transport::broker::EmbeddedBroker;
use latchkey_transport::mqtt::{
    Backoff, ConnectionState, Incoming, MqttClient, MqttConfig, MqttUrl, NoJitter, QoS,
};
use latchkey_transport::radio::{GattLink, GuestRadio, SimAir, SimRadio};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use tokio::sync::{mpsc, watch};

pub const COMPANY: u16 = 0xFFFF;

/// Logs to the test output when `RUST_LOG` is set.
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// Awaits `fut` or fails the test after `secs` seconds.
pub async fn within<T>(secs: u64, what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(Duration::from_secs(secs), fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {secs}s waiting for {what}"),
    }
}

pub fn key(name: &str) -> RsaPrivateKey {
    let path = format!(
        "{}/../vectors/keys/{name}.pk8.der",
        env!("CARGO_MANIFEST_DIR")
    );
    RsaPrivateKey::from_pkcs8_der(&std::fs::read(&path).unwrap()).unwrap()
}

pub async fn start_broker(addr: SocketAddr) -> EmbeddedBroker {
    tokio::task::spawn_blocking(move || EmbeddedBroker::start(addr))
        .await
        .unwrap()
        .expect("embedded broker starts")
}

/// A client config with fast, jitter-free reconnects.
pub fn mqtt_config(addr: SocketAddr, client_id: &str) -> MqttConfig {
    let mut cfg = MqttConfig::new(
        MqttUrl::parse(&format!("mqtt://{addr}")).unwrap(),
        client_id,
    );
    cfg.backoff = Backoff {
        base: Duration::from_millis(20),
        cap: Duration::from_millis(200),
    };
    cfg
}

pub fn spawn_client(addr: SocketAddr, client_id: &str) -> (MqttClient, mpsc::Receiver<Incoming>) {
    MqttClient::spawn_with_jitter(mqtt_config(addr, client_id), Box::new(NoJitter)).unwrap()
}

pub async fn wait_connected(state: &mut watch::Receiver<ConnectionState>) {
    within(
        10,
        "MQTT connected",
        state.wait_for(|s| *s == ConnectionState::Connected),
    )
    .await
    .unwrap();
}

/// The whole cast: broker, air, issuer, one enrolled guest, and an issuer-side MQTT client.
pub struct World {
    pub broker: Option<EmbeddedBroker>,
    pub addr: SocketAddr,
    pub air: SimAir,
    pub issuer: Issuer,
    pub lock_id: LockId,
    pub prefix: String,
    pub rng: ChaCha20Rng,
    pub publisher: MqttClient,
}

impl World {
    pub async fn new(name: &str) -> Self {
        init_tracing();
        let broker = start_broker("127.0.0.1:0".parse().unwrap()).await;
        let addr = broker.local_addr();
        let mut issuer = Issuer::new(IssuerConfig::new(key("issuer"))).unwrap();
        let lock_id = LockId([0x1c; 16]);
        issuer.add_lock(lock_id, key("lock-a").public_key());
        let (publisher, _rx) = spawn_client(addr, &format!("test-issuer-{name}"));
        wait_connected(&mut publisher.state()).await;
        Self {
            broker: Some(broker),
            addr,
            air: SimAir::default(),
            issuer,
            lock_id,
            prefix: format!("test/{name}"),
            rng: ChaCha20Rng::seed_from_u64(7),
            publisher,
        }
    }

    /// Options for a lock on this world's broker.
    pub fn lock_options(&self, state_dir: Option<PathBuf>) -> LockOptions {
        let mut o = LockOptions::new(
            self.lock_id,
            key("lock-a"),
            self.issuer.public_key(),
            mqtt_config(self.addr, "unused"),
        );
        o.topic_prefix = self.prefix.clone();
        o.state_dir = state_dir;
        o
    }

    pub async fn start_lock(&self, opts: LockOptions) -> LockdHandle {
        let radio = self.air.radio("lock");
        let handle = Lockd::start(opts, radio).await.expect("lock starts");
        wait_connected(&mut handle.mqtt_state()).await;
        handle
    }

    /// A guest enrolled at the issuer for this world's lock.
    pub fn enroll_guest(&mut self, n: u8) -> Guest {
        let guest_id = GuestId([n; 16]);
        let k = EnrollmentKey::from_bytes([n ^ 0x5a; 32]);
        self.issuer
            .add_guest(guest_id, k.clone(), BTreeSet::from([self.lock_id]));
        Guest::new(GuestConfig::new(guest_id, k)).unwrap()
    }

    /// The guest asks, the issuer grants; the guest takes its GuestGrant. The LockGrant is
    /// returned for the test to deliver.
    pub fn issue_grant(&mut self, guest: &mut Guest) -> IssuedGrant {
        self.issue_limited_grant(guest, 0)
    }

    /// Enrolls guest `n`, issues it a grant (`max_unlocks`, 0 = no limit) and delivers the
    /// LockGrant until `lock` installed it.
    pub async fn installed_guest(
        &mut self,
        lock: &LockdHandle,
        n: u8,
        max_unlocks: u16,
    ) -> (Guest, IssuedGrant) {
        let mut guest = self.enroll_guest(n);
        let grant = self.issue_limited_grant(&mut guest, max_unlocks);
        let before = lock.stats().grants_installed;
        self.deliver_until(lock, &grant.lock_grant, |s| s.grants_installed > before)
            .await;
        (guest, grant)
    }

    /// [`World::issue_grant`] with an unlock limit (`max_unlocks`, 0 = none).
    pub fn issue_limited_grant(&mut self, guest: &mut Guest, max_unlocks: u16) -> IssuedGrant {
        let now = latchkey_lock::now();
        let req = guest.request_grant(now, self.lock_id, 600, &mut self.rng);
        let issued = self
            .issuer
            .handle_request_with(
                now,
                guest.config().guest_id,
                &req,
                &mut UnlockLimit(max_unlocks),
                &mut self.rng,
            )
            .unwrap();
        assert_eq!(issued.max_unlocks, max_unlocks);
        guest.handle_grant(now, &issued.guest_grant).unwrap();
        issued
    }

    pub fn grants_topic(&self) -> String {
        topics::lock_grants(&self.prefix, &self.lock_id)
    }

    pub fn events_topic(&self) -> String {
        topics::lock_events(&self.prefix, &self.lock_id)
    }

    pub async fn publish_grants(&self, payload: &[u8]) {
        self.publisher
            .publish(
                &self.grants_topic(),
                payload.to_vec(),
                QoS::AtLeastOnce,
                false,
            )
            .await
            .unwrap();
    }

    /// Publishes `payload` (idempotent at the lock) until `done` holds: the lock's
    /// subscription may not be live yet when the first copy goes out.
    pub async fn deliver_until(
        &self,
        handle: &LockdHandle,
        payload: &[u8],
        done: impl Fn(&LockStats) -> bool,
    ) {
        let mut stats = handle.stats_watch();
        within(15, "delivery to the lock", async {
            loop {
                self.publish_grants(payload).await;
                if tokio::time::timeout(Duration::from_millis(300), stats.wait_for(&done))
                    .await
                    .is_ok()
                {
                    break;
                }
            }
        })
        .await;
    }

    /// An MQTT client on the lock's events topic whose subscription is known to be live.
    pub async fn observe_events(&self, name: &str) -> (MqttClient, mpsc::Receiver<Incoming>) {
        let (client, mut rx) = spawn_client(self.addr, &format!("test-observer-{name}"));
        wait_connected(&mut client.state()).await;
        let topic = self.events_topic();
        client.subscribe(&topic, QoS::AtLeastOnce).await.unwrap();
        // A probe of our own proves the subscription is live (the SUBACK is not surfaced).
        within(10, "events subscription live", async {
            loop {
                client
                    .publish(&topic, &b"probe"[..], QoS::AtLeastOnce, false)
                    .await
                    .unwrap();
                if let Ok(Some(m)) =
                    tokio::time::timeout(Duration::from_millis(200), rx.recv()).await
                    && &m.payload[..] == b"probe"
                {
                    break;
                }
            }
        })
        .await;
        // Drain late probe copies.
        tokio::time::sleep(Duration::from_millis(100)).await;
        while rx.try_recv().is_ok() {}
        (client, rx)
    }

    /// Waits for the next event on the observer that verifies and satisfies `want`.
    pub async fn next_event(
        &self,
        rx: &mut mpsc::Receiver<Incoming>,
        want: impl Fn(&LockEvent) -> bool,
    ) -> LockEvent {
        self.next_event_within(rx, 10, want).await
    }

    /// [`World::next_event`] waiting up to `secs`.
    pub async fn next_event_within(
        &self,
        rx: &mut mpsc::Receiver<Incoming>,
        secs: u64,
        want: impl Fn(&LockEvent) -> bool,
    ) -> LockEvent {
        within(secs, "a lock event", async {
            loop {
                let m = rx.recv().await.expect("observer open");
                if &m.payload[..] == b"probe"
                    || MessageType::of(&m.payload) == Ok(MessageType::LockStatus)
                {
                    continue;
                }
                // Verified as the issuer does (LK-EVT-2, LK-EVT-1); the observer keeps no
                // replay cache, so it sees every redelivery.
                let v = LockEventView::parse(&m.payload).expect("the lock's event parses");
                assert_eq!(v.fields.lock_id, self.lock_id, "LK-EVT-2");
                assert!(
                    key("lock-a")
                        .public_key()
                        .verify(DS_LOCK_EVENT, v.signed, v.signature),
                    "the lock's event verifies"
                );
                let ev = v.fields;
                if want(&ev) {
                    break ev;
                }
            }
        })
        .await
    }

    /// Waits up to `secs` for the next LockStatus on the observer, verified by the world's
    /// core issuer as the issuer daemon does (LK-EVT-1..4); events are skipped.
    pub async fn next_status(
        &mut self,
        rx: &mut mpsc::Receiver<Incoming>,
        secs: u64,
    ) -> LockStatus {
        within(secs, "a lock status", async {
            loop {
                let m = rx.recv().await.expect("observer open");
                if MessageType::of(&m.payload) != Ok(MessageType::LockStatus) {
                    continue;
                }
                match self
                    .issuer
                    .handle_lock_message(now(), self.lock_id, &m.payload)
                {
                    Ok(LockReport::Status(st)) => break st,
                    other => panic!("the lock's status does not verify: {other:?}"),
                }
            }
        })
        .await
    }
}

/// An access policy that gives every grant the same unlock limit.
pub struct UnlockLimit(pub u16);

impl AccessPolicy for UnlockLimit {
    fn authorize(
        &mut self,
        _now_s: u64,
        _guest: GuestId,
        _lock: LockId,
    ) -> Result<Authorization, Reason> {
        Ok(Authorization {
            not_after_max: None,
            max_unlocks: self.0,
        })
    }
}

/// Waits until the lock's stats satisfy `cond`.
pub async fn wait_stats(handle: &LockdHandle, what: &str, cond: impl Fn(&LockStats) -> bool) {
    let mut w = handle.stats_watch();
    within(10, what, w.wait_for(|s| cond(s))).await.unwrap();
}

/// Sleeps past the next step boundary if it is close, so one attempt stays in one step.
pub async fn avoid_step_boundary() {
    let now = latchkey_lock::now();
    let next = now.step().next_start();
    if next.0 - now.0 < 3_000 {
        tokio::time::sleep(Duration::from_millis(next.0 - now.0 + 100)).await;
    }
}

/// How a guest's attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The response write succeeded.
    Unlocked,
    /// The Select write got this ATT error code.
    SelectRefused(u8),
    /// The response write got this ATT error code.
    ResponseRefused(u8),
}

/// What the guest advertised, for replay tests.
pub struct Attempt {
    pub outcome: Outcome,
    pub beacon: Vec<u8>,
}

/// Drives one unlock attempt of `guest` over `radio`: advertise the beacon, wait until the
/// lock has heard it, connect, write Select, read the challenge, write the response (with
/// one MAC bit flipped if `tamper`), then stop advertising and disconnect.
pub async fn attempt(
    guest: &mut Guest,
    radio: &SimRadio,
    lock_id: LockId,
    handle: &LockdHandle,
    tamper: bool,
) -> Attempt {
    avoid_step_boundary().await;
    let mut rng = ChaCha20Rng::seed_from_u64(u64::from(guest.config().guest_id.0[0]));
    let now = latchkey_lock::now();
    guest.start_unlock(now, lock_id, &mut rng).unwrap();
    let beacon = guest.advertisement(now).unwrap().to_vec();
    let heard = handle.stats().adverts;
    radio
        .set_advertisement(COMPANY, beacon.clone())
        .await
        .unwrap();
    wait_stats(handle, "the lock hears the beacon", |s| {
        s.adverts >= heard + 2
    })
    .await;

    let link = radio
        .connect(SERVICE_UUID, Duration::from_secs(5))
        .await
        .unwrap();
    let outcome = async {
        let select = guest.select(latchkey_lock::now()).unwrap();
        if let Err(e) = link.write(CHALLENGE_CHAR_UUID, &select).await {
            return Outcome::SelectRefused(e.att().expect("an ATT error").code());
        }
        let challenge = link.read(CHALLENGE_CHAR_UUID).await.unwrap();
        let mut response = guest
            .handle_challenge(latchkey_lock::now(), &challenge)
            .unwrap();
        if tamper {
            response[19] ^= 0x01;
        }
        let result = link.write(RESPONSE_CHAR_UUID, &response).await;
        let code = result
            .as_ref()
            .map_err(|e| e.att().expect("an ATT error").code())
            .copied();
        let _ = guest.handle_write_result(code);
        match code {
            Ok(()) => Outcome::Unlocked,
            Err(c) => Outcome::ResponseRefused(c),
        }
    }
    .await;
    radio.stop_advertising().await.unwrap();
    link.disconnect().await.unwrap();
    guest.cancel_unlock();
    Attempt { outcome, beacon }
}

/// Unix milliseconds now.
pub fn now() -> UnixMillis {
    latchkey_lock::now()
}
