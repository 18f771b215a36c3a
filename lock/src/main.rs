//! `latchkey-lock`: the lock daemon on a BlueZ adapter.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use latchkey_lock::config::parse_company_id;
use latchkey_lock::logging::{self, LogFormat};
use latchkey_lock::{BleAdapter, ConfigOverrides, LoadedLockConfig, Lockd, UnlockAction};
use latchkey_transport::radio::BluerRadio;
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

/// Exit code for a configuration or usage problem (clap uses it for bad flags too).
const EXIT_CONFIG: u8 = 2;
/// Exit code for a failure while running (radio gone, start failure).
const EXIT_RUNTIME: u8 = 1;

/// The Latchkey lock daemon.
///
/// Scans for guest beacons and serves the Latchkey GATT service on a BlueZ adapter,
/// receives grants and revocations from the issuer over MQTT
/// (`{prefix}/locks/{lock_id}/grants`, QoS 1, persistent session with client id
/// `latchkey-lock-{lock_id}`), unlocks on a verified challenge-response and publishes signed
/// events on `{prefix}/locks/{lock_id}/events`.
///
/// Settings come from the TOML file given with --config (see lock.example.toml next to
/// this crate for every key); each flag below overrides the file's value. Relative paths in
/// the file are resolved against the file's directory. Private key files must not be
/// readable by group or others (`chmod 600`).
///
/// Accepted grants and revocations are stored under STATE_DIR/messages/ and replayed at
/// start, with the unlock counts of limited grants, so a restarted lock keeps its sessions,
/// revocations and counts. A signed status report (health, rejection counters) goes to the
/// events topic at start and every `[status] interval_s` (default 60 s).
///
/// Logs go to stderr; RUST_LOG filters them (default `info`, e.g.
/// `RUST_LOG=info,latchkey_lock=debug`). SIGINT or SIGTERM stops the daemon gracefully:
/// queued GATT requests are answered, running unlock actions finish, queued events are
/// flushed.
///
/// Exit status: 0 after a signal, 1 when the daemon fails while running (e.g. the
/// Bluetooth adapter disappears), 2 for a configuration or usage error.
#[derive(Debug, Parser)]
#[command(
    name = "latchkey-lock",
    version,
    about,
    long_about,
    max_term_width = 100
)]
struct Cli {
    /// The lock's TOML config file (lock.toml).
    #[arg(short, long, value_name = "FILE")]
    config: Option<PathBuf>,

    /// This lock's id: 32 lowercase hex digits (config: lock_id).
    #[arg(long, value_name = "HEX")]
    lock_id: Option<String>,

    /// The lock's RSA private key, PKCS#8 PEM, mode 0600 (config: lock_key_file).
    #[arg(long, value_name = "FILE")]
    lock_key_file: Option<PathBuf>,

    /// The issuer's RSA public key, SPKI PEM (config: issuer_public_key_file).
    #[arg(long, value_name = "FILE")]
    issuer_public_key_file: Option<PathBuf>,

    /// Directory for persisted grants and revocations, created mode 0700
    /// (config: state_dir; default ./lock-state).
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,

    /// Broker URL, mqtt://host[:port] or mqtts://host[:port]; credentials may be given as
    /// user:password@ (config: mqtt.url).
    #[arg(long, value_name = "URL")]
    broker: Option<String>,

    /// CA certificate(s) of the broker, PEM, for mqtts:// (config: mqtt.ca_file; default:
    /// the system roots).
    #[arg(long, value_name = "FILE")]
    ca_file: Option<PathBuf>,

    /// Client certificate for mutual TLS, PEM (config: mqtt.cert_file).
    #[arg(long, value_name = "FILE")]
    cert_file: Option<PathBuf>,

    /// Client private key for mutual TLS, PEM, mode 0600 (config: mqtt.key_file).
    #[arg(long, value_name = "FILE")]
    key_file: Option<PathBuf>,

    /// MQTT client id; keep it stable, it keys the broker's persistent session
    /// (config: mqtt.client_id; default latchkey-lock-{lock_id}).
    #[arg(long, value_name = "ID")]
    client_id: Option<String>,

    /// MQTT topic prefix (config: topic_prefix; default latchkey/v1).
    #[arg(long, value_name = "PREFIX")]
    topic_prefix: Option<String>,

    /// Bluetooth adapter, e.g. hci0 (config: ble.adapter; default hci0). "sim" is the
    /// in-process simulated air of the demo and tests and cannot be used by this binary.
    #[arg(long = "ble", value_name = "ADAPTER")]
    adapter: Option<String>,

    /// Bluetooth SIG company id of the beacons, decimal or 0x-hex (config: company_id;
    /// default 0xFFFF, the SIG's test id: set your assigned id in production).
    #[arg(long, value_name = "ID", value_parser = parse_company_id)]
    company_id: Option<u16>,

    /// Minimum RSSI in dBm of an accepted beacon, -127..=20
    /// (config: tunables.rssi_threshold_dbm; default -70).
    #[arg(long, value_name = "DBM", allow_negative_numbers = true)]
    rssi_threshold_dbm: Option<i16>,

