//! Configuration: the library's [`IssuerOptions`], the TOML config file (`--config
//! issuer.toml`) and how command-line flags override it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use latchkey::constants as c;
use latchkey::topics::DEFAULT_PREFIX;
use latchkey_transport::mqtt::{ClientAuthFiles, MqttConfig, MqttUrl, TlsFiles};
use serde::Deserialize;

use crate::anomaly::{
    AnomalyConfig, FailureBurstConfig, ImpossibleTravelConfig, MemoryLimits, RevokedGuestConfig,
    UnusualHourConfig,
};
use crate::commands::redact_url;
use crate::error::IssuerdError;
use crate::policy::AccountingWindow;
use crate::store::KekSource;
use crate::store::kek::KEK_ENV;
use crate::web::WebConfig;

/// The stable MQTT client id of the issuer (its persistent session on the broker).
pub const DEFAULT_CLIENT_ID: &str = "latchkey-issuer";
/// Where the embedded broker listens by default.
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 1883);
/// The state directory used when none is configured.
pub const DEFAULT_STATE_DIR: &str = "./issuer-state";
/// First re-publish of an unconfirmed revocation; the interval doubles up to 15 minutes.
pub const DEFAULT_REVOCATION_RETRY: Duration = Duration::from_secs(30);
/// Issuer default for the longest grant (spec §9).
pub const DEFAULT_MAX_GRANT_VALIDITY_S: u64 = 3_600;
/// Issuer default for how many live grants are tracked (spec §9).
pub const DEFAULT_MAX_LIVE_GRANTS: usize = 1_000_000;
/// How long audit entries are kept by default.
pub const DEFAULT_AUDIT_RETENTION_DAYS: u64 = 365;
/// Days of audit trail the anomaly engine replays at start (two half-lives of the
/// unusual-hour histograms, docs/anomaly.md); their alerts are discarded.
pub const DEFAULT_ANOMALY_WARMUP_DAYS: u32 = 60;

/// The unlock accounting's window (docs/policy.md): the lock's default clock skew as the
/// margin, and the issuer's `event_window_s`.
pub fn accounting_window(event_window_s: u64) -> AccountingWindow {
    AccountingWindow {
        max_clock_skew_s: c::MAX_CLOCK_SKEW_S.default,
        event_window_s,
    }
}

/// The anomaly engine of the daemon.
#[derive(Debug, Clone, PartialEq)]
pub struct AnomalyOptions {
    /// The detectors' settings.
    pub config: AnomalyConfig,
    /// Days of audit trail replayed at start to learn habits (0: none).
    pub warmup_days: u32,
}

impl Default for AnomalyOptions {
    fn default() -> Self {
        Self {
            config: AnomalyConfig::default(),
            warmup_days: DEFAULT_ANOMALY_WARMUP_DAYS,
        }
    }
}

/// The admin web served by the daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebOptions {
    /// The web's settings (listen address, sessions, throttling…).
    pub config: WebConfig,
    /// The broker URL written into the enrollment bundles it hands out (as `enroll-guest`
    /// writes it).
    pub public_broker_url: String,
    /// The Bluetooth company id written into those bundles.
    pub company_id: u16,
}

impl WebOptions {
    /// The default web settings (127.0.0.1:8080), bundles naming `public_broker_url`.
    pub fn new(public_broker_url: impl Into<String>) -> Self {
        Self {
            config: WebConfig::default(),
            public_broker_url: public_broker_url.into(),
            company_id: latchkey::constants::DEFAULT_COMPANY_ID,
        }
    }
}

/// Which MQTT broker the issuer uses.
#[derive(Debug, Clone)]
// Built once per daemon; boxing the config would only make the API clumsier.
#[allow(clippy::large_enum_variant)]
pub enum BrokerChoice {
    /// Start the embedded broker on `listen` (port 0: a free port) and connect to it.
    Embedded {
        /// The address to bind; a bind failure is an error, never a silent fallback.
        listen: SocketAddr,
    },
    /// Connect to an external broker.
    External(MqttConfig),
}

