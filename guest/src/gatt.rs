//! The Latchkey GATT service (spec §5.3). The UUIDs are normative.

use latchkey_transport::radio::GattServiceSpec;
use uuid::Uuid;

/// Latchkey primary service, advertised (connectable) by the lock.
pub const SERVICE_UUID: Uuid = Uuid::from_u128(0x6c6b0001_4c4b_4c4b_8000_4c6174636b79);
/// Select (write) / Challenge (read) characteristic.
pub const CHALLENGE_CHAR_UUID: Uuid = Uuid::from_u128(0x6c6b0002_4c4b_4c4b_8000_4c6174636b79);
/// Response (write) characteristic.
pub const RESPONSE_CHAR_UUID: Uuid = Uuid::from_u128(0x6c6b0003_4c4b_4c4b_8000_4c6174636b79);

/// The service as the transport's radios take it.
pub const fn service_spec() -> GattServiceSpec {
    GattServiceSpec {
        service: SERVICE_UUID,
        challenge_char: CHALLENGE_CHAR_UUID,
        response_char: RESPONSE_CHAR_UUID,
    }
}
