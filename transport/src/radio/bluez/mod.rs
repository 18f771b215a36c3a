//! BlueZ implementation of the radio traits (cargo feature `bluer`).
//!
//! Scanning, advertising and the GATT client use bluer; the GATT server is registered
//! directly over D-Bus so application error codes `0x80..=0x9F` reach the guest (see
//! `gatt_server`). Needs a running `bluetoothd` and an adapter; none of this can run in CI,
//! so the pure translations live in `mapping` and `adverts` and are unit-tested there.

mod adverts;
mod gatt_server;
mod link;
mod mapping;
mod radio;
mod scanner;

pub use link::BluerGattLink;
pub use radio::BluerRadio;
