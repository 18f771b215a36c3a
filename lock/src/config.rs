//! The lock's TOML config file (`lock.toml`) and command-line overrides, turned into
//! [`LockOptions`]. Relative paths in the file are resolved against the file's directory;
//! relative paths on the command line against the working directory.
//!
//! See `lock/lock.example.toml` for every key with comments.

use std::path::{Path, PathBuf};
use std::time::Duration;

use latchkey::LockId;
use latchkey_transport::mqtt::{ClientAuthFiles, MqttConfig, MqttUrl, TlsFiles};
use serde::Deserialize;

use crate::keys::{self, KeyFileError};
use crate::options::{
    self, DEFAULT_EVENT_BURST, DEFAULT_EVENTS_PER_SEC, DEFAULT_STATUS_INTERVAL_S, LockOptions,
    STATUS_INTERVAL_RANGE_S, StatusOptions, Tunables,
};
use crate::unlock_action::{DEFAULT_COMMAND_TIMEOUT, GpioAction, UnlockAction};

/// State directory used when neither the file nor the command line names one.
pub const DEFAULT_STATE_DIR: &str = "lock-state";
/// Bluetooth adapter used when none is configured.
pub const DEFAULT_ADAPTER: &str = "hci0";
/// GPIO pulse length when `pulse_ms` is not given.
pub const DEFAULT_PULSE_MS: u64 = 1_500;

/// Why the configuration cannot be used. Messages name the key or file at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file cannot be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The config file is not valid TOML for this schema (unknown keys included).
    #[error("config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, with line and column.
        message: String,
    },
    /// A required value is set neither in the file nor on the command line.
    #[error("`{key}` is not set: put it in the config file or pass {flag}")]
    Missing {
        /// The config key.
        key: &'static str,
        /// The command-line flag.
        flag: &'static str,
    },
    /// A value is out of range or malformed.
    #[error("`{key}`: {message}")]
    Invalid {
        /// The config key.
        key: &'static str,
        /// What is wrong.
        message: String,
    },
    /// A key file cannot be used.
    #[error(transparent)]
    Key(#[from] KeyFileError),
}

fn invalid(key: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        message: message.into(),
    }
}

/// The file's schema. Every field is optional here; what is required is checked after the
/// command-line overrides are applied.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockFileConfig {
    /// Lock id, 32 lowercase hex digits.
    pub lock_id: Option<String>,
    /// PKCS#8 PEM private key of the lock (mode 0600).
    pub lock_key_file: Option<PathBuf>,
    /// SPKI PEM public key of the issuer.
    pub issuer_public_key_file: Option<PathBuf>,
    /// Where accepted grants and revocations are stored.
    pub state_dir: Option<PathBuf>,
    /// Bluetooth SIG company id of the beacons.
    pub company_id: Option<u16>,
    /// MQTT topic prefix (also accepted as `mqtt.topic_prefix`).
    pub topic_prefix: Option<String>,
    /// `[mqtt]`.
    #[serde(default)]
    pub mqtt: MqttSection,
    /// `[ble]`.
    #[serde(default)]
    pub ble: BleSection,
    /// `[tunables]`: spec §9.
    #[serde(default)]
    pub tunables: Tunables,
    /// `[unlock]`.
    #[serde(default)]
    pub unlock: UnlockSection,
    /// `[events]`.
    #[serde(default)]
    pub events: EventsSection,
    /// `[status]`: the LockStatus heartbeat.
    #[serde(default)]
    pub status: StatusSection,
}

/// `[mqtt]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttSection {
    /// `mqtt://host:port` or `mqtts://host:port` (credentials may be in the URL).
    pub url: Option<String>,
    /// CA certificate(s) of the broker (PEM), for `mqtts://`.
    pub ca_file: Option<PathBuf>,
    /// Client certificate for mutual TLS (PEM).
    pub cert_file: Option<PathBuf>,
    /// Client private key for mutual TLS (PEM, mode 0600).
    pub key_file: Option<PathBuf>,
    /// Client id; default `latchkey-lock-{lock_id}`. Keep it stable: it keys the session.
    pub client_id: Option<String>,
    /// Keep-alive in seconds (default 30).
    pub keep_alive_s: Option<u64>,
    /// Topic prefix (alternative to the top-level `topic_prefix`).
    pub topic_prefix: Option<String>,
}

