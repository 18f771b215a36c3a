//! The offline commands on the issuer and its locks: `keygen`, `add-lock`,
//! `rotate-lock-key` and `set-lock` (guests: [`crate::enroll`]). They are plain functions
//! so that tests and the demo call them without a subprocess. Each writes its files
//! atomically with the modes of the design and records the change in the registry
//! (`registry.db`) in one transaction; a running daemon notices it by itself.

use std::path::{Path, PathBuf};

use latchkey::LockId;
use latchkey::constants::DEFAULT_COMPANY_ID;
use latchkey::crypto::rsa::{RsaPrivateKey, RsaPublicKey};
use latchkey_transport::mqtt::MqttUrl;

use crate::error::IssuerdError;
use crate::fsutil::{self, FileLock, PRIVATE_FILE, PUBLIC_FILE};
use crate::keys;
use crate::rng::os_rng;
use crate::state::StatePaths;
use crate::store::kek::create_kek_file;
use crate::store::{KekSource, LockUpdate, NewLock, OpenMode, Store};
use crate::time;

/// RSA modulus size used when none is given.
pub const DEFAULT_RSA_BITS: usize = 2048;
/// The audit trail's actor for changes made by these commands.
pub const ACTOR_CLI: &str = "cli";

/// Options of [`keygen_with`].
#[derive(Debug, Clone)]
pub struct KeygenOptions {
    /// RSA modulus size, 2048–4096.
    pub bits: usize,
    /// Replace an existing issuer key (every lock must then be given the new public key).
    pub force: bool,
    /// The registry's key-encryption key; a missing KEK file is created (never replaced).
    pub kek: KekSource,
}

impl Default for KeygenOptions {
    fn default() -> Self {
        Self {
            bits: DEFAULT_RSA_BITS,
            force: false,
            kek: KekSource::Auto,
        }
    }
}

/// What [`keygen`] wrote.
#[derive(Debug, Clone)]
pub struct KeygenOutput {
    /// The new public key.
    pub public_key: RsaPublicKey,
    /// SHA-256 of its SPKI DER, hex.
    pub fingerprint: String,
    /// `issuer.key.pem` (0600).
    pub key_file: PathBuf,
    /// `issuer.pub.pem` (0644).
    pub pub_file: PathBuf,
    /// The key-encryption key file, when this run created it (0600).
    pub kek_file_created: Option<PathBuf>,
    /// The registry database.
    pub registry: PathBuf,
}

/// Generates the issuer's signing key in `state_dir` (2048 bits; refuses to replace one),
/// the registry's key-encryption key `STATE_DIR/kek.key` unless there is one, and the
/// registry.
pub fn keygen(state_dir: &Path) -> Result<KeygenOutput, IssuerdError> {
    keygen_with(state_dir, &KeygenOptions::default())
}

/// [`keygen`] with options.
pub fn keygen_with(state_dir: &Path, opts: &KeygenOptions) -> Result<KeygenOutput, IssuerdError> {
    let paths = StatePaths::new(state_dir);
    fsutil::ensure_private_dir(paths.dir(), true)?;
    // A running daemon keeps signing with the old key; replacing it under it would leave
    // the state directory and the daemon disagreeing.
    let Some(_running) = FileLock::try_acquire(&paths.daemon_lock())? else {
        return Err(IssuerdError::AlreadyRunning {
            dir: paths.dir().to_owned(),
        });
    };
    let key_file = paths.issuer_key();
    if key_file.exists() && !opts.force {
        return Err(IssuerdError::AlreadyExists { path: key_file });
    }
    let mut rng = os_rng()?;
    // The KEK and the registry first: a wrong KEK must fail before a key is replaced.
    let mut kek_file_created = None;
    if !paths.registry_db().exists()
        && let Some(f) = opts.kek.file(paths.dir())
        && !f.exists()
    {
        create_kek_file(&f, &mut rng)?;
        kek_file_created = Some(f);
    }
    let store = Store::open(&paths, &opts.kek, OpenMode::Create)?;
    let key = RsaPrivateKey::generate_with(crate::keys::rsa_provider(), &mut rng, opts.bits)
        .map_err(IssuerdError::Key)?;
    let public_key = key.public_key();
    fsutil::write_atomic(
        &key_file,
        keys::private_key_pem(&key)?.as_bytes(),
        PRIVATE_FILE,
    )?;
    let pub_file = paths.issuer_pub();
    fsutil::write_atomic(
        &pub_file,
        keys::public_key_pem(&public_key)?.as_bytes(),
        PUBLIC_FILE,
    )?;
    Ok(KeygenOutput {
        fingerprint: keys::fingerprint(&public_key)?,
        public_key,
        key_file,
        pub_file,
        kek_file_created,
        registry: store.path().to_owned(),
    })
}