/// Everything [`Issuerd::start`](crate::Issuerd::start) needs.
#[derive(Debug, Clone)]
pub struct IssuerOptions {
    /// The state directory (keys, registry, grants, control socket).
    pub state_dir: PathBuf,
    /// The broker.
    pub broker: BrokerChoice,
    /// MQTT client id when the broker is embedded (an external broker's comes with its
    /// [`MqttConfig`]).
    pub client_id: String,
    /// Topic prefix (`latchkey/v1`).
    pub topic_prefix: String,
    /// Requests are accepted within ± this many seconds (LK-ISS-4).
    pub request_window_s: u64,
    /// Capacity of the request replay cache (LK-ISS-8).
    pub request_cache_capacity: usize,
    /// Longest validity granted, seconds (LK-ISS-9).
    pub max_grant_validity_s: u64,
    /// How far not_before is set back, seconds (LK-ISS-9).
    pub backdate_s: u64,
    /// Most live grants tracked (LK-ISS-10).
    pub max_live_grants: usize,
    /// First re-publish interval of a revocation the lock has not confirmed.
    pub revocation_retry: Duration,
    /// How long `start` waits for the broker to confirm the subscriptions. With the
    /// embedded broker, not getting them is an error; with an external one the daemon
    /// starts anyway and keeps reconnecting.
    pub subscribe_timeout: Duration,
    /// Seed of the CSPRNG; `None` (production) seeds it from the operating system.
    pub rng_seed: Option<[u8; 32]>,
    /// The registry's key-encryption key.
    pub kek: KekSource,
    /// Audit entries older than this are deleted (hourly).
    pub audit_retention: Duration,
    /// Lock messages are accepted within ± this many seconds (LK-EVT-3).
    pub event_window_s: u64,
    /// Per-lock capacity of the lock message replay cache (LK-EVT-4).
    pub event_replay_capacity: usize,
    /// Grant requests a guest may make in a burst (LK-ISS-11).
    pub rate_guest_burst: u32,
    /// Requests per hour a guest's bucket refills (LK-ISS-11).
    pub rate_guest_per_hour: u32,
    /// Grant requests for one lock in a burst (LK-ISS-11).
    pub rate_lock_burst: u32,
    /// Requests per hour a lock's bucket refills (LK-ISS-11).
    pub rate_lock_per_hour: u32,
    /// The anomaly engine; `None` turns it off.
    pub anomaly: Option<AnomalyOptions>,
    /// The admin web; `None` serves none (the library default; `run` serves it unless
    /// `--no-web`).
    pub web: Option<WebOptions>,
}

impl IssuerOptions {
    /// Defaults: embedded broker on 127.0.0.1:1883, spec defaults for every tunable.
    pub fn new(state_dir: impl Into<PathBuf>) -> Self {
        Self {
            state_dir: state_dir.into(),
            broker: BrokerChoice::Embedded {
                listen: DEFAULT_LISTEN,
            },
            client_id: DEFAULT_CLIENT_ID.to_owned(),
            topic_prefix: DEFAULT_PREFIX.to_owned(),
            request_window_s: c::REQUEST_WINDOW_S.default,
            request_cache_capacity: c::REQUEST_CACHE_CAPACITY.default,
            max_grant_validity_s: DEFAULT_MAX_GRANT_VALIDITY_S,
            backdate_s: c::MAX_CLOCK_SKEW_S.default,
            max_live_grants: DEFAULT_MAX_LIVE_GRANTS,
            revocation_retry: DEFAULT_REVOCATION_RETRY,
            subscribe_timeout: Duration::from_secs(10),
            rng_seed: None,
            kek: KekSource::Auto,
            audit_retention: Duration::from_secs(DEFAULT_AUDIT_RETENTION_DAYS * 86_400),
            event_window_s: c::EVENT_WINDOW_S.default,
            event_replay_capacity: c::EVENT_REPLAY_CAPACITY.default,
            rate_guest_burst: c::RATE_GUEST_BURST.default,
            rate_guest_per_hour: c::RATE_GUEST_PER_HOUR.default,
            rate_lock_burst: c::RATE_LOCK_BURST.default,
            rate_lock_per_hour: c::RATE_LOCK_PER_HOUR.default,
            anomaly: Some(AnomalyOptions::default()),
            web: None,
        }
    }

    /// The unlock accounting's window under these options.
    pub fn accounting_window(&self) -> AccountingWindow {
        accounting_window(self.event_window_s)
    }
}