/// `[ble]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BleSection {
    /// `hciN`, or `sim` (in-process only).
    pub adapter: Option<String>,
}

/// `[unlock]`: `command`, or `gpio`, or neither (log only).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnlockSection {
    /// Shell command run on unlock.
    pub command: Option<String>,
    /// Command timeout in seconds (default 10).
    pub timeout_s: Option<u64>,
    /// GPIO pulse.
    pub gpio: Option<GpioSection>,
}

/// `[unlock] gpio = { chip, line, pulse_ms, active_low }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GpioSection {
    /// Chip device, default `/dev/gpiochip0`.
    #[serde(default = "default_chip")]
    pub chip: PathBuf,
    /// Line offset.
    pub line: u32,
    /// Pulse length in ms (default 1500).
    #[serde(default = "default_pulse_ms")]
    pub pulse_ms: u64,
    /// Active means electrically low.
    #[serde(default)]
    pub active_low: bool,
}

fn default_chip() -> PathBuf {
    PathBuf::from("/dev/gpiochip0")
}

fn default_pulse_ms() -> u64 {
    DEFAULT_PULSE_MS
}

/// `[events]`: the token bucket of the rejection events (kind 2). The other events are
/// never rate limited.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EventsSection {
    /// Sustained rejection events per second (default 10; 0 with burst 0 publishes none).
    pub per_second: u32,
    /// Burst size (default 50).
    pub burst: u32,
}

impl Default for EventsSection {
    fn default() -> Self {
        Self {
            per_second: DEFAULT_EVENTS_PER_SEC,
            burst: DEFAULT_EVENT_BURST,
        }
    }
}

/// `[status]`: the LockStatus heartbeat (spec §6.10).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StatusSection {
    /// Seconds between two reports, 10..=3600 (default 60).
    pub interval_s: u64,
    /// Battery charge in percent, e.g. `/sys/class/power_supply/BAT0/capacity`.
    pub battery_capacity_file: Option<PathBuf>,
    /// `1` while on mains power, e.g. `/sys/class/power_supply/AC/online`.
    pub mains_online_file: Option<PathBuf>,
    /// Exists while the clock is synchronised, e.g. `/run/systemd/timesync/synchronized`.
    pub clock_synced_file: Option<PathBuf>,
}

impl Default for StatusSection {
    fn default() -> Self {
        Self {
            interval_s: DEFAULT_STATUS_INTERVAL_S,
            battery_capacity_file: None,
            mains_online_file: None,
            clock_synced_file: None,
        }
    }
}

impl StatusSection {
    fn options(&self) -> Result<StatusOptions, ConfigError> {
        if !STATUS_INTERVAL_RANGE_S.contains(&self.interval_s) {
            return Err(invalid(
                "status.interval_s",
                format!(
                    "{} is outside {}..={} seconds",
                    self.interval_s,
                    STATUS_INTERVAL_RANGE_S.start(),
                    STATUS_INTERVAL_RANGE_S.end()
                ),
            ));
        }
        Ok(StatusOptions {
            interval: Duration::from_secs(self.interval_s),
            battery_capacity_file: self.battery_capacity_file.clone(),
            mains_online_file: self.mains_online_file.clone(),
            clock_synced_file: self.clock_synced_file.clone(),
        })
    }
}

