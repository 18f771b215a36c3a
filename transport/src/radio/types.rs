//! Data types shared by every radio implementation.

use std::fmt;

use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::att::AttError;

/// Largest attribute value ATT allows (Core Vol 3 Part F §3.2.9).
pub const MAX_ATTRIBUTE_LEN: usize = 512;

/// Largest manufacturer data (after the company id) that fits one legacy advertisement
/// next to the 3-byte Flags AD: 31 − 3 (flags) − 2 (AD header) − 2 (company id).
pub const MAX_LEGACY_MANUFACTURER_DATA: usize = 24;

/// One manufacturer-specific data record as heard on air, with its signal strength.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdvertReport {
    /// Bluetooth SIG company identifier of the record.
    pub company_id: u16,
    /// Data after the company identifier.
    pub data: Vec<u8>,
    /// Received signal strength in dBm.
    pub rssi: i16,
}

/// Opaque identifier of one GATT connection, unique for the life of the radio.
///
/// Never derived from a BLE address (phones randomise those); a reconnect from the same
/// phone gets a new id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn#{}", self.0)
    }
}

/// The GATT service a lock serves and a guest connects to.
///
/// The challenge characteristic supports Write (with response) and Read; the response
/// characteristic supports Write (with response) only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GattServiceSpec {
    /// Primary service UUID, also advertised (connectable) by the lock.
    pub service: Uuid,
    /// Write-with-response + read characteristic.
    pub challenge_char: Uuid,
    /// Write-with-response characteristic.
    pub response_char: Uuid,
}

impl GattServiceSpec {
    /// True if `characteristic` is one of the service's two characteristics.
    pub fn has(&self, characteristic: Uuid) -> bool {
        characteristic == self.challenge_char || characteristic == self.response_char
    }

    /// True if `characteristic` may be read.
    pub fn readable(&self, characteristic: Uuid) -> bool {
        characteristic == self.challenge_char
    }
}

/// Something that happened on the lock's radio.
///
/// Every `GattWrite` / `GattRead` must be answered through `reply`: the answer is what the
/// guest receives (success, or an ATT error such as an application error `0x80..=0x9F`).
/// Dropping `reply` unanswered makes the guest see "unlikely error" (`0x0E`).
pub enum LockRadioEvent {
    /// A manufacturer-data record was heard (duplicates are reported, not filtered).
    Advert(AdvertReport),
    /// A guest wrote (Write Request) a characteristic of the served service.
    GattWrite {
        /// Connection the write arrived on.
        conn: ConnId,
        /// Characteristic written.
        characteristic: Uuid,
        /// The complete value.
        value: Vec<u8>,
        /// Answer: `Ok(())` → Write Response; `Err` → ATT Error Response.
        reply: oneshot::Sender<Result<(), AttError>>,
    },
    /// A guest read a characteristic. Asked once per read; long reads (Read Blob) are
    /// served from the value given here, so it stays consistent across the blobs.
    GattRead {
        /// Connection the read arrived on.
        conn: ConnId,
        /// Characteristic read.
        characteristic: Uuid,
        /// Answer: the full value, or an ATT error.
        reply: oneshot::Sender<Result<Vec<u8>, AttError>>,
    },
    /// The GATT connection closed; `conn` will not be used again.
    Disconnected {
        /// Connection that closed.
        conn: ConnId,
    },
}

// Values are protocol secrets-in-transit (challenges, MACs): Debug shows lengths only.
impl fmt::Debug for LockRadioEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Advert(report) => f.debug_tuple("Advert").field(report).finish(),
            Self::GattWrite {
                conn,
                characteristic,
                value,
                ..
            } => f
                .debug_struct("GattWrite")
                .field("conn", conn)
                .field("characteristic", characteristic)
                .field("value_len", &value.len())
                .finish_non_exhaustive(),
            Self::GattRead {
                conn,
                characteristic,
                ..
            } => f
                .debug_struct("GattRead")
                .field("conn", conn)
                .field("characteristic", characteristic)
                .finish_non_exhaustive(),
            Self::Disconnected { conn } => {
                f.debug_struct("Disconnected").field("conn", conn).finish()
            }
        }
    }
}

/// The lock side's event stream. Dropping it stops scanning, advertising and the GATT
/// service.
pub struct LockEvents {
    rx: mpsc::Receiver<LockRadioEvent>,
    // Keeps the implementation's registrations alive; dropping it unregisters them.
    _guard: Box<dyn Send>,
}

impl LockEvents {
    pub(crate) fn new(rx: mpsc::Receiver<LockRadioEvent>, guard: Box<dyn Send>) -> Self {
        Self { rx, _guard: guard }
    }

    /// The next event; `None` once the radio side has stopped.
    pub async fn recv(&mut self) -> Option<LockRadioEvent> {
        self.rx.recv().await
    }

    /// The next event if one is queued.
    pub fn try_recv(&mut self) -> Option<LockRadioEvent> {
        self.rx.try_recv().ok()
    }
}

impl fmt::Debug for LockEvents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockEvents").finish_non_exhaustive()
    }
}