/// Checks a topic prefix: non-empty, no wildcard, no NUL, no leading or trailing `/`.
pub fn validate_prefix(prefix: &str) -> Result<(), IssuerdError> {
    let bad = prefix.is_empty()
        || prefix.contains(['+', '#', '\0'])
        || prefix.starts_with('/')
        || prefix.ends_with('/');
    if bad {
        return Err(IssuerdError::Config(format!(
            "topic prefix {prefix:?} must be non-empty, without '+', '#', NUL or a leading \
             or trailing '/'"
        )));
    }
    Ok(())
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Human,
    /// One JSON object per line.
    Json,
}

/// The TOML config file. Every key is optional; unknown keys are errors (a typo must not
/// silently fall back to a default). Relative paths are resolved against the file's
/// directory.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// `state_dir`.
    pub state_dir: Option<PathBuf>,
    /// `kek_file`: the registry's key-encryption key (64 hex digits or 32 raw bytes, mode
    /// 0600). [default: `LATCHKEY_ISSUER_KEK`, else `STATE_DIR/kek.key`]
    pub kek_file: Option<PathBuf>,
    /// `log_format = "human" | "json"`.
    pub log_format: Option<LogFormat>,
    /// `topic_prefix`.
    pub topic_prefix: Option<String>,
    /// `public_broker_url`: the URL locks and guests use (written into `lock.toml` and
    /// enrollment bundles).
    pub public_broker_url: Option<String>,
    /// `[broker]`.
    #[serde(default)]
    pub broker: BrokerSection,
    /// `[tunables]`.
    #[serde(default)]
    pub tunables: TunablesSection,
    /// `[anomaly]`.
    #[serde(default)]
    pub anomaly: AnomalySection,
    /// `[web]`.
    #[serde(default)]
    pub web: WebSection,
}

/// `[broker]` of the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrokerSection {
    /// External broker URL; absent: the embedded broker.
    pub url: Option<String>,
    /// Embedded broker listen address.
    pub listen: Option<SocketAddr>,
    /// CA certificate(s) of an `mqtts://` broker.
    pub ca_file: Option<PathBuf>,
    /// Client certificate (mutual TLS; CN `issuer`).
    pub cert_file: Option<PathBuf>,
    /// Client private key (mutual TLS).
    pub key_file: Option<PathBuf>,
    /// MQTT client id.
    pub client_id: Option<String>,
}

/// `[tunables]` of the config file (spec §9).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TunablesSection {
    /// LK-ISS-4.
    pub request_window_s: Option<u64>,
    /// LK-ISS-8.
    pub request_cache_capacity: Option<usize>,
    /// LK-ISS-9.
    pub max_grant_validity_s: Option<u64>,
    /// LK-ISS-9.
    pub backdate_s: Option<u64>,
    /// LK-ISS-10.
    pub max_live_grants: Option<usize>,
    /// First revocation re-publish interval, seconds.
    pub revocation_retry_s: Option<u64>,
    /// Days audit entries are kept.
    pub audit_retention_days: Option<u64>,
    /// LK-EVT-3.
    pub event_window_s: Option<u64>,
    /// LK-EVT-4.
    pub event_replay_capacity: Option<usize>,
    /// LK-ISS-11.
    pub rate_guest_burst: Option<u32>,
    /// LK-ISS-11.
    pub rate_guest_per_hour: Option<u32>,
    /// LK-ISS-11.
    pub rate_lock_burst: Option<u32>,
    /// LK-ISS-11.
    pub rate_lock_per_hour: Option<u32>,
}

/// `[anomaly]` of the config file: on or off, the warm-up, and one table per detector
/// (`[anomaly.unusual_hour]`, `[anomaly.failure_burst]`, `[anomaly.revoked_guest]`,
/// `[anomaly.impossible_travel]`, `[anomaly.limits]`; docs/anomaly.md).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnomalySection {
    /// `enabled` [default: true].
    pub enabled: Option<bool>,
    /// `warmup_days`: audit days replayed at start (0..=3650) [default: 60].
    pub warmup_days: Option<u32>,
    /// Detector 1.
    #[serde(default)]
    pub unusual_hour: UnusualHourConfig,
    /// Detector 2.
    #[serde(default)]
    pub failure_burst: FailureBurstConfig,
    /// Detector 3.
    #[serde(default)]
    pub revoked_guest: RevokedGuestConfig,
    /// Detector 4.
    #[serde(default)]
    pub impossible_travel: ImpossibleTravelConfig,
    /// Memory caps.
    #[serde(default)]
    pub limits: MemoryLimits,
}

