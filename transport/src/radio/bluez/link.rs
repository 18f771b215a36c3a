//! GATT client connection over BlueZ.

use std::collections::HashMap;
use std::fmt;

use bluer::gatt::WriteOp;
use bluer::gatt::remote::{Characteristic, CharacteristicWriteRequest};
use uuid::Uuid;

use super::mapping::{GattOp, client_error};
use crate::radio::GattLink;
use crate::radio::error::RadioError;
use crate::radio::types::{ConnId, MAX_ATTRIBUTE_LEN};

/// A GATT connection from the guest to a lock, through BlueZ.
pub struct BluerGattLink {
    pub(crate) device: bluer::Device,
    pub(crate) chars: HashMap<Uuid, Characteristic>,
}

impl BluerGattLink {
    fn characteristic(&self, uuid: Uuid) -> Result<&Characteristic, RadioError> {
        self.chars
            .get(&uuid)
            .ok_or(RadioError::UnknownCharacteristic(uuid))
    }
}

impl GattLink for BluerGattLink {
    fn conn_id(&self) -> Option<ConnId> {
        None
    }

    async fn write(&self, characteristic: Uuid, value: &[u8]) -> Result<(), RadioError> {
        if value.len() > MAX_ATTRIBUTE_LEN {
            return Err(RadioError::ValueTooLong {
                len: value.len(),
                max: MAX_ATTRIBUTE_LEN,
            });
        }
        let request = CharacteristicWriteRequest {
            op_type: WriteOp::Request,
            ..Default::default()
        };
        self.characteristic(characteristic)?
            .write_ext(value, &request)
            .await
            .map_err(|e| client_error(e, GattOp::Write))
    }

    async fn read(&self, characteristic: Uuid) -> Result<Vec<u8>, RadioError> {
        // BlueZ follows a full Read Response with Read Blobs by itself.
        self.characteristic(characteristic)?
            .read()
            .await
            .map_err(|e| client_error(e, GattOp::Read))
    }

    async fn disconnect(self) -> Result<(), RadioError> {
        self.device.disconnect().await.map_err(RadioError::from)
    }
}

impl fmt::Debug for BluerGattLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BluerGattLink")
            .field("characteristics", &self.chars.len())
            .finish_non_exhaustive()
    }
}
