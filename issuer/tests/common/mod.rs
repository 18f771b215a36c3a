//! Shared test fixtures: a provisioned state directory, the issuer on a real embedded
//! broker, and a core `Lock` and `Guest` as MQTT peers. No mocks.
#![allow(dead_code)]
// Fixtures: any failure here is a test failure, and should panic.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once, OnceLock};
use std::time::Duration;

use latchkey::crypto::EnrollmentKey;
use latchkey::{Guest, GuestConfig, GuestId, Lock, LockConfig, LockId, UnixMillis, topics};
use latchkey_issuer::keys::{load_private_key, load_public_key};
use latchkey_issuer::rng::{Csprng, seeded_rng};
use latchkey_issuer::state::StatePaths;
use latchkey_issuer::store::{KekSource, OpenMode, Store};
use latchkey_issuer::{IssuerEvent, IssuerOptions, Issuerd, IssuerdHandle};
use latchkey_transport::mqtt::{Incoming, MqttClient, MqttConfig, MqttUrl, QoS};
use tempfile::TempDir;
use tokio::sync::{broadcast, mpsc};

pub const PREFIX: &str = "latchkey/v1";

// ------------------------------------------------------------------------------- logs

static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();

#[derive(Clone)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        std::io::stderr().write_all(buf)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Captures every log line of this test binary (all tests share it; search by unique ids).
pub fn init_logs() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let buf = LOGS.get_or_init(Default::default).clone();
        let _ = tracing_subscriber::fmt()
            .with_env_filter("info,rumqttd=warn")
            .with_ansi(false)
            .with_writer(move || Capture(buf.clone()))
            .try_init();
    });
}

/// Whether some log line contains every one of `parts`.
pub fn logged(parts: &[&str]) -> bool {
    let buf = LOGS.get_or_init(Default::default).lock().unwrap().clone();
    String::from_utf8_lossy(&buf)
        .lines()
        .any(|l| parts.iter().all(|p| l.contains(p)))
}

// ---------------------------------------------------------------------------- helpers

pub async fn within<T>(secs: u64, what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), f)
        .await
        .unwrap_or_else(|_| panic!("timed out after {secs} s waiting for {what}"))
}

/// Sleeps into the next second: LK-ISS-5 refuses requests timestamped before a restart's
/// second.
pub async fn next_second() {
    let ms = now().0 % 1000;
    tokio::time::sleep(Duration::from_millis(1000 - ms + 20)).await;
}

pub fn now() -> UnixMillis {
    latchkey_issuer::time::now()
}

pub fn rng(tag: u8) -> Csprng {
    seeded_rng([tag; 32])
}

/// A provisioned state directory: issuer key, one lock, one guest allowed at it.
pub struct Provisioned {
    pub dir: TempDir,
    pub lock_id: LockId,
    pub lock_dir: PathBuf,
    pub guest_id: GuestId,
    pub bundle: PathBuf,
}

impl Provisioned {
    pub fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        latchkey_issuer::keygen(&state).unwrap();
        let lock_dir = dir.path().join("lock");
        let lock_id =
            latchkey_issuer::add_lock(&state, None, &lock_dir, "mqtt://127.0.0.1:1883").unwrap();
        let bundle = dir.path().join("guest.json");
        let guest_id = latchkey_issuer::enroll_guest(
            &state,
            None,
            &[lock_id],
            &bundle,
            "mqtt://127.0.0.1:1883",
        )
        .unwrap();
        Self {
            dir,
            lock_id,
            lock_dir,
            guest_id,
            bundle,
        }
    }

    /// Enrolls another guest at the lock.
    pub fn enroll(&self, name: &str) -> (GuestId, PathBuf) {
        let bundle = self.dir.path().join(format!("{name}.json"));
        let id = latchkey_issuer::enroll_guest(
            &self.state(),
            None,
            &[self.lock_id],
            &bundle,
            "mqtt://127.0.0.1:1883",
        )
        .unwrap();
        (id, bundle)
    }
}

/// The registry of a state directory (KEK from STATE_DIR/kek.key).
pub fn store(state: &Path) -> Store {
    Store::open(
        &StatePaths::new(state),
        &KekSource::Auto,
        OpenMode::Existing,
    )
    .unwrap()
}

pub fn options(state: &Path) -> IssuerOptions {
    let mut o = IssuerOptions::new(state);
    o.broker = latchkey_issuer::BrokerChoice::Embedded {
        listen: "127.0.0.1:0".parse().unwrap(),
    };
    o
}