/// `[web]` of the config file: the admin web (docs/admin-web.md). Durations in seconds.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebSection {
    /// `enabled` [default: true].
    pub enabled: Option<bool>,
    /// `listen` [default: 127.0.0.1:8080].
    pub listen: Option<SocketAddr>,
    /// `served_over_https`: a TLS-terminating proxy is in front.
    pub served_over_https: Option<bool>,
    /// `public_origin`, e.g. `https://issuer.example.org`.
    pub public_origin: Option<String>,
    /// `extra_allowed_hosts`.
    pub extra_allowed_hosts: Option<Vec<String>>,
    /// `idle_timeout_s`.
    pub idle_timeout_s: Option<u64>,
    /// `session_lifetime_s`.
    pub session_lifetime_s: Option<u64>,
    /// `login_max_failures`.
    pub login_max_failures: Option<u32>,
    /// `login_failure_window_s`.
    pub login_failure_window_s: Option<u64>,
    /// `login_lockout_s`.
    pub login_lockout_s: Option<u64>,
    /// `page_size`.
    pub page_size: Option<u32>,
    /// `lock_offline_after_s`.
    pub lock_offline_after_s: Option<u64>,
}

impl WebSection {
    /// The web settings: these keys over the defaults, then `listen` from the flag.
    fn config(&self, listen_flag: Option<SocketAddr>) -> WebConfig {
        let mut w = WebConfig::default();
        let secs = Duration::from_secs;
        if let Some(v) = listen_flag.or(self.listen) {
            w.listen = v;
        }
        if let Some(v) = self.served_over_https {
            w.served_over_https = v;
        }
        if let Some(v) = &self.public_origin {
            w.public_origin = Some(v.clone());
        }
        if let Some(v) = &self.extra_allowed_hosts {
            w.extra_allowed_hosts = v.clone();
        }
        if let Some(v) = self.idle_timeout_s {
            w.idle_timeout = secs(v);
        }
        if let Some(v) = self.session_lifetime_s {
            w.session_lifetime = secs(v);
        }
        if let Some(v) = self.login_max_failures {
            w.login_max_failures = v;
        }
        if let Some(v) = self.login_failure_window_s {
            w.login_failure_window = secs(v);
        }
        if let Some(v) = self.login_lockout_s {
            w.login_lockout = secs(v);
        }
        if let Some(v) = self.page_size {
            w.page_size = v;
        }
        if let Some(v) = self.lock_offline_after_s {
            w.lock_offline_after = secs(v);
        }
        w
    }
}

impl FileConfig {
    /// Reads and parses a config file.
    pub fn load(path: &Path) -> Result<Self, IssuerdError> {
        let text = std::fs::read_to_string(path).map_err(IssuerdError::io("read", path))?;
        let mut cfg: FileConfig =
            toml::from_str(&text).map_err(|e| IssuerdError::bad_file("config", path, e))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let rebase = |p: &mut Option<PathBuf>| {
            if let Some(x) = p
                && x.is_relative()
            {
                *x = base.join(&*x);
            }
        };
        rebase(&mut cfg.state_dir);
        rebase(&mut cfg.kek_file);
        rebase(&mut cfg.broker.ca_file);
        rebase(&mut cfg.broker.cert_file);
        rebase(&mut cfg.broker.key_file);
        Ok(cfg)
    }
}

