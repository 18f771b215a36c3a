//! A resilient MQTT client: owns the rumqttc event loop on a tokio task, reconnects with
//! backoff and re-subscribes on every CONNACK.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use rumqttc::{
    AsyncClient, ConnectionError, Event, EventLoop, Outgoing, Packet, QoS, SubscribeFilter,
    SubscribeReasonCode,
};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use super::backoff::{Backoff, Jitter, SeededJitter};
use super::config::MqttConfig;
use super::error::MqttError;

/// How long [`MqttClient::shutdown`] waits for the DISCONNECT to be flushed.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// One publish received from the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    /// Topic it was published on.
    pub topic: String,
    /// Opaque payload, at most `max_payload` bytes.
    pub payload: Bytes,
    /// True when the broker delivered a retained message (on subscribe).
    pub retain: bool,
}

/// Connection state as seen by the client task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionState {
    /// A connection attempt is under way.
    Connecting,
    /// CONNACK received; subscriptions have been (re-)requested.
    Connected,
    /// Not connected: waiting for the next attempt, or shut down.
    Disconnected,
}

type Subscriptions = Arc<Mutex<BTreeMap<String, QoS>>>;

/// A resilient MQTT client.
///
/// - Keeps a set of subscriptions and re-subscribes to all of them on every CONNACK
///   (rumqttc does not, and a restarted broker has forgotten them).
/// - Reconnects with capped exponential backoff and full jitter ([`Backoff`]).
/// - Logs each state change once: `connected`, `disconnected: <reason>`,
///   `reconnecting in N ms`; repeated identical failures are logged at debug level only.
/// - Drops incoming payloads larger than [`MqttConfig::max_payload`] with a warning.
///
/// Dropping the client stops its task; [`MqttClient::shutdown`] also sends DISCONNECT first.
#[derive(Debug)]
pub struct MqttClient {
    client: AsyncClient,
    subscriptions: Subscriptions,
    state: watch::Receiver<ConnectionState>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    max_payload: usize,
}

impl MqttClient {
    /// Starts the client task and returns the client and the stream of incoming publishes.
    ///
    /// Must be called from within a tokio runtime. Fails only on configuration errors;
    /// an unreachable broker is retried in the background.
    pub fn spawn(config: MqttConfig) -> Result<(Self, mpsc::Receiver<Incoming>), MqttError> {
        Self::spawn_with_jitter(config, Box::new(SeededJitter::from_entropy()))
    }

    /// Like [`MqttClient::spawn`], with an explicit jitter source (for reproducible tests).
    pub fn spawn_with_jitter(
        config: MqttConfig,
        jitter: Box<dyn Jitter>,
    ) -> Result<(Self, mpsc::Receiver<Incoming>), MqttError> {
        let options = config.mqtt_options()?;
        let (client, eventloop) = AsyncClient::new(options, 64);
        let (incoming_tx, incoming_rx) = mpsc::channel(config.incoming_capacity.max(1));
        let (state_tx, state_rx) = watch::channel(ConnectionState::Connecting);
        let (shutdown_tx, shutdown_rx) = oneshot::channel();
        let subscriptions = Subscriptions::default();

        let driver = Driver {
            eventloop,
            client: client.clone(),
            subscriptions: subscriptions.clone(),
            state: state_tx,
            incoming: incoming_tx,
            backoff: config.backoff,
            jitter,
            max_payload: config.max_payload,
            broker: config.url.to_string(),
        };
        let task = tokio::spawn(driver.run(shutdown_rx));

        Ok((
            Self {
                client,
                subscriptions,
                state: state_rx,
                shutdown: Some(shutdown_tx),
                task: Some(task),
                max_payload: config.max_payload,
            },
            incoming_rx,
        ))
    }