impl LockFileConfig {
    /// Parses TOML text; `path` is only used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })
    }

    /// Reads and parses a config file.
    pub fn read(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Resolves relative paths against `base` (the config file's directory).
    fn resolve_paths(&mut self, base: &Path) {
        let fix = |p: &mut Option<PathBuf>| {
            if let Some(path) = p.as_mut()
                && path.is_relative()
            {
                *path = base.join(&*path);
            }
        };
        fix(&mut self.lock_key_file);
        fix(&mut self.issuer_public_key_file);
        fix(&mut self.state_dir);
        fix(&mut self.mqtt.ca_file);
        fix(&mut self.mqtt.cert_file);
        fix(&mut self.mqtt.key_file);
        fix(&mut self.status.battery_capacity_file);
        fix(&mut self.status.mains_online_file);
        fix(&mut self.status.clock_synced_file);
        if let Some(g) = self.unlock.gpio.as_mut()
            && g.chip.is_relative()
        {
            g.chip = base.join(&g.chip);
        }
    }
}

/// Values given on the command line; each replaces the file's.
#[derive(Debug, Clone, Default)]
pub struct ConfigOverrides {
    /// `--lock-id`.
    pub lock_id: Option<String>,
    /// `--lock-key-file`.
    pub lock_key_file: Option<PathBuf>,
    /// `--issuer-public-key-file`.
    pub issuer_public_key_file: Option<PathBuf>,
    /// `--state-dir`.
    pub state_dir: Option<PathBuf>,
    /// `--broker`.
    pub broker_url: Option<String>,
    /// `--ca-file`.
    pub ca_file: Option<PathBuf>,
    /// `--cert-file`.
    pub cert_file: Option<PathBuf>,
    /// `--key-file`.
    pub key_file: Option<PathBuf>,
    /// `--client-id`.
    pub client_id: Option<String>,
    /// `--topic-prefix`.
    pub topic_prefix: Option<String>,
    /// `--ble`.
    pub adapter: Option<String>,
    /// `--company-id`.
    pub company_id: Option<u16>,
    /// `--rssi-threshold-dbm`.
    pub rssi_threshold_dbm: Option<i16>,
    /// `--unlock-command` (replaces a configured GPIO action too).
    pub unlock_command: Option<String>,
}

/// The Bluetooth adapter to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BleAdapter {
    /// A BlueZ adapter such as `hci0`.
    Hci(String),
    /// The in-process simulated air: only meaningful inside one process (demo, tests).
    Sim,
}

/// A fully loaded configuration: the daemon's options plus what only the binary needs.
#[derive(Debug, Clone)]
pub struct LoadedLockConfig {
    /// The daemon's options, keys loaded.
    pub options: LockOptions,
    /// The Bluetooth adapter.
    pub adapter: BleAdapter,
    /// The config file, if one was read.
    pub config_file: Option<PathBuf>,
}

impl LoadedLockConfig {
    /// Loads `path` (keys included) into [`LockOptions`], without overrides.
    pub fn from_file(path: impl AsRef<Path>) -> Result<LockOptions, ConfigError> {
        Self::load(Some(path.as_ref()), &ConfigOverrides::default()).map(|c| c.options)
    }

