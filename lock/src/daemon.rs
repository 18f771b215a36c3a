//! The lock daemon: one task owns the core [`Lock`] and `select!`s over radio events, MQTT
//! messages, a timer at `lock.poll_timeout()` and the status heartbeat (docs/daemons.md,
//! "Lock"). It carries out what the core returns: ATT replies, the unlock action, signed
//! events, the notices it drains after every input and timeout (lockouts), persistence.
//! No protocol decision is made here.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use latchkey::frame::{EventKind, LockGrantView, RevocationView};
use latchkey::lock::{
    BeaconOutcome, GrantOutcome, LockNotice, MessageOutcome, RevocationOutcome, Unlock,
};
use latchkey::{GrantId, GuestId, Lock, LockId, Reason, SessionId, UnixMillis, topics};
use latchkey_transport::mqtt::{ConnectionState, Incoming, MqttClient, MqttError, QoS};
use latchkey_transport::radio::{
    AdvertReport, AttError, ConnId, LockEvents, LockRadio, LockRadioEvent, RadioError,
};
use rand_chacha::ChaCha20Rng;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::clock;
use crate::config::{ConfigError, validate_prefix};
use crate::events::{Event, EventSink};
use crate::gatt::{self, Challenges, Served};
use crate::options::LockOptions;
use crate::persist::{self, MessageStore};
use crate::status::Heartbeat;
use crate::unlock_action::{ActionError, Actuator};

/// How many distinct rejected beacons are remembered so that a beacon repeated on air (a
/// phone advertises ~10 times a second) is logged and reported once, not at every repeat.
const REJECTED_BEACON_MEMORY: usize = 256;
/// Spec §5.8: `0x8F`, "any other reason"; answers a verified response whose unlock action
/// could not start.
const ACTION_FAILED_ATT: u8 = 0x8F;
/// How long shutdown waits for queued events to reach the MQTT client.
const EVENT_FLUSH_GRACE: Duration = Duration::from_secs(2);

/// Why the daemon could not start, or stopped on its own.
#[derive(Debug, thiserror::Error)]
pub enum LockdError {
    /// A tunable is out of range, or the topic prefix is malformed.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The state directory cannot be used.
    #[error("state directory {path}: {source}")]
    StateDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The unlock action cannot be prepared (e.g. the GPIO line cannot be opened).
    #[error(transparent)]
    Action(#[from] ActionError),
    /// The radio cannot start the lock side.
    #[error("cannot start the lock radio: {0}")]
    Radio(#[from] RadioError),
    /// The radio's event stream ended (adapter gone, bluetoothd restarted).
    #[error("the lock radio stopped delivering events")]
    RadioStopped,
    /// The MQTT client cannot be configured.
    #[error("MQTT: {0}")]
    Mqtt(#[from] MqttError),
    /// No OS randomness for the CSPRNG.
    #[error("cannot seed the CSPRNG from the OS: {0}")]
    Rng(String),
    /// The daemon task panicked.
    #[error("the lock daemon task failed: {0}")]
    Task(String),
}

impl From<ConfigError> for LockdError {
    fn from(e: ConfigError) -> Self {
        LockdError::Config(e.to_string())
    }
}

/// One unlock, as broadcast by [`LockdHandle::unlocks`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnlockRecord {
    /// When (lock clock).
    pub at: UnixMillis,
    /// The grant that authenticated.
    pub grant_id: GrantId,
    /// Its guest.
    pub guest_id: GuestId,
    /// Its session.
    pub session_id: SessionId,
    /// The GATT connection it came on.
    pub conn: ConnId,
    /// Whether the unlock action started (false: e.g. the command could not be spawned).
    pub actuated: bool,
}

/// Counters and table sizes, for monitoring and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LockStats {
    /// The core's table sizes.
    pub core: latchkey::lock::LockStats,
    /// Challenges currently served (one per connection at most).
    pub served_challenges: usize,
    /// Manufacturer-data records heard, of any company.
    pub adverts: u64,
    /// Beacons that armed an authentication.
    pub beacons_armed: u64,
    /// Beacons refused (foreign adverts not counted).
    pub beacon_rejections: u64,
    /// Challenges issued.
    pub challenges_issued: u64,
    /// Selects refused.
    pub select_rejections: u64,
    /// Unlocks.
    pub unlocks: u64,
    /// Responses refused.
    pub response_rejections: u64,
    /// Grants installed (replayed ones at start included).
    pub grants_installed: u64,
    /// Revocations applied (replayed ones at start included).
    pub revocations_applied: u64,
    /// Messages on the grants topic refused.
    pub message_rejections: u64,
    /// Events queued for publishing.
    pub events_published: u64,
    /// Rejection events (kind 2) dropped: rate limit, full queue, publish error.
    pub events_dropped: u64,
    /// Events that must not be lost (unlocks, grants, revocations, lockouts) and statuses
    /// that were: their queue was full or the publish failed. Logged at error level.
    pub events_lost: u64,
    /// LockStatus reports queued for publishing.
    pub statuses_published: u64,
    /// Lockouts started (LK-LCK-1).
    pub lockouts_started: u64,
    /// Lockouts ended (LK-LCK-3).
    pub lockouts_ended: u64,
    /// Unlock actions that failed.
    pub action_failures: u64,
}

/// The lock daemon.
#[derive(Debug)]
pub struct Lockd;

impl Lockd {
    /// Starts the daemon on `radio` with an OS-seeded CSPRNG. Returns once the radio serves
    /// the GATT service and the MQTT client is started (the broker may still be
    /// unreachable; it is retried in the background). Must run inside a tokio runtime.
    pub async fn start<R>(opts: LockOptions, radio: R) -> Result<LockdHandle, LockdError>
    where
        R: LockRadio + 'static,
    {
        let rng = clock::os_rng().map_err(|e| LockdError::Rng(e.to_string()))?;
        Self::start_with_rng(opts, radio, rng).await
    }