/// `run` flags that override the config file.
#[derive(Debug, Clone, Default)]
pub struct RunOverrides {
    /// `--broker URL | embedded`.
    pub broker: Option<String>,
    /// `--listen ADDR`.
    pub listen: Option<SocketAddr>,
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
    /// `--request-window-s`.
    pub request_window_s: Option<u64>,
    /// `--request-cache-capacity`.
    pub request_cache_capacity: Option<usize>,
    /// `--max-grant-validity-s`.
    pub max_grant_validity_s: Option<u64>,
    /// `--backdate-s`.
    pub backdate_s: Option<u64>,
    /// `--max-live-grants`.
    pub max_live_grants: Option<usize>,
    /// `--revocation-retry-s`.
    pub revocation_retry_s: Option<u64>,
    /// `--kek-file`.
    pub kek_file: Option<PathBuf>,
    /// `--event-window-s`.
    pub event_window_s: Option<u64>,
    /// `--event-replay-capacity`.
    pub event_replay_capacity: Option<usize>,
    /// `--rate-guest-burst`.
    pub rate_guest_burst: Option<u32>,
    /// `--rate-guest-per-hour`.
    pub rate_guest_per_hour: Option<u32>,
    /// `--rate-lock-burst`.
    pub rate_lock_burst: Option<u32>,
    /// `--rate-lock-per-hour`.
    pub rate_lock_per_hour: Option<u32>,
    /// `--web-listen`.
    pub web_listen: Option<SocketAddr>,
    /// `--no-web`.
    pub no_web: bool,
    /// The broker URL written into bundles the web hands out (as for `enroll-guest`).
    pub public_broker_url: Option<String>,
}

/// Where the key-encryption key comes from: `--kek-file`, else `LATCHKEY_ISSUER_KEK`, else
/// the config file's `kek_file`, else `STATE_DIR/kek.key`.
pub fn resolve_kek(flag: Option<&Path>, file: &FileConfig) -> KekSource {
    if let Some(p) = flag {
        return KekSource::File(p.to_owned());
    }
    if std::env::var_os(KEK_ENV).is_some() {
        return KekSource::Auto;
    }
    match &file.kek_file {
        Some(p) => KekSource::File(p.clone()),
        None => KekSource::Auto,
    }
}

/// The `--broker` value that selects the embedded broker even if the file names a URL.
pub const EMBEDDED: &str = "embedded";

