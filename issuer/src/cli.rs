//! The `latchkey-issuer` command line: argument definitions and dispatch. `main.rs` only
//! calls [`main`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use latchkey::{GrantId, GuestId, LockId};
use tracing::{error, info};

use crate::commands::{
    AddLockOptions, DEFAULT_RSA_BITS, EnrollGuestOptions, KeygenOptions, add_lock_with,
    enroll_guest_with, keygen_with,
};
use crate::config::{
    DEFAULT_STATE_DIR, FileConfig, LogFormat, RunOverrides, resolve_public_url, resolve_run,
};
use crate::control::{self, ControlRequest};
use crate::daemon::Issuerd;
use crate::error::IssuerdError;
use crate::state::{self, Registry, StatePaths};
use crate::status::{GrantSummary, GuestSummary, IssuerStatus};
use crate::{logging, time};

const LONG_ABOUT: &str = "\
The Latchkey issuer: it enrolls locks and guests (phones), answers their sealed grant \
requests over MQTT with a LockGrant (RSA-OAEP wrapped, RSA-PSS signed) for the lock and a \
GuestGrant (AES-256-GCM sealed) for the guest, and revokes grants.

Typical setup:
  latchkey-issuer keygen
  latchkey-issuer add-lock --out ./front-door          # prints the lock id
  latchkey-issuer enroll-guest --lock <LOCK> --out alice.json
  latchkey-issuer run                                  # embedded broker on 127.0.0.1:1883

While `run` is up, revoke-grant, revoke-guest and list talk to it through \
STATE_DIR/control.sock. add-lock and enroll-guest may run at any time: the daemon picks up \
registry changes by itself.";

const AFTER_HELP: &str = "\
Logs go to stderr; RUST_LOG filters them (default: info, with the embedded broker at warn). \
Exit status: 0 on success, 1 on failure, 2 on a usage error.";

/// The command line.
#[derive(Debug, Parser)]
#[command(
    name = "latchkey-issuer",
    version,
    about = "Latchkey issuer: enrolls locks and guests, answers grant requests over MQTT, revokes grants",
    long_about = LONG_ABOUT,
    after_help = AFTER_HELP,
)]
pub struct Cli {
    /// TOML config file (see issuer.example.toml). Command-line flags override its values;
    /// relative paths in it are resolved against the file's directory. Unknown keys are
    /// errors.
    #[arg(long, short = 'c', global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// State directory holding the issuer key, registry.json, grants.json,
    /// revocations.json and control.sock. Created mode 0700.
    /// [default: `state_dir` from the config file, else ./issuer-state]
    #[arg(long, global = true, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// Log format on stderr: `human` lines or `json` (one object per line).
    /// [default: `log_format` from the config file, else human]
    #[arg(long, global = true, value_enum, value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,

    /// What to do.
    #[command(subcommand)]
    pub command: Cmd,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Generate the issuer's RSA signing key: STATE_DIR/issuer.key.pem (PKCS#8, mode 0600)
    /// and STATE_DIR/issuer.pub.pem (SPKI). Prints the key's SHA-256 fingerprint.
    Keygen(KeygenArgs),
    /// Register a lock: generate its RSA key pair and write DIR/lock.key.pem (0600),
    /// DIR/issuer.pub.pem and DIR/lock.toml (a ready lock config). Prints the lock id.
    AddLock(AddLockArgs),
    /// Enroll a guest (a phone): generate its enrollment key and write its enrollment
    /// bundle FILE (JSON, 0600). Prints the guest id.
    EnrollGuest(EnrollGuestArgs),
    /// Revoke one live grant: the running issuer publishes a signed Revocation to the lock
    /// and re-publishes it until the lock confirms it.
    RevokeGrant(RevokeGrantArgs),
    /// Revoke a guest's enrollment (its requests are refused from now on) and every live
    /// grant it holds.
    RevokeGuest(RevokeGuestArgs),
    /// List locks, guests, live grants, pending revocations and counters. Asks the running
    /// issuer; when none runs, reads the state files.
    List(ListArgs),
    /// Run the issuer daemon until SIGINT or SIGTERM.
    Run(RunArgs),
}