    /// Loads the config file (if any), applies `overrides`, checks everything and loads
    /// the keys.
    pub fn load(path: Option<&Path>, overrides: &ConfigOverrides) -> Result<Self, ConfigError> {
        let file = match path {
            Some(p) => {
                let mut f = LockFileConfig::read(p)?;
                let base = p.parent().unwrap_or(Path::new("."));
                f.resolve_paths(if base.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    base
                });
                f
            }
            None => LockFileConfig::default(),
        };
        let mut loaded = Self::from_parts(file, overrides)?;
        loaded.config_file = path.map(Path::to_owned);
        Ok(loaded)
    }

    /// Builds the configuration from a parsed file (paths already resolved) and overrides.
    pub fn from_parts(
        file: LockFileConfig,
        overrides: &ConfigOverrides,
    ) -> Result<Self, ConfigError> {
        let o = overrides;
        let lock_id_text = pick(&o.lock_id, &file.lock_id).ok_or(ConfigError::Missing {
            key: "lock_id",
            flag: "--lock-id",
        })?;
        let lock_id: LockId = lock_id_text
            .parse()
            .map_err(|e| invalid("lock_id", format!("{e} (expected 32 hex digits)")))?;

        let prefix = match (&file.topic_prefix, &file.mqtt.topic_prefix) {
            (Some(a), Some(b)) if a != b => {
                return Err(invalid(
                    "topic_prefix",
                    "set both at the top level and in [mqtt] with different values",
                ));
            }
            (a, b) => a.clone().or_else(|| b.clone()),
        };
        let topic_prefix = pick(&o.topic_prefix, &prefix)
            .unwrap_or_else(|| latchkey::topics::DEFAULT_PREFIX.to_owned());
        check_prefix(&topic_prefix)?;

        let adapter = match pick(&o.adapter, &file.ble.adapter)
            .unwrap_or_else(|| DEFAULT_ADAPTER.to_owned())
            .as_str()
        {
            "sim" => BleAdapter::Sim,
            name if name
                .strip_prefix("hci")
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())) =>
            {
                BleAdapter::Hci(name.to_owned())
            }
            other => {
                return Err(invalid(
                    "ble.adapter",
                    format!(
                        "{other:?} is neither a BlueZ adapter name (hci0, hci1, …) nor \"sim\""
                    ),
                ));
            }
        };

        let mqtt = mqtt_config(&file.mqtt, o, &lock_id)?;
        let unlock = unlock_action(&file.unlock, o)?;

        let events = file.events;
        if events.per_second > 0 && events.burst == 0 {
            return Err(invalid(
                "events.burst",
                "must be at least 1 when events.per_second > 0",
            ));
        }
        let status = file.status.options()?;

        let mut tunables = file.tunables;
        if let Some(r) = o.rssi_threshold_dbm {
            tunables.rssi_threshold_dbm = r;
        }

        let lock_key_file =
            pick(&o.lock_key_file, &file.lock_key_file).ok_or(ConfigError::Missing {
                key: "lock_key_file",
                flag: "--lock-key-file",
            })?;
        let issuer_key_file = pick(&o.issuer_public_key_file, &file.issuer_public_key_file).ok_or(
            ConfigError::Missing {
                key: "issuer_public_key_file",
                flag: "--issuer-public-key-file",
            },
        )?;
        let lock_key = keys::load_private_key(&lock_key_file)?;
        let issuer_key = keys::load_public_key(&issuer_key_file)?;

        let state_dir =
            pick(&o.state_dir, &file.state_dir).unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR));

        let options = LockOptions {
            lock_id,
            lock_key,
            issuer_key,
            mqtt,
            topic_prefix,
            company_id: o
                .company_id
                .or(file.company_id)
                .unwrap_or(latchkey::constants::DEFAULT_COMPANY_ID),
            tunables,
            state_dir: Some(state_dir),
            unlock,
            event_rate: (events.per_second, events.burst),
            status,
        };
        // Range-check the tunables now, with the core's own message.
        options
            .lock_config()
            .validate()
            .map_err(|e| invalid("tunables", e.to_string()))?;
        Ok(Self {
            options,
            adapter,
            config_file: None,
        })
    }
}

fn pick<T: Clone>(cli: &Option<T>, file: &Option<T>) -> Option<T> {
    cli.clone().or_else(|| file.clone())
}

/// A topic prefix is a plain topic: no wildcards, no empty levels at the ends.
fn check_prefix(prefix: &str) -> Result<(), ConfigError> {
    if prefix.is_empty()
        || prefix.starts_with('/')
        || prefix.ends_with('/')
        || prefix.contains(['+', '#', '\0'])
    {
        return Err(invalid(
            "topic_prefix",
            format!(
                "{prefix:?} must be non-empty, without '+', '#', NUL or a leading/trailing '/'"
            ),
        ));
    }
    Ok(())
}

/// Checks a topic prefix given to the library directly.
pub(crate) fn validate_prefix(prefix: &str) -> Result<(), ConfigError> {
    check_prefix(prefix)
}

