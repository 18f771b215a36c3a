//! `latchkey-guest`: the phone side of Latchkey on Linux.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use latchkey::LockId;
use latchkey_guest::config::{BUNDLE_FILE, BleChoice, ConfigFile, GRANTS_DIR, seconds};
use latchkey_guest::{BundleError, EnrollmentBundle, GuestError, GuestOptions, Guestd};
use latchkey_transport::mqtt::MqttUrl;
use latchkey_transport::radio::{BluerRadio, GuestRadio, SimAir};
use tokio_util::sync::CancellationToken;
use zeroize::Zeroizing;

/// Exit status: the unlock was attempted and did not open the lock.
const EXIT_FAILED: u8 = 1;
/// Exit status: the command line, config file or enrollment is wrong.
const EXIT_USAGE: u8 = 2;
/// Exit status: interrupted (SIGINT/SIGTERM).
const EXIT_CANCELLED: u8 = 130;

#[derive(Parser, Debug)]
#[command(
    name = "latchkey-guest",
    version,
    about = "Latchkey guest: plays the phone — gets a grant over MQTT, unlocks over BLE",
    long_about = "Latchkey guest: plays the phone of the Latchkey protocol on Linux.\n\n\
        `enroll` stores the enrollment bundle the issuer wrote for this guest \
        (`latchkey-issuer enroll-guest`). `unlock` gets a short-lived grant from the issuer \
        over MQTT, advertises the rotating beacon over BLE, answers the lock's challenge and \
        prints the outcome with the timing of each step.\n\n\
        Exit status: 0 unlocked (or command done), 1 the unlock failed (the lock refused, no \
        grant, no lock in range, radio or broker trouble: the reason is printed), 2 bad \
        command line, config file or enrollment, 130 interrupted.\n\n\
        Logs go to stderr (RUST_LOG filters them, default `info`); results go to stdout."
)]
struct Cli {
    /// TOML config file (every key optional; flags override it). See guest.example.toml.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Human,
    /// One JSON object per line.
    Json,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Store an enrollment bundle as STATE_DIR/enrollment.json (mode 0600, directory 0700).
    ///
    /// The bundle holds this guest's secret enrollment key. A bundle file readable by group
    /// or others is refused (chmod 600 it first). Replacing an enrollment of another guest
    /// needs --force, since its key would be lost.
    Enroll {
        /// Bundle file written by `latchkey-issuer enroll-guest` (must be mode 0600).
        #[arg(
            long,
            value_name = "FILE",
            conflicts_with_all = ["text", "qr_image"],
            required_unless_present_any = ["text", "qr_image"]
        )]
        bundle: Option<PathBuf>,
        /// The bundle's JSON text (as in the enrollment QR code), or `-` to read it from
        /// stdin. Text given on the command line is visible to other local users (ps, shell
        /// history): prefer `-`, --bundle or --qr-image.
        #[arg(long, value_name = "JSON", conflicts_with = "qr_image")]
        text: Option<String>,
        /// A PNG of the enrollment QR code (`latchkey-issuer enroll-guest --qr-png`; must be
        /// mode 0600: it holds the secret key).
        #[arg(long, value_name = "FILE.png")]
        qr_image: Option<PathBuf>,
        /// State directory [default: ./guest-state, or state_dir from the config file].
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
        /// Replace an existing enrollment of a different guest.
        #[arg(long)]
        force: bool,
    },
    /// Print the stored enrollment (never the key).
    Show {
        /// State directory [default: ./guest-state, or state_dir from the config file].
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
        /// Read this bundle file instead of STATE_DIR/enrollment.json.
        #[arg(long, value_name = "FILE")]
        bundle: Option<PathBuf>,
    },
    /// Unlock a lock: grant over MQTT, then beacon, Select, Challenge and Response over BLE.
    ///
    /// Advertising stops and the GATT link is closed whatever the outcome. The outcome and
    /// the timing of each step are printed on stdout; exit status 0 means unlocked, 1 means
    /// not unlocked (the reason is printed, e.g. `no_pending_auth (LK-SEL-1)`).
    ///
    /// A stored grant the lock does not accept (its beacons arm nothing: revoked, unlocks
    /// spent, lock state lost; or the lock says it is dead) is dropped, and one fresh grant
    /// is requested and tried in the same run; the outcome then names the dropped grant
    /// (`fallback` in --json).
    Unlock {
        /// The lock's id: 32 hex digits.
        #[arg(long, value_name = "HEX")]
        lock: String,
        /// Seconds to wait for the grant; a new request goes out every 5 s meanwhile
        /// [default: 20, or [timeouts] grant_s from config].
        #[arg(long, value_name = "SECONDS")]
        timeout_s: Option<f64>,
        /// Seconds for the BLE attempt (first beacon to outcome). The spec asks to give up
        /// after the lock's connection window plus response budget [default: 12, or
        /// [timeouts] attempt_s from config].
        #[arg(long, value_name = "SECONDS")]
        attempt_timeout_s: Option<f64>,
        /// Bluetooth adapter (hci0, hci1, …), or `sim` for a simulated air with no lock on
        /// it (exercises the MQTT part only) [default: hci0, or [ble] adapter from config].
        #[arg(long, value_name = "ADAPTER")]
        ble: Option<String>,
        /// Beacons carry the 3-byte Flags AD, as phone stacks add it. BlueZ adds Flags only
        /// to a connectable, discoverable advertisement, so the beacon becomes one: a test
        /// of the worst-case size, not for production [default: off, or [ble] beacon_flags
        /// from config].
        #[arg(long)]
        beacon_flags: bool,
        /// State directory [default: ./guest-state, or state_dir from the config file].
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
        /// Read this bundle file instead of STATE_DIR/enrollment.json.
        #[arg(long, value_name = "FILE")]
        bundle: Option<PathBuf>,
        /// Broker URL (mqtt://host:port or mqtts://host:port) [default: the bundle's].
        #[arg(long, value_name = "URL")]
        broker: Option<String>,
        /// Grant validity to request, seconds (the issuer may grant less) [default: 600].
        #[arg(long, value_name = "SECONDS")]
        validity_s: Option<u32>,
        /// Print the outcome as one JSON object instead of text: `{"outcome": "unlocked",
        /// lock_id, grant_id, session_id, grant_reused, grant_requests, select_tries,
        /// timings_ms, fallback}` or `{"outcome": "failed", reason, requirement, message,
        /// fallback}`; `fallback` is null, or `{"dropped_grant", "refused"}` when a stored
        /// grant was refused and a fresh one requested.
        #[arg(long)]
        json: bool,
    },
}