/// `keygen`.
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// RSA modulus size in bits (2048–4096).
    #[arg(long, default_value_t = DEFAULT_RSA_BITS, value_name = "BITS")]
    pub bits: usize,
    /// Replace an existing issuer key. Every lock must then be given the new
    /// issuer.pub.pem, or it refuses all grants. Refused while the issuer runs.
    #[arg(long)]
    pub force: bool,
}

/// `add-lock`.
#[derive(Debug, Args)]
pub struct AddLockArgs {
    /// The lock's id: 32 lowercase hex digits. [default: random]
    #[arg(long, value_name = "HEX")]
    pub lock_id: Option<LockId>,
    /// Directory for the lock's files (created mode 0700). Copy it to the lock; the private
    /// key never needs to exist anywhere else.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Broker URL the lock connects to, written into lock.toml (mqtt://host:port or
    /// mqtts://host:port). [default: `public_broker_url` from the config file, else
    /// `[broker] url`, else the embedded broker's listen address]
    #[arg(long, value_name = "URL")]
    pub broker_url: Option<String>,
    /// Bluetooth company id the lock expects in beacons, written into lock.toml (decimal
    /// or 0x-prefixed hex).
    #[arg(long, value_name = "ID", value_parser = parse_company_id, default_value = "0xFFFF")]
    pub company_id: u16,
    /// RSA modulus size of the lock key in bits (2048–4096).
    #[arg(long, default_value_t = DEFAULT_RSA_BITS, value_name = "BITS")]
    pub bits: usize,
    /// Re-key a lock that is already registered and overwrite existing files in DIR.
    #[arg(long)]
    pub force: bool,
}

/// `enroll-guest`.
#[derive(Debug, Args)]
pub struct EnrollGuestArgs {
    /// The guest's id: 32 lowercase hex digits. [default: random]
    #[arg(long, value_name = "HEX")]
    pub guest_id: Option<GuestId>,
    /// A lock the guest may open (32 hex digits). Repeat the flag or give several values;
    /// every lock must already be registered with add-lock.
    #[arg(long = "lock", value_name = "HEX", num_args = 1.., required = true)]
    pub locks: Vec<LockId>,
    /// Where to write the enrollment bundle (JSON, mode 0600). It holds the guest's secret
    /// enrollment key: hand it to the phone over a private channel, then delete it.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Broker URL the guest connects to, written into the bundle. [default: as for
    /// add-lock]
    #[arg(long, value_name = "URL")]
    pub broker_url: Option<String>,
    /// Bluetooth company id the guest advertises under (decimal or 0x-prefixed hex).
    #[arg(long, value_name = "ID", value_parser = parse_company_id, default_value = "0xFFFF")]
    pub company_id: u16,
    /// Re-enroll an enrolled guest with a new key (its old bundle stops working) and
    /// overwrite FILE.
    #[arg(long)]
    pub force: bool,
}

/// `revoke-grant`.
#[derive(Debug, Args)]
pub struct RevokeGrantArgs {
    /// The grant to revoke (32 hex digits, as logged at issue and shown by `list`).
    #[arg(long, value_name = "HEX")]
    pub grant: GrantId,
}

/// `revoke-guest`.
#[derive(Debug, Args)]
pub struct RevokeGuestArgs {
    /// The guest to revoke (32 hex digits).
    #[arg(long, value_name = "HEX")]
    pub guest: GuestId,
}