    /// Queues a publish. While disconnected it waits in the request queue and goes out after
    /// the reconnect. Returns once queued, not once acknowledged.
    pub async fn publish(
        &self,
        topic: &str,
        payload: impl Into<Bytes>,
        qos: QoS,
        retain: bool,
    ) -> Result<(), MqttError> {
        let payload = payload.into();
        if payload.len() > self.max_payload {
            return Err(MqttError::PayloadTooLarge {
                size: payload.len(),
                max: self.max_payload,
            });
        }
        if topic.is_empty() || topic.contains('\0') || !rumqttc::valid_topic(topic) {
            return Err(MqttError::InvalidTopic(topic.to_owned()));
        }
        self.client
            .publish_bytes(topic, qos, retain, payload)
            .await
            .map_err(|_| MqttError::Closed)
    }

    /// Adds `filter` to the subscription set (kept across reconnects) and subscribes now.
    pub async fn subscribe(&self, filter: &str, qos: QoS) -> Result<(), MqttError> {
        if filter.contains('\0') || !rumqttc::valid_filter(filter) {
            return Err(MqttError::InvalidFilter(filter.to_owned()));
        }
        // Record first: a CONNACK racing with this call then re-subscribes it anyway.
        lock(&self.subscriptions).insert(filter.to_owned(), qos);
        self.client
            .subscribe(filter, qos)
            .await
            .map_err(|_| MqttError::Closed)
    }

    /// Removes `filter` from the subscription set and unsubscribes now.
    pub async fn unsubscribe(&self, filter: &str) -> Result<(), MqttError> {
        lock(&self.subscriptions).remove(filter);
        self.client
            .unsubscribe(filter)
            .await
            .map_err(|_| MqttError::Closed)
    }

    /// The filters that will be re-subscribed on the next CONNACK.
    pub fn subscriptions(&self) -> Vec<(String, QoS)> {
        lock(&self.subscriptions)
            .iter()
            .map(|(f, q)| (f.clone(), *q))
            .collect()
    }

    /// A watch on the connection state; starts at [`ConnectionState::Connecting`].
    pub fn state(&self) -> watch::Receiver<ConnectionState> {
        self.state.clone()
    }

    /// Sends DISCONNECT (waiting at most 1 s for it to go out) and stops the task.
    /// With a persistent session the broker keeps queuing QoS 1 messages for this client id.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            // The task bounds its own grace period; the outer timeout is a safety net.
            if tokio::time::timeout(SHUTDOWN_GRACE * 2, task)
                .await
                .is_err()
            {
                warn!("MQTT client task did not stop in time");
            }
        }
    }
}

