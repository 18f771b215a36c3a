//! The optional TOML config file of the `latchkey-guest` command (`--config guest.toml`).
//! Every key is optional; command-line flags override it. See `guest/guest.example.toml`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use latchkey_transport::mqtt::{ClientAuthFiles, MqttConfig, MqttUrl, MqttUrlError, TlsFiles};
use serde::Deserialize;

use crate::bundle::EnrollmentBundle;
use crate::options::{GuestOptions, client_id};

/// Default state directory (holds `enrollment.json`).
pub const DEFAULT_STATE_DIR: &str = "./guest-state";
/// File name of the stored bundle inside the state directory.
pub const BUNDLE_FILE: &str = "enrollment.json";
/// Folder of STATE_DIR where accepted grants are kept across restarts.
pub const GRANTS_DIR: &str = "grants";

/// The config file's contents.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Where `enroll` stores the bundle and `unlock` reads it.
    pub state_dir: Option<PathBuf>,
    /// Read the bundle from this file instead of `STATE_DIR/enrollment.json`.
    pub bundle: Option<PathBuf>,
    /// MQTT topic prefix (default `latchkey/v1`).
    pub topic_prefix: Option<String>,
    /// Grant validity to request, seconds.
    pub grant_validity_s: Option<u32>,
    /// Company id to advertise under (default: the bundle's).
    pub company_id: Option<u16>,
    /// Broker connection.
    #[serde(default)]
    pub mqtt: MqttSection,
    /// Radio.
    #[serde(default)]
    pub ble: BleSection,
    /// Time limits.
    #[serde(default)]
    pub timeouts: TimeoutsSection,
}

/// `[mqtt]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttSection {
    /// Broker URL (default: the bundle's `broker_url`).
    pub url: Option<String>,
    /// CA certificate(s) for `mqtts://` (default: the system roots).
    pub ca_file: Option<PathBuf>,
    /// Client certificate for mutual TLS (CN = the guest id).
    pub cert_file: Option<PathBuf>,
    /// Client private key for mutual TLS (must be mode 0600).
    pub key_file: Option<PathBuf>,
}

/// `[ble]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BleSection {
    /// `"hci0"`, `"hci1"`, … or `"sim"`.
    pub adapter: Option<String>,
    /// Add the Flags AD to beacons, as phone stacks do (default false).
    pub beacon_flags: Option<bool>,
}

/// `[timeouts]`, in seconds.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeoutsSection {
    /// Waiting for the broker's CONNACK.
    pub mqtt_connect_s: Option<f64>,
    /// Waiting for the grant.
    pub grant_s: Option<f64>,
    /// Re-requesting a grant.
    pub grant_retry_s: Option<f64>,
    /// The BLE attempt.
    pub attempt_s: Option<f64>,
    /// Finding and connecting to the lock.
    pub connect_s: Option<f64>,
}