/// `list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Print the raw status as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// External broker URL: mqtt://[user[:pass]@]host[:port] or mqtts://…. `embedded`
    /// selects the embedded broker even if the config file names a URL.
    /// [default: `[broker] url` from the config file, else the embedded broker]
    #[arg(long, value_name = "URL")]
    pub broker: Option<String>,
    /// Address the embedded broker listens on. A port already in use is an error, never a
    /// silent fallback. [default: `[broker] listen`, else 127.0.0.1:1883]
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// CA certificate(s) (PEM) that sign the mqtts:// broker's certificate.
    /// [default: the system roots]
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS; its CN must be `issuer` for the
    /// deployment ACL. Needs --key-file and --ca-file.
    #[arg(long, value_name = "FILE")]
    pub cert_file: Option<PathBuf>,
    /// Private key (PEM) of --cert-file.
    #[arg(long, value_name = "FILE")]
    pub key_file: Option<PathBuf>,
    /// MQTT client id; keep it stable: the broker keeps the issuer's persistent session
    /// (requests queued while it was down) under it. [default: latchkey-issuer]
    #[arg(long, value_name = "ID")]
    pub client_id: Option<String>,
    /// MQTT topic prefix shared with locks and guests. [default: latchkey/v1]
    #[arg(long, value_name = "PREFIX")]
    pub topic_prefix: Option<String>,
    /// Accept requests timestamped within ± this many seconds of the issuer's clock
    /// (LK-ISS-4; 5–600). [default: 60]
    #[arg(long, value_name = "SECONDS")]
    pub request_window_s: Option<u64>,
    /// Capacity of the request replay cache; when full, requests are refused
    /// (LK-ISS-8; 16–10000000). [default: 65536]
    #[arg(long, value_name = "N")]
    pub request_cache_capacity: Option<usize>,
    /// Longest validity granted in seconds (LK-ISS-9). With --backdate-s it must stay
    /// within 60–2678400 and within the locks' own limit. [default: 3600]
    #[arg(long, value_name = "SECONDS")]
    pub max_grant_validity_s: Option<u64>,
    /// Start grants this many seconds in the past, so a lock whose clock runs behind
    /// accepts them at once (LK-ISS-9; 1–300). [default: 30]
    #[arg(long, value_name = "SECONDS")]
    pub backdate_s: Option<u64>,
    /// Most live grants tracked for revocation; beyond it requests are refused
    /// (LK-ISS-10; at least 1). [default: 1000000]
    #[arg(long, value_name = "N")]
    pub max_live_grants: Option<usize>,
    /// First re-publish interval of a revocation its lock has not confirmed; it doubles
    /// up to 15 minutes. [default: 30]
    #[arg(long, value_name = "SECONDS")]
    pub revocation_retry_s: Option<u64>,
}

impl RunArgs {
    fn overrides(&self) -> RunOverrides {
        RunOverrides {
            broker: self.broker.clone(),
            listen: self.listen,
            ca_file: self.ca_file.clone(),
            cert_file: self.cert_file.clone(),
            key_file: self.key_file.clone(),
            client_id: self.client_id.clone(),
            topic_prefix: self.topic_prefix.clone(),
            request_window_s: self.request_window_s,
            request_cache_capacity: self.request_cache_capacity,
            max_grant_validity_s: self.max_grant_validity_s,
            backdate_s: self.backdate_s,
            max_live_grants: self.max_live_grants,
            revocation_retry_s: self.revocation_retry_s,
        }
    }
}

fn parse_company_id(s: &str) -> Result<u16, String> {
    let parsed = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u16::from_str_radix(h, 16),
        None => s.parse(),
    };
    parsed.map_err(|_| format!("{s:?} is not a 16-bit company id (e.g. 0xFFFF or 65535)"))
}

