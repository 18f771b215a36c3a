//! The `latchkey-issuer` command line: argument definitions and dispatch. `main.rs` only
//! calls [`main`]. What the read-only commands print is in [`show`]; admin users in
//! [`admin_user`].

/// `println!` that ignores a closed stdout (`latchkey-issuer audit | head`) instead of
/// panicking: nothing is left to tell the reader.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

mod admin_user;
mod show;
mod values;

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use latchkey::{GrantId, GuestId, LockId};
use tracing::{error, info};

use crate::commands::{
    ACTOR_CLI, AddLockOptions, DEFAULT_RSA_BITS, KeygenOptions, add_lock_with, keygen_with,
    rotate_lock_key, update_lock,
};
use crate::config::{
    DEFAULT_STATE_DIR, FileConfig, LogFormat, RunOverrides, resolve_kek, resolve_public_url,
    resolve_run,
};
use crate::control::{self, ControlRequest};
use crate::daemon::Issuerd;
use crate::enroll::{
    BundleFiles, EnrollGuestOptions, Enrollment, RotateGuestKeyOptions, enroll, rotate_guest_key,
};
use crate::error::IssuerdError;
use crate::policy::{Role, WeeklySchedule};
use crate::revoke::{OfflineRevocation, revoke_offline};
use crate::state::StatePaths;
use crate::status::RevokedGrant;
use crate::store::kek::{create_kek_file, read_kek_file};
use crate::store::{AccessChange, KekSource, LockUpdate, OpenMode, Store};
use crate::{fsutil, logging, qr, time};
use values::{Clearable, clearable, parse_max_unlocks, parse_position, parse_time, parse_time_ms};

const LONG_ABOUT: &str = "\
The Latchkey issuer: it enrolls locks and guests (phones), answers their sealed grant \
requests over MQTT with a LockGrant (RSA-OAEP wrapped, RSA-PSS signed) for the lock and a \
GuestGrant (AES-256-GCM sealed) for the guest, and revokes grants.

Typical setup:
  latchkey-issuer keygen                               # issuer key, KEK, registry
  latchkey-issuer add-lock --out ./front-door          # prints the lock id
  latchkey-issuer enroll-guest --lock <LOCK> --name alice --qr-png alice.png
  latchkey-issuer run                                  # embedded broker on 127.0.0.1:1883

