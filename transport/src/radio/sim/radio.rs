//! A radio on the simulated air; plays either the lock or the guest role (or both).

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tokio::time::Instant;
use tracing::debug;
use uuid::Uuid;

use super::air::{RadioId, SimAir};
use super::link::SimGattLink;
use crate::radio::error::RadioError;
use crate::radio::types::{GattServiceSpec, LockEvents};
use crate::radio::{GuestRadio, LockRadio};

/// One radio on a [`SimAir`]. Create with [`SimAir::radio`].
pub struct SimRadio {
    air: SimAir,
    id: RadioId,
    name: Arc<str>,
    advertiser: Mutex<Option<AbortHandle>>,
}

impl SimRadio {
    pub(crate) fn new(air: SimAir, id: RadioId, name: Arc<str>) -> Self {
        Self {
            air,
            id,
            name,
            advertiser: Mutex::new(None),
        }
    }

    /// The name given to [`SimAir::radio`].
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Sends one advertisement now (one controller event), without starting or changing
    /// the periodic advertisement of [`GuestRadio::set_advertisement`]. For load
    /// generators that pace adverts themselves (benchmarks); the data is checked like
    /// `set_advertisement`'s.
    pub fn advertise_once(&self, company_id: u16, data: &[u8]) -> Result<(), RadioError> {
        let max = self.air.config().max_advert_data;
        if data.len() > max {
            return Err(RadioError::AdvertTooLong {
                len: data.len(),
                max,
            });
        }
        self.air.broadcast(self.id, company_id, data);
        Ok(())
    }

    fn replace_advertiser(&self, next: Option<AbortHandle>) {
        let previous = std::mem::replace(
            &mut *self
                .advertiser
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
            next,
        );
        if let Some(task) = previous {
            task.abort();
        }
    }
}

impl Drop for SimRadio {
    fn drop(&mut self) {
        self.replace_advertiser(None);
    }
}

impl fmt::Debug for SimRadio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimRadio")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Unregisters the lock side when its [`LockEvents`] is dropped.
struct LockRegistration {
    air: SimAir,
    radio: RadioId,
    delay_line: AbortHandle,
}

impl Drop for LockRegistration {
    fn drop(&mut self) {
        self.air.unregister_lock(self.radio);
        self.delay_line.abort();
    }
}

impl LockRadio for SimRadio {
    async fn start_lock(&self, spec: GattServiceSpec) -> Result<LockEvents, RadioError> {
        let capacity = self.air.config().event_capacity.max(1);
        let (tx, rx) = mpsc::channel(capacity);
        let delay_line = self
            .air
            .register_lock(self.id, spec, tx)
            .ok_or(RadioError::AlreadyStarted)?;
        debug!(radio = %self.name, service = %spec.service, "sim lock started");
        let guard = LockRegistration {
            air: self.air.clone(),
            radio: self.id,
            delay_line,
        };
        Ok(LockEvents::new(rx, Box::new(guard)))
    }
}

impl GuestRadio for SimRadio {
    type Link = SimGattLink;

    async fn set_advertisement(&self, company_id: u16, data: Vec<u8>) -> Result<(), RadioError> {
        let config = self.air.config();
        if data.len() > config.max_advert_data {
            return Err(RadioError::AdvertTooLong {
                len: data.len(),
                max: config.max_advert_data,
            });
        }
        let air = self.air.clone();
        let id = self.id;
        let interval = config.advert_interval.max(Duration::from_millis(1));
        let task = tokio::spawn(async move {
            // First advert immediately, then every interval, like a controller's adv set.
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                air.broadcast(id, company_id, &data);
            }
        });
        self.replace_advertiser(Some(task.abort_handle()));
        Ok(())
    }

    async fn stop_advertising(&self) -> Result<(), RadioError> {
        self.replace_advertiser(None);
        Ok(())
    }

    async fn connect(&self, service: Uuid, timeout: Duration) -> Result<SimGattLink, RadioError> {
        let config = self.air.config();
        let deadline = Instant::now() + timeout;
        loop {
            if let Some((conn, server)) = self.air.try_connect(self.id, service) {
                // Connection setup costs one exchange on air.
                tokio::time::sleep(config.gatt_latency).await;
                debug!(radio = %self.name, %conn, "sim GATT connected");
                return Ok(SimGattLink::new(conn, server, &config));
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(RadioError::NotFound { service, timeout });
            }
            // Next chance: the lock's next connectable advert.
            tokio::time::sleep(config.advert_interval.min(deadline - now)).await;
        }
    }
}
