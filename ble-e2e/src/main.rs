//! `latchkey-ble-e2e`: the Latchkey daemons end to end over the real BlueZ stack.
//!
//! `run` boots one User-Mode Linux machine per scenario (kernel and btvirt from
//! `ble-e2e/prepare`), in which D-Bus, btvirt's emulated radio, `bluetoothd`, `btmon` and the
//! real `latchkey-issuer`, `latchkey-lock` (hci0) and `latchkey-guest` (hci1, hci2) run. It
//! then judges each scenario from the daemons' JSON logs, the guests' outcomes and the HCI
//! trace, and prints a verdict per scenario with the timings it measured.
//!
//! `replay-attacker` and `lockout-attacker` are the third controller of the `replay` and
//! `lockout` scenarios; they run inside the UML machine.

mod attacker;
mod beacons;
mod btmon;
mod facts;
mod judge;
mod lockout_attacker;
mod report;
mod run;
mod scenario;
mod uml;
mod world;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the scenarios (all, or those named with --only), each in its own UML boot.
    ///
    /// Exit status 0 when every run of every scenario passed, 1 otherwise, 2 on a setup
    /// error (missing kernel, binaries, …).
    Run(run::RunOptions),
    /// List the scenarios.
    List,
    /// (Inside the UML machine) record beacons of COMPANY_ID on ADAPTER until STOP_FILE
    /// exists, then re-advertise what was recorded.
    ReplayAttacker(attacker::AttackerOptions),
    /// (Inside the UML machine) connect to the lock on ADAPTER, Select the guests' beacons
    /// first and answer each challenge with a forged Response, STEALS times.
    LockoutAttacker(lockout_attacker::LockoutAttackerOptions),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(opts) => run::main(&opts),
        Command::List => {
            for s in scenario::ALL {
                println!("{:<14} {}", s.name, s.title);
            }
            ExitCode::SUCCESS
        }
        Command::ReplayAttacker(opts) => attacker::main(&opts),
        Command::LockoutAttacker(opts) => lockout_attacker::main(&opts),
    }
}

/// Where this crate's sources are (scenario scripts, prepare, the UML init).
fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}