The registry (STATE_DIR/registry.db, SQLite) keeps locks, guests, access rules, grants, \
revocations and the audit trail; enrollment keys are sealed in it under the key-encryption \
key (--kek-file, else LATCHKEY_ISSUER_KEK, else `kek_file` from the config, else \
STATE_DIR/kek.key). While `run` is up, revoke-grant, revoke-guest and list talk to it \
through STATE_DIR/control.sock; without it they work on the registry directly (a \
revocation is stored and published when the issuer starts). Every other command may run at \
any time: the daemon picks up registry changes by itself.";

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

    /// State directory holding the issuer key, registry.db (and kek.key by default) and
    /// control.sock. Created mode 0700.
    /// [default: `state_dir` from the config file, else ./issuer-state]
    #[arg(long, global = true, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// Key-encryption key of the registry: a file of 64 hex digits (or 32 raw bytes) that
    /// group and others cannot read. Keep it apart from the state directory's backups.
    /// [default: LATCHKEY_ISSUER_KEK (64 hex digits), else `kek_file` from the config
    /// file, else STATE_DIR/kek.key]
    #[arg(long, global = true, value_name = "FILE")]
    pub kek_file: Option<PathBuf>,

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
    /// and STATE_DIR/issuer.pub.pem (SPKI); create the registry and, unless one is
    /// configured or exists, its key-encryption key STATE_DIR/kek.key (0600). Prints the
    /// key's SHA-256 fingerprint.
    Keygen(KeygenArgs),
    /// Register a lock: generate its RSA key pair and write DIR/lock.key.pem (0600),
    /// DIR/issuer.pub.pem and DIR/lock.toml (a ready lock config). Prints the lock id.
    AddLock(AddLockArgs),
    /// Enroll a guest (a phone): generate its enrollment key, register it with an access
    /// rule at each --lock, and hand over its enrollment bundle: a QR code on the terminal
    /// (stderr), a JSON file (--out) and/or QR image files. Prints the guest id.
    EnrollGuest(EnrollGuestArgs),
    /// Revoke one live grant: a signed Revocation goes to the lock, re-published until the
    /// lock confirms it. Without a running issuer it is stored and published at its start.
    RevokeGrant(RevokeGrantArgs),
    /// Revoke a guest's enrollment (its requests are refused from now on) and every live
    /// grant it holds.
    RevokeGuest(RevokeGuestArgs),
    /// List locks, guests, live grants, pending revocations and counters. Asks the running
    /// issuer; when none runs, reads the registry.
    List(ListArgs),
    /// Show a guest: name, key version, access rules, usage, grants, recent audit entries.
    ShowGuest(ShowGuestArgs),
    /// Show a lock: name, time zone, key fingerprint, when last heard from, who may open
    /// it, its grants and recent audit entries.
    ShowLock(ShowLockArgs),
    /// Give a guest a new enrollment key (its old bundle stops working) and a new bundle.
    RotateGuestKey(RotateGuestKeyArgs),
    /// Give a lock a new key pair (same id) and write its new files.
    RotateLockKey(RotateLockKeyArgs),
    /// Change a lock's name, time zone or position.
    SetLock(SetLockArgs),
    /// Create, change or remove a guest's access rules at locks.
    SetAccess(SetAccessArgs),
    /// Read the audit trail, newest first.
    Audit(AuditArgs),
    /// List anomaly alerts (unacknowledged by default), or acknowledge one.
    Alerts(AlertsArgs),
    /// Manage the admin web UI's users.
    AdminUser(AdminUserArgs),
    /// Re-seal every enrollment key under a new key-encryption key. The issuer must not be
    /// running; afterwards point --kek-file / kek_file at the new key.
    RekeyDb(RekeyDbArgs),
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
    /// issuer.pub.pem, or it refuses all grants. Refused while the issuer runs. The
    /// key-encryption key is never replaced.
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
    /// What goes into the lock's files.
    #[command(flatten)]
    pub files: LockFilesArgs,
    /// Re-key a lock that is already registered and overwrite existing files in DIR.
    #[arg(long)]
    pub force: bool,
    /// A name for people, e.g. "front door".
    #[arg(long, value_name = "TEXT", default_value = "")]
    pub name: String,
    /// IANA time zone of the lock's site; access schedules are in its local time.
    #[arg(long, value_name = "ZONE", default_value = "UTC")]
    pub timezone: String,
    /// The lock's position, LATITUDE,LONGITUDE in degrees (anomaly detection uses the
    /// distance between locks).
    #[arg(long, value_name = "LAT,LON", value_parser = parse_position, allow_hyphen_values = true)]
    pub position: Option<(f64, f64)>,
}

/// The lock-file flags of `add-lock` and `rotate-lock-key`.
#[derive(Debug, Args)]
pub struct LockFilesArgs {
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
}

impl LockFilesArgs {
    /// Options for writing the lock's files to `out`.
    fn options(&self, file: &FileConfig, out: &Path, kek: &KekSource) -> AddLockOptions {
        let mut opts = AddLockOptions::new(out, public_url(file, self.broker_url.as_deref()));
        opts.company_id = self.company_id;
        opts.bits = self.bits;
        opts.kek = kek.clone();
        opts
    }
}

