//! BLE radio abstraction: the lock scans beacons and serves a GATT service; the guest
//! advertises beacons and is the GATT client.
//!
//! Two implementations:
//! - [`SimAir`] / [`SimRadio`]: in-process simulated air for demos and tests (RSSI, loss,
//!   latency, advertising interval, ATT MTU), deterministic under a seed and tokio's paused
//!   clock.
//! - [`BluerRadio`] (cargo feature `bluer`, on by default): BlueZ over D-Bus.
//!
//! Daemons are generic over [`LockRadio`] / [`GuestRadio`], so the same code runs on both.

use std::future::Future;
use std::time::Duration;

use uuid::Uuid;

mod att;
mod error;
mod sim;
mod types;

#[cfg(feature = "bluer")]
mod bluez;

pub use att::AttError;
#[cfg(feature = "bluer")]
pub use bluez::{BluerGattLink, BluerRadio};
pub use error::RadioError;
pub use sim::{SimAir, SimAirConfig, SimGattLink, SimRadio};
pub use types::{
    AdvertReport, ConnId, GattServiceSpec, LockEvents, LockRadioEvent, MAX_ATTRIBUTE_LEN,
    MAX_LEGACY_MANUFACTURER_DATA,
};

/// The lock's side of the radio.
pub trait LockRadio: Send + Sync {
    /// Starts scanning (duplicate reports on, so changing manufacturer data and every
    /// RSSI are reported), serves `spec` as a GATT service, and advertises `spec.service`
    /// (connectable) so guests can find the lock. Everything stops when the returned
    /// [`LockEvents`] is dropped.
    fn start_lock(
        &self,
        spec: GattServiceSpec,
    ) -> impl Future<Output = Result<LockEvents, RadioError>> + Send;
}

/// The guest's side of the radio.
pub trait GuestRadio: Send + Sync {
    /// The GATT connection type.
    type Link: GattLink;

    /// Advertises one manufacturer-data record (non-connectable), replacing any current
    /// advertisement. Call again at every step to change the data.
    fn set_advertisement(
        &self,
        company_id: u16,
        data: Vec<u8>,
    ) -> impl Future<Output = Result<(), RadioError>> + Send;

    /// Stops advertising (no-op if not advertising).
    fn stop_advertising(&self) -> impl Future<Output = Result<(), RadioError>> + Send;

    /// Finds a peripheral advertising `service` and connects to it, within `timeout`.
    fn connect(
        &self,
        service: Uuid,
        timeout: Duration,
    ) -> impl Future<Output = Result<Self::Link, RadioError>> + Send;
}

/// A GATT client connection to a lock.
pub trait GattLink: Send + Sync {
    /// The connection's id as the lock sees it, if the implementation knows it (the
    /// simulator does; BlueZ does not expose it to the central).
    fn conn_id(&self) -> Option<ConnId>;

    /// Write Request: resolves to the lock's Write Response or ATT error
    /// ([`RadioError::Att`]).
    fn write(
        &self,
        characteristic: Uuid,
        value: &[u8],
    ) -> impl Future<Output = Result<(), RadioError>> + Send;

    /// Reads the full value (long reads are done with Read Blob as needed).
    fn read(
        &self,
        characteristic: Uuid,
    ) -> impl Future<Output = Result<Vec<u8>, RadioError>> + Send;

    /// Closes the connection; the lock sees [`LockRadioEvent::Disconnected`].
    fn disconnect(self) -> impl Future<Output = Result<(), RadioError>> + Send;
}