/// Parses the process arguments and runs the command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let file = match &cli.config {
        Some(p) => match FileConfig::load(p) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        },
        None => FileConfig::default(),
    };
    logging::init(cli.log_format.or(file.log_format).unwrap_or_default());
    let state_dir = cli
        .state_dir
        .clone()
        .or_else(|| file.state_dir.clone())
        .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR));
    // The daemon reports through its log (journald, JSON collectors); the one-shot
    // commands print a plain message.
    let is_daemon = matches!(cli.command, Cmd::Run(_));
    match dispatch(cli.command, &state_dir, &file) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if is_daemon => {
            error!("{e}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(cmd: Cmd, state_dir: &Path, file: &FileConfig) -> Result<(), IssuerdError> {
    match cmd {
        Cmd::Keygen(a) => {
            let out = keygen_with(
                state_dir,
                &KeygenOptions {
                    bits: a.bits,
                    force: a.force,
                },
            )?;
            eprintln!(
                "wrote {} (0600) and {}\nissuer key SHA-256 fingerprint:",
                out.key_file.display(),
                out.pub_file.display()
            );
            println!("{}", out.fingerprint);
            Ok(())
        }
        Cmd::AddLock(a) => {
            let url = public_url(file, a.broker_url.as_deref());
            let mut opts = AddLockOptions::new(&a.out, url);
            opts.lock_id = a.lock_id;
            opts.company_id = a.company_id;
            opts.bits = a.bits;
            opts.force = a.force;
            let added = add_lock_with(state_dir, &opts)?;
            eprintln!(
                "registered lock {}\n  {} (0600: the lock's private key)\n  {}\n  {} (lock config)\n  lock key SHA-256 fingerprint {}",
                added.lock_id,
                added.key_file.display(),
                added.issuer_pub_file.display(),
                added.config_file.display(),
                added.fingerprint
            );
            println!("{}", added.lock_id);
            Ok(())
        }
        Cmd::EnrollGuest(a) => {
            let url = public_url(file, a.broker_url.as_deref());
            let mut opts = EnrollGuestOptions::new(a.locks, &a.out, url);
            opts.guest_id = a.guest_id;
            opts.company_id = a.company_id;
            opts.force = a.force;
            let guest = enroll_guest_with(state_dir, &opts)?;
            eprintln!(
                "enrolled guest {guest}; bundle {} (0600, holds the guest's secret key)",
                a.out.display()
            );
            println!("{guest}");
            Ok(())
        }
        Cmd::RevokeGrant(a) => {
            let reply = control::request(
                state_dir,
                &ControlRequest::RevokeGrant { grant_id: a.grant },
            )?;
            for r in reply.revoked.unwrap_or_default() {
                println!("revoked grant {} (lock {})", r.grant_id, r.lock_id);
            }
            Ok(())
        }
        Cmd::RevokeGuest(a) => {
            let reply = control::request(
                state_dir,
                &ControlRequest::RevokeGuest { guest_id: a.guest },
            )?;
            let revoked = reply.revoked.unwrap_or_default();
            println!(
                "revoked guest {} and {} live grant(s)",
                a.guest,
                revoked.len()
            );
            for r in revoked {
                println!("  grant {} (lock {})", r.grant_id, r.lock_id);
            }
            Ok(())
        }
        Cmd::List(a) => list(state_dir, a.json),
        Cmd::Run(a) => run(state_dir, file, &a),
    }
}

fn public_url(file: &FileConfig, flag: Option<&str>) -> String {
    let (url, guessed) = resolve_public_url(file, flag);
    if guessed {
        eprintln!(
            "note: broker URL {url} taken from the embedded broker's listen address; pass \
             --broker-url (or set public_broker_url) if the device reaches the broker elsewhere"
        );
    }
    url
}

fn run(state_dir: &Path, file: &FileConfig, args: &RunArgs) -> Result<(), IssuerdError> {
    let opts = resolve_run(state_dir.to_owned(), file, &args.overrides())?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(IssuerdError::io("start the async runtime in", state_dir))?;
    rt.block_on(async {
        let handle = Issuerd::start(opts).await?;
        info!(
            broker = %handle.broker_url(),
            control = %StatePaths::new(state_dir).control_socket().display(),
            "issuer running"
        );
        let mut sigterm =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).map_err(
                IssuerdError::io("install the SIGTERM handler for", state_dir),
            )?;
        let failed = tokio::select! {
            _ = tokio::signal::ctrl_c() => { info!("SIGINT received; shutting down"); false }
            _ = sigterm.recv() => { info!("SIGTERM received; shutting down"); false }
            _ = handle.stopped() => true,
        };
        handle.shutdown().await;
        if failed {
            Err(IssuerdError::Stopped)
        } else {
            Ok(())
        }
    })
}

fn list(state_dir: &Path, json: bool) -> Result<(), IssuerdError> {
    let status = match control::request(state_dir, &ControlRequest::Status) {
        Ok(reply) => reply
            .status
            .map(|s| *s)
            .ok_or_else(|| IssuerdError::Control("status reply without a status".to_owned()))?,
        Err(IssuerdError::ControlUnreachable { .. }) => {
            eprintln!("note: the issuer is not running; listing from the state files");
            offline_status(state_dir)?
        }
        Err(e) => return Err(e),
    };
    if json {
        let text = serde_json::to_string_pretty(&status)
            .map_err(|e| IssuerdError::Control(e.to_string()))?;
        println!("{text}");
    } else {
        print_status(&status);
    }
    Ok(())
}