/// Options of [`add_lock_with`] and [`rotate_lock_key`].
#[derive(Debug, Clone)]
pub struct AddLockOptions {
    /// The lock's id; random if `None` (required by [`rotate_lock_key`]).
    pub lock_id: Option<LockId>,
    /// Where the lock's files go (created mode 0700).
    pub out_dir: PathBuf,
    /// The broker URL written into `lock.toml`.
    pub broker_url: String,
    /// RSA modulus size of the lock key.
    pub bits: usize,
    /// Company id written into `lock.toml`.
    pub company_id: u16,
    /// Re-key an already registered lock and overwrite existing files.
    pub force: bool,
    /// A name for people ("front door").
    pub name: String,
    /// IANA time zone of the lock's site (its schedules are local time).
    pub timezone: String,
    /// Latitude and longitude in degrees (anomaly detection: travel between locks).
    pub coordinates: Option<(f64, f64)>,
    /// The registry's key-encryption key.
    pub kek: KekSource,
}

impl AddLockOptions {
    /// Defaults for everything but where the files go and the broker.
    pub fn new(out_dir: impl Into<PathBuf>, broker_url: impl Into<String>) -> Self {
        Self {
            lock_id: None,
            out_dir: out_dir.into(),
            broker_url: broker_url.into(),
            bits: DEFAULT_RSA_BITS,
            company_id: DEFAULT_COMPANY_ID,
            force: false,
            name: String::new(),
            timezone: "UTC".to_owned(),
            coordinates: None,
            kek: KekSource::Auto,
        }
    }
}

/// What [`add_lock_with`] wrote.
#[derive(Debug, Clone)]
pub struct AddedLock {
    /// The registered lock.
    pub lock_id: LockId,
    /// `DIR/lock.key.pem` (0600).
    pub key_file: PathBuf,
    /// `DIR/issuer.pub.pem`.
    pub issuer_pub_file: PathBuf,
    /// `DIR/lock.toml` (0600: the broker URL may carry a password).
    pub config_file: PathBuf,
    /// SHA-256 of the lock's SPKI DER, hex.
    pub fingerprint: String,
}

/// Generates a lock's key pair, writes `out_dir/{lock.key.pem, issuer.pub.pem, lock.toml}`
/// and registers the lock's public key. Returns the lock id.
pub fn add_lock(
    state_dir: &Path,
    lock_id: Option<LockId>,
    out_dir: &Path,
    broker_url: &str,
) -> Result<LockId, IssuerdError> {
    let mut opts = AddLockOptions::new(out_dir, broker_url);
    opts.lock_id = lock_id;
    add_lock_with(state_dir, &opts).map(|a| a.lock_id)
}

/// [`add_lock`] with options.
pub fn add_lock_with(state_dir: &Path, opts: &AddLockOptions) -> Result<AddedLock, IssuerdError> {
    let paths = StatePaths::new(state_dir);
    check_broker_url(&opts.broker_url)?;
    let issuer_pub_pem = read_issuer_pub(&paths)?;
    let mut store = Store::open(&paths, &opts.kek, OpenMode::Create)?;
    let mut rng = os_rng()?;
    let lock_id = opts.lock_id.unwrap_or_else(|| LockId::random(&mut rng));
    // Cheap checks first: key generation takes a second.
    if !opts.force && store.lock(&lock_id)?.is_some() {
        return Err(IssuerdError::LockExists(lock_id));
    }
    let (added, public_key) = write_lock_files(opts, lock_id, &issuer_pub_pem)?;
    let lock = NewLock {
        lock_id,
        public_key,
        name: opts.name.clone(),
        timezone: opts.timezone.clone(),
        coordinates: opts.coordinates,
    };
    store.add_lock(&lock, opts.force, time::now().0, ACTOR_CLI)?;
    Ok(added)
}

