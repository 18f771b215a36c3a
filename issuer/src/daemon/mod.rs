//! The daemon: one task owns the core [`Issuer`] and `select!`s over MQTT messages, control
//! commands and a timer at the core's `poll_timeout`; a second task publishes in order; a
//! third serves the control socket; a fourth (optional) serves the admin web. No protocol
//! decision is made here: the core decides, with the access policy of [`policy`] (over the
//! registry); lock messages and decisions are audited and fed to the anomaly engine
//! ([`alerts`]).

mod admin;
pub(crate) mod alerts;
mod policy;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use latchkey::frame::{EventKind, LockEvent};
use latchkey::issuer::LockReport;
use latchkey::{
    EventId, GrantId, GuestId, Issuer, IssuerConfig, LockId, Reason, UnixMillis, topics,
};
use latchkey_transport::broker::EmbeddedBroker;
use latchkey_transport::mqtt::{ConnectionState, Incoming, MqttClient, MqttConfig, MqttUrl, QoS};
use rand_core::Rng;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::config::{BrokerChoice, IssuerOptions, connectable, validate_prefix};
use crate::control::{self, ACTOR_CONTROL, Command};
use crate::error::IssuerdError;
use crate::fsutil::{self, FileLock};
use crate::keys;
use crate::policy::AccountingWindow;
use crate::rng::{Csprng, os_rng, seeded_rng};
use crate::state::StatePaths;
use crate::status::{
    Counters, GrantSummary, GuestSummary, IssuerEvent, IssuerStatus, PendingRevocationSummary,
    RevokedGrant,
};
use crate::store::{
    AuditSource, NewAudit, NewGrant, OpenMode, PendingRevocation, RegistrySnapshot, Store, kinds,
};
use crate::time;
use crate::web::AdminWeb;
use admin::DaemonBackend;
use alerts::{Anomalies, alerts_topic};

/// Longest interval between re-publications of an unconfirmed revocation.
const REVOCATION_RETRY_CAP: Duration = Duration::from_secs(15 * 60);
/// The loop wakes at least this often, so a wall clock that jumps is noticed.
const MAX_SLEEP: Duration = Duration::from_secs(60);
/// Publications waiting for the MQTT client; beyond it they are dropped (and counted).
const OUTBOX_CAPACITY: usize = 4096;
/// How often old audit entries are pruned.
const AUDIT_PRUNE_INTERVAL: Duration = Duration::from_secs(3600);
/// How long shutdown waits for queued publications to reach the MQTT client.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// The issuer daemon. See [`Issuerd::start`].
#[derive(Debug)]
pub struct Issuerd;

