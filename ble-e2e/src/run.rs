//! `latchkey-ble-e2e run`: set up, boot each scenario, judge, report.

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use crate::facts::Facts;
use crate::report::{Outcome, Report};
use crate::scenario::{self, LOCK_THRESHOLD_DBM, Scenario};
use crate::world::{self, Binaries, World};
use crate::{btmon, crate_dir, uml};

/// Options of `run`.
#[derive(Debug, Args)]
pub struct RunOptions {
    /// Cache written by `ble-e2e/prepare` (the UML kernel `linux` and `btvirt`).
    /// [default: $LATCHKEY_BLE_CACHE, else ~/.cache/latchkey-ble-e2e]
    #[arg(long, value_name = "DIR")]
    cache: Option<PathBuf>,
    /// Where run folders (logs, btmon traces), summary.json and the deployment go.
    #[arg(long, value_name = "DIR", default_value = "target/ble-e2e")]
    out: PathBuf,
    /// Folder holding latchkey-issuer, latchkey-lock and latchkey-guest
    /// [default: this program's folder]
    #[arg(long, value_name = "DIR")]
    bin_dir: Option<PathBuf>,
    /// Run every scenario this many times (the pass count per scenario is reported).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    repeat: u32,
    /// Only these scenarios (repeatable; see `list`).
    #[arg(long, value_name = "NAME")]
    only: Vec<String>,
    /// Time limit of one boot, in seconds.
    #[arg(long, default_value_t = 120)]
    timeout_s: u64,
}

/// Why the scenarios could not be run at all (exit status 2).
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// File system error.
    #[error("{0}")]
    Io(io::Error),
    /// A daemon binary is not built.
    #[error(
        "{} is missing: build the daemons first (cargo build -p latchkey-issuer -p latchkey-lock -p latchkey-guest)",
        .0.display()
    )]
    MissingBinary(PathBuf),
    /// The kernel or btvirt is not in the cache.
    #[error("{} is missing: run ble-e2e/prepare first (builds and caches the UML kernel and btvirt)", .0.display())]
    NotPrepared(PathBuf),
    /// A host program the UML machine runs is not installed.
    #[error("{tool} is missing: install Debian's {package} (ble-e2e/prepare does)")]
    MissingTool {
        /// The program's path.
        tool: &'static str,
        /// Its package.
        package: &'static str,
    },
    /// A setup command failed.
    #[error("{command} failed:\n{output}")]
    Command {
        /// The command line.
        command: String,
        /// Its stderr.
        output: String,
    },
    /// The UML kernel could not be started.
    #[error("{0}")]
    Boot(String),
    /// Bad options.
    #[error("{0}")]
    Usage(String),
}

/// Boots run again after a UML kernel panic, per scenario run.
const MAX_PANIC_RETRIES: usize = 2;

/// Host programs run inside the UML machine, with their Debian packages.
const HOST_TOOLS: &[(&str, &str)] = &[
    ("/usr/bin/dbus-daemon", "dbus-daemon"),
    ("/usr/bin/dbus-send", "dbus-bin"),
    ("/usr/libexec/bluetooth/bluetoothd", "bluez"),
    ("/usr/bin/btmon", "bluez"),
];