/// A failure already explained to the user, with its exit status.
struct Exit(u8, String);

impl Exit {
    fn usage(msg: impl ToString) -> Self {
        Self(EXIT_USAGE, msg.to_string())
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("latchkey-guest: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Exit(code, msg)) => {
            if !msg.is_empty() {
                eprintln!("latchkey-guest: {msg}");
            }
            ExitCode::from(code)
        }
    }
}

fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

async fn run(cli: Cli) -> Result<(), Exit> {
    let cfg = match &cli.config {
        Some(path) => ConfigFile::load(path).map_err(Exit::usage)?,
        None => ConfigFile::default(),
    };
    match cli.command {
        Command::Enroll {
            bundle,
            text,
            qr_image,
            state_dir,
            force,
        } => enroll(&cfg, bundle, text, qr_image, state_dir, force),
        Command::Show { state_dir, bundle } => {
            let bundle = load_bundle(&cfg, state_dir, bundle)?;
            print_enrollment(&bundle);
            Ok(())
        }
        Command::Unlock {
            lock,
            timeout_s,
            attempt_timeout_s,
            ble,
            beacon_flags,
            state_dir,
            bundle,
            broker,
            validity_s,
            json,
        } => {
            let lock: LockId = lock
                .to_ascii_lowercase()
                .parse()
                .map_err(|e| Exit::usage(format!("--lock: {e}")))?;
            let grant_dir = state_dir
                .clone()
                .unwrap_or_else(|| cfg.state_dir())
                .join(GRANTS_DIR);
            let bundle = load_bundle(&cfg, state_dir, bundle)?;
            let mut opts = cfg.options(bundle).map_err(Exit::usage)?;
            opts.grant_dir = Some(grant_dir);
            if let Some(url) = broker {
                opts.mqtt.url =
                    MqttUrl::parse(&url).map_err(|e| Exit::usage(format!("--broker: {e}")))?;
            }
            if let Some(s) = timeout_s {
                opts.timeouts.grant = seconds("--timeout-s", s).map_err(Exit::usage)?;
            }
            if let Some(s) = attempt_timeout_s {
                opts.timeouts.attempt = seconds("--attempt-timeout-s", s).map_err(Exit::usage)?;
            }
            if let Some(v) = validity_s {
                opts.grant_validity_s = v;
            }
            let choice: BleChoice = ble
                .or_else(|| cfg.ble.adapter.clone())
                .unwrap_or_else(|| "hci0".to_owned())
                .parse()
                .map_err(Exit::usage)?;
            match choice {
                BleChoice::Sim => {
                    let air = SimAir::default();
                    unlock(opts, air.radio("latchkey-guest"), lock, json).await
                }
                BleChoice::Adapter(name) => {
                    let flags = beacon_flags || cfg.ble.beacon_flags.unwrap_or(false);
                    let radio = BluerRadio::new(Some(&name))
                        .await
                        .map_err(|e| {
                            Exit(
                                EXIT_FAILED,
                                format!("cannot open Bluetooth adapter {name}: {e}"),
                            )
                        })?
                        .with_beacon_flags(flags);
                    unlock(opts, radio, lock, json).await
                }
            }
        }
    }
}