impl Issuerd {
    /// Starts the issuer on the current tokio runtime: loads the key and the registry from
    /// the state directory, restores the live grants (and refuses every request timestamped
    /// before now, LK-ISS-5), starts the embedded broker or connects to the external one,
    /// restores the lock message replay cache from the audit trail (LK-EVT-4), warms the
    /// anomaly engine up on the recent audit trail, subscribes to `requests/+` and
    /// `locks/+/events`, opens the control socket and, if configured, serves the admin web.
    ///
    /// With the embedded broker it returns once the subscriptions are confirmed; a broker
    /// or admin web that cannot bind its port is an error. With an external broker it
    /// returns at once and keeps reconnecting in the background.
    pub async fn start(opts: IssuerOptions) -> Result<IssuerdHandle, IssuerdError> {
        validate_prefix(&opts.topic_prefix)?;
        let paths = StatePaths::new(&opts.state_dir);
        fsutil::ensure_private_dir(paths.dir(), true)?;
        let Some(dir_lock) = FileLock::try_acquire(&paths.daemon_lock())? else {
            return Err(IssuerdError::AlreadyRunning {
                dir: paths.dir().to_owned(),
            });
        };

        let key_path = paths.issuer_key();
        if !key_path.exists() {
            return Err(IssuerdError::NoIssuerKey { path: key_path });
        }
        let signing_key = keys::load_private_key(&key_path, "issuer private key")?;
        let rsa_provider = signing_key.provider().name();
        let mut cfg = IssuerConfig::new(signing_key);
        cfg.request_window_s = opts.request_window_s;
        cfg.request_cache_capacity = opts.request_cache_capacity;
        cfg.max_grant_validity_s = opts.max_grant_validity_s;
        cfg.backdate_s = opts.backdate_s;
        cfg.max_live_grants = opts.max_live_grants;
        cfg.event_window_s = opts.event_window_s;
        cfg.event_replay_capacity = opts.event_replay_capacity;
        cfg.rate_guest_burst = opts.rate_guest_burst;
        cfg.rate_guest_per_hour = opts.rate_guest_per_hour;
        cfg.rate_lock_burst = opts.rate_lock_burst;
        cfg.rate_lock_per_hour = opts.rate_lock_per_hour;
        let mut issuer = Issuer::new(cfg)
            .map_err(|e| IssuerdError::Config(format!("{e} (see `latchkey-issuer run --help`)")))?;

        let mut store = Store::open(&paths, &opts.kek, OpenMode::Create)?;
        let mut registry = RegistrySnapshot::default();
        let snapshot = store.registry_snapshot()?;
        apply_registry(&mut issuer, &store, &mut registry, snapshot);

        let started_at = time::now();
        let now_s = started_at.secs();
        let mut restored = 0usize;
        for g in store.live_grants(now_s)? {
            issuer.restore_live_grant(g);
            restored += 1;
        }
        // The request cache did not survive: nothing timestamped before now is accepted.
        issuer.refuse_requests_before(now_s);
        // The lock message cache did (LK-EVT-4): every message accepted within the window
        // is in the audit trail. A message accepted at issuer time t carries a lock time of
        // at least t - window, and is remembered until lock time + window.
        let window_ms = opts.event_window_s.saturating_mul(1000);
        let mut lock_messages = 0usize;
        for m in store.recent_lock_messages(started_at.0.saturating_sub(2 * window_ms))? {
            issuer.restore_lock_message(m.lock_id, EventId(m.message_id), m.lock_time_ms);
            lock_messages += 1;
        }
        let anomalies = match &opts.anomaly {
            None => None,
            Some(a) => {
                let mut anomalies = Anomalies::new(a)?;
                anomalies.set_locks(&store.locks()?);
                let warm = anomalies.warm_up(&store, started_at.0)?;
                info!(
                    audit_rows = warm.rows,
                    alerts_discarded = warm.discarded,
                    days = a.warmup_days,
                    "anomaly engine warmed up on the audit trail"
                );
                Some(anomalies)
            }
        };
        let pending: BTreeMap<GrantId, PendingRevocation> = store
            .pending_revocations(now_s)?
            .into_iter()
            .map(|mut r| {
                // Delivery is unconfirmed (or, revoked while no daemon ran, not even
                // begun): publish at once.
                r.next_publish = started_at;
                (r.grant_id, r)
            })
            .collect();
        let mut rng = match opts.rng_seed {
            Some(seed) => seeded_rng(seed),
            None => os_rng()?,
        };

        let listener = control::bind(&paths)?;
        let socket = SocketGuard(paths.control_socket());
        let (cmd_tx, cmd_rx) = mpsc::channel(64);
        // Bound before anything connects: a taken port is a startup error, never a fallback.
        let web = match &opts.web {
            None => None,
            Some(w) => {
                // Its own connection: `Store` is not `Sync`, and the web's reads must not
                // wait for the daemon's loop.
                let backend = DaemonBackend::new(
                    Store::open(&paths, &opts.kek, OpenMode::Existing)?,
                    cmd_tx.clone(),
                    w.clone(),
                );
                let server = AdminWeb::new(Arc::new(backend), w.config.clone())?;
                let web_listener = server.bind().await?;
                let addr = web_listener
                    .local_addr()
                    .map_err(|e| IssuerdError::Web(crate::web::WebError::Serve(e)))?;
                Some((server, web_listener, addr))
            }
        };

        let (broker, mqtt_cfg) = match &opts.broker {
            BrokerChoice::Embedded { listen } => {
                let listen = *listen;
                let broker = tokio::task::spawn_blocking(move || EmbeddedBroker::start(listen))
                    .await
                    .map_err(|e| IssuerdError::Config(format!("broker start task: {e}")))??;
                let url = format!("mqtt://{}", connectable(broker.local_addr()));
                let url = MqttUrl::parse(&url).map_err(|source| IssuerdError::BrokerUrl {
                    url: url.clone(),
                    source,
                })?;
                (Some(broker), MqttConfig::new(url, opts.client_id.clone()))
            }
            BrokerChoice::External(cfg) => (None, cfg.clone()),
        };
        let broker_url = mqtt_cfg.url.to_string();
        let (client, incoming) = MqttClient::spawn(mqtt_cfg)?;
        let mqtt_state = client.state();
        let prefix = opts.topic_prefix.clone();
        client
            .subscribe(&topics::requests_filter(&prefix), QoS::AtLeastOnce)
            .await?;
        client
            .subscribe(&topics::lock_events_filter(&prefix), QoS::AtLeastOnce)
            .await?;
        // SUBACKs are not surfaced: a message to ourselves, subscribed after the real
        // filters, comes back only once the broker has processed them.
        let probe_topic = format!("{prefix}/issuer/ready/{:016x}", rng.next_u64());
        client.subscribe(&probe_topic, QoS::AtLeastOnce).await?;
        client
            .publish(&probe_topic, &b"ready"[..], QoS::AtLeastOnce, false)
            .await?;

        let cancel = CancellationToken::new();
        let done = CancellationToken::new();
        let mut web_addr = None;
        let mut web_task = None;
        if let Some((server, web_listener, addr)) = web {
            let stop = cancel.clone();
            web_addr = Some(addr);
            web_task = Some(tokio::spawn(async move {
                let shutdown = async move { stop.cancelled().await };
                if let Err(e) = server.serve(web_listener, shutdown).await {
                    error!(error = %e, "the admin web stopped");
                }
            }));
        }
        let (out_tx, out_rx) = mpsc::channel(OUTBOX_CAPACITY);
        let (events, _) = broadcast::channel(1024);
        let (ready_tx, ready_rx) = watch::channel(false);

        info!(
            state_dir = %paths.dir().display(),
            broker = %broker_url,
            locks = registry.locks.len(),
            guests = registry.guests.len(),
            live_grants = restored,
            pending_revocations = pending.len(),
            lock_messages,
            web = %web_addr.map_or("off".to_owned(), |a| format!("http://{a}/")),
            rsa_provider,
            "issuer starting"
        );
        let daemon = Daemon {
            issuer,
            rng,
            prefix,
            store,
            registry,
            registry_error: false,
            pending,
            audit_retention: opts.audit_retention,
            next_audit_prune: started_at,
            window: opts.accounting_window(),
            anomalies,
            revocation_retry: opts.revocation_retry,
            outbox: out_tx,
            events: events.clone(),
            counters: Counters::default(),
            mqtt_state,
            ready: ready_tx,
            probe_topic,
            started_at,
            broker_url: broker_url.clone(),
            paths: paths.clone(),
        };
        let mut tasks = vec![
            tokio::spawn(daemon.run(incoming, cmd_rx, cancel.clone(), done.clone())),
            tokio::spawn(control::serve(listener, cmd_tx.clone(), cancel.clone())),
        ];
        tasks.extend(web_task);
        let publisher = tokio::spawn(publisher(client, out_rx));

        let handle = IssuerdHandle {
            broker_url,
            web_addr,
            state_dir: paths.dir().to_owned(),
            commands: cmd_tx,
            events,
            ready: ready_rx,
            cancel,
            done,
            tasks,
            publisher: Some(publisher),
            broker,
            socket: Some(socket),
            dir_lock: Some(dir_lock),
        };
        if handle.broker.is_some()
            && let Err(e) = handle.wait_subscribed(opts.subscribe_timeout).await
        {
            handle.shutdown().await;
            return Err(e);
        }
        Ok(handle)
    }
}