    /// Like [`Lockd::start`] with a given CSPRNG (tests inject a seeded one).
    pub async fn start_with_rng<R>(
        opts: LockOptions,
        radio: R,
        mut rng: ChaCha20Rng,
    ) -> Result<LockdHandle, LockdError>
    where
        R: LockRadio + 'static,
    {
        validate_prefix(&opts.topic_prefix)?;
        let (per_sec, burst) = opts.event_rate;
        if per_sec > 0 && burst == 0 {
            return Err(LockdError::Config(
                "event_rate: burst must be at least 1 when the rate is positive".into(),
            ));
        }
        if opts.status.interval.is_zero() {
            return Err(LockdError::Config(
                "status interval must be more than zero".into(),
            ));
        }
        let started = tokio::time::Instant::now();
        let mut lock =
            Lock::new(opts.lock_config()).map_err(|e| LockdError::Config(e.to_string()))?;
        let actuator = Actuator::open(opts.lock_id, &opts.unlock)?;

        let mut counters = LockStats::default();
        let mut store = match &opts.state_dir {
            Some(dir) => Some(
                MessageStore::open(dir).map_err(|source| LockdError::StateDir {
                    path: dir.clone(),
                    source,
                })?,
            ),
            None => {
                warn!(
                    "no state directory: grants and revocations will not survive a restart \
                     (LK-REV-4 requires revocations to)"
                );
                None
            }
        };
        let mut sessions = SessionBook::default();
        if let Some(store) = store.as_mut() {
            replay(&mut lock, store, &mut sessions, &mut counters, &mut rng)?;
        }

        let events = radio.start_lock(gatt::service_spec()).await?;

        let grants_topic = topics::lock_grants(&opts.topic_prefix, &opts.lock_id);
        let events_topic = topics::lock_events(&opts.topic_prefix, &opts.lock_id);
        let (client, incoming) = MqttClient::spawn(opts.mqtt.clone())?;
        client.subscribe(&grants_topic, QoS::AtLeastOnce).await?;
        let mqtt_state = client.state();
        let (sink, publisher) = EventSink::spawn(client, events_topic, opts.event_rate);

        let (unlocks, _) = broadcast::channel(64);
        let (stats_tx, stats_rx) = watch::channel(counters);
        let cancel = CancellationToken::new();
        let failures = actuator.failures();
        let core_stats = lock.stats();
        let mut daemon = Daemon {
            lock,
            rng,
            grants_topic,
            challenges: Challenges::default(),
            sessions,
            store,
            sink,
            actuator,
            action_failures: failures,
            unlocks: unlocks.clone(),
            stats: counters,
            stats_tx,
            rejected_beacons: RecentSet::new(REJECTED_BEACON_MEMORY),
            heartbeat: Heartbeat::new(&opts.status, started),
            status_interval: opts.status.interval,
        };
        daemon.stats.core = core_stats;
        daemon.publish_stats();
        info!(
            lock = %opts.lock_id,
            sessions = core_stats.sessions,
            revocations = core_stats.revocations,
            broker = %opts.mqtt.url,
            client_id = %opts.mqtt.client_id,
            topic = %daemon.grants_topic,
            rsa_provider = opts.lock_key.provider().name(),
            "lock daemon started"
        );
        let task = tokio::spawn(daemon.run(
            radio,
            events,
            incoming,
            publisher,
            mqtt_state.clone(),
            cancel.clone(),
        ));
        Ok(LockdHandle {
            lock_id: opts.lock_id,
            cancel,
            task: Some(task),
            unlocks,
            stats: stats_rx,
            mqtt_state,
        })
    }
}

/// Controls a running daemon.
#[derive(Debug)]
pub struct LockdHandle {
    lock_id: LockId,
    cancel: CancellationToken,
    task: Option<JoinHandle<Result<(), LockdError>>>,
    unlocks: broadcast::Sender<UnlockRecord>,
    stats: watch::Receiver<LockStats>,
    mqtt_state: watch::Receiver<ConnectionState>,
}

impl LockdHandle {
    /// The lock's id.
    pub fn lock_id(&self) -> LockId {
        self.lock_id
    }

