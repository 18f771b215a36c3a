//! Embedded MQTT broker (rumqttd) for single-machine defaults and tests.
//!
//! ```no_run
//! use latchkey_transport::broker::EmbeddedBroker;
//!
//! let broker = EmbeddedBroker::start("127.0.0.1:0".parse()?)?;
//! println!("broker at {}", broker.url());
//! broker.stop();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! rumqttd logs every client connection at `info` level under the `rumqttd` target; filter
//! it (e.g. `RUST_LOG=info,rumqttd=warn`) if that is too chatty.

mod config;
mod embedded;
mod error;
mod front;
mod probe;

pub use config::MAX_PAYLOAD;
pub use embedded::EmbeddedBroker;
pub use error::BrokerError;
