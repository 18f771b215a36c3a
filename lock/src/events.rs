//! Signed LockEvents and LockStatus reports on `locks/{id}/events` (spec §6.6, §6.10,
//! §7.2.9), in two lanes to one publisher task:
//!
//! - **Rejections** (kind 2) go through a token bucket in front of the signer, so a radio
//!   flood never becomes an MQTT flood (nor costs an RSA signature per advert), and through
//!   a bounded queue of their own. What either refuses is counted as dropped, and the count
//!   is logged at most every 10 s.
//! - **Everything else** — unlocks (the issuer counts them for unlock limits), grants
//!   installed, revocations applied (they stop the issuer's re-publishing), lockouts started
//!   and ended, and the LockStatus heartbeat (it settles the issuer's unlock accounting) — is
//!   never rate limited and has a queue that rejections cannot fill. The publisher drains it
//!   first, in order: a status is published after every event queued before it. If even that
//!   queue is full (thousands of unlocks while the broker is away), the message is counted
//!   as lost and logged at error level; the issuer never sees it (spec §11.14: its unlock
//!   accounting then counts fewer unlocks than happened).
//!
//! The publisher task never stalls the event loop: a slow or absent broker fills the
//! queues, it does not block the lock.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use latchkey::frame::EventKind;
use latchkey::{GrantId, Lock, Reason, SessionId, UnixMillis};
use latchkey_transport::mqtt::{MqttClient, QoS};
use rand_core::CryptoRng;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{debug, error, warn};

/// How often the drop (and loss) count is logged at most.
const DROP_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Classic token bucket: `rate` tokens per second, at most `burst` stored.
#[derive(Debug)]
pub(crate) struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub(crate) fn new(per_sec: u32, burst: u32, now: Instant) -> Self {
        Self {
            rate: f64::from(per_sec),
            burst: f64::from(burst),
            tokens: f64::from(burst),
            last: now,
        }
    }

    /// Takes one token if there is one.
    pub(crate) fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// One event to sign and publish.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Event {
    pub(crate) kind: EventKind,
    pub(crate) reason: Option<Reason>,
    pub(crate) grant_id: GrantId,
    pub(crate) session_id: SessionId,
}

impl Event {
    pub(crate) fn new(kind: EventKind, grant_id: GrantId, session_id: SessionId) -> Self {
        Self {
            kind,
            reason: None,
            grant_id,
            session_id,
        }
    }

    pub(crate) fn rejection(reason: Reason, grant_id: GrantId, session_id: SessionId) -> Self {
        Self {
            kind: EventKind::Rejection,
            reason: Some(reason),
            grant_id,
            session_id,
        }
    }

    /// Kind 5: the failed handshake that started a lockout (LK-LCK-1).
    pub(crate) fn lockout(reason: Reason, grant_id: GrantId, session_id: SessionId) -> Self {
        Self {
            kind: EventKind::Lockout,
            reason: Some(reason),
            grant_id,
            session_id,
        }
    }
}

/// Capacity of the lane of events that must not be lost. What enters it comes at human
/// pace (a BLE handshake per unlock or failure), or from the broker (grants, revocations:
/// none while it is away), and statuses are not queued while MQTT is down: thousands of
/// unlocks fit (≈ 330 bytes each with a 2048-bit key).
const RELIABLE_QUEUE: usize = 4_096;

/// Counters shared with the publisher task.
#[derive(Debug, Default)]
pub(crate) struct EventCounters {
    /// Rejection events dropped (rate limit, full queue, publish error).
    pub(crate) dropped: AtomicU64,
    /// Events and statuses that must not be lost but were (full queue, publish error).
    pub(crate) lost: AtomicU64,
}

/// A rate-limited report of a repeated problem: the first at once, then at most one every
/// [`DROP_LOG_INTERVAL`] with the total.
#[derive(Debug, Default)]
struct Throttle {
    reported_total: u64,
    last: Option<Instant>,
}

impl Throttle {
    /// `Some(count since the last report)` when a report is due.
    fn due(&mut self, now: Instant, total: u64) -> Option<u64> {
        let due = self
            .last
            .is_none_or(|t| now.saturating_duration_since(t) >= DROP_LOG_INTERVAL);
        if !due {
            return None;
        }
        let since = total - self.reported_total;
        self.reported_total = total;
        self.last = Some(now);
        Some(since)
    }
}

/// The event loop's side: rate limit the rejections, sign, queue.
#[derive(Debug)]
pub(crate) struct EventSink {
    bucket: TokenBucket,
    rejections: mpsc::Sender<Vec<u8>>,
    reliable: mpsc::Sender<Vec<u8>>,
    counters: Arc<EventCounters>,
    published: u64,
    statuses: u64,
    drop_log: Throttle,
    loss_log: Throttle,
}

