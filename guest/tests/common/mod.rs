//! Peers built from the core for the guest's tests: an issuer answering over MQTT and a lock
//! on a simulated radio. Real broker, real air, no mocks; the other daemon crates are not
//! used, so this crate is tested on its own.

#![allow(dead_code)]

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use latchkey::crypto::EnrollmentKey;
use latchkey::crypto::rsa::RsaPrivateKey;
use latchkey::lock::{BeaconOutcome, ConnId as CoreConn, MessageOutcome, Unlock};
use latchkey::{
    GuestId, Issuer, IssuerConfig, Lock, LockConfig, LockId, Reason, UnixMillis, topics,
};
use latchkey_guest::{
    EnrollmentBundle, GuestOptions, Guestd, Timeouts, WallClock, clock::system_now,
    gatt::service_spec,
};
use latchkey_transport::broker::EmbeddedBroker;
use latchkey_transport::mqtt::{
    ConnectionState, Incoming, MqttClient, MqttConfig, MqttUrl, NoJitter, QoS,
};
use latchkey_transport::radio::{
    AdvertReport, AttError, GattServiceSpec, LockRadio, LockRadioEvent, SimAir, SimRadio,
};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

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

/// The system clock shifted by an offset, shared by every peer of a test, so a test can
/// stand just before a step boundary. The offset only ever moves time forward.
#[derive(Debug, Default)]
pub struct TestClock {
    offset_ms: AtomicU64,
}

impl TestClock {
    pub fn system() -> Self {
        Self::default()
    }

    /// Moves "now" forward so that the next step boundary is `ms_before` milliseconds away.
    /// Returns the boundary.
    pub fn stand_before_step_boundary(&self, ms_before: u64) -> UnixMillis {
        let now = self.now().0;
        let target = 30_000 - ms_before;
        let shift = (target + 30_000 - now % 30_000) % 30_000;
        self.offset_ms.fetch_add(shift, Ordering::SeqCst);
        UnixMillis(now + shift + ms_before)
    }
}

impl WallClock for TestClock {
    fn now(&self) -> UnixMillis {
        UnixMillis(system_now().0 + self.offset_ms.load(Ordering::SeqCst))
    }
}

pub fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

fn key(name: &str) -> RsaPrivateKey {
    let path = format!(
        "{}/../vectors/keys/{name}.pk8.der",
        env!("CARGO_MANIFEST_DIR")
    );
    let der = std::fs::read(&path).expect("read test key");
    RsaPrivateKey::from_pkcs8_der(&der).expect("parse test key")
}

/// Identities, keys, broker and air of one test.
pub struct World {
    pub broker: EmbeddedBroker,
    pub air: SimAir,
    pub clock: Arc<TestClock>,
    pub lock_id: LockId,
    pub guest_id: GuestId,
    pub enrollment_key: EnrollmentKey,
    pub issuer_key: RsaPrivateKey,
    pub lock_key: RsaPrivateKey,
}

impl World {
    pub async fn new(clock: TestClock) -> World {
        init_tracing();
        let broker = tokio::task::spawn_blocking(|| {
            EmbeddedBroker::start(
                "127.0.0.1:0"
                    .parse::<SocketAddr>()
                    .expect("literal address"),
            )
        })
        .await
        .expect("broker thread")
        .expect("embedded broker starts");
        let mut r = rng(1);
        World {
            broker,
            air: SimAir::default(),
            clock: Arc::new(clock),
            lock_id: LockId::random(&mut r),
            guest_id: GuestId::random(&mut r),
            enrollment_key: EnrollmentKey::random(&mut r),
            issuer_key: key("issuer"),
            lock_key: key("lock-a"),
        }
    }

    pub fn bundle(&self) -> EnrollmentBundle {
        EnrollmentBundle::new(
            self.guest_id,
            self.enrollment_key.clone(),
            &self.broker.url(),
            vec![self.lock_id],
            0xFFFF,
        )
        .expect("valid bundle")
    }

    /// Guest options with timeouts short enough for tests.
    pub fn options(&self) -> GuestOptions {
        let mut o = GuestOptions::new(self.bundle());
        o.timeouts = Timeouts {
            mqtt_connect: Duration::from_secs(5),
            grant: Duration::from_secs(5),
            grant_retry: Duration::from_secs(1),
            attempt: Duration::from_secs(8),
            connect: Duration::from_secs(5),
            select_retry_for: Duration::from_millis(600),
            select_retry_every: Duration::from_millis(100),
        };
        o
    }