/// Merges flags over the file over the defaults.
pub fn resolve_run(
    state_dir: PathBuf,
    file: &FileConfig,
    flags: &RunOverrides,
) -> Result<IssuerOptions, IssuerdError> {
    let mut o = IssuerOptions::new(state_dir);
    let t = &file.tunables;
    o.topic_prefix = flags
        .topic_prefix
        .clone()
        .or_else(|| file.topic_prefix.clone())
        .unwrap_or(o.topic_prefix);
    validate_prefix(&o.topic_prefix)?;
    o.request_window_s = flags
        .request_window_s
        .or(t.request_window_s)
        .unwrap_or(o.request_window_s);
    o.request_cache_capacity = flags
        .request_cache_capacity
        .or(t.request_cache_capacity)
        .unwrap_or(o.request_cache_capacity);
    o.max_grant_validity_s = flags
        .max_grant_validity_s
        .or(t.max_grant_validity_s)
        .unwrap_or(o.max_grant_validity_s);
    o.backdate_s = flags.backdate_s.or(t.backdate_s).unwrap_or(o.backdate_s);
    o.max_live_grants = flags
        .max_live_grants
        .or(t.max_live_grants)
        .unwrap_or(o.max_live_grants);
    o.event_window_s = flags
        .event_window_s
        .or(t.event_window_s)
        .unwrap_or(o.event_window_s);
    o.event_replay_capacity = flags
        .event_replay_capacity
        .or(t.event_replay_capacity)
        .unwrap_or(o.event_replay_capacity);
    o.rate_guest_burst = flags
        .rate_guest_burst
        .or(t.rate_guest_burst)
        .unwrap_or(o.rate_guest_burst);
    o.rate_guest_per_hour = flags
        .rate_guest_per_hour
        .or(t.rate_guest_per_hour)
        .unwrap_or(o.rate_guest_per_hour);
    o.rate_lock_burst = flags
        .rate_lock_burst
        .or(t.rate_lock_burst)
        .unwrap_or(o.rate_lock_burst);
    o.rate_lock_per_hour = flags
        .rate_lock_per_hour
        .or(t.rate_lock_per_hour)
        .unwrap_or(o.rate_lock_per_hour);
    o.anomaly = resolve_anomaly(&file.anomaly)?;
    o.web = resolve_web(file, flags)?;
    o.kek = resolve_kek(flags.kek_file.as_deref(), file);
    if let Some(days) = t.audit_retention_days {
        if !(1..=36_500).contains(&days) {
            return Err(IssuerdError::Config(format!(
                "audit_retention_days = {days}: it must be within 1..=36500"
            )));
        }
        o.audit_retention = Duration::from_secs(days * 86_400);
    }
    if let Some(s) = flags.revocation_retry_s.or(t.revocation_retry_s) {
        if s == 0 {
            return Err(IssuerdError::Config(
                "revocation_retry_s must be at least 1".to_owned(),
            ));
        }
        o.revocation_retry = Duration::from_secs(s);
    }
    let client_id = flags
        .client_id
        .clone()
        .or_else(|| file.broker.client_id.clone())
        .unwrap_or_else(|| DEFAULT_CLIENT_ID.to_owned());
    o.client_id = client_id.clone();

    let url = match flags.broker.as_deref() {
        Some(EMBEDDED) => None,
        Some(u) => Some(u.to_owned()),
        None => file.broker.url.clone(),
    };
    let ca_file = flags
        .ca_file
        .clone()
        .or_else(|| file.broker.ca_file.clone());
    let cert_file = flags
        .cert_file
        .clone()
        .or_else(|| file.broker.cert_file.clone());
    let key_file = flags
        .key_file
        .clone()
        .or_else(|| file.broker.key_file.clone());
    o.broker = match url {
        None => {
            if ca_file.is_some() || cert_file.is_some() || key_file.is_some() {
                return Err(IssuerdError::Config(
                    "--ca-file/--cert-file/--key-file apply to an external mqtts:// broker \
                     (--broker URL); the embedded broker is plain MQTT"
                        .to_owned(),
                ));
            }
            BrokerChoice::Embedded {
                listen: flags
                    .listen
                    .or(file.broker.listen)
                    .unwrap_or(DEFAULT_LISTEN),
            }
        }
        Some(u) => {
            if flags.listen.is_some() {
                return Err(IssuerdError::Config(
                    "--listen sets the embedded broker's address, but an external broker \
                     URL is configured (use --broker embedded to run the embedded one)"
                        .to_owned(),
                ));
            }
            let parsed = MqttUrl::parse(&u).map_err(|source| IssuerdError::BrokerUrl {
                url: redact_url(&u),
                source,
            })?;
            let client_auth = match (cert_file, key_file) {
                (Some(cert_file), Some(key_file)) => Some(ClientAuthFiles {
                    cert_file,
                    key_file,
                }),
                (None, None) => None,
                _ => {
                    return Err(IssuerdError::Config(
                        "mutual TLS needs both --cert-file and --key-file".to_owned(),
                    ));
                }
            };
            let tls = if ca_file.is_some() || client_auth.is_some() {
                Some(TlsFiles {
                    ca_file,
                    client_auth,
                })
            } else {
                None
            };
            if tls.is_some() && !parsed.is_tls() {
                return Err(IssuerdError::Config(
                    "TLS files are given but the broker URL is plain mqtt://; use mqtts://"
                        .to_owned(),
                ));
            }
            let mut m = MqttConfig::new(parsed, client_id);
            m.tls = tls;
            BrokerChoice::External(m)
        }
    };
    Ok(o)
}

/// The `[anomaly]` section: `None` when `enabled = false`; the settings checked.
fn resolve_anomaly(a: &AnomalySection) -> Result<Option<AnomalyOptions>, IssuerdError> {
    if a.enabled == Some(false) {
        return Ok(None);
    }
    let config = AnomalyConfig {
        unusual_hour: a.unusual_hour.clone(),
        failure_burst: a.failure_burst.clone(),
        revoked_guest: a.revoked_guest.clone(),
        impossible_travel: a.impossible_travel.clone(),
        limits: a.limits.clone(),
    };
    config
        .validate()
        .map_err(|e| IssuerdError::Config(format!("[anomaly] {e}")))?;
    let warmup_days = a.warmup_days.unwrap_or(DEFAULT_ANOMALY_WARMUP_DAYS);
    if warmup_days > 3_650 {
        return Err(IssuerdError::Config(format!(
            "[anomaly] warmup_days = {warmup_days}: it must be within 0..=3650"
        )));
    }
    Ok(Some(AnomalyOptions {
        config,
        warmup_days,
    }))
}