/// Gives the registered lock `opts.lock_id` a new key pair and writes its new files to
/// `opts.out_dir` (existing ones only with `force`). Its id, description and access rules
/// stay; grants issued before are wrapped to the old key, so install the new files on the
/// lock at once. `opts.name`, `timezone` and `coordinates` are not used.
pub fn rotate_lock_key(state_dir: &Path, opts: &AddLockOptions) -> Result<AddedLock, IssuerdError> {
    let paths = StatePaths::new(state_dir);
    check_broker_url(&opts.broker_url)?;
    let Some(lock_id) = opts.lock_id else {
        return Err(IssuerdError::invalid(
            "rotate-lock-key",
            "name the lock (--lock HEX)",
        ));
    };
    let issuer_pub_pem = read_issuer_pub(&paths)?;
    let mut store = Store::open(&paths, &opts.kek, OpenMode::Existing)?;
    if store.lock(&lock_id)?.is_none() {
        return Err(IssuerdError::LockNotRegistered(lock_id));
    }
    let (added, public_key) = write_lock_files(opts, lock_id, &issuer_pub_pem)?;
    store.rotate_lock_key(&lock_id, &public_key, time::now().0, ACTOR_CLI)?;
    Ok(added)
}

/// Changes a lock's name, time zone or position.
pub fn update_lock(
    state_dir: &Path,
    kek: &KekSource,
    lock_id: &LockId,
    update: &LockUpdate,
) -> Result<(), IssuerdError> {
    let mut store = Store::open(&StatePaths::new(state_dir), kek, OpenMode::Existing)?;
    store.update_lock(lock_id, update, time::now().0, ACTOR_CLI)
}

/// Generates the lock's key and writes its three files.
fn write_lock_files(
    opts: &AddLockOptions,
    lock_id: LockId,
    issuer_pub_pem: &str,
) -> Result<(AddedLock, RsaPublicKey), IssuerdError> {
    fsutil::ensure_private_dir(&opts.out_dir, false)?;
    let out_dir = absolute(&opts.out_dir)?;
    let key_file = out_dir.join("lock.key.pem");
    let issuer_pub_file = out_dir.join("issuer.pub.pem");
    let config_file = out_dir.join("lock.toml");
    if !opts.force {
        for f in [&key_file, &config_file] {
            if f.exists() {
                return Err(IssuerdError::AlreadyExists { path: f.clone() });
            }
        }
    }
    let mut rng = os_rng()?;
    let key = RsaPrivateKey::generate_with(crate::keys::rsa_provider(), &mut rng, opts.bits)
        .map_err(IssuerdError::Key)?;
    let public_key = key.public_key();
    let lock_toml = lock_toml(
        lock_id,
        &key_file,
        &issuer_pub_file,
        &out_dir.join("state"),
        &opts.broker_url,
        opts.company_id,
    )?;
    fsutil::write_atomic(
        &key_file,
        keys::private_key_pem(&key)?.as_bytes(),
        PRIVATE_FILE,
    )?;
    fsutil::write_atomic(&issuer_pub_file, issuer_pub_pem.as_bytes(), PUBLIC_FILE)?;
    fsutil::write_atomic(&config_file, lock_toml.as_bytes(), PRIVATE_FILE)?;
    Ok((
        AddedLock {
            lock_id,
            key_file,
            issuer_pub_file,
            config_file,
            fingerprint: keys::fingerprint(&public_key)?,
        },
        public_key,
    ))
}

pub(crate) fn check_broker_url(url: &str) -> Result<(), IssuerdError> {
    MqttUrl::parse(url)
        .map(|_| ())
        .map_err(|source| IssuerdError::BrokerUrl {
            url: redact_url(url),
            source,
        })
}