pub async fn start_issuer(state: &Path) -> IssuerdHandle {
    Issuerd::start(options(state)).await.unwrap()
}

/// The issuer with [`options`] changed by `tweak` (smaller tunables, a web UI…).
pub async fn start_issuer_with(
    state: &Path,
    tweak: impl FnOnce(&mut IssuerOptions),
) -> IssuerdHandle {
    let mut o = options(state);
    tweak(&mut o);
    Issuerd::start(o).await.unwrap()
}

// ------------------------------------------------------------------------------ peers

/// An MQTT client subscribed to `topic`, ready (a probe published to the topic came back).
pub struct Peer {
    pub client: MqttClient,
    pub rx: mpsc::Receiver<Incoming>,
}

const PROBE: &[u8] = b"\x00probe";

impl Peer {
    pub async fn connect(broker_url: &str, client_id: &str, topic: Option<&str>) -> Self {
        // Unique ids: two clients with one id would throw each other off the broker.
        static N: AtomicU64 = AtomicU64::new(0);
        let client_id = format!("{client_id}-{}", N.fetch_add(1, Ordering::Relaxed));
        let mut cfg = MqttConfig::new(MqttUrl::parse(broker_url).unwrap(), client_id);
        // Lets tests send payloads over the issuer's 64 KiB limit.
        cfg.max_payload = 128 * 1024;
        let (client, mut rx) = MqttClient::spawn(cfg).unwrap();
        if let Some(topic) = topic {
            client.subscribe(topic, QoS::AtLeastOnce).await.unwrap();
            within(10, "peer subscription", async {
                loop {
                    client
                        .publish(topic, PROBE, QoS::AtLeastOnce, false)
                        .await
                        .unwrap();
                    if let Ok(Some(m)) =
                        tokio::time::timeout(Duration::from_millis(200), rx.recv()).await
                        && m.payload.as_ref() == PROBE
                    {
                        break;
                    }
                }
            })
            .await;
            // Drain duplicate probes.
            while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(50), rx.recv()).await
            {
            }
        }
        Self { client, rx }
    }

    pub async fn publish(&self, topic: &str, payload: &[u8]) {
        self.client
            .publish(topic, payload.to_vec(), QoS::AtLeastOnce, false)
            .await
            .unwrap();
    }

    /// The next non-probe message, or `None` after `ms`.
    pub async fn next(&mut self, ms: u64) -> Option<Incoming> {
        let deadline = tokio::time::Instant::now() + Duration::from_millis(ms);
        loop {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(m)) if m.payload.as_ref() == PROBE => continue,
                Ok(Some(m)) => return Some(m),
                _ => return None,
            }
        }
    }
}

/// The lock as a peer: the core `Lock` built from add-lock's files.
pub struct LockPeer {
    pub lock: Lock,
    pub peer: Peer,
    pub rng: Csprng,
}

impl LockPeer {
    pub async fn connect(p: &Provisioned, broker_url: &str) -> Self {
        let key = load_private_key(&p.lock_dir.join("lock.key.pem"), "lock key").unwrap();
        let issuer = load_public_key(&p.lock_dir.join("issuer.pub.pem"), "issuer key").unwrap();
        let lock = Lock::new(LockConfig::new(p.lock_id, key, issuer)).unwrap();
        let topic = topics::lock_grants(PREFIX, &p.lock_id);
        let peer = Peer::connect(
            broker_url,
            &format!("test-lock-{}", p.lock_id),
            Some(&topic),
        )
        .await;
        Self {
            lock,
            peer,
            rng: rng(0x10),
        }
    }

    /// Publishes a LockStatus of this lock stamped `at` (its heartbeat, Lock::status_message).
    pub async fn send_status(&mut self, at: UnixMillis) -> Vec<u8> {
        let input = latchkey::lock::StatusInput {
            uptime_s: 60,
            battery_pct: Some(90),
            flags: latchkey::frame::StatusFlags::MAINS_POWER,
            counters: &[],
        };
        let st = self.lock.status_message(at, &input, &mut self.rng);
        let topic = topics::lock_events(PREFIX, &self.lock.config().lock_id);
        self.peer.publish(&topic, &st).await;
        st
    }

    /// Publishes a signed event of this lock.
    pub async fn send_event(
        &mut self,
        kind: latchkey::frame::EventKind,
        grant: latchkey::GrantId,
        session: latchkey::SessionId,
    ) {
        let ev = self
            .lock
            .signed_event(now(), kind, None, grant, session, &mut self.rng);
        let topic = topics::lock_events(PREFIX, &self.lock.config().lock_id);
        self.peer.publish(&topic, &ev).await;
    }
}

