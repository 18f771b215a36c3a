//! Errors of the embedded broker.

use std::net::SocketAddr;
use std::time::Duration;

/// Why the embedded broker could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BrokerError {
    /// The requested address could not be bound (typically: something already listens there).
    #[error(
        "cannot bind the embedded MQTT broker to {addr}: {source} \
         (is another broker or process already using this port?)"
    )]
    Bind {
        /// Address that was requested.
        addr: SocketAddr,
        /// The bind error.
        #[source]
        source: std::io::Error,
    },
    /// Setting up the broker's internal loopback listener, runtime or threads failed.
    #[error("cannot set up the embedded MQTT broker: {context}: {source}")]
    Setup {
        /// What was being set up.
        context: &'static str,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// rumqttd refused to register the broker's self-check link.
    #[error("embedded MQTT broker rejected its self-check link: {0}")]
    Link(String),
    /// The broker did not answer a real MQTT CONNECT + PUBLISH round trip in time.
    #[error("embedded MQTT broker on {addr} was not ready within {timeout:?}: {reason}")]
    NotReady {
        /// Public address of the broker.
        addr: SocketAddr,
        /// How long we waited.
        timeout: Duration,
        /// Last observed failure.
        reason: String,
    },
}