    /// Every unlock from now on (a slow receiver misses the oldest, see `broadcast`).
    pub fn unlocks(&self) -> broadcast::Receiver<UnlockRecord> {
        self.unlocks.subscribe()
    }

    /// A snapshot of the counters and table sizes.
    pub fn stats(&self) -> LockStats {
        *self.stats.borrow()
    }

    /// A watch on the stats, updated after every input.
    pub fn stats_watch(&self) -> watch::Receiver<LockStats> {
        self.stats.clone()
    }

    /// Rejection events dropped so far (rate limit, full queue, publish errors).
    pub fn events_dropped(&self) -> u64 {
        self.stats.borrow().events_dropped
    }

    /// Must-deliver events and statuses lost so far (full queue, publish errors).
    pub fn events_lost(&self) -> u64 {
        self.stats.borrow().events_lost
    }

    /// The MQTT connection state.
    pub fn mqtt_state(&self) -> watch::Receiver<ConnectionState> {
        self.mqtt_state.clone()
    }

    /// A token that stops the daemon when cancelled (e.g. from a signal handler).
    pub fn cancellation_token(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// Waits until the daemon stops: after [`LockdHandle::shutdown`] or the token is
    /// cancelled (`Ok`), or on its own when the radio stops (`Err`). Returns at once if it
    /// was already awaited.
    pub async fn wait(&mut self) -> Result<(), LockdError> {
        match self.task.take() {
            None => Ok(()),
            Some(task) => task
                .await
                .map_err(|e| LockdError::Task(e.to_string()))
                .and_then(|r| r),
        }
    }

    /// Stops the daemon: answers GATT requests already queued, waits for running unlock
    /// actions, flushes queued events and disconnects from the broker.
    pub async fn shutdown(mut self) -> Result<(), LockdError> {
        self.cancel.cancel();
        self.wait().await
    }
}

impl Drop for LockdHandle {
    fn drop(&mut self) {
        // A dropped handle stops the daemon rather than leaving it running unowned.
        self.cancel.cancel();
    }
}

/// Grant ids by session, so events about a session can name its grant.
#[derive(Debug, Default)]
struct SessionBook {
    by_session: HashMap<SessionId, (GrantId, u64)>,
}

impl SessionBook {
    fn insert(&mut self, session: SessionId, grant: GrantId, not_after: u64) {
        self.by_session.insert(session, (grant, not_after));
    }

    fn grant_of(&self, session: &SessionId) -> GrantId {
        self.by_session
            .get(session)
            .map_or(GrantId::ZERO, |(g, _)| *g)
    }

    fn not_after_of(&self, session: &SessionId) -> Option<u64> {
        self.by_session.get(session).map(|(_, na)| *na)
    }

    fn not_after_of_grant(&self, grant: &GrantId) -> Option<u64> {
        self.by_session
            .values()
            .find(|(g, _)| g == grant)
            .map(|(_, na)| *na)
    }

    fn remove_grant(&mut self, grant: &GrantId) {
        self.by_session.retain(|_, (g, _)| g != grant);
    }

    fn prune(&mut self, now_s: u64) {
        self.by_session.retain(|_, (_, na)| *na > now_s);
    }
}

/// A bounded set that forgets its oldest entries.
#[derive(Debug)]
struct RecentSet {
    order: VecDeque<(Vec<u8>, Reason)>,
    set: HashSet<(Vec<u8>, Reason)>,
    capacity: usize,
}

impl RecentSet {
    fn new(capacity: usize) -> Self {
        Self {
            order: VecDeque::with_capacity(capacity),
            set: HashSet::with_capacity(capacity),
            capacity,
        }
    }