/// Reads an enrollment bundle.
pub fn bundle(path: &Path) -> (GuestId, EnrollmentKey) {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let id: GuestId = v["guest_id"].as_str().unwrap().parse().unwrap();
    let mut key = [0u8; 32];
    hex::decode_to_slice(v["enrollment_key"].as_str().unwrap(), &mut key).unwrap();
    (id, EnrollmentKey::from_bytes(key))
}

/// The guest as a peer: the core `Guest` built from its enrollment bundle.
pub struct GuestPeer {
    pub guest: Guest,
    pub peer: Peer,
    pub rng: Csprng,
}

impl GuestPeer {
    pub async fn connect(bundle_path: &Path, broker_url: &str) -> Self {
        let (id, key) = bundle(bundle_path);
        Self::with_key(id, key, broker_url).await
    }

    pub async fn with_key(id: GuestId, key: EnrollmentKey, broker_url: &str) -> Self {
        let guest = Guest::new(GuestConfig::new(id, key)).unwrap();
        let topic = topics::guest_grants(PREFIX, &id);
        let peer = Peer::connect(broker_url, &format!("test-guest-{id}"), Some(&topic)).await;
        Self {
            guest,
            peer,
            rng: rng(0x20),
        }
    }

    pub fn id(&self) -> GuestId {
        self.guest.config().guest_id
    }

    /// A fresh sealed request for `lock`.
    pub fn request(&mut self, lock: LockId) -> Vec<u8> {
        self.request_for(lock, 600)
    }

    /// A fresh sealed request for `lock`, asking for `validity_s` seconds.
    pub fn request_for(&mut self, lock: LockId, validity_s: u32) -> Vec<u8> {
        self.guest
            .request_grant(now(), lock, validity_s, &mut self.rng)
            .to_vec()
    }

    /// Publishes `payload` on this guest's request topic.
    pub async fn send(&self, payload: &[u8]) {
        let topic = topics::requests(PREFIX, &self.id());
        self.peer.publish(&topic, payload).await;
    }
}

/// An issuer running on a provisioned state directory, with its lock and first guest
/// connected to its broker and its events subscribed.
pub struct Running {
    pub issuer: IssuerdHandle,
    pub url: String,
    pub lock: LockPeer,
    pub guest: GuestPeer,
    pub events: broadcast::Receiver<IssuerEvent>,
}

impl Running {
    pub async fn start(p: &Provisioned) -> Self {
        Self::start_with(p, |_| {}).await
    }

    /// [`Running::start`] with the issuer's options changed by `tweak`.
    pub async fn start_with(p: &Provisioned, tweak: impl FnOnce(&mut IssuerOptions)) -> Self {
        init_logs();
        let issuer = start_issuer_with(&p.state(), tweak).await;
        let url = issuer.broker_url().to_owned();
        let lock = LockPeer::connect(p, &url).await;
        let guest = GuestPeer::connect(&p.bundle, &url).await;
        let events = issuer.subscribe();
        Self {
            issuer,
            url,
            lock,
            guest,
            events,
        }
    }
}

/// Requests a grant for `guest` and installs it at `lock`; returns its ids.
pub async fn grant(
    lock: &mut LockPeer,
    guest: &mut GuestPeer,
) -> (latchkey::GrantId, latchkey::SessionId) {
    let req = guest.request(lock.lock.config().lock_id);
    guest.send(&req).await;
    let lg = lock.peer.next(10_000).await.expect("a LockGrant");
    let out = lock
        .lock
        .handle_message(now(), &lg.payload, &mut lock.rng)
        .unwrap();
    let latchkey::lock::MessageOutcome::Grant(latchkey::lock::GrantOutcome::Installed {
        grant_id,
        session_id,
        ..
    }) = out
    else {
        panic!("{out:?}");
    };
    let gg = guest.peer.next(10_000).await.expect("a GuestGrant");
    guest.guest.handle_grant(now(), &gg.payload).unwrap();
    (grant_id, session_id)
}

/// The next issuer event matching `f`, skipping others.
pub async fn expect_event<T>(
    events: &mut broadcast::Receiver<IssuerEvent>,
    what: &str,
    mut f: impl FnMut(&IssuerEvent) -> Option<T>,
) -> T {
    within(10, what, async {
        loop {
            let e = events.recv().await.unwrap();
            if let Some(t) = f(&e) {
                return t;
            }
        }
    })
    .await
}

pub fn free_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}
