//! Resilient MQTT client over rumqttc.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use latchkey_transport::mqtt::{MqttClient, MqttConfig, MqttUrl, QoS};
//!
//! let url: MqttUrl = "mqtt://127.0.0.1:1883".parse()?;
//! let (client, mut incoming) = MqttClient::spawn(MqttConfig::new(url, "lock-42"))?;
//! client.subscribe("latchkey/lock-42/#", QoS::AtLeastOnce).await?;
//! client.publish("latchkey/issuer/hello", &b"hi"[..], QoS::AtLeastOnce, false).await?;
//! while let Some(msg) = incoming.recv().await {
//!     println!("{} ({} bytes)", msg.topic, msg.payload.len());
//! }
//! # Ok(()) }
//! ```

mod backoff;
mod client;
mod config;
mod error;
mod url;

pub use backoff::{Backoff, Jitter, NoJitter, SeededJitter};
pub use client::{ConnectionState, Incoming, MqttClient};
pub use config::{ClientAuthFiles, DEFAULT_MAX_PAYLOAD, MqttConfig, TlsFiles};
pub use error::MqttError;
/// MQTT quality of service levels (re-exported from rumqttc).
pub use rumqttc::QoS;
pub use url::{DEFAULT_PORT, DEFAULT_TLS_PORT, MqttUrl, MqttUrlError, Scheme};
