//! The MQTT part of an unlock (docs/daemons.md, "Guest" step 1): reuse a live grant, or
//! publish a GrantRequest and wait for the GuestGrant, with a new request every 5 s.
//!
//! The core ([`Guest::handle_grant`]) decides whether a GuestGrant is ours; a rejected one
//! (another guest's, a replay, a bad seal) is logged with its reason and ignored.

use latchkey::frame::GrantRequestView;
use latchkey::guest::GuestGrantInfo;
use latchkey::topics;
use latchkey::{Guest, LockId, Reason};
use latchkey_transport::mqtt::{ConnectionState, Incoming, MqttClient, MqttConfig, QoS};
use rand_chacha::ChaCha20Rng;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::clock::WallClock;
use crate::error::GuestError;
use crate::grant_store::GrantStore;
use crate::options::Timeouts;

/// Counters of the grant channel, for monitoring and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GuestStats {
    /// GrantRequests published.
    pub requests_sent: u64,
    /// GuestGrants the core accepted.
    pub grants_accepted: u64,
    /// Messages on our grants topic the core refused (logged and ignored).
    pub grants_rejected: u64,
    /// The reason of the last refused one.
    pub last_rejection: Option<Reason>,
}

/// A grant ready for an attempt.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Obtained {
    pub(crate) info: GuestGrantInfo,
    pub(crate) reused: bool,
    pub(crate) requests: u32,
}

/// The guest's MQTT side: requests out, grants in.
#[derive(Debug)]
pub(crate) struct GrantChannel {
    mqtt: MqttClient,
    incoming: mpsc::Receiver<Incoming>,
    requests_topic: String,
    grants_topic: String,
    store: Option<GrantStore>,
    pub(crate) stats: GuestStats,
}

impl GrantChannel {
    /// Connects with a persistent session and subscribes to our grants topic before any
    /// request can be published, so no answer is missed. Waits for the first CONNACK.
    pub(crate) async fn connect(
        mqtt: MqttConfig,
        guest: &Guest,
        prefix: &str,
        timeouts: &Timeouts,
        store: Option<GrantStore>,
    ) -> Result<Self, GuestError> {
        let guest_id = guest.config().guest_id;
        let broker = mqtt.url.to_string();
        let (client, incoming) = MqttClient::spawn(mqtt)?;
        let grants_topic = topics::guest_grants(prefix, &guest_id);
        // Queued ahead of every publish on the same connection, and kept across reconnects.
        client.subscribe(&grants_topic, QoS::AtLeastOnce).await?;
        let mut state = client.state();
        let up = tokio::time::timeout(
            timeouts.mqtt_connect,
            state.wait_for(|s| *s == ConnectionState::Connected),
        )
        .await;
        if !matches!(up, Ok(Ok(_))) {
            client.shutdown().await;
            return Err(GuestError::BrokerUnreachable {
                broker,
                waited: timeouts.mqtt_connect,
            });
        }
        Ok(Self {
            mqtt: client,
            incoming,
            requests_topic: topics::requests(prefix, &guest_id),
            grants_topic,
            store,
            stats: GuestStats::default(),
        })
    }

    /// A live grant for `lock`: the one held if it outlives an attempt, else a new one.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn obtain(
        &mut self,
        guest: &mut Guest,
        rng: &mut ChaCha20Rng,
        clock: &dyn WallClock,
        lock: LockId,
        validity_s: u32,
        timeouts: &Timeouts,
    ) -> Result<Obtained, GuestError> {
        // Grants that arrived while idle (late answers, misrouted ones) go first.
        self.drain(guest, clock);
        let margin = u64::try_from(timeouts.attempt.as_millis()).unwrap_or(u64::MAX);
        if let Some(info) = guest.grant(&lock) {
            // Reuse only a grant that outlives a whole attempt.
            if clock.now().plus_ms(margin).secs() < info.not_after {
                info!(%lock, grant = %info.grant_id, not_after = info.not_after, "reusing held grant");
                return Ok(Obtained {
                    info,
                    reused: true,
                    requests: 0,
                });
            }
            debug!(%lock, "held grant expires too soon; requesting a new one");
        }
        let started = Instant::now();
        let deadline = started + timeouts.grant;
        let mut requests = 0u32;
        while Instant::now() < deadline {
            let frame = guest.request_grant(clock.now(), lock, validity_s, rng);
            let request_id = GrantRequestView::parse(&frame).map(|v| v.header.request_id);
            self.mqtt
                .publish(
                    &self.requests_topic,
                    frame.to_vec(),
                    QoS::AtLeastOnce,
                    false,
                )
                .await?;
            requests += 1;
            self.stats.requests_sent += 1;
            if let Ok(id) = request_id {
                info!(%lock, request = %id, n = requests, "grant requested");
            }
            let retry_at = (Instant::now() + timeouts.grant_retry).min(deadline);
            loop {
                match tokio::time::timeout_at(retry_at, self.incoming.recv()).await {
                    Err(_) => break,
                    Ok(None) => return Err(GuestError::MqttClosed),
                    Ok(Some(msg)) => {
                        if let Some(info) = self.on_message(guest, clock, msg)
                            && info.lock_id == lock
                        {
                            return Ok(Obtained {
                                info,
                                reused: false,
                                requests,
                            });
                        }
                    }
                }
            }
        }
        Err(GuestError::GrantTimeout {
            lock,
            waited: timeouts.grant,
            requests,
            connected: *self.mqtt.state().borrow() == ConnectionState::Connected,
        })
    }

    /// Feeds every queued message to the core.
    pub(crate) fn drain(&mut self, guest: &mut Guest, clock: &dyn WallClock) {
        while let Ok(msg) = self.incoming.try_recv() {
            let _ = self.on_message(guest, clock, msg);
        }
    }

    fn on_message(
        &mut self,
        guest: &mut Guest,
        clock: &dyn WallClock,
        msg: Incoming,
    ) -> Option<GuestGrantInfo> {
        if msg.topic != self.grants_topic {
            debug!(topic = %msg.topic, "message on an unexpected topic ignored");
            return None;
        }
        match guest.handle_grant(clock.now(), &msg.payload) {
            Ok(info) => {
                self.stats.grants_accepted += 1;
                if let Some(store) = &self.store
                    && let Err(e) = store.save(&info.lock_id, &msg.payload)
                {
                    warn!(lock = %info.lock_id, error = %e, "cannot store the grant; it lasts until exit");
                }
                info!(
                    lock = %info.lock_id,
                    grant = %info.grant_id,
                    not_after = info.not_after,
                    "grant received"
                );
                Some(info)
            }
            Err(reason) => {
                self.stats.grants_rejected += 1;
                self.stats.last_rejection = Some(reason);
                // A QoS 1 redelivery of an answered request is routine; anything else is not.
                if reason == Reason::UnknownRequest {
                    info!(%reason, size = msg.payload.len(), "GuestGrant ignored");
                } else {
                    warn!(%reason, size = msg.payload.len(), "GuestGrant ignored");
                }
                None
            }
        }
    }

    /// Forgets the stored grant for `lock`.
    pub(crate) fn forget(&self, lock: &LockId) {
        if let Some(store) = &self.store {
            store.remove(lock);
        }
    }

    /// The broker connection state now.
    pub(crate) fn state(&self) -> ConnectionState {
        *self.mqtt.state().borrow()
    }

    /// Sends DISCONNECT; the persistent session keeps our grants topic.
    pub(crate) async fn shutdown(self) {
        self.mqtt.shutdown().await;
    }
}
