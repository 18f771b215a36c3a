//! rumqttd configuration, built in code (no config file to ship or get wrong).

use std::collections::HashMap;
use std::net::SocketAddr;

use rumqttd::{Config, ConnectionSettings, RouterConfig, ServerSettings};

use crate::mqtt::DEFAULT_MAX_PAYLOAD;

/// Largest publish payload the embedded broker accepts.
pub const MAX_PAYLOAD: usize = DEFAULT_MAX_PAYLOAD;

/// rumqttd limits whole packets, not payloads: leave room for the topic and headers.
const PACKET_OVERHEAD: usize = 4 * 1024;

/// A single MQTT 3.1.1 (v4) listener on `listen` with generous limits.
pub(crate) fn rumqttd_config(listen: SocketAddr) -> Config {
    let server = ServerSettings {
        name: "latchkey-v4".to_owned(),
        listen,
        tls: None,
        next_connection_delay_ms: 1,
        connections: ConnectionSettings {
            connection_timeout_ms: 60_000,
            max_payload_size: MAX_PAYLOAD + PACKET_OVERHEAD,
            max_inflight_count: 500,
            auth: None,
            external_auth: None,
            dynamic_filters: true,
        },
    };
    Config {
        id: 0,
        router: RouterConfig {
            max_connections: 10_000,
            max_outgoing_packet_count: 200,
            max_segment_size: 10 * 1024 * 1024,
            max_segment_count: 10,
            custom_segment: None,
            initialized_filters: None,
            shared_subscriptions_strategy: Default::default(),
        },
        v4: Some(HashMap::from([("1".to_owned(), server)])),
        ..Default::default()
    }
}