/// The admin web: `None` with `--no-web` or `[web] enabled = false`; else its settings,
/// checked, with `--web-listen` over `[web] listen`.
fn resolve_web(
    file: &FileConfig,
    flags: &RunOverrides,
) -> Result<Option<WebOptions>, IssuerdError> {
    if flags.no_web || file.web.enabled == Some(false) {
        if flags.web_listen.is_some() {
            return Err(IssuerdError::Config(
                "--web-listen sets the admin web's address, but the web is turned off \
                 (--no-web or [web] enabled = false)"
                    .to_owned(),
            ));
        }
        return Ok(None);
    }
    let config = file.web.config(flags.web_listen);
    config
        .validate()
        .map_err(|e| IssuerdError::Config(format!("[web] {e}")))?;
    let url = flags
        .public_broker_url
        .clone()
        .unwrap_or_else(|| resolve_public_url(file, None).0);
    Ok(Some(WebOptions {
        config,
        public_broker_url: url,
        company_id: latchkey::constants::DEFAULT_COMPANY_ID,
    }))
}

/// The broker URL written into `lock.toml` and enrollment bundles: the flag, else the
/// file's `public_broker_url`, else its `[broker] url`, else the embedded broker's listen
/// address. The flag is `true` when it was guessed from the listen address.
pub fn resolve_public_url(file: &FileConfig, flag: Option<&str>) -> (String, bool) {
    if let Some(u) = flag
        .map(str::to_owned)
        .or_else(|| file.public_broker_url.clone())
        .or_else(|| file.broker.url.clone())
    {
        return (u, false);
    }
    let listen = file.broker.listen.unwrap_or(DEFAULT_LISTEN);
    (format!("mqtt://{}", connectable(listen)), true)
}

