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
    /// The admin web cannot start (its address is taken, its settings are invalid).
    #[error(transparent)]
    Web(#[from] crate::web::WebError),
    /// The OS random number generator failed.
    #[error("cannot read the operating system's random number generator: {0}")]
    Entropy(String),
    /// A registry database operation failed.
    #[error("registry database {path}: {action}: {source}")]
    Database {
        /// The database file.
        path: PathBuf,
        /// What was being done.
        action: &'static str,
        /// The SQLite error.
        #[source]
        source: rusqlite::Error,
    },
    /// The database was written by a newer issuer.
    #[error(
        "registry database {path} has schema version {found}, but this latchkey-issuer \
         knows versions up to {supported}: run the newer latchkey-issuer that wrote it"
    )]
    DatabaseTooNew {
        /// The database file.
        path: PathBuf,
        /// Its `user_version`.
        found: i64,
        /// The newest this binary applies.
        supported: i64,
    },
    /// A read-only command on a state directory without a registry.
    #[error(
        "no registry database at {path}: run `latchkey-issuer keygen` first (or check --state-dir)"
    )]
    NoRegistry {
        /// The missing database.
        path: PathBuf,
    },
    /// A database row does not hold what the schema promises (edited by hand?).
    #[error("registry database: {table} row {key}: {detail}")]
    CorruptRow {
        /// The table.
        table: &'static str,
        /// The row's key.
        key: String,
        /// What is wrong.
        detail: String,
    },
    /// The key-encryption key file is missing.
    #[error(
        "no key-encryption key at {path}: run `latchkey-issuer keygen` to create it, or pass \
         --kek-file FILE (config `kek_file`) or set LATCHKEY_ISSUER_KEK"
    )]
    NoKek {
        /// The expected file.
        path: PathBuf,
    },
    /// The key-encryption key is malformed.
    #[error(
        "key-encryption key from {origin} is invalid: {detail} (it must be 64 hex digits, \
         or a file of exactly 32 raw bytes)"
    )]
    BadKek {
        /// Where it came from.
        origin: String,
        /// What is wrong.
        detail: String,
    },
    /// The key-encryption key is not the one the database was sealed under.
    #[error(
        "the key-encryption key from {origin} does not match registry database {path} (its \
         secrets were sealed under another key): pass the right --kek-file, or restore the \
         key file that belongs to this database"
    )]
    WrongKek {
        /// Where the key came from.
        origin: String,
        /// The database file.
        path: PathBuf,
    },
    /// A sealed enrollment key does not open: its row was altered or copied.
    #[error(
        "the sealed enrollment key of guest {guest_id} (key version {key_version}) does not \
         open: the registry row was altered or copied from another guest; give the guest a \
         new key with `latchkey-issuer rotate-guest-key --guest {guest_id}`"
    )]
    SealedKeyInvalid {
        /// The guest.
        guest_id: GuestId,
        /// The key version the row claims.
        key_version: u32,
    },
    /// A lock named by a command is not registered.
    #[error("lock {0} is not registered (see `latchkey-issuer list`)")]
    LockNotRegistered(LockId),
    /// A guest has no access rule at a lock.
    #[error("guest {guest_id} has no access rule at lock {lock_id}")]
    NoAccessRule {
        /// The guest.
        guest_id: GuestId,
        /// The lock.
        lock_id: LockId,
    },
    /// An access rule or another registry value is not acceptable.
    #[error("invalid {what}: {detail}")]
    Invalid {
        /// What was given (`access rule`, `--name`, …).
        what: &'static str,
        /// What is wrong and how to fix it.
        detail: String,
    },
    /// `admin-user add` for an existing name.
    #[error("admin user {0:?} already exists; change its password with `admin-user passwd`")]
    AdminUserExists(String),
    /// An admin user that does not exist.
    #[error("no admin user {0:?} (see `latchkey-issuer admin-user list`)")]
    UnknownAdminUser(String),
    /// An alert that does not exist.
    #[error("no alert {0:?} (see `latchkey-issuer alerts --all`)")]
    UnknownAlert(String),
    /// An alert acknowledged before.
    #[error("alert {0:?} is already acknowledged")]
    AlertAcknowledged(String),
    /// Password hashing or reading failed.
    #[error("password: {0}")]
    Password(String),
    /// A QR code could not be made.
    #[error("QR code: {0}")]
    Qr(String),
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

    pub(crate) fn db(
        path: impl Into<PathBuf>,
        action: &'static str,
    ) -> impl FnOnce(rusqlite::Error) -> Self {
        let path = path.into();
        move |source| Self::Database {
            path,
            action,
            source,
        }
    }

    pub(crate) fn invalid(what: &'static str, detail: impl std::fmt::Display) -> Self {
        Self::Invalid {
            what,
            detail: detail.to_string(),
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
