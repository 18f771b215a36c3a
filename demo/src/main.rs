//! `latchkey-demo`: the whole protocol in one process (docs/daemons.md, "Demo").

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use latchkey_demo::{DemoOptions, demo};

/// The Latchkey demo: one process runs an embedded MQTT broker on a free loopback port,
/// the issuer, a lock and a phone on one simulated Bluetooth LE air.
///
/// It enrolls the phone by QR code and unlocks, printing how long each step took: getting
/// the grant over MQTT, advertising until the lock connected, the Select, the challenge, and
/// the response until the unlock. Then it shows two attacks being refused: a third radio
/// re-advertising the beacon it captured during the unlock (the lock answers `replay`), and
/// a phone enrolled with the wrong key (the issuer answers `bad_seal` and sends no grant).
/// Last, the operator revokes the phone, which tries again with the grant it holds: the lock
/// refuses it (`session_revoked`), the issuer refuses a new one (`guest_revoked`), and the
/// guest's audit trail and the alert are printed.
///
/// Nothing is written outside a temporary directory, which is removed at the end.
/// Set RUST_LOG (e.g. RUST_LOG=info) to also see the daemons' logs on stderr.
///
/// Exit status: 0 when all four outcomes are as expected, 1 when one is not, 2 when the
/// demo could not run (e.g. a daemon failed to start).
#[derive(Debug, Parser)]
#[command(
    name = "latchkey-demo",
    version,
    about,
    long_about,
    max_term_width = 100
)]
struct Cli {
    /// Signal strength (dBm) at which every radio hears every other. The lock's default
    /// threshold is -70 dBm: try -80 to see the unlock refused for distance.
    #[arg(long, default_value_t = -55, value_name = "DBM", allow_negative_numbers = true)]
    rssi: i16,

    /// How long the wrong-key phone waits for a grant before giving up, in seconds.
    #[arg(long, default_value_t = 3.0, value_name = "SECONDS")]
    grant_timeout: f64,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let Ok(grant_timeout) = Duration::try_from_secs_f64(cli.grant_timeout) else {
        eprintln!("--grant-timeout must be a non-negative number of seconds");
        return ExitCode::from(2);
    };
    let opts = DemoOptions {
        rssi_dbm: cli.rssi,
        grant_timeout,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(demo::run(&opts)) {
        Ok(outcome) if outcome.all_expected() => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("latchkey-demo: {e}");
            ExitCode::from(2)
        }
    }
}