    /// Shell command run (sh -c) on every unlock, with LATCHKEY_LOCK_ID, LATCHKEY_GRANT_ID,
    /// LATCHKEY_GUEST_ID and LATCHKEY_SESSION_ID in its environment; killed after 10 s
    /// (config: unlock.command; replaces a configured GPIO action).
    #[arg(long, value_name = "CMD")]
    unlock_command: Option<String>,

    /// Log format: human or json.
    #[arg(long, value_name = "FORMAT", default_value_t = LogFormat::Human)]
    log_format: LogFormat,

    /// Load and check the configuration and keys, print a summary and exit
    /// (0 if usable, 2 if not). Touches neither the radio nor the broker.
    #[arg(long)]
    check: bool,
}

impl Cli {
    fn overrides(&self) -> ConfigOverrides {
        ConfigOverrides {
            lock_id: self.lock_id.clone(),
            lock_key_file: self.lock_key_file.clone(),
            issuer_public_key_file: self.issuer_public_key_file.clone(),
            state_dir: self.state_dir.clone(),
            broker_url: self.broker.clone(),
            ca_file: self.ca_file.clone(),
            cert_file: self.cert_file.clone(),
            key_file: self.key_file.clone(),
            client_id: self.client_id.clone(),
            topic_prefix: self.topic_prefix.clone(),
            adapter: self.adapter.clone(),
            company_id: self.company_id,
            rssi_threshold_dbm: self.rssi_threshold_dbm,
            unlock_command: self.unlock_command.clone(),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            error!(error = %e, "cannot start the async runtime");
            return ExitCode::from(EXIT_RUNTIME);
        }
    };
    runtime.block_on(run(cli))
}

async fn run(cli: Cli) -> ExitCode {
    let loaded = match LoadedLockConfig::load(cli.config.as_deref(), &cli.overrides()) {
        Ok(l) => l,
        Err(e) => {
            error!("{e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let adapter = match &loaded.adapter {
        BleAdapter::Hci(name) => name.clone(),
        BleAdapter::Sim => {
            error!(
                "ble.adapter = \"sim\" is the in-process simulated air: it only works inside one \
                 process (latchkey-demo, tests). Use a BlueZ adapter such as hci0."
            );
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let opts = loaded.options;
    if cli.check {
        let action = match &opts.unlock {
            UnlockAction::Log => "log".to_owned(),
            UnlockAction::Command { command, timeout } => {
                format!("command {command:?} (timeout {} s)", timeout.as_secs())
            }
            UnlockAction::Gpio(g) => format!(
                "gpio {} line {} pulse {} ms",
                g.chip.display(),
                g.line,
                g.pulse.as_millis()
            ),
        };
        println!("configuration OK");
        println!("  lock_id      {}", opts.lock_id);
        println!(
            "  broker       {} (client id {})",
            opts.mqtt.url, opts.mqtt.client_id
        );
        println!("  topic prefix {}", opts.topic_prefix);
        println!("  adapter      {adapter}");
        println!("  company id   0x{:04X}", opts.company_id);
        if let Some(dir) = &opts.state_dir {
            println!("  state dir    {}", dir.display());
        }
        println!("  unlock       {action}");
        println!(
            "  rejections   {}/s, burst {} (other events are never rate limited)",
            opts.event_rate.0, opts.event_rate.1
        );
        let t = &opts.tunables;
        if t.lockout_threshold == 0 {
            println!("  lockout      off");
        } else {
            println!(
                "  lockout      {} failed handshakes in {} s lock a guest out for {} s",
                t.lockout_threshold, t.lockout_window_s, t.lockout_duration_s
            );
        }
        let file = |f: &Option<PathBuf>| {
            f.as_ref()
                .map_or_else(|| "-".to_owned(), |p| p.display().to_string())
        };
        println!(
            "  status       every {} s; battery {}, mains {}, clock synced {}",
            opts.status.interval.as_secs(),
            file(&opts.status.battery_capacity_file),
            file(&opts.status.mains_online_file),
            file(&opts.status.clock_synced_file)
        );
        return ExitCode::SUCCESS;
    }

    let radio = match BluerRadio::new(Some(&adapter)).await {
        Ok(r) => r,
        Err(e) => {
            error!(adapter, error = %e, "cannot open the Bluetooth adapter");
            return ExitCode::from(EXIT_RUNTIME);
        }
    };
    let mut handle = match Lockd::start(opts, radio).await {
        Ok(h) => h,
        Err(e) => {
            error!("{e}");
            return ExitCode::from(EXIT_RUNTIME);
        }
    };
    tokio::spawn(stop_on_signal(handle.cancellation_token()));
    match handle.wait().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e}");
            ExitCode::from(EXIT_RUNTIME)
        }
    }
}

/// Cancels `token` at SIGINT or SIGTERM.
async fn stop_on_signal(token: CancellationToken) {
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        r = tokio::signal::ctrl_c() => {
            if let Err(e) = r {
                error!(error = %e, "cannot listen for SIGINT");
                std::future::pending::<()>().await;
            }
            info!("SIGINT received; stopping");
        }
        _ = term => info!("SIGTERM received; stopping"),
    }
    token.cancel();
}