    pub async fn guest(&self, opts: GuestOptions) -> Guestd<SimRadio> {
        Guestd::with_env(opts, self.air.radio("phone"), self.clock.clone(), rng(7))
            .await
            .expect("guest daemon starts")
    }

    /// An MQTT client subscribed to `filter`, proven by a probe on `probe_topic` coming back
    /// (so no later publish can race the subscription).
    pub async fn client(
        &self,
        id: &str,
        filter: &str,
        probe_topic: &str,
    ) -> (MqttClient, mpsc::Receiver<Incoming>) {
        let url = MqttUrl::parse(&self.broker.url()).expect("broker url");
        let (c, mut rx) =
            MqttClient::spawn_with_jitter(MqttConfig::new(url, id), Box::new(NoJitter))
                .expect("mqtt config");
        c.subscribe(filter, QoS::AtLeastOnce)
            .await
            .expect("subscribe");
        within(
            5,
            "MQTT connect",
            c.state().wait_for(|s| *s == ConnectionState::Connected),
        )
        .await
        .expect("client task alive");
        c.publish(probe_topic, &b"probe"[..], QoS::AtLeastOnce, false)
            .await
            .expect("publish probe");
        within(5, "subscription probe", async {
            while let Some(m) = rx.recv().await {
                if m.topic == probe_topic && &m.payload[..] == b"probe" {
                    return;
                }
            }
        })
        .await;
        (c, rx)
    }
}

/// What the issuer peer did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IssuerLog {
    Granted(GuestId),
    Refused(Reason),
    /// The guest was revoked and this many revocations published.
    Revoked(GuestId, usize),
}

pub struct IssuerPeer {
    pub log: mpsc::UnboundedReceiver<IssuerLog>,
    revoke: mpsc::UnboundedSender<GuestId>,
    task: JoinHandle<()>,
}

impl IssuerPeer {
    /// Revokes the guest (its later requests get `guest_revoked`, unanswered) and its live
    /// grants, publishing the Revocations to the lock, as `revoke-guest` does.
    pub async fn revoke_guest(&mut self, guest: GuestId) -> usize {
        self.revoke.send(guest).expect("issuer peer alive");
        within(5, "the revocation", async {
            loop {
                if let Some(IssuerLog::Revoked(g, n)) = self.log.recv().await
                    && g == guest
                {
                    return n;
                }
            }
        })
        .await
    }
}

impl Drop for IssuerPeer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A core `Issuer` answering `requests/+` over MQTT, as the issuer daemon does.
pub async fn spawn_issuer(w: &World) -> IssuerPeer {
    let mut issuer = Issuer::new(IssuerConfig::new(w.issuer_key.clone())).expect("issuer config");
    issuer.add_lock(w.lock_id, w.lock_key.public_key());
    issuer.add_guest(
        w.guest_id,
        w.enrollment_key.clone(),
        BTreeSet::from([w.lock_id]),
    );
    let prefix = topics::DEFAULT_PREFIX;
    let (client, mut rx) = w
        .client(
            "test-issuer",
            &topics::requests_filter(prefix),
            &format!("{prefix}/requests/probe"),
        )
        .await;
    let clock = w.clock.clone();
    let (log_tx, log) = mpsc::unbounded_channel();
    let (revoke, mut revocations) = mpsc::unbounded_channel::<GuestId>();
    let task = tokio::spawn(async move {
        let mut r = rng(3);
        loop {
            let m = tokio::select! {
                m = rx.recv() => match m {
                    Some(m) => m,
                    None => break,
                },
                Some(guest) = revocations.recv() => {
                    issuer.revoke_guest(&guest);
                    let grants = issuer.live_grants_of(&guest, None);
                    for g in &grants {
                        let rev = issuer
                            .revoke_grant(clock.now(), *g, &mut r)
                            .expect("a live grant");
                        client
                            .publish(
                                &topics::lock_grants(prefix, &rev.lock_id),
                                rev.payload,
                                QoS::AtLeastOnce,
                                false,
                            )
                            .await
                            .expect("publish revocation");
                    }
                    let _ = log_tx.send(IssuerLog::Revoked(guest, grants.len()));
                    continue;
                }
            };
            let Some(guest) = topics::guest_of_request_topic(prefix, &m.topic) else {
                continue;
            };
            match issuer.handle_request(clock.now(), guest, &m.payload, &mut r) {
                Ok(g) => {
                    let lt = topics::lock_grants(prefix, &g.lock_id);
                    let gt = topics::guest_grants(prefix, &g.guest_id);
                    client
                        .publish(&lt, g.lock_grant.clone(), QoS::AtLeastOnce, false)
                        .await
                        .expect("publish lock grant");
                    client
                        .publish(&gt, g.guest_grant.to_vec(), QoS::AtLeastOnce, false)
                        .await
                        .expect("publish guest grant");
                    let _ = log_tx.send(IssuerLog::Granted(g.guest_id));
                }
                Err(reason) => {
                    let _ = log_tx.send(IssuerLog::Refused(reason));
                }
            }
        }
    });
    IssuerPeer { log, revoke, task }
}