    /// True if the entry is new (and remembers it).
    fn first_time(&mut self, data: &[u8], reason: Reason) -> bool {
        let key = (data.to_vec(), reason);
        if self.set.contains(&key) {
            return false;
        }
        if self.order.len() >= self.capacity
            && let Some(old) = self.order.pop_front()
        {
            self.set.remove(&old);
        }
        self.order.push_back(key.clone());
        self.set.insert(key);
        true
    }
}

/// Feeds the stored files back into the core, grant by grant (see [`persist::Kind`]):
/// the grant, then its revocation (which leaves the tombstone of LK-REV-5), then its unlock
/// count (LK-LIM-1). Files the core no longer accepts are deleted.
fn replay(
    lock: &mut Lock,
    store: &mut MessageStore,
    sessions: &mut SessionBook,
    stats: &mut LockStats,
    rng: &mut ChaCha20Rng,
) -> Result<(), LockdError> {
    let stored = store.load().map_err(|source| LockdError::StateDir {
        path: store.dir().to_owned(),
        source,
    })?;
    let now = clock::now();
    let (mut kept, mut removed) = (0usize, 0usize);
    for msg in stored {
        let keep_until = match msg.kind {
            persist::Kind::UnlockCount => restore_count(lock, sessions, &msg),
            persist::Kind::Grant | persist::Kind::Revocation => {
                replay_message(lock, sessions, stats, &msg, now, rng)
            }
        };
        match keep_until {
            Some(at) => {
                store.track(&msg.grant_id, msg.kind, at);
                kept += 1;
            }
            None => {
                store.remove(&msg.grant_id, msg.kind);
                removed += 1;
            }
        }
    }
    if kept + removed > 0 {
        info!(
            kept,
            removed,
            sessions = lock.stats().sessions,
            revocations = lock.stats().revocations,
            tombstones = lock.stats().tombstones,
            dir = %store.dir().display(),
            "replayed stored grants, revocations and unlock counts"
        );
    }
    Ok(())
}

/// A stored LockGrant or Revocation fed to the core; until when to keep its file.
fn replay_message(
    lock: &mut Lock,
    sessions: &mut SessionBook,
    stats: &mut LockStats,
    msg: &persist::Stored,
    now: UnixMillis,
    rng: &mut ChaCha20Rng,
) -> Option<u64> {
    match lock.handle_message(now, &msg.bytes, rng) {
        Ok(MessageOutcome::Grant(GrantOutcome::Installed {
            grant_id,
            session_id,
            not_after,
            ..
        })) => {
            stats.grants_installed += 1;
            sessions.insert(session_id, grant_id, not_after);
            Some(not_after)
        }
        Ok(MessageOutcome::Revocation(RevocationOutcome { grant_id, .. })) => {
            stats.revocations_applied += 1;
            sessions.remove_grant(&grant_id);
            // Only a revocation still in force is worth keeping.
            RevocationView::parse(&msg.bytes)
                .ok()
                .map(|r| r.fields.expires_at)
                .filter(|at| *at > now.secs())
        }
        Ok(MessageOutcome::Grant(GrantOutcome::AlreadyInstalled)) => None,
        Err(reason) => {
            let expected = matches!(reason, Reason::GrantExpired | Reason::GrantRevoked);
            if expected {
                debug!(grant = %msg.grant_id, %reason, "stored grant no longer valid; removed");
            } else {
                warn!(grant = %msg.grant_id, kind = ?msg.kind, %reason, "stored message refused at replay; removed");
            }
            None
        }
    }
}

/// A stored unlock count restored into its session (LK-LIM-1: it only rises); until when
/// to keep its file (the session's `not_after`), `None` if its session is gone.
fn restore_count(lock: &mut Lock, sessions: &SessionBook, msg: &persist::Stored) -> Option<u64> {
    let Some(count) = persist::decode_count(&msg.bytes) else {
        warn!(grant = %msg.grant_id, "unreadable unlock count file; removed");
        return None;
    };
    let not_after = sessions.not_after_of_grant(&msg.grant_id)?;
    if !lock.restore_unlock_count(&msg.grant_id, count) {
        return None;
    }
    info!(grant = %msg.grant_id, unlocks = count, "unlock count restored");
    Some(not_after)
}

/// The event loop's state.
struct Daemon {
    lock: Lock,
    rng: ChaCha20Rng,
    grants_topic: String,
    challenges: Challenges,
    sessions: SessionBook,
    store: Option<MessageStore>,
    sink: EventSink,
    actuator: Actuator,
    action_failures: Arc<AtomicU64>,
    unlocks: broadcast::Sender<UnlockRecord>,
    stats: LockStats,
    stats_tx: watch::Sender<LockStats>,
    rejected_beacons: RecentSet,
    heartbeat: Heartbeat,
    status_interval: Duration,
}

impl Daemon {
    async fn run<R: LockRadio>(
        mut self,
        radio: R,
        mut events: LockEvents,
        mut incoming: mpsc::Receiver<Incoming>,
        publisher: JoinHandle<()>,
        mut mqtt_state: watch::Receiver<ConnectionState>,
        cancel: CancellationToken,
    ) -> Result<(), LockdError> {
        let mut mqtt_open = true;
        let mut mqtt_watch_open = true;
        // A status goes out as soon as MQTT is up (at start and at every reconnect), then one
        // every interval while it stays up. None is queued while it is down: it would only
        // go stale (LK-EVT-3) and fill the queue that unlock events need; its counters go
        // into the next one.
        let mut connected = false;
        let mut status_due: Option<tokio::time::Instant> = None;
        let result = loop {
            let up = *mqtt_state.borrow_and_update() == ConnectionState::Connected;
            if up && !connected {
                status_due = Some(tokio::time::Instant::now());
            }
            connected = up;
            let now = clock::now();
            let wake = self.next_wake(now);
            let heartbeat = async move {
                match status_due {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            // Unbiased: an advert flood must not starve MQTT or the timers, nor the reverse.
            tokio::select! {
                _ = cancel.cancelled() => break Ok(()),
                ev = events.recv() => match ev {
                    Some(ev) => self.on_radio(ev),
                    None => {
                        error!("the lock radio stopped delivering events");
                        break Err(LockdError::RadioStopped);
                    }
                },
                msg = incoming.recv(), if mqtt_open => match msg {
                    Some(msg) => self.on_mqtt(msg),
                    None => {
                        error!("the MQTT client stopped; grants can no longer be received");
                        mqtt_open = false;
                    }
                },
                changed = mqtt_state.changed(), if mqtt_watch_open => {
                    // Re-read at the top of the loop.
                    mqtt_watch_open = changed.is_ok();
                }
                _ = tokio::time::sleep(wake) => self.on_timeout(),
                () = heartbeat => {
                    if connected {
                        self.send_status();
                    } else {
                        debug!("MQTT is down: lock status skipped");
                    }
                    status_due = Some(tokio::time::Instant::now() + self.status_interval);
                }
            }
            self.drain_notices();
            self.publish_stats();
        };
        // Answer GATT requests that already arrived, so no phone waits for an ATT timeout.
        while let Some(ev) = events.try_recv() {
            if !matches!(ev, LockRadioEvent::Advert(_)) {
                self.on_radio(ev);
            }
        }
        self.drain_notices();
        drop(events);
        drop(radio);
        self.actuator.finish().await;
        self.publish_stats();
        let (dropped, lost) = (self.stats.events_dropped, self.stats.events_lost);
        // Dropping the sink closes the queue; the publisher flushes it and disconnects.
        drop(self.sink);
        if tokio::time::timeout(EVENT_FLUSH_GRACE * 2, publisher)
            .await
            .is_err()
        {
            warn!("event publisher did not stop in time");
        }
        info!(
            unlocks = self.stats.unlocks,
            events_dropped = dropped,
            events_lost = lost,
            "lock daemon stopped"
        );
        result
    }

    /// Time until the core's next timeout or the next stored message expiry.
    fn next_wake(&self, now: UnixMillis) -> Duration {
        let core = self.lock.poll_timeout();
        let store = self
            .store
            .as_ref()
            .and_then(MessageStore::next_expiry)
            .map(UnixMillis::from_secs);
        let at = match (core, store) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        // The core always has a next step boundary; the fallback is only a safety net.
        at.map_or(Duration::from_secs(30), |at| clock::until(at, now))
    }

    fn publish_stats(&mut self) {
        self.stats.core = self.lock.stats();
        self.stats.served_challenges = self.challenges.len();
        self.stats.events_published = self.sink.published();
        self.stats.events_dropped = self.sink.dropped();
        self.stats.events_lost = self.sink.lost();
        self.stats.statuses_published = self.sink.statuses();
        self.stats.action_failures = self.action_failures.load(Ordering::Relaxed);
        self.stats_tx.send_replace(self.stats);
    }

    fn emit(&mut self, now: UnixMillis, ev: Event) {
        self.sink.emit(&self.lock, now, ev, &mut self.rng);
    }

    /// Counts a refused input for the next LockStatus.
    fn count(&mut self, reason: Reason) {
        self.heartbeat.counters.count(reason);
    }

    /// Builds and queues a LockStatus; its counters restart only if it was queued.
    fn send_status(&mut self) {
        let now = clock::now();
        let (payload, summary) = self.heartbeat.report(&self.lock, now, &mut self.rng);
        if self.sink.emit_status(payload) {
            self.heartbeat.sent();
            debug!(
                uptime_s = summary.uptime_s,
                battery_pct = summary.battery_pct.map_or(-1, i16::from),
                flags = summary.flags.bits(),
                reasons = summary.reasons,
                rejections = summary.rejections,
                "lock status queued"
            );
        }
    }

    // ------------------------------------------------------------------ notices

    /// Carries out what the core decided on its own (LK-LCK-1..3): each lockout start and
    /// end becomes a log line and a LockEvent (kinds 5 and 6).
    fn drain_notices(&mut self) {
        while let Some(notice) = self.lock.poll_notice() {
            let now = clock::now();
            match notice {
                LockNotice::LockoutStarted {
                    guest_id,
                    grant_id,
                    session_id,
                    reason,
                    until,
                } => {
                    self.stats.lockouts_started += 1;
                    warn!(
                        guest = %guest_id,
                        grant = %grant_id,
                        session = %session_id,
                        %reason,
                        until_ms = until.0,
                        "guest locked out after repeated failed handshakes"
                    );
                    self.emit(now, Event::lockout(reason, grant_id, session_id));
                }
                LockNotice::LockoutEnded {
                    guest_id,
                    grant_id,
                    session_id,
                } => {
                    self.stats.lockouts_ended += 1;
                    info!(guest = %guest_id, grant = %grant_id, session = %session_id, "lockout ended");
                    self.emit(
                        now,
                        Event::new(EventKind::LockoutEnded, grant_id, session_id),
                    );
                }
            }
        }
    }

    // ------------------------------------------------------------------ timers

    fn on_timeout(&mut self) {
        let now = clock::now();
        self.lock.handle_timeout(now);
        let budget = self.lock.config().response_budget_ms;
        self.challenges.prune(now, budget);
        self.sessions.prune(now.secs());
        if let Some(store) = self.store.as_mut() {
            store.prune(now.secs());
        }
    }

    // ------------------------------------------------------------------ radio

    fn on_radio(&mut self, ev: LockRadioEvent) {
        let spec = gatt::service_spec();
        match ev {
            LockRadioEvent::Advert(report) => self.on_advert(report),
            LockRadioEvent::GattWrite {
                conn,
                characteristic,
                value,
                reply,
            } => {
                let result = if characteristic == spec.challenge_char {
                    self.on_select(conn, &value)
                } else if characteristic == spec.response_char {
                    self.on_response(conn, &value)
                } else {
                    Err(AttError::WriteNotPermitted)
                };
                answer(reply, result);
            }
            LockRadioEvent::GattRead {
                conn,
                characteristic,
                reply,
            } => {
                let result = if characteristic == spec.challenge_char {
                    let budget = self.lock.config().response_budget_ms;
                    match self.challenges.get(conn, clock::now(), budget) {
                        Some(s) => Ok(s.bytes.to_vec()),
                        // Spec §5.5: a read with no outstanding challenge is `no_challenge`.
                        None => Err(att(Reason::NoChallenge)),
                    }
                } else {
                    Err(AttError::ReadNotPermitted)
                };
                answer(reply, result);
            }
            LockRadioEvent::Disconnected { conn } => {
                self.lock.handle_disconnect(conn_id(conn));
                self.challenges.remove(conn);
                debug!(%conn, "GATT connection closed");
            }
        }
    }

    fn on_advert(&mut self, report: AdvertReport) {
        self.stats.adverts += 1;
        let now = clock::now();
        match self
            .lock
            .handle_beacon(now, report.company_id, &report.data, report.rssi)
        {
            Ok(BeaconOutcome::Armed {
                session_id,
                guest_id,
                step,
                attempt,
            }) => {
                self.stats.beacons_armed += 1;
                info!(session = %session_id, guest = %guest_id, step = step.0, attempt, rssi = report.rssi, "beacon armed an authentication");
            }
            Ok(BeaconOutcome::AlreadyPending) => {}
            Err(r) if r.is_noise() => {}
            Err(r) => {
                self.stats.beacon_rejections += 1;
                self.count(r);
                let quiet = matches!(
                    r,
                    Reason::UnknownTag
                        | Reason::StaleStep
                        | Reason::FutureStep
                        | Reason::RssiTooLow
                        // Malformed: other devices use the SIG test company id too.
                        | Reason::Truncated
                        | Reason::TrailingBytes
                        | Reason::UnsupportedVersion
                );
                if quiet {
                    debug!(reason = %r, rssi = report.rssi, "beacon rejected");
                    return;
                }
                // The same beacon is heard many times a second: report it once (repeats at
                // debug, with the RSSI that tells radios apart in a trace).
                if !self.rejected_beacons.first_time(&report.data, r) {
                    debug!(reason = %r, rssi = report.rssi, "beacon rejected (repeat)");
                    return;
                }
                self.on_beacon_rejected(now, &report, r);
            }
        }
    }

    /// The first report of a refused beacon that is not street noise: logged, and published
    /// as a kind-2 event when it says something about a guest (spec §7.2.9).
    fn on_beacon_rejected(&mut self, now: UnixMillis, report: &AdvertReport, r: Reason) {
        // LK-REV-5: a revoked session's beacon, authenticated by its tombstone's CMAC, names
        // the revoked grant and guest (an operator sees who still tries).
        if r == Reason::SessionRevoked
            && let Some((grant, session, guest)) = self.lock.revoked_beacon_ids(&report.data)
        {
            info!(reason = %r, rssi = report.rssi, grant = %grant, session = %session, guest = %guest, "beacon rejected");
            self.emit(now, Event::rejection(r, grant, session));
            return;
        }
        info!(reason = %r, rssi = report.rssi, "beacon rejected");
        let evented = matches!(
            r,
            Reason::BadBeaconMac
                | Reason::Replay
                | Reason::SessionExpired
                | Reason::SessionNotYetValid
                | Reason::UnlockLimitReached
                | Reason::LockedOut
                | Reason::PendingCapReached
                | Reason::ReplayCacheFull
                | Reason::SessionRevoked
        );
        if evented {
            self.emit(now, Event::rejection(r, GrantId::ZERO, SessionId::ZERO));
        }
    }

    fn on_select(&mut self, conn: ConnId, value: &[u8]) -> Result<(), AttError> {
        let now = clock::now();
        match self
            .lock
            .handle_select(now, conn_id(conn), value, &mut self.rng)
        {
            Ok(ch) => {
                self.stats.challenges_issued += 1;
                self.challenges.insert(
                    conn,
                    Served {
                        bytes: ch.to_bytes(),
                        session_id: ch.session_id,
                        issued_at: now,
                    },
                );
                debug!(%conn, session = %ch.session_id, "challenge issued");
                Ok(())
            }
            Err(r) => {
                self.stats.select_rejections += 1;
                self.count(r);
                info!(%conn, reason = %r, "select rejected");
                self.emit(now, Event::rejection(r, GrantId::ZERO, SessionId::ZERO));
                Err(att(r))
            }
        }
    }

    fn on_response(&mut self, conn: ConnId, value: &[u8]) -> Result<(), AttError> {
        let now = clock::now();
        // The core consumes the challenge whatever the outcome (LK-RSP-2).
        let served = self.challenges.remove(conn);
        match self.lock.handle_response(now, conn_id(conn), value) {
            Ok(unlock) => {
                self.stats.unlocks += 1;
                // Before actuating: a crash after the door moved must not give the unlock
                // back (LK-LIM-1 counts survive restarts).
                self.persist_unlock_count(now, &unlock);
                let actuated = match self.actuator.fire(&unlock) {
                    Ok(()) => true,
                    Err(e) => {
                        error!(grant = %unlock.grant_id, error = %e, "unlock action failed to start");
                        false
                    }
                };
                info!(
                    grant = %unlock.grant_id,
                    guest = %unlock.guest_id,
                    session = %unlock.session_id,
                    %conn,
                    "UNLOCK grant={} guest={}",
                    unlock.grant_id,
                    unlock.guest_id
                );
                if unlock.max_unlocks > 0 {
                    info!(grant = %unlock.grant_id, unlocks = unlock.unlocks, max_unlocks = unlock.max_unlocks, "unlock counted against the grant's limit");
                }
                // Spec §7.2.5 step 9: actuate, publish the event, then answer the write.
                self.emit(
                    now,
                    Event::new(EventKind::Unlock, unlock.grant_id, unlock.session_id),
                );
                let _ = self.unlocks.send(UnlockRecord {
                    at: now,
                    grant_id: unlock.grant_id,
                    guest_id: unlock.guest_id,
                    session_id: unlock.session_id,
                    conn,
                    actuated,
                });
                if actuated {
                    Ok(())
                } else {
                    // Do not tell the phone "unlocked" when nothing moved.
                    Err(AttError::Application(ACTION_FAILED_ATT))
                }
            }
            Err(r) => {
                self.stats.response_rejections += 1;
                self.count(r);
                let session = served.map_or(SessionId::ZERO, |s| s.session_id);
                info!(%conn, session = %session, reason = %r, "response rejected");
                let grant = self.sessions.grant_of(&session);
                self.emit(now, Event::rejection(r, grant, session));
                Err(att(r))
            }
        }
    }

    // ------------------------------------------------------------------ MQTT

    fn on_mqtt(&mut self, msg: Incoming) {
        if msg.topic != self.grants_topic {
            debug!(topic = %msg.topic, "ignoring message on an unexpected topic");
            return;
        }
        let now = clock::now();
        let payload = &msg.payload[..];
        match self.lock.handle_message(now, payload, &mut self.rng) {
            Ok(MessageOutcome::Grant(GrantOutcome::Installed {
                grant_id,
                session_id,
                guest_id,
                not_after,
            })) => {
                self.stats.grants_installed += 1;
                self.sessions.insert(session_id, grant_id, not_after);
                info!(grant = %grant_id, guest = %guest_id, session = %session_id, not_after, "grant installed");
                self.persist(grant_id, persist::Kind::Grant, payload, not_after);
                self.emit(
                    now,
                    Event::new(EventKind::GrantInstalled, grant_id, session_id),
                );
            }
            Ok(MessageOutcome::Grant(GrantOutcome::AlreadyInstalled)) => {
                debug!("grant already installed (duplicate delivery)");
            }
            Ok(MessageOutcome::Revocation(RevocationOutcome {
                grant_id,
                session_removed,
            })) => {
                self.stats.revocations_applied += 1;
                let fields = RevocationView::parse(payload).ok().map(|r| r.fields);
                let session_id = fields.map_or(SessionId::ZERO, |f| f.session_id);
                let expires_at = fields.map_or(0, |f| f.expires_at);
                info!(grant = %grant_id, session = %session_id, session_removed, "revocation applied");
                self.sessions.remove_grant(&grant_id);
                // The grant's file stays until its not_after: replayed before this
                // revocation at the next start, it rebuilds the tombstone (LK-REV-5).
                if let Some(store) = self.store.as_ref() {
                    store.remove(&grant_id, persist::Kind::UnlockCount);
                }
                if expires_at > now.secs() {
                    self.persist(grant_id, persist::Kind::Revocation, payload, expires_at);
                }
                self.emit(
                    now,
                    Event::new(EventKind::RevocationApplied, grant_id, session_id),
                );
            }
            Err(r) => {
                self.stats.message_rejections += 1;
                self.count(r);
                warn!(topic = %msg.topic, size = payload.len(), reason = %r, "grants-topic message rejected");
                let (grant, session) = authentic_ids(r, payload);
                self.emit(now, Event::rejection(r, grant, session));
            }
        }
    }

    /// Stores a limited session's unlock count (LK-LIM-1) so a restart cannot give
    /// unlocks back; kept until the grant's `not_after`.
    fn persist_unlock_count(&mut self, now: UnixMillis, unlock: &Unlock) {
        if unlock.max_unlocks == 0 {
            return;
        }
        let Some(store) = self.store.as_mut() else {
            return;
        };
        let until = self
            .sessions
            .not_after_of(&unlock.session_id)
            .unwrap_or_else(|| {
                now.secs()
                    .saturating_add(self.lock.config().max_grant_validity_s)
            });
        if let Err(e) = store.save_unlock_count(&unlock.grant_id, unlock.unlocks, until) {
            error!(grant = %unlock.grant_id, unlocks = unlock.unlocks, error = %e, "cannot persist the unlock count; a restart would allow more unlocks than the grant's limit");
        }
    }

    fn persist(&mut self, grant_id: GrantId, kind: persist::Kind, payload: &[u8], until: u64) {
        if let Some(store) = self.store.as_mut()
            && let Err(e) = store.save(&grant_id, kind, payload, until)
        {
            error!(grant = %grant_id, ?kind, error = %e, "cannot persist message; it will be lost at restart");
        }
    }
}

/// The grant and session ids of a refused message, only when the refusal came after the
/// signature check (so the ids are the issuer's, not an attacker's).
fn authentic_ids(r: Reason, payload: &[u8]) -> (GrantId, SessionId) {
    let before_signature = matches!(
        r,
        Reason::Truncated
            | Reason::TrailingBytes
            | Reason::UnsupportedVersion
            | Reason::WrongType
            | Reason::FieldOutOfRange
            | Reason::WrongLock
            | Reason::BadSignature
    );
    if before_signature {
        return (GrantId::ZERO, SessionId::ZERO);
    }
    if let Ok(g) = LockGrantView::parse(payload) {
        return (g.header.grant_id, g.header.session_id);
    }
    if let Ok(r) = RevocationView::parse(payload) {
        return (r.fields.grant_id, r.fields.session_id);
    }
    (GrantId::ZERO, SessionId::ZERO)
}

fn att(r: Reason) -> AttError {
    AttError::Application(r.att_code())
}

fn conn_id(conn: ConnId) -> latchkey::lock::ConnId {
    latchkey::lock::ConnId(conn.0)
}

fn answer<T>(reply: oneshot::Sender<Result<T, AttError>>, result: Result<T, AttError>) {
    // The peer may have gone; nothing to do then.
    let _ = reply.send(result);
}
