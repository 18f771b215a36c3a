//! Errors of the radio layer.

use std::time::Duration;

use uuid::Uuid;

use super::att::AttError;

/// Why a radio operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RadioError {
    /// The peer answered with an ATT Error Response.
    #[error(transparent)]
    Att(#[from] AttError),
    /// No peripheral advertising the service was found in time.
    #[error("no peripheral advertising service {service} found within {timeout:?}")]
    NotFound {
        /// Service that was looked for.
        service: Uuid,
        /// How long we looked.
        timeout: Duration,
    },
    /// The peer did not answer a GATT request in time.
    #[error("GATT request timed out after {0:?}")]
    Timeout(Duration),
    /// The GATT connection is gone (peer disconnected, or `disconnect` was called).
    #[error("GATT connection is disconnected")]
    Disconnected,
    /// The connected peer has no such characteristic in the service.
    #[error("the peer's service has no characteristic {0}")]
    UnknownCharacteristic(Uuid),
    /// An attribute value longer than ATT allows (512 bytes).
    #[error("GATT value of {len} bytes exceeds the ATT maximum of {max} bytes")]
    ValueTooLong {
        /// Offered length.
        len: usize,
        /// Maximum.
        max: usize,
    },
    /// Manufacturer data too long for one legacy advertisement.
    #[error("advertisement data of {len} bytes exceeds the {max}-byte limit")]
    AdvertTooLong {
        /// Offered length.
        len: usize,
        /// Maximum.
        max: usize,
    },
    /// The lock side (scanner + GATT server) is already running on this radio.
    #[error("the lock side is already started on this radio")]
    AlreadyStarted,
    /// The named Bluetooth adapter does not exist.
    #[error("Bluetooth adapter {0:?} not found")]
    AdapterNotFound(String),
    /// BlueZ (through bluer) reported an error.
    #[cfg(feature = "bluer")]
    #[error("BlueZ: {0}")]
    Bluez(#[from] bluer::Error),
    /// Talking to BlueZ over D-Bus failed.
    #[cfg(feature = "bluer")]
    #[error("D-Bus: {0}")]
    Dbus(#[from] dbus::Error),
}

impl RadioError {
    /// The ATT error, if this is one.
    pub fn att(&self) -> Option<AttError> {
        match self {
            Self::Att(e) => Some(*e),
            _ => None,
        }
    }
}
