//! The demo's and test harness's error type: whatever a daemon or file operation returned,
//! or an expectation that did not hold.

use latchkey_guest::{BundleError, GuestError};
use latchkey_issuer::IssuerdError;
use latchkey_lock::{ConfigError, LockdError};
use latchkey_transport::broker::BrokerError;
use latchkey_transport::mqtt::MqttError;
use latchkey_transport::radio::RadioError;

/// Why the demo (or a test built on [`Site`](crate::Site)) could not go on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DemoError {
    /// A file-system or OS operation failed.
    #[error("cannot {what}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The embedded broker did not start.
    #[error(transparent)]
    Broker(#[from] BrokerError),
    /// The issuer (daemon or offline command) failed.
    #[error("issuer: {0}")]
    Issuer(#[from] IssuerdError),
    /// The lock's configuration could not be loaded.
    #[error("lock configuration: {0}")]
    LockConfig(#[from] ConfigError),
    /// The lock daemon failed.
    #[error("lock: {0}")]
    Lock(#[from] LockdError),
    /// The guest failed.
    #[error("guest: {0}")]
    Guest(#[from] GuestError),
    /// The enrollment bundle could not be used.
    #[error("enrollment bundle: {0}")]
    Bundle(#[from] BundleError),
    /// An MQTT client failed.
    #[error("MQTT: {0}")]
    Mqtt(#[from] MqttError),
    /// A radio operation failed.
    #[error("radio: {0}")]
    Radio(#[from] RadioError),
    /// Something did not happen in time.
    #[error("timed out waiting for {0}")]
    Timeout(String),
    /// Something happened that should not have.
    #[error("{0}")]
    Unexpected(String),
}

impl DemoError {
    pub(crate) fn io(what: &'static str, source: std::io::Error) -> Self {
        Self::Io { what, source }
    }
}