/// The URL with any password replaced, for error messages.
pub(crate) fn redact_url(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((userinfo, host)) => match userinfo.split_once(':') {
                Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
                None => url.to_owned(),
            },
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

fn read_issuer_pub(paths: &StatePaths) -> Result<String, IssuerdError> {
    let path = paths.issuer_pub();
    if !path.exists() {
        return Err(IssuerdError::NoIssuerKey { path });
    }
    let pem = std::fs::read_to_string(&path).map_err(IssuerdError::io("read", &path))?;
    // Validate it: a broken file copied to every lock would fail every grant there.
    keys::parse_public_key_pem(pem.as_bytes(), "issuer public key", &path)?;
    Ok(pem)
}

fn absolute(p: &Path) -> Result<PathBuf, IssuerdError> {
    std::fs::canonicalize(p).map_err(IssuerdError::io("resolve", p))
}

fn toml_path(p: &Path) -> Result<String, IssuerdError> {
    let s = p.to_str().ok_or_else(|| {
        IssuerdError::Config(format!(
            "path {} is not UTF-8 and cannot go into lock.toml",
            p.display()
        ))
    })?;
    Ok(toml_str(s))
}

fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// A ready `lock.toml` for the lock daemon (docs/daemons.md, "Lock").
fn lock_toml(
    lock_id: LockId,
    key_file: &Path,
    issuer_pub_file: &Path,
    state_dir: &Path,
    broker_url: &str,
    company_id: u16,
) -> Result<String, IssuerdError> {
    Ok(format!(
        "# Latchkey lock configuration, written by `latchkey-issuer add-lock`.\n\
         # lock.key.pem is this lock's private key: keep it mode 0600 on the lock only.\n\
         lock_id = \"{lock_id}\"\n\
         lock_key_file = {key}\n\
         issuer_public_key_file = {issuer}\n\
         state_dir = {state}\n\
         company_id = {company_id}\n\
         \n\
         [mqtt]\n\
         url = {url}\n\
         # For mqtts://, with mutual TLS the certificate CN is the lock id:\n\
         # ca_file = \"/etc/latchkey/ca.pem\"\n\
         # cert_file = \"/etc/latchkey/lock.crt\"\n\
         # key_file = \"/etc/latchkey/lock.key\"\n\
         \n\
         [ble]\n\
         # \"hci0\" (BlueZ adapter) or \"sim\" (simulated air, for tests).\n\
         adapter = \"hci0\"\n\
         \n\
         # What an unlock does; without this section it is only logged.\n\
         # [unlock]\n\
         # command = \"/usr/local/bin/open-door\"\n\
         # gpio = {{ chip = \"/dev/gpiochip0\", line = 17, pulse_ms = 1500 }}\n",
        key = toml_path(key_file)?,
        issuer = toml_path(issuer_pub_file)?,
        state = toml_path(state_dir)?,
        url = toml_str(broker_url),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_url_hides_only_the_password() {
        assert_eq!(redact_url("mqtt://u:pw@h:1"), "mqtt://u:***@h:1");
        assert_eq!(redact_url("mqtt://u@h:1"), "mqtt://u@h:1");
        assert_eq!(redact_url("mqtt://h:1"), "mqtt://h:1");
    }

    #[test]
    fn lock_toml_parses_and_quotes_paths() {
        let text = lock_toml(
            LockId([7; 16]),
            Path::new("/a \"b\"/lock.key.pem"),
            Path::new("/a/issuer.pub.pem"),
            Path::new("/a/state"),
            "mqtt://127.0.0.1:1883",
            0xFFFF,
        )
        .unwrap();
        let v: toml::Table = toml::from_str(&text).unwrap();
        assert_eq!(v["lock_key_file"].as_str(), Some("/a \"b\"/lock.key.pem"));
        assert_eq!(v["mqtt"]["url"].as_str(), Some("mqtt://127.0.0.1:1883"));
        assert_eq!(v["company_id"].as_integer(), Some(65535));
        assert_eq!(
            v["lock_id"].as_str(),
            Some(LockId([7; 16]).to_string().as_str())
        );
    }
}