fn offline_status(state_dir: &Path) -> Result<IssuerStatus, IssuerdError> {
    let paths = StatePaths::new(state_dir);
    let reg = Registry::load(&paths.registry())?;
    let now_s = time::now().secs();
    let live_grants = state::load_grants(&paths.grants())?
        .into_iter()
        .filter(|g| g.not_after > now_s)
        .map(|g| GrantSummary {
            grant_id: g.grant_id,
            lock_id: g.lock_id,
            guest_id: g.guest_id,
            session_id: g.session_id,
            not_after: g.not_after,
        })
        .collect();
    let pending_revocations = state::load_revocations(&paths.revocations())?
        .into_iter()
        .filter(|r| r.expires_at > now_s)
        .map(|r| crate::status::PendingRevocationSummary {
            grant_id: r.grant_id,
            lock_id: r.lock_id,
            expires_at: r.expires_at,
            publishes: r.publishes,
        })
        .collect();
    Ok(IssuerStatus {
        state_dir: paths.dir().display().to_string(),
        broker_url: String::new(),
        mqtt: "not running".to_owned(),
        topic_prefix: String::new(),
        started_at_s: 0,
        locks: reg.locks.keys().copied().collect(),
        guests: reg
            .guests
            .iter()
            .map(|(id, g)| GuestSummary {
                guest_id: *id,
                allowed_locks: g.allowed_locks.iter().copied().collect(),
                revoked: g.revoked,
            })
            .collect(),
        live_grants,
        pending_revocations,
        request_cache: 0,
        counters: Default::default(),
    })
}

fn print_status(s: &IssuerStatus) {
    let now_s = time::now().secs();
    if s.started_at_s > 0 {
        println!(
            "issuer: broker {} ({}), prefix {}, up {}",
            s.broker_url,
            s.mqtt,
            s.topic_prefix,
            human_duration(now_s.saturating_sub(s.started_at_s))
        );
    } else {
        println!("issuer: not running (state {})", s.state_dir);
    }
    println!("locks ({}):", s.locks.len());
    for l in &s.locks {
        println!("  {l}");
    }
    println!("guests ({}):", s.guests.len());
    for g in &s.guests {
        let locks: Vec<String> = g.allowed_locks.iter().map(ToString::to_string).collect();
        println!(
            "  {}{}  locks {}",
            g.guest_id,
            if g.revoked { " [revoked]" } else { "" },
            locks.join(",")
        );
    }
    println!("live grants ({}):", s.live_grants.len());
    for g in &s.live_grants {
        println!(
            "  {}  lock {}  guest {}  session {}  expires in {}",
            g.grant_id,
            g.lock_id,
            g.guest_id,
            g.session_id,
            human_duration(g.not_after.saturating_sub(now_s))
        );
    }
    println!(
        "revocations awaiting confirmation ({}):",
        s.pending_revocations.len()
    );
    for r in &s.pending_revocations {
        println!(
            "  grant {}  lock {}  published {}x",
            r.grant_id, r.lock_id, r.publishes
        );
    }
    if s.started_at_s > 0 {
        let c = &s.counters;
        println!(
            "requests: {} granted, refused {:?}; events: {} verified, refused {:?}; \
             request cache {}",
            c.requests_accepted,
            c.requests_refused,
            c.events_verified,
            c.events_refused,
            s.request_cache
        );
    }
}

fn human_duration(s: u64) -> String {
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;
    use latchkey::constants::DEFAULT_COMPANY_ID;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_flag_has_help() {
        fn walk(cmd: &clap::Command) {
            for a in cmd.get_arguments() {
                if a.get_id() == "help" || a.get_id() == "version" {
                    continue;
                }
                assert!(
                    a.get_help().is_some() || a.get_long_help().is_some(),
                    "{} --{} has no help",
                    cmd.get_name(),
                    a.get_id()
                );
            }
            for s in cmd.get_subcommands() {
                assert!(s.get_about().is_some(), "{} has no about", s.get_name());
                walk(s);
            }
        }
        walk(&Cli::command());
    }

    #[test]
    fn company_ids_parse_as_hex_or_decimal() {
        assert_eq!(parse_company_id("0xFFFF"), Ok(DEFAULT_COMPANY_ID));
        assert_eq!(parse_company_id("76"), Ok(76));
        assert!(parse_company_id("0x10000").is_err());
    }
}