impl Drop for MqttClient {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding this lock cannot leave the map half-updated; keep going.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The event-loop side, owned by the spawned task.
struct Driver {
    eventloop: EventLoop,
    client: AsyncClient,
    subscriptions: Subscriptions,
    state: watch::Sender<ConnectionState>,
    incoming: mpsc::Sender<Incoming>,
    backoff: Backoff,
    jitter: Box<dyn Jitter>,
    max_payload: usize,
    broker: String,
}

impl Driver {
    async fn run(mut self, mut shutdown: oneshot::Receiver<()>) {
        let mut attempt: u32 = 0;
        // The last failure reason logged at warn level, so a broker that stays down is
        // reported once rather than on every retry.
        let mut last_failure: Option<String> = None;
        let mut consumer_gone = false;

        loop {
            let polled = tokio::select! {
                biased;
                _ = &mut shutdown => break,
                polled = self.eventloop.poll() => polled,
            };
            match polled {
                Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                    attempt = 0;
                    last_failure = None;
                    info!(broker = %self.broker, session_present = ack.session_present, "MQTT connected");
                    self.state.send_replace(ConnectionState::Connected);
                    self.resubscribe();
                }
                Ok(Event::Incoming(Packet::Publish(publish))) => {
                    let size = publish.payload.len();
                    if size > self.max_payload {
                        warn!(topic = %publish.topic, size, max = self.max_payload, "dropping oversize MQTT payload");
                        continue;
                    }
                    let msg = Incoming {
                        topic: publish.topic,
                        payload: publish.payload,
                        retain: publish.retain,
                    };
                    tokio::select! {
                        biased;
                        _ = &mut shutdown => break,
                        sent = self.incoming.send(msg) => {
                            if sent.is_err() && !consumer_gone {
                                consumer_gone = true;
                                debug!("incoming MQTT receiver dropped; discarding publishes");
                            }
                        }
                    }
                }
                Ok(Event::Incoming(Packet::SubAck(suback))) => {
                    let failed = suback
                        .return_codes
                        .iter()
                        .filter(|c| matches!(c, SubscribeReasonCode::Failure))
                        .count();
                    if failed > 0 {
                        warn!(
                            pkid = suback.pkid,
                            failed, "broker refused MQTT subscription(s)"
                        );
                    }
                }
                Ok(_) => {}
                Err(err) => {
                    let reason = describe(&err);
                    let was_connected = *self.state.borrow() == ConnectionState::Connected;
                    if was_connected {
                        warn!(broker = %self.broker, %reason, "MQTT disconnected");
                    } else if last_failure.as_deref() != Some(reason.as_str()) {
                        warn!(broker = %self.broker, %reason, "MQTT connection failed");
                    } else {
                        debug!(broker = %self.broker, %reason, "MQTT connection failed again");
                    }
                    last_failure = Some(reason);
                    self.state.send_replace(ConnectionState::Disconnected);

                    let delay = self.backoff.delay(attempt, self.jitter.as_mut());
                    if attempt == 0 {
                        info!(
                            delay_ms = delay.as_millis() as u64,
                            "MQTT reconnecting in {} ms",
                            delay.as_millis()
                        );
                    } else {
                        debug!(
                            attempt,
                            delay_ms = delay.as_millis() as u64,
                            "MQTT reconnecting"
                        );
                    }
                    attempt = attempt.saturating_add(1);
                    tokio::select! {
                        biased;
                        _ = &mut shutdown => break,
                        _ = tokio::time::sleep(delay) => {}
                    }
                    self.state.send_replace(ConnectionState::Connecting);
                }
            }
        }
        self.disconnect_gracefully().await;
        self.state.send_replace(ConnectionState::Disconnected);
        info!(broker = %self.broker, "MQTT client stopped");
    }

    /// Re-requests every known subscription. Spawned so the event loop keeps polling while
    /// the request waits for room in rumqttc's request queue.
    fn resubscribe(&self) {
        let filters: Vec<SubscribeFilter> = lock(&self.subscriptions)
            .iter()
            .map(|(f, q)| SubscribeFilter::new(f.clone(), *q))
            .collect();
        if filters.is_empty() {
            return;
        }
        debug!(count = filters.len(), "re-subscribing after CONNACK");
        let client = self.client.clone();
        tokio::spawn(async move {
            if client.subscribe_many(filters).await.is_err() {
                debug!("MQTT event loop gone before re-subscribe was queued");
            }
        });
    }

    async fn disconnect_gracefully(&mut self) {
        if *self.state.borrow() != ConnectionState::Connected {
            return;
        }
        if self.client.try_disconnect().is_err() {
            return;
        }
        let flushed = tokio::time::timeout(SHUTDOWN_GRACE, async {
            loop {
                match self.eventloop.poll().await {
                    Ok(Event::Outgoing(Outgoing::Disconnect)) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        })
        .await;
        if flushed.is_err() {
            debug!("MQTT DISCONNECT not flushed within the grace period");
        }
    }
}

/// A short, stable reason string (used to de-duplicate repeated failure logs).
fn describe(err: &ConnectionError) -> String {
    match err {
        ConnectionError::Io(io) => format!("I/O error: {}", io.kind()),
        ConnectionError::ConnectionRefused(code) => format!("broker refused connection: {code:?}"),
        other => other.to_string(),
    }
}