/// What the lock peer saw and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockLog {
    GrantInstalled,
    RevocationApplied,
    GrantRefused(Reason),
    Armed { step: u32, attempt: u16 },
    BeaconRefused(Reason),
    SelectRefused(Reason),
    ChallengeServed,
    Unlocked(Unlock),
    ResponseRefused(Reason),
    ResponseWritten,
    Disconnected,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    /// Feeds the core, as the lock daemon does.
    Honest,
    /// Holds no session: accepts any Select and serves a made-up challenge.
    Impostor,
}

#[derive(Debug, Clone, Copy)]
pub struct LockSetup {
    pub rssi_threshold_dbm: i16,
    /// The radio (scanner and GATT server) starts only at this time.
    pub radio_from: Option<UnixMillis>,
    pub mode: LockMode,
}

impl Default for LockSetup {
    fn default() -> Self {
        Self {
            rssi_threshold_dbm: -70,
            radio_from: None,
            mode: LockMode::Honest,
        }
    }
}

pub struct LockPeer {
    pub log: mpsc::UnboundedReceiver<LockLog>,
    task: JoinHandle<()>,
}

impl Drop for LockPeer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl LockPeer {
    /// Everything logged so far.
    pub fn drain(&mut self) -> Vec<LockLog> {
        let mut out = Vec::new();
        while let Ok(l) = self.log.try_recv() {
            out.push(l);
        }
        out
    }

    /// Waits for a log entry matching `pred`.
    pub async fn wait_for(&mut self, what: &str, pred: impl Fn(&LockLog) -> bool) -> LockLog {
        within(10, what, async {
            loop {
                let l = self.log.recv().await.expect("lock peer alive");
                if pred(&l) {
                    return l;
                }
            }
        })
        .await
    }
}

/// A core `Lock` on a simulated radio, answering GATT with `att_code()` errors.
pub async fn spawn_lock(w: &World, setup: LockSetup) -> LockPeer {
    let mut cfg = LockConfig::new(w.lock_id, w.lock_key.clone(), w.issuer_key.public_key());
    cfg.rssi_threshold_dbm = setup.rssi_threshold_dbm;
    let mut lock = Lock::new(cfg).expect("lock config");
    let prefix = topics::DEFAULT_PREFIX;
    let grants = topics::lock_grants(prefix, &w.lock_id);
    let (_client, mut mqtt) = w.client("test-lock", &grants, &grants).await;
    let radio = w.air.radio("lock");
    let clock = w.clock.clone();
    let (log_tx, log) = mpsc::unbounded_channel();
    let spec = service_spec();
    let task = tokio::spawn(async move {
        let _client = _client;
        let mut r = rng(5);
        if let Some(t) = setup.radio_from {
            // Polled: the test may move the clock after this task started.
            while clock.now() < t {
                let left = Duration::from_millis(t.since(clock.now()));
                tokio::time::sleep(left.min(Duration::from_millis(10))).await;
            }
        }
        let mut events = radio.start_lock(spec).await.expect("lock radio starts");
        let mut challenges: HashMap<u64, Vec<u8>> = HashMap::new();
        let log = |l: LockLog| {
            let _ = log_tx.send(l);
        };
        loop {
            let wake = lock
                .poll_timeout()
                .map(|t| Duration::from_millis(t.since(clock.now())))
                .unwrap_or(Duration::from_secs(3600));
            tokio::select! {
                biased;
                m = mqtt.recv() => {
                    let Some(m) = m else { break };
                    match lock.handle_message(clock.now(), &m.payload, &mut r) {
                        Ok(MessageOutcome::Revocation(_)) => log(LockLog::RevocationApplied),
                        Ok(_) => log(LockLog::GrantInstalled),
                        Err(reason) => log(LockLog::GrantRefused(reason)),
                    }
                }
                ev = events.recv() => {
                    let Some(ev) = ev else { break };
                    handle_event(&mut lock, setup.mode, spec, &mut challenges, ev, clock.now(), &mut r, &log);
                }
                () = tokio::time::sleep(wake) => lock.handle_timeout(clock.now()),
            }
        }
    });
    LockPeer { log, task }
}

