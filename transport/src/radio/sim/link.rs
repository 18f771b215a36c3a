//! A simulated GATT client connection.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::air::Server;
use super::config::SimAirConfig;
use crate::radio::GattLink;
use crate::radio::att::AttError;
use crate::radio::error::RadioError;
use crate::radio::types::{ConnId, GattServiceSpec, LockRadioEvent, MAX_ATTRIBUTE_LEN};

/// A GATT connection from a guest [`SimRadio`](super::SimRadio) to a lock.
///
/// Every request and response takes `gatt_latency`. A read asks the lock once and then
/// fetches the rest of a long value with simulated Read Blobs (`mtu - 1` bytes per round
/// trip) from that same value. Writes up to 512 bytes are delivered whole (a real stack would
/// use a prepared write above `mtu - 3` bytes).
pub struct SimGattLink {
    conn: ConnId,
    spec: GattServiceSpec,
    events: mpsc::Sender<LockRadioEvent>,
    latency: Duration,
    mtu: usize,
    att_timeout: Duration,
    closed: Arc<AtomicBool>,
}

impl SimGattLink {
    pub(crate) fn new(conn: ConnId, server: Server, config: &SimAirConfig) -> Self {
        Self {
            conn,
            spec: server.spec,
            events: server.events,
            latency: config.gatt_latency,
            // ATT requires MTU >= 23; a smaller configured value would stall long reads.
            mtu: usize::from(config.mtu.max(23)),
            att_timeout: config.att_timeout,
            closed: Arc::new(AtomicBool::new(false)),
        }
    }

    fn check_open(&self) -> Result<(), RadioError> {
        if self.closed.load(Ordering::Acquire) || self.events.is_closed() {
            Err(RadioError::Disconnected)
        } else {
            Ok(())
        }
    }

    /// Sends `event` to the lock after one latency and waits for its answer, then one more
    /// latency for the answer to come back.
    async fn exchange<T>(
        &self,
        event: LockRadioEvent,
        answer: oneshot::Receiver<Result<T, AttError>>,
    ) -> Result<T, RadioError> {
        tokio::time::sleep(self.latency).await;
        self.check_open()?;
        self.events
            .send(event)
            .await
            .map_err(|_| RadioError::Disconnected)?;
        let result = match tokio::time::timeout(self.att_timeout, answer).await {
            Err(_) => return Err(RadioError::Timeout(self.att_timeout)),
            // The lock dropped the reply without answering.
            Ok(Err(_)) => Err(AttError::UnlikelyError),
            Ok(Ok(result)) => result,
        };
        tokio::time::sleep(self.latency).await;
        self.check_open()?;
        // Only the code crosses the air.
        result.map_err(|e| RadioError::Att(AttError::from_code(e.code())))
    }
}

impl GattLink for SimGattLink {
    fn conn_id(&self) -> Option<ConnId> {
        Some(self.conn)
    }

    async fn write(&self, characteristic: Uuid, value: &[u8]) -> Result<(), RadioError> {
        self.check_open()?;
        if !self.spec.has(characteristic) {
            return Err(RadioError::UnknownCharacteristic(characteristic));
        }
        if value.len() > MAX_ATTRIBUTE_LEN {
            return Err(RadioError::ValueTooLong {
                len: value.len(),
                max: MAX_ATTRIBUTE_LEN,
            });
        }
        let (reply, answer) = oneshot::channel();
        let event = LockRadioEvent::GattWrite {
            conn: self.conn,
            characteristic,
            value: value.to_vec(),
            reply,
        };
        self.exchange(event, answer).await
    }

    async fn read(&self, characteristic: Uuid) -> Result<Vec<u8>, RadioError> {
        self.check_open()?;
        if !self.spec.has(characteristic) {
            return Err(RadioError::UnknownCharacteristic(characteristic));
        }
        if !self.spec.readable(characteristic) {
            // The peer's stack refuses by the characteristic's properties; the lock never
            // hears about it.
            tokio::time::sleep(self.latency * 2).await;
            return Err(RadioError::Att(AttError::ReadNotPermitted));
        }
        let (reply, answer) = oneshot::channel();
        let event = LockRadioEvent::GattRead {
            conn: self.conn,
            characteristic,
            reply,
        };
        let value = self.exchange(event, answer).await?;
        if value.len() > MAX_ATTRIBUTE_LEN {
            return Err(RadioError::Att(AttError::UnlikelyError));
        }
        // A full Read Response (mtu - 1 bytes) makes the client ask for the next blob.
        let blobs = value.len() / (self.mtu - 1);
        for _ in 0..blobs {
            tokio::time::sleep(self.latency * 2).await;
            self.check_open()?;
        }
        Ok(value)
    }

    async fn disconnect(self) -> Result<(), RadioError> {
        if !self.closed.swap(true, Ordering::AcqRel) {
            tokio::time::sleep(self.latency).await;
            let _ = self
                .events
                .send(LockRadioEvent::Disconnected { conn: self.conn })
                .await;
        }
        Ok(())
    }
}

impl Drop for SimGattLink {
    fn drop(&mut self) {
        // Dropping without disconnect() is a link loss: the lock still hears about it.
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        let events = self.events.clone();
        let conn = self.conn;
        let latency = self.latency;
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(async move {
                    tokio::time::sleep(latency).await;
                    let _ = events.send(LockRadioEvent::Disconnected { conn }).await;
                });
            }
            Err(_) => {
                let _ = events.try_send(LockRadioEvent::Disconnected { conn });
            }
        }
    }
}

impl fmt::Debug for SimGattLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimGattLink")
            .field("conn", &self.conn)
            .field("mtu", &self.mtu)
            .field("closed", &self.closed.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}