/// Removes the control socket when dropped.
#[derive(Debug)]
struct SocketGuard(PathBuf);

impl Drop for SocketGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A running issuer. Dropping it stops the daemon's tasks; [`IssuerdHandle::shutdown`]
/// also flushes queued publications and disconnects cleanly.
#[derive(Debug)]
pub struct IssuerdHandle {
    broker_url: String,
    web_addr: Option<SocketAddr>,
    state_dir: PathBuf,
    commands: mpsc::Sender<Command>,
    events: broadcast::Sender<IssuerEvent>,
    ready: watch::Receiver<bool>,
    cancel: CancellationToken,
    done: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    publisher: Option<JoinHandle<()>>,
    broker: Option<EmbeddedBroker>,
    socket: Option<SocketGuard>,
    dir_lock: Option<FileLock>,
}

impl IssuerdHandle {
    /// The broker URL the issuer is connected to (for the embedded broker, the address
    /// locks and guests on this machine use).
    pub fn broker_url(&self) -> &str {
        &self.broker_url
    }

    /// The state directory.
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// Where the admin web listens (the port bound, if 0 was asked for); `None` without it.
    pub fn web_addr(&self) -> Option<SocketAddr> {
        self.web_addr
    }

    /// A stream of what the issuer does from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<IssuerEvent> {
        self.events.subscribe()
    }

    /// Waits until the broker has confirmed the issuer's subscriptions.
    pub async fn wait_subscribed(&self, timeout: Duration) -> Result<(), IssuerdError> {
        let mut ready = self.ready.clone();
        match tokio::time::timeout(timeout, ready.wait_for(|r| *r)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(IssuerdError::Stopped),
            Err(_) => Err(IssuerdError::NotSubscribed(timeout)),
        }
    }

    /// Revokes a live grant: publishes a signed Revocation to its lock (re-published until
    /// the lock confirms it).
    pub async fn revoke_grant(&self, grant_id: GrantId) -> Result<RevokedGrant, IssuerdError> {
        control::ask(&self.commands, |tx| {
            Command::RevokeGrant(grant_id, ACTOR_CONTROL.to_owned(), tx)
        })
        .await
    }

    /// Revokes a guest's enrollment (its later requests are refused, `guest_revoked`) and
    /// all its live grants.
    pub async fn revoke_guest(&self, guest_id: GuestId) -> Result<Vec<RevokedGrant>, IssuerdError> {
        control::ask(&self.commands, |tx| {
            Command::RevokeGuest(guest_id, ACTOR_CONTROL.to_owned(), tx)
        })
        .await
    }

    /// The issuer's status.
    pub async fn status(&self) -> Result<IssuerStatus, IssuerdError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::Status(tx))
            .await
            .map_err(|_| IssuerdError::Stopped)?;
        rx.await.map_err(|_| IssuerdError::Stopped)
    }

    /// Resolves when the daemon's loop has ended (after [`IssuerdHandle::shutdown`] began,
    /// or if its MQTT client died).
    pub async fn stopped(&self) {
        self.done.cancelled().await;
    }

    /// Stops the daemon: ends the loops, hands queued publications to the broker, sends
    /// MQTT DISCONNECT, stops the embedded broker, removes the control socket and releases
    /// the state directory.
    pub async fn shutdown(mut self) {
        self.cancel.cancel();
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
        if let Some(p) = self.publisher.take() {
            let abort = p.abort_handle();
            if tokio::time::timeout(DRAIN_TIMEOUT, p).await.is_err() {
                warn!("MQTT publications not flushed in time; dropping them");
                abort.abort();
            }
        }
        if let Some(b) = self.broker.take() {
            let _ = tokio::task::spawn_blocking(move || b.stop()).await;
        }
        self.socket.take();
        self.dir_lock.take();
        info!(state_dir = %self.state_dir.display(), "issuer stopped");
    }
}

