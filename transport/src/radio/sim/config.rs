//! Link conditions of the simulated air.

use std::time::Duration;

use crate::radio::types::MAX_LEGACY_MANUFACTURER_DATA;

/// Conditions on a [`SimAir`](super::SimAir). All delays use tokio's clock, so tests can run
/// with a paused clock and no real waiting.
#[derive(Debug, Clone, PartialEq)]
pub struct SimAirConfig {
    /// Seed of the RNG that decides losses.
    pub seed: u64,
    /// RSSI (dBm) for pairs without an override ([`SimAir::set_rssi`](super::SimAir::set_rssi)).
    pub default_rssi: i16,
    /// Time from an advert being sent to it being reported by a scanner.
    pub advert_latency: Duration,
    /// Probability in `[0, 1]` that an advert, or a connection attempt, is lost.
    pub loss: f64,
    /// One-way latency of every GATT packet (request, response, each Read Blob).
    pub gatt_latency: Duration,
    /// Interval at which a set advertisement is repeated.
    pub advert_interval: Duration,
    /// ATT_MTU of simulated connections: reads return `mtu - 1` bytes per round trip.
    pub mtu: u16,
    /// How long a GATT client waits for the lock's answer (ATT's transaction timeout).
    pub att_timeout: Duration,
    /// Largest manufacturer data accepted by `set_advertisement`.
    pub max_advert_data: usize,
    /// Capacity of each lock's event queue; adverts beyond it are dropped.
    pub event_capacity: usize,
}

impl Default for SimAirConfig {
    /// Seed 0, RSSI −60 dBm, advert latency 1 ms, no loss, GATT latency 10 ms, advertising
    /// every 100 ms, MTU 23 (the ATT default), 30 s ATT timeout, 24-byte legacy adverts.
    fn default() -> Self {
        Self {
            seed: 0,
            default_rssi: -60,
            advert_latency: Duration::from_millis(1),
            loss: 0.0,
            gatt_latency: Duration::from_millis(10),
            advert_interval: Duration::from_millis(100),
            mtu: 23,
            att_timeout: Duration::from_secs(30),
            max_advert_data: MAX_LEGACY_MANUFACTURER_DATA,
            event_capacity: 256,
        }
    }
}
