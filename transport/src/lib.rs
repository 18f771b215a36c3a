//! Byte-moving transports for the Latchkey daemons.
//!
//! This crate knows nothing about the Latchkey protocol: it moves opaque bytes between
//! the sans-IO core (`latchkey`) and the outside world. Three transports live here:
//!
//! - [`mqtt`]: a resilient MQTT client (rumqttc underneath) that reconnects with capped,
//!   fully jittered exponential backoff and re-subscribes on every CONNACK.
//! - [`broker`]: an embedded MQTT broker (rumqttd underneath) for single-machine setups,
//!   with a bind that fails loudly instead of silently talking to whoever holds the port.
//! - [`radio`]: a BLE radio abstraction with an in-process simulated air ([`radio::SimAir`])
//!   and, behind the `bluer` cargo feature, a BlueZ implementation ([`radio::BluerRadio`]).
//!
//! # Invariants
//!
//! - Nothing in this crate keys on a BLE device address: phones randomise them. GATT
//!   connections are identified by an opaque [`radio::ConnId`] allocated per connection.
//! - No payload bytes, passwords or key material are logged; logs carry sizes, topics and
//!   connection ids only.
//! - Everything async runs on tokio and must be called from within a tokio runtime;
//!   [`broker::EmbeddedBroker`] runs its own threads and can be started from sync code.

pub mod broker;
pub mod mqtt;
pub mod radio;
mod rng;