impl Drop for IssuerdHandle {
    fn drop(&mut self) {
        self.cancel.cancel();
        for t in &self.tasks {
            t.abort();
        }
        if let Some(p) = &self.publisher {
            p.abort();
        }
    }
}

enum Outgoing {
    Publish { topic: String, payload: Vec<u8> },
    Unsubscribe(String),
}

/// Hands publications to the MQTT client in order, then disconnects when the loop is gone.
async fn publisher(client: MqttClient, mut outbox: mpsc::Receiver<Outgoing>) {
    while let Some(o) = outbox.recv().await {
        match o {
            Outgoing::Publish { topic, payload } => {
                let size = payload.len();
                if let Err(e) = client
                    .publish(&topic, payload, QoS::AtLeastOnce, false)
                    .await
                {
                    error!(topic = %topic, size, error = %e, "MQTT publish failed");
                }
            }
            Outgoing::Unsubscribe(filter) => {
                if let Err(e) = client.unsubscribe(&filter).await {
                    debug!(filter = %filter, error = %e, "MQTT unsubscribe failed");
                }
            }
        }
    }
    client.shutdown().await;
}

/// Brings the core up to `snap`: locks whose key changed are (re-)registered; guests whose
/// key version, allowed locks or revocation changed are (re-)enrolled, their key opened
/// from the store only then. The core cannot forget a guest: one that left the registry,
/// or whose key no longer opens, is revoked in the core (fail closed). `loaded` is what the
/// core holds.
fn apply_registry(
    issuer: &mut Issuer,
    store: &Store,
    loaded: &mut RegistrySnapshot,
    snap: RegistrySnapshot,
) {
    for (id, pem) in &snap.locks {
        if loaded.locks.get(id) == Some(pem) {
            continue;
        }
        match keys::decode_public_pem(pem.as_bytes()) {
            Ok(key) => {
                issuer.add_lock(*id, key);
                loaded.locks.insert(*id, pem.clone());
            }
            Err(e) => {
                error!(lock = %id, error = %e, "registry: the lock's public key does not parse; lock not loaded")
            }
        }
    }
    for (id, g) in &snap.guests {
        let (id, g) = (*id, g.clone());
        let before = loaded.guests.get(&id);
        if before == Some(&g) {
            continue;
        }
        let same_key = before
            .is_some_and(|b| b.key_version == g.key_version && b.allowed_locks == g.allowed_locks);
        if same_key && g.revoked {
            issuer.revoke_guest(&id);
            loaded.guests.insert(id, g);
            continue;
        }
        match store.enrollment_key(&id) {
            Ok(key) => {
                issuer.add_guest(id, key, g.allowed_locks.clone());
                if g.revoked {
                    issuer.revoke_guest(&id);
                }
                loaded.guests.insert(id, g);
            }
            Err(e) => {
                error!(guest = %id, error = %e, "registry: guest not loaded; its requests are refused");
                if loaded.guests.remove(&id).is_some() {
                    issuer.revoke_guest(&id);
                }
            }
        }
    }
    let gone: Vec<GuestId> = loaded
        .guests
        .keys()
        .filter(|id| !snap.guests.contains_key(id))
        .copied()
        .collect();
    for id in gone {
        warn!(guest = %id, "registry: guest removed; revoked in the running issuer");
        issuer.revoke_guest(&id);
        loaded.guests.remove(&id);
    }
}

/// `name (LK-…)`, naming the requirement of the check that ran here: a reason shared by
/// several roles (`bad_seal` is LK-GGR-3 at the guest, LK-ISS-3 here) cites ours.
fn describe(reason: Reason, family: &str) -> String {
    let reqs = reason.requirements();
    let req = reqs
        .iter()
        .find(|r| r.starts_with(family))
        .or(reqs.first())
        .copied()
        .unwrap_or("?");
    format!("{} ({req})", reason.name())
}

fn reason_text(code: u16) -> String {
    match (code, Reason::from_code(code)) {
        (0, _) => "none".to_owned(),
        (_, Some(r)) => r.to_string(),
        (c, None) => format!("unknown reason code {c}"),
    }
}

/// A topic as logged: bounded, because it comes from the network.
fn shown(topic: &str) -> &str {
    match topic.char_indices().nth(200) {
        Some((i, _)) => &topic[..i],
        None => topic,
    }
}

struct Daemon {
    issuer: Issuer,
    rng: Csprng,
    paths: StatePaths,
    prefix: String,
    store: Store,
    /// What the core holds of the registry.
    registry: RegistrySnapshot,
    /// A reload failed and was logged; logged again only after a success.
    registry_error: bool,
    pending: BTreeMap<GrantId, PendingRevocation>,
    revocation_retry: Duration,
    audit_retention: Duration,
    next_audit_prune: UnixMillis,
    /// The unlock accounting's window (docs/policy.md).
    window: AccountingWindow,
    /// The anomaly engine, if on.
    anomalies: Option<Anomalies>,
    outbox: mpsc::Sender<Outgoing>,
    events: broadcast::Sender<IssuerEvent>,
    counters: Counters,
    mqtt_state: watch::Receiver<ConnectionState>,
    ready: watch::Sender<bool>,
    probe_topic: String,
    started_at: UnixMillis,
    broker_url: String,
}

