//! Signed LockEvents on `locks/{id}/events` (spec §6.6, §7.2.9).
//!
//! A token bucket in front of the signer keeps a radio flood from becoming an MQTT flood
//! (and from costing an RSA signature per advert). Events are handed to a publisher task
//! through a bounded queue, so a slow or absent broker never stalls the event loop; an event
//! refused by either is counted as dropped, and the count is logged at most every 10 s.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use latchkey::frame::EventKind;
use latchkey::{GrantId, Lock, Reason, SessionId, UnixMillis};
use latchkey_transport::mqtt::{MqttClient, QoS};
use rand_core::CryptoRng;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{debug, warn};

/// How often the drop count is logged at most.
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
}

/// The event loop's side: rate limit, sign, queue.
#[derive(Debug)]
pub(crate) struct EventSink {
    bucket: TokenBucket,
    queue: mpsc::Sender<Vec<u8>>,
    dropped: Arc<AtomicU64>,
    published: u64,
    logged_dropped: u64,
    last_drop_log: Option<Instant>,
}

impl EventSink {
    /// A sink with a publisher task on `client` for `topic`. The task ends, and shuts the
    /// client down (DISCONNECT), once the sink is dropped and the queue is flushed.
    pub(crate) fn spawn(
        client: MqttClient,
        topic: String,
        (per_sec, burst): (u32, u32),
        dropped: Arc<AtomicU64>,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let capacity = usize::try_from(burst).unwrap_or(usize::MAX).clamp(16, 1024);
        let (tx, rx) = mpsc::channel(capacity);
        let task = tokio::spawn(publisher(client, topic, rx, dropped.clone()));
        let sink = Self {
            bucket: TokenBucket::new(per_sec, burst, Instant::now()),
            queue: tx,
            dropped,
            published: 0,
            logged_dropped: 0,
            last_drop_log: None,
        };
        (sink, task)
    }

    /// Events dropped so far.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Events handed to the publisher so far.
    pub(crate) fn published(&self) -> u64 {
        self.published
    }

    /// Signs and queues `ev`, unless the rate limit or a full queue drops it.
    pub(crate) fn emit<R: CryptoRng + ?Sized>(
        &mut self,
        lock: &Lock,
        now: UnixMillis,
        ev: Event,
        rng: &mut R,
    ) {
        let instant = Instant::now();
        if !self.bucket.take(instant) {
            self.drop_one(instant, "rate limit");
            return;
        }
        let payload = lock.signed_event(now, ev.kind, ev.reason, ev.grant_id, ev.session_id, rng);
        match self.queue.try_send(payload) {
            Ok(()) => self.published += 1,
            Err(_) => self.drop_one(instant, "publish queue full"),
        }
    }

    fn drop_one(&mut self, now: Instant, why: &'static str) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
        let due = self
            .last_drop_log
            .is_none_or(|t| now.saturating_duration_since(t) >= DROP_LOG_INTERVAL);
        if due {
            let total = self.dropped.load(Ordering::Relaxed);
            warn!(
                dropped_total = total,
                dropped_since_last_report = total - self.logged_dropped,
                why,
                "lock events dropped"
            );
            self.logged_dropped = total;
            self.last_drop_log = Some(now);
        } else {
            debug!(why, "lock event dropped");
        }
    }
}

async fn publisher(
    client: MqttClient,
    topic: String,
    mut rx: mpsc::Receiver<Vec<u8>>,
    dropped: Arc<AtomicU64>,
) {
    while let Some(payload) = rx.recv().await {
        if let Err(e) = client
            .publish(&topic, payload, QoS::AtLeastOnce, false)
            .await
        {
            dropped.fetch_add(1, Ordering::Relaxed);
            warn!(error = %e, "cannot publish lock event");
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
