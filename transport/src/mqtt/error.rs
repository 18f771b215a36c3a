//! Errors of the MQTT client.

use std::path::PathBuf;
use std::time::Duration;

/// Why the MQTT client could not be built or could not carry out a request.
///
/// Connection failures are not errors here: the client retries them on its own and
/// reports them through [`ConnectionState`](super::ConnectionState) and the log.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MqttError {
    /// A persistent session is keyed by the client id, so it cannot be empty.
    #[error("MQTT client id must not be empty (the broker keys the persistent session by it)")]
    EmptyClientId,
    /// MQTT keep-alive is a 16-bit number of seconds.
    #[error("MQTT keep-alive must be zero or whole seconds in 1..=65535, got {0:?}")]
    InvalidKeepAlive(Duration),
    /// TLS files were given but the URL is `mqtt://`.
    #[error("TLS files are configured but the broker URL is plain mqtt://; use mqtts://")]
    TlsWithoutMqtts,
    /// Mutual TLS without an explicit CA is not supported.
    #[error("mutual TLS (client certificate) requires a CA file for the broker")]
    ClientAuthNeedsCa,
    /// A TLS file could not be read.
    #[error("cannot read {what} file {path}: {source}")]
    ReadFile {
        /// Which file (CA, client certificate, client key).
        what: &'static str,
        /// Path as configured.
        path: PathBuf,
        /// Underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A TLS file does not contain the expected PEM item.
    #[error("{what} file {path} contains no PEM {expected}")]
    BadPem {
        /// Which file.
        what: &'static str,
        /// Path as configured.
        path: PathBuf,
        /// What was looked for.
        expected: &'static str,
    },
    /// `mqtts://` without a CA file and no usable system root store.
    #[error("no CA file configured and the system root certificates cannot be loaded: {0}")]
    NoSystemRoots(String),
    /// Outgoing payload bigger than the configured cap.
    #[error("MQTT payload of {size} bytes exceeds the {max}-byte limit")]
    PayloadTooLarge {
        /// Offered payload size.
        size: usize,
        /// Configured cap.
        max: usize,
    },
    /// Publish topic empty or containing wildcards or NUL.
    #[error("invalid MQTT topic {0:?}: must be non-empty, without '+', '#' or NUL")]
    InvalidTopic(String),
    /// Subscription filter malformed (e.g. `a/#/b`, `a+`).
    #[error("invalid MQTT topic filter {0:?}")]
    InvalidFilter(String),
    /// The client was shut down; no more requests are accepted.
    #[error("the MQTT client has shut down")]
    Closed,
}