#[allow(clippy::too_many_arguments)]
fn handle_event(
    lock: &mut Lock,
    mode: LockMode,
    spec: GattServiceSpec,
    challenges: &mut HashMap<u64, Vec<u8>>,
    ev: LockRadioEvent,
    now: UnixMillis,
    r: &mut ChaCha20Rng,
    log: &impl Fn(LockLog),
) {
    let att = |reason: Reason| AttError::from_code(reason.att_code());
    match ev {
        LockRadioEvent::Advert(AdvertReport {
            company_id,
            data,
            rssi,
        }) => match lock.handle_beacon(now, company_id, &data, rssi) {
            Ok(BeaconOutcome::Armed { step, attempt, .. }) => log(LockLog::Armed {
                step: step.0,
                attempt,
            }),
            Ok(BeaconOutcome::AlreadyPending) => {}
            Err(reason) => log(LockLog::BeaconRefused(reason)),
        },
        LockRadioEvent::GattWrite {
            conn,
            characteristic,
            value,
            reply,
        } if characteristic == spec.challenge_char => {
            if mode == LockMode::Impostor {
                let mut fake = vec![0u8; 33];
                rand_core::Rng::fill_bytes(r, &mut fake);
                fake[0] = 1;
                challenges.insert(conn.0, fake);
                let _ = reply.send(Ok(()));
                return;
            }
            match lock.handle_select(now, CoreConn(conn.0), &value, r) {
                Ok(ch) => {
                    challenges.insert(conn.0, ch.to_bytes().to_vec());
                    let _ = reply.send(Ok(()));
                }
                Err(reason) => {
                    log(LockLog::SelectRefused(reason));
                    let _ = reply.send(Err(att(reason)));
                }
            }
        }
        LockRadioEvent::GattWrite {
            conn, value, reply, ..
        } => {
            log(LockLog::ResponseWritten);
            match lock.handle_response(now, CoreConn(conn.0), &value) {
                Ok(u) => {
                    log(LockLog::Unlocked(u));
                    let _ = reply.send(Ok(()));
                }
                Err(reason) => {
                    log(LockLog::ResponseRefused(reason));
                    let _ = reply.send(Err(att(reason)));
                }
            }
        }
        LockRadioEvent::GattRead { conn, reply, .. } => match challenges.get(&conn.0) {
            Some(c) => {
                log(LockLog::ChallengeServed);
                let _ = reply.send(Ok(c.clone()));
            }
            None => {
                let _ = reply.send(Err(att(Reason::NoChallenge)));
            }
        },
        LockRadioEvent::Disconnected { conn } => {
            lock.handle_disconnect(CoreConn(conn.0));
            challenges.remove(&conn.0);
            log(LockLog::Disconnected);
        }
    }
}

/// A radio that only listens: every advert on the air, with its arrival time.
pub async fn sniffer(w: &World) -> mpsc::UnboundedReceiver<(UnixMillis, AdvertReport)> {
    let radio = w.air.radio("sniffer");
    // A service nobody connects to: the guest looks for the Latchkey one.
    let spec = GattServiceSpec {
        service: uuid_of(0x51),
        challenge_char: uuid_of(0x52),
        response_char: uuid_of(0x53),
    };
    let mut events = radio.start_lock(spec).await.expect("sniffer radio starts");
    let clock = w.clock.clone();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let _radio = radio;
        while let Some(ev) = events.recv().await {
            if let LockRadioEvent::Advert(a) = ev
                && tx.send((clock.now(), a)).is_err()
            {
                break;
            }
        }
    });
    rx
}

fn uuid_of(n: u128) -> uuid::Uuid {
    uuid::Uuid::from_u128(n)
}