impl Daemon {
    async fn run(
        mut self,
        mut incoming: mpsc::Receiver<Incoming>,
        mut commands: mpsc::Receiver<Command>,
        cancel: CancellationToken,
        done: CancellationToken,
    ) {
        loop {
            let wake = self.next_wake(time::now());
            tokio::select! {
                biased;
                _ = cancel.cancelled() => break,
                Some(cmd) = commands.recv() => self.on_command(cmd),
                msg = incoming.recv() => match msg {
                    Some(m) => self.on_message(&m),
                    None => {
                        error!("the MQTT client stopped; the issuer loop ends");
                        break;
                    }
                },
                _ = tokio::time::sleep(wake) => {}
            }
            self.on_timer(time::now());
        }
        done.cancel();
    }

    fn next_wake(&self, now: UnixMillis) -> Duration {
        let mut at = now.plus_ms(MAX_SLEEP.as_millis() as u64);
        if let Some(t) = self.issuer.poll_timeout() {
            at = at.min(t);
        }
        if let Some(t) = self.pending.values().map(|p| p.next_publish).min() {
            at = at.min(t);
        }
        time::until(now, at)
    }

    fn emit(&self, e: IssuerEvent) {
        // Nobody listening is fine.
        let _ = self.events.send(e);
    }

    fn publish(&mut self, topic: String, payload: Vec<u8>) {
        if let Err(e) = self.outbox.try_send(Outgoing::Publish { topic, payload }) {
            self.counters.publishes_dropped += 1;
            let topic = match e.into_inner() {
                Outgoing::Publish { topic, .. } => topic,
                Outgoing::Unsubscribe(f) => f,
            };
            error!(topic = %topic, "MQTT outbox full or closed; publication dropped");
        }
    }

    // ------------------------------------------------------------------------ MQTT

    fn on_message(&mut self, msg: &Incoming) {
        let topic = msg.topic.as_str();
        if topic == self.probe_topic {
            if !*self.ready.borrow() {
                info!("MQTT subscriptions confirmed by the broker");
                self.ready.send_replace(true);
                let _ = self
                    .outbox
                    .try_send(Outgoing::Unsubscribe(self.probe_topic.clone()));
            }
            return;
        }
        if let Some(guest) = topics::guest_of_request_topic(&self.prefix, topic) {
            self.on_request(guest, &msg.payload);
        } else if let Some(lock) = topics::lock_of_events_topic(&self.prefix, topic) {
            self.on_event(lock, &msg.payload);
        } else {
            let rest = topic.strip_prefix(self.prefix.as_str()).unwrap_or("");
            if rest.starts_with("/requests/")
                || (rest.starts_with("/locks/") && rest.ends_with("/events"))
            {
                self.counters.malformed_topics += 1;
                warn!(
                    topic = ?shown(topic),
                    size = msg.payload.len(),
                    "message refused: its topic names no valid id (lowercase hex)"
                );
                self.emit(IssuerEvent::MalformedTopic {
                    topic: shown(topic).to_owned(),
                });
            } else {
                debug!(topic = ?shown(topic), "ignoring a message on an unexpected topic");
            }
        }
    }

    fn on_request(&mut self, topic_guest: GuestId, payload: &[u8]) {
        self.refresh_registry();
        let now = time::now();
        let mut policy = policy::RegistryPolicy {
            store: &self.store,
            window: self.window,
        };
        match self
            .issuer
            .handle_request_with(now, topic_guest, payload, &mut policy, &mut self.rng)
        {
            Ok(g) => {
                // Persist before publishing: a grant out there must stay revocable after a
                // crash. If that is impossible the grant is withdrawn unpublished.
                let record = NewGrant {
                    grant_id: g.grant_id,
                    lock_id: g.lock_id,
                    guest_id: g.guest_id,
                    session_id: g.session_id,
                    issued_at: now.secs(),
                    not_before: g.not_before,
                    not_after: g.not_after,
                    max_unlocks: g.max_unlocks,
                };
                let entry = match self.store.record_grant(&record, now.0) {
                    Ok(entry) => entry,
                    Err(e) => {
                        error!(
                            grant = %g.grant_id, guest = %g.guest_id, error = %e,
                            "cannot persist the new grant; withdrawing it unpublished"
                        );
                        let _ = self.issuer.revoke_grant(now, g.grant_id, &mut self.rng);
                        return;
                    }
                };
                self.counters.requests_accepted += 1;
                info!(
                    grant = %g.grant_id, lock = %g.lock_id, guest = %g.guest_id,
                    session = %g.session_id, not_before = g.not_before, not_after = g.not_after,
                    max_unlocks = g.max_unlocks,
                    "grant issued"
                );
                let summary = GrantSummary {
                    grant_id: g.grant_id,
                    lock_id: g.lock_id,
                    guest_id: g.guest_id,
                    session_id: g.session_id,
                    not_after: g.not_after,
                };
                self.publish(topics::lock_grants(&self.prefix, &g.lock_id), g.lock_grant);
                self.publish(
                    topics::guest_grants(&self.prefix, &g.guest_id),
                    g.guest_grant.to_vec(),
                );
                self.emit(IssuerEvent::GrantIssued(summary));
                self.score(&entry);
            }
            Err(reason) => {
                *self
                    .counters
                    .requests_refused
                    .entry(reason.name().to_owned())
                    .or_default() += 1;
                warn!(
                    guest = %topic_guest, reason = %describe(reason, "LK-ISS-"),
                    code = reason.code(), size = payload.len(),
                    "grant request refused"
                );
                // The topic's guest: the broker's ACL ties it to the sender.
                let entry = self.audit(
                    NewAudit::new(now.0, AuditSource::Issuer, kinds::REQUEST_REFUSED)
                        .guest(topic_guest)
                        .reason(reason)
                        .detail(serde_json::json!({ "size": payload.len() })),
                );
                self.emit(IssuerEvent::RequestRefused {
                    guest_id: topic_guest,
                    reason,
                });
                self.score(&entry);
            }
        }
    }