/// A wildcard bind address is reached through loopback.
pub(crate) fn connectable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), addr.port())
        }
        _ => addr,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_file_override_defaults() {
        let file: FileConfig = toml::from_str(
            "topic_prefix = \"site/a\"\n[broker]\nlisten = \"127.0.0.1:2000\"\n\
             [tunables]\nrequest_window_s = 30\nbackdate_s = 10\n",
        )
        .unwrap();
        let flags = RunOverrides {
            request_window_s: Some(90),
            ..Default::default()
        };
        let o = resolve_run("s".into(), &file, &flags).unwrap();
        assert_eq!(o.topic_prefix, "site/a");
        assert_eq!(o.request_window_s, 90);
        assert_eq!(o.backdate_s, 10);
        assert_eq!(o.max_grant_validity_s, DEFAULT_MAX_GRANT_VALIDITY_S);
        assert!(matches!(o.broker, BrokerChoice::Embedded { listen } if listen.port() == 2000));
    }

    #[test]
    fn external_broker_from_file_and_embedded_override() {
        let file: FileConfig =
            toml::from_str("[broker]\nurl = \"mqtts://b:8883\"\nca_file = \"/ca.pem\"\n").unwrap();
        let o = resolve_run("s".into(), &file, &RunOverrides::default()).unwrap();
        match o.broker {
            BrokerChoice::External(m) => {
                assert_eq!(m.client_id, DEFAULT_CLIENT_ID);
                assert_eq!(
                    m.tls.unwrap().ca_file.as_deref(),
                    Some(Path::new("/ca.pem"))
                );
            }
            other => panic!("{other:?}"),
        }
        let flags = RunOverrides {
            broker: Some(EMBEDDED.to_owned()),
            ca_file: None,
            ..Default::default()
        };
        // The file's TLS files make no sense with the embedded broker.
        assert!(resolve_run("s".into(), &file, &flags).is_err());
    }

    #[test]
    fn misconfigurations_are_refused() {
        let none = FileConfig::default();
        let bad = [
            RunOverrides {
                broker: Some("mqtt://b".into()),
                ca_file: Some("/ca".into()),
                ..Default::default()
            },
            RunOverrides {
                broker: Some("mqtts://b".into()),
                cert_file: Some("/c".into()),
                ..Default::default()
            },
            RunOverrides {
                broker: Some("mqtt://b".into()),
                listen: Some(DEFAULT_LISTEN),
                ..Default::default()
            },
            RunOverrides {
                topic_prefix: Some("a/#".into()),
                ..Default::default()
            },
            RunOverrides {
                broker: Some("http://b".into()),
                ..Default::default()
            },
        ];
        for flags in bad {
            assert!(resolve_run("s".into(), &none, &flags).is_err(), "{flags:?}");
        }
        assert!(toml::from_str::<FileConfig>("stat_dir = \"x\"").is_err());
    }

    #[test]
    fn public_url_falls_back_to_the_listen_address() {
        let file: FileConfig = toml::from_str("[broker]\nlisten = \"0.0.0.0:1999\"\n").unwrap();
        assert_eq!(
            resolve_public_url(&file, None),
            ("mqtt://127.0.0.1:1999".to_owned(), true)
        );
        assert_eq!(
            resolve_public_url(&file, Some("mqtt://x")),
            ("mqtt://x".to_owned(), false)
        );
    }

    #[test]
    fn tunables_anomaly_and_web_sections_are_read_and_checked() {
        let file: FileConfig = toml::from_str(
            "[tunables]\nevent_window_s = 600\nrate_guest_burst = 3\nrate_lock_per_hour = 99\n\
             [anomaly]\nwarmup_days = 7\n[anomaly.failure_burst]\nguest_threshold = 4\n\
             [web]\nlisten = \"127.0.0.1:9090\"\nidle_timeout_s = 600\n",
        )
        .unwrap();
        let o = resolve_run("s".into(), &file, &RunOverrides::default()).unwrap();
        assert_eq!((o.event_window_s, o.rate_guest_burst), (600, 3));
        assert_eq!(o.rate_lock_per_hour, 99);
        let a = o.anomaly.unwrap();
        assert_eq!(
            (a.warmup_days, a.config.failure_burst.guest_threshold),
            (7, 4)
        );
        let web = o.web.unwrap();
        assert_eq!(web.config.listen.port(), 9090);
        assert_eq!(web.config.idle_timeout, Duration::from_secs(600));

        let flags = RunOverrides {
            web_listen: Some("127.0.0.1:9191".parse().unwrap()),
            event_window_s: Some(120),
            ..Default::default()
        };
        let o = resolve_run("s".into(), &file, &flags).unwrap();
        assert_eq!(o.web.unwrap().config.listen.port(), 9191);
        assert_eq!(o.event_window_s, 120);
        let off = RunOverrides {
            no_web: true,
            ..Default::default()
        };
        assert!(resolve_run("s".into(), &file, &off).unwrap().web.is_none());
        // The web served on every interface in plain HTTP is refused.
        let open: FileConfig = toml::from_str("[web]\nlisten = \"0.0.0.0:8080\"\n").unwrap();
        assert!(resolve_run("s".into(), &open, &RunOverrides::default()).is_err());
        let bad: FileConfig = toml::from_str("[anomaly]\nwarmup_days = 99999\n").unwrap();
        assert!(resolve_run("s".into(), &bad, &RunOverrides::default()).is_err());
        let off: FileConfig = toml::from_str("[anomaly]\nenabled = false\n").unwrap();
        assert!(
            resolve_run("s".into(), &off, &RunOverrides::default())
                .unwrap()
                .anomaly
                .is_none()
        );
        assert!(toml::from_str::<FileConfig>("[web]\nlisten_addr = \"x\"").is_err());
    }

    #[test]
    fn the_example_config_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("issuer.example.toml");
        let file = FileConfig::load(&path).unwrap();
        let o = resolve_run("s".into(), &file, &RunOverrides::default()).unwrap();
        assert!(matches!(o.broker, BrokerChoice::External(_)));
        assert_eq!(o.request_window_s, 60);
        assert_eq!(o.event_window_s, c::EVENT_WINDOW_S.default);
        assert_eq!(o.anomaly.map(|a| a.warmup_days), Some(60));
        let web = o.web.unwrap();
        assert_eq!(web.config.listen, crate::web::DEFAULT_WEB_LISTEN);
        // The bundles the web hands out name the broker locks and guests use.
        assert_eq!(web.public_broker_url, "mqtts://broker.example.org:8883");
    }

    #[test]
    fn the_deployment_config_is_valid() {
        // deploy/ is maintained beside this crate; keep the two in step.
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/issuer.toml");
        if path.exists() {
            let file = FileConfig::load(&path).unwrap();
            resolve_run("s".into(), &file, &RunOverrides::default()).unwrap();
        }
    }
}