/// The access-rule flags of `enroll-guest` and `set-access`.
#[derive(Debug, Args)]
pub struct AccessArgs {
    /// The guest's role at the locks: admin (no schedule or limit), resident, or guest (needs
    /// --valid-until; grants of at most 15 minutes). [default for a new rule: resident]
    #[arg(long, value_name = "ROLE")]
    pub role: Option<Role>,
    /// No access before this time: RFC 3339 (2026-05-01T08:00:00Z) or Unix seconds;
    /// `none` removes the bound.
    #[arg(long, value_name = "TIME", value_parser = |s: &str| clearable(s, parse_time))]
    pub valid_from: Option<Clearable<u64>>,
    /// No access from this time on (same forms as --valid-from).
    #[arg(long, value_name = "TIME", value_parser = |s: &str| clearable(s, parse_time))]
    pub valid_until: Option<Clearable<u64>>,
    /// Weekly schedule in the lock's local time, e.g. "Mon-Fri 08:00-18:00; Sat
    /// 09:00-12:00" (a range may cross midnight; docs/policy.md has the grammar); `none`
    /// removes it.
    #[arg(long, value_name = "TEXT", value_parser = |s: &str| clearable(s, |t| WeeklySchedule::parse(t).map_err(|e| e.to_string())))]
    pub schedule: Option<Clearable<WeeklySchedule>>,
    /// Most unlocks in total at each lock; `none` removes the limit.
    #[arg(long, value_name = "N", value_parser = |s: &str| clearable(s, parse_max_unlocks))]
    pub max_unlocks: Option<Clearable<u32>>,
}

impl AccessArgs {
    fn change(&self) -> AccessChange {
        AccessChange {
            role: self.role,
            valid_from: self.valid_from.map(Clearable::change),
            valid_until: self.valid_until.map(Clearable::change),
            schedule: self.schedule.clone().map(Clearable::change),
            max_unlocks: self.max_unlocks.map(Clearable::change),
        }
    }
}

/// Where a bundle goes: the flags of `enroll-guest` and `rotate-guest-key`.
#[derive(Debug, Args)]
pub struct BundleArgs {
    /// Write the enrollment bundle to FILE (JSON, mode 0600). It holds the guest's secret
    /// enrollment key: hand it to the phone over a private channel, then delete it.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Write the bundle's QR code as a PNG (mode 0600; it holds the secret key).
    #[arg(long, value_name = "FILE")]
    pub qr_png: Option<PathBuf>,
    /// Write the bundle's QR code as an SVG (mode 0600; it holds the secret key).
    #[arg(long, value_name = "FILE")]
    pub qr_svg: Option<PathBuf>,
    /// Do not draw the QR code on the terminal. (It is drawn on stderr only when stderr is
    /// a terminal: never into a log.)
    #[arg(long)]
    pub no_qr: bool,
    /// Broker URL the guest connects to, written into the bundle. [default: as for
    /// add-lock]
    #[arg(long, value_name = "URL")]
    pub broker_url: Option<String>,
    /// Bluetooth company id the guest advertises under (decimal or 0x-prefixed hex).
    #[arg(long, value_name = "ID", value_parser = parse_company_id, default_value = "0xFFFF")]
    pub company_id: u16,
}

impl BundleArgs {
    fn files(&self) -> BundleFiles {
        BundleFiles {
            json: self.out.clone(),
            qr_png: self.qr_png.clone(),
            qr_svg: self.qr_svg.clone(),
        }
    }