    fn on_event(&mut self, lock: LockId, payload: &[u8]) {
        self.refresh_registry();
        let now = time::now();
        match self.issuer.handle_lock_message(now, lock, payload) {
            Ok(LockReport::Status(st)) => {
                let entry = match self.store.record_lock_status(&st, now.0) {
                    Ok(Some(entry)) => Some(entry),
                    Ok(None) => {
                        self.counters.events_duplicate += 1;
                        debug!(lock = %lock, status = %st.status_id, "lock status recorded before; ignored");
                        return;
                    }
                    Err(e) => {
                        error!(lock = %lock, status = %st.status_id, error = %e, "cannot record the lock status");
                        None
                    }
                };
                self.counters.events_verified += 1;
                info!(
                    lock = %st.lock_id, status = %st.status_id, lock_time_ms = st.timestamp_ms,
                    uptime_s = st.uptime_s, sessions = st.sessions, revocations = st.revocations,
                    lockouts = st.lockouts, counters = st.counters.len(),
                    "lock status"
                );
                self.emit(IssuerEvent::LockStatus(st));
                // Scored after it is announced: its alerts follow it.
                if let Some(entry) = entry {
                    self.score(&entry);
                }
            }
            Ok(LockReport::Event(ev)) => {
                // The audit trail also knows the event id (the core's replay cache is
                // restored from it after a restart).
                let written = match self.store.record_lock_event(&ev, now.0) {
                    Ok(effect) if !effect.new => {
                        self.counters.events_duplicate += 1;
                        debug!(lock = %lock, event = %ev.event_id, "lock event recorded before; ignored");
                        return;
                    }
                    Ok(effect) => effect.audit,
                    Err(e) => {
                        error!(lock = %lock, event = %ev.event_id, error = %e, "cannot record the lock event");
                        Vec::new()
                    }
                };
                self.counters.events_verified += 1;
                self.log_event(&ev);
                if ev.kind == EventKind::RevocationApplied {
                    self.confirm_revocation(lock, ev.grant_id);
                }
                self.emit(IssuerEvent::LockEvent(ev));
                // Scored after it is announced: its alerts follow it.
                for entry in &written {
                    self.score(entry);
                }
            }
            Err(reason) => {
                *self
                    .counters
                    .events_refused
                    .entry(reason.name().to_owned())
                    .or_default() += 1;
                warn!(
                    lock = %lock, reason = %describe(reason, "LK-EVT-"),
                    code = reason.code(), size = payload.len(),
                    "lock message refused"
                );
                // Recorded as a refusal, never as the message it claims to be (a replay or
                // a QoS 1 redelivery included: LK-EVT-4 already recorded the first copy).
                // Not scored: the engine sees what happened, not what was claimed.
                self.audit(
                    NewAudit::new(now.0, AuditSource::Issuer, kinds::LOCK_MESSAGE_REFUSED)
                        .lock(lock)
                        .reason(reason)
                        .detail(serde_json::json!({ "size": payload.len() })),
                );
                self.emit(IssuerEvent::EventRefused {
                    lock_id: lock,
                    reason,
                });
            }
        }
    }

    fn log_event(&self, ev: &LockEvent) {
        let kind = ev.kind.name();
        let reason = reason_text(ev.reason);
        match ev.kind {
            EventKind::Rejection | EventKind::Lockout => info!(
                lock = %ev.lock_id, event = %ev.event_id, kind, %reason,
                grant = %ev.grant_id, session = %ev.session_id, lock_time_ms = ev.timestamp_ms,
                "lock event: {kind}"
            ),
            _ => info!(
                lock = %ev.lock_id, event = %ev.event_id, kind,
                grant = %ev.grant_id, session = %ev.session_id, lock_time_ms = ev.timestamp_ms,
                "lock event: {kind}"
            ),
        }
    }

    /// Stops re-publishing a revocation its lock applied (the store recorded it with the
    /// event).
    fn confirm_revocation(&mut self, lock: LockId, grant: GrantId) {
        if self.pending.get(&grant).is_some_and(|p| p.lock_id == lock) {
            self.pending.remove(&grant);
            info!(lock = %lock, grant = %grant, "revocation confirmed by the lock");
            self.emit(IssuerEvent::RevocationConfirmed {
                grant_id: grant,
                lock_id: lock,
            });
        }
    }