impl EventSink {
    /// A sink with a publisher task on `client` for `topic`. The task ends, and shuts the
    /// client down (DISCONNECT), once the sink is dropped and both queues are flushed.
    pub(crate) fn spawn(
        client: MqttClient,
        topic: String,
        (per_sec, burst): (u32, u32),
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let capacity = usize::try_from(burst).unwrap_or(usize::MAX).clamp(16, 1024);
        let (rejections, rejections_rx) = mpsc::channel(capacity);
        let (reliable, reliable_rx) = mpsc::channel(RELIABLE_QUEUE);
        let counters = Arc::new(EventCounters::default());
        let task = tokio::spawn(publisher(
            client,
            topic,
            reliable_rx,
            rejections_rx,
            counters.clone(),
        ));
        let sink = Self {
            bucket: TokenBucket::new(per_sec, burst, Instant::now()),
            rejections,
            reliable,
            counters,
            published: 0,
            statuses: 0,
            drop_log: Throttle::default(),
            loss_log: Throttle::default(),
        };
        (sink, task)
    }

    /// Rejection events dropped so far.
    pub(crate) fn dropped(&self) -> u64 {
        self.counters.dropped.load(Ordering::Relaxed)
    }

    /// Must-deliver events and statuses lost so far.
    pub(crate) fn lost(&self) -> u64 {
        self.counters.lost.load(Ordering::Relaxed)
    }

    /// Events handed to the publisher so far (statuses not included).
    pub(crate) fn published(&self) -> u64 {
        self.published
    }

    /// LockStatus reports handed to the publisher so far.
    pub(crate) fn statuses(&self) -> u64 {
        self.statuses
    }

    /// Signs and queues `ev`. A rejection may be dropped by the rate limit or its full
    /// queue; any other kind goes to the must-deliver lane.
    pub(crate) fn emit<R: CryptoRng + ?Sized>(
        &mut self,
        lock: &Lock,
        now: UnixMillis,
        ev: Event,
        rng: &mut R,
    ) {
        let instant = Instant::now();
        if ev.kind != EventKind::Rejection {
            let payload =
                lock.signed_event(now, ev.kind, ev.reason, ev.grant_id, ev.session_id, rng);
            if self.queue_reliable(instant, payload, ev.kind.name()) {
                self.published += 1;
            }
            return;
        }
        if !self.bucket.take(instant) {
            self.drop_one(instant, "rate limit");
            return;
        }
        let payload = lock.signed_event(now, ev.kind, ev.reason, ev.grant_id, ev.session_id, rng);
        match self.rejections.try_send(payload) {
            Ok(()) => self.published += 1,
            Err(_) => self.drop_one(instant, "publish queue full"),
        }
    }

    /// Queues a signed LockStatus in the must-deliver lane, behind every event queued
    /// before it. `false` if it was lost (the queue is full).
    pub(crate) fn emit_status(&mut self, payload: Vec<u8>) -> bool {
        let queued = self.queue_reliable(Instant::now(), payload, "lock_status");
        if queued {
            self.statuses += 1;
        }
        queued
    }

    fn queue_reliable(&mut self, now: Instant, payload: Vec<u8>, what: &'static str) -> bool {
        if self.reliable.try_send(payload).is_ok() {
            return true;
        }
        let total = self.counters.lost.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(since) = self.loss_log.due(now, total) {
            error!(
                what,
                lost_total = total,
                lost_since_last_report = since,
                queued = RELIABLE_QUEUE,
                "lock event LOST: the publish queue of unlocks, grants, revocations, lockouts \
                 and statuses is full (is the broker reachable?); the issuer will not see it"
            );
        } else {
            debug!(what, "lock event lost: queue full");
        }
        false
    }

    fn drop_one(&mut self, now: Instant, why: &'static str) {
        let total = self.counters.dropped.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(since) = self.drop_log.due(now, total) {
            warn!(
                dropped_total = total,
                dropped_since_last_report = since,
                why,
                "lock rejection events dropped"
            );
        } else {
            debug!(why, "lock rejection event dropped");
        }
    }
}

async fn publisher(
    client: MqttClient,
    topic: String,
    mut reliable: mpsc::Receiver<Vec<u8>>,
    mut rejections: mpsc::Receiver<Vec<u8>>,
    counters: Arc<EventCounters>,
) {
    loop {
        // The must-deliver lane first: a flood of rejections never delays an unlock event.
        let (payload, must_deliver) = tokio::select! {
            biased;
            Some(p) = reliable.recv() => (p, true),
            Some(p) = rejections.recv() => (p, false),
            else => break,
        };
        if let Err(e) = client
            .publish(&topic, payload, QoS::AtLeastOnce, false)
            .await
        {
            if must_deliver {
                counters.lost.fetch_add(1, Ordering::Relaxed);
                error!(error = %e, "cannot publish a lock event the issuer needs; it is lost");
            } else {
                counters.dropped.fetch_add(1, Ordering::Relaxed);
                warn!(error = %e, "cannot publish lock rejection event");
            }
        }
    }
    client.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_the_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(10, 50, t0);
        assert_eq!((0..60).filter(|_| b.take(t0)).count(), 50);
        assert!(!b.take(t0));
        // 100 ms later: exactly one more token.
        let t1 = t0 + Duration::from_millis(100);
        assert!(b.take(t1));
        assert!(!b.take(t1));
        // A long pause refills only up to the burst.
        let t2 = t1 + Duration::from_secs(3600);
        assert_eq!((0..60).filter(|_| b.take(t2)).count(), 50);
    }

    #[test]
    fn zero_rate_and_burst_allow_nothing() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(0, 0, t0);
        assert!(!b.take(t0 + Duration::from_secs(10)));
    }
}