/// Runs the command; exit status 0 all passed, 1 a scenario failed, 2 setup error.
pub fn main(opts: &RunOptions) -> ExitCode {
    match run(opts) {
        Ok(report) if report.all_passed() => ExitCode::SUCCESS,
        Ok(_) => ExitCode::from(1),
        Err(e) => {
            eprintln!("latchkey-ble-e2e: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(opts: &RunOptions) -> Result<Report, SetupError> {
    let scenarios = scenario::select(&opts.only).map_err(SetupError::Usage)?;
    let cache = opts.cache.clone().unwrap_or_else(default_cache);
    let kernel = prepared(&cache, "linux")?;
    let btvirt = prepared(&cache, "btvirt")?;
    for (tool, package) in HOST_TOOLS {
        if !Path::new(tool).exists() {
            return Err(SetupError::MissingTool { tool, package });
        }
    }
    let bin_dir = match &opts.bin_dir {
        Some(d) => d.clone(),
        None => std::env::current_exe()
            .map_err(SetupError::Io)?
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default(),
    };
    let bins = Binaries::find(&bin_dir)?;
    for p in [&bins.issuer, &bins.lock, &bins.guest, &bins.e2e, &btvirt] {
        visible_inside(p)?;
    }
    fs::create_dir_all(&opts.out).map_err(SetupError::Io)?;
    let out = fs::canonicalize(&opts.out).map_err(SetupError::Io)?;
    eprintln!(
        "setting up the deployment (issuer key, lock, two guests) in {}",
        out.join("world").display()
    );
    let world = World::create(&out.join("world"), &bins)?;
    let init = crate_dir().join("uml/init.sh");
    let limit = Duration::from_secs(opts.timeout_s);
    let mut report = Report::default();
    for round in 1..=opts.repeat {
        for s in &scenarios {
            let dir = out.join("runs").join(format!("{}-{round}", s.name));
            let mut panics = Vec::new();
            let (boot, last_panic) = loop {
                prepare_run_dir(&dir, &world, s, &bins, &btvirt)?;
                let boot = uml::boot(&kernel, &init, &dir, limit)?;
                // A panic of the UML kernel itself (seen: 6.1's L2CAP freeing a connection
                // as bluetoothd closed a socket, 1 boot in 60) says nothing about our
                // daemons: the boot is kept aside, reported, and run again, twice at most.
                match uml::kernel_panic(&dir) {
                    Some(what) if panics.len() < MAX_PANIC_RETRIES => {
                        let kept = dir.with_file_name(format!(
                            "{}-{round}-panic{}",
                            s.name,
                            panics.len() + 1
                        ));
                        let _ = fs::remove_dir_all(&kept);
                        fs::rename(&dir, &kept).map_err(SetupError::Io)?;
                        println!(
                            "KERNEL PANIC {} #{round}, boot kept in {}: {what}; booting again",
                            s.name,
                            kept.display()
                        );
                        panics.push(what);
                    }
                    last => break (boot, last),
                }
            };
            let trace = btmon::read(&dir.join("logs/btmon.log"));
            let facts = Facts::collect(&dir, World::guest_ids(), trace);
            let mut verdict = (s.judge)(&facts);
            if let Some(what) = last_panic {
                verdict
                    .failures
                    .push(format!("the UML kernel panicked: {what}"));
            }
            for what in &panics {
                verdict
                    .notes
                    .push(format!("retried after a UML kernel panic: {what}"));
            }
            verdict
                .figures
                .push(("UML kernel panics retried".into(), panics.len() as f64));
            let outcome = Outcome {
                scenario: s.name,
                round,
                dir,
                boot,
                verdict,
            };
            outcome.print_line();
            if !outcome.verdict.passed() {
                outcome.print_failure(opts.timeout_s);
            }
            report.push(outcome);
        }
    }
    report.print_summary(opts.repeat);
    report
        .write_json(&out.join("summary.json"))
        .map_err(SetupError::Io)?;
    Ok(report)
}

/// Host folders the machine mounts over (uml/init.sh): a program under them is invisible
/// inside.
const MOUNTED_OVER: &[&str] = &["/run", "/var/lib/bluetooth", "/proc", "/sys", "/dev"];

/// Refuses a program the UML machine could not see.
fn visible_inside(path: &Path) -> Result<(), SetupError> {
    let abs = fs::canonicalize(path).map_err(SetupError::Io)?;
    match MOUNTED_OVER.iter().find(|m| abs.starts_with(m)) {
        Some(m) => Err(SetupError::Usage(format!(
            "{} is under {m}, which the UML machine mounts over: move the build or the cache \
             (--cache, CARGO_TARGET_DIR)",
            abs.display()
        ))),
        None => Ok(()),
    }
}

fn default_cache() -> PathBuf {
    if let Some(c) = std::env::var_os("LATCHKEY_BLE_CACHE") {
        return c.into();
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"));
    base.join("latchkey-ble-e2e")
}

fn prepared(cache: &Path, name: &str) -> Result<PathBuf, SetupError> {
    let p = cache.join(name);
    if p.is_file() {
        Ok(p)
    } else {
        Err(SetupError::NotPrepared(p))
    }
}

/// A fresh run folder: the deployment, the helpers and the scenario's settings.
fn prepare_run_dir(
    dir: &Path,
    world: &World,
    s: &Scenario,
    bins: &Binaries,
    btvirt: &Path,
) -> Result<(), SetupError> {
    if dir.exists() {
        fs::remove_dir_all(dir).map_err(SetupError::Io)?;
    }
    fs::create_dir_all(dir.join("logs")).map_err(SetupError::Io)?;
    world.copy_into(dir)?;
    let src = crate_dir().join("uml");
    for file in ["lib.sh", "main.conf"] {
        fs::copy(src.join(file), dir.join(file)).map_err(SetupError::Io)?;
    }
    fs::write(dir.join("scenario.sh"), s.script).map_err(SetupError::Io)?;
    fs::write(dir.join("env"), env_file(s, bins, btvirt)).map_err(SetupError::Io)?;
    Ok(())
}

/// The settings init.sh sources, shell-quoted.
fn env_file(s: &Scenario, bins: &Binaries, btvirt: &Path) -> String {
    let mut vars: Vec<(&str, String)> = vec![
        ("ISSUER", bins.issuer.display().to_string()),
        ("LOCK", bins.lock.display().to_string()),
        ("GUEST", bins.guest.display().to_string()),
        ("E2E", bins.e2e.display().to_string()),
        ("BTVIRT", btvirt.display().to_string()),
        ("BTVIRT_RSSI", scenario::btvirt_rssi(s)),
        ("CONTROLLERS", s.controllers.to_string()),
        ("LOCK_ID", world::LOCK_ID.into()),
        ("LOCK_RSSI_THRESHOLD", LOCK_THRESHOLD_DBM.to_string()),
        ("BROKER", world::BROKER.into()),
        ("COMPANY_ID", world::COMPANY_ID.to_string()),
    ];
    for (name, id) in world::GUESTS {
        vars.push((if name == "g1" { "G1_ID" } else { "G2_ID" }, id.into()));
    }
    let mut out = String::from("# Written by latchkey-ble-e2e run for this boot.\n");
    for (k, v) in vars {
        let _ = writeln!(out, "{k}='{}'", v.replace('\'', r"'\''"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_file_quotes_values_and_names_every_setting() {
        let bins = Binaries {
            issuer: "/t/latchkey-issuer".into(),
            lock: "/t/latchkey-lock".into(),
            guest: "/t/it's/latchkey-guest".into(),
            e2e: "/t/latchkey-ble-e2e".into(),
        };
        let s = &scenario::ALL[1];
        let env = env_file(s, &bins, Path::new("/c/btvirt"));
        assert!(
            env.contains("GUEST='/t/it'\\''s/latchkey-guest'\n"),
            "{env}"
        );
        assert!(env.contains("BTVIRT_RSSI='-58,-90'\n"));
        assert!(env.contains("CONTROLLERS='2'\n"));
        assert!(env.contains("LOCK_RSSI_THRESHOLD='-70'\n"));
        assert!(env.contains("COMPANY_ID='65535'\n"));
        assert!(env.contains("G1_ID='e2e00000000000000000000000000001'\n"));
        assert!(env.contains("G2_ID='e2e00000000000000000000000000002'\n"));
        // Every variable lib.sh and the scenarios use is set.
        let used = [
            "ISSUER", "LOCK", "GUEST", "E2E", "BTVIRT", "LOCK_ID", "BROKER",
        ];
        for v in used {
            assert!(env.contains(&format!("\n{v}='")), "{v}");
        }
    }

    #[test]
    fn programs_under_folders_the_machine_mounts_over_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let prog = dir.path().join("prog");
        fs::write(&prog, "").expect("write");
        // tempdir is under /tmp (or $TMPDIR), which the machine leaves visible.
        if !MOUNTED_OVER.iter().any(|m| dir.path().starts_with(m)) {
            assert!(visible_inside(&prog).is_ok());
        }
        let err = visible_inside(Path::new("/dev/null")).expect_err("under /dev");
        assert!(err.to_string().contains("mounts over"), "{err}");
    }

    #[test]
    fn a_missing_cache_says_to_run_prepare() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = prepared(dir.path(), "linux").expect_err("empty cache");
        assert!(err.to_string().contains("ble-e2e/prepare"), "{err}");
    }
}