fn mqtt_config(
    m: &MqttSection,
    o: &ConfigOverrides,
    lock_id: &LockId,
) -> Result<MqttConfig, ConfigError> {
    let url_text = pick(&o.broker_url, &m.url).ok_or(ConfigError::Missing {
        key: "mqtt.url",
        flag: "--broker",
    })?;
    let url = MqttUrl::parse(&url_text).map_err(|e| invalid("mqtt.url", e.to_string()))?;
    let client_id = pick(&o.client_id, &m.client_id).unwrap_or_else(|| options::client_id(lock_id));
    let mut cfg = MqttConfig::new(url, client_id);
    if let Some(ka) = m.keep_alive_s {
        cfg.keep_alive = Duration::from_secs(ka);
    }
    let ca_file = pick(&o.ca_file, &m.ca_file);
    let cert_file = pick(&o.cert_file, &m.cert_file);
    let key_file = pick(&o.key_file, &m.key_file);
    let client_auth = match (cert_file, key_file) {
        (Some(cert_file), Some(key_file)) => {
            // The MQTT client key is as secret as the lock key.
            keys::check_private_file_mode(&key_file)?;
            Some(ClientAuthFiles {
                cert_file,
                key_file,
            })
        }
        (None, None) => None,
        (Some(_), None) => return Err(invalid("mqtt.key_file", "mqtt.cert_file needs it")),
        (None, Some(_)) => return Err(invalid("mqtt.cert_file", "mqtt.key_file needs it")),
    };
    if ca_file.is_some() || client_auth.is_some() {
        if !cfg.url.is_tls() {
            return Err(invalid(
                "mqtt.url",
                "TLS files are configured but the URL is mqtt://; use mqtts://",
            ));
        }
        cfg.tls = Some(TlsFiles {
            ca_file,
            client_auth,
        });
    } else if cfg.url.is_tls() {
        cfg.tls = Some(TlsFiles::default());
    }
    // Surface TLS file and keep-alive problems now rather than at connect.
    cfg.mqtt_options()
        .map_err(|e| invalid("mqtt", e.to_string()))?;
    Ok(cfg)
}

fn unlock_action(u: &UnlockSection, o: &ConfigOverrides) -> Result<UnlockAction, ConfigError> {
    let timeout = u
        .timeout_s
        .map_or(DEFAULT_COMMAND_TIMEOUT, Duration::from_secs);
    if u.timeout_s == Some(0) {
        return Err(invalid("unlock.timeout_s", "must be at least 1"));
    }
    if let Some(command) = &o.unlock_command {
        return Ok(UnlockAction::Command {
            command: command.clone(),
            timeout,
        });
    }
    match (&u.command, &u.gpio) {
        (Some(_), Some(_)) => Err(invalid(
            "unlock",
            "set either `command` or `gpio`, not both",
        )),
        (Some(command), None) => {
            if command.trim().is_empty() {
                return Err(invalid("unlock.command", "is empty"));
            }
            Ok(UnlockAction::Command {
                command: command.clone(),
                timeout,
            })
        }
        (None, Some(g)) => {
            if u.timeout_s.is_some() {
                return Err(invalid(
                    "unlock.timeout_s",
                    "only applies to unlock.command",
                ));
            }
            if !(1..=60_000).contains(&g.pulse_ms) {
                return Err(invalid("unlock.gpio.pulse_ms", "must be in 1..=60000"));
            }
            Ok(UnlockAction::Gpio(GpioAction {
                chip: g.chip.clone(),
                line: g.line,
                pulse: Duration::from_millis(g.pulse_ms),
                active_low: g.active_low,
            }))
        }
        (None, None) => {
            if u.timeout_s.is_some() {
                return Err(invalid(
                    "unlock.timeout_s",
                    "only applies to unlock.command",
                ));
            }
            Ok(UnlockAction::Log)
        }
    }
}

/// Parses a company id given as decimal or `0x`-prefixed hex.
pub fn parse_company_id(text: &str) -> Result<u16, String> {
    let t = text.trim();
    let parsed = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => u16::from_str_radix(hex, 16),
        None => t.parse(),
    };
    parsed.map_err(|_| format!("{text:?} is not a 16-bit company id (e.g. 0xFFFF or 65535)"))
}
