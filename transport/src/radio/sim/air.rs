//! The shared medium: who is scanning, who serves which GATT service, link conditions.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tokio::time::Instant;
use tracing::debug;

use super::config::SimAirConfig;
use super::radio::SimRadio;
use crate::radio::types::{AdvertReport, ConnId, GattServiceSpec, LockRadioEvent};
use crate::rng::SplitMix64;

/// In-process simulated air shared by many [`SimRadio`]s.
///
/// Adverts reach every scanning radio except the sender, each with the RSSI configured for
/// that (transmitter, receiver) pair, after `advert_latency`, unless dropped with
/// probability `loss`. Loss decisions come from one RNG seeded by [`SimAirConfig::seed`], so
/// a run is reproducible (run tests with tokio's paused clock for exact timing).
///
/// Cloning gives another handle to the same air.
#[derive(Clone)]
pub struct SimAir {
    inner: Arc<Mutex<AirState>>,
}

pub(crate) type RadioId = u64;

struct AirState {
    config: SimAirConfig,
    rng: SplitMix64,
    rssi: HashMap<(String, String), i16>,
    names: HashMap<RadioId, Arc<str>>,
    scanners: HashMap<RadioId, mpsc::UnboundedSender<(Instant, AdvertReport)>>,
    servers: HashMap<RadioId, Server>,
    next_radio: RadioId,
    next_conn: u64,
}

#[derive(Clone)]
pub(crate) struct Server {
    pub(crate) spec: GattServiceSpec,
    pub(crate) events: mpsc::Sender<LockRadioEvent>,
}

impl SimAir {
    /// A new, empty air.
    pub fn new(config: SimAirConfig) -> Self {
        let rng = SplitMix64::new(config.seed);
        Self {
            inner: Arc::new(Mutex::new(AirState {
                config,
                rng,
                rssi: HashMap::new(),
                names: HashMap::new(),
                scanners: HashMap::new(),
                servers: HashMap::new(),
                next_radio: 0,
                next_conn: 0,
            })),
        }
    }

    /// A radio on this air. `name` identifies it in [`SimAir::set_rssi`] and logs only; it is
    /// never shown to the other side (like a BLE address, it must not be keyed on).
    pub fn radio(&self, name: &str) -> SimRadio {
        let name: Arc<str> = Arc::from(name);
        let id = {
            let mut s = self.state();
            let id = s.next_radio;
            s.next_radio += 1;
            s.names.insert(id, name.clone());
            id
        };
        SimRadio::new(self.clone(), id, name)
    }

    /// RSSI heard by radio `rx` from radio `tx` (both by name); overrides the default.
    pub fn set_rssi(&self, tx: &str, rx: &str, rssi: i16) {
        self.state()
            .rssi
            .insert((tx.to_owned(), rx.to_owned()), rssi);
    }

    /// Probability in `[0, 1]` that one advert (or one connection attempt) is lost.
    pub fn set_loss(&self, loss: f64) {
        self.state().config.loss = loss.clamp(0.0, 1.0);
    }

    /// A copy of the current configuration.
    pub fn config(&self) -> SimAirConfig {
        self.state().config.clone()
    }

    fn state(&self) -> MutexGuard<'_, AirState> {
        // Holders never leave the state half-updated across a panic point.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Delivers one advert from `from` to every other scanning radio.
    pub(crate) fn broadcast(&self, from: RadioId, company_id: u16, data: &[u8]) {
        let mut s = self.state();
        let s = &mut *s;
        let Some(from_name) = s.names.get(&from).cloned() else {
            return;
        };
        let due = Instant::now() + s.config.advert_latency;
        for (rx_id, line) in &s.scanners {
            if *rx_id == from {
                continue;
            }
            // Draw even at loss 0 so the sequence does not depend on the loss setting.
            if s.rng.next_f64() < s.config.loss {
                continue;
            }
            let rx_name = s
                .names
                .get(rx_id)
                .map(|n| n.to_string())
                .unwrap_or_default();
            let rssi = s
                .rssi
                .get(&(from_name.to_string(), rx_name))
                .copied()
                .unwrap_or(s.config.default_rssi);
            let report = AdvertReport {
                company_id,
                data: data.to_vec(),
                rssi,
            };
            let _ = line.send((due, report));
        }
    }

    /// Registers `radio` as scanning and serving `spec`; adverts go to `events`.
    pub(crate) fn register_lock(
        &self,
        radio: RadioId,
        spec: GattServiceSpec,
        events: mpsc::Sender<LockRadioEvent>,
    ) -> Option<AbortHandle> {
        let mut s = self.state();
        if s.servers.contains_key(&radio) {
            return None;
        }
        let (line_tx, line_rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(delay_line(line_rx, events.clone()));
        s.scanners.insert(radio, line_tx);
        s.servers.insert(radio, Server { spec, events });
        Some(task.abort_handle())
    }

    pub(crate) fn unregister_lock(&self, radio: RadioId) {
        let mut s = self.state();
        s.scanners.remove(&radio);
        s.servers.remove(&radio);
    }

    /// One connection attempt from `guest`: the strongest lock serving `service`, unless
    /// the attempt is lost.
    pub(crate) fn try_connect(
        &self,
        guest: RadioId,
        service: uuid::Uuid,
    ) -> Option<(ConnId, Server)> {
        let mut s = self.state();
        let s = &mut *s;
        let guest_name = s
            .names
            .get(&guest)
            .map(|n| n.to_string())
            .unwrap_or_default();
        let best = s
            .servers
            .iter()
            .filter(|(id, srv)| {
                **id != guest && srv.spec.service == service && !srv.events.is_closed()
            })
            .map(|(id, srv)| {
                let lock_name = s.names.get(id).map(|n| n.to_string()).unwrap_or_default();
                let rssi = s
                    .rssi
                    .get(&(lock_name, guest_name.clone()))
                    .copied()
                    .unwrap_or(s.config.default_rssi);
                (rssi, *id, srv.clone())
            })
            .max_by_key(|(rssi, id, _)| (*rssi, std::cmp::Reverse(*id)))?;
        if s.rng.next_f64() < s.config.loss {
            return None;
        }
        let conn = ConnId(s.next_conn);
        s.next_conn += 1;
        Some((conn, best.2))
    }
}

impl Default for SimAir {
    fn default() -> Self {
        Self::new(SimAirConfig::default())
    }
}

impl fmt::Debug for SimAir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.state();
        f.debug_struct("SimAir")
            .field("radios", &s.names.len())
            .field("scanners", &s.scanners.len())
            .field("servers", &s.servers.len())
            .finish_non_exhaustive()
    }
}

/// Holds adverts until their arrival time; a constant latency keeps them in order.
async fn delay_line(
    mut line: mpsc::UnboundedReceiver<(Instant, AdvertReport)>,
    events: mpsc::Sender<LockRadioEvent>,
) {
    while let Some((due, report)) = line.recv().await {
        tokio::time::sleep_until(due).await;
        match events.try_send(LockRadioEvent::Advert(report)) {
            Ok(()) => {}
            // Like a controller with a full report queue: drop the advert, keep scanning.
            Err(mpsc::error::TrySendError::Full(_)) => {
                debug!("sim scanner queue full; advert dropped")
            }
            Err(mpsc::error::TrySendError::Closed(_)) => break,
        }
    }
}