    /// Appends an entry to the audit trail; returns it, to be scored once its event is out.
    fn audit(&mut self, entry: NewAudit) -> NewAudit {
        if let Err(e) = self.store.append_audit(&entry) {
            error!(kind = %entry.kind, error = %e, "cannot append to the audit trail");
        }
        entry
    }

    /// Feeds an audit entry just written to the anomaly engine; each new alert is stored,
    /// published on `{p}/alerts` (JSON, QoS 1, not retained) and emitted.
    fn score(&mut self, entry: &NewAudit) {
        let Some(anomalies) = &mut self.anomalies else {
            return;
        };
        for alert in anomalies.observe(entry) {
            match self.store.insert_alert(&alerts::stored(&alert)) {
                // The same trail gives the same ids: an alert stored before is not news.
                Ok(false) => continue,
                Ok(true) => {}
                Err(e) => error!(alert = %alert.alert_id, error = %e, "cannot store an alert"),
            }
            self.counters.alerts_raised += 1;
            warn!(
                alert = %alert.alert_id, kind = %alert.kind, severity = %alert.severity,
                score = alert.score,
                lock = %alert.lock_id.map(|l| l.to_string()).unwrap_or_default(),
                guest = %alert.guest_id.map(|g| g.to_string()).unwrap_or_default(),
                "anomaly alert"
            );
            match serde_json::to_vec(&alert) {
                Ok(json) => self.publish(alerts_topic(&self.prefix), json),
                Err(e) => error!(alert = %alert.alert_id, error = %e, "cannot serialise an alert"),
            }
            self.emit(IssuerEvent::Alert(alert));
        }
    }

    // --------------------------------------------------------------------- commands

    fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::RevokeGrant(id, actor, reply) => {
                let now = time::now();
                let r = self
                    .revoke(now, id, &actor)
                    .ok_or(IssuerdError::GrantNotLive(id));
                if r.is_err() {
                    info!(grant = %id, "revoke: grant is not live");
                }
                let _ = reply.send(r);
            }
            Command::RevokeGuest(id, actor, reply) => {
                let _ = reply.send(self.revoke_guest(id, &actor));
            }
            Command::RevokeGrantsOf(id, actor, reply) => {
                let _ = reply.send(self.revoke_grants_of(id, &actor));
            }
            Command::Status(reply) => {
                let _ = reply.send(self.status());
            }
        }
    }

    fn revoke(&mut self, now: UnixMillis, grant_id: GrantId, actor: &str) -> Option<RevokedGrant> {
        let rev = self.issuer.revoke_grant(now, grant_id, &mut self.rng)?;
        let expires_at = latchkey::frame::RevocationView::parse(&rev.payload)
            .map(|v| v.fields.expires_at)
            .unwrap_or(u64::MAX);
        // Published even if it cannot be stored: the lock must hear of it now.
        if let Err(e) = self
            .store
            .record_revocation(&grant_id, &rev.payload, 1, now.0, actor)
        {
            error!(
                grant = %grant_id, error = %e,
                "cannot persist the revocation: it is published, but not re-published after a restart"
            );
        }
        self.pending.insert(
            grant_id,
            PendingRevocation {
                grant_id,
                lock_id: rev.lock_id,
                expires_at,
                payload: rev.payload.clone(),
                publishes: 1,
                next_publish: now.plus_ms(self.revocation_retry.as_millis() as u64),
            },
        );
        self.counters.revocations_published += 1;
        info!(grant = %grant_id, lock = %rev.lock_id, actor, "grant revoked; revocation published");
        self.publish(topics::lock_grants(&self.prefix, &rev.lock_id), rev.payload);
        self.emit(IssuerEvent::GrantRevoked {
            grant_id,
            lock_id: rev.lock_id,
        });
        Some(RevokedGrant {
            grant_id,
            lock_id: rev.lock_id,
        })
    }

    fn revoke_grants_of(
        &mut self,
        guest: GuestId,
        actor: &str,
    ) -> Result<Vec<RevokedGrant>, IssuerdError> {
        let now = time::now();
        let mut revoked: Vec<RevokedGrant> = self
            .issuer
            .live_grants_of(&guest, None)
            .into_iter()
            .filter_map(|g| self.revoke(now, g, actor))
            .collect();
        revoked.sort_by_key(|r| r.grant_id);
        Ok(revoked)
    }

    fn revoke_guest(
        &mut self,
        guest: GuestId,
        actor: &str,
    ) -> Result<Vec<RevokedGrant>, IssuerdError> {
        self.refresh_registry();
        // In the core first: from here on no request of this guest gets a grant.
        if !self.issuer.revoke_guest(&guest) {
            return Err(IssuerdError::UnknownGuest(guest));
        }
        let revoked = self.revoke_grants_of(guest, actor)?;
        info!(guest = %guest, grants = revoked.len(), actor, "guest revoked");
        match self.store.revoke_guest(&guest, time::now().0, actor) {
            Ok(_) => {
                if let Some(g) = self.registry.guests.get_mut(&guest) {
                    g.revoked = true;
                }
                Ok(revoked)
            }
            Err(e) => {
                error!(guest = %guest, error = %e, "guest revoked, but the registry was not updated");
                Err(IssuerdError::Control(format!(
                    "guest {guest} is revoked in the running issuer and {} grant(s) were \
                     revoked, but the registry could not be updated (the revocation of the \
                     enrollment will not survive a restart): {e}",
                    revoked.len()
                )))
            }
        }
    }

    fn status(&self) -> IssuerStatus {
        let mqtt = match *self.mqtt_state.borrow() {
            ConnectionState::Connected => "connected",
            ConnectionState::Connecting => "connecting",
            ConnectionState::Disconnected => "disconnected",
        };
        IssuerStatus {
            state_dir: self.paths.dir().display().to_string(),
            broker_url: self.broker_url.clone(),
            mqtt: mqtt.to_owned(),
            topic_prefix: self.prefix.clone(),
            started_at_s: self.started_at.secs(),
            locks: self.registry.locks.keys().copied().collect(),
            guests: self
                .registry
                .guests
                .iter()
                .map(|(id, g)| GuestSummary {
                    guest_id: *id,
                    name: g.name.clone(),
                    allowed_locks: g.allowed_locks.iter().copied().collect(),
                    revoked: g.revoked,
                })
                .collect(),
            live_grants: self
                .issuer
                .live_grants()
                .into_iter()
                .map(GrantSummary::from)
                .collect(),
            pending_revocations: self
                .pending
                .values()
                .map(PendingRevocationSummary::from)
                .collect(),
            request_cache: self.issuer.cache_sizes().0,
            counters: self.counters.clone(),
        }
    }

    // ------------------------------------------------------------------------ timer

    fn on_timer(&mut self, now: UnixMillis) {
        self.issuer.handle_timeout(now);

        let now_s = now.secs();
        self.pending.retain(|_, p| p.expires_at > now_s);
        let due: Vec<GrantId> = self
            .pending
            .values()
            .filter(|p| p.next_publish <= now)
            .map(|p| p.grant_id)
            .collect();
        for id in due {
            let Some(p) = self.pending.get_mut(&id) else {
                continue;
            };
            let shift = p.publishes.saturating_sub(1).min(16);
            let interval = self
                .revocation_retry
                .saturating_mul(1u32 << shift)
                .min(REVOCATION_RETRY_CAP);
            p.publishes = p.publishes.saturating_add(1);
            p.next_publish = now.plus_ms(interval.as_millis() as u64);
            let (lock, payload, n) = (p.lock_id, p.payload.clone(), p.publishes);
            if n == 1 {
                info!(grant = %id, lock = %lock, "publishing a revocation made while the issuer was not running");
            } else {
                info!(grant = %id, lock = %lock, publishes = n, "re-publishing an unconfirmed revocation");
            }
            self.counters.revocations_published += 1;
            self.publish(topics::lock_grants(&self.prefix, &lock), payload);
            if let Err(e) = self.store.note_revocation_published(&id, &lock, n, now.0) {
                error!(grant = %id, error = %e, "cannot count the revocation's publication");
            }
        }

        if now >= self.next_audit_prune {
            self.next_audit_prune = now.plus_ms(AUDIT_PRUNE_INTERVAL.as_millis() as u64);
            let before = now
                .0
                .saturating_sub(self.audit_retention.as_millis() as u64);
            match self.store.prune_audit(before) {
                Ok(0) => {}
                Ok(n) => info!(
                    entries = n,
                    "pruned audit entries past the retention period"
                ),
                Err(e) => error!(error = %e, "cannot prune the audit trail"),
            }
        }
    }

    // --------------------------------------------------------------------- registry

    /// Picks up what `add-lock`, `enroll-guest`, `set-access`, `rotate-guest-key` … wrote
    /// while running: SQLite's `data_version` tells when another connection committed.
    fn refresh_registry(&mut self) {
        let changed = self.store.changed_by_others().and_then(|changed| {
            if changed {
                self.store.registry_snapshot().map(Some)
            } else {
                Ok(None)
            }
        });
        match changed {
            Ok(None) => {}
            Ok(Some(snap)) => {
                apply_registry(&mut self.issuer, &self.store, &mut self.registry, snap);
                // Time zones and positions may have changed too (set-lock).
                if let Some(anomalies) = &mut self.anomalies {
                    match self.store.locks() {
                        Ok(locks) => anomalies.set_locks(&locks),
                        Err(e) => {
                            error!(error = %e, "cannot reload the locks for the anomaly engine")
                        }
                    }
                }
                info!(
                    locks = self.registry.locks.len(),
                    guests = self.registry.guests.len(),
                    "registry reloaded"
                );
                self.registry_error = false;
            }
            Err(e) => {
                if !self.registry_error {
                    error!(error = %e, "cannot reload the registry; keeping the previous one");
                    self.registry_error = true;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_cite_the_issuers_requirement() {
        assert_eq!(describe(Reason::BadSeal, "LK-ISS-"), "bad_seal (LK-ISS-3)");
        assert_eq!(
            describe(Reason::InvalidValidity, "LK-ISS-"),
            "invalid_validity (LK-ISS-9)"
        );
        assert_eq!(
            describe(Reason::WrongLock, "LK-EVT-"),
            "wrong_lock (LK-EVT-2)"
        );
        assert_eq!(
            describe(Reason::Truncated, "LK-ISS-"),
            "truncated (LK-FRM-1)"
        );
        assert_eq!(reason_text(0), "none");
        assert_eq!(reason_text(24), "replay (LK-ADV-7)");
        assert_eq!(reason_text(999), "unknown reason code 999");
    }
}