    /// Whether the QR code goes to the terminal; refuses a run that would hand the guest
    /// nothing.
    fn terminal_qr(&self) -> Result<bool, IssuerdError> {
        let terminal = !self.no_qr && std::io::stderr().is_terminal();
        if !terminal && self.out.is_none() && self.qr_png.is_none() && self.qr_svg.is_none() {
            return Err(IssuerdError::invalid(
                "outputs",
                "nothing would hand the guest its bundle: give --out FILE, --qr-png FILE or \
                 --qr-svg FILE, or run in a terminal without --no-qr",
            ));
        }
        Ok(terminal)
    }
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
    /// A name for people, e.g. "alice".
    #[arg(long, value_name = "TEXT", default_value = "")]
    pub name: String,
    /// Its access rule at every --lock.
    #[command(flatten)]
    pub access: AccessArgs,
    /// Where the bundle goes.
    #[command(flatten)]
    pub bundle: BundleArgs,
    /// Re-enroll an enrolled guest with a new key (its old bundle stops working, its access
    /// rules are replaced) and overwrite existing files.
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

/// `show-guest`.
#[derive(Debug, Args)]
pub struct ShowGuestArgs {
    /// The guest (32 hex digits).
    #[arg(long, value_name = "HEX")]
    pub guest: GuestId,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `show-lock`.
#[derive(Debug, Args)]
pub struct ShowLockArgs {
    /// The lock (32 hex digits).
    #[arg(long, value_name = "HEX")]
    pub lock: LockId,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `rotate-guest-key`.
#[derive(Debug, Args)]
pub struct RotateGuestKeyArgs {
    /// The guest (32 hex digits).
    #[arg(long, value_name = "HEX")]
    pub guest: GuestId,
    /// Where the new bundle goes.
    #[command(flatten)]
    pub bundle: BundleArgs,
    /// Also revoke the guest's live grants (they were sealed to the old key's holder).
    #[arg(long)]
    pub revoke_grants: bool,
    /// Overwrite existing files.
    #[arg(long)]
    pub force: bool,
}

/// `rotate-lock-key`.
#[derive(Debug, Args)]
pub struct RotateLockKeyArgs {
    /// The lock (32 hex digits).
    #[arg(long, value_name = "HEX")]
    pub lock: LockId,
    /// Directory for the lock's new files (lock.key.pem, issuer.pub.pem, lock.toml).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// What goes into the lock's files.
    #[command(flatten)]
    pub files: LockFilesArgs,
    /// Overwrite existing files in DIR.
    #[arg(long)]
    pub force: bool,
}

/// `set-lock`.
#[derive(Debug, Args)]
pub struct SetLockArgs {
    /// The lock (32 hex digits).
    #[arg(long, value_name = "HEX")]
    pub lock: LockId,
    /// New name.
    #[arg(long, value_name = "TEXT")]
    pub name: Option<String>,
    /// New IANA time zone (e.g. Europe/Zurich).
    #[arg(long, value_name = "ZONE")]
    pub timezone: Option<String>,
    /// New position LATITUDE,LONGITUDE in degrees, or `none`.
    #[arg(long, value_name = "LAT,LON", value_parser = |s: &str| clearable(s, parse_position), allow_hyphen_values = true)]
    pub position: Option<Clearable<(f64, f64)>>,
}

/// `set-access`.
#[derive(Debug, Args)]
pub struct SetAccessArgs {
    /// The guest (32 hex digits).
    #[arg(long, value_name = "HEX")]
    pub guest: GuestId,
    /// The lock(s) the rule is about; a missing rule is created.
    #[arg(long = "lock", value_name = "HEX", num_args = 1.., required = true)]
    pub locks: Vec<LockId>,
    /// The fields to set (the others stay as they are).
    #[command(flatten)]
    pub access: AccessArgs,
    /// Remove the rule instead: the guest may no longer open these locks.
    #[arg(long, conflicts_with_all = ["role", "valid_from", "valid_until", "schedule", "max_unlocks"])]
    pub remove: bool,
}

/// `audit`.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only entries about this lock.
    #[arg(long, value_name = "HEX")]
    pub lock: Option<LockId>,
    /// Only entries about this guest.
    #[arg(long, value_name = "HEX")]
    pub guest: Option<GuestId>,
    /// Only entries about this grant.
    #[arg(long, value_name = "HEX")]
    pub grant: Option<GrantId>,
    /// Only entries of this kind (unlock, rejection, grant_issued, request_refused,
    /// lock_message_refused, grant_revoked, guest_enrolled, …).
    #[arg(long, value_name = "KIND")]
    pub kind: Option<String>,
    /// Only entries with this reason (bad_seal, replay, …).
    #[arg(long, value_name = "REASON")]
    pub reason: Option<String>,
    /// Only entries from this source: issuer, lock or admin.
    #[arg(long, value_name = "SOURCE", value_parser = ["issuer", "lock", "admin"])]
    pub source: Option<String>,
    /// Entries at or after this time (RFC 3339 or Unix seconds).
    #[arg(long, value_name = "TIME", value_parser = parse_time_ms)]
    pub since: Option<u64>,
    /// Entries before this time (RFC 3339 or Unix seconds).
    #[arg(long, value_name = "TIME", value_parser = parse_time_ms)]
    pub until: Option<u64>,
    /// At most this many entries.
    #[arg(long, default_value_t = 50, value_name = "N")]
    pub limit: u32,
    /// Skip the newest N matching entries (paging).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub offset: u64,
    /// Print JSON (one array).
    #[arg(long)]
    pub json: bool,
}

/// `alerts`.
#[derive(Debug, Args)]
pub struct AlertsArgs {
    /// Include acknowledged alerts.
    #[arg(long)]
    pub all: bool,
    /// At most this many alerts.
    #[arg(long, default_value_t = 50, value_name = "N")]
    pub limit: u32,
    /// Acknowledge this alert instead of listing.
    #[arg(long, value_name = "ALERT_ID")]
    pub ack: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `admin-user`.
#[derive(Debug, Args)]
pub struct AdminUserArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: AdminUserCmd,
}

/// `admin-user` subcommands.
#[derive(Debug, Subcommand)]
pub enum AdminUserCmd {
    /// Add a user (password from --password-file or prompted twice, without echo).
    Add(AdminPasswordArgs),
    /// Set a user's password (ends its sessions and lifts a lockout).
    Passwd(AdminPasswordArgs),
    /// List users.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a user and its sessions.
    Remove {
        /// The user.
        name: String,
    },
}

/// A user and where its password comes from.
#[derive(Debug, Args)]
pub struct AdminPasswordArgs {
    /// The user's login name (1–64 of A-Z a-z 0-9 . _ - @).
    pub name: String,
    /// Read the password from the first line of FILE (which group and others must not be
    /// able to read) instead of prompting.
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
}

/// `rekey-db`.
#[derive(Debug, Args)]
pub struct RekeyDbArgs {
    /// The new key-encryption key: an existing key file (64 hex digits or 32 raw bytes,
    /// mode 0600), or a path where a new random one is created.
    #[arg(long, value_name = "FILE")]
    pub new_kek_file: PathBuf,
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
    /// Accept lock messages timestamped within ± this many seconds (LK-EVT-3;
    /// 60–86400). [default: 3600]
    #[arg(long, value_name = "SECONDS")]
    pub event_window_s: Option<u64>,
    /// Lock message ids remembered per lock against replays (LK-EVT-4; 16–1000000).
    /// [default: 4096]
    #[arg(long, value_name = "N")]
    pub event_replay_capacity: Option<usize>,
    /// Grant requests a guest may make in a burst (LK-ISS-11; 1–10000). [default: 10]
    #[arg(long, value_name = "N")]
    pub rate_guest_burst: Option<u32>,
    /// Requests per hour a guest's allowance refills (LK-ISS-11; 1–1000000).
    /// [default: 120]
    #[arg(long, value_name = "N")]
    pub rate_guest_per_hour: Option<u32>,
    /// Grant requests for one lock in a burst (LK-ISS-11; 1–10000). [default: 60]
    #[arg(long, value_name = "N")]
    pub rate_lock_burst: Option<u32>,
    /// Requests per hour a lock's allowance refills (LK-ISS-11; 1–1000000).
    /// [default: 3600]
    #[arg(long, value_name = "N")]
    pub rate_lock_per_hour: Option<u32>,
    /// Address of the admin web (plain HTTP: keep it on loopback and put a TLS proxy in
    /// front for remote access). A port in use is an error, never a silent fallback.
    /// [default: `[web] listen`, else 127.0.0.1:8080]
    #[arg(long, value_name = "ADDR")]
    pub web_listen: Option<SocketAddr>,
    /// Do not serve the admin web.
    #[arg(long, conflicts_with = "web_listen")]
    pub no_web: bool,
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
            kek_file: None,
            event_window_s: self.event_window_s,
            event_replay_capacity: self.event_replay_capacity,
            rate_guest_burst: self.rate_guest_burst,
            rate_guest_per_hour: self.rate_guest_per_hour,
            rate_lock_burst: self.rate_lock_burst,
            rate_lock_per_hour: self.rate_lock_per_hour,
            web_listen: self.web_listen,
            no_web: self.no_web,
            public_broker_url: None,
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
    let ctx = Context {
        kek: resolve_kek(cli.kek_file.as_deref(), &file),
        kek_flag: cli.kek_file.clone(),
        state_dir,
        file,
    };
    // The daemon reports through its log (journald, JSON collectors); the one-shot
    // commands print a plain message.
    let is_daemon = matches!(cli.command, Cmd::Run(_));
    match dispatch(cli.command, &ctx) {
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

/// What every command needs.
struct Context {
    state_dir: PathBuf,
    file: FileConfig,
    kek: KekSource,
    kek_flag: Option<PathBuf>,
}

impl Context {
    fn store(&self, mode: OpenMode) -> Result<Store, IssuerdError> {
        Store::open(&StatePaths::new(&self.state_dir), &self.kek, mode)
    }
}

fn dispatch(cmd: Cmd, ctx: &Context) -> Result<(), IssuerdError> {
    let state_dir = ctx.state_dir.as_path();
    match cmd {
        Cmd::Keygen(a) => {
            let out = keygen_with(
                state_dir,
                &KeygenOptions {
                    bits: a.bits,
                    force: a.force,
                    kek: ctx.kek.clone(),
                },
            )?;
            eprintln!(
                "wrote {} (0600) and {}; registry {}",
                out.key_file.display(),
                out.pub_file.display(),
                out.registry.display()
            );
            if let Some(k) = &out.kek_file_created {
                eprintln!(
                    "created the registry's key-encryption key {} (0600): back it up apart \
                     from the state directory; without it the enrollment keys are lost",
                    k.display()
                );
            }
            eprintln!("issuer key SHA-256 fingerprint:");
            out!("{}", out.fingerprint);
            Ok(())
        }
        Cmd::AddLock(a) => {
            let mut opts = a.files.options(&ctx.file, &a.out, &ctx.kek);
            opts.lock_id = a.lock_id;
            opts.force = a.force;
            opts.name = a.name;
            opts.timezone = a.timezone;
            opts.coordinates = a.position;
            let added = add_lock_with(state_dir, &opts)?;
            print_added_lock("registered lock", &added);
            Ok(())
        }
        Cmd::EnrollGuest(a) => {
            let terminal = a.bundle.terminal_qr()?;
            let url = public_url(&ctx.file, a.bundle.broker_url.as_deref());
            let files = a.bundle.files();
            let mut opts = EnrollGuestOptions::new(a.locks, "", url);
            opts.out_file = files.json.clone();
            opts.qr_png = files.qr_png.clone();
            opts.qr_svg = files.qr_svg.clone();
            opts.guest_id = a.guest_id;
            opts.company_id = a.bundle.company_id;
            opts.force = a.force;
            opts.name = a.name;
            opts.access = a.access.change();
            opts.kek = ctx.kek.clone();
            let enrolled = enroll(state_dir, &opts)?;
            eprintln!("enrolled guest {}", enrolled.guest_id);
            hand_over(&enrolled, &files, terminal)?;
            out!("{}", enrolled.guest_id);
            Ok(())
        }
        Cmd::RevokeGrant(a) => {
            let revoked = revoke(
                ctx,
                ControlRequest::RevokeGrant { grant_id: a.grant },
                OfflineRevocation::Grant(a.grant),
            )?;
            for r in &revoked.grants {
                out!("revoked grant {} (lock {})", r.grant_id, r.lock_id);
            }
            revoked.note();
            Ok(())
        }
        Cmd::RevokeGuest(a) => {
            let revoked = revoke(
                ctx,
                ControlRequest::RevokeGuest { guest_id: a.guest },
                OfflineRevocation::Guest(a.guest),
            )?;
            out!(
                "revoked guest {} and {} live grant(s)",
                a.guest,
                revoked.grants.len()
            );
            for r in &revoked.grants {
                out!("  grant {} (lock {})", r.grant_id, r.lock_id);
            }
            revoked.note();
            Ok(())
        }
        Cmd::List(a) => show::list(ctx, a.json),
        Cmd::ShowGuest(a) => show::guest(&ctx.store(OpenMode::Existing)?, &a.guest, a.json),
        Cmd::ShowLock(a) => show::lock(&ctx.store(OpenMode::Existing)?, &a.lock, a.json),
        Cmd::RotateGuestKey(a) => {
            let terminal = a.bundle.terminal_qr()?;
            let files = a.bundle.files();
            let rotated = rotate_guest_key(
                state_dir,
                &RotateGuestKeyOptions {
                    guest_id: a.guest,
                    files: files.clone(),
                    broker_url: public_url(&ctx.file, a.bundle.broker_url.as_deref()),
                    company_id: a.bundle.company_id,
                    force: a.force,
                    kek: ctx.kek.clone(),
                },
            )?;
            eprintln!(
                "guest {} has a new enrollment key (key version {}); its old bundle no longer works",
                rotated.guest_id, rotated.key_version
            );
            hand_over(&rotated, &files, terminal)?;
            if a.revoke_grants {
                let revoked = revoke(
                    ctx,
                    ControlRequest::RevokeGrantsOf { guest_id: a.guest },
                    OfflineRevocation::GrantsOf(a.guest),
                )?;
                out!("revoked {} live grant(s)", revoked.grants.len());
                for r in &revoked.grants {
                    out!("  grant {} (lock {})", r.grant_id, r.lock_id);
                }
                revoked.note();
            }
            Ok(())
        }
        Cmd::RotateLockKey(a) => {
            let mut opts = a.files.options(&ctx.file, &a.out, &ctx.kek);
            opts.lock_id = Some(a.lock);
            opts.force = a.force;
            let added = rotate_lock_key(state_dir, &opts)?;
            print_added_lock("new key for lock", &added);
            eprintln!(
                "install the new files on the lock now: grants for it are wrapped to the new key"
            );
            Ok(())
        }
        Cmd::SetLock(a) => {
            let update = LockUpdate {
                name: a.name,
                timezone: a.timezone,
                coordinates: a.position.map(Clearable::change),
            };
            update_lock(state_dir, &ctx.kek, &a.lock, &update)?;
            eprintln!("updated lock {}", a.lock);
            Ok(())
        }
        Cmd::SetAccess(a) => {
            let mut store = ctx.store(OpenMode::Existing)?;
            let now = time::now().0;
            if a.remove {
                for l in &a.locks {
                    store.remove_access(&a.guest, l, now, ACTOR_CLI)?;
                }
                eprintln!(
                    "guest {} may no longer open {} lock(s)",
                    a.guest,
                    a.locks.len()
                );
            } else {
                store.set_access(&a.guest, &a.locks, &a.access.change(), now, ACTOR_CLI)?;
                eprintln!(
                    "access of guest {} set at {} lock(s)",
                    a.guest,
                    a.locks.len()
                );
            }
            Ok(())
        }
        Cmd::Audit(a) => show::audit(&ctx.store(OpenMode::Existing)?, &a),
        Cmd::Alerts(a) => {
            let mut store = ctx.store(OpenMode::Existing)?;
            if let Some(id) = &a.ack {
                store.acknowledge_alert(id, time::now().0, ACTOR_CLI)?;
                eprintln!("acknowledged alert {id}");
                return Ok(());
            }
            show::alerts(&store, &a)
        }
        Cmd::AdminUser(a) => admin_user::run(&mut ctx.store(OpenMode::Existing)?, a.command),
        Cmd::RekeyDb(a) => rekey_db(ctx, &a.new_kek_file),
        Cmd::Run(a) => run(ctx, &a),
    }
}

fn print_added_lock(what: &str, added: &crate::commands::AddedLock) {
    eprintln!(
        "{what} {}\n  {} (0600: the lock's private key)\n  {}\n  {} (lock config)\n  lock key SHA-256 fingerprint {}",
        added.lock_id,
        added.key_file.display(),
        added.issuer_pub_file.display(),
        added.config_file.display(),
        added.fingerprint
    );
    out!("{}", added.lock_id);
}

/// Tells where the bundle went, and draws its QR code on the terminal.
fn hand_over(e: &Enrollment, files: &BundleFiles, terminal: bool) -> Result<(), IssuerdError> {
    if let Some(p) = &files.json {
        eprintln!(
            "  bundle {} (0600, holds the guest's secret key)",
            p.display()
        );
    }
    for p in [&files.qr_png, &files.qr_svg].into_iter().flatten() {
        eprintln!(
            "  QR code {} (0600, holds the guest's secret key)",
            p.display()
        );
    }
    if terminal {
        let code = qr::terminal(&e.qr_text)?;
        eprintln!(
            "scan with the guest (latchkey-guest enroll --qr-image, or a phone); it is the \
             guest's secret key:\n\n{}",
            code.as_str()
        );
    }
    Ok(())
}

/// Grants revoked, and whether by the running daemon.
struct Revoked {
    grants: Vec<RevokedGrant>,
    offline: bool,
}

impl Revoked {
    fn note(&self) {
        if self.offline {
            eprintln!(
                "note: the issuer is not running; the revocation(s) are stored and will be \
                 published when it starts"
            );
        }
    }
}

/// Through the running daemon if there is one, else on the registry directly.
fn revoke(
    ctx: &Context,
    online: ControlRequest,
    offline: OfflineRevocation,
) -> Result<Revoked, IssuerdError> {
    match control::request(&ctx.state_dir, &online) {
        Ok(reply) => Ok(Revoked {
            grants: reply.revoked.unwrap_or_default(),
            offline: false,
        }),
        Err(IssuerdError::ControlUnreachable { path, source }) => {
            match revoke_offline(&ctx.state_dir, &ctx.kek, offline) {
                Ok(grants) => Ok(Revoked {
                    grants,
                    offline: true,
                }),
                // It holds the state directory but does not answer: starting or stuck.
                Err(IssuerdError::AlreadyRunning { .. }) => {
                    Err(IssuerdError::ControlUnreachable { path, source })
                }
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}

fn rekey_db(ctx: &Context, new_file: &Path) -> Result<(), IssuerdError> {
    let paths = StatePaths::new(&ctx.state_dir);
    let Some(_lock) = fsutil::FileLock::try_acquire(&paths.daemon_lock())? else {
        return Err(IssuerdError::AlreadyRunning {
            dir: paths.dir().to_owned(),
        });
    };
    let mut store = ctx.store(OpenMode::Existing)?;
    let (new, created) = if new_file.exists() {
        (read_kek_file(new_file)?, false)
    } else {
        (create_kek_file(new_file, &mut crate::rng::os_rng()?)?, true)
    };
    let old_origin = store.kek_origin().to_string();
    let n = store.rekey(new)?;
    eprintln!(
        "re-sealed {n} enrollment key(s) under {}{}; the old key ({old_origin}) no longer \
         opens the registry: point --kek-file / `kek_file` at the new one{}",
        new_file.display(),
        if created { " (created, 0600)" } else { "" },
        if ctx.kek_flag.is_none() && ctx.kek.is_default_file() {
            " (or move it to STATE_DIR/kek.key)"
        } else {
            ""
        }
    );
    Ok(())
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

fn run(ctx: &Context, args: &RunArgs) -> Result<(), IssuerdError> {
    let state_dir = ctx.state_dir.as_path();
    let mut flags = args.overrides();
    flags.kek_file = ctx.kek_flag.clone();
    let opts = resolve_run(state_dir.to_owned(), &ctx.file, &flags)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(IssuerdError::io("start the async runtime in", state_dir))?;
    rt.block_on(async {
        let handle = Issuerd::start(opts).await?;
        info!(
            broker = %handle.broker_url(),
            control = %StatePaths::new(state_dir).control_socket().display(),
            web = %handle.web_addr().map_or("off".to_owned(), |a| format!("http://{a}/")),
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