/// Why the config file is unusable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigFileError {
    /// It cannot be read.
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// It is not valid TOML for this program.
    #[error("config file {}: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message (line, column, which key).
        message: String,
    },
    /// A value is out of range.
    #[error("{what} must be {expected}, got {got}")]
    Invalid {
        /// The setting.
        what: &'static str,
        /// Its allowed values.
        expected: &'static str,
        /// What was given.
        got: String,
    },
    /// The broker URL does not parse.
    #[error("broker URL: {0}")]
    BrokerUrl(#[from] MqttUrlError),
    /// A TLS private key file is readable by others.
    #[error(
        "MQTT client key {} is readable by group or others (mode {mode:04o}); fix it with: \
         chmod 600 {}",
        path.display(),
        path.display()
    )]
    KeyNotPrivate {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A TLS private key file cannot be examined.
    #[error("cannot read MQTT client key {}: {source}", path.display())]
    KeyRead {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Client certificate without key or the other way round.
    #[error("[mqtt] cert_file and key_file go together: set both or neither")]
    HalfClientAuth,
}

impl ConfigFile {
    /// Reads and parses a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigFileError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text).map_err(|message| ConfigFileError::Parse {
            path: path.to_owned(),
            message,
        })
    }

    /// Parses config text; the error is the parser's message.
    pub fn parse(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// The state directory (default `./guest-state`).
    pub fn state_dir(&self) -> PathBuf {
        self.state_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR))
    }

    /// Where the bundle is read from.
    pub fn bundle_path(&self) -> PathBuf {
        self.bundle
            .clone()
            .unwrap_or_else(|| self.state_dir().join(BUNDLE_FILE))
    }

    /// [`GuestOptions`] for `bundle` with this file's settings applied.
    pub fn options(&self, bundle: EnrollmentBundle) -> Result<GuestOptions, ConfigFileError> {
        let mut opts = GuestOptions::new(bundle);
        opts.mqtt = self.mqtt_config(&opts.bundle)?;
        if let Some(p) = &self.topic_prefix {
            opts.topic_prefix = p.clone();
        }
        if let Some(v) = self.grant_validity_s {
            opts.grant_validity_s = v;
        }
        if let Some(c) = self.company_id {
            opts.company_id = c;
        }
        let t = &self.timeouts;
        let slots = [
            (
                "[timeouts] mqtt_connect_s",
                t.mqtt_connect_s,
                &mut opts.timeouts.mqtt_connect,
            ),
            ("[timeouts] grant_s", t.grant_s, &mut opts.timeouts.grant),
            (
                "[timeouts] grant_retry_s",
                t.grant_retry_s,
                &mut opts.timeouts.grant_retry,
            ),
            (
                "[timeouts] attempt_s",
                t.attempt_s,
                &mut opts.timeouts.attempt,
            ),
            (
                "[timeouts] connect_s",
                t.connect_s,
                &mut opts.timeouts.connect,
            ),
        ];
        for (what, value, slot) in slots {
            if let Some(s) = value {
                *slot = seconds(what, s)?;
            }
        }
        Ok(opts)
    }

    fn mqtt_config(&self, bundle: &EnrollmentBundle) -> Result<MqttConfig, ConfigFileError> {
        let url = match &self.mqtt.url {
            Some(u) => MqttUrl::parse(u)?,
            None => bundle.broker_url().clone(),
        };
        let mut cfg = MqttConfig::new(url, client_id(bundle));
        let m = &self.mqtt;
        let client_auth = match (&m.cert_file, &m.key_file) {
            (None, None) => None,
            (Some(cert), Some(key)) => {
                check_private_key(key)?;
                Some(ClientAuthFiles {
                    cert_file: cert.clone(),
                    key_file: key.clone(),
                })
            }
            _ => return Err(ConfigFileError::HalfClientAuth),
        };
        if m.ca_file.is_some() || client_auth.is_some() {
            cfg.tls = Some(TlsFiles {
                ca_file: m.ca_file.clone(),
                client_auth,
            });
        }
        Ok(cfg)
    }
}

/// A positive, finite number of seconds.
pub fn seconds(what: &'static str, s: f64) -> Result<Duration, ConfigFileError> {
    if s.is_finite() && s > 0.0 && s <= 86_400.0 {
        Ok(Duration::from_secs_f64(s))
    } else {
        Err(ConfigFileError::Invalid {
            what,
            expected: "a number of seconds in (0, 86400]",
            got: s.to_string(),
        })
    }
}

/// Which radio to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BleChoice {
    /// A BlueZ adapter by name (`hci0`, …).
    Adapter(String),
    /// The simulated air (nothing else on it: exercises the MQTT part only).
    Sim,
}

impl FromStr for BleChoice {
    type Err = ConfigFileError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "sim" => Ok(Self::Sim),
            a if !a.is_empty() && a.chars().all(|c| c.is_ascii_alphanumeric()) => {
                Ok(Self::Adapter(a.to_owned()))
            }
            _ => Err(ConfigFileError::Invalid {
                what: "the BLE adapter",
                expected: "an adapter name such as hci0, or sim",
                got: format!("{s:?}"),
            }),
        }
    }
}

fn check_private_key(path: &Path) -> Result<(), ConfigFileError> {
    let meta = std::fs::metadata(path).map_err(|source| ConfigFileError::KeyRead {
        path: path.to_owned(),
        source,
    })?;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(ConfigFileError::KeyNotPrivate {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}