fn enroll(
    cfg: &ConfigFile,
    bundle: Option<PathBuf>,
    text: Option<String>,
    qr_image: Option<PathBuf>,
    state_dir: Option<PathBuf>,
    force: bool,
) -> Result<(), Exit> {
    let parsed = match (bundle, text, qr_image) {
        (Some(path), _, _) => EnrollmentBundle::load(&path).map_err(Exit::usage)?,
        (None, _, Some(image)) => EnrollmentBundle::load_qr_png(&image).map_err(Exit::usage)?,
        (None, Some(t), None) if t == "-" => {
            let mut s = Zeroizing::new(String::new());
            std::io::stdin()
                .take(latchkey_guest::bundle::MAX_BUNDLE_LEN + 1)
                .read_to_string(&mut s)
                .map_err(|e| Exit::usage(format!("cannot read the bundle from stdin: {e}")))?;
            EnrollmentBundle::parse(&s).map_err(Exit::usage)?
        }
        (None, Some(t), None) => {
            let t = Zeroizing::new(t);
            EnrollmentBundle::parse(&t).map_err(Exit::usage)?
        }
        (None, None, None) => {
            return Err(Exit::usage(
                "give --bundle FILE, --qr-image FILE.png or --text JSON",
            ));
        }
    };
    let dir = state_dir.unwrap_or_else(|| cfg.state_dir());
    let target = dir.join(BUNDLE_FILE);
    if !force {
        match EnrollmentBundle::load(&target) {
            Ok(existing) if existing.guest_id() != parsed.guest_id() => {
                return Err(Exit::usage(format!(
                    "{} already holds the enrollment of guest {}; replacing it with guest {} \
                     loses its key: pass --force to do it anyway",
                    target.display(),
                    existing.guest_id(),
                    parsed.guest_id()
                )));
            }
            _ => {}
        }
    }
    create_state_dir(&dir)?;
    parsed
        .save(&target)
        .map_err(|e| Exit(EXIT_FAILED, e.to_string()))?;
    println!("enrolled: stored {} (mode 0600)", target.display());
    print_enrollment(&parsed);
    Ok(())
}

fn create_state_dir(dir: &Path) -> Result<(), Exit> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| {
            Exit(
                EXIT_FAILED,
                format!("cannot create state directory {}: {e}", dir.display()),
            )
        })
}

fn load_bundle(
    cfg: &ConfigFile,
    state_dir: Option<PathBuf>,
    bundle: Option<PathBuf>,
) -> Result<EnrollmentBundle, Exit> {
    let path = match (bundle, state_dir) {
        (Some(b), _) => b,
        (None, Some(dir)) => dir.join(BUNDLE_FILE),
        (None, None) => cfg.bundle_path(),
    };
    EnrollmentBundle::load(&path).map_err(|e| match e {
        BundleError::Read { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            Exit::usage(format!(
                "no enrollment at {}: run `latchkey-guest enroll --bundle FILE` first",
                path.display()
            ))
        }
        other => Exit::usage(other),
    })
}

fn print_enrollment(b: &EnrollmentBundle) {
    println!("guest:      {}", b.guest_id());
    println!("broker:     {}", b.broker_url());
    println!("company id: 0x{:04x}", b.company_id());
    if b.locks().is_empty() {
        println!("locks:      (not listed: any lock the issuer allows)");
    } else {
        for (i, l) in b.locks().iter().enumerate() {
            println!(
                "{}{l}",
                if i == 0 {
                    "locks:      "
                } else {
                    "            "
                }
            );
        }
    }
}

async fn unlock<R: GuestRadio>(
    opts: GuestOptions,
    radio: R,
    lock: LockId,
    json: bool,
) -> Result<(), Exit> {
    let cancel = CancellationToken::new();
    tokio::spawn(cancel_on_signal(cancel.clone()));
    let mut guest = tokio::select! {
        g = Guestd::new(opts, radio) => g.map_err(|e| failure(&e, json))?,
        _ = cancel.cancelled() => return Err(failure(&GuestError::Cancelled, json)),
    };
    let result = guest.unlock_until(lock, &cancel).await;
    guest.shutdown().await;
    match result {
        Ok(report) => {
            if json {
                println!("{}", report.to_json());
            } else {
                print!("{report}");
            }
            Ok(())
        }
        Err(e) => Err(failure(&e, json)),
    }
}

/// Prints the failure (JSON on stdout when asked) and picks the exit status.
fn failure(e: &GuestError, json: bool) -> Exit {
    let code = match e {
        GuestError::Cancelled => EXIT_CANCELLED,
        GuestError::InvalidConfig(_) | GuestError::LockNotEnrolled { .. } => EXIT_USAGE,
        _ => EXIT_FAILED,
    };
    if json {
        let out = serde_json::json!({
            "outcome": "failed",
            "reason": e.reason().map(|r| r.name()),
            "requirement": e.reason().map(|r| r.requirements()[0]),
            "message": e.to_string(),
            "fallback": e.fallback().as_ref().map(latchkey_guest::GrantFallback::to_json),
        });
        println!("{out}");
    }
    Exit(code, format!("not unlocked: {e}"))
}

async fn cancel_on_signal(cancel: CancellationToken) {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
    cancel.cancel();
}
