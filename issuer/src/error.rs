//! The issuer daemon's errors. Every message names the file, flag or identifier at fault
//! and, where there is one, the fix.

use std::path::PathBuf;
use std::time::Duration;

use latchkey::{GrantId, GuestId, LockId};
use latchkey_transport::broker::BrokerError;
use latchkey_transport::mqtt::{MqttError, MqttUrlError};

/// Why an issuer command or the daemon failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IssuerdError {
    /// A file or directory operation failed.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What was being done ("read", "create directory", …).
        action: &'static str,
        /// The path concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A private file (key, secrets) is accessible by group or others.
    #[error(
        "refusing to use {what} file {path}: it is accessible by group or others \
         (mode {mode:04o}); fix it with: chmod 600 {path}"
    )]
    InsecurePermissions {
        /// What the file holds.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A file exists but its content is not what it should be.
    #[error("{what} file {path} is invalid: {detail}")]
    BadFile {
        /// What the file holds.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// The state directory holds no issuer key yet.
    #[error("no issuer key at {path}: run `latchkey-issuer keygen` first")]
    NoIssuerKey {
        /// The missing key file.
        path: PathBuf,
    },
    /// A file would be overwritten.
    #[error("{path} already exists; pass --force to overwrite it")]
    AlreadyExists {
        /// The existing file.
        path: PathBuf,
    },
    /// `add-lock` for a lock id that is already registered.
    #[error("lock {0} is already registered; pass --force to re-key it")]
    LockExists(LockId),
    /// `enroll-guest` for a guest id that is already enrolled.
    #[error("guest {0} is already enrolled; pass --force to re-enroll it with a new key")]
    GuestExists(GuestId),
    /// `enroll-guest` names locks that are not registered.
    #[error("lock(s) not registered: {0}; register them with `latchkey-issuer add-lock` first")]
    UnknownLocks(String),
    /// `enroll-guest` without any lock.
    #[error("a guest must be allowed at least one lock (--lock HEX)")]
    NoLocks,
    /// RSA key generation or encoding failed.
    #[error("RSA key: {0}")]
    Key(latchkey::crypto::rsa::KeyError),
    /// An option or a config file value is out of range or malformed.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A broker URL does not parse.
    #[error("invalid broker URL {url:?}: {source}")]
    BrokerUrl {
        /// The URL as given (never printed with a password: the parser's errors omit it).
        url: String,
        /// Why.
        #[source]
        source: MqttUrlError,
    },
    /// The embedded broker could not start (e.g. its port is taken).
    #[error(transparent)]
    Broker(#[from] BrokerError),
    /// The MQTT client could not be configured.
    #[error("MQTT client: {0}")]
    Mqtt(#[from] MqttError),
    /// Another issuer holds this state directory.
    #[error(
        "another latchkey-issuer is already running with state directory {dir} \
         (it holds {dir}/issuer.lock)"
    )]
    AlreadyRunning {
        /// The state directory.
        dir: PathBuf,
    },
    /// The issuer's subscriptions were not confirmed by the broker in time.
    #[error("the broker did not confirm the issuer's subscriptions within {0:?}")]
    NotSubscribed(Duration),
    /// The control socket of a running issuer cannot be reached.
    #[error(
        "cannot reach the issuer's control socket {path}: {source} \
         (is `latchkey-issuer run` running with this --state-dir?)"
    )]
    ControlUnreachable {
        /// The socket path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The running issuer refused a control request, or answered garbage.
    #[error("{0}")]
    Control(String),
    /// The grant is not live: unknown, expired or already revoked.
    #[error("grant {0} is not live (unknown, expired or already revoked)")]
    GrantNotLive(GrantId),
    /// The guest is not enrolled.
    #[error("guest {0} is not enrolled")]
    UnknownGuest(GuestId),
    /// The daemon has stopped; the request was not carried out.
    #[error("the issuer daemon has stopped")]
    Stopped,
    /// The OS random number generator failed.
    #[error("cannot read the operating system's random number generator: {0}")]
    Entropy(String),
}

impl IssuerdError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io {
            action,
            path,
            source,
        }
    }

    pub(crate) fn bad_file(
        what: &'static str,
        path: impl Into<PathBuf>,
        detail: impl std::fmt::Display,
    ) -> Self {
        Self::BadFile {
            what,
            path: path.into(),
            detail: detail.to_string(),
        }
    }
}
